//! The port between the pipeline and whatever runs a step: [`WorkerRuntime`],
//! what one step run asks for ([`StepRun`]) and what it reports back
//! ([`StepOutcome`]), including the usage line workers print.
//!
//! The Docker implementation lives in `crate::workers`; [`FakeRuntime`] is
//! the in-memory one the core tests drive with scripted outcomes.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::spec::TaskId;
use crate::config::SkillSettings;

/// The prefix of the structured line a worker prints to report what it
/// spent: `SWITCHYARD_USAGE {"tokens":123,"cost_usd":0.01}`.
pub const USAGE_PREFIX: &str = "SWITCHYARD_USAGE ";

/// What one step asks the runtime to do.
#[derive(Debug, Clone)]
pub struct StepRun {
    pub agent: String,
    pub task_id: TaskId,
    /// 0-based position in the spec's `steps`.
    pub step_index: usize,
    /// 1-based attempt of the task this step belongs to.
    pub attempt: u32,
    pub skill_name: String,
    pub skill: SkillSettings,
    pub args: Vec<String>,
    /// The time box; past it the container is killed and the step is `timed_out`.
    pub timeout: Duration,
    /// Where output past the in-memory bound is written.
    pub log_dir: PathBuf,
    /// Bytes written to the command's standard input, then closed (`None`:
    /// no standard input). A `command` responder gets its turn this way.
    pub stdin: Option<Vec<u8>>,
    /// Where standard output goes while the step runs, line by line (`None`:
    /// only the outcome). A `command` responder streams its answer this way.
    pub output_to: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    /// The task's `repo`, `branch` and title: where a session step spawns.
    pub target: Option<StepTarget>,
}

/// Where a session step works: the task spec's repository and branch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepTarget {
    pub repo: Option<String>,
    pub branch: Option<String>,
    pub title: String,
}

impl StepRun {
    /// The command the container runs: the skill's command, then the step's args.
    pub fn command(&self) -> Vec<String> {
        self.skill
            .command
            .iter()
            .chain(self.args.iter())
            .cloned()
            .collect()
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Succeeded,
    /// Exited non-zero.
    Failed,
    /// Outlived its time box and was killed.
    TimedOut,
    /// Killed by the kernel for exceeding its memory limit.
    Oom,
    /// Killed from outside (the kill switch).
    Killed,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::TimedOut => "timed_out",
            StepStatus::Oom => "oom",
            StepStatus::Killed => "killed",
        }
    }
}

/// Tokens and money a worker says it spent.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub tokens: u64,
    #[serde(default)]
    pub cost_usd: f64,
}

impl Usage {
    pub fn add(&mut self, other: Usage) {
        self.tokens = self.tokens.saturating_add(other.tokens);
        self.cost_usd += other.cost_usd;
    }

    /// The last usage line in a step's stdout, if any. A malformed line is
    /// ignored (and logged by the caller) rather than failing the step.
    pub fn from_output(stdout: &str) -> Option<Usage> {
        stdout
            .lines()
            .rev()
            .filter_map(|l| l.trim().strip_prefix(USAGE_PREFIX.trim_end()))
            .find_map(|json| serde_json::from_str::<Usage>(json.trim()).ok())
            .filter(|u| u.cost_usd.is_finite() && u.cost_usd >= 0.0)
    }
}

/// What one step run reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    pub status: StepStatus,
    pub exit_code: Option<i64>,
    /// At most the runtime's bound; the whole output is in `log_file` when cut.
    pub stdout: String,
    pub stderr: String,
    pub output_truncated: bool,
    /// Bytes left out of `stdout` and `stderr` (each keeps its head and tail).
    #[serde(default)]
    pub output_cut_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_file: Option<PathBuf>,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl StepOutcome {
    /// A finished step with only an exit code and output (fakes, tests).
    pub fn exited(code: i64, stdout: impl Into<String>) -> StepOutcome {
        let stdout = stdout.into();
        StepOutcome {
            status: if code == 0 {
                StepStatus::Succeeded
            } else {
                StepStatus::Failed
            },
            exit_code: Some(code),
            usage: Usage::from_output(&stdout),
            stdout,
            stderr: String::new(),
            output_truncated: false,
            output_cut_bytes: 0,
            log_file: None,
            duration_ms: 0,
        }
    }

    pub fn with_status(mut self, status: StepStatus) -> StepOutcome {
        self.status = status;
        self
    }
}

/// Why a step could not be run at all (as opposed to running and failing).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(
        "the Docker engine at {host} is not reachable ({reason}): start Docker or set [docker] host"
    )]
    Unavailable { host: String, reason: String },
    #[error(
        "image {image} is not present on the Docker engine: build it (`switchyard` builds switchyard-worker:latest itself) or point the skill's `image` at a local image"
    )]
    ImageMissing { image: String },
    #[error("skill {skill}: {message}")]
    Skill { skill: String, message: String },
    #[error("the Docker engine refused {operation}: {message}")]
    Engine {
        operation: &'static str,
        message: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Something that runs one step in isolation and can kill what it runs.
pub trait WorkerRuntime: Send + Sync {
    fn run_step(
        &self,
        run: StepRun,
    ) -> impl Future<Output = Result<StepOutcome, WorkerError>> + Send;
    /// Kill every running step of this agent (the kill switch); returns what was killed.
    fn kill_running(
        &self,
        agent: &str,
    ) -> impl Future<Output = Result<Vec<String>, WorkerError>> + Send;
}

/// A scripted runtime for core tests: each `run_step` pops the next outcome
/// (or succeeds when the script is empty) and records what it was asked.
#[derive(Debug, Clone, Default)]
pub struct FakeRuntime {
    inner: Arc<Mutex<FakeState>>,
}

#[derive(Debug, Default)]
struct FakeState {
    script: VecDeque<Result<StepOutcome, String>>,
    runs: Vec<StepRun>,
    kills: Vec<String>,
}

impl FakeRuntime {
    pub fn new() -> FakeRuntime {
        FakeRuntime::default()
    }

    /// Queue the outcome of the next step run.
    pub fn push(&self, outcome: StepOutcome) -> &Self {
        self.inner
            .lock()
            .expect("fake runtime lock")
            .script
            .push_back(Ok(outcome));
        self
    }

    /// Queue an infrastructure error (the engine refused) for the next step run.
    pub fn push_error(&self, message: &str) -> &Self {
        self.inner
            .lock()
            .expect("fake runtime lock")
            .script
            .push_back(Err(message.to_string()));
        self
    }

    /// Every step run asked for so far.
    pub fn runs(&self) -> Vec<StepRun> {
        self.inner.lock().expect("fake runtime lock").runs.clone()
    }

    pub fn kills(&self) -> Vec<String> {
        self.inner.lock().expect("fake runtime lock").kills.clone()
    }
}

impl WorkerRuntime for FakeRuntime {
    async fn run_step(&self, run: StepRun) -> Result<StepOutcome, WorkerError> {
        let next = {
            let mut state = self.inner.lock().expect("fake runtime lock");
            state.runs.push(run);
            state.script.pop_front()
        };
        match next {
            None => Ok(StepOutcome::exited(0, "")),
            Some(Ok(outcome)) => Ok(outcome),
            Some(Err(message)) => Err(WorkerError::Engine {
                operation: "run",
                message,
            }),
        }
    }

    async fn kill_running(&self, agent: &str) -> Result<Vec<String>, WorkerError> {
        self.inner
            .lock()
            .expect("fake runtime lock")
            .kills
            .push(agent.to_string());
        Ok(Vec::new())
    }
}
