//! The SQLite posts database: schema, bulk loading (ETL), pooled read-only querying and
//! streaming scans.

pub mod etl;
pub mod read;
pub mod schema;
pub mod write;
