//! Reactions the bots add (`PUT /channels/{id}/messages/{mid}/reactions/{emoji}/@me`),
//! refused as Discord refuses them: an unknown channel (404, 10003), an
//! unknown message (404, 10008), an emoji that is neither a Unicode emoji nor
//! one of the guild's custom emojis (400, 10014 "Unknown Emoji"; the
//! sandbox's guild has none), and a per-channel bucket of one reaction per
//! 250 ms ([`DiscordLimits::channel_reactions`](crate::DiscordLimits)).
//!
//! Discord matches a Unicode emoji against its own table; the sandbox accepts
//! what is built only of emoji code points (pictographs, dingbats, regional
//! indicators, keycaps, skin tones, ZWJ sequences, variation selectors, tags)
//! and holds at least one pictograph: `👀`, `✅`, `🇺🇸`, `1️⃣` and `👩‍💻` pass,
//! `x`, `:eyes:`, `eyes` and an empty name do not.

use axum::http::StatusCode;
use tokio::time::Instant;

use super::{BucketKind, Reply, World, plain_error, rate_headers, too_many};

/// A reaction the sandbox accepted, for the gateway's record.
pub(crate) struct Accepted {
    pub channel_id: u64,
    pub message_id: u64,
    pub emoji: String,
}

/// Checks and counts a reaction by `bot`; the path segments are raw (the
/// emoji still percent-encoded). The reply carries the bucket's headers.
pub(crate) fn add(
    world: &mut World,
    channel: &str,
    message: &str,
    emoji: &str,
    now: Instant,
) -> (Reply, Option<Accepted>) {
    let unknown_channel = || plain_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    let Ok(channel_id) = channel.parse::<u64>() else {
        return (super::snowflake_error("channel_id", channel), None);
    };
    let Ok(message_id) = message.parse::<u64>() else {
        return (super::snowflake_error("message_id", message), None);
    };
    if !world.channels.contains_key(&channel_id) {
        return (unknown_channel(), None);
    }
    let status = world.bucket(BucketKind::Reaction, channel_id, now);
    if let Some(wait) = status.refused {
        let reply = too_many(wait, false, "user");
        return (rate_headers(reply, BucketKind::Reaction, &status), None);
    }
    let known = world.channels[&channel_id]
        .messages
        .iter()
        .any(|m| m.id == message_id);
    let emoji = super::percent_decode(emoji);
    let reply = if !known {
        plain_error(StatusCode::NOT_FOUND, 10008, "Unknown Message")
    } else if !is_unicode_emoji(&emoji) {
        plain_error(StatusCode::BAD_REQUEST, 10014, "Unknown Emoji")
    } else {
        let accepted = Accepted {
            channel_id,
            message_id,
            emoji,
        };
        return (
            rate_headers(Reply::no_content(), BucketKind::Reaction, &status),
            Some(accepted),
        );
    };
    (rate_headers(reply, BucketKind::Reaction, &status), None)
}

/// Pictographs, symbols and dingbats that are emoji on their own.
fn pictograph(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF
        | 0x2600..=0x27BF
        | 0x2300..=0x23FF
        | 0x2B00..=0x2BFF
        | 0x2190..=0x21FF
        | 0x25A0..=0x25FF
        | 0x2900..=0x297F
        | 0x3030 | 0x303D | 0x3297 | 0x3299
        | 0x00A9 | 0x00AE | 0x203C | 0x2049 | 0x2122 | 0x2139 | 0x24C2)
}

/// Code points that only join or modify a pictograph.
fn joiner(c: char) -> bool {
    matches!(
        c as u32,
        0x200D              // zero-width joiner
        | 0xFE0E | 0xFE0F   // variation selectors
        | 0x20E3            // combining keycap
        | 0xE0020..=0xE007F // tags (subdivision flags)
    )
}

fn is_unicode_emoji(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() || chars.len() > 32 {
        return false;
    }
    let keycap = chars.contains(&'\u{20E3}');
    let mut has_pictograph = false;
    for &c in &chars {
        if pictograph(c) {
            has_pictograph = true;
        } else if c.is_ascii_digit() || c == '#' || c == '*' {
            // A keycap base ("1️⃣") is only an emoji with its combining keycap.
            if !keycap {
                return false;
            }
            has_pictograph = true;
        } else if !joiner(c) {
            return false;
        }
    }
    has_pictograph
}

#[cfg(test)]
mod tests {
    use super::is_unicode_emoji;

    #[test]
    fn emoji_and_not() {
        for ok in [
            "👀",
            "✅",
            "🇺🇸",
            "1\u{FE0F}\u{20E3}",
            "👩\u{200D}💻",
            "👍🏽",
            "❤\u{FE0F}",
        ] {
            assert!(is_unicode_emoji(ok), "{ok:?} is an emoji");
        }
        for bad in [
            "",
            "x",
            ":eyes:",
            "eyes",
            "1",
            "👀 ",
            "eyes:123456789012345678",
        ] {
            assert!(!is_unicode_emoji(bad), "{bad:?} is not an emoji");
        }
    }
}
