//! A running task's progress as the pipeline reports it (step start and end,
//! retries, the final state), and its one-line rendering for people. The
//! pipeline only sends; who listens (the task's Discord thread) is the
//! runner's business, so a slow or failing listener never holds a task up.

use tokio::sync::mpsc::UnboundedSender;

use super::runtime::StepStatus;
use super::spec::TaskState;

/// One thing that happened while a task ran.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    StepStarted {
        attempt: u32,
        /// 0-based, as in the spec.
        index: usize,
        skill: String,
        optional: bool,
    },
    StepEnded {
        attempt: u32,
        index: usize,
        skill: String,
        status: StepStatus,
        exit_code: Option<i64>,
        duration_ms: u64,
    },
    /// A step could not start (the worker runtime failed it).
    StepError {
        attempt: u32,
        index: usize,
        skill: String,
        error: String,
    },
    /// An attempt failed and another one follows after `wait_ms`.
    Retrying {
        next_attempt: u32,
        max_attempts: u32,
        wait_ms: u64,
        reason: String,
    },
    Finished {
        state: TaskState,
        reason: Option<String>,
        attempts: u32,
        duration_ms: u64,
    },
}

impl Progress {
    /// What a reader of the task's thread sees.
    pub fn line(&self) -> String {
        match self {
            Progress::StepStarted {
                attempt,
                index,
                skill,
                optional,
            } => format!(
                "▶ Step {} ({skill}{}) started{}",
                index + 1,
                if *optional { ", optional" } else { "" },
                attempt_note(*attempt)
            ),
            Progress::StepEnded {
                attempt,
                index,
                skill,
                status,
                exit_code,
                duration_ms,
            } => format!(
                "{} Step {} ({skill}) {}: exit code {}, {}{}",
                if *status == StepStatus::Succeeded {
                    "✔"
                } else {
                    "✖"
                },
                index + 1,
                status.as_str(),
                exit_code.map_or("none".to_string(), |c| c.to_string()),
                seconds(*duration_ms),
                attempt_note(*attempt)
            ),
            Progress::StepError {
                attempt,
                index,
                skill,
                error,
            } => format!(
                "✖ Step {} ({skill}) could not run: {error}{}",
                index + 1,
                attempt_note(*attempt)
            ),
            Progress::Retrying {
                next_attempt,
                max_attempts,
                wait_ms,
                reason,
            } => format!(
                "↻ Retrying (attempt {next_attempt} of {max_attempts}) in {}: {reason}",
                seconds(*wait_ms)
            ),
            Progress::Finished {
                state,
                reason,
                attempts,
                duration_ms,
            } => format!(
                "■ Task {} after {attempts} attempt(s) in {}{}",
                state.as_str(),
                seconds(*duration_ms),
                reason
                    .as_deref()
                    .map_or(String::new(), |r| format!(": {r}"))
            ),
        }
    }
}

fn attempt_note(attempt: u32) -> String {
    if attempt > 1 {
        format!(" (attempt {attempt})")
    } else {
        String::new()
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// Where the pipeline sends progress: nowhere, or a channel whose receiver
/// may be gone (a closed receiver is not the task's problem).
#[derive(Debug, Clone, Default)]
pub struct ProgressTx(Option<UnboundedSender<Progress>>);

impl ProgressTx {
    pub fn new(tx: Option<UnboundedSender<Progress>>) -> Self {
        ProgressTx(tx)
    }

    pub fn send(&self, p: Progress) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(p);
        }
    }
}

/// Where a task's progress is shown: one thread per task, its start
/// message in the result channel (the Discord adapter implements it).
pub trait TaskThreads: Send + Sync {
    /// The task's thread: the stored one (a retried task) or a new one.
    /// `None` when the platform refused (the adapter logs why).
    fn open<'a>(
        &'a self,
        task_id: &'a str,
        title: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Option<u64>>;
    /// Post every progress line to the thread, in order, until the sender is dropped.
    fn spawn_poster(
        &self,
        thread: u64,
        rx: tokio::sync::mpsc::UnboundedReceiver<Progress>,
    ) -> tokio::task::JoinHandle<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_status_exit_code_and_duration() {
        let ended = Progress::StepEnded {
            attempt: 2,
            index: 0,
            skill: "sh".into(),
            status: StepStatus::Failed,
            exit_code: Some(3),
            duration_ms: 1500,
        };
        assert_eq!(
            ended.line(),
            "✖ Step 1 (sh) failed: exit code 3, 1.5 s (attempt 2)"
        );
        let done = Progress::Finished {
            state: TaskState::Succeeded,
            reason: None,
            attempts: 1,
            duration_ms: 200,
        };
        assert_eq!(done.line(), "■ Task succeeded after 1 attempt(s) in 0.2 s");
    }
}
