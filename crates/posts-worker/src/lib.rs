//! posts-worker: the analytics tasks over the SQLite posts database, ready to register on a
//! [`jobq::App`], the default schedule, and [`Service`], which runs them on a worker with
//! the scheduler beside it until the host says stop.
//!
//! The `posts-worker` binary is a thin command layer over this library (behind the default
//! `cli` feature; with `default-features = false` the library pulls in no command-line
//! crates). A service that embeds the worker runs a [`Service`] with its own shutdown
//! future:
//!
//! ```no_run
//! # async fn embed(shutdown: impl std::future::Future<Output = ()> + Send) -> Result<(), Box<dyn std::error::Error>> {
//! let broker = jobq::Broker::memory("posts")?;
//! let service = posts_worker::Service::open("sample_data/sample_posts.db", broker)?;
//! service.run(shutdown).await?;
//! # Ok(()) }
//! ```
//!
//! or registers the tasks on its own [`jobq::App`] next to its own handlers with
//! [`tasks::register`].

pub mod schedules;
mod service;
pub mod tasks;

pub use service::{Service, ServiceError};
