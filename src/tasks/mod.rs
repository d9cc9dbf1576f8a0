//! Work handed to container workers: task specs (seed 004), the policy gate,
//! the pipeline that runs a spec's steps through a [`WorkerRuntime`], the
//! circuit breakers around it (seed 000), and what a finished task leaves
//! behind (event, telemetry line, intent → receipt → verification records).
//!
//! Nothing here knows Docker: the runtime is a trait, implemented over
//! bollard in `crate::workers` and by an in-memory fake for core tests.

pub mod breaker;
pub mod pipeline;
pub mod policy;
pub mod progress;
pub mod results;
pub mod runtime;
pub mod spec;

pub use breaker::{Backoff, BreakerSettings, ConsecutiveFailures};
pub use pipeline::{Pipeline, PipelineError, TaskReport};
pub use policy::{ApprovalDecision, GateDecision, PolicyLine, PolicyReport, gate, score};
pub use progress::{Progress, ProgressTx};
pub use runtime::{
    FakeRuntime, StepOutcome, StepRun, StepStatus, Usage, WorkerError, WorkerRuntime,
};
pub use spec::{
    Budget, MemoryEntry, Notify, Priority, Risk, SpecErrors, Step, TaskId, TaskSpec, TaskState,
};
