//! The sandbox's integration tests, one binary: the wire tests with the real
//! serenity and teloxide clients, the conformance test against the API
//! descriptions in `../shared/specs/`, and the web view in headless Chromium.

mod conformance;
mod openapi;
mod sandbox;
mod webview;
