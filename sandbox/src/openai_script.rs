//! What the OpenAI stand-in answers: a deterministic reply that proves the
//! conversation was passed, the directives a test writes into its last user
//! message to ask for other behaviour, the token estimate and the pieces a
//! streamed answer is sent in.
//!
//! The default answer is
//! `persona: <first line of the first system or developer message, or "none"> ·
//! turns: <user messages> · you said: <the last user message, directives removed>`.
//!
//! Directives are `[[sandbox:NAME]]` or `[[sandbox:NAME=VALUE]]`, anywhere in
//! the last user message's text, several at once:
//!
//! | directive | effect |
//! |---|---|
//! | `slow=MS` | wait MS before the first token (the whole answer when not streaming) |
//! | `chunk_ms=MS` | wait MS between streamed events |
//! | `chunk=N` | N characters per content delta (default 16) |
//! | `long=N` | an answer of exactly N characters (a sentence repeated) |
//! | `answer=TEXT` | answer TEXT (up to the closing `]]`) |
//! | `status=CODE`, or `CODE` alone (`[[sandbox:429]]`) | refuse with that status in OpenAI's error shape; 429 carries `retry-after` |
//! | `retry_after=S` | the `retry-after` of a 429 (default 1) |
//! | `quota` | 429 `insufficient_quota` (no `retry-after`: waiting does not help) |
//! | `broken` | stream half the answer, then end the body without `finish_reason` or `[DONE]` (not streaming: a cut JSON body) |
//! | `reset` | stream half the answer, then abort the connection |
//! | `garbage` | one `data:` line that is not JSON after the first event (not streaming: a 200 whose body is not JSON) |
//!
//! Waits are capped at 60 s and `long` at 1,000,000 characters. Other
//! `[[sandbox:…]]` text is not a directive and stays in the answer.

use std::time::Duration;

/// The longest wait a directive may ask for.
const MAX_WAIT_MS: u64 = 60_000;
/// The longest answer `long` may ask for, in characters.
const MAX_LONG: usize = 1_000_000;
/// Characters per content delta unless `chunk=N` says otherwise.
pub(crate) const DEFAULT_CHUNK: usize = 16;
/// What `long=N` repeats.
const FILLER: &str =
    "The sandbox streams a long answer so that a client can be seen splitting it. ";

/// What the last user message asks of the sandbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Directives {
    pub slow: Duration,
    pub chunk_gap: Duration,
    pub chunk_chars: Option<usize>,
    pub long: Option<usize>,
    pub answer: Option<String>,
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    pub quota: bool,
    pub broken: bool,
    pub reset: bool,
    pub garbage: bool,
    /// The directives recognised, as written (`slow=200`), for the record.
    pub seen: Vec<String>,
}

fn wait(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|ms| Duration::from_millis(ms.min(MAX_WAIT_MS)))
}

impl Directives {
    /// Applies one `NAME` or `NAME=VALUE`; false when it is not a directive.
    fn apply(&mut self, directive: &str) -> bool {
        let (name, value) = match directive.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v)),
            None => (directive.trim(), None),
        };
        let number = || value.and_then(|v| v.trim().parse::<u64>().ok());
        match (name, value) {
            ("slow", Some(v)) => wait(v).map(|d| self.slow = d).is_some(),
            ("chunk_ms", Some(v)) => wait(v).map(|d| self.chunk_gap = d).is_some(),
            ("chunk", Some(_)) => number()
                .filter(|n| *n > 0)
                .map(|n| self.chunk_chars = Some(n as usize))
                .is_some(),
            ("long", Some(_)) => number()
                .map(|n| self.long = Some((n as usize).min(MAX_LONG)))
                .is_some(),
            ("answer", Some(v)) => {
                self.answer = Some(v.to_owned());
                true
            }
            ("status", Some(_)) => number()
                .filter(|s| (400..=599).contains(s))
                .map(|s| self.status = Some(s as u16))
                .is_some(),
            ("retry_after", Some(_)) => number().map(|s| self.retry_after = Some(s)).is_some(),
            ("quota", None) => {
                self.quota = true;
                true
            }
            ("broken", None) => {
                self.broken = true;
                true
            }
            ("reset", None) => {
                self.reset = true;
                true
            }
            ("garbage", None) => {
                self.garbage = true;
                true
            }
            (code, None) => code
                .parse::<u16>()
                .ok()
                .filter(|s| (400..=599).contains(s))
                .map(|s| self.status = Some(s))
                .is_some(),
            _ => false,
        }
    }
}

/// The directives in `text`, and the text without them.
pub(crate) fn parse(text: &str) -> (Directives, String) {
    const OPEN: &str = "[[sandbox:";
    let mut d = Directives::default();
    let mut rest = text;
    let mut plain = String::with_capacity(text.len());
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find("]]") else { break };
        let directive = &after[..end];
        plain.push_str(&rest[..start]);
        if d.apply(directive) {
            d.seen.push(directive.to_owned());
        } else {
            plain.push_str(&rest[start..start + OPEN.len() + end + 2]);
        }
        rest = &after[end + 2..];
        // "a [[sandbox:x]] b" reads "a b": one space where the directive was.
        if plain.is_empty() || plain.ends_with([' ', '\n']) {
            rest = rest.trim_start_matches(' ');
        }
    }
    plain.push_str(rest);
    (d, plain.trim().to_owned())
}

/// One message of the conversation, reduced to its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Turn {
    pub role: String,
    pub text: String,
}

/// The default answer (see the module documentation).
pub(crate) fn scripted(turns: &[Turn], said: &str) -> String {
    let persona = turns
        .iter()
        .find(|t| t.role == "system" || t.role == "developer")
        .and_then(|t| t.text.lines().find(|l| !l.trim().is_empty()))
        .map_or("none", str::trim);
    let users = turns.iter().filter(|t| t.role == "user").count();
    format!("persona: {persona} · turns: {users} · you said: {said}")
}

/// An answer of exactly `n` characters.
pub(crate) fn long(n: usize) -> String {
    FILLER.chars().cycle().take(n).collect()
}

/// The sandbox's token estimate: a quarter of the characters, rounded up, at
/// least 1. Prompt tokens are the sum over the messages' texts.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

/// The answer cut to `max_tokens` by the estimate; true when it was cut.
pub(crate) fn limit(answer: &str, max_tokens: Option<u64>) -> (String, bool) {
    match max_tokens {
        Some(max) if estimate_tokens(answer) > max => {
            let keep = (max.saturating_mul(4)) as usize;
            (answer.chars().take(keep).collect(), true)
        }
        _ => (answer.to_owned(), false),
    }
}

/// The answer up to the first stop sequence; true when one was found.
pub(crate) fn stop_at(answer: &str, stops: &[String]) -> (String, bool) {
    match stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| answer.find(s.as_str()))
        .min()
    {
        Some(at) => (answer[..at].to_owned(), true),
        None => (answer.to_owned(), false),
    }
}

/// The pieces a streamed answer is sent in, `size` characters each.
pub(crate) fn pieces(answer: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = answer.chars().collect();
    chars
        .chunks(size.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_are_read_and_removed() {
        let (d, plain) =
            parse("hello [[sandbox:slow=250]] there [[sandbox:429]][[sandbox:chunk=3]]");
        assert_eq!(plain, "hello there");
        assert_eq!(d.slow, Duration::from_millis(250));
        assert_eq!(d.status, Some(429));
        assert_eq!(d.chunk_chars, Some(3));
        assert_eq!(d.seen, ["slow=250", "429", "chunk=3"]);
        let (d, plain) =
            parse("[[sandbox:answer=Hi, ops!]] [[sandbox:nonsense]] [[sandbox:slow=x]]");
        assert_eq!(d.answer.as_deref(), Some("Hi, ops!"));
        assert_eq!(plain, "[[sandbox:nonsense]] [[sandbox:slow=x]]");
        let (d, _) = parse("[[sandbox:slow=99999999]] [[sandbox:status=200]] [[sandbox:broken");
        assert_eq!(d.slow, Duration::from_millis(MAX_WAIT_MS));
        assert_eq!(d.status, None, "only error statuses");
        assert!(!d.broken, "unterminated");
    }

    #[test]
    fn the_default_answer_shows_what_was_passed() {
        let turns = [
            Turn {
                role: "system".into(),
                text: "\nYou are tech-lead.\nLocks: none".into(),
            },
            Turn {
                role: "user".into(),
                text: "first".into(),
            },
            Turn {
                role: "assistant".into(),
                text: "ok".into(),
            },
            Turn {
                role: "user".into(),
                text: "second".into(),
            },
        ];
        assert_eq!(
            scripted(&turns, "second"),
            "persona: You are tech-lead. · turns: 2 · you said: second"
        );
        assert_eq!(
            scripted(&turns[1..2], "x"),
            "persona: none · turns: 1 · you said: x"
        );
    }

    #[test]
    fn long_answers_are_exact_and_pieces_keep_every_character() {
        let text = long(3000);
        assert_eq!(text.chars().count(), 3000);
        let parts = pieces(&text, DEFAULT_CHUNK);
        assert_eq!(parts.len(), 3000usize.div_ceil(DEFAULT_CHUNK));
        assert_eq!(parts.concat(), text);
        assert_eq!(pieces("héllo", 2), ["hé", "ll", "o"]);
    }

    #[test]
    fn tokens_are_a_quarter_of_the_characters_and_limits_cut() {
        assert_eq!(estimate_tokens(""), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(limit("abcdefghij", Some(2)), ("abcdefgh".to_owned(), true));
        assert_eq!(limit("abc", Some(2)), ("abc".to_owned(), false));
        assert_eq!(
            stop_at("one. two. three", &[". t".into(), "three".into()]),
            ("one".to_owned(), true)
        );
    }
}
