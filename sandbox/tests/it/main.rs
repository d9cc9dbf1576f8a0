//! The sandbox's integration tests, one binary: the conformance test against
//! the API descriptions in `../shared/specs/`, the web view in headless
//! Chromium, and the refusal of tokens the sandbox does not know. The wire
//! tests with the real serenity and teloxide clients live in the root crate's `tests/it/sandbox_wire.rs`: the sandbox depends on no
//! platform client, not even for its tests.

mod conformance;
mod openapi;
mod tokens;
mod webview;
