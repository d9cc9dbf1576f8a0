//! The root crate's integration tests, one binary (`it`): each file is a
//! module, so serenity, teloxide, octocrab, bollard, sqlx and axum are linked
//! once, not once per file. All modules' tests run concurrently in this one
//! process; `common` is the shared harness (also used by the benches).

mod agent;
mod approvals;
mod command_conformance;
mod common;
mod console;
mod conversations;
mod coord;
mod coord_shared;
mod delivery;
mod demo;
mod discord;
mod examples;
mod execution;
mod files;
mod fuzz_regressions;
mod github;
mod sandbox_login;
mod sandbox_wire;
mod store_backends;
mod telegram;
mod tokens;
mod upgrade;
mod workers;
