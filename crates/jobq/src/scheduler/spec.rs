//! Schedule definitions, in code ([`ScheduleSpec::every`], [`ScheduleSpec::cron`]) or in a
//! TOML file of `[[schedule]]` tables ([`ScheduleConfig`]).

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ScheduleError;
use super::timing::{Timing, format_duration, parse_cron, parse_duration};

/// What to do at start about ticks missed while no scheduler ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Run once at start for all the missed ticks together (the default).
    #[default]
    Once,
    /// Do not run; wait for the next tick.
    Skip,
}

/// One schedule: which task to send with which arguments, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSpec {
    /// Unique name; identifies the schedule in the store and in its per-tick claims.
    pub name: String,
    /// The task to send.
    pub task: String,
    /// Its arguments: a JSON array (positional) or object (named).
    pub args: Value,
    /// When it fires.
    pub timing: Timing,
    /// The queue to send to (default: the client's default queue).
    pub queue: Option<String>,
    /// What to do about ticks missed while nothing ran.
    pub catch_up: CatchUp,
}

impl ScheduleSpec {
    /// A schedule firing every `every`, at multiples of it since the Unix epoch.
    pub fn every(
        name: impl Into<String>,
        task: impl Into<String>,
        args: Value,
        every: Duration,
    ) -> Result<Self, ScheduleError> {
        let spec = ScheduleSpec {
            name: name.into(),
            task: task.into(),
            args,
            timing: Timing::Every(every),
            queue: None,
            catch_up: CatchUp::Once,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// A schedule firing at the times of a 5-field (`*/5 * * * *`) or 6-field (seconds
    /// first) cron expression, in UTC.
    pub fn cron(
        name: impl Into<String>,
        task: impl Into<String>,
        args: Value,
        expression: &str,
    ) -> Result<Self, ScheduleError> {
        let name = name.into();
        let cron = parse_cron(expression).map_err(|problem| ScheduleError::InvalidCron {
            schedule: name.clone(),
            expression: expression.to_owned(),
            field: problem.field,
            reason: problem.reason,
        })?;
        let spec = ScheduleSpec {
            name,
            task: task.into(),
            args,
            timing: Timing::Cron(cron),
            queue: None,
            catch_up: CatchUp::Once,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Sends to `queue` instead of the default queue.
    pub fn on_queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Sets what happens to ticks missed while nothing ran.
    pub fn with_catch_up(mut self, catch_up: CatchUp) -> Self {
        self.catch_up = catch_up;
        self
    }

    /// Checks every field (the fields are public, so specs built by hand are checked again
    /// when a scheduler stores them).
    pub fn validate(&self) -> Result<(), ScheduleError> {
        let invalid = |field: &'static str, reason: &str| ScheduleError::InvalidField {
            schedule: self.name.clone(),
            field,
            reason: reason.to_owned(),
        };
        if self.name.trim().is_empty() {
            return Err(invalid("name", "it must not be empty"));
        }
        if self.name.chars().any(char::is_control) {
            return Err(invalid("name", "it must not contain control characters"));
        }
        if self.task.trim().is_empty() {
            return Err(invalid("task", "it must not be empty"));
        }
        if !matches!(self.args, Value::Array(_) | Value::Object(_)) {
            return Err(invalid(
                "args",
                "it must be an array of positional arguments or a table of named ones",
            ));
        }
        if let Timing::Every(every) = self.timing
            && every.as_millis() == 0
        {
            return Err(invalid("every", "it must be longer than zero"));
        }
        if self.queue.as_deref().is_some_and(|q| q.trim().is_empty()) {
            return Err(invalid("queue", "it must not be empty"));
        }
        Ok(())
    }
}

/// A set of schedules, usually read from a TOML file:
///
/// ```toml
/// [[schedule]]
/// name = "top_named_entities"
/// task = "count_top_named_entities"
/// args = [10, "2017-05-31", "2017-06-01", "my_worker:scheduled:top_named_entities"]
/// every = "300s"            # or: cron = "*/5 * * * *" (5 or 6 fields, UTC)
/// queue = "default"         # optional
/// catch_up = "once"         # optional: "once" (default) or "skip"
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleConfig {
    /// The schedules, in file order; names are unique.
    pub schedules: Vec<ScheduleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    schedule: Vec<RawSchedule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    name: String,
    task: String,
    #[serde(default = "empty_args")]
    args: Value,
    every: Option<RawEvery>,
    cron: Option<String>,
    queue: Option<String>,
    #[serde(default)]
    catch_up: CatchUp,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawEvery {
    Seconds(u64),
    Text(String),
}

fn empty_args() -> Value {
    Value::Array(Vec::new())
}

impl ScheduleConfig {
    /// Reads a TOML file of `[[schedule]]` tables.
    pub fn from_file(path: &Path) -> Result<Self, ScheduleError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScheduleError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|error| match error {
            ScheduleError::Toml {
                path: None,
                message,
            } => ScheduleError::Toml {
                path: Some(path.to_owned()),
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text of `[[schedule]]` tables.
    pub fn from_toml(text: &str) -> Result<Self, ScheduleError> {
        Self::parse(text)
    }

    fn parse(text: &str) -> Result<Self, ScheduleError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ScheduleError::Toml {
            path: None,
            message: e.to_string(),
        })?;
        let mut names = HashSet::new();
        let mut schedules = Vec::with_capacity(raw.schedule.len());
        for raw in raw.schedule {
            let spec = raw.into_spec()?;
            if !names.insert(spec.name.clone()) {
                return Err(ScheduleError::DuplicateName(spec.name));
            }
            schedules.push(spec);
        }
        Ok(ScheduleConfig { schedules })
    }
}

impl RawSchedule {
    fn into_spec(self) -> Result<ScheduleSpec, ScheduleError> {
        let invalid = |field: &'static str, reason: String| ScheduleError::InvalidField {
            schedule: self.name.clone(),
            field,
            reason,
        };
        let spec = match (&self.every, &self.cron) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "every",
                    "give either `every` or `cron`, not both".into(),
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "every",
                    "one of `every` (e.g. \"300s\") or `cron` (e.g. \"*/5 * * * *\") is required"
                        .into(),
                ));
            }
            (Some(every), None) => {
                let every = match every {
                    RawEvery::Seconds(seconds) => Duration::from_secs(*seconds),
                    RawEvery::Text(text) => {
                        parse_duration(text).map_err(|reason| invalid("every", reason))?
                    }
                };
                ScheduleSpec::every(&self.name, &self.task, self.args.clone(), every)?
            }
            (None, Some(cron)) => {
                ScheduleSpec::cron(&self.name, &self.task, self.args.clone(), cron)?
            }
        };
        let spec = spec.with_catch_up(self.catch_up);
        let spec = match self.queue {
            Some(queue) => spec.on_queue(queue),
            None => spec,
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// The stored form of a definition (in the `{ns}:schedules` hash, one JSON value per name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredDefinition {
    pub(crate) name: String,
    pub(crate) task: String,
    pub(crate) args: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) every: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) queue: Option<String>,
    #[serde(default)]
    pub(crate) catch_up: CatchUp,
    /// Whether the definition came from a scheduler's configuration (and is removed when a
    /// configuration without it starts) or was added at runtime (and stays until removed).
    #[serde(default)]
    pub(crate) from_config: bool,
}

impl StoredDefinition {
    pub(crate) fn new(spec: &ScheduleSpec, from_config: bool) -> Self {
        let (every, cron) = match &spec.timing {
            Timing::Every(every) => (Some(format_duration(*every)), None),
            Timing::Cron(cron) => (None, Some(cron.as_str().to_owned())),
        };
        StoredDefinition {
            name: spec.name.clone(),
            task: spec.task.clone(),
            args: spec.args.clone(),
            every,
            cron,
            queue: spec.queue.clone(),
            catch_up: spec.catch_up,
            from_config,
        }
    }

    pub(crate) fn to_spec(&self) -> Result<ScheduleSpec, ScheduleError> {
        let corrupt = |reason: String| ScheduleError::Corrupt {
            name: self.name.clone(),
            reason,
        };
        let spec = match (&self.every, &self.cron) {
            (Some(every), None) => {
                let every = parse_duration(every).map_err(corrupt)?;
                ScheduleSpec::every(&self.name, &self.task, self.args.clone(), every)?
            }
            (None, Some(cron)) => {
                ScheduleSpec::cron(&self.name, &self.task, self.args.clone(), cron)?
            }
            _ => {
                return Err(corrupt(
                    "exactly one of `every` and `cron` must be set".into(),
                ));
            }
        };
        let spec = spec.with_catch_up(self.catch_up);
        Ok(match &self.queue {
            Some(queue) => spec.on_queue(queue.clone()),
            None => spec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_config_file_parses_into_specs() {
        let config = ScheduleConfig::from_toml(
            r#"
            [[schedule]]
            name = "top"
            task = "count_top_named_entities"
            args = [10, "2017-05-31", "2017-06-01", "key"]
            every = "300s"

            [[schedule]]
            name = "nightly"
            task = "cleanup"
            cron = "0 3 * * *"
            queue = "slow"
            catch_up = "skip"
            "#,
        )
        .expect("valid config");
        assert_eq!(config.schedules.len(), 2);
        let top = &config.schedules[0];
        assert_eq!(top.args, json!([10, "2017-05-31", "2017-06-01", "key"]));
        assert_eq!(top.timing, Timing::Every(Duration::from_secs(300)));
        assert_eq!(top.catch_up, CatchUp::Once);
        let nightly = &config.schedules[1];
        assert_eq!(nightly.args, json!([]));
        assert_eq!(nightly.timing.to_string(), "cron 0 3 * * *");
        assert_eq!(nightly.queue.as_deref(), Some("slow"));
        assert_eq!(nightly.catch_up, CatchUp::Skip);
    }

    fn field_of(text: &str) -> (String, &'static str) {
        match ScheduleConfig::from_toml(text) {
            Err(ScheduleError::InvalidField {
                schedule, field, ..
            }) => (schedule, field),
            Err(ScheduleError::InvalidCron { schedule, .. }) => (schedule, "cron"),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn bad_fields_are_named() {
        let base = "[[schedule]]\nname = \"s\"\ntask = \"t\"\n";
        assert_eq!(
            field_of(&format!("{base}every = \"5 parsecs\"")),
            ("s".into(), "every")
        );
        assert_eq!(field_of(&format!("{base}every = 0")), ("s".into(), "every"));
        assert_eq!(field_of(base), ("s".into(), "every"));
        assert_eq!(
            field_of(&format!("{base}every = \"1s\"\ncron = \"* * * * *\"")),
            ("s".into(), "every")
        );
        assert_eq!(
            field_of(&format!("{base}cron = \"61 * * * *\"")),
            ("s".into(), "cron")
        );
        assert_eq!(
            field_of(&format!("{base}every = \"1s\"\nargs = 3")),
            ("s".into(), "args")
        );
        assert_eq!(
            field_of(&format!("{base}every = \"1s\"\nqueue = \"\"")),
            ("s".into(), "queue")
        );
        assert_eq!(
            field_of("[[schedule]]\nname = \"\"\ntask = \"t\"\nevery = \"1s\""),
            ("".into(), "name")
        );
    }

    #[test]
    fn cron_errors_in_files_name_the_cron_field() {
        let error = ScheduleConfig::from_toml(
            "[[schedule]]\nname = \"s\"\ntask = \"t\"\ncron = \"0 25 * * *\"",
        )
        .expect_err("hour 25");
        match error {
            ScheduleError::InvalidCron { field, .. } => assert_eq!(field, Some("hours")),
            other => panic!("expected InvalidCron, got {other:?}"),
        }
    }

    #[test]
    fn unknown_keys_duplicates_and_bad_toml_are_refused() {
        let unknown = ScheduleConfig::from_toml(
            "[[schedule]]\nname = \"s\"\ntask = \"t\"\nevery = \"1s\"\nevry = 3",
        );
        assert!(
            matches!(unknown, Err(ScheduleError::Toml { .. })),
            "{unknown:?}"
        );
        let table_typo = ScheduleConfig::from_toml("[[schedules]]\nname = \"s\"");
        assert!(
            matches!(table_typo, Err(ScheduleError::Toml { .. })),
            "{table_typo:?}"
        );
        let twice = ScheduleConfig::from_toml(
            "[[schedule]]\nname = \"s\"\ntask = \"t\"\nevery = \"1s\"\n\
             [[schedule]]\nname = \"s\"\ntask = \"u\"\nevery = \"2s\"",
        );
        assert!(
            matches!(twice, Err(ScheduleError::DuplicateName(ref n)) if n == "s"),
            "{twice:?}"
        );
    }

    #[test]
    fn config_files_are_read_and_missing_ones_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("schedules.toml");
        std::fs::write(
            &path,
            "[[schedule]]\nname = \"s\"\ntask = \"t\"\ncron = \"*/5 * * * *\"",
        )
        .expect("write");
        let config = ScheduleConfig::from_file(&path).expect("valid file");
        assert_eq!(config.schedules[0].name, "s");
        let missing = ScheduleConfig::from_file(&dir.path().join("nope.toml"));
        assert!(
            matches!(missing, Err(ScheduleError::ReadFile { .. })),
            "{missing:?}"
        );
    }

    #[test]
    fn stored_definitions_round_trip() {
        let spec = ScheduleSpec::cron("n", "t", json!({"a": 1}), "*/5 * * * * *")
            .expect("valid")
            .on_queue("q")
            .with_catch_up(CatchUp::Skip);
        let stored = StoredDefinition::new(&spec, true);
        assert_eq!(stored.to_spec().expect("decodes"), spec);
        let every =
            ScheduleSpec::every("e", "t", json!([]), Duration::from_millis(1500)).expect("valid");
        assert_eq!(
            StoredDefinition::new(&every, false)
                .to_spec()
                .expect("decodes"),
            every
        );
    }
}
