//! The monitor's port to a task's worker (seed 001's "session/process is
//! alive" and "orchestrator sends focused correction prompt to active
//! session"): how the worker is reached ([`Worker`], from the registry
//! record), what a look at it found ([`Liveness`]), how a correction reached
//! it ([`Delivery`]), and the port itself ([`WorkerPort`]).
//!
//! The tmux and spawn adapters are in `crate::execution`; the port over a
//! running agent is `agent::workers`.

use std::fmt;

use futures_util::future::BoxFuture;

use super::failures::Failure;
use super::registry::{TaskRecord, TrackedTask};

/// How a task's worker is reached, from its registry record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Worker {
    /// A tmux session on this host; `expect` is the program its pane runs
    /// while the agent works.
    Tmux {
        session: String,
        expect: Option<String>,
    },
    /// A switchyard task (its id) running in a container.
    Container { task: String },
    /// Another agent or program that reads this agent's fleet inbox.
    Inbox { agent: String },
    /// The record names no worker: corrections are announced to the
    /// monitoring agent only, and nothing is checked.
    Unnamed,
}

impl Worker {
    pub fn of(record: &TaskRecord) -> Worker {
        let w = &record.worker;
        if let Some(session) = &w.tmux_session {
            Worker::Tmux {
                session: session.clone(),
                expect: w.agent_command.clone(),
            }
        } else if let Some(task) = &w.worker_task {
            Worker::Container { task: task.clone() }
        } else if let Some(agent) = &w.inbox_agent {
            Worker::Inbox {
                agent: agent.clone(),
            }
        } else {
            Worker::Unnamed
        }
    }
}

impl fmt::Display for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Worker::Tmux { session, .. } => write!(f, "tmux session {session}"),
            Worker::Container { task } => write!(f, "container task {task}"),
            Worker::Inbox { agent } => write!(f, "the inbox of {agent}"),
            Worker::Unnamed => f.write_str("no named worker"),
        }
    }
}

/// What one look at a worker found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    /// Gone, with what was seen (`the pane runs bash, not codex`).
    Dead(String),
    /// Could not tell (tmux missing, the store unreadable, no worker named):
    /// never a failure by itself.
    Unknown(String),
}

/// How a correction reached (or did not reach) the worker; the
/// announcement in Discord says which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Typed into the live session, literally, then Enter.
    Typed { session: String },
    /// Written as an item into an inbox.
    Dropped { agent: String },
    /// The session was started again from its template.
    Respawned { session: String },
    /// Not delivered, and why (the pane runs a shell, the container reads no input).
    NotDelivered(String),
    /// No worker is named: the announcement is all there is.
    AnnouncedOnly,
}

impl Delivery {
    /// One line for the announcement.
    pub fn line(&self) -> String {
        match self {
            Delivery::Typed { session } => {
                format!("Delivered: typed into tmux session {session}.")
            }
            Delivery::Dropped { agent } => format!("Delivered: written to the inbox of {agent}."),
            Delivery::Respawned { session } => {
                format!("Delivered: tmux session {session} respawned from its template.")
            }
            Delivery::NotDelivered(why) => format!("Not delivered to the worker: {why}."),
            Delivery::AnnouncedOnly => {
                "Not delivered to a worker: the task names none (tmuxSession, workerTask or inboxAgent).".to_string()
            }
        }
    }
}

/// What the monitor asks of a task's worker. Implementations never fail a
/// pass: what they cannot do is a [`Liveness::Unknown`] or a
/// [`Delivery::NotDelivered`].
pub trait WorkerPort: Send + Sync {
    fn liveness<'a>(&'a self, task: &'a TrackedTask) -> BoxFuture<'a, Liveness>;
    /// Hand `failure`'s context to the worker.
    fn deliver<'a>(
        &'a self,
        task: &'a TrackedTask,
        failure: &'a Failure,
    ) -> BoxFuture<'a, Delivery>;
    /// Start the task's session again from its `spawnTemplate`; `None` when
    /// this task cannot be respawned here.
    fn respawn<'a>(&'a self, task: &'a TrackedTask) -> BoxFuture<'a, Option<anyhow::Result<()>>>;
    /// The PR is merged or the task abandoned: remove the session, the
    /// worktree and the branch a spawn made. Returns what was removed.
    fn cleanup<'a>(&'a self, task: &'a TrackedTask) -> BoxFuture<'a, Vec<String>>;
}

/// No workers: nothing is checked, corrections are announced only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoWorkers;

impl WorkerPort for NoWorkers {
    fn liveness<'a>(&'a self, _task: &'a TrackedTask) -> BoxFuture<'a, Liveness> {
        Box::pin(async { Liveness::Unknown("workers are not checked here".into()) })
    }
    fn deliver<'a>(
        &'a self,
        _task: &'a TrackedTask,
        _failure: &'a Failure,
    ) -> BoxFuture<'a, Delivery> {
        Box::pin(async { Delivery::AnnouncedOnly })
    }
    fn respawn<'a>(&'a self, _task: &'a TrackedTask) -> BoxFuture<'a, Option<anyhow::Result<()>>> {
        Box::pin(async { None })
    }
    fn cleanup<'a>(&'a self, _task: &'a TrackedTask) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async { Vec::new() })
    }
}
