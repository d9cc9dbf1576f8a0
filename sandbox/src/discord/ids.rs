//! Who a Discord bot is, read from its token alone: the bot's user id is the
//! token's first segment in base64, as on Discord. Kept apart from the REST
//! stand-in (`discord.rs`) because the login checks (`login.rs`) and the gateway
//! need it too, and neither should have to reach into the REST routes for it.

use std::hash::{Hash, Hasher};

/// The bot's user id from its token (the first segment is the id in base64), or a
/// stable stand-in when the token is not shaped like Discord's.
pub(crate) fn bot_user_id(token: &str) -> u64 {
    let first = token.split('.').next().unwrap_or("");
    if let Some(id) = base64_decode(first)
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|id| *id > 0)
    {
        return id;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    token.hash(&mut h);
    (h.finish() >> 1).max(1)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.trim_end_matches('=').bytes() {
        acc = (acc << 6) | u32::from(value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_user_id_is_read_from_the_token() {
        // "MTAxMjM0" is base64 for "101234".
        assert_eq!(bot_user_id("MTAxMjM0.fake.token"), 101_234);
        assert!(bot_user_id("not-a-token") > 0);
    }
}
