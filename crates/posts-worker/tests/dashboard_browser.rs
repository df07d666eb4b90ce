//! `posts-worker dashboard` in a real browser (headless Chromium, see `browser_support`),
//! next to a `posts-worker run` worker on a seeded deployment: the pages show what the
//! worker did (tasks, the scheduled top-entities chart, dead letters), job arguments an
//! attacker chose stay text through the first load and the live refresh, and a dead
//! letter is requeued with the page's buttons. Each page is also saved as a screenshot
//! under `target/dashboard-screenshots/` for people to look at.
//!
//! Values on the pages are compared with what the command-line client reads from the
//! same Redis (`get-key`, `dead list`, `status --json`), never with hard-coded output.

mod binary_support;
mod browser_support;

use binary_support::{Deployment, assert_success};
use browser_support::{Chromium, NARROW};
use serde_json::{Value, json};

/// The sample posts dated 2017-05-31.
const FROM: &str = "2017-05-31";
const TO: &str = "2017-06-01";

/// How many entities the schedule asks for.
const TOP_K: usize = 5;

/// Markup that runs script if a page ever inserts it as HTML instead of text: each way
/// sets `window.__xss`, which a safe page leaves undefined.
const HOSTILE: &str = r#"<script>window.__xss=1</script><img src=x onerror="window.__xss=2">"#;

/// The part of [`HOSTILE`] that survives every rendering of it (JSON escaping turns its
/// later double quotes into `\"`, and long argument lists are cut).
const HOSTILE_PREFIX: &str = "<script>window.__xss=1</script>";

/// The text of the first column of the table under the heading `heading` on the overview.
fn overview_column_js(heading: &str) -> String {
    format!(
        "Array.from(document.querySelectorAll('main#live section'))\
           .filter(s => s.querySelector('h2')?.textContent.trim() === {heading:?})\
           .flatMap(s => Array.from(s.querySelectorAll('tbody tr td:first-child'))\
           .map(td => td.textContent.trim()))"
    )
}

/// `[[label, count], ...]` of the first bar chart on the page, as text.
const CHART_BARS_JS: &str = "Array.from(document.querySelectorAll('svg.chart.bars g.bar'))\
     .map(g => [g.querySelector('text.label').textContent, g.querySelector('text.count').textContent])";

/// The bars the chart should show for the key's value (`{"top_named_entities":
/// [[entity, count], ...]}`): `[label, count]`, as text, in the same order.
fn expected_bars(stored: &Value) -> Vec<Value> {
    stored["top_named_entities"]
        .as_array()
        .unwrap_or_else(|| panic!("top_named_entities is a list: {stored}"))
        .iter()
        .map(|pair| {
            let entity = pair[0]
                .as_str()
                .unwrap_or_else(|| panic!("an entity name: {pair}"));
            let count = pair[1]
                .as_u64()
                .unwrap_or_else(|| panic!("an entity count: {pair}"));
            json!([entity, count.to_string()])
        })
        .collect()
}

#[test]
fn overview_and_schedules_show_what_the_worker_ran() {
    // A missing browser fails the test before anything is built.
    browser_support::chromium();
    let deployment = Deployment::seeded("dashboard-browser-views");
    let key = format!("{}:scheduled:top_entities", deployment.namespace);
    let schedules = deployment.path("schedules.toml");
    std::fs::write(
        &schedules,
        format!(
            "[[schedule]]\nname = \"top_entities\"\ntask = \"count_top_named_entities\"\n\
             args = [{TOP_K}, \"{FROM}\", \"{TO}\", \"{key}\"]\nevery = \"2s\"\n"
        ),
    )
    .expect("schedule file");
    let schedules = schedules.to_str().expect("UTF-8 path");
    let worker = deployment.start_run("worker", &["--schedules", schedules]);
    deployment.wait_for_workers(1);
    let (dashboard, url) = deployment.start_dashboard(&[]);
    let counts = deployment.run_json(&[
        "submit",
        "substring_matches_by_platform",
        "trump",
        FROM,
        TO,
        "--wait",
        "60",
    ]);
    assert!(counts["total_rows"].as_u64() > Some(0), "{counts}");

    let browser = Chromium::launch();
    let tasks = browser.open_until(
        &url,
        "both tasks in the overview's tasks table",
        &format!(
            "(names => names.includes('count_top_named_entities') \
               && names.includes('substring_matches_by_platform') && names)({})",
            overview_column_js("Tasks")
        ),
    );
    assert_eq!(
        tasks.as_array().map(Vec::len),
        Some(2),
        "only the two tasks that ran are listed: {tasks}"
    );
    let workers = browser.eval(&overview_column_js("Workers"));
    assert_eq!(
        workers.as_array().map(Vec::len),
        Some(1),
        "the one worker is listed: {workers}"
    );
    browser.screenshot("overview");

    let schedules_url = format!("{url}schedules");
    let shown = browser.open_until(&schedules_url, "the top-entities bar chart", CHART_BARS_JS);
    let heading = browser.eval("document.querySelector('section.schedule h2')?.textContent");
    assert_eq!(heading, "top_entities");
    // Every run of the schedule computes the same entities from the same posts, so the
    // key holds what the chart shows even when another run rewrote it in between.
    let stored = deployment.run_json(&["get-key", &key]);
    let expected = expected_bars(&stored);
    assert_eq!(expected.len(), TOP_K, "{stored}");
    assert_eq!(
        shown,
        Value::Array(expected),
        "the chart's bars are the stored entities and counts, in order; stored {stored}"
    );
    browser.screenshot("schedules");

    browser.resize(NARROW);
    browser.open_until(
        &url,
        "the overview's tasks table at the narrow width",
        &overview_column_js("Tasks"),
    );
    // Positive when the page is wider than the viewport (minus a vertical scrollbar).
    let overflow =
        browser.eval("document.documentElement.scrollWidth - document.documentElement.clientWidth");
    let narrow = browser.screenshot("overview-narrow");
    assert_eq!(
        overflow,
        0,
        "the narrow overview scrolls sideways (wider than the window); see {}",
        narrow.display()
    );

    dashboard.terminate_cleanly();
    worker.terminate_cleanly();
}

#[test]
fn hostile_arguments_stay_text_and_a_dead_letter_requeues_from_the_page() {
    // A missing browser fails the test before anything is built.
    browser_support::chromium();
    let deployment = Deployment::seeded("dashboard-browser-actions");
    let worker = deployment.start_run("worker", &["--no-scheduler"]);
    deployment.wait_for_workers(1);
    let (dashboard, url) = deployment.start_dashboard(&[]);

    // A successful job whose argument (and result) is the hostile markup.
    let query = format!("SELECT '{HOSTILE}' AS probe");
    let rows = deployment.run_json(&["submit", "query_posts_db", &query, "--wait", "60"]);
    assert!(
        rows.to_string().contains(HOSTILE_PREFIX),
        "the query returns the markup: {rows}"
    );
    // Two dead letters (a number where the text to match belongs): a plain one to
    // requeue, and one carrying the hostile markup to stay listed.
    let plain = submit_id(
        &deployment,
        &["substring_matches_by_platform", "5", "x", "y"],
    );
    let hostile = submit_id(
        &deployment,
        &["substring_matches_by_platform", "5", HOSTILE, "y"],
    );
    deployment.wait_for_status("two dead letters", |status| {
        status["stats"]["dead"].as_u64() >= Some(2)
    });

    let browser = Chromium::launch();
    let args_cells = "Array.from(document.querySelectorAll('main#live code.args'))\
                      .map(c => c.textContent)";
    let with_hostile_text =
        format!("(cells => cells.filter(t => t.includes({HOSTILE_PREFIX:?})))({args_cells})");
    for page in ["", "jobs"] {
        let page_url = format!("{url}{page}");
        browser.open_until(
            &page_url,
            "the query's arguments, as text, among the recent jobs",
            &with_hostile_text,
        );
        assert_inert(&browser, &page_url);
        // The live refresh replaces the content; a marker in it shows when it has.
        browser.eval(
            "(() => { const marker = document.createElement('i'); marker.id = 'before-refresh'; \
               document.getElementById('live').appendChild(marker); return true; })()",
        );
        browser.wait_until(
            &format!("a live refresh of {page_url}"),
            "document.getElementById('before-refresh') === null",
        );
        browser.wait_until(
            &format!("the arguments as text after a live refresh of {page_url}"),
            &with_hostile_text,
        );
        assert_inert(&browser, &page_url);
    }
    // Still on /jobs: the markup shown as text, for people to look at.
    browser.screenshot("jobs");

    let dead_url = format!("{url}dead");
    browser.open_until(
        &dead_url,
        "the hostile dead letter's message, as text",
        &with_hostile_text,
    );
    assert_inert(&browser, &dead_url);
    // Both failed at once on a worker running jobs side by side: either may be newer.
    let listed = browser.eval(
        "Array.from(document.querySelectorAll('main#live input[name=job_id]'))\
         .map(i => i.value).sort()",
    );
    let mut both = [hostile.clone(), plain.clone()];
    both.sort();
    assert_eq!(listed, json!(both), "each dead letter has a requeue form");
    browser.screenshot("dead");

    // Without a worker the requeued job stays on its queue instead of failing again.
    worker.terminate_cleanly();
    let before = deployment.dead_letters();
    browser.click(&format!(
        "form:has(input[name=job_id][value={plain:?}]) button.requeue-one"
    ));
    browser.wait_until(
        "the confirmation page",
        "document.getElementById('confirm') !== null",
    );
    let question = browser.eval("document.querySelector('main').textContent");
    assert!(
        question.as_str().is_some_and(|text| text.contains(&plain)),
        "the confirmation names the job: {question}"
    );
    assert_eq!(
        deployment.dead_letters().len(),
        before.len(),
        "nothing is requeued before the confirmation"
    );
    browser.click("#confirm");
    let said = browser.wait_until(
        "the requeue's outcome",
        "(text => text.includes('Requeued') && text)(document.querySelector('main').textContent)",
    );
    assert!(
        said.as_str()
            .is_some_and(|text| text.contains("1 dead letter(s) went back to their queues.")),
        "the page says one letter was requeued: {said}"
    );

    let after: Vec<String> = deployment
        .dead_letters()
        .iter()
        .map(|letter| letter["job_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(before.len(), 2, "{before:?}");
    assert_eq!(after, [hostile], "only the plain letter left the list");
    let status = deployment.status();
    let waiting: u64 = status["stats"]["queues"]
        .as_object()
        .map(|queues| queues.values().filter_map(Value::as_u64).sum())
        .unwrap_or_default();
    assert_eq!(waiting, 1, "the requeued job waits on its queue: {status}");
    dashboard.terminate_cleanly();
}

/// `posts-worker submit TASK ARGS...` without waiting: the job id it prints.
fn submit_id(deployment: &Deployment, task_and_args: &[&str]) -> String {
    let out = deployment.run(&[&["submit"], task_and_args].concat());
    assert_success(&out, &format!("posts-worker submit {task_and_args:?}"));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The hostile markup was shown, not run: none of its elements is in the page (so the
/// image's error handler cannot fire later either) and neither of its scripts ran.
fn assert_inert(browser: &Chromium, page_url: &str) {
    let inserted = browser
        .eval("Array.from(document.querySelectorAll('main#live script, main#live img')).length");
    assert_eq!(
        inserted, 0,
        "{page_url}: markup from job data became elements"
    );
    let ran = browser.eval("typeof window.__xss");
    assert_eq!(ran, "undefined", "{page_url}: the job data's script ran");
}
