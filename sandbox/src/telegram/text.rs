//! What the Telegram stand-in makes of a message's text and of a chat action, as
//! the Bot API server (tdlib's `telegram-bot-api`, `Client::get_formatted_text` and
//! `Client::get_chat_action`) does: the `parse_mode`s it knows (HTML, MarkdownV2,
//! legacy Markdown, `none`; any case), its error sentences, and the limits on the
//! text before and after parsing.

use serde_json::Value;

use super::{Params, Reply, bad_request};
use crate::{telegram_html, telegram_markdown};

/// Characters of visible text (after entity parsing). Telegram counts characters
/// here, not UTF-16 units: 4096 emoji are accepted, though entity offsets in them
/// count two units each.
const TEXT_MAX: usize = 4096;
/// The server refuses a text over 32 KiB before parsing it.
const SOURCE_MAX_BYTES: usize = 1 << 15;

/// Text and entities as Telegram will show them (with the source and the
/// `parse_mode` as given), or the refusal.
pub(super) fn render_text(
    p: &Params,
) -> Result<(String, String, Option<String>, Vec<Value>), Reply> {
    let source = p
        .str("text")?
        .ok_or_else(|| bad_request("message text is empty"))?;
    if source.len() > SOURCE_MAX_BYTES {
        return Err(bad_request("text is too long"));
    }
    let parse_mode = p.str("parse_mode")?.filter(|m| !m.is_empty());
    let given = match p.json("entities")? {
        None => Vec::new(),
        Some(Value::Array(given)) => given,
        Some(_) => return Err(bad_request("field \"entities\" must be of type Array")),
    };
    let mode = parse_mode.as_deref().map(str::to_ascii_lowercase);
    let parsed = match mode.as_deref() {
        // An empty text is refused below, whatever the mode.
        _ if source.is_empty() => None,
        None | Some("none") => None,
        Some("html") => Some(telegram_html::parse(&source)),
        Some("markdownv2") => Some(telegram_markdown::parse_v2(&source)),
        Some("markdown") => Some(telegram_markdown::parse_v1(&source)),
        Some(_) => return Err(bad_request("unsupported parse_mode")),
    };
    let (text, entities) = match parsed {
        // With a parse mode, `entities` is ignored: the markup is the entities.
        Some(result) => {
            let parsed = result.map_err(|e| bad_request(format!("can't parse entities: {e}")))?;
            (parsed.text, parsed.entities)
        }
        None => (source.clone(), given),
    };
    if text.trim().is_empty() {
        return Err(bad_request("message text is empty"));
    }
    if text.chars().count() > TEXT_MAX {
        return Err(bad_request("message is too long"));
    }
    Ok((text, source, parse_mode, entities))
}

/// The actions `sendChatAction` takes (any case): the documented ones, the older
/// names the server still maps onto them, and `cancel`.
const CHAT_ACTIONS: &[&str] = &[
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
    // Older names, still accepted.
    "record_audio",
    "upload_audio",
    "pick_up_location",
    "cancel",
];

/// Checks `action`; `Ok(true)` when it shows something ("typing…"), `Ok(false)`
/// for `cancel`.
pub(super) fn chat_action(p: &Params) -> Result<bool, Reply> {
    let action = p.str("action")?.unwrap_or_default().to_ascii_lowercase();
    if !CHAT_ACTIONS.contains(&action.as_str()) {
        return Err(bad_request("wrong parameter action in request"));
    }
    Ok(action != "cancel")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(v: Value) -> Params {
        Params(v.as_object().unwrap().clone(), Vec::new())
    }

    fn refusal(p: Value) -> String {
        let reply = render_text(&params(p)).unwrap_err();
        reply.body.unwrap()["description"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn parse_modes_are_those_of_the_bot_api() {
        let ok = |mode: &str, text: &str| {
            render_text(&params(json!({"text": text, "parse_mode": mode}))).map_err(|_| "refused")
        };
        assert_eq!(ok("MarkdownV2", "*a* 1\\.0").unwrap().0, "a 1.0");
        assert_eq!(ok("markdownv2", "*a*").unwrap().3[0]["type"], "bold");
        assert_eq!(ok("Markdown", "*a* 1.0").unwrap().0, "a 1.0");
        assert_eq!(ok("None", "*a* 1.0").unwrap().0, "*a* 1.0");
        assert_eq!(
            refusal(json!({"text": "a", "parse_mode": "Markdown3"})),
            "Bad Request: unsupported parse_mode"
        );
        assert_eq!(
            refusal(json!({"text": "Version 1.0", "parse_mode": "MarkdownV2"})),
            "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'"
        );
        assert_eq!(
            refusal(json!({"text": "", "parse_mode": "Markdown3"})),
            "Bad Request: message text is empty"
        );
    }

    #[test]
    fn entities_are_ignored_when_a_parse_mode_is_given() {
        let given = json!([{"type": "italic", "offset": 0, "length": 1}]);
        let (_, _, _, entities) = render_text(&params(
            json!({"text": "*a*", "parse_mode": "MarkdownV2", "entities": given}),
        ))
        .ok()
        .unwrap();
        assert_eq!(entities[0]["type"], "bold");
        let (_, _, _, entities) = render_text(&params(json!({"text": "*a*", "entities": given})))
            .ok()
            .unwrap();
        assert_eq!(entities[0]["type"], "italic");
    }

    #[test]
    fn the_limit_counts_characters_after_parsing() {
        let emoji = "😀".repeat(TEXT_MAX);
        assert!(render_text(&params(json!({"text": emoji}))).is_ok());
        let escaped = format!("*{}*", "\\.".repeat(TEXT_MAX));
        assert!(
            render_text(&params(
                json!({"text": escaped, "parse_mode": "MarkdownV2"})
            ))
            .is_ok()
        );
        let over = format!("*{}*", "\\.".repeat(TEXT_MAX + 1));
        assert_eq!(
            refusal(json!({"text": over, "parse_mode": "MarkdownV2"})),
            "Bad Request: message is too long"
        );
        assert_eq!(
            refusal(json!({"text": "x".repeat(SOURCE_MAX_BYTES + 1)})),
            "Bad Request: text is too long"
        );
    }

    #[test]
    fn chat_actions_are_the_servers_own() {
        for action in ["typing", "UPLOAD_DOCUMENT", "record_audio", "find_location"] {
            assert_eq!(
                chat_action(&params(json!({"action": action}))).ok(),
                Some(true)
            );
        }
        assert_eq!(
            chat_action(&params(json!({"action": "cancel"}))).ok(),
            Some(false)
        );
        for bad in [json!({"action": "dancing"}), json!({})] {
            let reply = chat_action(&params(bad)).unwrap_err();
            assert_eq!(
                reply.body.unwrap()["description"],
                "Bad Request: wrong parameter action in request"
            );
        }
    }
}
