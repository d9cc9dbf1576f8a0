//! switchyard-commands: platform-neutral chat commands (grammar, help,
//! authorization, handlers over a trait). Pure: no platform or I/O crates.
