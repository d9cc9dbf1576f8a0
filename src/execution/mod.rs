//! The execution loop's adapters on this host (seed 001): tmux (sessions,
//! panes, literal keys) and spawning (git worktree, tmux session, cleared
//! environment). The monitor reaches them through
//! `github::workers::WorkerPort`, which `agent::workers` implements.

pub mod spawn;
pub mod tmux;
