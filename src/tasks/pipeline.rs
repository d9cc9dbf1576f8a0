//! The pipeline: from a parsed spec to a finished [`TaskReport`]. It runs
//! the policy gate, then the steps in order through a [`WorkerRuntime`]
//! under the circuit breakers, then the acceptance checks, and keeps the
//! intent → receipt → verification records (seed 001) as it goes.
//!
//! It owns no storage: the caller persists the report (`store::tasks`),
//! emits its event and appends its telemetry line (`tasks::results`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::{info, warn};

use super::breaker::{BreakerSettings, ConsecutiveFailures, over_budget};
use super::policy::{self, ApprovalDecision, GateDecision, PolicyReport};
use super::progress::{Progress, ProgressTx};
use super::runtime::{StepOutcome, StepRun, StepStatus, Usage, WorkerRuntime};
use super::spec::{TaskSpec, TaskState};
use crate::config::{PolicySettings, SkillSettings};

/// What the caller decided to run (seed 001's intent): the spec, the policy's verdict, the approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub spec: TaskSpec,
    pub policy: PolicyReport,
    pub approval: Option<ApprovalDecision>,
}

/// One step of one attempt, as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub index: usize,
    pub skill: String,
    pub optional: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<StepOutcome>,
    /// The step could not be run at all (engine refused, image missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub steps: Vec<StepRecord>,
    /// `None` when the attempt succeeded.
    pub failure: Option<String>,
    /// Backoff waited before this attempt.
    pub waited_ms: u64,
}

/// What happened (seed 001's execution receipt).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Receipt {
    pub attempts: Vec<AttemptRecord>,
    pub usage: Usage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckResult {
    Passed,
    Failed,
    /// Free text no machine can check; kept for the human, never fails the task.
    Unverifiable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptanceCheck {
    pub rule: String,
    pub result: CheckResult,
}

/// The acceptance checks of the last attempt that reached them (seed 001's verification record).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Verification {
    pub checks: Vec<AcceptanceCheck>,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.result != CheckResult::Failed)
    }
}

/// Everything a finished (or gated) task leaves behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    pub agent: String,
    pub state: TaskState,
    /// Why it did not succeed, as a sentence.
    pub reason: Option<String>,
    pub attempts: u32,
    pub intent: Intent,
    pub receipt: Receipt,
    pub verification: Verification,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
}

/// Why the pipeline would not start a task at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    #[error(
        "agent {agent} is paused after {failures} consecutive task failures: look at the failures, then `switchyard resume --agent {agent}`"
    )]
    Paused { agent: String, failures: u32 },
    #[error("the kill switch is on: no new work starts until `switchyard resume`")]
    Stopped,
}

/// Runs tasks for one agent.
pub struct Pipeline<R> {
    runtime: R,
    agent: String,
    skills: BTreeMap<String, SkillSettings>,
    policy: PolicySettings,
    breakers: BreakerSettings,
    log_dir: PathBuf,
    failures: Mutex<ConsecutiveFailures>,
    stop: Arc<AtomicBool>,
}

enum StepEnd {
    Next,
    /// The attempt failed; `timed_out` says whether by a time box.
    AttemptFailed {
        reason: String,
        timed_out: bool,
    },
    /// The task ends now, whatever attempts are left.
    Final {
        state: TaskState,
        reason: String,
    },
}

impl<R: WorkerRuntime> Pipeline<R> {
    pub fn new(
        runtime: R,
        agent: impl Into<String>,
        skills: BTreeMap<String, SkillSettings>,
        policy: PolicySettings,
        breakers: BreakerSettings,
        log_dir: PathBuf,
    ) -> Self {
        Pipeline {
            runtime,
            agent: agent.into(),
            skills,
            policy,
            failures: Mutex::new(ConsecutiveFailures::new(breakers.pause_after_failures)),
            breakers,
            log_dir,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn runtime(&self) -> &R {
        &self.runtime
    }

    /// Set by the kill switch: no new step starts while it is set.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// The kill switch: stop new work and kill this agent's running containers.
    pub async fn kill(&self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.runtime.kill_running(&self.agent).await.unwrap_or_else(|e| {
            warn!(agent = %self.agent, error = %e, "kill switch could not list or kill containers");
            Vec::new()
        })
    }

    /// `resume`: clear the kill switch and close the failure breaker.
    pub fn resume(&self) {
        self.stop.store(false, Ordering::SeqCst);
        self.failures.lock().expect("breaker lock").reset();
    }

    pub fn consecutive_failures(&self) -> ConsecutiveFailures {
        *self.failures.lock().expect("breaker lock")
    }

    /// Score a spec with this agent's policy.
    pub fn score(&self, spec: &TaskSpec) -> PolicyReport {
        policy::score(spec, &self.policy, &self.skills)
    }

    /// Gate, then run. Returns `AwaitingApproval` without running when a
    /// human must decide first; call again with the decision.
    pub async fn run(
        &self,
        spec: &TaskSpec,
        approval: Option<ApprovalDecision>,
    ) -> Result<TaskReport, PipelineError> {
        self.run_with_progress(spec, approval, ProgressTx::default())
            .await
    }

    /// As [`Pipeline::run`], reporting each step's start and end, retries
    /// and the final state to `progress` (only when the task actually runs).
    pub async fn run_with_progress(
        &self,
        spec: &TaskSpec,
        approval: Option<ApprovalDecision>,
        progress: ProgressTx,
    ) -> Result<TaskReport, PipelineError> {
        if self.stop.load(Ordering::SeqCst) {
            return Err(PipelineError::Stopped);
        }
        let breaker = self.consecutive_failures();
        if breaker.is_open() {
            return Err(PipelineError::Paused {
                agent: self.agent.clone(),
                failures: breaker.count,
            });
        }
        let started_at = Utc::now();
        let started = Instant::now();
        let report = self.score(spec);
        let mut out = TaskReport {
            agent: self.agent.clone(),
            state: TaskState::Running,
            reason: None,
            attempts: 0,
            intent: Intent {
                spec: spec.clone(),
                policy: report.clone(),
                approval,
            },
            receipt: Receipt::default(),
            verification: Verification::default(),
            started_at,
            duration_ms: 0,
        };
        match policy::gate(&report, approval) {
            GateDecision::Run => {}
            GateDecision::AwaitApproval => {
                out.state = TaskState::AwaitingApproval;
                out.reason = Some(format!(
                    "risk {} needs a human approval: {}",
                    report.score,
                    report.reasons().join(", ")
                ));
                return Ok(out);
            }
            GateDecision::Blocked { reason } => {
                out.state = TaskState::Blocked;
                out.reason = Some(reason);
                return Ok(out);
            }
        }

        let deadline = started + self.breakers.task_timeout;
        let (state, reason) = self.attempts(spec, deadline, &mut out, &progress).await;
        out.state = state;
        out.reason = reason;
        out.duration_ms = started.elapsed().as_millis() as u64;
        progress.send(Progress::Finished {
            state,
            reason: out.reason.clone(),
            attempts: out.attempts,
            duration_ms: out.duration_ms,
        });

        let mut failures = self.failures.lock().expect("breaker lock");
        match state {
            TaskState::Succeeded => failures.record_success(),
            // The guard counts the failure; it logs only when this one opened the breaker.
            TaskState::Failed | TaskState::TimedOut if failures.record_failure() => {
                warn!(agent = %self.agent, failures = failures.count, "pausing: too many consecutive task failures");
            }
            _ => {}
        }
        info!(agent = %self.agent, task = %spec.id, state = state.as_str(), attempts = out.attempts,
              duration_ms = out.duration_ms, cost_usd = out.receipt.usage.cost_usd, "task finished");
        Ok(out)
    }

    async fn attempts(
        &self,
        spec: &TaskSpec,
        deadline: Instant,
        out: &mut TaskReport,
        progress: &ProgressTx,
    ) -> (TaskState, Option<String>) {
        let max = self.breakers.max_attempts.max(1);
        let mut last: (TaskState, Option<String>) = (TaskState::Failed, None);
        for attempt in 1..=max {
            let mut waited = Duration::ZERO;
            if attempt > 1 {
                waited = self.breakers.backoff.delay(attempt - 1, &mut rand::rng());
                if Instant::now() + waited >= deadline {
                    return (TaskState::TimedOut, Some(self.time_box_reason()));
                }
                progress.send(Progress::Retrying {
                    next_attempt: attempt,
                    max_attempts: max,
                    wait_ms: waited.as_millis() as u64,
                    reason: last.1.clone().unwrap_or_default(),
                });
                tokio::time::sleep(waited).await;
            }
            if self.stop.load(Ordering::SeqCst) {
                return (
                    TaskState::Cancelled,
                    Some("stopped by the kill switch".into()),
                );
            }
            out.attempts = attempt;
            let mut record = AttemptRecord {
                attempt,
                steps: Vec::new(),
                failure: None,
                waited_ms: waited.as_millis() as u64,
            };
            let end = self
                .steps(
                    spec,
                    attempt,
                    deadline,
                    &mut record,
                    &mut out.receipt.usage,
                    progress,
                )
                .await;
            let end = match end {
                StepEnd::Next => {
                    let verification = acceptance(spec, &record);
                    let passed = verification.passed();
                    out.verification = verification;
                    if passed {
                        out.receipt.attempts.push(record);
                        return (TaskState::Succeeded, None);
                    }
                    let failed: Vec<&str> = out
                        .verification
                        .checks
                        .iter()
                        .filter(|c| c.result == CheckResult::Failed)
                        .map(|c| c.rule.as_str())
                        .collect();
                    StepEnd::AttemptFailed {
                        reason: format!("acceptance failed: {}", failed.join("; ")),
                        timed_out: false,
                    }
                }
                other => other,
            };
            match end {
                StepEnd::Final { state, reason } => {
                    record.failure = Some(reason.clone());
                    out.receipt.attempts.push(record);
                    return (state, Some(reason));
                }
                StepEnd::AttemptFailed { reason, timed_out } => {
                    warn!(task = %spec.id, attempt, reason = %reason, "attempt failed");
                    record.failure = Some(reason.clone());
                    out.receipt.attempts.push(record);
                    let state = if timed_out {
                        TaskState::TimedOut
                    } else {
                        TaskState::Failed
                    };
                    last = (
                        state,
                        Some(format!("{reason} (attempt {attempt} of {max})")),
                    );
                }
                StepEnd::Next => unreachable!("handled above"),
            }
        }
        last
    }

    fn time_box_reason(&self) -> String {
        format!(
            "the task's time box of {} ran out",
            humantime::format_duration(self.breakers.task_timeout)
        )
    }

    async fn steps(
        &self,
        spec: &TaskSpec,
        attempt: u32,
        deadline: Instant,
        record: &mut AttemptRecord,
        usage: &mut Usage,
        progress: &ProgressTx,
    ) -> StepEnd {
        for (index, step) in spec.steps.iter().enumerate() {
            if self.stop.load(Ordering::SeqCst) {
                return StepEnd::Final {
                    state: TaskState::Cancelled,
                    reason: "stopped by the kill switch".into(),
                };
            }
            let mut rec = StepRecord {
                index,
                skill: step.skill.clone(),
                optional: step.optional,
                outcome: None,
                error: None,
            };
            let Some(skill) = self.skills.get(&step.skill) else {
                let reason = format!(
                    "step {}: skill {:?} is not configured",
                    index + 1,
                    step.skill
                );
                rec.error = Some(reason.clone());
                record.steps.push(rec);
                return StepEnd::Final {
                    state: TaskState::Failed,
                    reason,
                };
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                record.steps.push(rec);
                return StepEnd::Final {
                    state: TaskState::TimedOut,
                    reason: self.time_box_reason(),
                };
            }
            // A step may shorten the operator's time box for its skill, never
            // lengthen it.
            let wanted = step
                .timeout()
                .map_or(skill.timeout, |t| t.min(skill.timeout));
            let capped_by_task = remaining < wanted;
            let run = StepRun {
                agent: self.agent.clone(),
                task_id: spec.id.clone(),
                step_index: index,
                attempt,
                skill_name: step.skill.clone(),
                skill: skill.clone(),
                args: step.args.clone(),
                timeout: wanted.min(remaining),
                log_dir: self.log_dir.clone(),
                stdin: None,
                output_to: None,
                target: Some(super::runtime::StepTarget {
                    repo: spec.repo.clone(),
                    branch: spec.branch.clone(),
                    title: spec.title.clone(),
                }),
            };
            progress.send(Progress::StepStarted {
                attempt,
                index,
                skill: step.skill.clone(),
                optional: step.optional,
            });
            let outcome = match self.runtime.run_step(run).await {
                Ok(o) => o,
                Err(e) => {
                    progress.send(Progress::StepError {
                        attempt,
                        index,
                        skill: step.skill.clone(),
                        error: e.to_string(),
                    });
                    let reason = format!("step {} could not run: {e}", index + 1);
                    rec.error = Some(e.to_string());
                    record.steps.push(rec);
                    if step.optional {
                        continue;
                    }
                    return StepEnd::AttemptFailed {
                        reason,
                        timed_out: false,
                    };
                }
            };
            if let Some(u) = outcome.usage {
                usage.add(u);
            }
            let status = outcome.status;
            let exit = outcome.exit_code;
            progress.send(Progress::StepEnded {
                attempt,
                index,
                skill: step.skill.clone(),
                status,
                exit_code: exit,
                duration_ms: outcome.duration_ms,
            });
            rec.outcome = Some(outcome);
            record.steps.push(rec);
            if let Some(reason) = over_budget(spec.budget.as_ref(), usage) {
                return StepEnd::Final {
                    state: TaskState::Failed,
                    reason,
                };
            }
            let n = index + 1;
            let end = match status {
                StepStatus::Succeeded => StepEnd::Next,
                StepStatus::Killed => {
                    return StepEnd::Final {
                        state: TaskState::Cancelled,
                        reason: format!("step {n} was killed by the kill switch"),
                    };
                }
                StepStatus::TimedOut if capped_by_task => {
                    return StepEnd::Final {
                        state: TaskState::TimedOut,
                        reason: self.time_box_reason(),
                    };
                }
                StepStatus::TimedOut => StepEnd::AttemptFailed {
                    reason: format!(
                        "step {n} ({}) outlived its time box of {}",
                        step.skill,
                        humantime::format_duration(wanted)
                    ),
                    timed_out: true,
                },
                // The same step under the same limit runs out again: no retry.
                StepStatus::Oom => StepEnd::Final {
                    state: TaskState::Failed,
                    reason: format!(
                        "step {n} ({}) ran out of memory under its limit of {} MiB and was killed; a retry would too, so none was made: raise skills.{}.memory or make the step use less",
                        step.skill,
                        skill.memory_bytes >> 20,
                        step.skill
                    ),
                },
                StepStatus::Failed => StepEnd::AttemptFailed {
                    reason: format!(
                        "step {n} ({}) exited with {}",
                        step.skill,
                        exit.map_or("no exit code".to_string(), |c| format!("code {c}"))
                    ),
                    timed_out: false,
                },
            };
            match end {
                StepEnd::Next => {}
                // An optional step's failure is recorded, and the task goes on.
                _ if step.optional => {}
                other => return other,
            }
        }
        StepEnd::Next
    }
}

/// The text a `Printed ...` rule names, when it names one: quoted text, or a
/// single token that is clearly a marker (`SMOKE_OK`, `v1.2`), not prose
/// like the seed's "Printed message".
fn checkable_text(rest: &str) -> Option<&str> {
    for q in ['\'', '"', '`'] {
        if let Some(inner) = rest.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return (!inner.is_empty()).then_some(inner);
        }
    }
    let marker = !rest.is_empty()
        && !rest.contains(char::is_whitespace)
        && rest
            .chars()
            .any(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    marker.then_some(rest)
}

/// Check the spec's acceptance rules against an attempt's output. Rules the
/// seed writes as `Printed X` (or `stdout contains X`) are checked against
/// every step's stdout when X is quoted or a marker token; other prose is
/// kept as unverifiable.
pub fn acceptance(spec: &TaskSpec, attempt: &AttemptRecord) -> Verification {
    let outputs: Vec<&str> = attempt
        .steps
        .iter()
        .filter_map(|s| s.outcome.as_ref())
        .map(|o| o.stdout.as_str())
        .collect();
    let checks = spec
        .acceptance
        .iter()
        .map(|rule| {
            let lower = rule.to_lowercase();
            let needle = ["printed ", "stdout contains "]
                .iter()
                .find(|p| lower.starts_with(*p))
                .and_then(|p| checkable_text(rule[p.len()..].trim()));
            let result = match needle {
                Some(n) if !n.is_empty() => {
                    if outputs.iter().any(|o| o.contains(n)) {
                        CheckResult::Passed
                    } else {
                        CheckResult::Failed
                    }
                }
                _ => CheckResult::Unverifiable,
            };
            AcceptanceCheck {
                rule: rule.clone(),
                result,
            }
        })
        .collect();
    Verification { checks }
}
