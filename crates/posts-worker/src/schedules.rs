//! The worker's default schedule, and how a schedule file replaces it.
//!
//! This is the one place the default schedule is defined. To change it without
//! recompiling, run the worker with `--schedules FILE` (or `POSTS_WORKER_SCHEDULES=FILE`):
//! a TOML file of `[[schedule]]` tables in the same form as [`DEFAULT_SCHEDULES`]. The file
//! replaces the default list entirely, and a schedule that is no longer listed is removed
//! from Redis when the scheduler starts.

use std::path::Path;

use jobq::scheduler::{ScheduleConfig, ScheduleError, ScheduleSpec};

/// The schedule a worker runs when no schedule file is given: every 300 s, the top 10
/// named entities of 2017-05-31 written to `my_worker:scheduled:top_named_entities`.
pub const DEFAULT_SCHEDULES: &str = r#"
[[schedule]]
name = "top_named_entities"
task = "count_top_named_entities"
args = [10, "2017-05-31", "2017-06-01", "my_worker:scheduled:top_named_entities"]
every = "300s"
"#;

/// Loads the schedules from `file`, or the built-in default when `file` is `None`.
pub fn load(file: Option<&Path>) -> Result<Vec<ScheduleSpec>, ScheduleError> {
    let config = match file {
        Some(path) => ScheduleConfig::from_file(path)?,
        None => ScheduleConfig::from_toml(DEFAULT_SCHEDULES)?,
    };
    Ok(config.schedules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_is_the_top_entities_job_every_300_seconds() {
        let schedules = load(None).expect("the built-in schedule parses");
        assert_eq!(schedules.len(), 1);
        assert_eq!(schedules[0].task, "count_top_named_entities");
        assert_eq!(
            schedules[0].args,
            serde_json::json!([
                10,
                "2017-05-31",
                "2017-06-01",
                "my_worker:scheduled:top_named_entities"
            ])
        );
    }
}
