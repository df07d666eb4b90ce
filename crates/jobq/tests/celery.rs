//! jobq's Celery protocol v2 support end to end on a real Redis, with jobq on both sides:
//! [`CeleryClient`] sends what a Python client would, a [`Worker`] with a
//! [`CeleryConfig`] answers in `celery-task-meta-<id>`. The Python side (a stock celery
//! client and worker) is exercised by posts-worker's `celery_python` tests.
//!
//! Celery's keys are not namespaced, so every test uses a Celery queue of its own.

mod common;

use std::time::Duration;

use common::{RunningWorker, fast_config, test_app};
use jobq::celery::{CeleryClient, CeleryConfig, SendCelery};
use jobq::{Broker, Error, WorkerConfig};
use redis::AsyncCommands;
use redis_harness::{TestRedis, unique_namespace};
use serde_json::{Map, Value, json};

const WAIT: Duration = Duration::from_secs(20);

struct Setup {
    url: String,
    queue: String,
    broker: Broker,
    celery: CeleryClient,
}

async fn setup(prefix: &str) -> Setup {
    let redis = TestRedis::shared().unwrap_or_else(|e| panic!("no Redis for the tests: {e}"));
    let url = redis.url().to_owned();
    let queue = unique_namespace(prefix);
    let broker = common::redis_broker_at(&url, &unique_namespace(prefix)).await;
    let celery = CeleryClient::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("celery client: {e}"))
        .queue(queue.clone());
    Setup {
        url,
        queue,
        broker,
        celery,
    }
}

fn celery_config(queue: &str) -> WorkerConfig {
    let mut config = fast_config();
    let mut celery = CeleryConfig::default().alias("legacy.plus", "add");
    celery.queues = vec![queue.to_owned()];
    config.celery = Some(celery);
    config
}

fn kwargs(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap_or_else(|e| panic!("{e}"))
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn celery_messages_run_with_positional_keyword_and_mixed_arguments() {
    let s = setup("celery-args").await;
    let worker = RunningWorker::start(test_app(), s.broker.clone(), celery_config(&s.queue));
    let sent = [
        s.celery
            .send("tasks.add", vec![json!(1), json!(2)], Map::new())
            .await,
        s.celery
            .send(
                "sandbox_worker.tasks.add",
                vec![],
                kwargs(json!({"a": 3, "b": 4})),
            )
            .await,
        s.celery
            .send("add", vec![json!(5)], kwargs(json!({"b": 6})))
            .await,
        s.celery
            .send("legacy.plus", vec![json!(7), json!(8)], Map::new())
            .await,
    ];
    let mut results = Vec::new();
    for task in sent {
        let task = task.unwrap_or_else(|e| panic!("send: {e}"));
        results.push(task.get(WAIT).await.unwrap_or_else(|e| panic!("get: {e}")));
    }
    assert_eq!(results, vec![json!(3), json!(7), json!(11), json!(15)]);

    // The record has Celery's fields, the extended ones, and a one-day TTL.
    let task = s
        .celery
        .send("tasks.add", vec![json!(1)], kwargs(json!({"b": 1})))
        .await
        .unwrap();
    assert_eq!(task.get(WAIT).await.unwrap(), json!(2));
    let mut conn = redis_conn(&s.url).await;
    let key = format!("celery-task-meta-{}", task.id());
    let record: String = conn.get(&key).await.unwrap();
    let record: Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["status"], "SUCCESS");
    assert_eq!(record["task_id"], task.id().as_str());
    assert_eq!(record["name"], "tasks.add");
    assert_eq!(record["args"], json!([1]));
    assert_eq!(record["kwargs"], json!({"b": 1}));
    assert_eq!(record["queue"], s.queue.as_str());
    assert_eq!(record["children"], json!([]));
    assert!(
        record["date_done"]
            .as_str()
            .is_some_and(|d| d.ends_with("+00:00")),
        "{record}"
    );
    let ttl: i64 = conn.ttl(&key).await.unwrap();
    assert!((86_000..=86_400).contains(&ttl), "ttl {ttl}");
    // kombu's binding table lists the queue, as a Python worker declares it.
    let member = format!("{q}\x06\x16\x06\x16{q}", q = s.queue);
    let declared: bool = conn
        .sismember(format!("_kombu.binding.{}", s.queue), &member)
        .await
        .unwrap();
    assert!(declared);
    worker.stop().await;
}

#[tokio::test]
async fn failures_reach_the_caller_as_python_exception_types() {
    let s = setup("celery-failures").await;
    let worker = RunningWorker::start(test_app(), s.broker.clone(), celery_config(&s.queue));
    let failure = |outcome: Result<Value, Error>| match outcome {
        Err(Error::Failed(f)) => (f.kind, f.message),
        other => panic!("expected a failure, got {other:?}"),
    };
    let unknown = s
        .celery
        .send("tasks.nope", vec![], Map::new())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (kind, message) = failure(unknown.get(WAIT).await);
    assert_eq!(kind, "celery.exceptions.NotRegistered");
    assert_eq!(message, "tasks.nope");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let wrong_type = s
        .celery
        .send("tasks.add", vec![json!("x"), json!(1)], Map::new())
        .await
        .unwrap();
    let (kind, message) = failure(wrong_type.get(WAIT).await);
    assert_eq!(kind, "TypeError");
    assert!(message.contains("\"a\""), "{message}");

    let twice = s
        .celery
        .send("tasks.add", vec![json!(1)], kwargs(json!({"a": 2, "b": 3})))
        .await
        .unwrap();
    let (kind, message) = failure(twice.get(WAIT).await);
    assert_eq!(kind, "TypeError");
    assert!(message.contains("multiple values"), "{message}");

    let mut options = SendCelery::default();
    options.expires = Some(Duration::ZERO);
    let expired = s
        .celery
        .send_with("tasks.add", vec![json!(1), json!(2)], Map::new(), options)
        .await
        .unwrap();
    assert_eq!(
        failure(expired.get(WAIT).await).0,
        "celery.exceptions.TaskRevokedError"
    );

    let mut options = SendCelery::default();
    options.time_limit = Some(Duration::from_millis(200));
    let slow = s
        .celery
        .send_with("tasks.sleep", vec![json!(5_000)], Map::new(), options)
        .await
        .unwrap();
    assert_eq!(
        failure(slow.get(WAIT).await).0,
        "billiard.exceptions.TimeLimitExceeded"
    );

    let handler_failure = s
        .celery
        .send(
            "tasks.fail",
            vec![json!("Boom"), json!("it broke")],
            Map::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        failure(handler_failure.get(WAIT).await),
        ("Boom".to_owned(), "it broke".to_owned())
    );
    worker.stop().await;
}

#[tokio::test]
async fn countdown_and_priority_are_honoured() {
    let s = setup("celery-options").await;
    let worker = RunningWorker::start(test_app(), s.broker.clone(), celery_config(&s.queue));
    let mut options = SendCelery::default();
    options.countdown = Some(Duration::from_millis(1500));
    let sent_at = std::time::Instant::now();
    let later = s
        .celery
        .send_with("tasks.add", vec![json!(1), json!(1)], Map::new(), options)
        .await
        .unwrap();
    let mut options = SendCelery::default();
    options.priority = 9;
    let urgent = s
        .celery
        .send_with("tasks.add", vec![json!(2), json!(2)], Map::new(), options)
        .await
        .unwrap();
    assert_eq!(urgent.get(WAIT).await.unwrap(), json!(4));
    assert!(
        sent_at.elapsed() < Duration::from_millis(1500),
        "the priority-9 bucket waited"
    );
    assert_eq!(later.get(WAIT).await.unwrap(), json!(2));
    assert!(
        sent_at.elapsed() >= Duration::from_millis(1500),
        "ran early: {:?}",
        sent_at.elapsed()
    );
    worker.stop().await;
}

#[tokio::test]
async fn malformed_envelopes_fail_under_their_id_or_are_dead_lettered_and_the_worker_goes_on() {
    let s = setup("celery-hostile").await;
    let worker = RunningWorker::start(test_app(), s.broker.clone(), celery_config(&s.queue));
    let mut conn = redis_conn(&s.url).await;
    let body = |text: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(text)
    };
    let envelope = |id: &str, body: String, content_type: &str| {
        json!({"body": body, "content-type": content_type, "content-encoding": "utf-8",
               "headers": {"lang": "py", "task": "tasks.add", "id": id},
               "properties": {"body_encoding": "base64", "delivery_tag": id,
                              "delivery_info": {"exchange": "", "routing_key": s.queue}}})
        .to_string()
    };
    let two = envelope("two-elements", body("[[1, 2], {}]"), "application/json");
    let pickle = envelope(
        "pickled",
        body("[[1, 2], {}, {}]"),
        "application/x-python-serialize",
    );
    let nan = envelope("nan", body("[[NaN, 2], {}, {}]"), "application/json");
    let truncated = envelope("truncated", body("[[1, 2], {}, {}]"), "application/json");
    let truncated = truncated[..truncated.len() / 2].to_owned();
    for message in [&two, &pickle, &nan, &truncated] {
        let _: () = conn.lpush(&s.queue, message).await.unwrap();
    }
    for id in ["two-elements", "pickled", "nan"] {
        let key = format!("celery-task-meta-{id}");
        let record = wait_for_key(&mut conn, &key).await;
        let record: Value = serde_json::from_str(&record).unwrap();
        assert_eq!(record["status"], "FAILURE", "{id}: {record}");
        assert_eq!(
            record["result"]["exc_type"], "MalformedMessage",
            "{id}: {record}"
        );
    }
    // Without a readable id, the raw message is kept as a dead letter.
    let admin = jobq::Client::new(s.broker.clone());
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let letters = admin.dead_letters(100).await.unwrap();
        if letters.iter().any(|l| l.payload == truncated) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dead letter: {letters:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The worker is still serving.
    let after = s
        .celery
        .send("tasks.add", vec![json!(1), json!(2)], Map::new())
        .await
        .unwrap();
    assert_eq!(after.get(WAIT).await.unwrap(), json!(3));
    worker.stop().await;
}

#[tokio::test]
async fn celery_messages_of_a_dead_worker_go_back_to_their_list_and_run() {
    let s = setup("celery-recovery").await;
    let mut conn = redis_conn(&s.url).await;
    // Three messages sent, then taken by a worker that dies before acknowledging them: they
    // sit in its in-flight list, and its heartbeat is gone.
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(
            s.celery
                .send("tasks.add", vec![json!(i), json!(i)], Map::new())
                .await
                .unwrap(),
        );
    }
    let dead = "dead-worker";
    jobq::test_support::heartbeat(&s.broker, dead, Duration::from_millis(1))
        .await
        .unwrap();
    let in_flight = format!("{{{}}}:processing:{dead}", s.broker.namespace());
    for _ in 0..3 {
        let _: Option<String> = redis::cmd("LMOVE")
            .arg(&s.queue)
            .arg(&in_flight)
            .arg("RIGHT")
            .arg("LEFT")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let left: i64 = conn.llen(&s.queue).await.unwrap();
    assert_eq!(left, 0);

    let worker = RunningWorker::start(test_app(), s.broker.clone(), celery_config(&s.queue));
    for (i, task) in sent.iter().enumerate() {
        assert_eq!(task.get(WAIT).await.unwrap(), json!(2 * i));
    }
    let in_flight_left: i64 = conn.llen(&in_flight).await.unwrap();
    assert_eq!(in_flight_left, 0);
    // kombu's ack emulation is never touched.
    let unacked: bool = conn.exists("unacked").await.unwrap();
    assert!(!unacked);
    worker.stop().await;
}

async fn wait_for_key(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = conn.get::<_, Option<String>>(key).await.unwrap() {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "{key} never appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
