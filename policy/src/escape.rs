//! Backslash escapes in the C style, decoded: the `$'…'` quote. The word
//! reader takes its text; the skipper only needs where it ends, which is
//! why this sits below both.

/// `$'…'` from just after the opening quote: the decoded text and the index
/// after the closing quote.
pub(crate) fn ansi_c(s: &[char], mut j: usize) -> Result<(String, usize), String> {
    let mut out = String::new();
    let digits = |j: usize, max: usize, radix: u32| -> (u32, usize) {
        let mut v = 0u32;
        let mut k = 0;
        while k < max {
            match s.get(j + k).and_then(|c| c.to_digit(radix)) {
                Some(d) => v = v.saturating_mul(radix).saturating_add(d),
                None => break,
            }
            k += 1;
        }
        (v, k)
    };
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
                let simple = match e {
                    'n' => Some('\n'),
                    't' => Some('\t'),
                    'r' => Some('\r'),
                    'a' => Some('\x07'),
                    'b' => Some('\x08'),
                    'e' | 'E' => Some('\x1b'),
                    'f' => Some('\x0c'),
                    'v' => Some('\x0b'),
                    '\\' | '\'' | '"' | '?' => Some(e),
                    _ => None,
                };
                if let Some(ch) = simple {
                    out.push(ch);
                    continue;
                }
                let (v, used, ok) = match e {
                    '0'..='7' => {
                        let (v, k) = digits(j - 1, 3, 8);
                        (v, k.saturating_sub(1), true)
                    }
                    'x' => {
                        let (v, k) = digits(j, 2, 16);
                        (v, k, k > 0)
                    }
                    'u' => {
                        let (v, k) = digits(j, 4, 16);
                        (v, k, k > 0)
                    }
                    'U' => {
                        let (v, k) = digits(j, 8, 16);
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
