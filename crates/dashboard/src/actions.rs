//! The changing requests: requeueing and purging dead letters, from the page's forms
//! (behind a confirmation page) and from the API.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use jobq::JobId;
use serde::Deserialize;
use serde_json::json;

use crate::api;
use crate::guard;
use crate::pages::{View, message, page};
use crate::state::{AppState, Shared};

/// The fields the forms post.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ActionForm {
    /// Requeue only this job's dead letter (otherwise all).
    job_id: Option<String>,
    /// `yes` once the person confirmed.
    confirm: Option<String>,
    token: Option<String>,
}

impl ActionForm {
    fn job_id(&self) -> Option<JobId> {
        self.job_id
            .as_deref()
            .filter(|id| !id.is_empty())
            .map(JobId::from)
    }
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct Confirm<'a> {
    question: &'a str,
    action: &'a str,
    button: &'a str,
    fields: Vec<(&'static str, String)>,
}

/// The most dead letters one "requeue all" moves.
const REQUEUE_ALL_LIMIT: usize = 100_000;

/// What an action did, in words.
enum Done {
    Requeued(usize),
    Purged(usize),
}

async fn requeue(shared: &Shared, job_id: Option<&JobId>) -> Result<Done, jobq::Error> {
    let client = shared.client();
    let moved = match job_id {
        Some(id) => usize::from(client.requeue_dead_job(id).await?),
        None => client.requeue_dead(REQUEUE_ALL_LIMIT).await?,
    };
    tracing::info!(requeued = moved, job_id = ?job_id, "dead letters requeued from the dashboard");
    Ok(Done::Requeued(moved))
}

async fn purge(shared: &Shared) -> Result<Done, jobq::Error> {
    let purged = shared.client().purge_dead().await?;
    tracing::info!(purged, "dead letters purged from the dashboard");
    Ok(Done::Purged(purged))
}

/// `POST /dead/requeue`: asks for confirmation, then requeues.
pub(crate) async fn requeue_form(
    State(shared): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Err((status, text)) = guard::allow(&shared, &headers, form.token.as_deref()) {
        return message(&shared, status, "Refused", &text, "/dead");
    }
    let job_id = form.job_id();
    if form.confirm.as_deref() != Some("yes") {
        let question = match &job_id {
            Some(id) => format!("Requeue the dead letter of job {id}?"),
            None => "Requeue every dead letter?".to_owned(),
        };
        return confirm(&shared, &question, "/dead/requeue", "Yes, requeue", &form);
    }
    finish(&shared, requeue(&shared, job_id.as_ref()).await)
}

/// `POST /dead/purge`: asks for confirmation, then deletes every dead letter.
pub(crate) async fn purge_form(
    State(shared): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Err((status, text)) = guard::allow(&shared, &headers, form.token.as_deref()) {
        return message(&shared, status, "Refused", &text, "/dead");
    }
    if form.confirm.as_deref() != Some("yes") {
        return confirm(
            &shared,
            "Delete every dead letter? This cannot be undone.",
            "/dead/purge",
            "Yes, purge",
            &form,
        );
    }
    finish(&shared, purge(&shared).await)
}

fn confirm(
    shared: &Shared,
    question: &str,
    action: &str,
    button: &str,
    form: &ActionForm,
) -> Response {
    let mut fields = Vec::new();
    if let Some(id) = &form.job_id {
        fields.push(("job_id", id.clone()));
    }
    if let Some(token) = &form.token {
        fields.push(("token", token.clone()));
    }
    let content = Confirm {
        question,
        action,
        button,
        fields,
    }
    .render();
    page(shared, "Confirm", View::Still, StatusCode::OK, content)
}

fn finish(shared: &Shared, done: Result<Done, jobq::Error>) -> Response {
    match done {
        Ok(Done::Requeued(n)) => message(
            shared,
            StatusCode::OK,
            "Requeued",
            &format!("{n} dead letter(s) went back to their queues."),
            "/dead",
        ),
        Ok(Done::Purged(n)) => message(
            shared,
            StatusCode::OK,
            "Purged",
            &format!("{n} dead letter(s) deleted."),
            "/dead",
        ),
        Err(e) => message(
            shared,
            StatusCode::SERVICE_UNAVAILABLE,
            "Redis is unreachable",
            &e.to_string(),
            "/dead",
        ),
    }
}

/// `POST /api/dead/requeue` (form field `job_id`: only that job's letter; else all).
pub(crate) async fn requeue_api(
    State(shared): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Err((status, text)) = guard::allow(&shared, &headers, form.token.as_deref()) {
        return api::error(status, text);
    }
    api_done(requeue(&shared, form.job_id().as_ref()).await)
}

/// `POST /api/dead/purge`.
pub(crate) async fn purge_api(
    State(shared): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Err((status, text)) = guard::allow(&shared, &headers, form.token.as_deref()) {
        return api::error(status, text);
    }
    api_done(purge(&shared).await)
}

fn api_done(done: Result<Done, jobq::Error>) -> Response {
    match done {
        Ok(Done::Requeued(n)) => Json(json!({"requeued": n})).into_response(),
        Ok(Done::Purged(n)) => Json(json!({"purged": n})).into_response(),
        Err(e) => api::error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}
