//! `posts-worker dead list|requeue|purge`: inspect and act on dead-lettered jobs.

use std::process::ExitCode;

use clap::Subcommand;
use jobq::Client;

use super::{GlobalOptions, client_broker};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Print dead letters, newest first, one JSON object per line.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Send dead letters back to their queues as fresh first attempts.
    Requeue {
        /// At most this many, newest first.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Delete every dead letter.
    Purge,
}

pub(super) async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(client_broker(global).await?);
    match args.action {
        Action::List { limit } => {
            for letter in client.dead_letters(limit).await? {
                println!("{}", serde_json::to_string(&letter)?);
            }
        }
        Action::Requeue { limit } => {
            let requeued = client.requeue_dead(limit).await?;
            println!("requeued {requeued} dead letter(s)");
        }
        Action::Purge => {
            let purged = client.purge_dead().await?;
            println!("purged {purged} dead letter(s)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
