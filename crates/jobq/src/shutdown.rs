//! SIGINT/SIGTERM handling for processes that run a [`Worker`](crate::Worker).

use tracing::{info, warn};

/// Resolves on the first SIGINT or SIGTERM (start a graceful shutdown); a second signal
/// exits the process at once with status 130 (in-flight jobs are then recovered by another
/// worker's reaper).
///
/// Use it as `worker.run_until(jobq::shutdown_signal()).await`.
pub async fn shutdown_signal() {
    if let Err(e) = next_signal().await {
        warn!(error = %e, "cannot listen for shutdown signals; running until killed");
        std::future::pending::<()>().await;
    }
    info!("shutdown signal received: finishing in-flight jobs (send it again to exit at once)");
    tokio::spawn(async {
        if next_signal().await.is_ok() {
            warn!("second shutdown signal: exiting now");
            std::process::exit(130);
        }
    });
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
