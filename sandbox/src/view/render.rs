//! How one thing looks on the page: a Discord message (content, embeds as
//! Discord draws them, files), a Telegram message (with its inline keyboard as
//! press forms), the OpenAI requests, and the notices above the conversations
//! (what a form played, and the bot's answer to it once it arrived). Each writes
//! HTML into the page being built; every piece of text goes through [`escape`].

use std::fmt::Write as _;

use serde_json::Value;

use super::{PRESS_PATH, View, escape};
use crate::{DiscordMessage, InteractionState, SandboxState, TelegramMessage};

/// Above the conversations: what the last form played and what came back.
pub(super) fn notices(out: &mut String, state: &SandboxState, view: &View) {
    if let Some(played) = &view.played {
        let _ = write!(out, "<p class=\"notice\">{}</p>", escape(played));
    }
    if let Some(id) = &view.pressed {
        press_answer(out, state, id);
    }
    if let Some(id) = view.command {
        let it = state.gateway.interactions.iter().find(|i| i.id == id);
        interaction_answer(out, id, it);
    }
}

/// The bot's `answerCallbackQuery` for a press, or that it is still awaited.
fn press_answer(out: &mut String, state: &SandboxState, id: &str) {
    let answer = state
        .telegram
        .callback_answers
        .iter()
        .find(|a| a.callback_query_id == id);
    match answer {
        None => {
            let _ = write!(
                out,
                "<p class=\"notice waiting\" id=\"press-answer\" data-answered=\"false\">\
                 Pressed: callback_query {} is queued for the bot; waiting for the bot's answer…</p>",
                escape(id)
            );
        }
        Some(a) => {
            let how = if a.show_alert { " (as an alert)" } else { "" };
            let said = match &a.text {
                Some(text) if !text.is_empty() => {
                    format!("<q class=\"callback-answer\">{}</q>", escape(text))
                }
                // Telegram then only stops the button's spinner.
                _ => "nothing to show (no text)".to_owned(),
            };
            let _ = write!(
                out,
                "<p class=\"notice\" id=\"press-answer\" data-answered=\"true\">\
                 Pressed: callback_query {}; the bot answered{how}: {said}</p>",
                escape(id)
            );
        }
    }
}

/// The bot's answer to a played slash command, as the user would see it.
fn interaction_answer(out: &mut String, id: u64, it: Option<&InteractionState>) {
    let Some(it) = it else {
        let _ = write!(
            out,
            "<p class=\"notice\">Interaction {id} is not known to the sandbox (it keeps the latest ones).</p>"
        );
        return;
    };
    let _ = write!(
        out,
        "<div class=\"reply\" id=\"interaction-{id}\"><div class=\"time\">/{} by user {} · interaction {id}</div>",
        escape(&it.command),
        it.user_id
    );
    let accepted = |kinds: &[&str]| {
        it.responses
            .iter()
            .rfind(|r| r.status < 300 && kinds.contains(&r.kind.as_str()))
    };
    match it.callback() {
        None => {
            let refused: Vec<String> = it
                .responses
                .iter()
                .filter(|r| r.status >= 300)
                .map(|r| format!("{} ({})", r.kind, r.status))
                .collect();
            if refused.is_empty() {
                out.push_str("<div class=\"waiting\">waiting for the bot's answer…</div>");
            } else {
                let _ = write!(
                    out,
                    "<div class=\"refused\">the sandbox refused the bot's answer: {}</div>",
                    escape(&refused.join(", "))
                );
            }
        }
        Some(cb) => match cb.body.get("type").and_then(Value::as_u64) {
            Some(4 | 7) => message_payload(out, &cb.body["data"]),
            Some(5 | 6) => match accepted(&["edit_original", "followup"]) {
                Some(later) => message_payload(out, &later.body),
                None => out.push_str(
                    "<div class=\"waiting\">the bot deferred its answer (thinking…)</div>",
                ),
            },
            Some(8) => {
                let _ = write!(
                    out,
                    "<div class=\"content\">autocomplete choices: {}</div>",
                    escape(&it.choices().join(", "))
                );
            }
            other => {
                let _ = write!(
                    out,
                    "<div class=\"content\">the bot answered with callback type {}</div>",
                    other.map_or("?".to_owned(), |t| t.to_string())
                );
            }
        },
    }
    if it.ephemeral() {
        out.push_str("<div class=\"time\">only the user sees this (ephemeral)</div>");
    }
    out.push_str("</div>");
}

/// A message's content and embeds, from an interaction answer's payload.
fn message_payload(out: &mut String, data: &Value) {
    if let Some(content) = data
        .get("content")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
    {
        let _ = write!(out, "<div class=\"content\">{}</div>", escape(content));
    }
    for e in data
        .get("embeds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        embed(out, e);
    }
}

pub(super) fn discord_message(out: &mut String, m: &DiscordMessage) {
    let _ = write!(
        out,
        "<li class=\"message\" id=\"discord-message-{}\"><span class=\"time\">{}</span>",
        m.id,
        escape(clock(&m.timestamp))
    );
    if !m.author_bot {
        let name = m
            .author_name
            .clone()
            .or_else(|| m.author_id.map(|id| format!("user{id}")))
            .unwrap_or_default();
        let _ = write!(out, "<span class=\"author\">{}</span>", escape(&name));
    }
    edit_mark(out, m.edited, m.edits);
    if !m.content.is_empty() {
        let _ = write!(out, "<div class=\"content\">{}</div>", escape(&m.content));
    }
    for e in &m.embeds {
        embed(out, e);
    }
    for a in &m.attachments {
        let field = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("");
        let url = field("url");
        // The sandbox's own path, so the page works on whatever address it is opened.
        let href = url.find("/attachments/").map_or(url, |i| &url[i..]);
        let size = a.get("size").and_then(Value::as_u64).unwrap_or(0);
        attachment(out, href, field("filename"), field("content_type"), size);
    }
    out.push_str("</li>");
}

/// An embed as Discord draws it: the bar in its colour (the stylesheet's
/// blurple when it has none), the author above the title, the footer and the
/// timestamp in small grey type under it.
pub(super) fn embed(out: &mut String, embed: &Value) {
    // Discord refuses a colour above 0xFFFFFF; one that got here anyway is not drawn.
    match embed
        .get("color")
        .and_then(Value::as_u64)
        .filter(|c| *c <= 0xFF_FFFF)
    {
        Some(c) => {
            let _ = write!(
                out,
                "<div class=\"embed\" data-color=\"{c}\" style=\"border-left-color:#{c:06x}\">"
            );
        }
        None => out.push_str("<div class=\"embed\">"),
    }
    if let Some(name) = embed.pointer("/author/name").and_then(Value::as_str) {
        let _ = write!(out, "<div class=\"embed-author\">{}</div>", escape(name));
    }
    for key in ["title", "description"] {
        if let Some(text) = embed.get(key).and_then(Value::as_str) {
            let _ = write!(out, "<div class=\"{key}\">{}</div>", escape(text));
        }
    }
    for field in embed
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let part = |k: &str| field.get(k).and_then(Value::as_str).unwrap_or("");
        let _ = write!(
            out,
            "<div class=\"field\"><b>{}</b> {}</div>",
            escape(part("name")),
            escape(part("value"))
        );
    }
    let footer = embed.pointer("/footer/text").and_then(Value::as_str);
    let timestamp = embed.get("timestamp").and_then(Value::as_str);
    if footer.is_some() || timestamp.is_some() {
        out.push_str("<div class=\"footer\">");
        if let Some(text) = footer {
            let _ = write!(out, "<span class=\"footer-text\">{}</span>", escape(text));
        }
        if let Some(ts) = timestamp {
            if footer.is_some() {
                out.push_str(" • ");
            }
            let shown = chrono::DateTime::parse_from_rfc3339(ts).map_or_else(
                |_| ts.to_owned(),
                |t| t.to_utc().format("%Y-%m-%d %H:%M UTC").to_string(),
            );
            let _ = write!(
                out,
                "<time datetime=\"{}\">{}</time>",
                escape(ts),
                escape(&shown)
            );
        }
        out.push_str("</div>");
    }
    out.push_str("</div>");
}

/// A file on a message: an image inline, anything else as a link.
fn attachment(out: &mut String, href: &str, name: &str, content_type: &str, size: u64) {
    if content_type.starts_with("image/") {
        let _ = write!(
            out,
            "<div class=\"attachment\"><img src=\"{}\" alt=\"{}\" style=\"max-width:320px\"></div>",
            escape(href),
            escape(name)
        );
    } else {
        let _ = write!(
            out,
            "<div class=\"attachment\"><a href=\"{}\" download=\"{}\">📎 {}</a> ({size} bytes)</div>",
            escape(href),
            escape(name),
            escape(name)
        );
    }
}

pub(super) fn telegram_message(
    out: &mut String,
    chat_id: i64,
    m: &TelegramMessage,
    approver: Option<i64>,
) {
    let _ = write!(
        out,
        "<li class=\"message\" id=\"telegram-message-{}\"><span class=\"time\">{}</span>",
        m.message_id,
        escape(&unix_clock(m.date))
    );
    edit_mark(out, m.edited, m.edits);
    if let Some(doc) = &m.document {
        let field = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or("");
        let href = format!("/_sandbox/telegram/files/{}", field("file_id"));
        let size = doc.get("file_size").and_then(Value::as_u64).unwrap_or(0);
        attachment(out, &href, field("file_name"), field("mime_type"), size);
    }
    if let Some(best) = m
        .photo
        .as_ref()
        .and_then(Value::as_array)
        .and_then(|p| p.last())
    {
        let id = best.get("file_id").and_then(Value::as_str).unwrap_or("");
        let href = format!("/_sandbox/telegram/files/{id}");
        attachment(out, &href, "photo", "image/png", 0);
    }
    let _ = write!(out, "<div class=\"content\">{}</div>", escape(&m.text));
    let rows = m
        .reply_markup
        .as_ref()
        .and_then(|k| k.get("inline_keyboard"))
        .and_then(Value::as_array);
    for row in rows.into_iter().flatten().filter_map(Value::as_array) {
        out.push_str("<div class=\"keyboard\">");
        for button in row {
            let label = button.get("text").and_then(Value::as_str).unwrap_or("?");
            match button.get("callback_data").and_then(Value::as_str) {
                Some(data) => {
                    let _ = write!(
                        out,
                        "<form method=\"post\" action=\"{PRESS_PATH}\">\
                         <input type=\"hidden\" name=\"chat_id\" value=\"{chat_id}\">\
                         <input type=\"hidden\" name=\"message_id\" value=\"{}\">\
                         <input type=\"hidden\" name=\"callback_data\" value=\"{}\">",
                        m.message_id,
                        escape(data)
                    );
                    if let Some(id) = approver {
                        let _ = write!(out, "<input type=\"hidden\" name=\"from\" value=\"{id}\">");
                    }
                    let _ = write!(
                        out,
                        "<button type=\"submit\">{}</button></form>",
                        escape(label)
                    );
                }
                // URL and other buttons are shown but not followed: the sandbox is offline.
                None => {
                    let _ = write!(out, "<span class=\"link\">{}</span>", escape(label));
                }
            }
        }
        out.push_str("</div>");
    }
    out.push_str("</li>");
}

/// How many of the latest completion requests the page shows.
const OPENAI_SHOWN: usize = 10;

/// The model's side of the conversations: the latest completion requests, what
/// each was asked (persona, last user message) and answered.
pub(super) fn openai_section(out: &mut String, state: &SandboxState) {
    let all = &state.openai.completions;
    let _ = write!(
        out,
        "<h2>OpenAI <small>{} request(s), the last {} shown</small></h2><ol>",
        all.len(),
        all.len().min(OPENAI_SHOWN)
    );
    for c in all.iter().skip(all.len().saturating_sub(OPENAI_SHOWN)) {
        let _ = write!(
            out,
            "<li class=\"completion\" id=\"openai-{}\"><span class=\"time\">{} · {} · {}{}</span>",
            c.seq,
            escape(&c.model),
            c.status,
            if c.stream { "streamed" } else { "whole" },
            c.system_first_line
                .as_deref()
                .map(|p| format!(" · persona: {}", escape(p)))
                .unwrap_or_default()
        );
        if let Some(asked) = &c.last_user {
            let _ = write!(out, "<div class=\"content asked\">{}</div>", escape(asked));
        }
        match (&c.answer, &c.error) {
            (Some(answer), _) => {
                let _ = write!(
                    out,
                    "<div class=\"content answer\">{}</div>",
                    escape(answer)
                );
            }
            (None, Some(error)) => {
                let _ = write!(
                    out,
                    "<div class=\"content refused\">{}</div>",
                    escape(error)
                );
            }
            (None, None) => {}
        }
        out.push_str("</li>");
    }
    out.push_str("</ol>");
}

/// "(edited)", or "(edited N times)" when it was edited more than once.
fn edit_mark(out: &mut String, edited: bool, edits: u32) {
    match edits {
        0 if edited => out.push_str(" <span class=\"edited\">(edited)</span>"),
        0 => {}
        1 => out.push_str(" <span class=\"edited\" data-edits=\"1\">(edited)</span>"),
        n => {
            let _ = write!(
                out,
                " <span class=\"edited\" data-edits=\"{n}\">(edited {n} times)</span>"
            );
        }
    }
}

/// `HH:MM:SS` of an RFC 3339 timestamp (or the timestamp as is).
fn clock(rfc3339: &str) -> &str {
    rfc3339.get(11..19).unwrap_or(rfc3339)
}

fn unix_clock(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%H:%M:%S").to_string())
        .unwrap_or_default()
}
