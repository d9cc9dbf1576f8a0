//! [`WorkerPort`] over a running agent: a tracked task's worker looked at
//! and corrected on this host (tmux through `execution::tmux`, container
//! tasks in this agent's store, inbox owners by their heartbeat), and
//! spawned sessions respawned and cleaned up (`execution::spawn`).

use std::sync::Arc;

use chrono::Utc;
use futures_util::future::BoxFuture;
use tracing::{info, warn};

use super::Shared;
use crate::execution::spawn::{self, SpawnPlan, Spawner};
use crate::execution::tmux;
use crate::github::failures::Failure;
use crate::github::registry::TrackedTask;
use crate::github::workers::{Delivery, Liveness, Worker, WorkerPort};
use crate::tasks::TaskState;

pub(super) struct AgentWorkers {
    shared: Arc<Shared>,
    spawner: Spawner,
}

impl AgentWorkers {
    pub(super) fn new(shared: Arc<Shared>, spawner: Spawner) -> Self {
        AgentWorkers { shared, spawner }
    }

    async fn tmux_liveness(&self, session: &str, expect: Option<&str>) -> Liveness {
        match self.spawner.tmux.pane(session).await {
            Ok(pane) => tmux::judge(session, pane.as_ref(), expect),
            Err(e) => Liveness::Unknown(e.to_string()),
        }
    }

    async fn container_liveness(&self, id: &str) -> Liveness {
        match crate::store::tasks::get(self.shared.store.pool(), id).await {
            Ok(Some(row)) => match row.state {
                TaskState::Queued | TaskState::AwaitingApproval | TaskState::Running => {
                    Liveness::Alive
                }
                ended => Liveness::Dead(format!("container task {id} ended ({})", ended.as_str())),
            },
            Ok(None) => {
                Liveness::Dead(format!("agent {} has no task {id}", self.shared.agent.name))
            }
            Err(e) => Liveness::Unknown(format!("cannot read task {id}: {e}")),
        }
    }

    fn inbox_liveness(&self, agent: &str) -> Liveness {
        let stale_after = self.shared.config.fleet.stale_after;
        match self.shared.status.read() {
            Ok(status) if status.is_live(agent, Utc::now(), stale_after) => Liveness::Alive,
            Ok(_) => Liveness::Dead(format!(
                "{agent} has no heartbeat in the last {}",
                humantime::format_duration(stale_after)
            )),
            Err(e) => Liveness::Unknown(format!("cannot read the fleet status: {e}")),
        }
    }

    /// The spawn plan of a task spawned here, with its session step's args
    /// from the stored spec when `with_command` (a respawn), without when
    /// only cleaning up.
    async fn plan_of(&self, task: &TrackedTask, with_command: bool) -> Result<SpawnPlan, String> {
        let config = &self.shared.config;
        let template = task
            .record
            .worker
            .spawn_template
            .as_deref()
            .ok_or("the task has no spawnTemplate")?;
        let skill = config
            .skills
            .get(template)
            .filter(|s| s.session.is_some())
            .ok_or_else(|| format!("[skills.{template}] is not a session skill on this agent"))?;
        let args = if with_command {
            let row = crate::store::tasks::get(self.shared.store.pool(), task.id())
                .await
                .map_err(|e| format!("cannot read the spawn task {}: {e}", task.id()))?
                .ok_or_else(|| {
                    format!("the spawn task {} is not in this agent's store", task.id())
                })?;
            row.spec
                .steps
                .iter()
                .find(|s| s.skill == template)
                .map(|s| s.args.clone())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        spawn::plan_for_record(&task.record, skill, &args, &config.sessions)
            .map_err(|e| e.to_string())
    }
}

impl WorkerPort for AgentWorkers {
    fn liveness<'a>(&'a self, task: &'a TrackedTask) -> BoxFuture<'a, Liveness> {
        Box::pin(async move {
            match Worker::of(&task.record) {
                Worker::Tmux { session, expect } => {
                    self.tmux_liveness(&session, expect.as_deref()).await
                }
                Worker::Container { task } => self.container_liveness(&task).await,
                Worker::Inbox { agent } => self.inbox_liveness(&agent),
                Worker::Unnamed => Liveness::Unknown("the task names no worker".into()),
            }
        })
    }

    fn deliver<'a>(
        &'a self,
        task: &'a TrackedTask,
        failure: &'a Failure,
    ) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            match Worker::of(&task.record) {
                Worker::Tmux { session, expect } => {
                    let Some(expect) = expect else {
                        return Delivery::NotDelivered(format!(
                            "the task names no agentCommand, so switchyard cannot tell the agent in {session} from a shell; nothing was typed"
                        ));
                    };
                    // Looked at again right before typing: never into a shell.
                    match self.tmux_liveness(&session, Some(&expect)).await {
                        Liveness::Alive => {
                            match self
                                .spawner
                                .tmux
                                .send_literal(&session, &failure.one_line())
                                .await
                            {
                                Ok(()) => Delivery::Typed { session },
                                Err(e) => Delivery::NotDelivered(e.to_string()),
                            }
                        }
                        Liveness::Dead(why) | Liveness::Unknown(why) => Delivery::NotDelivered(why),
                    }
                }
                Worker::Container { task: id } => Delivery::NotDelivered(format!(
                    "container task {id} reads no input while it runs; the correction is announced only"
                )),
                Worker::Inbox { agent } => {
                    let id = format!(
                        "evt_github_correction_{}_{}",
                        task.id().replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
                        task.attempts()
                    );
                    let item = serde_json::json!({
                        "kind": "event",
                        "event_id": id,
                        "event_type": "github.correction",
                        "category": "subagent_result",
                        "severity": "warning",
                        "source": format!("agent:{}", self.shared.agent.name),
                        "title": format!("Correction for task {}: {}", task.id(), failure.class),
                        "body": failure.context(),
                        "labels": {"task": task.id(), "failure": failure.class.to_string()},
                    });
                    let workspace = self.shared.config.fleet.workspace.clone();
                    let to = agent.clone();
                    let written = tokio::task::spawn_blocking(move || {
                        crate::coord::inbox::drop_item(&workspace, &to, &id, &item)
                    })
                    .await;
                    match written {
                        Ok(Ok(_)) => Delivery::Dropped { agent },
                        Ok(Err(e)) => Delivery::NotDelivered(format!(
                            "cannot write to the inbox of {agent}: {e}"
                        )),
                        Err(e) => {
                            Delivery::NotDelivered(format!("the inbox write did not finish: {e}"))
                        }
                    }
                }
                Worker::Unnamed => Delivery::AnnouncedOnly,
            }
        })
    }

    fn respawn<'a>(&'a self, task: &'a TrackedTask) -> BoxFuture<'a, Option<anyhow::Result<()>>> {
        Box::pin(async move {
            task.record.worker.spawn_template.as_ref()?;
            let plan = match self.plan_of(task, true).await {
                Ok(p) => p,
                Err(why) => return Some(Err(anyhow::anyhow!(why))),
            };
            let done = self.spawner.respawn(&plan).await;
            match &done {
                Ok(()) => info!(task = %task.id(), session = %plan.session, "session respawned"),
                Err(e) => warn!(task = %task.id(), error = %e, "could not respawn the session"),
            }
            Some(done.map_err(anyhow::Error::from))
        })
    }

    fn cleanup<'a>(&'a self, task: &'a TrackedTask) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            match self.plan_of(task, false).await {
                Ok(plan) => self.spawner.cleanup(&plan).await,
                Err(why) => {
                    warn!(task = %task.id(), %why, "cannot clean up the spawned session");
                    Vec::new()
                }
            }
        })
    }
}
