//! `posts-worker dashboard` end to end: a real worker on a seeded posts DB and a private
//! or shared Redis, the dashboard process beside it, and every route fetched over HTTP.
//! Metrics are parsed with a Prometheus text parser and compared with the jobs the test
//! ran; pages are checked for the values they must show and for escaping. The browser
//! checks (rendering, clicking, screenshots) are in `dashboard_browser.rs`.

mod binary_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use binary_support::{Deployment, PROCESS_DEADLINE, RunProcess};
use redis_harness::OwnedRedis;
use serde_json::Value;

/// The argument a hostile job carries; pages must show it as text.
const XSS: &str = "<script>alert(1)</script>";
const FROM: &str = "2017-05-31";
const TO: &str = "2017-06-01";

/// An HTTP client that returns error statuses as responses.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// A response: status, content type and body.
struct Page {
    status: u16,
    content_type: String,
    body: String,
}

fn read(mut response: ureq::http::Response<ureq::Body>) -> Page {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Page {
        status: response.status().as_u16(),
        content_type,
        body: response
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|e| panic!("reading a body: {e}")),
    }
}

fn get(base: &str, path: &str) -> Page {
    let url = format!("{}{}", base.trim_end_matches('/'), path);
    read(
        agent()
            .get(&url)
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}")),
    )
}

fn post(base: &str, path: &str, headers: &[(&str, &str)], form: &[(&str, &str)]) -> Page {
    let url = format!("{}{}", base.trim_end_matches('/'), path);
    let mut request = agent().post(&url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    read(
        request
            .send_form(form.iter().copied())
            .unwrap_or_else(|e| panic!("POST {url}: {e}")),
    )
}

fn json_of(page: &Page) -> Value {
    serde_json::from_str(&page.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", page.body))
}

/// Polls `check` until it returns `Some`, or panics with `what`.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PROCESS_DEADLINE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The samples of a scrape, by metric name and labels.
fn scrape(base: &str) -> prometheus_parse::Scrape {
    let page = get(base, "/metrics");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.content_type
            .starts_with("application/openmetrics-text")
    );
    let lines = page.body.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines)
        .unwrap_or_else(|e| panic!("unparsable: {e}\n{}", page.body))
}

/// The value of the sample `name` whose labels include `labels`.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => panic!("{name} is not a scalar: {other:?}"),
        })
}

/// A worker with a schedule writing the top entities to `key` every 2 s.
fn start_worker_with_schedule(deployment: &Deployment, key: &str) -> RunProcess {
    let schedule = deployment.path("schedules.toml");
    std::fs::write(
        &schedule,
        format!(
            "[[schedule]]\nname = \"top_entities\"\ntask = \"count_top_named_entities\"\nargs = [5, \"{FROM}\", \"{TO}\", \"{key}\"]\nevery = \"2s\"\n"
        ),
    )
    .expect("schedule file");
    let schedule = schedule.to_str().expect("UTF-8 path").to_owned();
    let worker = deployment.start_run("worker", &["--concurrency", "2", "--schedules", &schedule]);
    deployment.wait_for_workers(1);
    worker
}

/// Runs `submit ARGS --wait 30` and returns the printed JSON: the result (stdout), or the
/// failure (stderr, exit status 1).
fn submit(deployment: &Deployment, args: &[&str]) -> Value {
    let out = deployment.run(&[&["submit"], args, &["--wait", "30"]].concat());
    if out.status.success() {
        binary_support::json(&out.stdout)
    } else {
        binary_support::json(&out.stderr)
    }
}

#[test]
fn every_route_shows_what_the_worker_ran() {
    let deployment = Deployment::seeded("dash-routes");
    let key = format!("{}:top", deployment.namespace);
    let worker = start_worker_with_schedule(&deployment, &key);
    for query in ["SELECT 1", "SELECT 2", "SELECT 3"] {
        assert!(submit(&deployment, &["query_posts_db", query]).is_array());
    }
    let xss_query = format!("SELECT '{XSS}'");
    let xss = submit(&deployment, &["query_posts_db", &xss_query]);
    assert_eq!(xss, serde_json::json!([[XSS]]));
    let failed = submit(
        &deployment,
        &["query_posts_db", "SELECT * FROM no_such_table"],
    );
    assert_eq!(failed["error"]["kind"], "SqlError");
    let dead = submit(
        &deployment,
        &["substring_matches_by_platform", "5", FROM, TO],
    );
    assert_eq!(dead["error"]["kind"], "InvalidArguments");
    let counts = submit(
        &deployment,
        &["substring_matches_by_platform", "trump", FROM, TO],
    );
    assert_eq!(counts["total_rows"], 282);

    // `status` describes the worker from its heartbeat.
    let status = deployment.status();
    let info = &status["workers"][0]["info"];
    assert_eq!(info["concurrency"], 2, "{status}");
    assert_eq!(info["queues"][0], "default");
    assert!(info["pid"].as_u64().is_some_and(|pid| pid > 0));
    assert!(info["host"].as_str().is_some_and(|host| !host.is_empty()));
    let text = deployment.run(&["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("concurrency 2") && text.contains(" pid "),
        "{text}"
    );

    let (dashboard, base) = deployment.start_dashboard(&[]);
    let stored = eventually("the scheduled job's key", || {
        let out = deployment.run(&["get-key", &key]);
        out.status
            .success()
            .then(|| binary_support::json(&out.stdout))
    });

    // Overview.
    let overview = eventually("the overview to list every task", || {
        let page = get(&base, "/");
        (page.status == 200
            && [
                "query_posts_db",
                "substring_matches_by_platform",
                "count_top_named_entities",
            ]
            .iter()
            .all(|t| page.body.contains(t)))
        .then_some(page)
    });
    assert!(overview.content_type.starts_with("text/html"));
    assert!(overview.body.contains("<svg class=\"chart throughput\""));
    assert!(overview.body.contains(&deployment.namespace));
    assert!(!overview.body.contains(XSS), "the argument must be escaped");
    let listed = get(&base, "/jobs?task=query_posts_db");
    assert!(!listed.body.contains(XSS), "the argument must be escaped");
    assert!(listed.body.contains(&escape(XSS)));
    let partial = get(&base, "/?partial=1");
    assert_eq!(partial.status, 200);
    assert!(!partial.body.contains("<html") && partial.body.contains("Throughput"));

    // Jobs, filtered, and one job.
    // Events are recorded at most 200 ms after their jobs finish.
    let jobs = eventually("every query's event", || {
        let jobs = json_of(&get(&base, "/api/jobs?task=query_posts_db"));
        let jobs = jobs["jobs"].as_array().expect("jobs").clone();
        (jobs.len() >= 5).then_some(jobs)
    });
    assert_eq!(jobs.len(), 5, "{jobs:?}");
    assert!(jobs.iter().all(|j| j["task"] == "query_posts_db"));
    let dead_jobs = json_of(&get(&base, "/api/jobs?state=dead"));
    let dead_jobs = dead_jobs["jobs"].as_array().expect("jobs").clone();
    assert_eq!(dead_jobs.len(), 1);
    assert_eq!(dead_jobs[0]["error"]["kind"], "InvalidArguments");
    assert_eq!(get(&base, "/jobs?state=bogus").status, 400);
    assert_eq!(get(&base, "/api/jobs?state=bogus").status, 400);
    let jobs_page = get(&base, "/jobs?state=failed");
    assert!(jobs_page.body.contains("no_such_table") && !jobs_page.body.contains("SELECT 1"));
    let xss_job = jobs
        .iter()
        .find(|j| j["args"].as_str().is_some_and(|a| a.contains("script")))
        .expect("the hostile job's event");
    let id = xss_job["job_id"].as_str().expect("an id");
    let job_page = get(&base, &format!("/jobs/{id}"));
    assert_eq!(job_page.status, 200);
    assert!(job_page.body.contains(&escape(XSS)));
    assert!(!job_page.body.contains(XSS));
    let job_api = json_of(&get(&base, &format!("/api/jobs/{id}")));
    assert_eq!(job_api["state"], "succeeded");
    assert_eq!(job_api["result"]["result"], serde_json::json!([[XSS]]));
    assert_eq!(get(&base, "/jobs/no-such-job").status, 404);
    assert_eq!(get(&base, "/api/jobs/no-such-job").status, 404);
    assert_eq!(get(&base, "/no/such/page").status, 404);

    // Dead letters.
    let dead_api = json_of(&get(&base, "/api/dead"));
    assert_eq!(dead_api["total"], 1);
    assert_eq!(
        dead_api["dead_letters"][0]["task"],
        "substring_matches_by_platform"
    );
    let dead_page = get(&base, "/dead");
    assert!(
        dead_page.body.contains("InvalidArguments")
            && dead_page.body.contains("class=\"requeue-one\"")
    );

    // Schedules: the key's entities, as chart labels with their counts.
    let schedules = eventually("the schedule's output", || {
        let page = get(&base, "/schedules");
        page.body.contains("class=\"chart bars\"").then_some(page)
    });
    let entities = stored["top_named_entities"].as_array().expect("entities");
    assert!(!entities.is_empty());
    for pair in entities {
        let label = pair[0].as_str().expect("an entity");
        assert!(
            schedules
                .body
                .contains(&format!(">{}</text>", escape(label))),
            "{label} is not a bar label"
        );
        assert!(schedules.body.contains(&format!(">{}</text>", pair[1])));
    }
    let schedules_api = json_of(&get(&base, "/api/schedules"));
    let schedule = &schedules_api["schedules"][0];
    assert_eq!(schedule["schedule"]["name"], "top_entities");
    assert_eq!(
        schedule["outputs"][&key]["top_named_entities"]
            .as_array()
            .map(Vec::len),
        Some(entities.len())
    );

    // Metrics match the jobs run (the schedule keeps running, so its counts only grow).
    let metrics = scrape(&base);
    let jobs_total = |task: &str, status: &str| {
        sample(
            &metrics,
            "posts_worker_jobs_total",
            &[("task", task), ("status", status)],
        )
    };
    assert_eq!(jobs_total("query_posts_db", "succeeded"), Some(4.0));
    assert_eq!(jobs_total("query_posts_db", "failed"), Some(1.0));
    assert_eq!(
        jobs_total("substring_matches_by_platform", "dead"),
        Some(1.0)
    );
    assert_eq!(
        jobs_total("substring_matches_by_platform", "succeeded"),
        Some(1.0)
    );
    let scheduled = jobs_total("count_top_named_entities", "succeeded").expect("scheduled runs");
    assert!(scheduled >= 1.0);
    let histogram = metrics
        .samples
        .iter()
        .find(|s| {
            s.metric == "posts_worker_job_duration_seconds"
                && s.labels.get("task") == Some("query_posts_db")
        })
        .expect("the query histogram");
    match &histogram.value {
        prometheus_parse::Value::Histogram(buckets) => {
            let inf = buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .expect("+Inf");
            assert_eq!(inf.count, 5.0, "every query run is in the histogram");
            assert!(
                buckets.windows(2).all(|w| w[0].count <= w[1].count),
                "cumulative"
            );
        }
        other => panic!("not a histogram: {other:?}"),
    }
    assert_eq!(
        sample(&metrics, "posts_worker_dead_letters", &[]),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, "posts_worker_workers_live", &[]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "posts_worker_queue_depth",
            &[("queue", "default")]
        ),
        Some(0.0)
    );
    assert!(sample(&metrics, "posts_worker_jobs_in_flight", &[]).is_some());
    assert_eq!(
        sample(&metrics, "posts_worker_jobs_delayed", &[]),
        Some(0.0)
    );
    let last_run = sample(
        &metrics,
        "posts_worker_schedule_last_run_timestamp_seconds",
        &[("schedule", "top_entities")],
    )
    .expect("the schedule's last run");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        (now - last_run).abs() < 120.0,
        "last run {last_run}, now {now}"
    );

    // The JSON overview.
    let api = json_of(&get(&base, "/api/overview"));
    assert_eq!(api["namespace"], deployment.namespace.as_str());
    assert_eq!(api["stats"]["dead"], 1);
    assert_eq!(api["workers"][0]["alive"], true);
    assert_eq!(api["workers"][0]["info"]["concurrency"], 2);
    let tasks: BTreeMap<String, Value> = api["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| (t["task"].as_str().unwrap_or("").to_owned(), t.clone()))
        .collect();
    assert_eq!(tasks["query_posts_db"]["runs"], 5);

    // Assets come from the binary.
    let css = get(&base, "/assets/style.css");
    assert_eq!(css.status, 200);
    assert!(css.content_type.starts_with("text/css") && css.body.contains("@media"));
    assert!(get(&base, "/assets/live.js").body.contains("partial"));

    dashboard.terminate_cleanly();
    worker.terminate_cleanly();
}

/// `text` as the templates escape it.
fn escape(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

#[test]
fn requeue_and_purge_are_guarded() {
    let deployment = Deployment::seeded("dash-actions");
    let worker = deployment.start_run("worker", &["--no-scheduler"]);
    deployment.wait_for_workers(1);
    for _ in 0..3 {
        let dead = submit(
            &deployment,
            &["substring_matches_by_platform", "5", FROM, TO],
        );
        assert_eq!(dead["error"]["kind"], "InvalidArguments");
    }
    let dead_ids: Vec<String> = deployment
        .dead_letters()
        .iter()
        .map(|l| l["job_id"].as_str().expect("an id").to_owned())
        .collect();
    assert_eq!(dead_ids.len(), 3);

    // On loopback without a token: allowed, behind a confirmation, same-site only.
    let (dashboard, base) = deployment.start_dashboard(&[]);
    let form = [("job_id", dead_ids[0].as_str())];
    let confirm = post(&base, "/dead/requeue", &[], &form);
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("name=\"confirm\" value=\"yes\""));
    assert_eq!(
        deployment.dead_letters().len(),
        3,
        "nothing happens before confirming"
    );
    let cross_site = post(
        &base,
        "/dead/requeue",
        &[("Origin", "http://evil.example")],
        &[("job_id", dead_ids[0].as_str()), ("confirm", "yes")],
    );
    assert_eq!(cross_site.status, 403);
    let done = post(
        &base,
        "/dead/requeue",
        &[],
        &[("job_id", dead_ids[0].as_str()), ("confirm", "yes")],
    );
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("1 dead letter(s) went back"));
    // The requeued job runs again and, its arguments being still wrong, dies again.
    eventually("the requeued job to run again", || {
        let events = json_of(&get(&base, &format!("/api/jobs/{}", dead_ids[0])));
        (events["events"].as_array().map(Vec::len) == Some(2)).then_some(())
    });
    let purged = post(&base, "/api/dead/purge", &[], &[]);
    assert_eq!(json_of(&purged)["purged"], 3);
    assert!(deployment.dead_letters().is_empty());
    dashboard.terminate_cleanly();

    // With a token: a request without it gets 401, with it goes through.
    let dead = submit(
        &deployment,
        &["substring_matches_by_platform", "5", FROM, TO],
    );
    assert_eq!(dead["error"]["kind"], "InvalidArguments");
    let (dashboard, base) = deployment.start_dashboard(&["--token", "s3cret"]);
    assert_eq!(post(&base, "/api/dead/requeue", &[], &[]).status, 401);
    assert_eq!(
        post(
            &base,
            "/api/dead/requeue",
            &[("Authorization", "Bearer wrong")],
            &[]
        )
        .status,
        401
    );
    assert_eq!(
        post(&base, "/dead/purge", &[], &[("confirm", "yes")]).status,
        401
    );
    assert_eq!(deployment.dead_letters().len(), 1);
    let purged = post(
        &base,
        "/api/dead/purge",
        &[("Authorization", "Bearer s3cret")],
        &[],
    );
    assert_eq!(json_of(&purged)["purged"], 1);
    let form_token = post(
        &base,
        "/dead/purge",
        &[],
        &[("token", "s3cret"), ("confirm", "yes")],
    );
    assert_eq!(form_token.status, 200);
    dashboard.terminate_cleanly();

    // On every address without a token: read-only.
    let (dashboard, base) = deployment.start_dashboard_on("0.0.0.0:0", &[]);
    let base = base.replace("0.0.0.0", "127.0.0.1");
    assert_eq!(get(&base, "/").status, 200);
    assert_eq!(post(&base, "/api/dead/purge", &[], &[]).status, 403);
    assert!(get(&base, "/dead").body.contains("disabled"));
    dashboard.terminate_cleanly();
    worker.terminate_cleanly();
}

#[test]
fn bad_input_and_an_absent_redis_are_survived() {
    let deployment = Deployment::seeded("dash-bad");
    for listen in ["localhost", "127.0.0.1:99999", "nonsense:80"] {
        let out = deployment.run(&["dashboard", "--listen", listen]);
        assert_ne!(out.status.code(), Some(0));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--listen") && stderr.contains(listen),
            "{stderr}"
        );
    }

    // An empty namespace says how to start.
    let (dashboard, base) = deployment.start_dashboard(&[]);
    let page = get(&base, "/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Nothing has run"));
    assert!(page.body.contains(&format!(
        "posts-worker --namespace {} run",
        deployment.namespace
    )));
    dashboard.terminate_cleanly();

    // Redis going away and coming back.
    let mut redis = OwnedRedis::start().unwrap_or_else(|e| panic!("{e}"));
    let private = Deployment::seeded_on("dash-down", redis.url());
    let (mut dashboard, base) = private.start_dashboard(&[]);
    assert_eq!(get(&base, "/").status, 200);
    redis.kill().unwrap_or_else(|e| panic!("{e}"));
    let down = eventually("the page to report Redis down", || {
        let page = get(&base, "/");
        (page.status == 503).then_some(page)
    });
    assert!(down.body.contains("Redis is unreachable") && down.body.contains("retries"));
    assert_eq!(get(&base, "/metrics").status, 503);
    assert_eq!(get(&base, "/api/overview").status, 503);
    assert_eq!(get(&base, "/schedules").status, 503);
    assert!(dashboard.is_running());
    redis.restart().unwrap_or_else(|e| panic!("{e}"));
    eventually("the page to recover", || {
        (get(&base, "/").status == 200).then_some(())
    });
    dashboard.terminate_cleanly();
}

#[test]
fn the_demo_prints_the_url_of_a_running_dashboard() {
    let deployment = Deployment::seeded("dash-demo");
    let before = deployment.run(&["demo"]);
    binary_support::assert_success(&before, "posts-worker demo");
    let text = String::from_utf8_lossy(&before.stdout);
    assert!(
        text.contains("Dashboard: none running") && text.contains("dashboard"),
        "{text}"
    );
    let (dashboard, base) = deployment.start_dashboard(&[]);
    let with = deployment.run(&["demo"]);
    binary_support::assert_success(&with, "posts-worker demo");
    let text = String::from_utf8_lossy(&with.stdout);
    assert!(text.contains(&format!("Dashboard: {base}")), "{text}");
    dashboard.terminate_cleanly();
}
