//! What an approval prompt's buttons carry and say, whatever platform shows
//! them: the `callback_data` of Approve and Deny (an action letter and the
//! request's opaque 128-bit token, never its id) and how long until expiry.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Vote;

/// `callback_data` of a button: the action letter and the request's secret.
pub fn callback_data(vote: Vote, token: &str) -> String {
    match vote {
        Vote::Approve => format!("a:{token}"),
        Vote::Deny => format!("d:{token}"),
    }
}

/// The vote and secret a `callback_data` carries, if it has our shape.
pub fn parse_callback_data(data: &str) -> Option<(Vote, &str)> {
    let (action, token) = data.split_once(':')?;
    let vote = match action {
        "a" => Vote::Approve,
        "d" => Vote::Deny,
        _ => return None,
    };
    (token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())).then_some((vote, token))
}

/// "12m", "1h 5m", "40s": how long until `t`.
pub fn until(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds().max(0) as u64;
    let rounded = if secs >= 120 { secs / 60 * 60 } else { secs };
    humantime::format_duration(Duration::from_secs(rounded)).to_string()
}
