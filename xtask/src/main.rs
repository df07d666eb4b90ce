//! Project automation, run as `cargo xtask <command>`: seeding the posts database, running
//! every test against a throwaway Redis, and the benchmarks.

mod bench;
mod chromium;
mod python;
mod seed;
mod test;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "posts-worker project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the posts database from sample data, or a synthetic one.
    Seed(seed::Args),
    /// Obtain a throwaway Redis, run every test against it, tear it down.
    Test(test::Args),
    /// Run a benchmark.
    Bench(bench::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Seed(args) => seed::run(args),
        Command::Test(args) => test::run(args),
        Command::Bench(args) => bench::run(args),
    }
}
