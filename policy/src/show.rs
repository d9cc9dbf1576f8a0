//! How values and commands are shown in findings: shell-quoted so that what
//! a human approves reads as the shell would read it, with the home marker
//! as `~`, and cut so that one hostile step cannot flood an approval
//! request.

use crate::target::HOME;

/// Shell-quotes a value for display. The home marker (see `target`) shows
/// as `~`.
pub(crate) fn quote(v: &str) -> String {
    let (home, rest) = match v.strip_prefix(HOME) {
        Some(r) => ("~", r),
        None => ("", v),
    };
    let rest = rest.replace(HOME, "~");
    if rest.is_empty() {
        return if home.is_empty() {
            "''".into()
        } else {
            "~".into()
        };
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if rest.chars().all(safe) {
        return format!("{home}{rest}");
    }
    if rest.chars().any(char::is_control) {
        let mut out = format!("{home}$'");
        for c in rest.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32 & 0xff)),
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    format!("{home}'{}'", rest.replace('\'', "'\\''"))
}

/// Display text is cut so one hostile step cannot flood an approval request.
pub(crate) fn cut(s: &str) -> String {
    const MAX: usize = 120;
    let s = s.trim();
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX - 1).collect();
    out.push('…');
    out
}
