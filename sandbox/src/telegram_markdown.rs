//! Telegram's `parse_mode: MarkdownV2` and legacy `Markdown`, parsed the way the
//! Bot API server does (tdlib's `parse_markdown_v2` and `parse_markdown`): the same
//! reserved characters, nesting rules, byte offsets in the error sentences and
//! UTF-16 entity offsets, so that a client sees the refusal or the entities it
//! would get from Telegram. Legacy Markdown is in `telegram_markdown/legacy.rs`,
//! the links' rules in `telegram_markdown/links.rs`; the HTML mode lives in
//! `telegram_html.rs`.

use serde_json::{Value, json};

use super::telegram_html::Parsed;

mod legacy;
mod links;

pub(crate) use legacy::parse_v1;
use links::{TgLink, checked_link, tg_link, url_until_paren};

/// MarkdownV2's reserved characters: outside an entity each must be escaped with
/// `\` (inside `code` and `pre` only the backtick is).
const RESERVED: &[u8] = b"_*[]()~`>#+-=|{}.!\n";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Bold,
    Italic,
    Underline,
    Strikethrough,
    Spoiler,
    Code,
    Pre,
    PreCode,
    TextUrl,
    CustomEmoji,
    BlockQuote,
    ExpandableBlockQuote,
    /// `![text](tg://time?unix=…)`.
    DateTime,
}

impl Kind {
    /// The name tdlib prints in "Can't find end of … entity".
    fn name(self) -> &'static str {
        match self {
            Kind::Bold => "Bold",
            Kind::Italic => "Italic",
            Kind::Underline => "Underline",
            Kind::Strikethrough => "Strikethrough",
            Kind::Spoiler => "Spoiler",
            Kind::Code => "Code",
            Kind::Pre => "Pre",
            Kind::PreCode => "PreCode",
            Kind::TextUrl => "TextUrl",
            Kind::CustomEmoji => "CustomEmoji",
            Kind::BlockQuote => "BlockQuote",
            Kind::ExpandableBlockQuote => "ExpandableBlockQuote",
            Kind::DateTime => "Date",
        }
    }

    /// The Bot API's `MessageEntity.type`.
    fn api_type(self) -> &'static str {
        match self {
            Kind::Bold => "bold",
            Kind::Italic => "italic",
            Kind::Underline => "underline",
            Kind::Strikethrough => "strikethrough",
            Kind::Spoiler => "spoiler",
            Kind::Code => "code",
            Kind::Pre | Kind::PreCode => "pre",
            Kind::TextUrl => "text_link",
            Kind::CustomEmoji => "custom_emoji",
            Kind::BlockQuote => "blockquote",
            Kind::ExpandableBlockQuote => "expandable_blockquote",
            Kind::DateTime => "date_time",
        }
    }

    /// tdlib orders entities that start and end together by this (outermost first).
    fn priority(self) -> u8 {
        match self {
            Kind::BlockQuote | Kind::ExpandableBlockQuote => 0,
            Kind::PreCode => 10,
            Kind::Pre => 11,
            Kind::Code => 20,
            Kind::TextUrl => 49,
            Kind::Bold => 90,
            Kind::Italic => 91,
            Kind::Underline => 92,
            Kind::Strikethrough => 93,
            Kind::Spoiler => 94,
            Kind::CustomEmoji | Kind::DateTime => 99,
        }
    }
}

/// An entity opened and not yet closed.
struct Open {
    kind: Kind,
    /// The language of a `pre` block.
    language: String,
    /// Where it starts in the visible text, in UTF-16 units.
    utf16: usize,
    /// The byte of its opening mark in the source (the errors name it).
    byte: usize,
    /// Where its text starts in the output bytes (a `[url]` without `(…)` is its own URL).
    out: usize,
}

/// An entity found, with its extra fields (`url`, `language`, …).
struct Found {
    kind: Kind,
    offset: usize,
    length: usize,
    extra: Vec<(&'static str, Value)>,
}

fn reserved_error(c: u8) -> String {
    format!(
        "Character '{}' is reserved and must be escaped with the preceding '\\'",
        c as char
    )
}

fn unclosed(open: &Open) -> String {
    format!(
        "Can't find end of {} entity at byte offset {}",
        open.kind.name(),
        open.byte
    )
}

/// The UTF-16 units a byte adds when it starts a character (4-byte ones are pairs).
fn utf16_units(c: u8) -> usize {
    match c {
        0x80..=0xBF => 0,
        0xF0..=0xFF => 2,
        _ => 1,
    }
}

/// tdlib's `is_space` (the NUL past the end of its strings counts as one).
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0 | 0x0B)
}

/// Parses `source` as MarkdownV2; the error is the part after "Bad Request: can't
/// parse entities: ".
pub(crate) fn parse_v2(source: &str) -> Result<Parsed, String> {
    let b = source.as_bytes();
    let n = b.len();
    // tdlib reads past the end as NUL; so do we.
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let mut utf16 = 0usize;
    let mut open: Vec<Open> = Vec::new();
    let mut found: Vec<Found> = Vec::new();
    let mut have_quote = false;
    // A `>` starts a quote only at the start of a line.
    let mut can_quote = true;
    let mut i = 0usize;
    while i < n {
        'step: {
            let c = b[i];
            if c == b'\\' && (1..=126).contains(&at(i + 1)) {
                i += 1;
                utf16 += 1;
                out.push(b[i]);
                if b[i] != b'\r' {
                    can_quote = b[i] == b'\n';
                }
                break 'step;
            }
            let in_code = matches!(
                open.last().map(|o| o.kind),
                Some(Kind::Code | Kind::Pre | Kind::PreCode)
            );
            let reserved: &[u8] = if in_code { b"`" } else { RESERVED };
            if !reserved.contains(&c) {
                let units = utf16_units(c);
                if units > 0 {
                    utf16 += units;
                    if c != b'\r' {
                        can_quote = false;
                    }
                }
                out.push(c);
                break 'step;
            }
            let is_end = match open.last() {
                None => false,
                // A line that does not go on with `>` ends the quote (and whatever is in it).
                Some(_) if have_quote && c == b'\n' && at(i + 1) != b'>' => true,
                Some(top) => match top.kind {
                    Kind::Bold => c == b'*',
                    Kind::Italic => c == b'_' && at(i + 1) != b'_',
                    Kind::Underline => c == b'_' && at(i + 1) == b'_',
                    Kind::Code => c == b'`',
                    Kind::Pre | Kind::PreCode => {
                        c == b'`' && at(i + 1) == b'`' && at(i + 2) == b'`'
                    }
                    Kind::TextUrl | Kind::CustomEmoji => c == b']',
                    Kind::Strikethrough => c == b'~',
                    Kind::Spoiler => c == b'|' && at(i + 1) == b'|',
                    Kind::BlockQuote | Kind::ExpandableBlockQuote | Kind::DateTime => false,
                },
            };
            if !is_end {
                let byte = i;
                let mut language = String::new();
                let kind = match c {
                    b'_' if at(i + 1) == b'_' => {
                        i += 1;
                        Kind::Underline
                    }
                    b'_' => Kind::Italic,
                    b'*' => Kind::Bold,
                    b'~' => Kind::Strikethrough,
                    b'|' if at(i + 1) == b'|' => {
                        i += 1;
                        Kind::Spoiler
                    }
                    b'[' => Kind::TextUrl,
                    b'`' if at(i + 1) == b'`' && at(i + 2) == b'`' => {
                        i += 3;
                        let mut kind = Kind::Pre;
                        let mut end = i;
                        while !is_space(at(end)) && at(end) != b'`' {
                            end += 1;
                        }
                        if i != end && end < n && at(end) != b'`' {
                            kind = Kind::PreCode;
                            language = source[i..end].to_owned();
                            i = end;
                        }
                        // One line break after the opening fence is not part of the text.
                        if matches!(at(i), b'\n' | b'\r') {
                            if matches!(at(i + 1), b'\n' | b'\r') && at(i) != at(i + 1) {
                                i += 2;
                            } else {
                                i += 1;
                            }
                        }
                        // The loop's step moves on by one.
                        i -= 1;
                        kind
                    }
                    b'`' => Kind::Code,
                    b'!' if at(i + 1) == b'[' => {
                        i += 1;
                        Kind::CustomEmoji
                    }
                    b'\n' => {
                        utf16 += 1;
                        out.push(b'\n');
                        can_quote = true;
                        break 'step;
                    }
                    b'>' if can_quote => {
                        if have_quote {
                            // The quote goes on on this line.
                            break 'step;
                        }
                        have_quote = true;
                        Kind::BlockQuote
                    }
                    _ => return Err(reserved_error(c)),
                };
                open.push(Open {
                    kind,
                    language,
                    utf16,
                    byte,
                    out: out.len(),
                });
                break 'step;
            }
            // The end of the innermost entity.
            let mut kind = open.last().expect("is_end needs one").kind;
            if c == b'\n' && kind != Kind::BlockQuote {
                // Only `||` just before the line break may end a quote here: it makes
                // the quote expandable.
                let top = open.last().expect("checked");
                let spoiler_mark = kind == Kind::Spoiler
                    && (top.byte + 2 == i || (top.byte + 3 == i && out.last() == Some(&b'\r')));
                if !spoiler_mark {
                    return Err(unclosed(top));
                }
                open.pop();
                let outer = open.last().expect("a quote is open");
                if outer.kind != Kind::BlockQuote {
                    return Err(unclosed(outer));
                }
                kind = Kind::ExpandableBlockQuote;
            }
            let top = open.last_mut().expect("checked");
            let mut skip = utf16 == top.utf16;
            let mut extra = Vec::new();
            match kind {
                Kind::Bold | Kind::Italic | Kind::Code | Kind::Strikethrough => {}
                Kind::Underline | Kind::Spoiler => i += 1,
                Kind::Pre | Kind::PreCode => {
                    i += 2;
                    if kind == Kind::PreCode {
                        extra.push(("language", json!(std::mem::take(&mut top.language))));
                    }
                }
                Kind::TextUrl => {
                    let url = if at(i + 1) != b'(' {
                        // `[text]` alone: the text is the URL.
                        String::from_utf8_lossy(&out[top.out..]).into_owned()
                    } else {
                        i += 2;
                        let (url, end) = url_until_paren(b, i)?;
                        i = end;
                        url
                    };
                    match checked_link(&url) {
                        Some(url) => extra.push(("url", json!(url))),
                        // An unusable URL leaves plain text, not an error.
                        None => skip = true,
                    }
                }
                Kind::CustomEmoji => {
                    if at(i + 1) != b'(' {
                        return Err("The entity must contain a tg://emoji or tg://time URL".into());
                    }
                    i += 2;
                    let (url, end) = url_until_paren(b, i)?;
                    i = end;
                    match tg_link(&url) {
                        Some(TgLink::Emoji(id)) => {
                            extra.push(("custom_emoji_id", json!(id.to_string())));
                        }
                        Some(TgLink::Time(unix, format)) => {
                            kind = Kind::DateTime;
                            extra.push(("unix_time", json!(unix)));
                            if !format.is_empty() {
                                extra.push(("date_time_format", json!(format)));
                            }
                        }
                        None => return Err("Invalid tg://emoji or tg://time URL specified".into()),
                    }
                }
                Kind::DateTime => unreachable!("never opened"),
                Kind::BlockQuote | Kind::ExpandableBlockQuote => {
                    have_quote = false;
                    // The line break that ends a quote belongs to it.
                    out.push(b[i]);
                    can_quote = true;
                    utf16 += 1;
                    skip = false;
                }
            }
            let top = open.pop().expect("checked");
            if !skip {
                found.push(Found {
                    kind,
                    offset: top.utf16,
                    length: utf16 - top.utf16,
                    extra,
                });
            }
        }
        i += 1;
    }
    if have_quote {
        let mut kind = Kind::BlockQuote;
        if open
            .last()
            .is_some_and(|o| o.kind == Kind::Spoiler && o.byte + 2 == n)
        {
            open.pop();
            kind = Kind::ExpandableBlockQuote;
        }
        if open.last().is_some_and(|o| o.kind == Kind::BlockQuote) {
            let top = open.pop().expect("checked");
            if utf16 != top.utf16 {
                found.push(Found {
                    kind,
                    offset: top.utf16,
                    length: utf16 - top.utf16,
                    extra: Vec::new(),
                });
            }
        }
    }
    if let Some(top) = open.last() {
        return Err(unclosed(top));
    }
    Ok(finish(out, found))
}

fn finish(out: Vec<u8>, mut found: Vec<Found>) -> Parsed {
    found.sort_by_key(|f| (f.offset, std::cmp::Reverse(f.length), f.kind.priority()));
    let entities = found
        .into_iter()
        .map(|f| {
            let mut e = json!({"type": f.kind.api_type(), "offset": f.offset, "length": f.length});
            for (key, value) in f.extra {
                e[key] = value;
            }
            e
        })
        .collect();
    // Only ASCII marks were removed from valid UTF-8: still valid.
    let text = String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Parsed { text, entities }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text and (type, offset, length) of each entity.
    type Outline = (String, Vec<(String, u64, u64)>);

    fn v2(s: &str) -> Result<Outline, String> {
        parse_v2(s).map(|p| {
            let e = p
                .entities
                .iter()
                .map(|e| {
                    (
                        e["type"].as_str().unwrap().to_owned(),
                        e["offset"].as_u64().unwrap(),
                        e["length"].as_u64().unwrap(),
                    )
                })
                .collect();
            (p.text, e)
        })
    }

    fn ent(kind: &str, offset: u64, length: u64) -> (String, u64, u64) {
        (kind.to_owned(), offset, length)
    }

    #[test]
    fn unescaped_reserved_characters_are_refused() {
        for c in "_*[]()~`>#+-=|{}.!".chars() {
            let s = format!("a {c}");
            let err = v2(&s).unwrap_err();
            // Entity openers fail later, as unclosed entities; the rest at once.
            if "_*[~`".contains(c) {
                assert!(err.starts_with("Can't find end of"), "{s}: {err}");
            } else {
                assert_eq!(err, reserved_error(c as u8), "{s}");
            }
        }
        assert_eq!(
            v2("Version 1.0").unwrap_err(),
            "Character '.' is reserved and must be escaped with the preceding '\\'"
        );
        assert_eq!(v2("Version 1\\.0").unwrap().0, "Version 1.0");
    }

    #[test]
    fn entities_nest_and_count_utf16_units() {
        assert_eq!(
            v2("*bold _italic_* __u__ ~s~ ||sp|| `c.d` [l](https://example.com)").unwrap(),
            (
                "bold italic u s sp c.d l".to_owned(),
                vec![
                    ent("bold", 0, 11),
                    ent("italic", 5, 6),
                    ent("underline", 12, 1),
                    ent("strikethrough", 14, 1),
                    ent("spoiler", 16, 2),
                    ent("code", 19, 3),
                    ent("text_link", 23, 1),
                ]
            )
        );
        let p = parse_v2("🏟 🏟_abac \\* asd _").unwrap();
        assert_eq!(p.text, "🏟 🏟abac * asd ");
        assert_eq!(p.entities[0]["offset"], 5);
        assert_eq!(p.entities[0]["length"], 11);
        let p = parse_v2("[x](https://example.com/a\\)b)").unwrap();
        assert_eq!(p.entities[0]["url"], "https://example.com/a)b");
    }

    #[test]
    fn unclosed_entities_name_their_byte_offset() {
        assert_eq!(
            v2("🏟 🏟_abacaba").unwrap_err(),
            "Can't find end of Italic entity at byte offset 9"
        );
        assert_eq!(
            v2("🏟 🏟```a ").unwrap_err(),
            "Can't find end of PreCode entity at byte offset 9"
        );
        assert_eq!(
            v2("[telegram\\.org](asd").unwrap_err(),
            "Can't find end of a URL at byte offset 16"
        );
        assert_eq!(
            v2(">*b\n>ld \n>bo\nld*\nasd\ndef").unwrap_err(),
            "Can't find end of Bold entity at byte offset 1"
        );
    }

    #[test]
    fn pre_blocks_take_a_language_and_only_backticks_are_reserved_inside() {
        let p = parse_v2("```rust\nlet x = a.b();\n```").unwrap();
        assert_eq!(p.text, "let x = a.b();\n");
        assert_eq!(
            p.entities,
            vec![json!({"type": "pre", "offset": 0, "length": 15, "language": "rust"})]
        );
    }

    #[test]
    fn quotes_start_at_line_starts_and_end_at_a_line_without_marker() {
        assert_eq!(
            v2("abc\n> \n> \n>\ndef").unwrap(),
            ("abc\n \n \n\ndef".to_owned(), vec![ent("blockquote", 4, 5)])
        );
        assert_eq!(
            v2(">*abcd*").unwrap(),
            (
                "abcd".to_owned(),
                vec![ent("blockquote", 0, 4), ent("bold", 0, 4)]
            )
        );
        assert_eq!(
            v2("**>quote\n>more||").unwrap().1,
            vec![ent("expandable_blockquote", 0, 10)]
        );
        assert_eq!(v2("a > b").unwrap_err(), reserved_error(b'>'));
    }

    #[test]
    fn unusable_links_leave_plain_text() {
        assert_eq!(v2("[ ](as)").unwrap().1, vec![]);
        let p = parse_v2("[telegram\\.org]").unwrap();
        assert_eq!(p.entities[0]["url"], "http://telegram.org/");
        let p = parse_v2("![👍](tg://emoji?id=25)").unwrap();
        assert_eq!(p.entities[0]["custom_emoji_id"], "25");
        let p = parse_v2("![👍](TG://TiME/?test=1&format=R&unix=25#unix=32)a").unwrap();
        assert_eq!(
            p.entities[0],
            json!({"type": "date_time", "offset": 0, "length": 2, "unix_time": 25, "date_time_format": "R"})
        );
        assert_eq!(
            v2("![👍](tg://emoji?id=025)").unwrap_err(),
            "Invalid tg://emoji or tg://time URL specified"
        );
    }
}
