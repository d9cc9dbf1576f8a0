//! Backslash escapes in the C style, in the dialects a shell decodes: the
//! `$'…'` quote (the word reader takes its text; the skipper only needs
//! where it ends), and for `echo` the escapes of echo -e, printf's %b and a
//! printf format. One digit reader and one table of letters serve all of
//! them, so the dialects differ only where bash's do.

/// Up to `max` digits in `radix` from `s[at]`: the value (saturating, so
/// a long run cannot overflow) and how many digits there were.
fn digits(s: &[char], at: usize, max: usize, radix: u32) -> (u32, usize) {
    let mut v = 0u32;
    let mut k = 0;
    while k < max {
        match s.get(at + k).and_then(|c| c.to_digit(radix)) {
            Some(d) => v = v.saturating_mul(radix).saturating_add(d),
            None => break,
        }
        k += 1;
    }
    (v, k)
}

/// The one-letter escapes every dialect reads alike (`\e` is ESC).
fn letter(e: char) -> Option<char> {
    match e {
        'n' => Some('\n'),
        't' => Some('\t'),
        'r' => Some('\r'),
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        'e' | 'E' => Some('\x1b'),
        'f' => Some('\x0c'),
        'v' => Some('\x0b'),
        _ => None,
    }
}

/// `$'…'` from just after the opening quote: the decoded text and the index
/// after the closing quote.
pub(crate) fn ansi_c(s: &[char], mut j: usize) -> Result<(String, usize), String> {
    let mut out = String::new();
    loop {
        let Some(&c) = s.get(j) else {
            return Err("unterminated $'…' quote".into());
        };
        match c {
            '\'' => break,
            '\\' => {
                let Some(&e) = s.get(j + 1) else {
                    return Err("unterminated $'…' quote".into());
                };
                j += 2;
                let simple = letter(e).or(matches!(e, '\\' | '\'' | '"' | '?').then_some(e));
                if let Some(ch) = simple {
                    out.push(ch);
                    continue;
                }
                let (v, used, ok) = match e {
                    '0'..='7' => {
                        let (v, k) = digits(s, j - 1, 3, 8);
                        (v, k.saturating_sub(1), true)
                    }
                    'x' => {
                        let (v, k) = digits(s, j, 2, 16);
                        (v, k, k > 0)
                    }
                    'u' => {
                        let (v, k) = digits(s, j, 4, 16);
                        (v, k, k > 0)
                    }
                    'U' => {
                        let (v, k) = digits(s, j, 8, 16);
                        (v, k, k > 0)
                    }
                    'c' => match s.get(j) {
                        Some(&n) => (n as u32 & 0x1f, 1, true),
                        None => (0, 0, false),
                    },
                    _ => (0, 0, false),
                };
                if ok {
                    j += used;
                    if let Some(ch) = char::from_u32(v) {
                        out.push(ch);
                    }
                } else {
                    out.push('\\');
                    out.push(e);
                }
            }
            _ => {
                out.push(c);
                j += 1;
            }
        }
    }
    // A NUL ends a C string: the shell cannot pass it, and the home marker
    // must not be forgeable.
    out.retain(|c| c != '\0');
    Ok((out, j + 1))
}

/// Backslash escapes as echo -e / printf %b (`echo_style`: octal is `\0NNN`)
/// or a printf format (`\NNN`). The bool: `\c` asked to stop all output.
pub(crate) fn escapes(s: &str, echo_style: bool) -> (String, bool) {
    let cs: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < cs.len() {
        if cs[i] != '\\' || i + 1 >= cs.len() {
            out.push(cs[i]);
            i += 1;
            continue;
        }
        let e = cs[i + 1];
        i += 2;
        let simple = letter(e).or(match e {
            '\\' => Some('\\'),
            '"' | '\'' if !echo_style => Some(e),
            _ => None,
        });
        if let Some(c) = simple {
            out.push(c);
            continue;
        }
        let (v, used) = match e {
            'c' => return (out, true),
            '0' if echo_style => digits(&cs, i, 3, 8),
            '0'..='7' if !echo_style => {
                let (v, k) = digits(&cs, i - 1, 3, 8);
                (v, k - 1)
            }
            'x' => digits(&cs, i, 2, 16),
            'u' => digits(&cs, i, 4, 16),
            _ => {
                out.push('\\');
                out.push(e);
                continue;
            }
        };
        if used == 0 && matches!(e, 'x' | 'u') {
            out.push('\\');
            out.push(e);
            continue;
        }
        i += used;
        if let Some(c) = char::from_u32(v).filter(|c| *c != '\0') {
            out.push(c);
        }
    }
    (out, false)
}

/// Length of the escape sequence starting at `fmt[i]` (a backslash) in a
/// printf format, as `escapes` reads it there: printf decodes one escape at
/// a time, so that `\c` stops the output where it stands.
pub(crate) fn escape_len(fmt: &[char], i: usize) -> usize {
    let max = fmt.len() - i;
    let n = match fmt.get(i + 1) {
        None => 1,
        Some('0'..='7') => {
            2 + (i + 2..fmt.len())
                .take(2)
                .take_while(|&k| fmt[k].is_digit(8))
                .count()
        }
        Some('x') => {
            2 + (i + 2..fmt.len())
                .take(2)
                .take_while(|&k| fmt[k].is_ascii_hexdigit())
                .count()
        }
        Some('u') => {
            2 + (i + 2..fmt.len())
                .take(4)
                .take_while(|&k| fmt[k].is_ascii_hexdigit())
                .count()
        }
        Some(_) => 2,
    };
    n.min(max)
}
