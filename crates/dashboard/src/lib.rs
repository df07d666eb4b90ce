//! A live web dashboard and Prometheus metrics for one jobq namespace, read from Redis:
//! queues, workers, recent jobs, dead letters (requeue, purge), schedules with the last
//! result they wrote, and `/metrics`.
//!
//! It reads what the workers record (see [`jobq::monitor`]) and holds no state of its own,
//! so any number of dashboards can run anywhere, for any number of workers.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let broker = jobq::Broker::redis("redis://127.0.0.1:6379/0", "posts").await?;
//! let dashboard = posts_dashboard::Dashboard::new(jobq::monitor::Monitor::new(&broker)?)
//!     .bind("127.0.0.1:9808")
//!     .await?;
//! println!("dashboard at {}", dashboard.url());
//! dashboard.run_until(jobq::shutdown_signal()).await?;
//! # Ok(()) }
//! ```
//!
//! Routes: `/` (overview), `/jobs` (recent jobs, `?task=` and `?state=` filters),
//! `/jobs/{id}`, `/dead`, `/schedules`, `/metrics`, and the same data as JSON under
//! `/api/overview`, `/api/jobs`, `/api/jobs/{id}`, `/api/dead`, `/api/schedules`.
//! Pages refresh their content every two seconds without a reload (`?partial=1` serves
//! the content alone).
//!
//! Requeueing and purging dead letters (`POST /dead/requeue`, `/dead/purge`, and their
//! `/api/` forms) change the namespace, so they are only served when the dashboard
//! listens on a loopback address or was given a token ([`Dashboard::token`]). With a token,
//! a request must carry it (`Authorization: Bearer <token>`, or a `token` form field) or it
//! gets 401; cross-site form posts are refused whatever the token.

mod actions;
mod api;
mod charts;
mod error;
mod guard;
mod metrics;
mod pages;
mod state;
mod views;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use jobq::monitor::Monitor;
use tokio::net::TcpListener;

pub use self::error::DashboardError;
use self::state::{AppState, Shared};

/// A dashboard for the namespace a [`Monitor`] reads, before it listens.
#[derive(Debug)]
pub struct Dashboard {
    monitor: Monitor,
    token: Option<String>,
    metrics_prefix: String,
}

impl Dashboard {
    /// A dashboard of `monitor`'s namespace. Metric names start with `posts_worker_`.
    pub fn new(monitor: Monitor) -> Self {
        Dashboard {
            monitor,
            token: None,
            metrics_prefix: "posts_worker".to_owned(),
        }
    }

    /// Requires `token` on requests that change the namespace, and allows them on any
    /// listening address.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into()).filter(|t| !t.is_empty());
        self
    }

    /// The prefix of every metric name (default `posts_worker`).
    pub fn metrics_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.metrics_prefix = prefix.into();
        self
    }

    /// The routes, for serving the dashboard from another axum application. Requests that
    /// change the namespace are allowed when `mutations_allowed` (then still checked
    /// against the token, when there is one).
    pub fn router(self, mutations_allowed: bool) -> Router {
        let state: AppState = Arc::new(Shared {
            monitor: self.monitor,
            token: self.token,
            mutations_allowed,
            metrics_prefix: self.metrics_prefix,
        });
        Router::new()
            .route("/", get(pages::overview))
            .route("/jobs", get(pages::jobs))
            .route("/jobs/{id}", get(pages::job))
            .route("/dead", get(pages::dead))
            .route("/dead/requeue", post(actions::requeue_form))
            .route("/dead/purge", post(actions::purge_form))
            .route("/schedules", get(pages::schedules))
            .route("/metrics", get(metrics::metrics))
            .route("/api/overview", get(api::overview))
            .route("/api/jobs", get(api::jobs))
            .route("/api/jobs/{id}", get(api::job))
            .route("/api/dead", get(api::dead))
            .route("/api/dead/requeue", post(actions::requeue_api))
            .route("/api/dead/purge", post(actions::purge_api))
            .route("/api/schedules", get(api::schedules))
            .route("/assets/style.css", get(pages::style))
            .route("/assets/live.js", get(pages::script))
            .fallback(pages::not_found)
            .with_state(state)
    }

    /// Listens on `listen` (`host:port`; port 0 picks a free one). Changes to the namespace
    /// are allowed when the address is a loopback one or a token is set.
    pub async fn bind(self, listen: &str) -> Result<Listening, DashboardError> {
        let addr: SocketAddr = listen.parse().map_err(|e: std::net::AddrParseError| {
            DashboardError::InvalidListen {
                listen: listen.to_owned(),
                reason: e.to_string(),
            }
        })?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| DashboardError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| DashboardError::Bind { addr, source })?;
        let mutations_allowed = addr.ip().is_loopback() || self.token.is_some();
        Ok(Listening {
            listener,
            local,
            mutations_allowed,
            router: self.router(mutations_allowed),
        })
    }
}

/// A dashboard bound to its address, ready to serve.
#[derive(Debug)]
pub struct Listening {
    listener: TcpListener,
    local: SocketAddr,
    mutations_allowed: bool,
    router: Router,
}

impl Listening {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The address as a URL (`http://127.0.0.1:9808/`).
    pub fn url(&self) -> String {
        format!("http://{}/", self.local)
    }

    /// Whether requeue and purge are served (loopback address or a token).
    pub fn mutations_allowed(&self) -> bool {
        self.mutations_allowed
    }

    /// Serves until `shutdown` resolves.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), DashboardError> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(DashboardError::Serve)
    }
}
