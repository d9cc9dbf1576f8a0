//! Tasks in a running agent: run one to its end and route its result, ask a
//! human about a parked one, and resume parked tasks once decided.

use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use serde_json::json;
use tracing::{Instrument, error, info, warn};

use super::Shared;
use super::events::{handle_event, post_event};
use crate::approvals::{Approval, ApprovalOrigin, ApprovalRequest, ApprovalStatus};
use crate::coord::Outcome;
use crate::tasks::ApprovalDecision;

/// Ask a human (Telegram, through the approvals module) about a task that
/// was just parked.
pub(super) async fn request_task_approval(shared: &Shared, task_id: &str) {
    let row = match crate::store::tasks::get(shared.store.pool(), task_id).await {
        Ok(Some(row)) => row,
        Ok(None) => return,
        Err(e) => {
            error!(task = task_id, error = %e, "could not read a parked task");
            return;
        }
    };
    if let Err(e) = task_approval(shared, &row).await {
        error!(
            task = task_id,
            error = format!("{e:#}"),
            "could not request an approval for a task"
        );
    }
}

/// The approval request a parked task waits on, made now if it has none
/// yet (just parked, or a crash came between parking and asking) or if the
/// one it names is not its pipeline's own.
async fn task_approval(
    shared: &Shared,
    row: &crate::store::tasks::TaskRow,
) -> anyhow::Result<Approval> {
    if let Some(id) = &row.approval_id
        && let Some(a) = shared.store.approval(id).await?
    {
        if a.origin == ApprovalOrigin::Task && a.task_id.as_deref() == Some(row.id.as_str()) {
            return Ok(a);
        }
        error!(task = %row.id, approval = %id, origin = a.origin.as_str(),
               "the approval this task names is not its pipeline's own request; asking again");
    }
    let id = match &row.approval_id {
        Some(id) if shared.store.approval(id).await?.is_none() => id.clone(),
        _ => crate::approvals::new_approval_id(),
    };
    // Bound first: a crash after this leaves a task that names a request
    // not made yet, which the next pass makes under the same id.
    shared.tasks.bind_approval(&row.id, &id).await?;
    let policy = shared.tasks.policy(&row.spec);
    let mut req = ApprovalRequest::new(
        format!("Run task {}: {}", row.id, row.title),
        shared.agent.name.clone(),
    );
    req.origin = ApprovalOrigin::Task;
    req.id = Some(id.clone());
    req.task_id = Some(row.id.clone());
    req.detail = row
        .spec
        .steps
        .iter()
        .map(|st| format!("{}: {}", st.skill, st.args.join(" ")))
        .collect::<Vec<_>>()
        .join("\n");
    req.risk = policy.as_ref().map_or(row.risk_score, |p| p.score);
    req.reasons = policy.map(|p| p.reasons()).unwrap_or_default();
    crate::approvals::request(&shared.store, req).await?;
    shared
        .store
        .approval(&id)
        .await?
        .with_context(|| format!("approval {id} vanished"))
}

/// Parked tasks whose own approval request has been decided: run or block them.
pub(super) async fn resume_parked_tasks(shared: &Arc<Shared>) -> anyhow::Result<()> {
    for row in shared.tasks.parked().await? {
        let approval = match task_approval(shared, &row).await {
            Ok(a) => a,
            Err(e) => {
                warn!(task = %row.id, error = format!("{e:#}"), "could not find or make a parked task's approval");
                continue;
            }
        };
        let decision = match approval.status {
            ApprovalStatus::Pending => continue,
            ApprovalStatus::Approved => ApprovalDecision::Approved,
            ApprovalStatus::Expired => ApprovalDecision::Expired,
            ApprovalStatus::Denied | ApprovalStatus::Cancelled => ApprovalDecision::Denied,
        };
        let by = approval.decided_by.as_deref().unwrap_or("approvals");
        match shared.tasks.decide(&row.id, decision, by).await {
            Ok(Some(spec)) => {
                let shared = shared.clone();
                let item = row.item_file.clone();
                tokio::spawn(
                    async move {
                        let outcome = run_task(&shared, spec, true).await;
                        if let Outcome::Failed(e) = &outcome {
                            warn!(error = %e, "an approved task did not succeed");
                        }
                        settle_item(&shared, item.as_deref(), outcome).await;
                    }
                    .in_current_span(),
                );
            }
            Ok(None) if decision == ApprovalDecision::Approved => {}
            Ok(None) => {
                info!(task = %row.id, "task blocked by its approval decision");
                settle_item(
                    shared,
                    row.item_file.as_deref(),
                    Outcome::Failed(json!({
                        "task_id": row.id, "status": "blocked", "approval_id": approval.id,
                        "reason": format!("{} by {by}", if decision == ApprovalDecision::Expired { "approval expired" } else { "denied" }),
                    })),
                )
                .await;
            }
            Err(e) => warn!(task = %row.id, error = %e, "could not apply an approval decision"),
        }
    }
    Ok(())
}

/// A parked task's item, done since it was parked, ends where the task ends.
async fn settle_item(shared: &Shared, item: Option<&str>, outcome: Outcome) {
    let Some(place) = item else { return };
    let settled = crate::coord::queue::settle_parked(
        &shared.config.fleet,
        &shared.agent.name,
        place,
        outcome,
    )
    .await;
    if let Err(e) = settled {
        warn!(item = place, error = %e, "could not file a parked task's item with its final outcome");
    }
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
            let record = json!({
                "task_id": id, "status": report.state.as_str(), "reason": report.reason,
                "attempts": report.attempts, "duration_ms": report.duration_ms,
                "exit_codes": report.exit_codes(), "result_event": routed,
            });
            // Seed 004: "failed/ — failed or blocked".
            if report.state == crate::tasks::TaskState::Succeeded {
                Outcome::Done(record)
            } else {
                Outcome::Failed(record)
            }
        }
        Err(e) => Outcome::Failed(json!({ "task_id": id, "error": format!("{e:#}") })),
    }
}
