//! A chat message as Telegram (and Discord mentions) deliver it:
//! `switchyard_commands::parse_text` and `addressed_to`; for a command that
//! parses, its neutral input form and back (`to_input` / `from_input`, the
//! path Discord's slash commands take); for a usage error, its text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_commands::{Command, addressed_to, parse_text};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = addressed_to(text);
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
