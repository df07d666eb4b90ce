//! posts-worker: the analytics tasks over the SQLite posts database, ready to register on a
//! [`jobq::App`], and the default schedule.
//!
//! The `posts-worker` binary is a thin command layer over this library; a service that
//! embeds the tasks does the same:
//!
//! ```no_run
//! # async fn embed() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! let env = Arc::new(posts_worker::tasks::PostsEnv::open("sample_data/sample_posts.db".as_ref())?);
//! let mut app = jobq::App::new();
//! posts_worker::tasks::register(&mut app, env);
//! let broker = jobq::Broker::memory("posts")?;
//! let worker = jobq::Worker::new(app, broker.clone(), jobq::WorkerConfig::default());
//! # let _ = worker;
//! # Ok(()) }
//! ```

pub mod schedules;
pub mod tasks;
