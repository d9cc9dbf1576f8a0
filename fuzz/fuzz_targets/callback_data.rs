//! The `callback_data` of a Telegram inline button press (any Telegram user
//! can send any string up to 64 bytes): `approvals::buttons::parse_callback_data`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::approvals::buttons::{callback_data, parse_callback_data};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some((vote, token)) = parse_callback_data(text) {
        // What we would have sent for that vote and token reads back the same.
        let again = callback_data(vote, token);
        assert_eq!(parse_callback_data(&again), Some((vote, token)));
    }
});
