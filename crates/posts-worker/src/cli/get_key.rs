//! `posts-worker get-key`: print the JSON a task stored at an explicit result key.

use std::process::ExitCode;

use jobq::Client;

use super::{GlobalOptions, client_broker};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The Redis key, e.g. `my_worker:scheduled:top_named_entities`.
    key: String,
    /// Delete the key after printing it.
    #[arg(long)]
    delete: bool,
}

pub(super) async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(client_broker(global).await?);
    let Some(value) = client.get_key(&args.key).await? else {
        eprintln!(
            "key {} does not exist (not written yet, expired or deleted)",
            args.key
        );
        return Ok(ExitCode::FAILURE);
    };
    println!("{value}");
    if args.delete {
        client.delete_key(&args.key).await?;
    }
    Ok(ExitCode::SUCCESS)
}
