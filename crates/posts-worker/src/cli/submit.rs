//! `posts-worker submit`: enqueue a task like Celery's `.delay()`, optionally wait for it;
//! with `--celery`, send it as a Celery message (to Python Celery workers, or to
//! posts-worker's Celery listener) and read its `celery-task-meta-<id>` result.
//!
//! Exit codes with `--wait`: 0 with the result as JSON on stdout; 1 with
//! `{"error":{"kind":..,"message":..}}` on stderr when the task failed; 2 on timeout.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use jobq::celery::CeleryClient;
use jobq::{Client, Error};
use serde_json::{Map, Value, json};

use super::{GlobalOptions, client_broker};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Task name, e.g. `substring_matches_by_platform`.
    task: String,
    /// Positional arguments: each is parsed as JSON when it is valid JSON, else taken as a
    /// string. Put `--` before arguments that start with `--`.
    #[arg(allow_negative_numbers = true)]
    args: Vec<String>,
    /// Wait up to SECS for the result and print it.
    #[arg(long, value_name = "SECS")]
    wait: Option<f64>,
    /// Send a Celery protocol v2 message (the task name as Python workers know it, e.g.
    /// `scorer_worker.tasks.sentiment_scorer`) to the Redis of --redis-url.
    #[arg(long)]
    celery: bool,
    /// Keyword arguments as a JSON object (with --celery), e.g. `--kwargs '{"text": "hi"}'`.
    #[arg(long, value_name = "JSON", requires = "celery", value_parser = parse_kwargs)]
    kwargs: Option<Map<String, Value>>,
    /// The Celery queue to send to (with --celery).
    #[arg(
        long,
        value_name = "QUEUE",
        default_value = "celery",
        requires = "celery"
    )]
    celery_queue: String,
}

/// Exit code when `--wait` ran out before the result arrived.
const EXIT_TIMEOUT: u8 = 2;

pub(super) async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let wait = args.wait.map(wait_duration).transpose()?;
    let positional: Vec<Value> = args.args.iter().map(|arg| parse_arg(arg)).collect();
    let (id, outcome) = if args.celery {
        let celery = CeleryClient::connect(&global.redis_url)
            .await
            .with_context(|| format!("cannot reach the Celery broker at {}", global.redis_url))?
            .queue(args.celery_queue);
        let kwargs = args.kwargs.unwrap_or_default();
        let sent = celery.send(&args.task, positional, kwargs).await?;
        let outcome = match wait {
            Some(wait) => Some((wait, sent.get(wait).await)),
            None => None,
        };
        (sent.id().to_string(), outcome)
    } else {
        let client = Client::new(client_broker(global).await?);
        let result = client.delay::<Value>(&args.task, positional).await?;
        let outcome = match wait {
            Some(wait) => Some((wait, result.get(wait).await)),
            None => None,
        };
        (result.id().to_string(), outcome)
    };
    let Some((wait, outcome)) = outcome else {
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    };
    match outcome {
        Ok(value) => {
            println!("{value}");
            Ok(ExitCode::SUCCESS)
        }
        Err(Error::Failed(failure)) => {
            eprintln!(
                "{}",
                json!({"error": {"kind": failure.kind, "message": failure.message}})
            );
            Ok(ExitCode::FAILURE)
        }
        Err(Error::Timeout) => {
            eprintln!("timed out after {wait:?} waiting for job {id}");
            Ok(ExitCode::from(EXIT_TIMEOUT))
        }
        Err(other) => Err(other.into()),
    }
}

/// A command-line argument as a JSON value: `10` is a number, `"10"` and `trump` are strings.
fn parse_arg(arg: &str) -> Value {
    serde_json::from_str(arg).unwrap_or_else(|_| Value::String(arg.to_owned()))
}

fn parse_kwargs(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("expected a JSON object, got {other}")),
        Err(e) => Err(format!("not valid JSON: {e}")),
    }
}

fn wait_duration(secs: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| anyhow::anyhow!("--wait must be a non-negative number of seconds, got {secs}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_json_when_they_parse_else_strings() {
        assert_eq!(parse_arg("10"), json!(10));
        assert_eq!(parse_arg("trump"), json!("trump"));
        assert_eq!(parse_arg("2017-05-31"), json!("2017-05-31"));
        assert_eq!(parse_arg("\"10\""), json!("10"));
        assert_eq!(parse_arg("[1,2]"), json!([1, 2]));
        assert_eq!(parse_arg("null"), Value::Null);
    }

    #[test]
    fn kwargs_must_be_a_json_object() {
        assert_eq!(
            parse_kwargs(r#"{"k": 1}"#).unwrap().get("k"),
            Some(&json!(1))
        );
        assert!(parse_kwargs("[1]").unwrap_err().contains("JSON object"));
        assert!(parse_kwargs("{").unwrap_err().contains("not valid JSON"));
    }

    #[test]
    fn negative_wait_is_refused() {
        assert!(wait_duration(-1.0).is_err());
        assert_eq!(wait_duration(1.5).ok(), Some(Duration::from_millis(1500)));
    }
}
