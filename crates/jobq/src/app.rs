//! The task registry: names mapped to handlers, with typed arguments decoded at the edge.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::retry::RetryPolicy;
use crate::task::{TaskContext, TaskError};

/// A handler with its arguments decoded and its output serialized: the form the worker runs.
pub(crate) type ErasedHandler =
    Arc<dyn Fn(TaskContext, Value) -> BoxFuture<'static, Result<Value, TaskError>> + Send + Sync>;

/// One registered task.
#[derive(Clone)]
pub(crate) struct TaskEntry {
    pub(crate) handler: ErasedHandler,
    pub(crate) time_limit: Option<Duration>,
    pub(crate) retry: RetryPolicy,
    /// The parameter names, in order (binding Celery's keyword arguments).
    pub(crate) arg_names: Vec<&'static str>,
}

/// The task registry a [`Worker`](crate::Worker) runs.
#[derive(Clone, Default)]
pub struct App {
    tasks: HashMap<String, TaskEntry>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.tasks.keys().collect();
        names.sort();
        f.debug_struct("App").field("tasks", &names).finish()
    }
}

impl App {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts registering the task `name`; finish with [`TaskBuilder::args`] and then
    /// [`handler`](TaskBuilderWithArgs::handler) or [`blocking`](TaskBuilderWithArgs::blocking).
    /// Registering a name twice replaces the earlier handler.
    pub fn task(&mut self, name: impl Into<String>) -> TaskBuilder<'_> {
        TaskBuilder {
            app: self,
            name: name.into(),
            time_limit: None,
            retry: RetryPolicy::none(),
        }
    }

    /// The registered task names, sorted.
    pub fn task_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tasks.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    pub(crate) fn get(&self, name: &str) -> Option<&TaskEntry> {
        self.tasks.get(name)
    }

    /// The parameter names of task `name`, in order.
    pub(crate) fn arg_names(&self, name: &str) -> Option<&[&'static str]> {
        self.tasks.get(name).map(|entry| entry.arg_names.as_slice())
    }
}

/// Options of a task being registered (see [`App::task`]).
#[must_use = "a task is registered only once a handler is given"]
pub struct TaskBuilder<'a> {
    app: &'a mut App,
    name: String,
    time_limit: Option<Duration>,
    retry: RetryPolicy,
}

impl<'a> TaskBuilder<'a> {
    /// The default time limit of a run (a job's own `time_limit` option overrides it).
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    /// The retry policy (default: [`RetryPolicy::none`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Names the positional arguments; they are used to accept an object of named arguments
    /// and to name the argument in decode errors. The handler's argument tuple must have `N`
    /// elements.
    pub fn args<const N: usize>(self, names: [&'static str; N]) -> TaskBuilderWithArgs<'a, N> {
        TaskBuilderWithArgs {
            builder: self,
            names,
        }
    }
}

/// A task being registered, with its argument names known (see [`TaskBuilder::args`]).
#[must_use = "a task is registered only once a handler is given"]
pub struct TaskBuilderWithArgs<'a, const N: usize> {
    builder: TaskBuilder<'a>,
    names: [&'static str; N],
}

impl<const N: usize> TaskBuilderWithArgs<'_, N> {
    /// The default time limit of a run (a job's own `time_limit` option overrides it).
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.builder.time_limit = Some(limit);
        self
    }

    /// The retry policy (default: [`RetryPolicy::none`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.builder.retry = policy;
        self
    }

    /// Registers an async handler.
    pub fn handler<A, R, F, Fut>(self, handler: F)
    where
        A: FromArgs<N> + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(TaskContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, TaskError>> + Send + 'static,
    {
        let names = self.names;
        let handler = Arc::new(handler);
        let erased: ErasedHandler = Arc::new(move |ctx: TaskContext, args: Value| {
            let decoded = A::from_args(args, &names);
            let handler = Arc::clone(&handler);
            async move {
                let output = handler(ctx, decoded?).await?;
                to_json(&output)
            }
            .boxed()
        });
        let arg_names = names.to_vec();
        self.register(erased, arg_names);
    }

    /// Registers a blocking (synchronous, possibly CPU-heavy) handler; it runs on tokio's
    /// blocking pool so it never stalls fetching, heartbeats or the reaper.
    pub fn blocking<A, R, F>(self, handler: F)
    where
        A: FromArgs<N> + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(&TaskContext, A) -> Result<R, TaskError> + Send + Sync + 'static,
    {
        let names = self.names;
        let handler = Arc::new(handler);
        let erased: ErasedHandler = Arc::new(move |ctx: TaskContext, args: Value| {
            let handler = Arc::clone(&handler);
            async move {
                let args = A::from_args(args, &names)?;
                let joined = tokio::task::spawn_blocking(move || {
                    let output = handler(&ctx, args)?;
                    to_json(&output)
                })
                .await;
                match joined {
                    Ok(result) => result,
                    Err(e) => Err(TaskError::new(
                        TaskError::PANIC,
                        format!("the handler panicked: {e}"),
                    )),
                }
            }
            .boxed()
        });
        let arg_names = names.to_vec();
        self.register(erased, arg_names);
    }

    fn register(self, handler: ErasedHandler, arg_names: Vec<&'static str>) {
        let TaskBuilder {
            app,
            name,
            time_limit,
            retry,
        } = self.builder;
        app.tasks.insert(
            name,
            TaskEntry {
                handler,
                time_limit,
                retry,
                arg_names,
            },
        );
    }
}

fn to_json(output: &impl Serialize) -> Result<Value, TaskError> {
    serde_json::to_value(output).map_err(|e| {
        TaskError::new(
            TaskError::SERIALIZATION,
            format!("the handler's result cannot be serialized: {e}"),
        )
    })
}

/// A tuple of `N` handler arguments decoded from a job's JSON arguments: either an array of
/// `N` positional values (missing trailing values read as `null`, so `Option` parameters may
/// be left out) or an object keyed by the argument names.
pub trait FromArgs<const N: usize>: Sized {
    /// Decodes the arguments; errors are [`TaskError::INVALID_ARGUMENTS`] naming the argument.
    fn from_args(args: Value, names: &[&'static str; N]) -> Result<Self, TaskError>;
}

/// Splits job arguments into exactly `N` values in parameter order; `None` marks an
/// argument the job left out.
fn positional<const N: usize>(
    args: Value,
    names: &[&'static str; N],
) -> Result<Vec<Option<Value>>, TaskError> {
    match args {
        Value::Array(items) => {
            if items.len() > N {
                return Err(TaskError::invalid_arguments(format!(
                    "expected at most {N} arguments ({}), got {}",
                    names.join(", "),
                    items.len()
                )));
            }
            let mut items: Vec<Option<Value>> = items.into_iter().map(Some).collect();
            items.resize(N, None);
            Ok(items)
        }
        Value::Object(mut map) => {
            let values: Vec<Option<Value>> = names.iter().map(|name| map.remove(*name)).collect();
            if let Some(unknown) = map.keys().next() {
                return Err(TaskError::invalid_arguments(format!(
                    "unknown argument {unknown:?}; expected {}",
                    if N == 0 {
                        "no arguments".to_owned()
                    } else {
                        names.join(", ")
                    }
                )));
            }
            Ok(values)
        }
        Value::Null if N == 0 => Ok(Vec::new()),
        other => Err(TaskError::invalid_arguments(format!(
            "arguments must be a JSON array or object, got {}",
            json_type(&other)
        ))),
    }
}

/// Decodes argument `index`; a left-out argument decodes as `null`, so only `Option`
/// parameters may be left out.
fn decode_one<T: DeserializeOwned>(
    value: Option<Value>,
    index: usize,
    names: &[&'static str],
) -> Result<T, TaskError> {
    let name = names[index];
    match value {
        Some(value) => serde_json::from_value(value).map_err(|e| {
            TaskError::invalid_arguments(format!("argument {name:?} (position {index}): {e}"))
        }),
        None => serde_json::from_value(Value::Null).map_err(|_| {
            TaskError::invalid_arguments(format!(
                "missing argument {name:?} (position {index}); expected {} ({})",
                names.len(),
                names.join(", ")
            ))
        }),
    }
}

pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl FromArgs<0> for () {
    fn from_args(args: Value, names: &[&'static str; 0]) -> Result<Self, TaskError> {
        positional(args, names).map(|_| ())
    }
}

macro_rules! impl_from_args {
    ($n:literal; $($t:ident $i:tt),+) => {
        impl<$($t: DeserializeOwned),+> FromArgs<$n> for ($($t,)+) {
            fn from_args(args: Value, names: &[&'static str; $n]) -> Result<Self, TaskError> {
                let mut values = positional(args, names)?.into_iter();
                Ok(($(
                    decode_one::<$t>(values.next().flatten(), $i, names)?,
                )+))
            }
        }
    };
}

impl_from_args!(1; A 0);
impl_from_args!(2; A 0, B 1);
impl_from_args!(3; A 0, B 1, C 2);
impl_from_args!(4; A 0, B 1, C 2, D 3);
impl_from_args!(5; A 0, B 1, C 2, D 3, E 4);
impl_from_args!(6; A 0, B 1, C 2, D 3, E 4, F 5);
impl_from_args!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
impl_from_args!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn positional_and_named_arguments_decode_to_the_same_tuple() {
        let names = ["match", "from_", "to"];
        let a: (String, i64, Option<i64>) =
            FromArgs::from_args(json!(["x", 1, 2]), &names).unwrap();
        let b: (String, i64, Option<i64>) =
            FromArgs::from_args(json!({"match": "x", "from_": 1, "to": 2}), &names).unwrap();
        assert_eq!(a, b);
        let c: (String, i64, Option<i64>) = FromArgs::from_args(json!(["x", 1]), &names).unwrap();
        assert_eq!(c.2, None);
    }

    #[test]
    fn decode_errors_name_the_argument() {
        let names = ["match", "limit"];
        let err = <(String, u32)>::from_args(json!(["x", "ten"]), &names).unwrap_err();
        assert_eq!(err.kind(), TaskError::INVALID_ARGUMENTS);
        assert!(err.message().contains("\"limit\""), "{}", err.message());
        let err = <(String, u32)>::from_args(json!({"match": "x", "lmit": 3}), &names).unwrap_err();
        assert!(err.message().contains("lmit"), "{}", err.message());
        let err = <(String, u32)>::from_args(json!(["x", 1, 2]), &names).unwrap_err();
        assert!(err.message().contains("at most 2"), "{}", err.message());
        let err = <(String, u32)>::from_args(json!("x"), &names).unwrap_err();
        assert!(err.message().contains("a string"), "{}", err.message());
        let err = <(String, u32)>::from_args(json!(["x"]), &names).unwrap_err();
        assert!(
            err.message().contains("missing argument \"limit\""),
            "{}",
            err.message()
        );
        let err = <(String, u32)>::from_args(json!({"limit": 3}), &names).unwrap_err();
        assert!(
            err.message().contains("missing argument \"match\""),
            "{}",
            err.message()
        );
    }
}
