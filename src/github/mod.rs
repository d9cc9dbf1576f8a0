//! GitHub: the deterministic definition of done (DESIGN 4.6, seed 001, issue 7).
//!
//! - [`registry`]: seed 001's `active-tasks.json`, imported and exported verbatim.
//! - [`requirements`]: pure evaluation of a snapshot into missing requirements.
//! - [`failures`]: pure classification of what is missing into the failure
//!   handed back to the agent (with outside text quoted as data).
//! - [`client`]: the octocrab adapter (conditional requests, rate limits).
//! - [`threads`]: review threads through GraphQL, and which are critical.
//! - [`workers`]: the port to a task's worker (liveness, corrections,
//!   respawn, cleanup).
//! - [`monitor`]: the loop and its output port, [`monitor::MonitorOutput`].
//! - [`store`]: tasks, monitor state and ETags in SQLite.
//! - [`runner`]: the monitor loop inside an agent (restore, pass, persist).
//!
//! The output port's implementation over a running agent is `agent::github`.

pub mod client;
pub mod failures;
pub mod monitor;
pub mod registry;
pub mod requirements;
pub mod runner;
pub mod store;
pub mod threads;
pub mod workers;

pub use client::GithubClient;
pub use failures::{Failure, FailureClass};
pub use monitor::{Monitor, MonitorOutput, MonitorSettings, PassOutcome, PassReport, TaskState};
pub use registry::{RepoName, TaskRecord, TaskStatus, TrackedTask};
pub use requirements::{Requirement, Requirements, Snapshot};
