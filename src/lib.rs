//! switchyard: a self-hosted chat-ops bot fleet.
//!
//! The library holds the runtime (everything that does I/O); the binary in
//! `main.rs` only parses the command line and calls in here. The pure domain
//! lives in the `switchyard-routing` and `switchyard-commands` crates.

pub mod agent;
pub mod approvals;
pub mod cli;
pub mod config;
pub mod console;
pub mod conversations;
pub mod coord;
pub mod delivery;
pub mod demo;
pub mod discord;
pub mod error;
pub mod execution;
pub mod files;
pub mod fleet;
pub mod github;
pub mod health;
pub mod metrics;
pub mod responders;
pub mod schedules;
pub mod shutdown;
pub mod store;
pub mod tasks;
pub mod telegram;
pub mod workers;
