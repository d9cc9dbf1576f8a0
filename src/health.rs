//! The agent's operational endpoints on its `listen` address: `/healthz`
//! (the process is alive), `/readyz` (it has started, is not killed or
//! shutting down, and reaches its databases) and `/metrics` (Prometheus).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// Readiness as the orchestrator (compose, systemd) should see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Readiness {
    Starting = 0,
    Ready = 1,
    Paused = 2,
    Stopping = 3,
    /// Alive, waiting for the agent's lease (another process holds it) or
    /// for the coordination database, before starting.
    Standby = 4,
}

/// Shared readiness: the state, lock-free, and what is degraded (a
/// database out of reach), which `/readyz` reports while it lasts.
#[derive(Clone, Default)]
pub struct ReadyFlag {
    state: Arc<AtomicU8>,
    degraded: Arc<Mutex<Option<String>>>,
}

impl ReadyFlag {
    pub fn set(&self, r: Readiness) {
        self.state.store(r as u8, Ordering::Relaxed);
    }

    /// What is degraded now, in a sentence; `None` when nothing is.
    pub fn set_degraded(&self, why: Option<String>) {
        *self.degraded.lock().unwrap_or_else(|p| p.into_inner()) = why;
    }

    pub fn degraded(&self) -> Option<String> {
        self.degraded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn get(&self) -> Readiness {
        match self.state.load(Ordering::Relaxed) {
            1 => Readiness::Ready,
            2 => Readiness::Paused,
            3 => Readiness::Stopping,
            4 => Readiness::Standby,
            _ => Readiness::Starting,
        }
    }
}

#[derive(Clone)]
struct HealthState {
    agent: String,
    metrics: Metrics,
    ready: ReadyFlag,
}

/// Bind and serve in a background task; returns the bound address (the
/// configured port may be 0).
pub async fn serve(
    listen: SocketAddr,
    agent: String,
    metrics: Metrics,
    ready: ReadyFlag,
    shutdown: Shutdown,
) -> anyhow::Result<SocketAddr> {
    serve_with(listen, agent, metrics, ready, shutdown, Router::new()).await
}

/// Serves the endpoints while the process waits to start (as a standby,
/// or for its database), until `done` resolves; the address is free again
/// when the returned task ends. A supervisor's healthcheck sees it alive.
pub async fn serve_while_waiting(
    listen: SocketAddr,
    agent: String,
    ready: ReadyFlag,
    done: Shutdown,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = bind(listen).await?;
    Ok(serve_on(
        listener,
        routes(agent, Metrics::default(), ready),
        done,
    ))
}

/// Serves `app` on `listener` in a task until `stop`.
fn serve_on(
    listener: tokio::net::TcpListener,
    app: Router,
    mut stop: Shutdown,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let stopped = async move { stop.stopped().await };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::warn!(error = %e, "health endpoint stopped");
        }
    })
}

async fn bind(listen: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {listen} for /healthz and /metrics (is another agent using it?)"
            )
        })
}

fn routes(agent: String, metrics: Metrics, ready: ReadyFlag) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Arc::new(HealthState {
            agent,
            metrics,
            ready,
        }))
}

/// [`serve`] with more routes on the same address (the Telegram webhook).
pub async fn serve_with(
    listen: SocketAddr,
    agent: String,
    metrics: Metrics,
    ready: ReadyFlag,
    shutdown: Shutdown,
    extra: Router,
) -> anyhow::Result<SocketAddr> {
    let listener = bind(listen).await?;
    let addr = listener.local_addr()?;
    let app = routes(agent, metrics, ready).merge(extra);
    serve_on(listener, app, shutdown);
    Ok(addr)
}

async fn healthz(State(s): State<Arc<HealthState>>) -> impl IntoResponse {
    (StatusCode::OK, format!("ok {}\n", s.agent))
}

async fn readyz(State(s): State<Arc<HealthState>>) -> impl IntoResponse {
    let readiness = s.ready.get();
    let state = match readiness {
        Readiness::Ready => "ready",
        Readiness::Paused => "paused (kill switch)",
        Readiness::Starting => "starting",
        Readiness::Stopping => "stopping",
        Readiness::Standby => {
            "standby (waiting for the agent's lease, held by another process, or for the coordination database)"
        }
    };
    match (readiness, s.ready.degraded()) {
        (Readiness::Ready, None) => (StatusCode::OK, "ready\n".to_owned()),
        (_, None) => (StatusCode::SERVICE_UNAVAILABLE, format!("{state}\n")),
        // Still running and keeping what arrives; said so until it recovers.
        (_, Some(why)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("degraded: {why}\n{state}\n"),
        ),
    }
}

async fn metrics_text(State(s): State<Arc<HealthState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
}
