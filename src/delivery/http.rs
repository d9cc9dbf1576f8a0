//! What both platforms' HTTP clients share: a transport error (reqwest, under
//! serenity and teloxide alike) said as one sentence, without the URL (which
//! can carry a bot token in Telegram's case).

/// A transport error as a sentence, without the URL.
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "the request timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the response broke off"
    } else {
        "the request failed"
    };
    let mut out = what.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
