//! The HTML pages. Each page's content is a template of its own; the layout wraps it,
//! unless the request asks for the content alone (`?partial=1`, the live refresh).
//! Templates escape every value they insert.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use jobq::monitor::{EventKind, JobDetails};
use jobq::{JobId, ResultRecord, TaskFailure};
use serde::Deserialize;

use crate::error::ReadError;
use crate::state::{AppState, Shared};
use crate::views::{self, DeadRow, JobRow, Overview, ScheduleRow};

/// Query parameters every page takes.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageQuery {
    /// `1`: the content alone, for the live refresh.
    partial: Option<String>,
}

impl PageQuery {
    fn view(&self) -> View {
        View::of(self.partial.as_deref())
    }
}

/// How a page is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// The whole page, refreshing its content every 2 s.
    Live,
    /// The content alone (what the refresh fetches).
    Partial,
    /// The whole page, not refreshed: the answers to changing requests and error pages,
    /// whose URLs cannot be fetched again.
    Still,
}

impl View {
    /// [`View::Partial`] for `?partial=1`, else [`View::Live`].
    fn of(partial: Option<&str>) -> View {
        if partial == Some("1") {
            View::Partial
        } else {
            View::Live
        }
    }
}

#[derive(Template)]
#[template(path = "layout.html")]
struct Layout<'a> {
    title: &'a str,
    namespace: &'a str,
    live: bool,
    content: &'a str,
}

#[derive(Template)]
#[template(path = "unreachable.html")]
struct Unreachable<'a> {
    error: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct Message<'a> {
    pub(crate) heading: &'a str,
    pub(crate) text: &'a str,
    pub(crate) back: &'a str,
    pub(crate) error: bool,
}

/// A page in `view` with `status`.
pub(crate) fn page(
    shared: &Shared,
    title: &str,
    view: View,
    status: StatusCode,
    content: Result<String, askama::Error>,
) -> Response {
    let content = match content {
        Ok(content) => content,
        Err(e) => return render_failed(&e),
    };
    if view == View::Partial {
        return (status, Html(content)).into_response();
    }
    let layout = Layout {
        title,
        namespace: shared.namespace(),
        live: view == View::Live,
        content: &content,
    };
    match layout.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => render_failed(&e),
    }
}

fn render_failed(e: &askama::Error) -> Response {
    tracing::error!(error = %e, "rendering a page failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("rendering the page failed: {e}"),
    )
        .into_response()
}

/// The page saying the data could not be read; it keeps refreshing until it can.
fn unreachable(shared: &Shared, title: &str, view: View, error: &ReadError) -> Response {
    let text = error.to_string();
    page(
        shared,
        title,
        view,
        StatusCode::SERVICE_UNAVAILABLE,
        Unreachable { error: &text }.render(),
    )
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage<'a> {
    o: &'a Overview,
    namespace: &'a str,
    waiting: u64,
}

pub(crate) async fn overview(
    State(shared): State<AppState>,
    Query(q): Query<PageQuery>,
) -> Response {
    match views::overview(&shared).await {
        Ok(o) => {
            let content = OverviewPage {
                waiting: o.stats.queues.values().sum(),
                o: &o,
                namespace: shared.namespace(),
            }
            .render();
            page(&shared, "Overview", q.view(), StatusCode::OK, content)
        }
        Err(e) => unreachable(&shared, "Overview", q.view(), &e),
    }
}

/// The job list's filters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct JobsQuery {
    pub(crate) task: Option<String>,
    pub(crate) state: Option<String>,
    partial: Option<String>,
}

impl JobsQuery {
    /// The task filter, when one is set.
    pub(crate) fn task(&self) -> Option<&str> {
        self.task.as_deref().filter(|t| !t.is_empty())
    }

    /// The state filter: `Ok(None)` for none, `Err` naming a state that does not exist.
    pub(crate) fn state(&self) -> Result<Option<EventKind>, String> {
        match self.state.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(name) => EventKind::parse(name).map(Some).ok_or_else(|| {
                format!("unknown state {name:?}: use succeeded, failed, retried or dead")
            }),
        }
    }
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage<'a> {
    rows: &'a [JobRow],
    task: &'a str,
    state: &'a str,
    states: [&'static str; 4],
    shown: usize,
    scanned: usize,
}

pub(crate) async fn jobs(State(shared): State<AppState>, Query(q): Query<JobsQuery>) -> Response {
    let view = View::of(q.partial.as_deref());
    let state = match q.state() {
        Ok(state) => state,
        Err(text) => {
            return message(
                &shared,
                StatusCode::BAD_REQUEST,
                "Bad filter",
                &text,
                "/jobs",
            );
        }
    };
    match views::jobs(&shared, q.task(), state).await {
        Ok(events) => {
            let rows: Vec<JobRow> = events.iter().map(views::job_row).collect();
            let content = JobsPage {
                rows: &rows,
                task: q.task().unwrap_or(""),
                state: state.map_or("", EventKind::as_str),
                states: EventKind::ALL.map(EventKind::as_str),
                shown: views::JOBS_SHOWN,
                scanned: views::JOBS_SCANNED,
            }
            .render();
            page(&shared, "Jobs", view, StatusCode::OK, content)
        }
        Err(e) => unreachable(&shared, "Jobs", view, &e),
    }
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage<'a> {
    id: &'a str,
    state: &'a str,
    latest: Option<&'a JobRow>,
    args: String,
    args_truncated: bool,
    result: Option<String>,
    failure: Option<&'a TaskFailure>,
    keys: &'a [String],
    rows: &'a [JobRow],
}

/// How many events a job page scans for the job's history.
const JOB_HISTORY_SCAN: usize = 10_000;

pub(crate) async fn job(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let job_id = JobId::from(id.as_str());
    let details = match shared.monitor.job(&job_id, JOB_HISTORY_SCAN).await {
        Ok(details) => details,
        Err(e) => return unreachable(&shared, "Job", q.view(), &e.into()),
    };
    let Some(details) = details else {
        let text = format!(
            "No job {id:?} is recorded: it never existed, or its result expired and its events were trimmed."
        );
        return message(
            &shared,
            StatusCode::NOT_FOUND,
            "Unknown job",
            &text,
            "/jobs",
        );
    };
    let rows: Vec<JobRow> = details.events.iter().map(views::job_row).collect();
    let latest = details.events.first();
    let (result, failure) = match &details.record {
        Some(ResultRecord::Success { result, .. }) => (
            Some(serde_json::to_string_pretty(result).unwrap_or_default()),
            None,
        ),
        Some(ResultRecord::Failure { error, .. }) => (None, Some(error)),
        _ => (None, None),
    };
    let content = JobPage {
        id: &id,
        state: &job_state(&details),
        latest: rows.first(),
        args: latest
            .and_then(|e| e.args.as_deref())
            .map(pretty_json)
            .unwrap_or_default(),
        args_truncated: latest.is_some_and(|e| e.args_truncated),
        result,
        failure,
        keys: latest.map_or(&[], |e| e.keys.as_slice()),
        rows: &rows,
    }
    .render();
    page(&shared, "Job", q.view(), StatusCode::OK, content)
}

/// The job's state in words: its transient state, else its stored result's, else its
/// newest event's.
pub(crate) fn job_state(details: &JobDetails) -> String {
    if let Some(state) = &details.state {
        return state.as_str().to_ascii_lowercase();
    }
    match &details.record {
        Some(ResultRecord::Success { .. }) => "succeeded".to_owned(),
        Some(ResultRecord::Failure { .. }) => "failed".to_owned(),
        _ => details
            .events
            .first()
            .map_or("unknown", |e| e.kind.as_str())
            .to_owned(),
    }
}

/// JSON text indented, or as it is when it does not parse.
fn pretty_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_owned())
}

#[derive(Template)]
#[template(path = "dead.html")]
struct DeadPage<'a> {
    rows: &'a [DeadRow],
    total: u64,
    mutations: bool,
    token_needed: bool,
}

pub(crate) async fn dead(State(shared): State<AppState>, Query(q): Query<PageQuery>) -> Response {
    match views::dead_letters(&shared).await {
        Ok((total, letters)) => {
            let rows: Vec<DeadRow> = letters.iter().map(views::dead_row).collect();
            let content = DeadPage {
                rows: &rows,
                total,
                mutations: shared.mutations_allowed,
                token_needed: shared.token.is_some(),
            }
            .render();
            page(&shared, "Dead letters", q.view(), StatusCode::OK, content)
        }
        Err(e) => unreachable(&shared, "Dead letters", q.view(), &e),
    }
}

#[derive(Template)]
#[template(path = "schedules.html")]
struct SchedulesPage<'a> {
    rows: &'a [ScheduleRow],
}

pub(crate) async fn schedules(
    State(shared): State<AppState>,
    Query(q): Query<PageQuery>,
) -> Response {
    match views::schedules(&shared).await {
        Ok(rows) => {
            let content = SchedulesPage { rows: &rows }.render();
            page(&shared, "Schedules", q.view(), StatusCode::OK, content)
        }
        Err(e) => unreachable(&shared, "Schedules", q.view(), &e),
    }
}

/// A page with one message.
pub(crate) fn message(
    shared: &Shared,
    status: StatusCode,
    heading: &str,
    text: &str,
    back: &str,
) -> Response {
    let content = Message {
        heading,
        text,
        back,
        error: !status.is_success(),
    }
    .render();
    page(shared, heading, View::Still, status, content)
}

pub(crate) async fn not_found(State(shared): State<AppState>) -> Response {
    message(
        &shared,
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no page at this address.",
        "/",
    )
}

pub(crate) async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../assets/style.css"),
    )
        .into_response()
}

pub(crate) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../assets/live.js"),
    )
        .into_response()
}
