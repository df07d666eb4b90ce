//! The acknowledger: collects finished jobs and acknowledges them in batches, one broker
//! call (one atomic script per job) per batch, retrying through broker outages.
//!
//! The jobs' reports (counters, histograms, events: [`crate::monitor`]) ride along with the
//! batch that acknowledges them. A batch writes the events of its failures, retries and
//! dead letters and of its newest [`SUCCESS_EVENTS_PER_CALL`] successes, encoded only then:
//! under load the capped event list would drop the others within moments anyway. A lone job's acknowledgement, which its waiting client's
//! latency depends on, carries none of that work: its report waits for the next batch of
//! several jobs, or at most [`REPORT_EVERY`], after which a call of its own records it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tracing::{error, warn};

use super::backoff;
use crate::broker::{Ack, Broker};
use crate::monitor::{EventKind, JobReport, SUCCESS_EVENTS_PER_CALL};

/// Acknowledgements per broker call at most.
const MAX_BATCH: usize = 512;
/// Attempts to apply a batch after shutdown began (a flush, or jobs given back) before
/// giving up on it (the jobs stay in flight and are recovered by unregistering or by the
/// reaper).
const SHUTDOWN_ATTEMPTS: u32 = 8;
/// How often reports are recorded at most (also how long they may wait).
pub(super) const REPORT_EVERY: Duration = Duration::from_millis(200);

// Nearly every message is an `Ack`: boxing it would cost an allocation per job to shrink
// the rare `Flush` and `Stop`.
#[allow(clippy::large_enum_variant)]
pub(super) enum AckMessage {
    /// A finished job; its slot in `fetched` is released once the ack is applied.
    Ack(Ack),
    /// A job that never started, put back on its queue during shutdown (a requeue), like
    /// an `Ack` but applied at once. Its batch is given up on after [`SHUTDOWN_ATTEMPTS`],
    /// so a broker outage cannot hold the shutdown up.
    GiveBack(Ack),
    /// Jobs found in this worker's in-flight list that it never received (a fetch whose
    /// reply was lost), put back on their queues at once. They hold no slot in `fetched`.
    Reclaim(Vec<Ack>),
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
    /// Whether job events are written.
    pub(super) events: bool,
}

impl Acker {
    pub(super) async fn run(self, mut rx: mpsc::UnboundedReceiver<AckMessage>) {
        let mut shutting_down = false;
        let mut reports: Vec<JobReport> = Vec::new();
        let mut events: Vec<String> = Vec::new();
        let mut last_recorded = Instant::now();
        loop {
            // A message already waiting needs no timer (the common case under load).
            let first = if let Ok(message) = rx.try_recv() {
                Some(message)
            } else if reports.is_empty() {
                rx.recv().await
            } else {
                let due = last_recorded + REPORT_EVERY;
                match tokio::time::timeout_at(due, rx.recv()).await {
                    Ok(message) => message,
                    Err(_) => {
                        // No batch came along: the reports go on their own.
                        self.apply(&[], &reports, &events, shutting_down).await;
                        reports.clear();
                        events.clear();
                        last_recorded = Instant::now();
                        continue;
                    }
                }
            };
            let Some(first) = first else {
                self.apply(&[], &reports, &events, true).await;
                return;
            };
            let mut batch = Vec::new();
            let mut released = 0usize;
            let mut done = Vec::new();
            let mut stop = false;
            let mut giving_back = false;
            let mut next = Some(first);
            let first_report = reports.len();
            // The batch position of the ack each of this batch's reports came with.
            let mut report_acks = Vec::new();
            while let Some(message) = next.take() {
                match message {
                    AckMessage::Ack(mut ack) => {
                        if let Some(report) = ack.report.take() {
                            report_acks.push(batch.len());
                            reports.push(*report);
                        }
                        batch.push(ack);
                        released += 1;
                    }
                    AckMessage::GiveBack(ack) => {
                        giving_back = true;
                        batch.push(ack);
                        released += 1;
                    }
                    AckMessage::Reclaim(acks) => {
                        giving_back = true;
                        batch.extend(acks);
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
            if self.events {
                let pairs = reports[first_report..]
                    .iter()
                    .zip(report_acks.iter().map(|&i| &batch[i]));
                self.encode_events(pairs, &mut events);
            }
            let record =
                shutting_down || stop || batch.len() > 1 || last_recorded.elapsed() >= REPORT_EVERY;
            let give_up = shutting_down || giving_back;
            if record {
                self.apply(&batch, &reports, &events, give_up).await;
                reports.clear();
                events.clear();
                last_recorded = Instant::now();
            } else {
                self.apply(&batch, &[], &[], give_up).await;
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

    /// Appends to `events` the events of one batch's reports (each with its ack, in order)
    /// that are written: every one but successes older than the newest
    /// [`SUCCESS_EVENTS_PER_CALL`].
    fn encode_events<'a>(
        &self,
        pairs: impl Iterator<Item = (&'a JobReport, &'a Ack)> + Clone,
        events: &mut Vec<String>,
    ) {
        let successes = pairs
            .clone()
            .filter(|(r, _)| r.kind == EventKind::Succeeded)
            .count();
        let mut skip = successes.saturating_sub(SUCCESS_EVENTS_PER_CALL);
        for (report, ack) in pairs {
            if report.kind == EventKind::Succeeded && skip > 0 {
                skip -= 1;
                continue;
            }
            events.push(report.event(&self.worker_id, ack.tag.args_text().as_deref()));
        }
    }

    async fn apply(
        &self,
        batch: &[Ack],
        reports: &[JobReport],
        events: &[String],
        shutting_down: bool,
    ) {
        if batch.is_empty() && reports.is_empty() {
            return;
        }
        let mut failures = 0;
        loop {
            match self
                .broker
                .backend()
                .ack(&self.worker_id, batch, reports, events)
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
