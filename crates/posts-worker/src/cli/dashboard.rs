//! `posts-worker dashboard`: serves the web dashboard and `/metrics` of the namespace
//! until SIGINT/SIGTERM (see [`posts_dashboard`]).

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use jobq::Broker;
use jobq::monitor::Monitor;
use posts_dashboard::Dashboard;

use super::{BrokerKind, GlobalOptions, signal};

/// How long an announcement of this dashboard lasts; it is renewed at a third of that.
const ANNOUNCE_TTL: Duration = Duration::from_secs(30);

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The address to listen on, `host:port` (port 0 picks a free one). Requeue and purge
    /// are only served on a loopback address, or with --token.
    #[arg(
        long,
        env = "POSTS_WORKER_DASHBOARD_LISTEN",
        default_value = "127.0.0.1:9808"
    )]
    listen: String,
    /// A secret that requeue and purge requests must carry (a form field, or
    /// `Authorization: Bearer <token>`); required to allow them on a non-loopback address.
    #[arg(long, env = "POSTS_WORKER_DASHBOARD_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

pub(super) async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        global.broker != Some(BrokerKind::Memory),
        "--broker memory keeps everything inside one process, so a dashboard cannot see it; use Redis"
    );
    // No PING first: a dashboard started while Redis is down serves a page that says so
    // and fills in once Redis answers.
    let broker = Broker::redis(&global.redis_url, &global.namespace)
        .await
        .with_context(|| format!("cannot use Redis URL {}", global.redis_url))?;
    let monitor = Monitor::new(&broker)?;
    let mut dashboard = Dashboard::new(monitor.clone());
    // An empty token (an unset variable passed through, as compose does) means none.
    if let Some(token) = args.token.filter(|t| !t.is_empty()) {
        dashboard = dashboard.token(token);
    }
    let listening = dashboard.bind(&args.listen).await?;
    let url = listening.url();
    if !listening.mutations_allowed() {
        tracing::warn!(
            "listening on a non-loopback address without --token: requeue and purge are disabled"
        );
    }
    // Announced before the URL is printed, so whoever reads the URL finds it listed.
    if let Err(e) = monitor.announce_dashboard(&url, ANNOUNCE_TTL).await {
        tracing::debug!(error = %e, "could not announce the dashboard");
    }
    println!("dashboard: {url}");
    let _ = std::io::stdout().flush();
    tracing::info!(%url, namespace = %global.namespace, "dashboard serving");
    let announcer = tokio::spawn(announce(monitor.clone(), url.clone()));
    let served = listening.run_until(signal::shutdown_requested()).await;
    announcer.abort();
    if let Err(e) = monitor.withdraw_dashboard(&url).await {
        tracing::debug!(error = %e, "could not withdraw the dashboard's announcement");
    }
    served?;
    Ok(ExitCode::SUCCESS)
}

/// Keeps this dashboard listed for `posts-worker demo` and other readers.
async fn announce(monitor: Monitor, url: String) {
    loop {
        tokio::time::sleep(ANNOUNCE_TTL / 3).await;
        if let Err(e) = monitor.announce_dashboard(&url, ANNOUNCE_TTL).await {
            tracing::debug!(error = %e, "could not announce the dashboard");
        }
    }
}
