//! `cargo xtask bench <suite>`: the benchmarks behind the speed targets.

mod queue;
mod tasks;

use clap::Subcommand;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    suite: Suite,
}

#[derive(Subcommand)]
enum Suite {
    /// jobq end-to-end throughput and round-trip latency.
    Queue(queue::Args),
    /// The posts tasks on a large synthetic database.
    Tasks(tasks::Args),
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.suite {
        Suite::Queue(args) => queue::run(args),
        Suite::Tasks(args) => tasks::run(args),
    }
}
