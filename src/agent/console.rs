//! [`ConsoleSource`] over a running agent: the fleet from the status
//! document, this agent's queues, approvals, tasks and failures from its
//! store, as the console page shows them.

use std::sync::Arc;

use chrono::Utc;
use futures_util::future::BoxFuture;

use super::Shared;
use crate::console::{
    AgentRow, ApprovalRow, ConsoleSource, ConsoleView, FailureRow, LockRow, MuteRow, TaskRow,
};
use crate::store::DeliveryState;
use crate::tasks::TaskState;

/// How many recent failures the page lists.
const RECENT: usize = 10;

pub(super) struct AgentConsole(pub(super) Arc<Shared>);

impl ConsoleSource for AgentConsole {
    fn view(&self) -> BoxFuture<'_, anyhow::Result<ConsoleView>> {
        Box::pin(async move {
            let shared = &self.0;
            let now = Utc::now();
            let stale_after = shared.config.fleet.stale_after;
            let status = shared.status.read()?;
            let agents = status
                .agents
                .iter()
                .map(|(name, hb)| AgentRow {
                    name: name.clone(),
                    state: hb.state.as_str().to_string(),
                    host: hb.host.clone(),
                    pid: hb.pid,
                    beat_age_s: (now - hb.last_beat).num_seconds().max(0),
                    stale: !status.is_live(name, now, stale_after),
                    queue_depth: hb.queue_depth,
                    current_task: hb.current_task.clone(),
                })
                .collect();
            let kill_switch = status.is_killed(&shared.agent.name).map(|k| {
                format!(
                    "by {} at {}: {}",
                    k.by,
                    k.at.format("%Y-%m-%d %H:%M UTC"),
                    k.reason
                )
            });
            let mutes = status
                .mutes
                .iter()
                .filter(|m| m.expires_at > now)
                .map(|m| MuteRow {
                    id: m.id.to_string(),
                    target: m.target.to_string(),
                    expires_at: m.expires_at,
                    by: m.created_by.clone(),
                    reason: m.reason.clone(),
                })
                .collect();
            let locks = status
                .active_locks(now)
                .map(|(name, l)| LockRow {
                    name: name.clone(),
                    holder: l.holder.clone(),
                    expires_at: l.expires_at,
                })
                .collect();
            let counts = shared.store.delivery_counts().await?;
            let deliveries = DeliveryState::ALL
                .iter()
                .map(|s| (s.as_str().to_string(), counts.get(s).copied().unwrap_or(0)))
                .collect();
            let approvals = shared
                .store
                .approvals(Some(crate::approvals::ApprovalStatus::Pending))
                .await?
                .into_iter()
                .map(|a| ApprovalRow {
                    id: a.id,
                    summary: a.summary,
                    risk: a.risk,
                    expires_at: a.expires_at,
                })
                .collect();
            let pool = shared.store.pool();
            let mut tasks = Vec::new();
            for state in [
                TaskState::Running,
                TaskState::AwaitingApproval,
                TaskState::Queued,
            ] {
                for t in crate::store::tasks::list(pool, Some(state), 50).await? {
                    tasks.push(TaskRow {
                        id: t.id,
                        title: t.title,
                        state: t.state.as_str().to_string(),
                    });
                }
            }
            let mut failures: Vec<FailureRow> = shared
                .store
                .deliveries_in_state(DeliveryState::Failed, 500)
                .await?
                .into_iter()
                .rev()
                .take(RECENT)
                .map(|d| FailureRow {
                    kind: "delivery",
                    what: format!("{} → {}", d.title, d.destination),
                    why: d.last_error.unwrap_or_default(),
                    at: d.created_at,
                })
                .collect();
            for t in crate::store::tasks::list(pool, Some(TaskState::Failed), RECENT as u32).await?
            {
                failures.push(FailureRow {
                    kind: "task",
                    what: format!("{}: {}", t.id, t.title),
                    why: t.reason.unwrap_or_default(),
                    at: t.updated_at,
                });
            }
            failures.sort_by_key(|f| std::cmp::Reverse(f.at));
            failures.truncate(RECENT);
            Ok(ConsoleView {
                agent: shared.agent.name.to_string(),
                generated_at: now,
                agents,
                kill_switch,
                mutes,
                locks,
                deliveries,
                approvals,
                tasks,
                failures,
            })
        })
    }
}
