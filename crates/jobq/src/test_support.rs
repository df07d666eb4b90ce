//! Hooks for jobq's own integration tests (feature `test-support`): they reach below the
//! public API to play a misbehaving producer or a worker that dies mid-job.

use std::time::Duration;

use crate::broker::Broker;
use crate::error::Error;

/// Pushes `stored` onto `queue` exactly as given, as a producer of malformed messages would.
pub async fn push_raw(broker: &Broker, queue: &str, stored: &str) -> Result<(), Error> {
    broker.backend().push_raw(queue, stored.to_owned()).await
}

/// Registers `worker` as alive for `ttl`, without running a worker.
pub async fn heartbeat(broker: &Broker, worker: &str, ttl: Duration) -> Result<(), Error> {
    broker.backend().heartbeat(worker, "{}", ttl).await
}

/// Moves up to `max` jobs of `queue` into `worker`'s in-flight list, as a worker's fetch
/// does, and returns them as stored.
pub async fn fetch_raw(
    broker: &Broker,
    worker: &str,
    queue: &str,
    max: usize,
    block: Duration,
) -> Result<Vec<String>, Error> {
    let source = crate::broker::Source::Queue(queue.to_owned());
    let deliveries = broker.backend().fetch(worker, &source, max, block).await?;
    Ok(deliveries
        .into_iter()
        .map(|d| d.tag.into_stored())
        .collect())
}
