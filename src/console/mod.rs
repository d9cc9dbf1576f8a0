//! The fleet console: a small read-only page on an agent's listen address
//! (`[console] enabled`), showing the fleet as the status board does (the
//! agents and their heartbeats, the kill switch, mutes with their expiry,
//! locks) and this agent's own queues, pending approvals, running tasks and
//! recent failures. The page (`page.html`, no build step, no outside
//! script) asks `/console/state` every two seconds and redraws in place.
//!
//! The view is assembled by the agent ([`ConsoleSource`], `agent::console`);
//! this module owns its shape and the HTTP side: with a token configured,
//! `/console/state` answers only a request carrying it (`Authorization:
//! Bearer TOKEN`; the page takes it from the address's `#token=` fragment,
//! which browsers never send to the server).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;

use crate::config::Secret;

const PAGE: &str = include_str!("page.html");

/// Everything the page shows, in one answer.
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleView {
    /// The agent serving the page.
    pub agent: String,
    pub generated_at: DateTime<Utc>,
    pub agents: Vec<AgentRow>,
    pub kill_switch: Option<String>,
    pub mutes: Vec<MuteRow>,
    pub locks: Vec<LockRow>,
    /// This agent's outbox: deliveries per state.
    pub deliveries: Vec<(String, u64)>,
    pub approvals: Vec<ApprovalRow>,
    pub tasks: Vec<TaskRow>,
    pub failures: Vec<FailureRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentRow {
    pub name: String,
    pub state: String,
    pub host: String,
    pub pid: u32,
    /// Seconds since its last heartbeat.
    pub beat_age_s: i64,
    pub stale: bool,
    pub queue_depth: u64,
    pub current_task: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MuteRow {
    pub id: String,
    pub target: String,
    pub expires_at: DateTime<Utc>,
    pub by: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LockRow {
    pub name: String,
    pub holder: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRow {
    pub id: String,
    pub summary: String,
    pub risk: u8,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskRow {
    pub id: String,
    pub title: String,
    pub state: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailureRow {
    /// `delivery` or `task`.
    pub kind: &'static str,
    pub what: String,
    pub why: String,
    pub at: DateTime<Utc>,
}

/// Where the view comes from (the running agent).
pub trait ConsoleSource: Send + Sync {
    fn view(&self) -> BoxFuture<'_, anyhow::Result<ConsoleView>>;
}

#[derive(Clone)]
struct ConsoleState {
    source: Arc<dyn ConsoleSource>,
    token: Option<Arc<Secret>>,
}

/// `/console` (the page) and `/console/state` (the view as JSON).
pub fn router(source: Arc<dyn ConsoleSource>, token: Option<Secret>) -> Router {
    Router::new()
        .route("/console", get(page))
        .route("/console/state", get(state))
        .with_state(ConsoleState {
            source,
            token: token.map(Arc::new),
        })
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
            ),
        ],
        Html(PAGE),
    )
        .into_response()
}

/// Constant-time comparison: the token is a secret.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn state(State(s): State<ConsoleState>, headers: HeaderMap) -> Response {
    if let Some(token) = &s.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same(given.as_bytes(), token.expose().as_bytes()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "the console needs its token: open /console#token=TOKEN\n",
            )
                .into_response();
        }
    }
    match s.source.view().await {
        Ok(view) => ([(header::CACHE_CONTROL, "no-store")], axum::Json(view)).into_response(),
        Err(e) => {
            let id = format!("{:08x}", rand::random::<u32>());
            tracing::warn!(error_id = %id, error = format!("{e:#}"), "the console's view could not be read");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the fleet's state could not be read (error {id}, in the agent's log)\n"),
            )
                .into_response()
        }
    }
}
