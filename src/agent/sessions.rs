//! Session steps in the task pipeline: a step whose skill is a session
//! skill spawns a coding session (worktree + tmux) instead of running a
//! container, then registers the task in the GitHub registry with its
//! session, worktree, branch and template, so the monitor watches its PR
//! and its session. Spawning is a task like any other: scored by the policy
//! gate, approved by a human above the threshold, stopped by the kill switch
//! before it starts.
//!
//! [`StepRuntime`] sends each step to the container runtime or here.

use std::time::Instant;

use chrono::Utc;
use tracing::info;

use crate::config::Config;
use crate::execution::spawn::{self, SpawnError, Spawner};
use crate::github::registry::{TaskRecord, TaskStatus, TrackedTask, WorkerFields};
use crate::github::store as gh_store;
use crate::store::Store;
use crate::tasks::runtime::{StepOutcome, StepRun, WorkerError, WorkerRuntime};
use crate::workers::DockerRuntime;

/// Spawns sessions for this agent's session steps.
#[derive(Clone)]
pub struct SessionRuntime {
    config: Config,
    agent: String,
    store: Store,
    spawner: Spawner,
}

impl SessionRuntime {
    pub fn new(config: &Config, agent: &str, store: Store) -> SessionRuntime {
        SessionRuntime {
            spawner: Spawner::for_agent(config, agent),
            config: config.clone(),
            agent: agent.to_string(),
            store,
        }
    }

    async fn spawn(&self, run: &StepRun) -> Result<String, SpawnError> {
        let target = run.target.clone().unwrap_or_default();
        let plan = spawn::plan(
            run.task_id.as_str(),
            target.repo.as_deref(),
            target.branch.as_deref(),
            &run.skill,
            &run.args,
            &self.config.sessions,
        )?;
        let pool = self.store.pool();
        let registry = |e: anyhow::Error| SpawnError::Registry(format!("{e:#}"));
        let running = gh_store::list_tasks(pool, Some(&self.agent))
            .await
            .map_err(registry)?
            .into_iter()
            .filter(|t| {
                t.id() != run.task_id.as_str()
                    && t.record.worker.spawn_template.is_some()
                    && matches!(t.record.status, TaskStatus::Queued | TaskStatus::Running)
            })
            .count() as u32;
        if running >= self.config.sessions.max_running {
            return Err(SpawnError::AtCapacity(self.config.sessions.max_running));
        }
        self.spawner.spawn(&plan).await?;
        let record = TaskRecord {
            id: run.task_id.to_string(),
            agent: self.agent.clone(),
            description: Some(target.title.clone()).filter(|t| !t.is_empty()),
            repo: target.repo.clone().unwrap_or_default(),
            branch: plan.branch.clone(),
            base: None,
            started_at: Some(Utc::now().timestamp_millis()),
            status: TaskStatus::Running,
            attempts: Some(0),
            max_attempts: None,
            notify_on_complete: Some(true),
            pr: None,
            completed_at: None,
            checks: None,
            note: None,
            required_checks: None,
            ui_paths: None,
            worker: WorkerFields {
                tmux_session: Some(plan.session.clone()),
                worktree: Some(plan.worktree.to_string_lossy().into_owned()),
                agent_command: Some(plan.agent_command.clone()),
                worker_task: None,
                inbox_agent: None,
                spawn_template: Some(run.skill_name.clone()),
            },
            extra: Default::default(),
        };
        let tracked = TrackedTask::new(record).map_err(|p| SpawnError::Registry(p.join("; ")))?;
        gh_store::upsert_tasks(pool, &[tracked], Utc::now().timestamp_millis())
            .await
            .map_err(registry)?;
        info!(task = %run.task_id, session = %plan.session, worktree = %plan.worktree.display(), branch = %plan.branch, "session spawned and registered");
        Ok(format!(
            "spawned tmux session {} in worktree {} on branch {} (from {}), registered for the GitHub monitor",
            plan.session,
            plan.worktree.display(),
            plan.branch,
            plan.base
        ))
    }
}

/// The pipeline's runtime: containers through Docker, session skills here.
pub struct StepRuntime {
    pub docker: DockerRuntime,
    pub sessions: SessionRuntime,
}

impl WorkerRuntime for StepRuntime {
    async fn run_step(&self, run: StepRun) -> Result<StepOutcome, WorkerError> {
        if run.skill.session.is_none() {
            return self.docker.run_step(run).await;
        }
        let started = Instant::now();
        let mut outcome = match self.sessions.spawn(&run).await {
            Ok(line) => StepOutcome::exited(0, line),
            Err(e) => {
                let mut o = StepOutcome::exited(1, "");
                o.stderr = format!("spawn failed: {e}");
                o
            }
        };
        outcome.duration_ms = started.elapsed().as_millis() as u64;
        Ok(outcome)
    }

    async fn kill_running(&self, agent: &str) -> Result<Vec<String>, WorkerError> {
        // A session step ends as soon as its session is up; the sessions
        // themselves are the monitor's (cleanup on merge or abandon).
        self.docker.kill_running(agent).await
    }
}
