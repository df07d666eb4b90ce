//! What every handler shares: the monitor and the access settings.

use std::sync::Arc;

use jobq::monitor::Monitor;

/// The handlers' state.
pub(crate) type AppState = Arc<Shared>;

pub(crate) struct Shared {
    pub(crate) monitor: Monitor,
    /// Required on changing requests when set.
    pub(crate) token: Option<String>,
    /// Whether changing requests are served at all.
    pub(crate) mutations_allowed: bool,
    pub(crate) metrics_prefix: String,
}

impl Shared {
    pub(crate) fn client(&self) -> jobq::Client {
        jobq::Client::new(self.monitor.broker().clone())
    }

    pub(crate) fn namespace(&self) -> &str {
        self.monitor.broker().namespace()
    }
}
