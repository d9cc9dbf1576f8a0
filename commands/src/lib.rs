//! switchyard-commands: platform-neutral chat commands (grammar, help,
//! authorization, handlers over a trait). Pure: no platform or I/O crates.
//!
//! Discord and Telegram are two renderings of the same commands: the adapters
//! convert a platform interaction into the types here, call the handler, and
//! render the neutral reply.

pub mod access;

pub use access::{AccessList, AccessRule, Caller, PermissionClass};
