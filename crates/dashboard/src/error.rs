//! The dashboard's errors: bad listening addresses and serving failures.

use std::net::SocketAddr;

/// Why the dashboard could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// `--listen` is not a `host:port` socket address.
    #[error("--listen {listen:?} is not an address like 127.0.0.1:9808: {reason}")]
    InvalidListen {
        /// The address as given.
        listen: String,
        /// What was wrong.
        reason: String,
    },
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("the dashboard server failed: {0}")]
    Serve(std::io::Error),
}

/// Why a page's data could not be read (Redis unreachable, a corrupt schedule).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error(transparent)]
    Broker(#[from] jobq::Error),
    #[error(transparent)]
    Schedules(#[from] jobq::scheduler::ScheduleError),
}
