//! The agent's [`MonitorOutput`]: where the GitHub monitor's findings go in a
//! running agent, and [`AgentEvents`], its way into the agent's routing.
//!
//! - the status message: one Discord message per task in
//!   `discord:sub-agent-results`, edited in place ([`PinnedMessages`]), its id
//!   kept under `github_status:<task id>`;
//! - ready for merge and escalations: `action_required` events through the
//!   agent's routing (Telegram by the default routes), deduplicated by an
//!   `event_id` derived from what they are about, so a restart that repeats a
//!   pass does not repeat a ping;
//! - retries: a `subagent_result` event (`github.retry`) with the failure's
//!   context and how the correction reached the worker (typed into its tmux
//!   session, written to an inbox, respawned, or why not). When the task
//!   names no worker, the event is dropped into the agent's own inbox (the
//!   file is durable across a crash between the decision and the hand-back);
//!   otherwise it is routed at once, the correction itself having gone to
//!   the worker. Its `event_id` makes a repeat a duplicate.

use std::future::Future;
use std::path::PathBuf;

use anyhow::Context as _;
use chrono::Utc;
use switchyard_routing::{Event, EventDraft, EventId};
use tracing::{info, warn};

use std::sync::Arc;

use super::Shared;
use super::events::handle_event;
use crate::discord::pinned_status::{PinnedMessages, Upserted};
use crate::github::failures::Failure;
use crate::github::monitor::MonitorOutput;
use crate::github::registry::TrackedTask;
use crate::github::requirements::PullSnapshot;
use crate::github::workers::Delivery;

/// The channel alias the status messages live in.
pub const STATUS_CHANNEL: &str = "sub-agent-results";

/// The `discord_state` key of a task's status message id.
pub fn status_key(task_id: &str) -> String {
    format!("github_status:{task_id}")
}

/// Routes an event as if it had arrived in the inbox (the agent's `handle_event`).
pub trait EventPort: Send + Sync {
    fn route(&self, event: Event) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The GitHub monitor's way into routing: its events go where inbox events go.
pub(super) struct AgentEvents(pub(super) Arc<Shared>);

impl EventPort for AgentEvents {
    async fn route(&self, event: Event) -> anyhow::Result<()> {
        // Each event is its own decision: repeats are the monitor's business (event ids).
        handle_event(&self.0, event, None).await.map(|_| ())
    }
}

/// [`MonitorOutput`] over a running agent.
pub struct AgentOutput<P> {
    agent: String,
    workspace: PathBuf,
    /// `None` when the agent has no Discord bot token: the status is then
    /// posted as a new `subagent_result` message on each change.
    pinned: Option<PinnedMessages>,
    events: P,
}

impl<P: EventPort> AgentOutput<P> {
    pub fn new(
        agent: impl Into<String>,
        workspace: PathBuf,
        pinned: Option<PinnedMessages>,
        events: P,
    ) -> Self {
        let agent = agent.into();
        if pinned.is_none() {
            warn!(
                agent = %agent,
                "no Discord bot token: GitHub status messages cannot be edited in place; each change is posted as a new sub-agent result"
            );
        }
        AgentOutput {
            agent,
            workspace,
            pinned,
            events,
        }
    }

    fn source(&self) -> String {
        format!("agent:{}", self.agent)
    }

    async fn emit(&self, draft: EventDraft) -> anyhow::Result<()> {
        let event = draft
            .validate(Utc::now(), EventId::generate(Utc::now(), rand::random()))
            .map_err(|e| anyhow::anyhow!("the monitor built an invalid event: {e}"))?;
        self.events.route(event).await
    }
}

/// Letters, digits and `_-.:` only, as event ids require; at most `max` characters.
fn ident(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

/// A stable short hash (FNV-1a): std's hasher may change between releases,
/// and these ids must survive a restart.
fn short_hash(s: &str) -> String {
    let h = s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    format!("{h:016x}")
}

fn event_id(kind: &str, task: &TrackedTask, about: &str) -> String {
    format!(
        "evt_github_{kind}_{}_{}",
        ident(task.id(), 64),
        short_hash(about)
    )
}

fn pr_link(task: &TrackedTask, pr: &PullSnapshot) -> String {
    pr.html_url
        .clone()
        .unwrap_or_else(|| format!("{}#{}", task.repo, pr.number))
}

fn labels(task: &TrackedTask) -> std::collections::BTreeMap<String, String> {
    [
        ("task", task.id().to_string()),
        ("repo", task.repo.to_string()),
        ("branch", task.record.branch.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

impl<P: EventPort> MonitorOutput for AgentOutput<P> {
    async fn upsert_status(&self, task: &TrackedTask, text: &str) -> anyhow::Result<()> {
        let title = format!("GitHub · {}", task.id());
        match &self.pinned {
            Some(pinned) => {
                let done = pinned
                    .upsert(STATUS_CHANNEL, &status_key(task.id()), &title, text)
                    .await?;
                match done {
                    Upserted::Posted { message_id } => {
                        info!(task = %task.id(), message_id, "GitHub status message posted")
                    }
                    Upserted::Edited { message_id } => {
                        info!(task = %task.id(), message_id, "GitHub status message edited")
                    }
                }
                Ok(())
            }
            None => {
                self.emit(EventDraft {
                    event_id: Some(event_id("status", task, text)),
                    event_type: Some("github.status".into()),
                    category: Some("subagent_result".into()),
                    severity: Some("info".into()),
                    source: Some(self.source()),
                    title: Some(title),
                    body: Some(text.to_string()),
                    labels: labels(task),
                    ..Default::default()
                })
                .await
            }
        }
    }

    async fn ready_for_merge(&self, task: &TrackedTask, pr: &PullSnapshot) -> anyhow::Result<()> {
        let mut labels = labels(task);
        labels.insert("pr".into(), pr.number.to_string());
        let mut body = String::new();
        if let Some(d) = &task.record.description {
            body.push_str(&format!("{}: {d}\n", task.id()));
        }
        body.push_str(
            "Every requirement is met: CI green, reviews approved, mergeable, up to date with the base. \
             The merge is yours.",
        );
        // One ping per task and head: the same head seen again (a restart
        // replaying a pass) is a duplicate event, not a second ping.
        self.emit(EventDraft {
            event_id: Some(event_id("ready", task, &pr.head_sha)),
            event_type: Some("github.ready_for_merge".into()),
            category: Some("action_required".into()),
            severity: Some("info".into()),
            source: Some(self.source()),
            title: Some(format!(
                "PR #{} ready for your merge: {}",
                pr.number,
                pr_link(task, pr)
            )),
            body: Some(body),
            labels,
            ..Default::default()
        })
        .await
    }

    async fn escalate(&self, task: &TrackedTask, failure: &Failure) -> anyhow::Result<()> {
        let mut labels = labels(task);
        labels.insert("failure".into(), failure.class.to_string());
        self.emit(EventDraft {
            event_id: Some(event_id("escalated", task, &failure.fingerprint)),
            event_type: Some("github.escalated".into()),
            category: Some("action_required".into()),
            severity: Some("warning".into()),
            source: Some(self.source()),
            title: Some(format!(
                "Task {} needs you ({}): {}",
                task.id(),
                failure.class,
                failure.blocker
            )),
            body: Some(format!(
                "{}\n{} attempt(s) of {} spent; the agent will not retry. Fix the blocker or take the task over.",
                failure.blocker,
                task.attempts(),
                task.max_attempts()
            )),
            labels,
            ..Default::default()
        })
        .await
    }

    async fn retry(
        &self,
        task: &TrackedTask,
        failure: &Failure,
        delivery: &Delivery,
    ) -> anyhow::Result<()> {
        let id = event_id("retry", task, &failure.fingerprint);
        let mut labels = labels(task);
        labels.insert("failure".into(), failure.class.to_string());
        labels.insert("attempt".into(), task.attempts().to_string());
        let title = format!(
            "Task {} back to work (attempt {} of {}): {}",
            task.id(),
            task.attempts() + 1,
            task.max_attempts(),
            failure.class
        );
        let announced_only = *delivery == Delivery::AnnouncedOnly;
        if !announced_only {
            labels.insert("delivery".into(), delivery_label(delivery).into());
        }
        let mut draft = EventDraft {
            event_id: Some(id.clone()),
            event_type: Some("github.retry".into()),
            category: Some("subagent_result".into()),
            severity: Some("warning".into()),
            source: Some(self.source()),
            title: Some(title),
            body: Some(format!("{}\n{}", failure.context(), delivery.line())),
            labels,
            ..Default::default()
        };
        if !announced_only {
            // The worker has it (or could not get it): the announcement says which.
            return self.emit(draft).await;
        }
        draft.kind = Some("event".into());
        let item = serde_json::to_value(&draft).context("encoding the hand-back")?;
        let workspace = self.workspace.clone();
        let agent = task.record.agent.clone();
        tokio::task::spawn_blocking(move || {
            crate::coord::inbox::drop_item(&workspace, &agent, &id, &item)
        })
        .await
        .context("the inbox write did not finish")?
        .with_context(|| {
            format!(
                "handing task {} back to agent {}",
                task.id(),
                task.record.agent
            )
        })?;
        Ok(())
    }
}

fn delivery_label(d: &Delivery) -> &'static str {
    match d {
        Delivery::Typed { .. } => "typed",
        Delivery::Dropped { .. } => "inbox",
        Delivery::Respawned { .. } => "respawned",
        Delivery::NotDelivered(_) => "not_delivered",
        Delivery::AnnouncedOnly => "announced",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_valid_and_stable() {
        let record: crate::github::registry::TaskRecord = serde_json::from_value(serde_json::json!({
            "id": "feat/x y", "agent": "a", "repo": "acme/app", "branch": "b", "status": "running"
        }))
        .unwrap();
        let t = TrackedTask::new(record).unwrap();
        let a = event_id("ready", &t, "abc");
        assert_eq!(a, event_id("ready", &t, "abc"));
        assert_ne!(a, event_id("ready", &t, "abd"));
        assert!(a.starts_with("evt_github_ready_feat_x_y_"), "{a}");
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
        );
    }
}
