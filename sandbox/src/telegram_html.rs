//! Telegram's `parse_mode: HTML`, parsed the way the Bot API server (tdlib's
//! `parse_html`) does: only the supported tags, the four named entities plus numeric
//! ones, and the same error sentences, so a client sees the refusal it would get.

use serde_json::{Value, json};

/// The visible text and its entities (offsets and lengths in UTF-16 code units).
#[derive(Debug, PartialEq)]
pub(crate) struct Parsed {
    pub text: String,
    pub entities: Vec<Value>,
}

const SUPPORTED: &[&str] = &[
    "a",
    "b",
    "strong",
    "i",
    "em",
    "s",
    "strike",
    "del",
    "u",
    "ins",
    "tg-spoiler",
    "tg-emoji",
    "span",
    "pre",
    "code",
    "blockquote",
];

struct Open {
    tag: String,
    start_utf16: usize,
    attribute: Option<String>,
}

/// Parses `html`; the error is the part after "Bad Request: can't parse entities: ".
pub(crate) fn parse(html: &str) -> Result<Parsed, String> {
    let bytes = html.as_bytes();
    let mut text = String::with_capacity(html.len());
    let mut utf16 = 0usize;
    let mut stack: Vec<Open> = Vec::new();
    let mut entities = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'&' => {
                if let Some((ch, used)) = decode_entity(&html[i..]) {
                    text.push(ch);
                    utf16 += ch.len_utf16();
                    i += used;
                } else {
                    // Unknown entities stay literal, as on Telegram.
                    text.push('&');
                    utf16 += 1;
                    i += 1;
                }
            }
            b'<' => {
                let begin = i;
                if bytes.get(i + 1) == Some(&b'/') {
                    let Some(rel) = html[i..].find('>') else {
                        return Err(format!("Unclosed end tag at byte offset {begin}"));
                    };
                    let name = html[i + 2..i + rel].trim_end().to_ascii_lowercase();
                    let Some(open) = stack.pop() else {
                        return Err(format!("Unexpected end tag at byte offset {begin}"));
                    };
                    if open.tag != name {
                        return Err(format!(
                            "Unmatched end tag at byte offset {begin}, expected \"</{}>\", found \"</{name}>\"",
                            open.tag
                        ));
                    }
                    if utf16 > open.start_utf16 {
                        entities.push(entity(&open, utf16 - open.start_utf16));
                    }
                    i += rel + 1;
                } else {
                    let mut j = i + 1;
                    while j < bytes.len() && !bytes[j].is_ascii_whitespace() && bytes[j] != b'>' {
                        j += 1;
                    }
                    if j >= bytes.len() {
                        return Err(format!("Unclosed start tag at byte offset {begin}"));
                    }
                    let tag = html[i + 1..j].to_ascii_lowercase();
                    if !SUPPORTED.contains(&tag.as_str()) {
                        return Err(format!(
                            "Unsupported start tag \"{tag}\" at byte offset {begin}"
                        ));
                    }
                    let (attributes, end) = parse_attributes(html, j, begin, &tag)?;
                    let attribute = match tag.as_str() {
                        "a" => attributes
                            .iter()
                            .find(|(k, _)| k == "href")
                            .map(|(_, v)| v.clone()),
                        "code" => attributes
                            .iter()
                            .find(|(k, v)| k == "class" && v.starts_with("language-"))
                            .map(|(_, v)| v["language-".len()..].to_owned()),
                        "span" => {
                            if !attributes
                                .iter()
                                .any(|(k, v)| k == "class" && v == "tg-spoiler")
                            {
                                return Err(format!(
                                    "Tag \"span\" must have class \"tg-spoiler\" at byte offset {begin}"
                                ));
                            }
                            None
                        }
                        "tg-emoji" => {
                            let Some((_, id)) = attributes.iter().find(|(k, _)| k == "emoji-id")
                            else {
                                return Err(format!(
                                    "Tag \"tg-emoji\" must have attribute \"emoji-id\" at byte offset {begin}"
                                ));
                            };
                            Some(id.clone())
                        }
                        "blockquote" => attributes
                            .iter()
                            .any(|(k, _)| k == "expandable")
                            .then(|| "expandable".to_owned()),
                        _ => None,
                    };
                    stack.push(Open {
                        tag,
                        start_utf16: utf16,
                        attribute,
                    });
                    i = end;
                }
            }
            _ => {
                let ch = html[i..].chars().next().expect("i is on a char boundary");
                text.push(ch);
                utf16 += ch.len_utf16();
                i += ch.len_utf8();
            }
        }
    }
    if let Some(open) = stack.pop() {
        return Err(format!(
            "Can't find end tag corresponding to start tag \"{}\"",
            open.tag
        ));
    }
    entities.sort_by_key(|e| e["offset"].as_u64());
    Ok(Parsed { text, entities })
}

/// Attributes from byte `pos` (just after the tag name) to the closing `>`;
/// returns them and the byte after `>`.
fn parse_attributes(
    html: &str,
    mut pos: usize,
    begin: usize,
    tag: &str,
) -> Result<(Vec<(String, String)>, usize), String> {
    let bytes = html.as_bytes();
    let mut out = Vec::new();
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        match bytes.get(pos) {
            None => return Err(format!("Unclosed start tag at byte offset {begin}")),
            Some(b'>') => return Ok((out, pos + 1)),
            Some(_) => {}
        }
        let name_start = pos;
        while pos < bytes.len()
            && (bytes[pos].is_ascii_alphanumeric() || bytes[pos] == b'-' || bytes[pos] == b'_')
        {
            pos += 1;
        }
        if pos == name_start {
            return Err(format!(
                "Empty attribute name in the tag \"{tag}\" at byte offset {begin}"
            ));
        }
        let name = html[name_start..pos].to_ascii_lowercase();
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if bytes.get(pos) != Some(&b'=') {
            if name == "expandable" {
                out.push((name, String::new()));
                continue;
            }
            return Err(format!(
                "Expected equal sign in declaration of an attribute of the tag \"{tag}\" at byte offset {begin}"
            ));
        }
        pos += 1;
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let value = match bytes.get(pos) {
            None => return Err(format!("Unclosed start tag at byte offset {begin}")),
            Some(&q @ (b'"' | b'\'')) => {
                let Some(rel) = html[pos + 1..].find(q as char) else {
                    return Err(format!("Unclosed start tag at byte offset {begin}"));
                };
                let raw = &html[pos + 1..pos + 1 + rel];
                pos += rel + 2;
                decode_all(raw)
            }
            Some(_) => {
                let start = pos;
                while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() && bytes[pos] != b'>' {
                    pos += 1;
                }
                decode_all(&html[start..pos])
            }
        };
        out.push((name, value));
    }
}

fn decode_all(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s.as_bytes()[i] == b'&'
            && let Some((ch, used)) = decode_entity(&s[i..])
        {
            out.push(ch);
            i += used;
            continue;
        }
        let ch = s[i..].chars().next().expect("char boundary");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// `s` starts with `&`: the character and the bytes used, if it is an entity Telegram knows.
fn decode_entity(s: &str) -> Option<(char, usize)> {
    let end = s[..s.len().min(12)].find(';')?;
    let body = &s[1..end];
    let ch = match body {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        _ => {
            let code =
                if let Some(hex) = body.strip_prefix("#x").or_else(|| body.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok()?
                } else {
                    body.strip_prefix('#')?.parse::<u32>().ok()?
                };
            char::from_u32(code)?
        }
    };
    Some((ch, end + 1))
}

fn entity(open: &Open, length: usize) -> Value {
    let offset = open.start_utf16;
    let kind = match open.tag.as_str() {
        "b" | "strong" => "bold",
        "i" | "em" => "italic",
        "u" | "ins" => "underline",
        "s" | "strike" | "del" => "strikethrough",
        "tg-spoiler" | "span" => "spoiler",
        "code" => "code",
        "pre" => "pre",
        "blockquote" if open.attribute.is_some() => "expandable_blockquote",
        "blockquote" => "blockquote",
        "tg-emoji" => "custom_emoji",
        "a" => "text_link",
        _ => "unknown",
    };
    let mut e = json!({"type": kind, "offset": offset, "length": length});
    match (open.tag.as_str(), &open.attribute) {
        ("a", Some(url)) => e["url"] = json!(url),
        ("code", Some(lang)) => e["language"] = json!(lang),
        ("tg-emoji", Some(id)) => e["custom_emoji_id"] = json!(id),
        _ => {}
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_supported_tags_and_entities() {
        let p = parse(
            "<b>Deploy</b> web-1 &lt;now&gt; &amp; <a href=\"https://x.y/?a=1&amp;b=2\">link</a>",
        )
        .unwrap();
        assert_eq!(p.text, "Deploy web-1 <now> & link");
        assert_eq!(p.entities[0], json!({"type":"bold","offset":0,"length":6}));
        assert_eq!(p.entities[1]["url"], "https://x.y/?a=1&b=2");
    }

    #[test]
    fn refuses_what_telegram_refuses() {
        assert_eq!(
            parse("a < b").unwrap_err(),
            "Unsupported start tag \"\" at byte offset 2"
        );
        assert_eq!(
            parse("<br>").unwrap_err(),
            "Unsupported start tag \"br\" at byte offset 0"
        );
        assert_eq!(
            parse("<b>x").unwrap_err(),
            "Can't find end tag corresponding to start tag \"b\""
        );
        assert!(
            parse("<b><i>x</b></i>")
                .unwrap_err()
                .starts_with("Unmatched end tag at byte offset 7")
        );
        assert_eq!(
            parse("x</b>").unwrap_err(),
            "Unexpected end tag at byte offset 1"
        );
        assert!(parse("<span>x</span>").is_err());
    }

    #[test]
    fn unknown_named_entities_stay_literal_and_numeric_ones_decode() {
        assert_eq!(parse("a&nbsp;b &#65;&#x42;").unwrap().text, "a&nbsp;b AB");
    }

    #[test]
    fn offsets_count_utf16_units() {
        let p = parse("😀<b>x</b>").unwrap();
        assert_eq!(p.entities[0]["offset"], 2);
    }
}
