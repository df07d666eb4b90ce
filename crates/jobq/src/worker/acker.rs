//! The acknowledger: collects finished jobs and acknowledges them in batches, one broker
//! call (one atomic script per job) per batch, retrying through broker outages.
//!
//! The jobs' reports (counters, histograms, events: [`crate::monitor`]) ride along with a
//! batch at most every [`REPORT_EVERY`], so a lone job's acknowledgement, which its waiting
//! client's latency depends on, carries none of that work; when no batch comes, a call of
//! their own records them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tracing::{error, warn};

use super::backoff;
use crate::broker::{Ack, Broker};
use crate::monitor::JobReport;

/// Acknowledgements per broker call at most.
const MAX_BATCH: usize = 512;
/// Attempts to apply a batch after shutdown began before giving up on it (the jobs stay in
/// flight and are recovered by unregistering or by the reaper).
const SHUTDOWN_ATTEMPTS: u32 = 8;
/// How often reports are recorded at most (also how long they may wait).
pub(super) const REPORT_EVERY: Duration = Duration::from_millis(200);
/// Reports recorded with a batch however recently the last were.
const MAX_PENDING_REPORTS: usize = 4096;

// Nearly every message is an `Ack`: boxing it would cost an allocation per job to shrink
// the rare `Flush` and `Stop`.
#[allow(clippy::large_enum_variant)]
pub(super) enum AckMessage {
    /// A finished job; its slot in `fetched` is released once the ack is applied.
    Ack(Ack),
    /// Applies everything queued so far plus `requeue`, then reports on `done`.
    Flush {
        requeue: Vec<Ack>,
        done: oneshot::Sender<()>,
    },
    /// Ends the acknowledger once everything queued is applied.
    Stop,
}

pub(super) struct Acker {
    pub(super) broker: Broker,
    pub(super) worker_id: String,
    /// The worker's slots for fetched jobs, released as their acks are applied.
    pub(super) fetched: Arc<Semaphore>,
}

impl Acker {
    pub(super) async fn run(self, mut rx: mpsc::UnboundedReceiver<AckMessage>) {
        let mut shutting_down = false;
        let mut reports: Vec<JobReport> = Vec::new();
        let mut last_recorded = Instant::now();
        loop {
            let first = if reports.is_empty() {
                rx.recv().await
            } else {
                let due = last_recorded + REPORT_EVERY;
                match tokio::time::timeout_at(due, rx.recv()).await {
                    Ok(message) => message,
                    Err(_) => {
                        // No batch came along: the reports go on their own.
                        self.apply(&[], &reports, shutting_down).await;
                        reports.clear();
                        last_recorded = Instant::now();
                        continue;
                    }
                }
            };
            let Some(first) = first else {
                self.apply(&[], &reports, true).await;
                return;
            };
            let mut batch = Vec::new();
            let mut released = 0usize;
            let mut done = Vec::new();
            let mut stop = false;
            let mut next = Some(first);
            while let Some(message) = next.take() {
                match message {
                    AckMessage::Ack(mut ack) => {
                        reports.extend(ack.report.take().map(|report| *report));
                        batch.push(ack);
                        released += 1;
                    }
                    AckMessage::Flush { requeue, done: tx } => {
                        shutting_down = true;
                        batch.extend(requeue);
                        done.push(tx);
                    }
                    AckMessage::Stop => stop = true,
                }
                if batch.len() < MAX_BATCH && !stop {
                    next = rx.try_recv().ok();
                }
            }
            let record = shutting_down
                || stop
                || reports.len() >= MAX_PENDING_REPORTS
                || last_recorded.elapsed() >= REPORT_EVERY;
            if record {
                self.apply(&batch, &reports, shutting_down).await;
                reports.clear();
                last_recorded = Instant::now();
            } else {
                self.apply(&batch, &[], shutting_down).await;
            }
            self.fetched.add_permits(released);
            for tx in done {
                let _ = tx.send(());
            }
            if stop {
                return;
            }
        }
    }

    async fn apply(&self, batch: &[Ack], reports: &[JobReport], shutting_down: bool) {
        if batch.is_empty() && reports.is_empty() {
            return;
        }
        let mut failures = 0;
        loop {
            match self
                .broker
                .backend()
                .ack(&self.worker_id, batch, reports)
                .await
            {
                Ok(()) => return,
                Err(e) => {
                    failures += 1;
                    if shutting_down && failures >= SHUTDOWN_ATTEMPTS {
                        error!(worker_id = %self.worker_id, jobs = batch.len(), error = %e,
                            "giving up acknowledging jobs during shutdown; they stay in flight and will run again");
                        return;
                    }
                    warn!(worker_id = %self.worker_id, jobs = batch.len(), error = %e,
                        "acknowledging jobs failed; retrying");
                    tokio::time::sleep(backoff(failures)).await;
                }
            }
        }
    }
}
