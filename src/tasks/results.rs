//! What a finished task leaves behind besides its records: the seed 000
//! event (routed like any other), one NDJSON telemetry line (seed 004's
//! auto-learning), and the memory entry the spec asked for.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchyard_routing::{Category, Event, EventDraft, EventError, Severity};
use tokio::io::AsyncWriteExt;

use super::pipeline::TaskReport;
use super::spec::TaskState;

impl TaskReport {
    /// `task.succeeded`, `task.failed`, ...
    pub fn event_type(&self) -> String {
        format!("task.{}", self.state.as_str())
    }

    /// Failed for good (all attempts spent, or out of time) is an alert;
    /// anything else is a sub-agent result.
    pub fn category(&self) -> Category {
        match self.state {
            TaskState::Failed | TaskState::TimedOut => Category::Alert,
            _ => Category::SubagentResult,
        }
    }

    /// The exit code of every step that ran, in order, across attempts.
    pub fn exit_codes(&self) -> Vec<Option<i64>> {
        self.receipt
            .attempts
            .iter()
            .flat_map(|a| &a.steps)
            .map(|s| s.outcome.as_ref().and_then(|o| o.exit_code))
            .collect()
    }

    /// The seed 000 payload, plus category, severity, title and body. `None`
    /// while the task is not finished (awaiting approval: the approval
    /// request is the message then).
    pub fn event_draft(&self) -> Option<EventDraft> {
        if !self.state.is_terminal() {
            return None;
        }
        let spec = &self.intent.spec;
        let severity = match self.state {
            TaskState::Succeeded => Severity::Info,
            _ => Severity::Warning,
        };
        let mut body = format!(
            "{} after {} attempt(s), {} ms",
            self.state, self.attempts, self.duration_ms
        );
        if let Some(reason) = &self.reason {
            body.push_str(&format!("\nReason: {reason}"));
        }
        let unverifiable = self
            .verification
            .checks
            .iter()
            .filter(|c| c.result == super::pipeline::CheckResult::Unverifiable)
            .count();
        if !self.verification.checks.is_empty() {
            body.push_str(&format!(
                "\nAcceptance: {} check(s), {} left for a human to verify",
                self.verification.checks.len(),
                unverifiable
            ));
        }
        let mut metrics = serde_json::Map::new();
        metrics.insert("latency_ms".into(), self.duration_ms.into());
        metrics.insert(
            "cost_usd".into(),
            serde_json::json!(self.receipt.usage.cost_usd),
        );
        metrics.insert("tokens".into(), self.receipt.usage.tokens.into());
        metrics.insert("attempts".into(), self.attempts.into());
        let action = spec
            .repo
            .as_ref()
            .map(|repo| serde_json::json!({"type": "task", "target": repo, "branch": spec.branch}));
        Some(EventDraft {
            kind: Some("event".into()),
            // One result per task run: the id says which, so two tasks ending in
            // the same second are two events, and a replayed report is one.
            event_id: Some(format!(
                "evt_task_{}_{}",
                spec.id,
                self.started_at.timestamp_millis()
            )),
            event_type: Some(self.event_type()),
            category: Some(self.category().as_str().to_string()),
            severity: Some(severity.as_str().to_string()),
            source: Some(format!("worker:{}", self.agent)),
            title: Some(format!("Task {} {}: {}", spec.id, self.state, spec.title)),
            body: Some(body),
            labels: [("task_id".to_string(), spec.id.to_string())].into(),
            metrics,
            action,
            ..Default::default()
        })
    }

    /// Whether the result message should carry the output log.
    pub fn wants_log(&self) -> bool {
        let attach = self
            .intent
            .spec
            .notify
            .as_ref()
            .map_or(super::spec::AttachLog::Never, |n| n.attach_log);
        match attach {
            super::spec::AttachLog::Never => false,
            super::spec::AttachLog::OnFailure => self.state != TaskState::Succeeded,
            super::spec::AttachLog::Always => true,
        }
    }

    /// The last attempt's steps as one readable log: each step's exit and
    /// output as kept (a step whose output was cut names its full log file,
    /// which is attached beside this one).
    pub fn output_log(&self) -> String {
        let spec = &self.intent.spec;
        let mut out = format!(
            "Task {} ({}): {} after {} attempt(s), {} ms\n",
            spec.id, spec.title, self.state, self.attempts, self.duration_ms
        );
        let Some(last) = self.receipt.attempts.last() else {
            return out;
        };
        for step in &last.steps {
            out.push_str(&format!("\n== step {} ({}) ", step.index + 1, step.skill));
            match (&step.outcome, &step.error) {
                (Some(o), _) => {
                    let code = o
                        .exit_code
                        .map_or_else(|| "none".to_string(), |c| c.to_string());
                    out.push_str(&format!("exit {code}, {} ms ==\n", o.duration_ms));
                    out.push_str(&o.stdout);
                    if !o.stderr.is_empty() {
                        out.push_str("\n-- stderr --\n");
                        out.push_str(&o.stderr);
                    }
                }
                (None, Some(e)) => out.push_str(&format!("not run ==\n{e}")),
                (None, None) => out.push_str("not run ==\n"),
            }
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }

    /// The full log files of the last attempt's steps whose output was cut.
    pub fn full_logs(&self) -> Vec<std::path::PathBuf> {
        self.receipt
            .attempts
            .last()
            .map(|a| {
                a.steps
                    .iter()
                    .filter_map(|s| s.outcome.as_ref()?.log_file.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The event, validated; `now` and `nonce` make its id when it has none.
    pub fn event(&self, now: DateTime<Utc>, nonce: u32) -> Option<Result<Event, EventError>> {
        self.event_draft()
            .map(|d| d.validate(now, switchyard_routing::EventId::generate(now, nonce)))
    }

    pub fn telemetry(&self, now: DateTime<Utc>) -> TelemetryLine {
        let spec = &self.intent.spec;
        let steps: Vec<_> = self
            .receipt
            .attempts
            .last()
            .map(|a| a.steps.as_slice())
            .unwrap_or_default()
            .to_vec();
        let failed = steps
            .iter()
            .filter(|s| s.outcome.as_ref().is_none_or(|o| o.exit_code != Some(0)))
            .count();
        let warn = steps
            .iter()
            .filter(|s| s.optional && s.outcome.as_ref().is_none_or(|o| o.exit_code != Some(0)))
            .count();
        TelemetryLine {
            ts: now,
            task: "local_exec".into(),
            pass: u32::from(self.state == TaskState::Succeeded),
            warn: warn as u32,
            fail: (failed - warn) as u32,
            duration_ms: self.duration_ms,
            agent: self.agent.clone(),
            state: self.state,
            attempts: self.attempts,
            cost_usd: self.receipt.usage.cost_usd,
            tokens: self.receipt.usage.tokens,
            exit_codes: self.exit_codes(),
            meta: TelemetryMeta {
                id: spec.id.to_string(),
                title: spec.title.clone(),
                steps_count: spec.steps.len(),
                acceptance_passed: self.verification.passed(),
                risk_score: self.intent.policy.score,
            },
        }
    }

    /// The memory entry of seed 004, for a task that succeeded and asked for one.
    pub fn memory_record(&self, now: DateTime<Utc>) -> Option<serde_json::Value> {
        let m = self
            .intent
            .spec
            .memory
            .as_ref()
            .filter(|_| self.state == TaskState::Succeeded)?;
        Some(serde_json::json!({
            "kind": m.kind, "text": m.text,
            "meta": {"id": self.intent.spec.id, "duration_ms": self.duration_ms, "agent": self.agent},
            "ts": now,
        }))
    }
}

/// One NDJSON line per finished task: seed 004's fields, plus what the
/// breakers need to be judged (attempts, cost, exit codes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryLine {
    pub ts: DateTime<Utc>,
    pub task: String,
    pub pass: u32,
    pub warn: u32,
    pub fail: u32,
    pub duration_ms: u64,
    pub agent: String,
    pub state: TaskState,
    pub attempts: u32,
    pub cost_usd: f64,
    pub tokens: u64,
    pub exit_codes: Vec<Option<i64>>,
    pub meta: TelemetryMeta,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryMeta {
    pub id: String,
    pub title: String,
    pub steps_count: usize,
    pub acceptance_passed: bool,
    pub risk_score: u8,
}

/// Append one JSON value as a line. One `write_all` of the whole line on a
/// file opened for append, so concurrent writers do not interleave lines.
pub async fn append_ndjson(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut f = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await?;
    f.write_all(&line).await?;
    f.flush().await
}
