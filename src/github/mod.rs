//! GitHub: the deterministic definition of done (DESIGN 4.6, seed 001, issue 7).
//!
//! - [`registry`]: seed 001's `active-tasks.json`, imported and exported verbatim.
//! - [`requirements`]: pure evaluation of a snapshot into missing requirements
//!   and a failure classification.

pub mod registry;
pub mod requirements;

pub use registry::{RepoName, TaskRecord, TaskStatus, TrackedTask};
pub use requirements::{Failure, FailureClass, Requirement, Requirements, Snapshot};
