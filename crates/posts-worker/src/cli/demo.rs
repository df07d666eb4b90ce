//! `posts-worker demo`: what the Python example's driver script did, end to end through the
//! queue: a worker runs in this process, the three tasks are submitted like `.delay()` and
//! their results printed, and the explicit result key is read and deleted.
//!
//! It needs nothing but cargo: the sample DB is created when missing, and when no Redis
//! answers the in-memory broker takes its place (and says so).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use jobq::{Broker, Client};
use posts_seed::{DEFAULT_RAW_DIR, SeedOptions, seed};
use posts_worker::Service;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{BrokerKind, GlobalOptions, connect_redis, open_posts_env};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// How long to wait for each task's result, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

const FROM: &str = "2017-05-31";
const TO: &str = "2017-06-01";
const DEMO_QUERY: &str =
    "SELECT platform, post_blob FROM posts WHERE created_at BETWEEN '2017-05-31' AND '2017-06-01'";
const DEMO_RESULT_KEY: &str = "my_worker:demo:top_named_entities";

pub(super) async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let timeout = Duration::from_secs(args.timeout);
    if !global.db.exists() {
        println!(
            "The posts DB {} is missing: seeding it from the sample data.",
            global.db.display()
        );
        let summary = seed(&SeedOptions::raw(&global.db, sample_raw_dir()), &mut |_| {})?;
        println!("{summary}\n");
    }
    let env = open_posts_env(global)?;
    let broker = demo_broker(global).await?;
    let client = Client::new(broker.clone());

    // The demo sends its jobs itself, so the service runs no scheduler.
    let service = Service::new(env, broker).without_scheduler();
    let stop = CancellationToken::new();
    let service_task = tokio::spawn(service.run(stop.clone().cancelled_owned()));

    let outcome = drive(&client, timeout).await;
    print_dashboard(&client, global).await;
    stop.cancel();
    service_task.await??;
    outcome?;
    Ok(ExitCode::SUCCESS)
}

/// Where to watch these jobs: the running dashboards of the namespace, or how to start one.
async fn print_dashboard(client: &Client, global: &GlobalOptions) {
    let Ok(monitor) = jobq::monitor::Monitor::new(client.broker()) else {
        return; // the memory broker: no dashboard can see it
    };
    match monitor.dashboards().await {
        Ok(urls) if !urls.is_empty() => {
            for url in urls {
                println!("
Dashboard: {url}");
            }
        }
        _ => println!(
            "
Dashboard: none running; start one with `posts-worker --namespace {} dashboard` (http://127.0.0.1:9808/).",
            global.namespace
        ),
    }
}

/// `sample_data/raw` under the working directory, else the one in the source tree this
/// binary was built from, so the demo also works when started from elsewhere.
fn sample_raw_dir() -> PathBuf {
    let relative = Path::new(DEFAULT_RAW_DIR);
    if relative.is_dir() {
        return relative.to_owned();
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(DEFAULT_RAW_DIR)
}

/// Redis when one answers (unless `--broker memory`), else the in-memory broker.
async fn demo_broker(global: &GlobalOptions) -> anyhow::Result<Broker> {
    if global.broker == Some(BrokerKind::Memory) {
        println!("Broker: in-memory (--broker memory).\n");
        return Ok(Broker::memory(&global.namespace)?);
    }
    match connect_redis(global).await {
        Ok(redis) => {
            println!(
                "Broker: Redis at {} (namespace {}).\n",
                global.redis_url, global.namespace
            );
            Ok(redis)
        }
        Err(err) if global.broker == Some(BrokerKind::Redis) => Err(err),
        Err(err) => {
            println!("Broker: in-memory (no Redis: {err:#}).\n");
            Ok(Broker::memory(&global.namespace)?)
        }
    }
}

async fn drive(client: &Client, timeout: Duration) -> anyhow::Result<()> {
    println!("1. query_posts_db: the last 5 rows of\n   {DEMO_QUERY}");
    let started = Instant::now();
    let rows = client
        .delay::<Value>("query_posts_db", json!([DEMO_QUERY]))
        .await?
        .get(timeout)
        .await?;
    let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
    println!(
        "   {} rows in {:.1?}; the last 5:",
        rows.len(),
        started.elapsed()
    );
    for row in &rows[rows.len().saturating_sub(5)..] {
        println!("   {}", describe_row(row));
    }

    println!("\n2. substring_matches_by_platform(\"trump\", \"{FROM}\", \"{TO}\")");
    let started = Instant::now();
    let counts = client
        .delay::<Value>("substring_matches_by_platform", json!(["trump", FROM, TO]))
        .await?
        .get(timeout)
        .await?;
    println!("   {} in {:.1?}", counts, started.elapsed());

    println!("\n3. count_top_named_entities(10, \"{FROM}\", \"{TO}\", \"{DEMO_RESULT_KEY}\")");
    let started = Instant::now();
    let done = client
        .delay::<bool>(
            "count_top_named_entities",
            json!([10, FROM, TO, DEMO_RESULT_KEY]),
        )
        .await?
        .get(timeout)
        .await?;
    let report = client.get_key(DEMO_RESULT_KEY).await?;
    client.delete_key(DEMO_RESULT_KEY).await?;
    println!(
        "   task returned {done} in {:.1?}; key {DEMO_RESULT_KEY} (now deleted) held:",
        started.elapsed()
    );
    let report: Value = match report {
        Some(text) => serde_json::from_str(&text)?,
        None => anyhow::bail!("the task reported success but {DEMO_RESULT_KEY} was not written"),
    };
    println!(
        "   computed at {}",
        report["timestamp"].as_str().unwrap_or("?")
    );
    for pair in report["top_named_entities"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        println!(
            "   {:>5}  {}",
            pair[1].as_u64().unwrap_or(0),
            pair[0].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

/// One `[platform, post_blob]` row as a line a person can read.
fn describe_row(row: &Value) -> String {
    let platform = row[0].as_str().unwrap_or("?");
    let blob: Value = row[1]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null);
    let text: String = blob["text"]
        .as_str()
        .unwrap_or("")
        .chars()
        .take(70)
        .collect();
    format!(
        "{platform:<9} {} {:<7} {:?}",
        blob["created_at"].as_str().unwrap_or("?"),
        blob["type"].as_str().unwrap_or("?"),
        text.replace('\n', " ")
    )
}
