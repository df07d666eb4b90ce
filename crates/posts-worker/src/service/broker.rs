//! The broker a [`Service`](super::Service) runs on. This is the one place that knows how a
//! worker, a scheduler and a client reach jobq's brokers and their schedule stores, so a
//! change to jobq's broker API is absorbed here.

use std::fmt;
use std::sync::Arc;

use jobq::scheduler::{ScheduleBackend, ScheduleError, ScheduleSpec, ScheduleStore, Scheduler};
use jobq::{App, Broker, Client, MemoryBroker, RedisBroker, Worker, WorkerConfig};

/// A jobq broker together with the store its schedulers keep their schedules in.
///
/// Made from a [`RedisBroker`] or a [`MemoryBroker`] with `.into()`; cheap to clone (clones
/// share the connection or the in-process storage).
#[derive(Clone)]
pub struct ServiceBroker {
    jobs: Arc<dyn Broker>,
    schedules: Arc<dyn ScheduleStore>,
}

impl ServiceBroker {
    /// A client that sends jobs through this broker, e.g. to the service's own worker.
    pub fn client(&self) -> Client {
        Client::new(Arc::clone(&self.jobs))
    }

    pub(super) fn worker(&self, app: App, config: WorkerConfig) -> Worker {
        Worker::new(app, Arc::clone(&self.jobs), config)
    }

    /// Stores `specs` as the configured schedules (removing configured ones no longer
    /// listed) and returns a scheduler ready to run them.
    pub(super) async fn scheduler(
        &self,
        specs: Vec<ScheduleSpec>,
    ) -> Result<Scheduler, ScheduleError> {
        Scheduler::new(self.client(), Arc::clone(&self.schedules), specs).await
    }
}

impl From<RedisBroker> for ServiceBroker {
    fn from(broker: RedisBroker) -> Self {
        Self::from(Arc::new(broker))
    }
}

impl From<Arc<RedisBroker>> for ServiceBroker {
    fn from(broker: Arc<RedisBroker>) -> Self {
        Self {
            schedules: broker.schedule_store(),
            jobs: broker,
        }
    }
}

/// Schedules on a memory broker stay in the process, so only this process's scheduler
/// sends their jobs.
impl From<MemoryBroker> for ServiceBroker {
    fn from(broker: MemoryBroker) -> Self {
        Self {
            schedules: broker.schedule_store(),
            jobs: Arc::new(broker),
        }
    }
}

impl fmt::Debug for ServiceBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceBroker").finish_non_exhaustive()
    }
}
