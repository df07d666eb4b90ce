//! Celery protocol v2 messages as kombu's Redis transport stores them: one JSON envelope
//! per list element, the body (`[args, kwargs, embed]`, usually base64) inside it.
//!
//! [`decode`] turns a stored envelope into a [`JobMessage`] carrying a [`CeleryContext`],
//! or a [`Malformed`] that still names the task id when one can be read (so the caller gets
//! a FAILURE instead of a timeout). [`Outgoing::encode`] builds the full envelope a Python
//! worker accepts (unique `delivery_tag`, `delivery_info`, a 3-element body).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::CeleryContext;
use crate::broker::wire::Malformed;
use crate::message::{JobId, JobMessage, now_ms};

/// kombu's separator between a queue name and its priority bucket (`celery\x06\x163`).
pub(crate) const PRIORITY_SEP: &str = "\x06\x16";

/// The lists of `queue` in the order Python workers read them: bucket 0 (priorities 0–2,
/// the highest on Redis) first, then the buckets of priorities 3–5, 6–8 and 9.
pub(crate) fn priority_lists(queue: &str) -> [String; 4] {
    [
        queue.to_owned(),
        format!("{queue}{PRIORITY_SEP}3"),
        format!("{queue}{PRIORITY_SEP}6"),
        format!("{queue}{PRIORITY_SEP}9"),
    ]
}

/// The list a message of `priority` goes to (kombu: `PRIORITY_STEPS = [0, 3, 6, 9]`).
pub(crate) fn list_for_priority(queue: &str, priority: u8) -> String {
    match priority {
        0..=2 => queue.to_owned(),
        3..=5 => format!("{queue}{PRIORITY_SEP}3"),
        6..=8 => format!("{queue}{PRIORITY_SEP}6"),
        _ => format!("{queue}{PRIORITY_SEP}9"),
    }
}

/// Whether a stored value looks like a kombu envelope rather than a native job message.
/// Cheap: native messages always start with their `id`.
pub(crate) fn looks_like_envelope(stored: &str) -> bool {
    !stored.starts_with("{\"id\"") && stored.contains("\"headers\"") && stored.contains("\"body\"")
}

#[derive(Deserialize)]
struct Envelope {
    body: Value,
    #[serde(rename = "content-type", default)]
    content_type: Option<String>,
    #[serde(rename = "content-encoding", default)]
    content_encoding: Option<String>,
    headers: Headers,
    #[serde(default)]
    properties: Properties,
}

#[derive(Deserialize)]
struct Headers {
    #[serde(default)]
    task: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    eta: Option<String>,
    #[serde(default)]
    expires: Option<String>,
    #[serde(default)]
    retries: Option<u32>,
    #[serde(default)]
    timelimit: Option<Value>,
    #[serde(default)]
    root_id: Option<String>,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    ignore_result: Option<bool>,
}

#[derive(Deserialize, Default)]
struct Properties {
    #[serde(default)]
    body_encoding: Option<String>,
    #[serde(default)]
    delivery_info: Option<DeliveryInfo>,
}

#[derive(Deserialize)]
struct DeliveryInfo {
    #[serde(default)]
    routing_key: Option<String>,
}

/// Decodes a stored envelope.
pub(crate) fn decode(stored: &str) -> Result<JobMessage, Malformed> {
    let refuse = |id: Option<JobId>, reason: String| Malformed { id, reason };
    let envelope: Envelope = match serde_json::from_str(stored) {
        Ok(envelope) => envelope,
        Err(e) => {
            return Err(refuse(
                id_of(stored),
                format!("the message is not a Celery protocol v2 envelope: {e}"),
            ));
        }
    };
    let headers = envelope.headers;
    let id = headers
        .id
        .filter(|id| !id.is_empty())
        .map(JobId::from)
        .ok_or_else(|| refuse(None, "the Celery message has no `id` header".to_owned()))?;
    let fail = |reason: String| refuse(Some(id.clone()), reason);
    let task = headers
        .task
        .filter(|t| !t.is_empty())
        .ok_or_else(|| fail("the Celery message has no `task` header".to_owned()))?;
    if let Some(ct) = envelope.content_type.as_deref()
        && ct != "application/json"
    {
        return Err(fail(format!(
            "content-type {ct:?} is not supported: posts-worker reads JSON messages only \
             (task_serializer='json', Celery's default)"
        )));
    }
    if let Some(enc) = envelope.content_encoding.as_deref()
        && !enc.eq_ignore_ascii_case("utf-8")
    {
        return Err(fail(format!(
            "content-encoding {enc:?} is not supported (expected utf-8)"
        )));
    }
    let Value::String(body) = envelope.body else {
        return Err(fail("the message body is not a string".to_owned()));
    };
    let body = match envelope.properties.body_encoding.as_deref() {
        Some("base64") => {
            let bytes = BASE64
                .decode(body.as_bytes())
                .map_err(|e| fail(format!("the base64 body cannot be decoded: {e}")))?;
            String::from_utf8(bytes)
                .map_err(|e| fail(format!("the decoded body is not UTF-8: {e}")))?
        }
        None | Some("utf-8") => body,
        Some(other) => return Err(fail(format!("body_encoding {other:?} is not supported"))),
    };
    let (args, kwargs, embed) = decode_body(&body).map_err(&fail)?;
    let eta_ms = headers
        .eta
        .as_deref()
        .map(|t| parse_time(t).map_err(|e| fail(format!("header `eta`: {e}"))))
        .transpose()?;
    let expires_ms = headers
        .expires
        .as_deref()
        .map(|t| parse_time(t).map_err(|e| fail(format!("header `expires`: {e}"))))
        .transpose()?;
    let time_limit_ms = headers
        .timelimit
        .as_ref()
        .map(time_limit_ms)
        .transpose()
        .map_err(|e| fail(format!("header `timelimit`: {e}")))?
        .flatten();
    let queue = envelope
        .properties
        .delivery_info
        .and_then(|d| d.routing_key)
        .filter(|q| !q.is_empty())
        .unwrap_or_else(|| super::DEFAULT_QUEUE.to_owned());
    let signatures = |field: &str| -> Result<Vec<Value>, Malformed> {
        match embed.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items.clone()),
            Some(other) => Err(fail(format!(
                "embed `{field}` must be a list of signatures, got {other}"
            ))),
        }
    };
    let context = CeleryContext {
        name: task.clone(),
        args,
        kwargs,
        root_id: headers.root_id,
        parent_id: headers.parent_id,
        ignore_result: headers.ignore_result.unwrap_or(false),
        expires_ms,
        callbacks: signatures("callbacks")?,
        errbacks: signatures("errbacks")?,
        chain: signatures("chain")?,
        chord: embed.get("chord").filter(|c| !c.is_null()).cloned(),
    };
    Ok(JobMessage {
        id,
        task,
        // Bound from the context's args and kwargs once the task is known.
        args: Value::Null,
        queue,
        attempt: headers.retries.unwrap_or(0),
        max_retries: None,
        time_limit_ms,
        result_ttl_ms: None,
        eta_ms: eta_ms.filter(|&due| due > now_ms()),
        created_at_ms: now_ms(),
        celery: Some(Box::new(context)),
    })
}

/// The id of an envelope that could not be decoded as a whole, when it can still be read.
fn id_of(stored: &str) -> Option<JobId> {
    let value: Value = serde_json::from_str(stored).ok()?;
    let id = value.get("headers")?.get("id")?.as_str()?;
    (!id.is_empty()).then(|| JobId::from(id))
}

type Body = (Vec<Value>, Map<String, Value>, Map<String, Value>);

/// Decodes `[args, kwargs, embed]`, resolving kombu's JSON type tags.
fn decode_body(body: &str) -> Result<Body, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| {
        if has_non_finite_number(body) {
            format!(
                "the body holds NaN or Infinity, which JSON cannot carry and posts-worker does \
                 not accept as an argument ({e})"
            )
        } else {
            format!("the body is not valid JSON: {e}")
        }
    })?;
    let Value::Array(parts) = value else {
        return Err("the body must be a list [args, kwargs, embed]".to_owned());
    };
    let [args, kwargs, embed]: [Value; 3] = parts.try_into().map_err(|parts: Vec<Value>| {
        format!(
            "the body must be a list of 3 elements [args, kwargs, embed], got {}",
            parts.len()
        )
    })?;
    let Value::Array(args) = untag(args)? else {
        return Err("the body's args must be a list".to_owned());
    };
    let Value::Object(kwargs) = untag(kwargs)? else {
        return Err("the body's kwargs must be a dict".to_owned());
    };
    let embed = match embed {
        Value::Object(embed) => embed,
        Value::Null => Map::new(),
        _ => return Err("the body's embed must be a dict".to_owned()),
    };
    Ok((args, kwargs, embed))
}

/// Replaces kombu's `{"__type__": …, "__value__": …}` tags by plain JSON: datetimes by their
/// ISO text with a space between date and time (SQLite's form:
/// `2017-05-31 00:00:00[.ffffff][+HH:MM]`), dates and times by their ISO text, decimals by
/// numbers, UUIDs by their text.
fn untag(value: Value) -> Result<Value, String> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(untag)
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(map)
            if map.len() == 2 && map.contains_key("__type__") && map.contains_key("__value__") =>
        {
            let kind = map
                .get("__type__")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let inner = &map["__value__"];
            match (kind, inner) {
                ("datetime", Value::String(text)) => Ok(Value::String(text.replacen('T', " ", 1))),
                ("date" | "time" | "bytes", Value::String(text)) => Ok(Value::String(text.clone())),
                ("decimal", Value::String(text)) => text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| format!("the decimal {text:?} is not a finite number")),
                ("uuid", Value::String(text)) => Ok(Value::String(text.clone())),
                ("uuid", Value::Object(uuid)) => uuid
                    .get("hex")
                    .and_then(Value::as_str)
                    .and_then(|hex| uuid::Uuid::parse_str(hex).ok())
                    .map(|u| Value::String(u.to_string()))
                    .ok_or_else(|| "a tagged uuid without a valid `hex`".to_owned()),
                _ => Err(format!(
                    "the kombu JSON type {kind:?} with value {inner} is not supported"
                )),
            }
        }
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| untag(v).map(|v| (k, v)))
            .collect::<Result<_, _>>()
            .map(Value::Object),
        other => Ok(other),
    }
}

/// Whether `text` has a bare `NaN` or `Infinity` outside strings (Python's json emits them).
fn has_non_finite_number(text: &str) -> bool {
    non_finite_as_null(text).is_some()
}

/// `text` with every bare `NaN`, `Infinity` and `-Infinity` outside strings replaced by
/// `null`, or `None` when it has none.
fn non_finite_as_null(text: &str) -> Option<String> {
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut in_string = false;
    let mut escaped = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if let Some(token) = [&b"NaN"[..], b"Infinity", b"-Infinity"]
            .into_iter()
            .find(|token| bytes[i..].starts_with(token))
        {
            let buffer = out.get_or_insert_with(String::new);
            buffer.push_str(&text[copied..i]);
            buffer.push_str("null");
            i += token.len();
            copied = i;
            continue;
        }
        i += 1;
    }
    out.map(|mut buffer| {
        buffer.push_str(&text[copied..]);
        buffer
    })
}

/// Parses a result record as Python's json writes it: bare `NaN`/`Infinity` read as
/// `null`, kombu's type tags resolved.
pub(crate) fn parse_record_text(text: &str) -> Result<Value, serde_json::Error> {
    let value: Value = match non_finite_as_null(text) {
        Some(cleaned) => serde_json::from_str(&cleaned)?,
        None => serde_json::from_str(text)?,
    };
    Ok(untag(value.clone()).unwrap_or(value))
}

/// An ISO-8601 instant in ms since the epoch; one without an offset is taken as UTC.
fn parse_time(text: &str) -> Result<u64, String> {
    let instant = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        })
        .map_err(|e| format!("{text:?} is not an ISO-8601 time: {e}"))?;
    Ok(u64::try_from(instant.timestamp_millis()).unwrap_or(0))
}

/// The smaller of the hard and soft limits of `[hard, soft]` (seconds, int or float).
fn time_limit_ms(value: &Value) -> Result<Option<u64>, String> {
    let Value::Array(pair) = value else {
        return if value.is_null() {
            Ok(None)
        } else {
            Err(format!("expected [hard, soft], got {value}"))
        };
    };
    let mut limit: Option<u64> = None;
    for item in pair {
        match item {
            Value::Null => {}
            Value::Number(n) => match n.as_f64() {
                Some(secs) if secs.is_finite() && secs > 0.0 => {
                    let ms = (secs * 1000.0).ceil() as u64;
                    limit = Some(limit.map_or(ms, |l| l.min(ms)));
                }
                _ => {
                    return Err(format!(
                        "a limit must be a positive number of seconds, got {n}"
                    ));
                }
            },
            other => return Err(format!("a limit must be a number or null, got {other}")),
        }
    }
    Ok(limit)
}

/// A task to send in Celery's format (to a Python worker, or a chain's next step).
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) args: Vec<Value>,
    pub(crate) kwargs: Map<String, Value>,
    pub(crate) queue: String,
    pub(crate) priority: u8,
    pub(crate) root_id: String,
    pub(crate) parent_id: Option<String>,
    pub(crate) eta_ms: Option<u64>,
    pub(crate) expires_ms: Option<u64>,
    pub(crate) time_limit: [Option<f64>; 2],
    pub(crate) callbacks: Option<Value>,
    pub(crate) errbacks: Option<Value>,
    pub(crate) chain: Option<Value>,
    pub(crate) ignore_result: bool,
}

impl Outgoing {
    /// A first attempt of `name` on `queue` with a fresh id and no options.
    pub(crate) fn new(
        name: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
        queue: &str,
    ) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        Self {
            root_id: id.clone(),
            id,
            name: name.to_owned(),
            args,
            kwargs,
            queue: queue.to_owned(),
            priority: 0,
            parent_id: None,
            eta_ms: None,
            expires_ms: None,
            time_limit: [None, None],
            callbacks: None,
            errbacks: None,
            chain: None,
            ignore_result: false,
        }
    }

    /// The list this message is pushed onto (`LPUSH`).
    pub(crate) fn list(&self) -> String {
        list_for_priority(&self.queue, self.priority)
    }

    /// The full envelope, as `app.send_task` would produce it.
    pub(crate) fn encode(&self, origin: &str) -> String {
        let body = json!([
            self.args,
            self.kwargs,
            {
                "callbacks": self.callbacks,
                "errbacks": self.errbacks,
                "chain": self.chain,
                "chord": null,
            }
        ]);
        let time = |ms: Option<u64>| ms.map(iso_time);
        let envelope = json!({
            "body": BASE64.encode(body.to_string()),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "rs",
                "task": self.name,
                "id": self.id,
                "shadow": null,
                "eta": time(self.eta_ms),
                "expires": time(self.expires_ms),
                "group": null,
                "group_index": null,
                "retries": 0,
                "timelimit": self.time_limit,
                "root_id": self.root_id,
                "parent_id": self.parent_id,
                "argsrepr": Value::Array(self.args.clone()).to_string(),
                "kwargsrepr": Value::Object(self.kwargs.clone()).to_string(),
                "origin": origin,
                "ignore_result": self.ignore_result,
                "replaced_task_nesting": 0,
                "stamped_headers": null,
                "stamps": {},
            },
            "properties": {
                "correlation_id": self.id,
                "reply_to": uuid::Uuid::new_v4().to_string(),
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": self.queue},
                "priority": self.priority,
                "body_encoding": "base64",
                "delivery_tag": uuid::Uuid::new_v4().to_string(),
            },
        });
        envelope.to_string()
    }
}

/// `ms` since the epoch as Celery writes instants: ISO-8601 with microseconds and `+00:00`.
pub(crate) fn iso_time(ms: u64) -> String {
    DateTime::<Utc>::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX))
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(body: &str, encoding: Option<&str>, headers: Value) -> String {
        let body = match encoding {
            Some("base64") => BASE64.encode(body),
            _ => body.to_owned(),
        };
        let mut properties =
            json!({"delivery_info": {"exchange": "", "routing_key": "tasks"}, "delivery_tag": "t"});
        if let Some(encoding) = encoding {
            properties["body_encoding"] = json!(encoding);
        }
        json!({"body": body, "content-type": "application/json", "content-encoding": "utf-8",
               "headers": headers, "properties": properties})
        .to_string()
    }

    fn headers(id: &str) -> Value {
        json!({"lang": "py", "task": "tasks.add", "id": id, "retries": 2, "timelimit": [30, 20],
               "root_id": "r", "parent_id": "p", "ignore_result": false, "eta": null, "expires": null})
    }

    #[test]
    fn a_python_envelope_decodes_into_a_job_with_its_context() {
        let stored = envelope(
            r#"[[1, {"__type__": "datetime", "__value__": "2017-05-31T00:00:00"}], {"to": {"__type__": "decimal", "__value__": "1.5"}}, {"callbacks": null, "errbacks": null, "chain": [{"task": "tasks.next", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}], "chord": null}]"#,
            Some("base64"),
            headers("abc"),
        );
        assert!(looks_like_envelope(&stored));
        let job = decode(&stored).unwrap();
        assert_eq!(job.id, "abc");
        assert_eq!(job.task, "tasks.add");
        assert_eq!(job.queue, "tasks");
        assert_eq!(job.attempt, 2);
        assert_eq!(job.time_limit_ms, Some(20_000));
        let ctx = job.celery.unwrap();
        assert_eq!(ctx.args, vec![json!(1), json!("2017-05-31 00:00:00")]);
        assert_eq!(ctx.kwargs.get("to"), Some(&json!(1.5)));
        assert_eq!(ctx.chain.len(), 1);
        assert_eq!(ctx.root_id.as_deref(), Some("r"));
    }

    #[test]
    fn a_raw_body_without_body_encoding_is_read_as_json_text() {
        let job = decode(&envelope("[[\"SELECT 1\"], {}, {}]", None, headers("x"))).unwrap();
        assert_eq!(job.celery.unwrap().args, vec![json!("SELECT 1")]);
    }

    #[test]
    fn undecodable_messages_keep_their_id_when_it_can_be_read() {
        let two = decode(&envelope("[[], {}]", Some("base64"), headers("two"))).unwrap_err();
        assert_eq!(two.id.as_ref().map(JobId::as_str), Some("two"));
        assert!(two.reason.contains("3 elements"), "{}", two.reason);

        let nan = decode(&envelope("[[NaN], {}, {}]", Some("base64"), headers("nan"))).unwrap_err();
        assert!(nan.reason.contains("NaN"), "{}", nan.reason);
        let quoted =
            decode(&envelope("[[\"NaN\", 1, {]", Some("base64"), headers("q"))).unwrap_err();
        assert!(
            !quoted.reason.contains("NaN or Infinity"),
            "{}",
            quoted.reason
        );

        let mut pickle: Value =
            serde_json::from_str(&envelope("[[], {}, {}]", None, headers("p"))).unwrap();
        pickle["content-type"] = json!("application/x-python-serialize");
        let err = decode(&pickle.to_string()).unwrap_err();
        assert!(err.reason.contains("content-type"), "{}", err.reason);

        let truncated = envelope("[[], {}, {}]", Some("base64"), headers("cut"));
        let err = decode(&truncated[..truncated.len() - 5]).unwrap_err();
        assert_eq!(err.id, None);

        let tag = decode(&envelope(
            r#"[[{"__type__": "set", "__value__": [1]}], {}, {}]"#,
            None,
            headers("s"),
        ))
        .unwrap_err();
        assert!(tag.reason.contains("\"set\""), "{}", tag.reason);
    }

    #[test]
    fn non_finite_numbers_outside_strings_read_as_null() {
        assert_eq!(non_finite_as_null("[1, 2]"), None);
        assert_eq!(non_finite_as_null(r#"["NaN", "a\"NaN"]"#), None);
        assert_eq!(
            non_finite_as_null("[NaN, -Infinity, Infinity]").as_deref(),
            Some("[null, null, null]")
        );
    }

    #[test]
    fn instants_and_limits_parse_like_celery_writes_them() {
        assert_eq!(parse_time("1970-01-01T00:00:01.5+00:00"), Ok(1500));
        assert_eq!(parse_time("1970-01-01T00:00:02"), Ok(2000));
        assert!(parse_time("yesterday").is_err());
        assert_eq!(time_limit_ms(&json!([null, null])), Ok(None));
        assert_eq!(time_limit_ms(&json!([0.25, null])), Ok(Some(250)));
        assert!(time_limit_ms(&json!(["x", null])).is_err());
        assert_eq!(iso_time(1500), "1970-01-01T00:00:01.500000+00:00");
    }

    #[test]
    fn outgoing_messages_have_the_full_envelope_and_round_trip() {
        let mut out = Outgoing::new("tasks.score", vec![json!(1)], Map::new(), "scorer");
        out.priority = 7;
        assert_eq!(out.list(), "scorer\x06\x166");
        let stored = out.encode("me@host");
        let value: Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(
            value["properties"]["delivery_info"]["routing_key"],
            "scorer"
        );
        assert!(
            value["properties"]["delivery_tag"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
        let job = decode(&stored).unwrap();
        assert_eq!(job.id, out.id.as_str());
        assert_eq!(job.celery.unwrap().args, vec![json!(1)]);
    }
}
