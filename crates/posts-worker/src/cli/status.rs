//! `posts-worker status`: a snapshot of the namespace: queues, jobs in flight, delayed and
//! dead jobs, the workers (host, pid, queues, concurrency, heartbeat age), counters, and the
//! schedules with their last and next run.

use std::process::ExitCode;

use jobq::Client;
use jobq::monitor::Monitor;
use jobq::scheduler::ScheduleStatus;
use serde_json::json;

use super::{GlobalOptions, client_broker};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let broker = client_broker(global).await?;
    let client = Client::new(broker.clone());
    let stats = client.stats().await?;
    let schedules = jobq::scheduler::list(&broker).await?;
    let workers = Monitor::new(&broker)?.workers().await?;
    if args.json {
        println!(
            "{}",
            json!({
                "namespace": global.namespace,
                "stats": stats,
                "workers": workers,
                "schedules": schedules,
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("namespace      {}", global.namespace);
    println!("live workers   {}", stats.workers);
    let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    for worker in &workers {
        match &worker.info {
            Some(info) => println!(
                "  {} on {} pid {}: queues {}, concurrency {}, {} in flight, heartbeat {:.1} s ago",
                worker.id,
                info.host,
                info.pid,
                info.queues.join(","),
                info.concurrency,
                worker.in_flight,
                now.saturating_sub(info.heartbeat_at_ms) as f64 / 1000.0,
            ),
            None => println!(
                "  {}: no heartbeat ({} in flight, last seen {:.1} s ago)",
                worker.id,
                worker.in_flight,
                now.saturating_sub(worker.last_seen_ms) as f64 / 1000.0,
            ),
        }
    }
    for (queue, waiting) in &stats.queues {
        println!("queue {queue:<8} {waiting} waiting");
    }
    println!("in flight      {}", stats.in_flight);
    println!("delayed        {}", stats.delayed);
    println!("dead           {}", stats.dead);
    println!(
        "processed      {} ({} failed, {} retries)",
        stats.processed, stats.failed, stats.retried
    );
    println!("schedules      {}", schedules.len());
    for ScheduleStatus {
        name,
        task,
        spec,
        last_run,
        next_run,
        ..
    } in &schedules
    {
        println!(
            "  {name}: {task} {spec}; last run {}; next run {}",
            last_run.map_or_else(|| "never".to_owned(), |t| t.to_rfc3339()),
            next_run.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339()),
        );
    }
    Ok(ExitCode::SUCCESS)
}
