//! Helpers shared by the integration tests and the examples.

pub mod scoring;
pub mod word_lists;
