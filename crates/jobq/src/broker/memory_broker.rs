//! The memory backend behind [`Broker::memory`](super::Broker::memory): the broker in
//! process memory, with the Redis backend's semantics and no persistence. Queues hold the
//! messages in their wire form, so malformed ones behave as they do on Redis.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::redis_connection::RedisConnection;
use super::wire::{
    self, Delivery, decode_delivery, encode_dead_letter, encode_message, malformed_letter, queue_of,
};
use super::{
    Ack, Backend, BrokerFuture, Deployment, NewJob, Outcome, ResultLookup, Source,
    validate_namespace,
};
use crate::admin::{DeadLetter, Stats};
use crate::error::Error;
use crate::message::{JobId, JobMessage, JobState, ResultRecord, now_ms};
use crate::monitor::JobReport;
use crate::scheduler::{MemoryScheduleStore, ScheduleStore};
use crate::task::KeyWrite;

#[derive(Debug, Clone)]
struct Expiring<T = String> {
    value: T,
    expires_ms: Option<u64>,
}

impl<T> Expiring<T> {
    fn new(value: T, ttl: Option<Duration>) -> Self {
        Self {
            value,
            expires_ms: ttl.map(|t| now_ms().saturating_add(t.as_millis() as u64)),
        }
    }

    /// Live through its last millisecond, as Redis keeps a key: the clock reading that set the
    /// expiry dropped part of a millisecond, so expiring at it would cut the TTL short.
    fn live(&self, now: u64) -> bool {
        self.expires_ms.is_none_or(|e| e >= now)
    }
}

#[derive(Debug, Default)]
struct State {
    /// Front = most recently pushed; jobs are taken from the back (like LPUSH/RPOP).
    queues: HashMap<String, VecDeque<String>>,
    known_queues: BTreeSet<String>,
    processing: HashMap<String, VecDeque<String>>,
    /// Worker id → (last heartbeat ms, heartbeat expiry ms).
    workers: HashMap<String, (u64, u64)>,
    delayed: BTreeMap<(u64, u64), String>,
    delayed_seq: u64,
    /// Front = newest.
    dead: VecDeque<String>,
    results: HashMap<JobId, Expiring<ResultRecord>>,
    states: HashMap<JobId, Expiring<JobState>>,
    keys: HashMap<String, Expiring>,
    unique: HashMap<String, u64>,
    processed: u64,
    failed: u64,
    retried: u64,
}

impl State {
    fn push(&mut self, queue: &str, payload: String) {
        self.known_queues.insert(queue.to_owned());
        self.queues
            .entry(queue.to_owned())
            .or_default()
            .push_front(payload);
    }

    fn push_head(&mut self, queue: &str, payload: String) {
        self.known_queues.insert(queue.to_owned());
        self.queues
            .entry(queue.to_owned())
            .or_default()
            .push_back(payload);
    }

    fn delay(&mut self, due_ms: u64, payload: String) {
        self.delayed_seq += 1;
        self.delayed.insert((due_ms, self.delayed_seq), payload);
    }

    /// Removes `payload` from `worker`'s in-flight list; `false` when it was not there.
    fn remove_in_flight(&mut self, worker: &str, payload: &str) -> bool {
        if let Some(list) = self.processing.get_mut(worker)
            && let Some(pos) = list.iter().rposition(|m| m == payload)
        {
            list.remove(pos);
            return true;
        }
        false
    }

    /// Puts `payload` on the queue it names (at the head, to be fetched next, or at the
    /// tail), or dead-letters it as `malformed` when it names none.
    fn route(&mut self, payload: String, at_head: bool, malformed: &str) {
        match queue_of(&payload) {
            Some(queue) if at_head => self.push_head(&queue, payload),
            Some(queue) => self.push(&queue, payload),
            None => self
                .dead
                .push_front(encode_dead_letter(&malformed_letter(&payload, malformed))),
        }
    }

    /// Returns a dead worker's in-flight jobs to the head of their queues, oldest first.
    fn requeue_worker(&mut self, worker: &str) -> usize {
        let jobs = self.processing.remove(worker).unwrap_or_default();
        let moved = jobs.len();
        for payload in jobs {
            self.route(payload, true, wire::UNROUTABLE_IN_FLIGHT);
        }
        self.workers.remove(worker);
        moved
    }
}

struct Inner {
    namespace: String,
    state: Mutex<State>,
    job_pushed: Notify,
    result_stored: Notify,
    /// Where schedulers on this broker keep their schedules, so stats count them as the
    /// Redis backend's do.
    schedules: Arc<MemoryScheduleStore>,
}

/// The memory backend.
pub(super) struct MemoryBackend {
    inner: Inner,
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("namespace", &self.inner.namespace)
            .finish()
    }
}

impl MemoryBackend {
    /// An empty backend for `namespace`, or an error naming what is wrong with it.
    pub(super) fn new(namespace: &str) -> Result<Self, Error> {
        validate_namespace(namespace)?;
        Ok(Self {
            inner: Inner {
                namespace: namespace.to_owned(),
                state: Mutex::new(State::default()),
                job_pushed: Notify::new(),
                result_stored: Notify::new(),
                schedules: Arc::new(MemoryScheduleStore::default()),
            },
        })
    }

    fn notify_pushed(&self) {
        self.inner.job_pushed.notify_waiters();
    }

    fn state(&self) -> MutexGuard<'_, State> {
        crate::sync::lock(&self.inner.state)
    }

    fn take_jobs(&self, worker: &str, queue: &str, max: usize) -> Vec<String> {
        let mut state = self.state();
        let mut taken = Vec::new();
        if let Some(list) = state.queues.get_mut(queue) {
            while taken.len() < max {
                match list.pop_back() {
                    Some(m) => taken.push(m),
                    None => break,
                }
            }
        }
        if !taken.is_empty() {
            let in_flight = state.processing.entry(worker.to_owned()).or_default();
            for m in &taken {
                in_flight.push_front(m.clone());
            }
        }
        taken
    }

    fn live_result(&self, job_id: &JobId) -> Option<ResultRecord> {
        let now = now_ms();
        let mut state = self.state();
        match state.results.get(job_id) {
            Some(r) if r.live(now) => Some(r.value.clone()),
            Some(_) => {
                state.results.remove(job_id);
                None
            }
            None => None,
        }
    }
}

impl Backend for MemoryBackend {
    fn deployment(&self) -> Deployment {
        Deployment::Memory
    }

    fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    fn ping(&self) -> BrokerFuture<'_, ()> {
        async { Ok(()) }.boxed()
    }

    fn enqueue(&self, jobs: Vec<NewJob>) -> BrokerFuture<'_, Vec<bool>> {
        async move {
            let now = now_ms();
            let mut outcome = Vec::with_capacity(jobs.len());
            {
                let mut state = self.state();
                for job in jobs {
                    if let Some((key, ttl)) = &job.unique {
                        if state.unique.get(key).is_some_and(|exp| *exp >= now) {
                            outcome.push(false);
                            continue;
                        }
                        state
                            .unique
                            .insert(key.clone(), now.saturating_add(ttl.as_millis() as u64));
                    }
                    let payload = encode_message(&job.message);
                    match job.message.eta_ms {
                        Some(due) => {
                            state.known_queues.insert(job.message.queue.clone());
                            state.delay(due, payload);
                        }
                        None => state.push(&job.message.queue, payload),
                    }
                    outcome.push(true);
                }
            }
            self.notify_pushed();
            Ok(outcome)
        }
        .boxed()
    }

    fn fetch<'a>(
        &'a self,
        worker: &'a str,
        source: &'a Source,
        max: usize,
        block: Duration,
    ) -> BrokerFuture<'a, Vec<Delivery>> {
        async move {
            let Source::Queue(queue) = source else {
                return Err(celery_needs_redis());
            };
            if max == 0 {
                return Ok(Vec::new());
            }
            let deadline = Instant::now() + block;
            loop {
                let pushed = self.inner.job_pushed.notified();
                tokio::pin!(pushed);
                pushed.as_mut().enable();
                let taken = self.take_jobs(worker, queue, max);
                if !taken.is_empty() {
                    return Ok(taken.into_iter().map(decode_delivery).collect());
                }
                if tokio::time::timeout_at(deadline, pushed).await.is_err() {
                    return Ok(Vec::new());
                }
            }
        }
        .boxed()
    }

    fn declare_celery_queues<'a>(&'a self, _queues: &'a [String]) -> BrokerFuture<'a, ()> {
        async { Err(celery_needs_redis()) }.boxed()
    }

    fn celery_started<'a>(
        &'a self,
        _key: &'a str,
        _record: &'a str,
        _ttl: Duration,
    ) -> BrokerFuture<'a, ()> {
        async { Err(celery_needs_redis()) }.boxed()
    }

    fn serve_celery_control<'a>(
        &'a self,
        _hostname: &'a str,
        _task_names: &'a [String],
    ) -> BrokerFuture<'a, ()> {
        async { Err(celery_needs_redis()) }.boxed()
    }

    fn mark_started(&self, job_ids: Vec<JobId>, ttl: Duration) -> BrokerFuture<'_, ()> {
        async move {
            let now = now_ms();
            let mut state = self.state();
            for id in job_ids {
                if state.results.get(&id).is_some_and(|r| r.live(now)) {
                    continue;
                }
                state
                    .states
                    .insert(id, Expiring::new(JobState::Started, Some(ttl)));
            }
            Ok(())
        }
        .boxed()
    }

    fn ack<'a>(
        &'a self,
        worker: &'a str,
        acks: &'a [Ack],
        // The memory broker keeps no monitoring data.
        _reports: &'a [JobReport],
        _events: &'a [String],
    ) -> BrokerFuture<'a, ()> {
        async move {
            let mut stored = false;
            let mut pushed = false;
            {
                let mut state = self.state();
                for ack in acks {
                    // As in the Redis backend: an acknowledgement applied already, or of a
                    // job taken back from this worker, changes nothing.
                    if !state.remove_in_flight(worker, ack.tag.as_stored()) {
                        continue;
                    }
                    match &ack.outcome {
                        Outcome::Finished {
                            record,
                            ttl,
                            clears_state: _,
                            dead_letter,
                        } => {
                            let id = match record {
                                ResultRecord::Success { job_id, .. } => job_id,
                                ResultRecord::Failure { job_id, .. } => {
                                    state.failed += 1;
                                    job_id
                                }
                            };
                            state.states.remove(id);
                            state
                                .results
                                .insert(id.clone(), Expiring::new(record.clone(), Some(*ttl)));
                            if let Some(letter) = dead_letter {
                                state.dead.push_front(encode_dead_letter(letter));
                            }
                            state.processed += 1;
                            stored = true;
                        }
                        Outcome::Unreadable { dead_letter } => {
                            state.dead.push_front(encode_dead_letter(dead_letter));
                            state.processed += 1;
                            state.failed += 1;
                        }
                        Outcome::Retry { next, ttl, .. } => {
                            state.delay(next.eta_ms.unwrap_or(0), encode_message(next));
                            state.states.insert(
                                next.id.clone(),
                                Expiring::new(JobState::Retry, Some(*ttl)),
                            );
                            state.retried += 1;
                        }
                        Outcome::Requeue { queue } => {
                            state.push_head(queue, ack.tag.as_stored().to_owned());
                            pushed = true;
                        }
                        Outcome::Defer { next } => {
                            state.delay(next.eta_ms.unwrap_or(0), encode_message(next));
                        }
                        // Never fetched here (see `celery_needs_redis`); counted all the same.
                        Outcome::Celery(reply) => {
                            if let Some(letter) = &reply.dead_letter {
                                state.dead.push_front(encode_dead_letter(letter));
                            }
                            state.processed += 1;
                            state.failed += u64::from(reply.failed);
                        }
                    }
                }
            }
            if stored {
                self.inner.result_stored.notify_waiters();
            }
            if pushed {
                self.notify_pushed();
            }
            Ok(())
        }
        .boxed()
    }

    fn write_keys<'a>(&'a self, writes: &'a [KeyWrite]) -> BrokerFuture<'a, ()> {
        async move {
            let mut state = self.state();
            for write in writes {
                state.keys.insert(
                    write.key.clone(),
                    Expiring::new(write.value.clone(), write.ttl),
                );
            }
            Ok(())
        }
        .boxed()
    }

    fn wait_result<'a>(
        &'a self,
        job_id: &'a JobId,
        timeout: Duration,
    ) -> BrokerFuture<'a, Option<ResultRecord>> {
        async move {
            let deadline = Instant::now() + timeout;
            loop {
                let stored = self.inner.result_stored.notified();
                tokio::pin!(stored);
                stored.as_mut().enable();
                if let Some(record) = self.live_result(job_id) {
                    return Ok(Some(record));
                }
                if tokio::time::timeout_at(deadline, stored).await.is_err() {
                    return Ok(self.live_result(job_id));
                }
            }
        }
        .boxed()
    }

    fn lookup<'a>(&'a self, job_id: &'a JobId) -> BrokerFuture<'a, ResultLookup> {
        async move {
            let record = self.live_result(job_id);
            let now = now_ms();
            let state = self
                .state()
                .states
                .get(job_id)
                .filter(|s| s.live(now))
                .map(|s| s.value);
            Ok(ResultLookup { record, state })
        }
        .boxed()
    }

    fn forget<'a>(&'a self, job_id: &'a JobId) -> BrokerFuture<'a, ()> {
        async move {
            let mut state = self.state();
            state.results.remove(job_id);
            state.states.remove(job_id);
            Ok(())
        }
        .boxed()
    }

    fn get_key<'a>(&'a self, key: &'a str) -> BrokerFuture<'a, Option<String>> {
        async move {
            let now = now_ms();
            Ok(self
                .state()
                .keys
                .get(key)
                .filter(|k| k.live(now))
                .map(|k| k.value.clone()))
        }
        .boxed()
    }

    fn delete_key<'a>(&'a self, key: &'a str) -> BrokerFuture<'a, bool> {
        async move {
            let now = now_ms();
            Ok(self.state().keys.remove(key).is_some_and(|k| k.live(now)))
        }
        .boxed()
    }

    fn heartbeat<'a>(
        &'a self,
        worker: &'a str,
        _info: &'a str,
        ttl: Duration,
    ) -> BrokerFuture<'a, ()> {
        async move {
            let now = now_ms();
            self.state().workers.insert(
                worker.to_owned(),
                (now, now.saturating_add(ttl.as_millis() as u64)),
            );
            Ok(())
        }
        .boxed()
    }

    fn in_flight<'a>(&'a self, worker: &'a str) -> BrokerFuture<'a, Vec<String>> {
        async move {
            let state = self.state();
            Ok(state
                .processing
                .get(worker)
                .map(|list| list.iter().cloned().collect())
                .unwrap_or_default())
        }
        .boxed()
    }

    fn unregister<'a>(&'a self, worker: &'a str) -> BrokerFuture<'a, ()> {
        async move {
            let moved = self.state().requeue_worker(worker);
            if moved > 0 {
                self.notify_pushed();
            }
            Ok(())
        }
        .boxed()
    }

    fn reap(&self, visibility: Duration) -> BrokerFuture<'_, usize> {
        async move {
            let now = now_ms();
            let cutoff = now.saturating_sub(visibility.as_millis() as u64);
            let moved = {
                let mut state = self.state();
                let dead: Vec<String> = state
                    .workers
                    .iter()
                    .filter(|(_, (seen, expires))| *seen <= cutoff && *expires <= now)
                    .map(|(id, _)| id.clone())
                    .collect();
                dead.iter().map(|w| state.requeue_worker(w)).sum::<usize>()
            };
            if moved > 0 {
                self.notify_pushed();
            }
            Ok(moved)
        }
        .boxed()
    }

    fn promote(&self, limit: usize) -> BrokerFuture<'_, usize> {
        async move {
            let now = now_ms();
            let moved = {
                let mut state = self.state();
                let due: Vec<(u64, u64)> = state
                    .delayed
                    .range(..=(now, u64::MAX))
                    .take(limit.max(1))
                    .map(|(k, _)| *k)
                    .collect();
                for key in &due {
                    if let Some(payload) = state.delayed.remove(key) {
                        state.route(payload, false, wire::UNROUTABLE_DELAYED);
                    }
                }
                due.len()
            };
            if moved > 0 {
                self.notify_pushed();
            }
            Ok(moved)
        }
        .boxed()
    }

    fn monitor_connection(&self) -> Option<(RedisConnection, String)> {
        None
    }

    fn stats(&self) -> BrokerFuture<'_, Stats> {
        async move {
            let schedules = self.inner.schedules.len() as u64;
            let now = now_ms();
            let state = self.state();
            Ok(Stats {
                queues: state
                    .known_queues
                    .iter()
                    .map(|q| {
                        let len = state.queues.get(q).map_or(0, VecDeque::len);
                        (q.clone(), len as u64)
                    })
                    .collect(),
                in_flight: state.processing.values().map(|l| l.len() as u64).sum(),
                delayed: state.delayed.len() as u64,
                dead: state.dead.len() as u64,
                workers: state.workers.values().filter(|(_, e)| *e > now).count() as u64,
                processed: state.processed,
                failed: state.failed,
                retried: state.retried,
                schedules,
            })
        }
        .boxed()
    }

    fn dead_letters(&self, limit: usize) -> BrokerFuture<'_, Vec<(String, DeadLetter)>> {
        let stored: Vec<String> = self.state().dead.iter().take(limit).cloned().collect();
        async move { wire::decode_dead_letters(stored) }.boxed()
    }

    fn requeue_dead_letter(&self, stored: String, message: JobMessage) -> BrokerFuture<'_, bool> {
        async move {
            let found = {
                let mut state = self.state();
                match state.dead.iter().position(|r| *r == stored) {
                    Some(pos) => {
                        state.dead.remove(pos);
                        state.push(&message.queue, encode_message(&message));
                        true
                    }
                    None => false,
                }
            };
            if found {
                self.notify_pushed();
            }
            Ok(found)
        }
        .boxed()
    }

    fn purge_dead(&self) -> BrokerFuture<'_, usize> {
        async move {
            let mut state = self.state();
            let n = state.dead.len();
            state.dead.clear();
            Ok(n)
        }
        .boxed()
    }

    fn schedules(&self) -> Arc<dyn ScheduleStore> {
        Arc::clone(&self.inner.schedules) as Arc<dyn ScheduleStore>
    }

    #[cfg(feature = "test-support")]
    fn push_raw<'a>(&'a self, queue: &'a str, stored: String) -> BrokerFuture<'a, ()> {
        async move {
            self.state().push(queue, stored);
            self.notify_pushed();
            Ok(())
        }
        .boxed()
    }
}

/// Celery messages come from Python clients, which reach a Redis, not this process.
fn celery_needs_redis() -> Error {
    Error::Config(
        "Celery queues need a Redis broker: Python clients cannot reach an in-memory one"
            .to_owned(),
    )
}
