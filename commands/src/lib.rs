//! switchyard-commands: platform-neutral chat commands (grammar, help,
//! authorization, handlers over a trait). Pure: no platform or I/O crates.
//!
//! Discord and Telegram are two renderings of the same commands: the adapters
//! convert a platform interaction into the types here, call the handler, and
//! render the neutral reply.

pub mod access;
pub mod catalog;
pub mod command;
pub mod complete;
pub mod duration;
pub mod fleet;
pub mod handler;
pub mod ids;
pub mod parse;
pub mod reply;

pub use access::{AccessList, AccessRule, Caller, PermissionClass, Refusal, authorize};
pub use catalog::{COMMANDS, CommandSpec, Completion, Requirement, telegram_commands};
pub use command::{Command, CommandInput, OptionValue, TaskCommand, UsageError};
pub use complete::{complete, completion_for};
pub use duration::MuteDuration;
pub use fleet::{Fleet, FleetError};
pub use handler::{
    AuditOutcome, AuditRecord, Handled, handle, handle_text, handle_usage_error, status_reply,
};
pub use ids::{
    AgentName, ApprovalId, MuteId, MuteTarget, TaskId, parse_mute_id, parse_mute_target,
};
pub use parse::{addressed_to, parse_text};
pub use reply::{Button, ButtonAction, ButtonToken, Field, Reply, Tone};
