//! The Celery layer around running a job: before the run it resolves the task name, binds
//! positional and keyword arguments and honours `expires`, `eta` and chords; after the run
//! it turns the native acknowledgement into a Celery reply (the `celery-task-meta-<id>`
//! record, the chain's next step, the callbacks). The worker loop calls [`CeleryLayer`] at
//! those two points and is otherwise the same for native and Celery jobs.

use std::time::Duration;

use serde_json::{Map, Value, json};
use tracing::warn;

use super::envelope::{Outgoing, iso_time};
use super::{CHORD_UNSUPPORTED, CeleryConfig, CeleryContext, EXPIRED};
use crate::admin::DeadLetter;
use crate::app::App;
use crate::broker::{Ack, Outcome};
use crate::error::TaskFailure;
use crate::message::{JobMessage, ResultRecord, now_ms};
use crate::task::TaskError;

/// What to do with a Celery job before running it.
#[derive(Debug)]
pub(crate) enum Prepared {
    /// Run it: its task name is resolved and its arguments bound.
    Run,
    /// Do not run it; store this failure.
    Fail(TaskError),
    /// Not due yet: into the delayed set until its `eta`.
    Defer,
}

/// A finished Celery job's acknowledgement, applied atomically by the broker.
#[derive(Debug, Clone)]
pub(crate) struct CeleryReply {
    /// Where the record goes; `None` when the client asked to ignore the result.
    pub(crate) result_key: Option<String>,
    pub(crate) record: String,
    pub(crate) ttl: Duration,
    pub(crate) failed: bool,
    pub(crate) dead_letter: Option<DeadLetter>,
    /// Messages to `LPUSH` (list, envelope): a chain's next step, callbacks.
    pub(crate) pushes: Vec<(String, String)>,
    /// Further records to store (key, record): failures of a failed chain's later steps and
    /// of a chord's body, so no caller waits for them forever.
    pub(crate) extra_records: Vec<(String, String)>,
}

/// The worker's Celery settings, applied around each Celery job.
#[derive(Debug)]
pub(crate) struct CeleryLayer {
    config: CeleryConfig,
}

impl CeleryLayer {
    pub(crate) fn new(config: CeleryConfig) -> Self {
        Self { config }
    }

    pub(crate) fn config(&self) -> &CeleryConfig {
        &self.config
    }

    /// Checks size, expiry, due time and chords, resolves the task name and binds the
    /// arguments. `stored_len` is the size of the message as it was stored.
    pub(crate) fn prepare(&self, app: &App, job: &mut JobMessage, stored_len: usize) -> Prepared {
        let Some(ctx) = job.celery.as_deref_mut() else {
            return Prepared::Run;
        };
        let limit = self.config.max_message_bytes;
        if stored_len > limit {
            return Prepared::Fail(TaskError::new(
                TaskError::MALFORMED_MESSAGE,
                format!(
                    "the message is {stored_len} bytes, over this worker's limit of {limit} bytes"
                ),
            ));
        }
        let now = now_ms();
        if ctx.expires_ms.is_some_and(|expires| expires <= now) {
            return Prepared::Fail(TaskError::new(EXPIRED, "expired"));
        }
        if job.eta_ms.is_some_and(|due| due > now) {
            return Prepared::Defer;
        }
        if ctx.chord.is_some() {
            return Prepared::Fail(TaskError::new(
                CHORD_UNSUPPORTED,
                "chords are not supported by posts-worker; use group(...) and combine the \
                 results in the caller",
            ));
        }
        let task = match resolve(app, &self.config, &job.task) {
            Ok(task) => task,
            Err(e) => return Prepared::Fail(e),
        };
        let names = app.arg_names(&task).unwrap_or_default();
        match bind(std::mem::take(&mut ctx.args), &ctx.kwargs, names) {
            Ok(args) => {
                job.args = args;
                job.task = task;
                Prepared::Run
            }
            Err(e) => Prepared::Fail(e),
        }
    }

    /// The STARTED record of `job` (Celery's `task_track_started`), with its key.
    pub(crate) fn started_record(&self, job: &JobMessage) -> (String, String) {
        let record = json!({
            "status": "STARTED",
            "result": {"pid": std::process::id(), "hostname": self.config.hostname},
            "traceback": null,
            "children": [],
            "date_done": null,
            "task_id": job.id,
        });
        (self.config.result_key(job.id.as_str()), record.to_string())
    }

    /// Turns the native acknowledgement of a Celery job into its Celery reply. Other
    /// outcomes (retry, requeue, an unreadable message) stay as they are.
    pub(crate) fn reply(&self, ack: Ack, run: &RunFacts<'_>) -> Ack {
        let Ack {
            tag,
            outcome,
            report,
        } = ack;
        let (
            Some(ctx),
            Outcome::Finished {
                record,
                dead_letter,
                ..
            },
        ) = (tag.celery(), &outcome)
        else {
            return Ack {
                tag,
                outcome,
                report,
            };
        };
        let reply = match &record {
            ResultRecord::Success { job_id, result, .. } => {
                self.success(ctx, job_id.as_str(), run.queue, run.retries, result)
            }
            ResultRecord::Failure { job_id, error, .. } => {
                self.failure(ctx, job_id.as_str(), run, error, dead_letter.clone())
            }
        };
        Ack {
            tag,
            outcome: Outcome::Celery(Box::new(reply)),
            report,
        }
    }

    fn success(
        &self,
        ctx: &CeleryContext,
        task_id: &str,
        queue: &str,
        retries: u32,
        result: &Value,
    ) -> CeleryReply {
        let mut children = Vec::new();
        if let Some((next, rest)) = ctx.chain.split_last() {
            children.extend(self.child(next, Some(result), rest, ctx, task_id, queue));
        }
        for callback in &ctx.callbacks {
            children.extend(self.child(callback, Some(result), &[], ctx, task_id, queue));
        }
        let record = self.record(
            ctx,
            task_id,
            queue,
            retries,
            ("SUCCESS", result.clone(), None),
            &children,
        );
        self.reply_to(ctx, task_id, record, &children)
    }

    /// A successful reply storing `record` and sending `children`, to adjust for failures.
    fn reply_to(
        &self,
        ctx: &CeleryContext,
        task_id: &str,
        record: String,
        children: &[Outgoing],
    ) -> CeleryReply {
        let origin = &self.config.hostname;
        CeleryReply {
            result_key: (!ctx.ignore_result).then(|| self.config.result_key(task_id)),
            record,
            ttl: self.config.result_expires,
            failed: false,
            dead_letter: None,
            pushes: children
                .iter()
                .map(|c| (c.list(), c.encode(origin)))
                .collect(),
            extra_records: Vec::new(),
        }
    }

    fn failure(
        &self,
        ctx: &CeleryContext,
        task_id: &str,
        run: &RunFacts<'_>,
        failure: &TaskFailure,
        dead_letter: Option<DeadLetter>,
    ) -> CeleryReply {
        let RunFacts {
            queue,
            retries,
            time_limit,
        } = *run;
        let exception = self.config.python_exception(&failure.kind);
        // The exception's arguments as Python's would have them where Celery's are known.
        let (status, exc_message) = match (failure.kind.as_str(), time_limit) {
            (EXPIRED, _) => ("REVOKED", json!(["expired"])),
            (TaskError::UNKNOWN_TASK, _) => ("FAILURE", json!([ctx.name])),
            (TaskError::TIME_LIMIT_EXCEEDED, Some(limit)) => ("FAILURE", json!([seconds(limit)])),
            _ => ("FAILURE", json!([failure.message])),
        };
        let result = json!({
            "exc_type": exception.exc_type,
            "exc_message": exc_message,
            "exc_module": exception.exc_module,
        });
        let traceback = format!(
            "posts-worker (Rust) task {name}[{task_id}] failed\n{kind}: {message}\n",
            name = ctx.name,
            kind = failure.kind,
            message = failure.message,
        );
        let errbacks: Vec<Outgoing> = ctx
            .errbacks
            .iter()
            .filter_map(|errback| {
                self.child(errback, Some(&json!(task_id)), &[], ctx, task_id, queue)
            })
            .collect();
        let record = self.record(
            ctx,
            task_id,
            queue,
            retries,
            (status, result.clone(), Some(traceback.clone())),
            &errbacks,
        );
        // A message refused for its size or shape must not come back inside its record.
        let record = if failure.kind == TaskError::MALFORMED_MESSAGE {
            let mut value: Value = serde_json::from_str(&record).unwrap_or_default();
            value["args"] = json!([]);
            value["kwargs"] = json!({});
            value.to_string()
        } else {
            record
        };
        // Later steps of a failed chain and the body of a chord will never run: they fail
        // too, as Celery marks them, so `chain(...).get()` raises instead of waiting.
        let doomed = ctx
            .chain
            .iter()
            .chain(ctx.chord.iter())
            .filter_map(|sig| sig.get("options")?.get("task_id")?.as_str());
        let extra_records = doomed
            .map(|id| {
                let record = json!({
                    "status": status,
                    "result": result,
                    "traceback": traceback,
                    "children": [],
                    "date_done": iso_time(now_ms()),
                    "task_id": id,
                    "parent_id": task_id,
                });
                (self.config.result_key(id), record.to_string())
            })
            .collect();
        CeleryReply {
            failed: true,
            dead_letter,
            extra_records,
            ..self.reply_to(ctx, task_id, record, &errbacks)
        }
    }

    /// A result record with Celery's fields and the extended ones (`name`, `args`,
    /// `kwargs`, `worker`, `retries`, `queue`).
    fn record(
        &self,
        ctx: &CeleryContext,
        task_id: &str,
        queue: &str,
        retries: u32,
        (status, result, traceback): (&str, Value, Option<String>),
        children: &[Outgoing],
    ) -> String {
        let children: Vec<Value> = children
            .iter()
            .map(|c| json!([[c.id, null], null]))
            .collect();
        let mut record = json!({
            "status": status,
            "result": result,
            "traceback": traceback,
            "children": children,
            "date_done": iso_time(now_ms()),
            "name": ctx.name,
            "args": ctx.args,
            "kwargs": ctx.kwargs,
            "worker": self.config.hostname,
            "retries": retries,
            "queue": queue,
            "task_id": task_id,
        });
        if let Some(parent) = &ctx.parent_id {
            record["parent_id"] = json!(parent);
        }
        record.to_string()
    }

    /// The message that runs `signature` after this task: its arguments are `first`
    /// (this task's result, or its id for an errback) followed by the signature's own,
    /// unless the signature is immutable.
    fn child(
        &self,
        signature: &Value,
        first: Option<&Value>,
        chain: &[Value],
        ctx: &CeleryContext,
        task_id: &str,
        queue: &str,
    ) -> Option<Outgoing> {
        let Some(name) = signature.get("task").and_then(Value::as_str) else {
            warn!(task_id, %signature, "skipping a callback or chain step that names no task");
            return None;
        };
        let options = signature.get("options").cloned().unwrap_or(Value::Null);
        let immutable = signature
            .get("immutable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut args = match signature.get("args") {
            Some(Value::Array(args)) => args.clone(),
            _ => Vec::new(),
        };
        if let (false, Some(first)) = (immutable, first) {
            args.insert(0, first.clone());
        }
        let kwargs = match signature.get("kwargs") {
            Some(Value::Object(kwargs)) => kwargs.clone(),
            _ => Map::new(),
        };
        let target = options
            .get("queue")
            .and_then(Value::as_str)
            .or_else(|| options.get("routing_key").and_then(Value::as_str))
            .unwrap_or(queue);
        let mut child = Outgoing::new(name, args, kwargs, target);
        if let Some(id) = options.get("task_id").and_then(Value::as_str) {
            id.clone_into(&mut child.id);
        }
        child.root_id = ctx.root_id.clone().unwrap_or_else(|| task_id.to_owned());
        child.parent_id = Some(task_id.to_owned());
        child.priority = options
            .get("priority")
            .and_then(Value::as_u64)
            .map_or(0, |p| p.min(9) as u8);
        child.callbacks = options
            .get("link")
            .filter(|l| !l.is_null())
            .cloned()
            .map(as_list);
        child.errbacks = options
            .get("link_error")
            .filter(|l| !l.is_null())
            .cloned()
            .map(as_list);
        child.chain = (!chain.is_empty()).then(|| Value::Array(chain.to_vec()));
        Some(child)
    }
}

/// What the reply needs to know about the run besides its outcome.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunFacts<'a> {
    /// The queue the message came from.
    pub(crate) queue: &'a str,
    /// Celery's `retries` of the message.
    pub(crate) retries: u32,
    /// The time limit the run had.
    pub(crate) time_limit: Option<Duration>,
}

/// A duration in seconds as Python would print the limit: whole seconds as an integer.
fn seconds(limit: Duration) -> Value {
    if limit.subsec_nanos() == 0 {
        json!(limit.as_secs())
    } else {
        json!(limit.as_secs_f64())
    }
}

/// A signature or a list of them, as a list (Celery accepts both for `link`).
fn as_list(value: Value) -> Value {
    match value {
        Value::Array(_) => value,
        one => Value::Array(vec![one]),
    }
}

/// The registered task a Celery name runs (see the module docs of `celery` for the rule).
fn resolve(app: &App, config: &CeleryConfig, name: &str) -> Result<String, TaskError> {
    if app.get(name).is_some() {
        return Ok(name.to_owned());
    }
    if let Some(target) = config.aliased(name) {
        return if app.get(target).is_some() {
            Ok(target.to_owned())
        } else {
            Err(TaskError::new(
                TaskError::UNKNOWN_TASK,
                format!("{name:?} is an alias of {target:?}, which is not registered"),
            ))
        };
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    let candidates: Vec<&str> = app
        .task_names()
        .into_iter()
        .filter(|task| task.rsplit('.').next() == Some(last))
        .collect();
    match candidates.as_slice() {
        [task] => Ok((*task).to_owned()),
        [] => Err(TaskError::unknown_task(name)),
        several => Err(TaskError::new(
            TaskError::UNKNOWN_TASK,
            format!(
                "{name:?} is ambiguous: its last segment {last:?} matches the registered tasks \
                 {}; configure an alias",
                several.join(", ")
            ),
        )),
    }
}

/// Celery's positional and keyword arguments as one argument value: a list when there are
/// no keywords, an object when there are no positionals, else an object keyed by the
/// task's parameter names.
fn bind(args: Vec<Value>, kwargs: &Map<String, Value>, names: &[&str]) -> Result<Value, TaskError> {
    if kwargs.is_empty() {
        return Ok(Value::Array(args));
    }
    if args.is_empty() {
        return Ok(Value::Object(kwargs.clone()));
    }
    if args.len() > names.len() {
        return Err(TaskError::invalid_arguments(format!(
            "takes {} positional arguments ({}) but {} were given",
            names.len(),
            names.join(", "),
            args.len()
        )));
    }
    let mut bound: Map<String, Value> = names.iter().map(|n| (*n).to_owned()).zip(args).collect();
    for (name, value) in kwargs {
        if bound.insert(name.clone(), value.clone()).is_some() {
            return Err(TaskError::invalid_arguments(format!(
                "got multiple values for argument {name:?}"
            )));
        }
    }
    Ok(Value::Object(bound))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::JobId;

    fn app() -> App {
        let mut app = App::new();
        app.task("query_posts_db")
            .args(["query"])
            .handler(|_, (q,): (String,)| async move { Ok(q) });
        app.task("substring_matches_by_platform")
            .args(["match", "from_", "to"])
            .handler(|_, (m, _f, _t): (String, String, String)| async move { Ok(m) });
        app.task("a.score")
            .args([])
            .handler(|_, (): ()| async { Ok(1) });
        app.task("b.score")
            .args([])
            .handler(|_, (): ()| async { Ok(2) });
        app
    }

    #[test]
    fn names_resolve_by_exact_name_alias_and_last_segment() {
        let app = app();
        let config = CeleryConfig::default().alias("legacy.run_sql", "query_posts_db");
        let ok = |name| resolve(&app, &config, name).unwrap();
        assert_eq!(ok("query_posts_db"), "query_posts_db");
        assert_eq!(ok("tasks.query_posts_db"), "query_posts_db");
        assert_eq!(ok("sandbox_worker.tasks.query_posts_db"), "query_posts_db");
        assert_eq!(ok("legacy.run_sql"), "query_posts_db");
        assert_eq!(ok("a.score"), "a.score");
        let ambiguous = resolve(&app, &config, "tasks.score").unwrap_err();
        assert_eq!(ambiguous.kind(), TaskError::UNKNOWN_TASK);
        assert!(
            ambiguous.message().contains("a.score, b.score"),
            "{}",
            ambiguous.message()
        );
        assert_eq!(
            resolve(&app, &config, "tasks.nope").unwrap_err().kind(),
            TaskError::UNKNOWN_TASK
        );
    }

    #[test]
    fn positional_keyword_and_mixed_arguments_bind_by_parameter_name() {
        let names = ["match", "from_", "to"];
        let kw = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            bind(vec![json!("x")], &Map::new(), &names).unwrap(),
            json!(["x"])
        );
        assert_eq!(
            bind(vec![], &kw(json!({"to": 1})), &names).unwrap(),
            json!({"to": 1})
        );
        assert_eq!(
            bind(vec![json!("x")], &kw(json!({"to": 2, "from_": 1})), &names).unwrap(),
            json!({"match": "x", "from_": 1, "to": 2})
        );
        let twice = bind(vec![json!("x")], &kw(json!({"match": "y"})), &names).unwrap_err();
        assert!(
            twice.message().contains("multiple values"),
            "{}",
            twice.message()
        );
        let many = bind(
            vec![json!(1), json!(2), json!(3), json!(4)],
            &kw(json!({"z": 1})),
            &names,
        )
        .unwrap_err();
        assert_eq!(many.kind(), TaskError::INVALID_ARGUMENTS);
    }

    fn job(ctx: CeleryContext) -> JobMessage {
        JobMessage {
            id: JobId::from("id"),
            task: "tasks.query_posts_db".into(),
            args: Value::Null,
            queue: "celery".into(),
            attempt: 0,
            max_retries: None,
            time_limit_ms: None,
            result_ttl_ms: None,
            eta_ms: None,
            created_at_ms: 0,
            celery: Some(Box::new(ctx)),
        }
    }

    fn ctx(args: Vec<Value>) -> CeleryContext {
        CeleryContext {
            name: "tasks.query_posts_db".into(),
            args,
            ..CeleryContext::unreadable()
        }
    }

    #[test]
    fn prepare_expires_defers_and_refuses_chords() {
        let layer = CeleryLayer::new(CeleryConfig::default());
        let app = app();
        let mut ready = job(ctx(vec![json!("SELECT 1")]));
        assert!(matches!(layer.prepare(&app, &mut ready, 10), Prepared::Run));
        assert_eq!(ready.task, "query_posts_db");
        assert_eq!(ready.args, json!(["SELECT 1"]));

        let mut expired = job(CeleryContext {
            expires_ms: Some(1),
            ..ctx(vec![])
        });
        assert!(
            matches!(layer.prepare(&app, &mut expired, 10), Prepared::Fail(e) if e.kind() == EXPIRED)
        );

        let mut later = job(ctx(vec![]));
        later.eta_ms = Some(now_ms() + 60_000);
        assert!(matches!(
            layer.prepare(&app, &mut later, 10),
            Prepared::Defer
        ));

        let mut chord = job(CeleryContext {
            chord: Some(json!({"task": "t"})),
            ..ctx(vec![])
        });
        assert!(
            matches!(layer.prepare(&app, &mut chord, 10), Prepared::Fail(e) if e.kind() == CHORD_UNSUPPORTED)
        );

        let mut big = job(ctx(vec![]));
        let too_big = CeleryConfig::default().max_message_bytes + 1;
        assert!(
            matches!(layer.prepare(&app, &mut big, too_big), Prepared::Fail(e) if e.kind() == TaskError::MALFORMED_MESSAGE)
        );
    }

    #[test]
    fn a_success_continues_the_chain_and_records_its_child() {
        let layer = CeleryLayer::new(CeleryConfig::default());
        let step = |id: &str, immutable: bool| {
            json!({"task": "tasks.add", "args": [10], "kwargs": {}, "immutable": immutable,
                   "options": {"task_id": id}, "subtask_type": null})
        };
        let context = CeleryContext {
            chain: vec![step("third", false), step("second", true)],
            root_id: Some("root".into()),
            ..ctx(vec![json!(1)])
        };
        let reply = layer.success(&context, "first", "celery", 0, &json!(3));
        let record: Value = serde_json::from_str(&reply.record).unwrap();
        assert_eq!(record["status"], "SUCCESS");
        assert_eq!(record["children"], json!([[["second", null], null]]));
        assert_eq!(record["args"], json!([1]));
        assert_eq!(reply.result_key.as_deref(), Some("celery-task-meta-first"));
        let [(list, envelope)] = reply.pushes.as_slice() else {
            panic!("{:?}", reply.pushes)
        };
        assert_eq!(list, "celery");
        let next = crate::celery::envelope::decode(envelope).unwrap();
        assert_eq!(next.id, "second");
        let next_ctx = next.celery.unwrap();
        assert_eq!(
            next_ctx.args,
            vec![json!(10)],
            "immutable: the result is not passed"
        );
        assert_eq!(next_ctx.chain.len(), 1);
        assert_eq!(next_ctx.root_id.as_deref(), Some("root"));
        assert_eq!(next_ctx.parent_id.as_deref(), Some("first"));
    }

    #[test]
    fn a_failure_maps_to_a_python_exception_and_fails_the_rest_of_the_chain() {
        let layer = CeleryLayer::new(CeleryConfig::default().exception(
            "InvalidArgument",
            "ValueError",
            Some("builtins"),
        ));
        let context = CeleryContext {
            chain: vec![json!({"task": "tasks.x", "options": {"task_id": "later"}})],
            errbacks: vec![json!({"task": "tasks.on_error", "args": [], "options": {}})],
            ..ctx(vec![])
        };
        let failure = TaskFailure {
            kind: "InvalidArgument".into(),
            message: "from_ must be before to".into(),
        };
        let run = RunFacts {
            queue: "celery",
            retries: 0,
            time_limit: None,
        };
        let reply = layer.failure(&context, "id", &run, &failure, None);
        let record: Value = serde_json::from_str(&reply.record).unwrap();
        assert_eq!(record["status"], "FAILURE");
        assert_eq!(
            record["result"],
            json!({"exc_type": "ValueError", "exc_message": ["from_ must be before to"], "exc_module": "builtins"})
        );
        assert!(
            record["traceback"]
                .as_str()
                .unwrap()
                .contains("InvalidArgument: from_ must be before to")
        );
        assert_eq!(reply.extra_records.len(), 1);
        assert_eq!(reply.extra_records[0].0, "celery-task-meta-later");
        let errback = crate::celery::envelope::decode(&reply.pushes[0].1).unwrap();
        assert_eq!(errback.celery.unwrap().args, vec![json!("id")]);

        let expired = TaskFailure {
            kind: EXPIRED.into(),
            message: "expired".into(),
        };
        let revoked: Value =
            serde_json::from_str(&layer.failure(&context, "id", &run, &expired, None).record)
                .unwrap();
        assert_eq!(revoked["status"], "REVOKED");
        let over = TaskFailure {
            kind: TaskError::TIME_LIMIT_EXCEEDED.into(),
            message: "the task ran longer than its time limit of 1s".into(),
        };
        let limited = RunFacts {
            time_limit: Some(Duration::from_secs(1)),
            ..run
        };
        let record: Value =
            serde_json::from_str(&layer.failure(&context, "id", &limited, &over, None).record)
                .unwrap();
        assert_eq!(record["result"]["exc_message"], json!([1]));
        assert_eq!(revoked["result"]["exc_type"], "TaskRevokedError");
    }
}
