//! switchyard: a self-hosted chat-ops bot fleet.
//!
//! The library holds the runtime (everything that does I/O); the binary in
//! `main.rs` only parses the command line and calls in here. The pure domain
//! lives in the `switchyard-routing` and `switchyard-commands` crates.

pub mod sandbox;
pub mod config;
pub mod tasks;
pub mod workers;
/// Only the task tables live on this branch; `store/mod.rs` (the delivery
/// helper's) declares `pub mod tasks;` at merge and this block goes away.
pub mod store {
    pub mod tasks;
}
