//! The agent's side of the task pipeline (here, in the composition root,
//! because it wires the Docker adapter to the domain): takes task items from the inbox,
//! stores them, gates them, runs them in container workers with bounded
//! concurrency, and leaves the results behind (stored report, routed event,
//! telemetry line, memory log).
//!
//! A task item stays claimed in `running/` (its lease renewed) until the
//! task ends, so a crash mid-task brings it back with its attempt count.
//! A task that needs a human waits as `awaiting_approval`, bound to the one
//! approval request its pipeline made for it (`tasks.approval_id`); only the
//! decision on that request resumes or blocks it (see `agent::tasks`).

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use super::sessions::{SessionRuntime, StepRuntime};
use crate::config::Config;
use crate::store::Store;
use crate::store::tasks as task_store;
use crate::tasks::{
    ApprovalDecision, BreakerSettings, Pipeline, PipelineError, ProgressTx, TaskReport, TaskSpec,
    TaskState,
};
use crate::workers::DockerRuntime;

/// Concurrent container workers per agent.
pub const WORKERS: usize = 4;

/// Why a task item could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum TaskIntakeError {
    /// The item was wrong: the user fixes it (every problem listed).
    #[error("{0}")]
    Invalid(Value),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What became of a task item.
pub enum Accepted {
    /// Run it now (call [`TaskRunner::run`]).
    Run(Box<TaskSpec>),
    /// Parked until a human decides; the item is done.
    AwaitingApproval { task_id: String, result: Value },
}

pub struct TaskRunner {
    pipeline: Option<Arc<Pipeline<StepRuntime>>>,
    /// Why tasks cannot run here, when they cannot (no Docker).
    unavailable: Option<String>,
    store: Store,
    config: Config,
    agent: String,
    slots: Arc<Semaphore>,
    telemetry: PathBuf,
    memory_log: PathBuf,
    /// One Discord thread per task, when the agent can post to Discord.
    threads: Option<std::sync::Arc<dyn crate::tasks::progress::TaskThreads>>,
    /// Approved tasks handed to `run` that have not left `awaiting_approval` yet.
    starting: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl TaskRunner {
    /// Connect to Docker (reaping containers a crash left behind) and recover
    /// tasks a crash interrupted. Without Docker the agent still runs; task
    /// items are refused with the reason.
    pub async fn start(config: &Config, agent: &str, store: Store) -> TaskRunner {
        let log_dir = config.agent_dir(agent).join("logs");
        let (pipeline, unavailable) =
            match DockerRuntime::connect(&config.docker, &config.fleet_id()).await {
                Ok(runtime) => {
                    match runtime.reap_orphans(agent).await {
                        Ok(reaped) if !reaped.is_empty() => {
                            warn!(
                                count = reaped.len(),
                                "removed containers left by a previous run"
                            )
                        }
                        Ok(_) => {}
                        Err(e) => warn!(error = %e, "could not look for orphaned containers"),
                    }
                    let runtime = StepRuntime {
                        docker: runtime,
                        sessions: SessionRuntime::new(config, agent, store.clone()),
                    };
                    let pipeline = Pipeline::new(
                        runtime,
                        agent,
                        config.skills.clone(),
                        config.policy.clone(),
                        BreakerSettings::default(),
                        log_dir,
                    );
                    (Some(Arc::new(pipeline)), None)
                }
                Err(e) => {
                    let why = format!(
                        "Docker is not reachable at {} ({e}): tasks cannot run on agent {agent}",
                        config.docker.host
                    );
                    warn!("{why}");
                    (None, Some(why))
                }
            };
        match task_store::recover_interrupted(
            store.pool(),
            BreakerSettings::default().max_attempts,
            Utc::now(),
        )
        .await
        {
            Ok(r) if !r.is_empty() => {
                warn!(tasks = ?r, "tasks interrupted by a restart were recovered")
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "could not recover interrupted tasks"),
        }
        TaskRunner {
            pipeline,
            unavailable,
            store,
            config: config.clone(),
            agent: agent.to_string(),
            slots: Arc::new(Semaphore::new(WORKERS)),
            telemetry: config.fleet.workspace.join("telemetry.ndjson"),
            memory_log: config.fleet.workspace.join("memory.ndjson"),
            threads: None,
            starting: Default::default(),
        }
    }

    /// Post each task's progress into its own Discord thread.
    pub fn with_threads(
        mut self,
        threads: Option<std::sync::Arc<dyn crate::tasks::progress::TaskThreads>>,
    ) -> Self {
        self.threads = threads;
        self
    }

    /// Validate, store and gate a task item.
    pub async fn accept(&self, item: &Value) -> Result<Accepted, TaskIntakeError> {
        if let Some(why) = &self.unavailable {
            return Err(TaskIntakeError::Invalid(
                json!({ "error": why, "fix": "start the Docker engine and restart the agent" }),
            ));
        }
        let bytes = serde_json::to_vec(item).map_err(anyhow::Error::from)?;
        let known = self.config.skills.keys().map(String::as_str);
        let spec = TaskSpec::parse_checked(&bytes, known).map_err(|e| {
            TaskIntakeError::Invalid(json!({ "error": "invalid task spec", "problems": e.problems, "fix": "correct the spec and drop it again" }))
        })?;
        let pipeline = self
            .pipeline
            .as_ref()
            .expect("a runner without Docker refuses above");
        let policy = pipeline.score(&spec);
        let now = Utc::now();
        match task_store::insert(self.store.pool(), &spec, &policy, now).await {
            Ok(()) => {}
            Err(task_store::TaskStoreError::Duplicate(id)) => {
                // A recovered item (crash mid-task) comes back with the same id: run it again.
                let row = task_store::get(self.store.pool(), &id)
                    .await
                    .map_err(anyhow::Error::from)?;
                match row {
                    Some(r) if r.state == TaskState::Queued => {
                        return Ok(Accepted::Run(Box::new(spec)));
                    }
                    // Dropped again after it ended (seed 004's "approve and
                    // retry"): a new attempt, gated afresh.
                    Some(r) if r.state.is_terminal() => {
                        info!(task = %id, was = r.state.as_str(), "task dropped again after it ended: a new attempt");
                        task_store::restart(self.store.pool(), &spec, &policy, now)
                            .await
                            .map_err(anyhow::Error::from)?;
                    }
                    Some(r) => {
                        return Err(TaskIntakeError::Invalid(json!({
                            "error": format!("task {id} already exists (state {})", r.state.as_str()),
                            "fix": "give a new task a new id",
                        })));
                    }
                    None => return Err(anyhow::anyhow!("task {id} vanished").into()),
                }
            }
            Err(e) => return Err(anyhow::Error::from(e).into()),
        }
        if policy.needs_approval {
            task_store::transition(
                self.store.pool(),
                spec.id.as_str(),
                TaskState::AwaitingApproval,
                Some("risk at or above the approval threshold"),
                now,
            )
            .await
            .map_err(anyhow::Error::from)?;
            info!(task = %spec.id, score = policy.score, "task waits for a human approval");
            let preview: Vec<String> = spec
                .steps
                .iter()
                .map(|st| format!("{}: {}", st.skill, st.args.join(" ")))
                .collect();
            return Ok(Accepted::AwaitingApproval {
                task_id: spec.id.to_string(),
                result: json!({
                    "task_id": spec.id.as_str(), "title": spec.title, "preview": preview.join("\n"),
                    "status": "awaiting_approval", "risk": policy.score,
                    "reasons": policy.reasons(),
                    "next": "an approver decides in Telegram (or from the shell: switchyard approve ID); approved, it runs, denied or expired, it is blocked",
                }),
            });
        }
        Ok(Accepted::Run(Box::new(spec)))
    }

    /// The decision on a parked task's own approval request: run it
    /// (approved) or block it. The caller has checked that the decision is
    /// the one on the request this task's pipeline made.
    pub async fn decide(
        &self,
        task_id: &str,
        decision: ApprovalDecision,
        by: &str,
    ) -> Result<Option<TaskSpec>, TaskIntakeError> {
        let row = task_store::get(self.store.pool(), task_id)
            .await
            .map_err(anyhow::Error::from)?
            .ok_or_else(|| {
                TaskIntakeError::Invalid(
                    json!({ "error": format!("no task {task_id} on this agent") }),
                )
            })?;
        if row.state != TaskState::AwaitingApproval {
            return Err(TaskIntakeError::Invalid(json!({
                "error": format!("task {task_id} is {}, not awaiting approval", row.state.as_str()),
            })));
        }
        let now = Utc::now();
        if decision == ApprovalDecision::Approved {
            // It stays parked until `run` moves it to running (so a crash in
            // between runs it after the restart); meanwhile the next pass
            // that sees the decision must not start it a second time.
            if !self
                .starting
                .lock()
                .expect("not poisoned")
                .insert(task_id.to_string())
            {
                return Ok(None);
            }
            info!(task = %task_id, by, "task approved");
            Ok(Some(row.spec))
        } else {
            let reason = format!(
                "{} by {by}",
                if decision == ApprovalDecision::Denied {
                    "denied"
                } else {
                    "approval expired"
                }
            );
            task_store::transition(
                self.store.pool(),
                task_id,
                TaskState::Blocked,
                Some(&reason),
                now,
            )
            .await
            .map_err(anyhow::Error::from)?;
            Ok(None)
        }
    }

    /// Run an accepted task to its end (waits for a free worker slot).
    /// Returns the report and the finished task's event, ready to route.
    pub async fn run(
        &self,
        spec: TaskSpec,
        approved: bool,
    ) -> anyhow::Result<(TaskReport, Option<switchyard_routing::Event>)> {
        let pipeline = self
            .pipeline
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("tasks are not available on this agent"))?;
        let id = spec.id.to_string();
        // However this ends, a later pass may start it again if it is still parked.
        let _started = Started(&self.starting, &id);
        let _slot = self.slots.clone().acquire_owned().await?;
        // Read before acting: a task on a repo holds `repo:<repo>` while it runs,
        // and waits while someone else (a peer, a person) holds it.
        let _repo_lock = match &spec.repo {
            Some(repo) => Some(self.hold_lock(&format!("repo:{repo}"), &id).await?),
            None => None,
        };
        let now = Utc::now();
        task_store::transition(self.store.pool(), &id, TaskState::Running, None, now).await?;
        let approval = approved.then_some(ApprovalDecision::Approved);
        let mut poster = None;
        let mut progress = ProgressTx::default();
        if let Some(threads) = &self.threads
            && let Some(thread) = threads.open(&id, &spec.title).await
        {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            poster = Some(threads.spawn_poster(thread, rx));
            progress = ProgressTx::new(Some(tx));
        }
        let result = pipeline.run_with_progress(&spec, approval, progress).await;
        // The sender is gone with the pipeline's run: the poster drains and ends.
        // Its lines land before the result is routed, within a bound.
        if let Some(poster) = poster
            && tokio::time::timeout(std::time::Duration::from_secs(60), poster)
                .await
                .is_err()
        {
            warn!(task = %id, "the task's thread was not finished in time; the result is routed anyway");
        }
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                let state = match e {
                    PipelineError::Stopped => TaskState::Cancelled,
                    PipelineError::Paused { .. } => TaskState::Blocked,
                };
                task_store::transition(
                    self.store.pool(),
                    &id,
                    state,
                    Some(&e.to_string()),
                    Utc::now(),
                )
                .await?;
                anyhow::bail!("{e}");
            }
        };
        let now = Utc::now();
        task_store::save_report(self.store.pool(), &report, now).await?;
        if let Err(e) =
            crate::tasks::results::append_ndjson(&self.telemetry, &report.telemetry(now)).await
        {
            warn!(error = %e, "could not append the telemetry line");
        }
        if let Some(memory) = report.memory_record(now)
            && let Err(e) = crate::tasks::results::append_ndjson(&self.memory_log, &memory).await
        {
            warn!(error = %e, "could not append to the memory log");
        }
        let event = match report.event(now, rand::random()) {
            Some(Ok(mut ev)) => {
                if report.wants_log() {
                    ev.attachments = self.write_output_log(&report).await;
                }
                Some(ev)
            }
            Some(Err(e)) => {
                warn!(error = %e, "the task's result event is invalid");
                None
            }
            None => None,
        };
        info!(task = %id, state = report.state.as_str(), attempts = report.attempts, ms = report.duration_ms, "task finished");
        Ok((report, event))
    }

    /// Write the task's output log into the agent's own logs folder and name
    /// it (and any step's full log) as the result's attachments, workspace-relative.
    async fn write_output_log(
        &self,
        report: &crate::tasks::TaskReport,
    ) -> Vec<switchyard_routing::AttachmentPath> {
        let logs = self.config.agent_dir(&self.agent).join("logs");
        let name = format!(
            "task-{}-{}.log",
            crate::files::safe_name(&report.intent.spec.id.to_string()),
            report.started_at.timestamp_millis()
        );
        let path = logs.join(&name);
        let written = async {
            tokio::fs::create_dir_all(&logs).await?;
            tokio::fs::write(&path, report.output_log()).await
        };
        if let Err(e) = written.await {
            warn!(error = %e, path = %path.display(), "could not write the task's output log; the result goes without it");
            return Vec::new();
        }
        let workspace = &self.config.fleet.workspace;
        std::iter::once(path)
            .chain(report.full_logs())
            .filter_map(|p| {
                let rel = p
                    .strip_prefix(workspace)
                    .ok()?
                    .to_string_lossy()
                    .replace('\\', "/");
                switchyard_routing::AttachmentPath::parse(&rel).ok()
            })
            .take(switchyard_routing::MAX_ATTACHMENTS)
            .collect()
    }

    /// Take a fleet lock for a task, waiting (up to the task time box) while
    /// another holder has it. Released when the guard drops.
    async fn hold_lock(&self, name: &str, task: &str) -> anyhow::Result<LockGuard> {
        let status = crate::coord::StatusFile::for_fleet(&self.config.fleet)?;
        let holder = format!("{}/{task}", self.agent);
        let ttl = BreakerSettings::default().task_timeout;
        let deadline = tokio::time::Instant::now() + ttl;
        let mut logged = false;
        loop {
            let (s, n, h, r) = (
                status.clone(),
                name.to_string(),
                holder.clone(),
                format!("task {task}"),
            );
            match tokio::task::spawn_blocking(move || s.acquire(&n, &h, ttl, &r)).await? {
                Ok(_) => {
                    return Ok(LockGuard {
                        status,
                        name: name.to_string(),
                        holder,
                    });
                }
                Err(crate::coord::CoordError::LockHeld {
                    holder: other,
                    reason,
                    until,
                    ..
                }) => {
                    if !logged {
                        info!(task, lock = name, holder = %other, %reason, %until, "waiting for a lock held by someone else");
                        logged = true;
                    }
                    if tokio::time::Instant::now() >= deadline {
                        anyhow::bail!(
                            "lock {name} stayed held by {other} ({reason}) for the whole task time box"
                        );
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The kill switch: stop new steps and kill this agent's containers.
    pub async fn kill(&self) -> usize {
        match &self.pipeline {
            Some(p) => p.kill().await.len(),
            None => 0,
        }
    }

    /// Consecutive task failures, when the breaker has paused this agent.
    pub fn paused(&self) -> Option<u32> {
        let f = self.pipeline.as_ref()?.consecutive_failures();
        f.is_open().then_some(f.count)
    }

    pub fn resume(&self) {
        if let Some(p) = &self.pipeline {
            p.resume();
        }
    }
}

impl TaskRunner {
    /// Tasks waiting for a human, each with the approval request it waits on.
    pub async fn parked(&self) -> anyhow::Result<Vec<task_store::TaskRow>> {
        Ok(task_store::list(self.store.pool(), Some(TaskState::AwaitingApproval), 1000).await?)
    }

    /// Bind a parked task to the approval request that decides it.
    pub async fn bind_approval(&self, task_id: &str, approval_id: &str) -> anyhow::Result<()> {
        Ok(task_store::set_approval_id(self.store.pool(), task_id, approval_id).await?)
    }

    /// The gate's verdict on a spec, as the pipeline scores it.
    pub fn policy(&self, spec: &TaskSpec) -> Option<crate::tasks::PolicyReport> {
        self.pipeline.as_ref().map(|p| p.score(spec))
    }
}

/// Forgets an approved task in `TaskRunner::starting` when its run ends.
struct Started<'a>(
    &'a std::sync::Mutex<std::collections::HashSet<String>>,
    &'a str,
);

impl Drop for Started<'_> {
    fn drop(&mut self) {
        self.0.lock().expect("not poisoned").remove(self.1);
    }
}

/// A held fleet lock, released on drop.
struct LockGuard {
    status: crate::coord::StatusFile,
    name: String,
    holder: String,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Err(e) = self.status.release(&self.name, &self.holder) {
            warn!(lock = %self.name, error = %e, "could not release a task's lock");
        }
    }
}
