//! Tasks in a running agent: run one to its end and route its result, ask a
//! human about a parked one, and resume parked tasks once decided.

use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use tracing::{Instrument, error, info, warn};

use super::Shared;
use super::events::{handle_event, post_event};
use crate::coord::Outcome;

/// Ask a human (Telegram, through the approvals module) about a parked task.
pub(super) async fn request_task_approval(shared: &Shared, parked: &serde_json::Value) {
    let Some(task_id) = parked["task_id"].as_str() else {
        return;
    };
    let mut req = crate::approvals::ApprovalRequest::new(
        format!(
            "Run task {task_id}: {}",
            parked["title"].as_str().unwrap_or("")
        ),
        shared.agent.name.clone(),
    );
    req.id = Some(crate::tasks::runner::approval_id(task_id));
    req.task_id = Some(task_id.to_string());
    req.detail = parked["preview"].as_str().unwrap_or("").to_string();
    req.risk = parked["risk"].as_u64().unwrap_or(100).min(100) as u8;
    req.reasons = parked["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if let Err(e) = crate::approvals::request(&shared.store, req).await {
        error!(
            task = task_id,
            error = format!("{e:#}"),
            "could not request an approval for a task"
        );
    }
}

/// Parked tasks whose approval request has been decided: run or block them.
pub(super) async fn resume_parked_tasks(shared: &Arc<Shared>) -> anyhow::Result<()> {
    for task_id in shared.tasks.parked().await? {
        let Some(approval) = shared
            .store
            .approval(&crate::tasks::runner::approval_id(&task_id))
            .await?
        else {
            continue;
        };
        if !approval.status.is_final() {
            continue;
        }
        let decision = json!({
            "task_id": task_id,
            "decision": if approval.status.is_approved() { "approved" } else if approval.status.as_str() == "expired" { "expired" } else { "denied" },
            "by": approval.decided_by.clone().unwrap_or_else(|| "approvals".into()),
        });
        match shared.tasks.decide(&decision).await {
            Ok(Some(spec)) => {
                let shared = shared.clone();
                tokio::spawn(
                    async move {
                        if let Outcome::Failed(e) = run_task(&shared, spec, true).await {
                            warn!(error = %e, "an approved task failed to run");
                        }
                    }
                    .in_current_span(),
                );
            }
            Ok(None) => info!(task = %task_id, "task blocked by its approval decision"),
            Err(e) => warn!(task = %task_id, error = %e, "could not apply an approval decision"),
        }
    }
    Ok(())
}

/// Run a task to its end and route its result event.
pub(super) async fn run_task(
    shared: &Shared,
    spec: crate::tasks::TaskSpec,
    approved: bool,
) -> Outcome {
    let id = spec.id.to_string();
    match shared.tasks.run(spec, approved).await {
        Ok((report, event)) => {
            let mut routed = serde_json::Value::Null;
            if let Some(event) = event {
                match handle_event(shared, event, None).await {
                    Ok(r) => routed = r,
                    Err(e) => {
                        warn!(task = %id, error = format!("{e:#}"), "could not route the task's result")
                    }
                }
            }
            // The task's memory entry (seed 004) went to the memory log; say so.
            if let Some(memory) = report.memory_record(Utc::now()) {
                let draft = switchyard_routing::EventDraft {
                    event_id: Some(format!(
                        "evt_memory_{id}_{}",
                        report.started_at.timestamp_millis()
                    )),
                    event_type: Some("memory.appended".into()),
                    category: Some("memory_update".into()),
                    source: Some(format!("worker:{}", shared.agent.name)),
                    title: Some(format!(
                        "Memory ({}) from task {id}",
                        memory["kind"].as_str().unwrap_or("note")
                    )),
                    body: Some(memory["text"].as_str().unwrap_or("").to_string()),
                    ..Default::default()
                };
                if let Err(e) = post_event(shared, draft, None).await {
                    warn!(task = %id, error = format!("{e:#}"), "could not announce the memory entry");
                }
            }
            Outcome::Done(json!({
                "task_id": id, "status": report.state.as_str(), "reason": report.reason,
                "attempts": report.attempts, "duration_ms": report.duration_ms,
                "exit_codes": report.exit_codes(), "result_event": routed,
            }))
        }
        Err(e) => Outcome::Failed(json!({ "task_id": id, "error": format!("{e:#}") })),
    }
}
