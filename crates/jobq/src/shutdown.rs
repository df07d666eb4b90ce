//! SIGINT/SIGTERM handling for processes that run a [`Worker`](crate::Worker).

use tracing::{info, warn};

/// Resolves on the next SIGINT or SIGTERM: start a graceful shutdown.
///
/// Use it as `worker.run_until(jobq::shutdown_signal()).await`. jobq never ends its host
/// process: what a second signal does (e.g. exit at once with status 130, as the
/// `posts-worker` binary does) is the binary's decision; await this function again to see
/// it.
pub async fn shutdown_signal() {
    if let Err(e) = next_signal().await {
        warn!(error = %e, "cannot listen for shutdown signals; running until killed");
        std::future::pending::<()>().await;
    }
    info!("shutdown signal received");
}

#[cfg(unix)]
async fn next_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn next_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}
