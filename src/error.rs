//! The user-error vocabulary shared by the shell and the agents.
//!
//! Errors a user can fix are [`BadInput`], a [`ConfigError`] and a
//! [`TokenRefused`] (exit 2);
//! anything else is a failure (exit 1). An internal failure shown to a user
//! carries an [`error_id`] that is also written in the log beside the full
//! error. This module depends on no other module of the crate, so every
//! layer can use it (`crate::config` re-exports the configuration's two).

use std::fmt;

/// One problem in the configuration, with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Everything wrong with a configuration, found in one pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub source_name: String,
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} problem(s) in {}:",
            self.problems.len(),
            self.source_name
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// Bad usage or bad input: the user can fix it (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

pub fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    BadInput(msg.into()).into()
}

/// What a platform said when asked about a bot token at start-up (Discord's
/// `GET /users/@me`, Telegram's `getMe`). The adapters ask and answer with this;
/// the agent decides what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// The platform knows the token: this is the bot it names (its id, not a secret).
    Accepted { bot: String },
    /// The platform refused the token: wrong, revoked or malformed. `reason` is what
    /// it answered ("401 Unauthorized"); `hint` what the operator can do about it.
    Refused {
        status: u16,
        reason: String,
        hint: String,
    },
    /// No verdict on the token: a network error, a timeout, a 5xx or an answer
    /// that says nothing about it. Not a refusal.
    Unreachable { error: String },
}

/// A bot token the platform refused at start-up: the operator's to fix (exit
/// status 2). Names the variable, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {platform} token in {variable} was refused ({reason}): {hint}")]
pub struct TokenRefused {
    /// "Discord" or "Telegram".
    pub platform: &'static str,
    /// The environment variable the token was read from.
    pub variable: String,
    pub status: u16,
    pub reason: String,
    pub hint: String,
}

/// The documented exit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Success = 0,
    Failure = 1,
    BadInput = 2,
    /// Stopped by SIGINT or SIGTERM, after cleaning up (128 + SIGINT, as shells report it).
    Interrupted = 130,
}

/// A command stopped by a signal, having cleaned up what it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted: {0}")]
pub struct Interrupted(pub &'static str);

impl Exit {
    pub fn of(e: &anyhow::Error) -> Exit {
        if e.chain().any(|c| c.is::<Interrupted>()) {
            return Exit::Interrupted;
        }
        if e.chain()
            .any(|c| c.is::<BadInput>() || c.is::<ConfigError>() || c.is::<TokenRefused>())
        {
            Exit::BadInput
        } else {
            Exit::Failure
        }
    }
}

/// A short id shown to users and written in the log beside the full error.
pub fn error_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}
