//! Legacy `parse_mode: Markdown`, as tdlib's `parse_markdown` reads it: `*bold*`,
//! `_italic_`, `` `code` ``, ```` ```pre``` ````, `[text](url)`; no nesting, and
//! `\` escapes only `_*`[` (everything else, `.` and `-` too, is plain text).

use serde_json::{Value, json};

use super::{Found, Kind, Parsed, checked_link, finish, is_space, utf16_units};

/// Parses `source`; the error is the part after "Bad Request: can't parse entities: ".
pub(crate) fn parse_v1(source: &str) -> Result<Parsed, String> {
    let b = source.as_bytes();
    let n = b.len();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let mut found = Vec::new();
    let mut utf16 = 0usize;
    let mut i = 0usize;
    while i < n {
        let c = b[i];
        if c == b'\\' && matches!(at(i + 1), b'_' | b'*' | b'`' | b'[') {
            out.push(b[i + 1]);
            utf16 += 1;
            i += 2;
            continue;
        }
        if !matches!(c, b'_' | b'*' | b'`' | b'[') {
            utf16 += utf16_units(c);
            out.push(c);
            i += 1;
            continue;
        }
        let begin = i;
        let end_char = if c == b'[' { b']' } else { c };
        i += 1;
        let mut pre = false;
        let mut language = String::new();
        if c == b'`' && at(i) == b'`' && at(i + 1) == b'`' {
            i += 2;
            pre = true;
            let mut end = i;
            while !is_space(at(end)) && at(end) != b'`' {
                end += 1;
            }
            if i != end && end < n && at(end) != b'`' {
                language = source[i..end].to_owned();
                i = end;
            }
            if matches!(at(i), b'\n' | b'\r') {
                if matches!(at(i + 1), b'\n' | b'\r') && at(i) != at(i + 1) {
                    i += 2;
                } else {
                    i += 1;
                }
            }
        }
        let offset = utf16;
        while i < n && (b[i] != end_char || (pre && !(at(i + 1) == b'`' && at(i + 2) == b'`'))) {
            utf16 += utf16_units(b[i]);
            out.push(b[i]);
            i += 1;
        }
        if i >= n {
            return Err(format!(
                "Can't find end of the entity starting at byte offset {begin}"
            ));
        }
        if utf16 != offset {
            let length = utf16 - offset;
            let entity = |kind, extra: Option<(&'static str, Value)>| Found {
                kind,
                offset,
                length,
                extra: extra.into_iter().collect(),
            };
            match c {
                b'_' => found.push(entity(Kind::Italic, None)),
                b'*' => found.push(entity(Kind::Bold, None)),
                b'[' => {
                    let url = if at(i + 1) != b'(' {
                        source[begin + 1..i].to_owned()
                    } else {
                        i += 2;
                        let start = i;
                        while i < n && b[i] != b')' {
                            i += 1;
                        }
                        String::from_utf8_lossy(&b[start..i]).into_owned()
                    };
                    if let Some(url) = checked_link(&url) {
                        found.push(entity(Kind::TextUrl, Some(("url", json!(url)))));
                    }
                }
                _ if pre && !language.is_empty() => found.push(entity(
                    Kind::PreCode,
                    Some(("language", json!(std::mem::take(&mut language)))),
                )),
                _ if pre => found.push(entity(Kind::Pre, None)),
                _ => found.push(entity(Kind::Code, None)),
            }
        }
        if pre {
            i += 2;
        }
        i += 1;
    }
    Ok(finish(out, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_markdown_escapes_only_its_four_marks() {
        let p = parse_v1("*bold* _it_ `c` 1.0 - [l](https://example.com)").unwrap();
        assert_eq!(p.text, "bold it c 1.0 - l");
        assert_eq!(p.entities.len(), 4);
        assert_eq!(p.entities[3]["type"], "text_link");
        assert_eq!(
            parse_v1("a *b").unwrap_err(),
            "Can't find end of the entity starting at byte offset 2"
        );
        assert_eq!(parse_v1("a\\_b").unwrap().text, "a_b");
    }
}
