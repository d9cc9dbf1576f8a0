//! Local stand-ins for the Discord, Telegram and GitHub APIs (tests and `demo`).

pub mod github;
