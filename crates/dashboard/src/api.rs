//! The JSON API: the records the pages are drawn from, for scripts.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jobq::JobId;
use serde_json::json;

use crate::error::ReadError;
use crate::pages::{JobsQuery, job_state};
use crate::state::AppState;
use crate::views;

/// A JSON error body with `status`.
pub(crate) fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": message.to_string()}))).into_response()
}

fn unavailable(e: &ReadError) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, e)
}

/// `GET /api/overview`: stats, workers, per-task metrics, the last hour's throughput.
pub(crate) async fn overview(State(shared): State<AppState>) -> Response {
    match views::readings(&shared).await {
        Ok(r) => Json(json!({
            "namespace": shared.namespace(),
            "stats": r.stats,
            "workers": r.workers,
            "tasks": r.tasks,
            "throughput": r.throughput,
        }))
        .into_response(),
        Err(e) => unavailable(&e),
    }
}

/// `GET /api/jobs?task=&state=`: recent job events, newest first.
pub(crate) async fn jobs(State(shared): State<AppState>, Query(q): Query<JobsQuery>) -> Response {
    let state = match q.state() {
        Ok(state) => state,
        Err(text) => return error(StatusCode::BAD_REQUEST, text),
    };
    match views::jobs(&shared, q.task(), state).await {
        Ok(events) => Json(json!({ "jobs": events })).into_response(),
        Err(e) => unavailable(&e),
    }
}

/// `GET /api/jobs/{id}`: a job's events, result and state; 404 when unknown.
pub(crate) async fn job(State(shared): State<AppState>, Path(id): Path<String>) -> Response {
    let job_id = JobId::from(id.as_str());
    match shared.monitor.job(&job_id, 10_000).await {
        Ok(Some(details)) => Json(json!({
            "id": id,
            "state": job_state(&details),
            "result": details.record,
            "events": details.events,
        }))
        .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no job {id:?} is recorded")),
        Err(e) => unavailable(&e.into()),
    }
}

/// `GET /api/dead`: the newest dead letters and their total.
pub(crate) async fn dead(State(shared): State<AppState>) -> Response {
    match views::dead_letters(&shared).await {
        Ok((total, letters)) => {
            Json(json!({"total": total, "dead_letters": letters})).into_response()
        }
        Err(e) => unavailable(&e),
    }
}

/// `GET /api/schedules`: every schedule, with what its last job wrote.
pub(crate) async fn schedules(State(shared): State<AppState>) -> Response {
    match views::schedules_with_outputs(&shared).await {
        Ok(schedules) => {
            let schedules: Vec<_> = schedules
                .into_iter()
                .map(|(status, outputs)| {
                    // A value that is JSON is served as JSON, anything else as a string.
                    let outputs: serde_json::Map<_, _> = outputs
                        .into_iter()
                        .map(|(key, value)| {
                            let value = value
                                .map(|text| serde_json::from_str(&text).unwrap_or(json!(text)))
                                .unwrap_or(serde_json::Value::Null);
                            (key, value)
                        })
                        .collect();
                    json!({"schedule": status, "outputs": outputs})
                })
                .collect();
            Json(json!({ "schedules": schedules })).into_response()
        }
        Err(e) => unavailable(&e),
    }
}
