//! The sandbox's integration tests, one binary: the conformance tests against
//! the API descriptions in `../shared/specs/` (Discord, Telegram, OpenAI), the
//! OpenAI stand-in's streams and directives, GitHub's GraphQL endpoint (review
//! threads, its refusals, the vendored schema extract) and the GitHub control
//! endpoints, the Discord gateway over a raw WebSocket, the web view in headless Chromium, the refusal of tokens the
//! sandbox does not know, Telegram's rules beyond the method descriptions
//! (`allowed_updates`, chat actions, parse modes), and outside client libraries
//! (Python, from PyPI) pointed at the sandbox. The wire tests with the real
//! serenity and teloxide clients live in the root crate's
//! `tests/it/sandbox_wire.rs`: the sandbox depends on no Rust platform client,
//! not even for its tests.

mod conformance;
mod discord_rules;
mod gateway;
mod github_graphql;
mod openai;
mod openai_conformance;
mod openapi;
mod outside;
mod telegram_rules;
mod tokens;
mod uploads;
mod webview;
mod ws;
