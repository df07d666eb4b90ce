//! SIGINT/SIGTERM for the binary: the first asks for a graceful shutdown, a second ends
//! the process at once with status 130. Only the binary may end the process, so this lives
//! here and not in a library (in-flight jobs of a process ended this way are recovered by
//! another worker's reaper).

/// The exit status after a second signal: 128 + SIGINT, as shells report an interrupt.
const EXIT_INTERRUPTED: i32 = 130;

/// Resolves on the first SIGINT or SIGTERM, after arranging that the next one exits the
/// process with status 130.
#[allow(clippy::exit)] // the binary's own choice; the library never exits
pub(super) async fn shutdown_requested() {
    let mut signals = match Signals::listen() {
        Ok(signals) => signals,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for shutdown signals; running until killed");
            return std::future::pending().await;
        }
    };
    signals.next().await;
    tracing::info!(
        "shutdown signal received: finishing in-flight jobs (send it again to exit at once)"
    );
    tokio::spawn(async move {
        signals.next().await;
        tracing::warn!("second shutdown signal: exiting now");
        std::process::exit(EXIT_INTERRUPTED);
    });
}

/// The listeners, registered once so that a signal arriving between the first and the
/// second wait is not missed.
#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn listen() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn next(&mut self) {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C; running until killed");
            std::future::pending::<()>().await;
        }
    }
}
