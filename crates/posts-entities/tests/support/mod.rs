//! Helpers shared by the integration tests and the examples.

pub(crate) mod scoring;
pub(crate) mod word_lists;
