//! The router, and the control API under `/_control/` that tests, `demo` and
//! fake agents use to move the stand-in's state (the same moves as the Rust
//! methods on [`GithubSandbox`], over HTTP). All are `POST` with a JSON body
//! unless said otherwise:
//!
//! - `stage` `{repo, branch, stage}` → `{ok, head_sha}`
//! - `outage` `{down}`; `secondary_limit` `{requests, status?, retry_after?}`
//! - `requests` (`GET`): the request log
//! - `review_thread` `{repo, branch, author, body}` → `{ok, id}`
//! - `resolve_thread` `{id, resolved}`
//! - `pr_body` `{repo, branch, body}` (`body` may be `null`)
//! - `pr_files` `{repo, branch, files: [..]}`
//! - `push` `{repo, branch, rebase, ci?, conflict?}` → `{ok, sha}`
//!
//! The ones that need an open PR (or a known thread) answer `404
//! {ok: false, error}` without one.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{CiResult, GithubSandbox, RequestRecord, Stage, graphql, rest};

/// The GitHub API plus its control endpoints under `/_control/`. Mount it at
/// the root or under a prefix (octocrab keeps a `base_uri` path prefix).
pub fn router(state: GithubSandbox) -> Router {
    Router::new()
        .route("/_control/stage", post(control_stage))
        .route("/_control/outage", post(control_outage))
        .route("/_control/secondary_limit", post(control_secondary))
        .route("/_control/requests", get(control_requests))
        .route("/_control/review_thread", post(control_review_thread))
        .route("/_control/resolve_thread", post(control_resolve_thread))
        .route("/_control/pr_body", post(control_pr_body))
        .route("/_control/pr_files", post(control_pr_files))
        .route("/_control/push", post(control_push))
        .route("/graphql", post(graphql::handle))
        .fallback(rest::api)
        .with_state(state)
}

#[derive(Deserialize)]
struct StageBody {
    repo: String,
    branch: String,
    stage: Stage,
}

async fn control_stage(State(s): State<GithubSandbox>, Json(b): Json<StageBody>) -> Json<Value> {
    let sha = s.set_stage(&b.repo, &b.branch, b.stage);
    Json(json!({ "ok": true, "head_sha": sha }))
}

#[derive(Deserialize)]
struct OutageBody {
    down: bool,
}

async fn control_outage(State(s): State<GithubSandbox>, Json(b): Json<OutageBody>) -> Json<Value> {
    s.set_outage(b.down);
    Json(json!({ "ok": true }))
}

#[derive(Deserialize)]
struct SecondaryBody {
    requests: u32,
    #[serde(default = "default_secondary_status")]
    status: u16,
    #[serde(default = "default_retry_after")]
    retry_after: u64,
}
fn default_secondary_status() -> u16 {
    403
}
fn default_retry_after() -> u64 {
    60
}

async fn control_secondary(
    State(s): State<GithubSandbox>,
    Json(b): Json<SecondaryBody>,
) -> Json<Value> {
    s.secondary_limit(b.requests, b.status, b.retry_after);
    Json(json!({ "ok": true }))
}

async fn control_requests(State(s): State<GithubSandbox>) -> Json<Vec<RequestRecord>> {
    Json(s.requests())
}

/// A control call the state refuses (no such PR or thread): 404 with the reason.
type Refusal = (StatusCode, Json<Value>);

fn refused(e: String) -> Refusal {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "ok": false, "error": e })),
    )
}

#[derive(Deserialize)]
struct ThreadBody {
    repo: String,
    branch: String,
    author: String,
    body: String,
}

async fn control_review_thread(
    State(s): State<GithubSandbox>,
    Json(b): Json<ThreadBody>,
) -> Result<Json<Value>, Refusal> {
    let id = s
        .try_add_review_thread(&b.repo, &b.branch, &b.author, &b.body)
        .map_err(refused)?;
    Ok(Json(json!({ "ok": true, "id": id })))
}

#[derive(Deserialize)]
struct ResolveBody {
    id: String,
    resolved: bool,
}

async fn control_resolve_thread(
    State(s): State<GithubSandbox>,
    Json(b): Json<ResolveBody>,
) -> Result<Json<Value>, Refusal> {
    s.try_resolve_review_thread(&b.id, b.resolved)
        .map_err(refused)?;
    Ok(Json(json!({ "ok": true })))
}

#[derive(Deserialize)]
struct PrBodyBody {
    repo: String,
    branch: String,
    body: Option<String>,
}

async fn control_pr_body(
    State(s): State<GithubSandbox>,
    Json(b): Json<PrBodyBody>,
) -> Result<Json<Value>, Refusal> {
    s.try_set_pr_body(&b.repo, &b.branch, b.body.as_deref())
        .map_err(refused)?;
    Ok(Json(json!({ "ok": true })))
}

#[derive(Deserialize)]
struct PrFilesBody {
    repo: String,
    branch: String,
    files: Vec<String>,
}

async fn control_pr_files(
    State(s): State<GithubSandbox>,
    Json(b): Json<PrFilesBody>,
) -> Result<Json<Value>, Refusal> {
    s.try_set_pr_files(&b.repo, &b.branch, b.files)
        .map_err(refused)?;
    Ok(Json(json!({ "ok": true })))
}

#[derive(Deserialize)]
struct PushBody {
    repo: String,
    branch: String,
    #[serde(default)]
    rebase: bool,
    ci: Option<CiResult>,
    conflict: Option<bool>,
}

async fn control_push(State(s): State<GithubSandbox>, Json(b): Json<PushBody>) -> Json<Value> {
    let sha = s.push_fix(&b.repo, &b.branch, b.rebase, b.ci, b.conflict);
    Json(json!({ "ok": true, "sha": sha }))
}
