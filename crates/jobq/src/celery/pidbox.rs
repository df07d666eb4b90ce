//! Celery's remote control ("pidbox") as far as `celery inspect ping` and `celery inspect
//! registered` need it: requests arrive published on the fanout channel
//! `/<db>.celery.pidbox`; a reply is a kombu envelope pushed onto the reply queue that the
//! requester bound in `_kombu.binding.reply.celery.pidbox` under its routing key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Value, json};

use super::envelope::PRIORITY_SEP;

/// The set that maps reply routing keys to reply queues.
pub(crate) const REPLY_BINDINGS: &str = "_kombu.binding.reply.celery.pidbox";

/// The channel remote-control requests are published on, for the broker's DB.
pub(crate) fn channel(db: i64) -> String {
    format!("/{db}.celery.pidbox")
}

/// A remote-control request addressed to this worker.
#[derive(Debug, PartialEq)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) ticket: String,
    pub(crate) reply_exchange: String,
    pub(crate) reply_routing_key: String,
}

#[derive(Deserialize)]
struct Envelope {
    body: String,
    #[serde(default)]
    headers: Headers,
}

#[derive(Deserialize, Default)]
struct Headers {
    /// Unix time in seconds after which the requester stopped listening.
    #[serde(default)]
    expires: Option<f64>,
}

#[derive(Deserialize)]
struct Body {
    method: String,
    #[serde(default)]
    destination: Option<Vec<String>>,
    ticket: String,
    reply_to: ReplyTo,
}

#[derive(Deserialize)]
struct ReplyTo {
    exchange: String,
    routing_key: String,
}

/// Decodes a published request, when it is one for `hostname` (no destination, or one
/// that names it) that has not expired at `now_secs`.
pub(crate) fn parse_request(payload: &str, hostname: &str, now_secs: f64) -> Option<Request> {
    let envelope: Envelope = serde_json::from_str(payload).ok()?;
    if envelope.headers.expires.is_some_and(|t| t < now_secs) {
        return None;
    }
    let body = BASE64.decode(envelope.body.as_bytes()).ok()?;
    let body: Body = serde_json::from_slice(&body).ok()?;
    if body
        .destination
        .as_ref()
        .is_some_and(|names| !names.iter().any(|n| n == hostname))
    {
        return None;
    }
    Some(Request {
        method: body.method,
        ticket: body.ticket,
        reply_exchange: body.reply_to.exchange,
        reply_routing_key: body.reply_to.routing_key,
    })
}

/// The answer to `method`: `ping` and `registered` (the task names); any other method gets
/// the error a Python worker gives for an unknown command.
pub(crate) fn answer(method: &str, task_names: &[String]) -> Value {
    match method {
        "ping" => json!({"ok": "pong"}),
        "registered" => json!(task_names),
        other => json!({"error": format!("No such control command: {other}")}),
    }
}

/// The reply queue bound for `routing_key` among the members of [`REPLY_BINDINGS`].
pub(crate) fn reply_queue(bindings: &[String], routing_key: &str) -> Option<String> {
    bindings.iter().find_map(|member| {
        let mut parts = member.split(PRIORITY_SEP);
        let key = parts.next()?;
        let _pattern = parts.next()?;
        let queue = parts.next()?;
        (key == routing_key).then(|| queue.to_owned())
    })
}

/// The reply envelope: `{hostname: answer}`, with the request's ticket.
pub(crate) fn reply_envelope(hostname: &str, request: &Request, answer: Value) -> String {
    let body = json!({ hostname: answer });
    json!({
        "body": BASE64.encode(body.to_string()),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"ticket": request.ticket},
        "properties": {
            "delivery_mode": 2,
            "delivery_info": {
                "exchange": request.reply_exchange,
                "routing_key": request.reply_routing_key,
            },
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": uuid::Uuid::new_v4().to_string(),
        },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(destination: Value, expires: f64) -> String {
        let body = json!({"method": "ping", "arguments": {}, "destination": destination,
            "pattern": null, "matcher": null, "ticket": "t-1",
            "reply_to": {"exchange": "reply.celery.pidbox", "routing_key": "rk"}});
        json!({"body": BASE64.encode(body.to_string()), "content-encoding": "utf-8",
            "content-type": "application/json", "headers": {"clock": 1, "expires": expires},
            "properties": {"delivery_info": {"exchange": "celery.pidbox", "routing_key": ""}}})
        .to_string()
    }

    #[test]
    fn requests_for_everyone_or_for_this_worker_are_answered_until_they_expire() {
        let request = parse_request(&published(Value::Null, 10.0), "me@h", 5.0).unwrap();
        assert_eq!(request.method, "ping");
        assert_eq!(request.reply_routing_key, "rk");
        assert!(parse_request(&published(json!(["me@h"]), 10.0), "me@h", 5.0).is_some());
        assert!(parse_request(&published(json!(["other@h"]), 10.0), "me@h", 5.0).is_none());
        assert!(parse_request(&published(Value::Null, 10.0), "me@h", 11.0).is_none());
        assert!(parse_request("not json", "me@h", 0.0).is_none());
    }

    #[test]
    fn replies_go_to_the_bound_queue_with_the_ticket() {
        let bindings = vec![
            "other\x06\x16\x06\x16other.reply.celery.pidbox".to_owned(),
            "rk\x06\x16\x06\x16rk.reply.celery.pidbox".to_owned(),
        ];
        assert_eq!(
            reply_queue(&bindings, "rk").as_deref(),
            Some("rk.reply.celery.pidbox")
        );
        assert_eq!(reply_queue(&bindings, "nope"), None);
        let request = parse_request(&published(Value::Null, 10.0), "me@h", 5.0).unwrap();
        let reply: Value =
            serde_json::from_str(&reply_envelope("me@h", &request, answer("ping", &[]))).unwrap();
        assert_eq!(reply["headers"]["ticket"], "t-1");
        let body = BASE64.decode(reply["body"].as_str().unwrap()).unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body, json!({"me@h": {"ok": "pong"}}));
        assert_eq!(answer("registered", &["a".into()]), json!(["a"]));
    }
}
