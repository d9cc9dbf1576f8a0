//! A chat message as Telegram (and Discord mentions) deliver it:
//! `switchyard_commands::parse_text` and `addressed_to`; for a command that
//! parses, its neutral input form and back (`to_input` / `from_input`, the
//! path Discord's slash commands take); for a usage error, its text.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use switchyard_commands::{Command, addressed_to, parse_text};

/// `SWITCHYARD_FUZZ_GUARD_KNOWN=1` (set by run.sh) steps around the bugs
/// already reported, so that a long run goes on looking for new ones; without
/// it the target reproduces them (tests/fuzz_regressions/chat_command-*.bin).
static GUARD_KNOWN: LazyLock<bool> =
    LazyLock::new(|| std::env::var_os("SWITCHYARD_FUZZ_GUARD_KNOWN").is_some_and(|v| v == "1"));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = addressed_to(text);
    // Known bug: Cursor::strip_trailing_word (commands/src/parse.rs) steps one
    // byte past the last whitespace, inside a multi-byte one such as U+2000 or
    // U+3000 (tests/fuzz_regressions/chat_command-multibyte-whitespace.bin).
    if *GUARD_KNOWN && text.chars().any(|c| c.is_whitespace() && c.len_utf8() > 1) {
        return;
    }
    match parse_text(text) {
        Ok(command) => {
            let _ = command.name();
            let _ = command.requirement();
            let input = command.to_input();
            let _ = Command::from_input(&input);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
