//! The monitor loop (seed 001's "every 10 minutes"): for each tracked task,
//! read GitHub with conditional requests, evaluate the definition of done,
//! keep one status message per task, ping once when it is ready for the
//! human merge, hand failures back to the agent within its attempt budget
//! and escalate past it.
//!
//! Output goes through the [`MonitorOutput`] port (the lead implements it
//! over the outbox). GitHub being down, or rate limiting us, is never a
//! task failure: the pass stops, the loop backs off or pauses, and nothing
//! is said to anyone until GitHub answers again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::client::{FetchError, GithubClient};
use super::failures::{Deadlines, Failure, FailureClass, classify, session_dead};
use super::registry::{Checks, TaskStatus, TrackedTask};
use super::requirements::{
    Mergeability, PullSnapshot, PullState, RequiredChecks, Requirement, Requirements, Snapshot,
    evaluate,
};
use super::threads::critical_count;
use super::workers::{Delivery, Liveness, NoWorkers, WorkerPort};

/// Where the monitor's findings go. One status message per task, edited in
/// place; everything else is a separate message.
pub trait MonitorOutput: Send + Sync {
    /// Create or edit the task's status message (in `sub-agent-results`).
    /// Called only when the text changed.
    fn upsert_status(
        &self,
        task: &TrackedTask,
        text: &str,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Every requirement is met: ask the human to merge (`action_required`).
    fn ready_for_merge(
        &self,
        task: &TrackedTask,
        pr: &PullSnapshot,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// The attempt budget is spent: tell the human the exact blocker.
    fn escalate(
        &self,
        task: &TrackedTask,
        failure: &Failure,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// The task goes back to work with `failure`'s context, only: announce
    /// it, saying how the correction reached the worker (`delivery`).
    fn retry(
        &self,
        task: &TrackedTask,
        failure: &Failure,
        delivery: &Delivery,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The time source; tests move it by hand.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// How the loop paces itself.
#[derive(Debug, Clone)]
pub struct MonitorSettings {
    /// Between passes (`github.interval`, default 10 minutes).
    pub interval: Duration,
    /// Each wait is stretched or shrunk by up to this fraction, so that
    /// agents started together do not poll together.
    pub jitter: f64,
    pub deadlines: Deadlines,
    /// For tasks whose record has no `requiredChecks`.
    pub required_checks: RequiredChecks,
    /// Pause when the primary window has this few requests left.
    pub rate_limit_reserve: u64,
    /// The first wait after GitHub was unreachable; it doubles up to `interval`.
    pub min_backoff: Duration,
    /// How soon to look again when GitHub was still computing mergeability.
    pub mergeable_recheck: Duration,
    /// What makes a review thread critical; empty: threads are not read.
    pub critical_markers: Vec<String>,
    /// How often threads of a PR that did not move are read again.
    pub threads_interval: Duration,
    /// For tasks whose record has no `uiPaths`.
    pub ui_paths: Vec<String>,
    /// Stop reading threads when GraphQL's budget has this few points left.
    pub graphql_reserve: u64,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        MonitorSettings {
            interval: Duration::from_secs(600),
            jitter: 0.1,
            deadlines: Deadlines::default(),
            required_checks: RequiredChecks::All,
            rate_limit_reserve: 20,
            min_backoff: Duration::from_secs(30),
            mergeable_recheck: Duration::from_secs(30),
            critical_markers: Vec::new(),
            threads_interval: Duration::from_secs(1800),
            ui_paths: Vec::new(),
            graphql_reserve: 50,
        }
    }
}

impl MonitorSettings {
    pub fn from_config(g: &crate::config::GithubSettings) -> Self {
        MonitorSettings {
            interval: g.interval,
            critical_markers: g.critical_markers.clone(),
            threads_interval: g.threads_interval,
            ui_paths: g.ui_paths.clone(),
            ..Self::default()
        }
    }
}

/// The review threads as last read for a task, so they are read again only
/// when the PR moved or `threads_interval` passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadsSeen {
    pub critical: u32,
    pub head: String,
    pub updated_at: Option<DateTime<Utc>>,
    pub read_at: DateTime<Utc>,
}

/// What the monitor remembers about a task between passes (persisted by
/// `store::save_state`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskState {
    /// The text of the status message as last published.
    pub status_text: Option<String>,
    /// The head sha the ready ping was sent for.
    pub ready_for: Option<String>,
    /// The last failure acted on (its fingerprint), so a failure seen again
    /// on the next pass is not a new attempt.
    pub last_failure: Option<String>,
    /// The blocker the task was escalated with.
    pub escalated: Option<String>,
    /// The PR was merged or the task finished: no more requests.
    pub finished: bool,
    #[serde(default)]
    pub threads: Option<ThreadsSeen>,
    /// What a spawn made was removed (the PR was merged).
    #[serde(default)]
    pub cleaned: bool,
}

/// How a pass ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassOutcome {
    Completed,
    /// A rate limit (primary or secondary): no request until `until`.
    Paused {
        until: DateTime<Utc>,
        reason: String,
    },
    /// GitHub did not answer (transport error or 5xx); the pass stopped.
    Unreachable {
        error: String,
    },
}

/// One pass, for logs, metrics and the benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub outcome: PassOutcome,
    /// Tasks evaluated in this pass.
    pub checked: usize,
    /// HTTP requests made in this pass.
    pub requests: u64,
    /// Of which answered `304 Not Modified`.
    pub not_modified: u64,
}

pub struct Monitor<O> {
    client: GithubClient,
    output: O,
    settings: MonitorSettings,
    clock: Arc<dyn Clock>,
    tasks: Vec<TrackedTask>,
    states: HashMap<String, TaskState>,
    paused_until: Option<DateTime<Utc>>,
    unreachable_streak: u32,
    computing: bool,
    workers: Arc<dyn WorkerPort>,
    /// GraphQL's own budget ran low: no thread reads until then.
    threads_paused_until: Option<DateTime<Utc>>,
    /// When reading a task's threads last failed: tried again only after
    /// `threads_interval`, not every pass.
    threads_failed: HashMap<String, DateTime<Utc>>,
}

impl<O: MonitorOutput> Monitor<O> {
    pub fn new(client: GithubClient, output: O, settings: MonitorSettings) -> Self {
        Monitor {
            client,
            output,
            settings,
            clock: Arc::new(SystemClock),
            tasks: Vec::new(),
            states: HashMap::new(),
            paused_until: None,
            unreachable_streak: 0,
            computing: false,
            workers: Arc::new(NoWorkers),
            threads_paused_until: None,
            threads_failed: HashMap::new(),
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Check and correct the tasks' workers through `workers`.
    pub fn with_workers(mut self, workers: Arc<dyn WorkerPort>) -> Self {
        self.workers = workers;
        self
    }

    /// Starts (or updates) watching a task.
    pub fn track(&mut self, task: TrackedTask) {
        match self.tasks.iter_mut().find(|t| t.id() == task.id()) {
            Some(t) => *t = task,
            None => self.tasks.push(task),
        }
    }

    /// Restores what a previous run remembered.
    pub fn restore_state(&mut self, states: HashMap<String, TaskState>) {
        self.states.extend(states);
    }

    /// The tasks, with what the monitor learned (PR number, attempts, terminal contract).
    pub fn tasks(&self) -> &[TrackedTask] {
        &self.tasks
    }

    pub fn states(&self) -> &HashMap<String, TaskState> {
        &self.states
    }

    pub fn client(&self) -> &GithubClient {
        &self.client
    }

    pub fn output(&self) -> &O {
        &self.output
    }

    /// One look at every active task.
    pub async fn pass(&mut self) -> PassReport {
        let before = self.client.stats();
        let mut checked = 0;
        self.computing = false;
        let outcome = self.pass_inner(&mut checked).await;
        let after = self.client.stats();
        let report = PassReport {
            outcome,
            checked,
            requests: after.requests - before.requests,
            not_modified: after.not_modified - before.not_modified,
        };
        debug!(checked, requests = report.requests, not_modified = report.not_modified, outcome = ?report.outcome, "github pass");
        report
    }

    async fn pass_inner(&mut self, checked: &mut usize) -> PassOutcome {
        let now = self.clock.now();
        if let Some(until) = self.paused_until {
            if now < until {
                return PassOutcome::Paused {
                    until,
                    reason: "rate limited".into(),
                };
            }
            self.paused_until = None;
        }
        for i in 0..self.tasks.len() {
            let id = self.tasks[i].id().to_string();
            let state = self.states.entry(id.clone()).or_default();
            if state.finished || self.tasks[i].record.status.is_terminal() {
                continue;
            }
            if let Some(rl) = self.client.rate_limit()
                && rl.remaining <= self.settings.rate_limit_reserve
                && rl.reset > now
            {
                return self.pause(
                    rl.reset,
                    format!("{} requests left in the rate-limit window", rl.remaining),
                );
            }
            let ui_paths = self.tasks[i]
                .record
                .ui_paths
                .clone()
                .unwrap_or_else(|| self.settings.ui_paths.clone());
            match self.client.snapshot(&self.tasks[i], &ui_paths).await {
                Ok(mut snapshot) => {
                    self.unreachable_streak = 0;
                    *checked += 1;
                    self.read_threads(i, &mut snapshot, now).await;
                    self.apply(i, snapshot, now, &ui_paths).await;
                }
                Err(FetchError::RateLimited {
                    path,
                    status,
                    retry_after,
                    reset,
                }) => {
                    // GitHub: wait `retry-after`, else until the reset, else at least a minute.
                    let until = match (retry_after, reset) {
                        (Some(d), _) => now + d,
                        (None, Some(r)) if r > now => r,
                        _ => now + Duration::from_secs(60),
                    };
                    return self.pause(until, format!("{status} on {path}"));
                }
                Err(FetchError::Unreachable { path, message }) => {
                    self.unreachable_streak += 1;
                    warn!(task = %id, %path, error = %message, streak = self.unreachable_streak, "GitHub unreachable; backing off");
                    return PassOutcome::Unreachable { error: message };
                }
                Err(e) => {
                    warn!(task = %id, error = %e, "cannot read this task's PR; skipping it this pass")
                }
            }
        }
        PassOutcome::Completed
    }

    /// Fills in the critical review threads of an open PR: read through
    /// GraphQL when the PR moved, when `threads_interval` passed, or never
    /// read; otherwise as last read. Trouble reading them leaves the last
    /// count (or none) and never stops the pass.
    async fn read_threads(&mut self, i: usize, snapshot: &mut Snapshot, now: DateTime<Utc>) {
        // GraphQL answers only an authenticated client (the runner says so at start).
        if self.settings.critical_markers.is_empty() || !self.client.authenticated() {
            return;
        }
        let Some(pr) = snapshot.pr.as_ref().filter(|p| p.state == PullState::Open) else {
            return;
        };
        let task = &self.tasks[i];
        let state = self.states.entry(task.id().to_string()).or_default();
        let stale = match &state.threads {
            None => true,
            Some(seen) => {
                seen.head != pr.head_sha
                    || seen.updated_at != pr.updated_at
                    || (now - seen.read_at).to_std().unwrap_or_default()
                        >= self.settings.threads_interval
            }
        };
        let interval = self.settings.threads_interval;
        let paused = self.threads_paused_until.is_some_and(|until| now < until)
            || self
                .threads_failed
                .get(task.id())
                .is_some_and(|at| (now - *at).to_std().unwrap_or_default() < interval);
        if stale && !paused {
            match self.client.review_threads(&task.repo, pr.number).await {
                Ok((threads, budget)) => {
                    self.threads_failed.remove(task.id());
                    let critical = critical_count(&threads, &self.settings.critical_markers);
                    debug!(task = %task.id(), threads = threads.len(), critical, "review threads read");
                    state.threads = Some(ThreadsSeen {
                        critical,
                        head: pr.head_sha.clone(),
                        updated_at: pr.updated_at,
                        read_at: now,
                    });
                    if let Some(b) = budget
                        && b.remaining <= self.settings.graphql_reserve
                    {
                        let until = b.reset.unwrap_or(now + Duration::from_secs(3600));
                        warn!(remaining = b.remaining, %until, "GraphQL budget low: review threads are not read again until it resets");
                        self.threads_paused_until = Some(until);
                    }
                }
                Err(FetchError::RateLimited { reset, .. }) => {
                    let until = reset.unwrap_or(now + Duration::from_secs(600));
                    warn!(%until, "GraphQL rate limited: review threads keep their last count");
                    self.threads_paused_until = Some(until);
                }
                Err(e) => {
                    self.threads_failed.insert(task.id().to_string(), now);
                    warn!(task = %task.id(), error = %e, retry_in = ?interval, "cannot read the review threads; keeping their last count")
                }
            }
        }
        snapshot.critical_threads = state.threads.as_ref().map(|t| t.critical);
    }

    fn pause(&mut self, until: DateTime<Utc>, reason: String) -> PassOutcome {
        warn!(%until, %reason, "GitHub rate limit: pausing the monitor");
        self.paused_until = Some(until);
        PassOutcome::Paused { until, reason }
    }

    async fn apply(
        &mut self,
        i: usize,
        snapshot: Snapshot,
        now: DateTime<Utc>,
        ui_paths: &[String],
    ) {
        let settings = &self.settings;
        let task = &mut self.tasks[i];
        let state = self.states.entry(task.id().to_string()).or_default();
        match &snapshot.pr {
            Some(pr) if pr.state == PullState::Merged => {
                task.record.pr = Some(pr.number);
                task.record.status = TaskStatus::Done;
                task.record
                    .completed_at
                    .get_or_insert(now.timestamp_millis());
                task.record.note = Some(format!("PR #{} merged.", pr.number));
                state.finished = true;
                let mut text = format!("{}: PR #{} merged. Done.", task.id(), pr.number);
                if task.record.worker.spawn_template.is_some() && !state.cleaned {
                    // Seed 001: the human merges, and that triggers the cleanup.
                    let removed = self.workers.cleanup(task).await;
                    info!(task = %task.id(), removed = ?removed, "spawned session cleaned up");
                    if !removed.is_empty() {
                        text.push_str(&format!(" Removed: {}.", removed.join(", ")));
                    }
                    state.cleaned = true;
                }
                if self.output.upsert_status(task, &text).await.is_ok() {
                    state.status_text = Some(text);
                }
                info!(task = %task.id(), pr = pr.number, "PR merged; task done");
                return;
            }
            Some(pr) if pr.state == PullState::Open => task.record.pr = Some(pr.number),
            // Closed without merge: look for a new PR on the branch next time.
            _ => task.record.pr = None,
        }

        let required = match &task.record.required_checks {
            Some(names) => RequiredChecks::Named(names.clone()),
            None => settings.required_checks.clone(),
        };
        let reqs = evaluate(&snapshot, &required, ui_paths);
        if reqs
            .missing
            .contains(&Requirement::Mergeable(Mergeability::Computing))
        {
            self.computing = true;
        }
        let mut failure = classify(task, &snapshot, &reqs, &settings.deadlines, now);
        // A worker that is gone fixes nothing: that comes first.
        if !reqs.ready && state.escalated.is_none() {
            match self.workers.liveness(task).await {
                Liveness::Alive => {}
                Liveness::Dead(why) => {
                    let respawnable = task.record.worker.spawn_template.is_some();
                    failure = Some(session_dead(task, &why, respawnable));
                }
                Liveness::Unknown(why) => debug!(task = %task.id(), %why, "worker not checked"),
            }
        }

        if let Some(f) = &failure
            && state.escalated.is_none()
            && state.last_failure.as_deref() != Some(&f.fingerprint)
        {
            let next = task.attempts() + 1;
            let mut f = f.clone();
            let mut handed = task.clone();
            handed.record.attempts = Some(next);
            // How the correction reaches the worker; `None`: it cannot, escalate.
            let delivery = if next >= task.max_attempts() {
                None
            } else if f.class == FailureClass::SessionDead {
                match self.workers.respawn(&handed).await {
                    Some(Ok(())) => Some(Delivery::Respawned {
                        session: task.record.worker.tmux_session.clone().unwrap_or_default(),
                    }),
                    Some(Err(e)) => {
                        f.blocker = format!("{}; respawning failed: {e:#}", f.blocker);
                        None
                    }
                    None => None,
                }
            } else {
                Some(self.workers.deliver(&handed, &f).await)
            };
            match delivery {
                Some(delivery) => match self.output.retry(&handed, &f, &delivery).await {
                    Ok(()) => {
                        info!(task = %task.id(), class = %f.class, attempt = next, delivery = ?delivery, "handed back to the agent");
                        *task = handed;
                        state.last_failure = Some(f.fingerprint.clone());
                    }
                    Err(e) => {
                        warn!(task = %task.id(), error = %e, "could not hand the task back; trying next pass")
                    }
                },
                None => {
                    let mut escalated = task.clone();
                    escalated.record.status = TaskStatus::Escalated;
                    escalated.record.note = Some(f.blocker.clone());
                    match self.output.escalate(&escalated, &f).await {
                        Ok(()) => {
                            warn!(task = %task.id(), class = %f.class, blocker = %f.blocker, "escalated");
                            *task = escalated;
                            state.last_failure = Some(f.fingerprint.clone());
                            state.escalated = Some(f.blocker.clone());
                        }
                        Err(e) => {
                            warn!(task = %task.id(), error = %e, "could not escalate; trying next pass")
                        }
                    }
                }
            }
        }

        if reqs.ready
            && let Some(pr) = &snapshot.pr
            && state.ready_for.as_deref() != Some(&pr.head_sha)
        {
            let mut done = task.clone();
            done.record.status = TaskStatus::Done;
            done.record.pr = Some(pr.number);
            done.record.completed_at = Some(now.timestamp_millis());
            let mut checks = done.record.checks.take().unwrap_or_default();
            checks.pr_created = Some(true);
            checks.ci_passed = Some(true);
            checks.reviews_passed = Some(true);
            done.record.checks = Some(checks);
            done.record.note = Some("All checks passed. Ready to merge.".into());
            match self.output.ready_for_merge(&done, pr).await {
                Ok(()) => {
                    info!(task = %task.id(), pr = pr.number, "ready for merge");
                    *task = done;
                    state.ready_for = Some(pr.head_sha.clone());
                }
                Err(e) => {
                    warn!(task = %task.id(), error = %e, "could not send the ready ping; trying next pass")
                }
            }
        } else if !reqs.ready && task.record.status == TaskStatus::Done {
            // It was ready, then something changed (a push, a new review): back to work.
            task.record.status = TaskStatus::Running;
            task.record.checks = task.record.checks.take().map(|c| Checks {
                ci_passed: None,
                reviews_passed: None,
                ..c
            });
            task.record.note = None;
            task.record.completed_at = None;
        }

        let text = render_status(task, &snapshot, &reqs, state);
        if state.status_text.as_deref() != Some(&text) {
            match self.output.upsert_status(task, &text).await {
                Ok(()) => state.status_text = Some(text),
                Err(e) => {
                    warn!(task = %task.id(), error = %e, "could not update the status message; trying next pass")
                }
            }
        }
    }

    /// How long to wait before the next pass.
    pub fn next_delay(&self, report: &PassReport) -> Duration {
        let jitter = |d: Duration| {
            let f = self.settings.jitter.clamp(0.0, 0.9);
            if f == 0.0 {
                return d;
            }
            d.mul_f64(rand::rng().random_range(1.0 - f..=1.0 + f))
        };
        match &report.outcome {
            PassOutcome::Completed if self.computing => {
                jitter(self.settings.mergeable_recheck.min(self.settings.interval))
            }
            PassOutcome::Completed => jitter(self.settings.interval),
            PassOutcome::Paused { until, .. } => {
                // One second past the reset, so the first request lands in the new window.
                (*until - self.clock.now()).to_std().unwrap_or_default() + Duration::from_secs(1)
            }
            PassOutcome::Unreachable { .. } => {
                let exp = self.unreachable_streak.saturating_sub(1).min(16);
                jitter(
                    self.settings
                        .min_backoff
                        .saturating_mul(1 << exp)
                        .min(self.settings.interval),
                )
            }
        }
    }

    /// Runs passes until `shutdown` resolves; returns the monitor so the
    /// caller can persist what it learned.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Self {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let report = self.pass().await;
            let delay = self.next_delay(&report);
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(delay) => {}
            }
        }
        self
    }
}

/// The status message: which requirements are still missing, nothing that
/// changes without a reason (no timestamps), so it is edited only on change.
pub fn render_status(
    task: &TrackedTask,
    snapshot: &Snapshot,
    reqs: &Requirements,
    state: &TaskState,
) -> String {
    let mut s = format!("{} · {} {}", task.id(), task.repo, task.record.branch);
    match &snapshot.pr {
        Some(pr) if pr.state == PullState::Open => {
            s.push_str(&format!(" · PR #{}", pr.number));
            if let Some(u) = &pr.html_url {
                s.push_str(&format!(" {u}"));
            }
        }
        _ => s.push_str(" · no PR yet"),
    }
    s.push('\n');
    if let Some(blocker) = &state.escalated {
        s.push_str(&format!("Escalated to a human: {blocker}\n"));
    }
    if reqs.ready {
        s.push_str("Ready for merge: every requirement is met. The merge is yours.\n");
    } else {
        s.push_str(&format!("Missing ({}):\n", reqs.missing.len()));
        for m in &reqs.missing {
            s.push_str(&format!("- {m}\n"));
        }
    }
    if !reqs.optional_failed.is_empty() {
        s.push_str(&format!(
            "Optional checks failing (not blocking): {}\n",
            reqs.optional_failed.join(", ")
        ));
    }
    s.push_str(&format!(
        "Attempts: {} of {}",
        task.attempts() + 1,
        task.max_attempts()
    ));
    s
}
