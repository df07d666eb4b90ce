//! SIGINT/SIGTERM handling for processes that run a [`Worker`](crate::Worker). A library
//! never ends its host process: these only tell the caller that a signal arrived.

use tracing::{info, warn};

/// Resolves on the first SIGINT or SIGTERM: start a graceful shutdown. If the signals
/// cannot be listened for, it logs why and never resolves.
///
/// Use it as `worker.run_until(jobq::shutdown_signal()).await`. A binary that wants a
/// second signal to cut the graceful shutdown short uses [`ShutdownSignals`] instead.
pub async fn shutdown_signal() {
    match ShutdownSignals::new() {
        Ok(mut signals) => signals.recv().await,
        Err(e) => {
            warn!(error = %e, "cannot listen for shutdown signals; running until killed");
            std::future::pending::<()>().await;
        }
    }
}

/// Every SIGINT and SIGTERM (Ctrl-C elsewhere) the process receives, one
/// [`recv`](ShutdownSignals::recv) each: the first usually starts a graceful shutdown,
/// and what a second one does is the binary's choice (e.g. exit at once with status 130,
/// leaving in-flight jobs to another worker's reaper).
#[derive(Debug)]
pub struct ShutdownSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    received: u32,
}

impl ShutdownSignals {
    /// Starts listening (within a Tokio runtime).
    pub fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
                received: 0,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self { received: 0 })
        }
    }

    /// Waits for the next signal.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        self.received += 1;
        if self.received == 1 {
            info!("shutdown signal received: finishing in-flight jobs");
        } else {
            warn!(signals = self.received, "another shutdown signal received");
        }
    }
}
