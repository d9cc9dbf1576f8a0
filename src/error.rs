//! The user-error vocabulary shared by the shell and the agents.
//!
//! Errors a user can fix are [`BadInput`] (exit 2, like a [`ConfigError`]);
//! anything else is a failure (exit 1). An internal failure shown to a user
//! carries an [`error_id`] that is also written in the log beside the full
//! error.

use crate::config::ConfigError;

/// Bad usage or bad input: the user can fix it (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

pub fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    BadInput(msg.into()).into()
}

/// The documented exit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Success = 0,
    Failure = 1,
    BadInput = 2,
}

impl Exit {
    pub fn of(e: &anyhow::Error) -> Exit {
        if e.chain()
            .any(|c| c.is::<BadInput>() || c.is::<ConfigError>())
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
