//! GitHub: the deterministic definition of done (DESIGN 4.6, seed 001, issue 7).
//!
//! - [`registry`]: seed 001's `active-tasks.json`, imported and exported verbatim.
//! - [`requirements`]: pure evaluation of a snapshot into missing requirements
//!   and a failure classification.
//! - [`client`]: the octocrab adapter (conditional requests, rate limits).
//! - [`monitor`]: the loop and its output port, [`monitor::MonitorOutput`].
//! - [`store`]: tasks, monitor state and ETags in SQLite.
//! - [`runner`]: the monitor loop inside an agent (restore, pass, persist).
//!
//! The output port's implementation over a running agent is `agent::github`.

pub mod client;
pub mod monitor;
pub mod registry;
pub mod requirements;
pub mod runner;
pub mod store;

pub use client::GithubClient;
pub use monitor::{Monitor, MonitorOutput, MonitorSettings, PassOutcome, PassReport, TaskState};
pub use registry::{RepoName, TaskRecord, TaskStatus, TrackedTask};
pub use requirements::{Failure, FailureClass, Requirement, Requirements, Snapshot};
