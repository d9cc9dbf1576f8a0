//! What echo and printf print, for literal arguments: how `rm -rf
//! $(echo /)`, `printf '\x72\x6d -rf /' | sh` and `echo -e` payloads are
//! read. bash's builtins are the model (echo: -n/-e/-E; printf: %s %b %c %d
//! %%, flags, widths, precision, escapes, the format reused while arguments
//! remain). Anything else printf can do gives None: unknown output.

use crate::escape::{escape_len, escapes};

/// Longer output is not followed.
const MAX_TEXT: usize = 64 * 1024;

/// bash's echo: -n, -e, -E clusters, then the words joined by spaces.
pub(crate) fn echo(args: &[String]) -> String {
    let mut newline = true;
    let mut esc = false;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let flags = a
            .strip_prefix('-')
            .filter(|f| !f.is_empty() && f.chars().all(|c| "neE".contains(c)));
        let Some(flags) = flags else { break };
        for c in flags.chars() {
            match c {
                'n' => newline = false,
                'e' => esc = true,
                _ => esc = false,
            }
        }
        i += 1;
    }
    let text = args[i..].join(" ");
    let mut out = if esc {
        let (s, stop) = escapes(&text, true);
        if stop {
            return s;
        }
        s
    } else {
        text
    };
    if newline {
        out.push('\n');
    }
    out
}

/// printf FORMAT ARGS… for the conversions a payload would use (%s %b %c
/// %d %%, widths): None for anything else.
pub(crate) fn printf(args: &[String]) -> Option<String> {
    let fmt: Vec<char> = args.first()?.chars().collect();
    let mut rest = &args[1..];
    let mut out = String::new();
    loop {
        let mut consumed = false;
        let mut i = 0;
        while i < fmt.len() {
            let c = fmt[i];
            if c == '\\' {
                // One escape at a time, so that `\c` stops the output there.
                let n = escape_len(&fmt, i);
                let (one, stop) = escapes(&fmt[i..i + n].iter().collect::<String>(), false);
                out.push_str(&one);
                if stop {
                    return Some(out);
                }
                i += n;
                continue;
            }
            if c != '%' {
                out.push(c);
                i += 1;
                continue;
            }
            i += 1;
            let mut left = false;
            while let Some(&f) = fmt.get(i) {
                if !"-+ #0".contains(f) {
                    break;
                }
                left |= f == '-';
                i += 1;
            }
            let mut width = 0usize;
            while let Some(d) = fmt.get(i).and_then(|c| c.to_digit(10)) {
                width = width
                    .saturating_mul(10)
                    .saturating_add(d as usize)
                    .min(4096);
                i += 1;
            }
            let mut precision = None;
            if fmt.get(i) == Some(&'.') {
                i += 1;
                let mut p = 0usize;
                while let Some(d) = fmt.get(i).and_then(|c| c.to_digit(10)) {
                    p = p.saturating_mul(10).saturating_add(d as usize).min(4096);
                    i += 1;
                }
                precision = Some(p);
            }
            let conv = *fmt.get(i)?;
            i += 1;
            let mut arg = || {
                consumed = true;
                let a = rest.first().cloned().unwrap_or_default();
                rest = rest.get(1..).unwrap_or(&[]);
                a
            };
            let mut piece = match conv {
                '%' => "%".to_string(),
                's' => arg(),
                'b' => {
                    let (s, stop) = escapes(&arg(), true);
                    if stop {
                        out.push_str(&s);
                        return Some(out);
                    }
                    s
                }
                'c' => arg().chars().next().map(String::from).unwrap_or_default(),
                'd' | 'i' | 'u' => {
                    let a = arg();
                    let a = if a.is_empty() { "0".into() } else { a };
                    a.parse::<i64>().ok()?.to_string()
                }
                _ => return None,
            };
            if let Some(p) = precision.filter(|_| conv == 's' || conv == 'b') {
                piece = piece.chars().take(p).collect();
            }
            let pad = width.saturating_sub(piece.chars().count());
            if left {
                out.push_str(&piece);
                out.extend(std::iter::repeat_n(' ', pad));
            } else {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(&piece);
            }
            if out.len() > MAX_TEXT {
                return None;
            }
        }
        if rest.is_empty() || !consumed {
            return Some(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn echo_and_printf() {
        assert_eq!(echo(&s(&["/"])), "/\n");
        assert_eq!(echo(&s(&["-n", "a", "b"])), "a b");
        assert_eq!(echo(&s(&["-e", r"\x72m\t-rf"])), "rm\t-rf\n");
        assert_eq!(echo(&s(&["-e", r"a\cb"])), "a");
        assert_eq!(printf(&s(&["/"])).as_deref(), Some("/"));
        assert_eq!(printf(&s(&["%s\\n", "a", "b"])).as_deref(), Some("a\nb\n"));
        assert_eq!(
            printf(&s(&[r"\x72\155 -rf /"])).as_deref(),
            Some("rm -rf /")
        );
        assert_eq!(printf(&s(&["%b", r"\0162m"])).as_deref(), Some("rm"));
        assert_eq!(
            printf(&s(&["%3s|%-3s|", "a", "b"])).as_deref(),
            Some("  a|b  |")
        );
        assert_eq!(printf(&s(&["%f", "1"])), None);
    }
}
