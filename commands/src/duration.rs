//! Durations as people type them in chat (`30m`, `2h`, `1h30m`, `1d`) and
//! ages as the replies show them (`42s`, `5m`, `2h 5m`).

use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

/// The shortest mute worth making.
pub const MIN_MUTE_SECS: i64 = 60;
/// The longest mute: a forgotten mute silently hides a channel, so longer
/// ones must be renewed on purpose.
pub const MAX_MUTE_SECS: i64 = 30 * 86_400;

const UNITS: [(char, i64); 5] = [
    ('w', 7 * 86_400),
    ('d', 86_400),
    ('h', 3_600),
    ('m', 60),
    ('s', 1),
];

/// How long a mute lasts, between one minute and 30 days, in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MuteDuration(i64);

impl MuteDuration {
    pub fn from_secs(secs: i64) -> Result<Self, String> {
        if !(MIN_MUTE_SECS..=MAX_MUTE_SECS).contains(&secs) {
            return Err(format!(
                "a mute lasts from 1m to 30d, not {}",
                format_compact(secs)
            ));
        }
        Ok(MuteDuration(secs))
    }
    pub fn as_secs(self) -> i64 {
        self.0
    }
    pub fn as_delta(self) -> TimeDelta {
        TimeDelta::seconds(self.0)
    }
}

impl FromStr for MuteDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        MuteDuration::from_secs(parse_secs(s)?)
    }
}

impl fmt::Display for MuteDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_compact(self.0))
    }
}

impl TryFrom<String> for MuteDuration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<MuteDuration> for String {
    fn from(d: MuteDuration) -> String {
        d.to_string()
    }
}

/// Parses `<number><unit>` repeated, units `w d h m s` in decreasing order,
/// each at most once (`1h30m`, `90m`, `2d`). No spaces, no bare numbers: a
/// bare `2` could mean minutes or hours, and guessing wrong mutes a channel
/// for sixty times longer than meant.
pub fn parse_secs(s: &str) -> Result<i64, String> {
    let bad = |why: &str| format!("duration {s:?} {why}: write it like 30m, 2h or 1h30m");
    let s_trim = s.trim();
    if s_trim.is_empty() {
        return Err(bad("is empty"));
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    let mut last_unit_index: Option<usize> = None;
    for c in s_trim.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = c.to_ascii_lowercase();
        let Some(index) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(bad(&format!("has an unknown unit {c:?}")));
        };
        if digits.is_empty() {
            return Err(bad("has a unit without a number"));
        }
        if last_unit_index.is_some_and(|last| index <= last) {
            return Err(bad("repeats a unit or has them out of order"));
        }
        last_unit_index = Some(index);
        let n: i64 = digits.parse().map_err(|_| bad("is too large"))?;
        digits.clear();
        total = n
            .checked_mul(UNITS[index].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| bad("is too large"))?;
    }
    if !digits.is_empty() {
        return Err(bad("ends with a number without a unit"));
    }
    Ok(total)
}

/// `1h30m`, `2d`, `45s`: the form [`parse_secs`] reads back.
pub fn format_compact(secs: i64) -> String {
    if secs <= 0 {
        return "0s".to_string();
    }
    let mut rest = secs;
    let mut out = String::new();
    for (unit, size) in UNITS {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// A human age with the two largest units (`42s`, `5m`, `2h 5m`, `3d 4h`).
/// Negative ages (clock skew between agents) read as `0s`.
pub fn format_age(delta: TimeDelta) -> String {
    let secs = delta.num_seconds().max(0);
    let parts: Vec<String> = UNITS[1..]
        .iter()
        .scan(secs, |rest, (unit, size)| {
            let n = *rest / size;
            *rest %= size;
            Some((n, *unit))
        })
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".to_string()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_people_type() {
        for (input, secs) in [
            ("30m", 1_800),
            ("2h", 7_200),
            ("1h30m", 5_400),
            ("90m", 5_400),
            ("1d", 86_400),
            ("1w", 604_800),
            ("45s", 45),
            ("1H30M", 5_400),
        ] {
            assert_eq!(parse_secs(input), Ok(secs), "{input}");
        }
    }

    #[test]
    fn rejects_ambiguous_or_malformed_durations() {
        for input in [
            "",
            "2",
            "h",
            "30x",
            "30m1h",
            "1h1h",
            "2h 30m",
            "-5m",
            "99999999999999999999d",
        ] {
            let err = parse_secs(input).unwrap_err();
            assert!(err.contains("30m, 2h or 1h30m"), "{input}: {err}");
        }
    }

    #[test]
    fn mute_durations_are_bounded() {
        assert!(
            "30s"
                .parse::<MuteDuration>()
                .unwrap_err()
                .contains("1m to 30d")
        );
        assert!("31d".parse::<MuteDuration>().is_err());
        assert_eq!(
            "1h30m".parse::<MuteDuration>().unwrap().to_string(),
            "1h30m"
        );
        assert_eq!("30d".parse::<MuteDuration>().unwrap().to_string(), "4w2d");
    }

    #[test]
    fn ages_show_two_units() {
        for (secs, text) in [
            (0, "0s"),
            (-3, "0s"),
            (42, "42s"),
            (300, "5m"),
            (7_500, "2h 5m"),
            (3_600, "1h"),
            (273_600, "3d 4h"),
        ] {
            assert_eq!(format_age(TimeDelta::seconds(secs)), text, "{secs}");
        }
    }
}
