//! The sandbox's web view: a server-rendered page (`GET /`, also at
//! `/_sandbox/view`) showing each Discord channel (with the threads started in
//! it) and each Telegram chat as they fill, newest message last, with Telegram
//! inline keyboards rendered as buttons. A message edited in place (a streamed
//! answer growing) carries an edit mark with its count, and a person's message
//! (one the sandbox played) its author's name. Once the OpenAI stand-in has
//! been asked anything, the latest requests show too: the persona and the last
//! user message each was given, and the answer or the refusal.
//!
//! Each button is a plain HTML form posting to `POST /_sandbox/view/press`, which
//! plays the approver pressing it (a [`TelegramUserAction::PressButton`]), so the
//! page works without JavaScript; a `<meta http-equiv=refresh>` keeps it current.
//! The approver is the `as` query parameter of the page (`/?as=USER_ID`), else
//! [`SandboxOptions::telegram_approver`](super::SandboxOptions::telegram_approver).
//! Everything shown comes from bots and users, so every piece of text is escaped.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;

use super::{
    ControlError, DiscordMessage, SandboxState, Shared, TelegramMessage, TelegramUser,
    TelegramUserAction, snapshot,
};

/// Where the buttons' forms post.
pub const PRESS_PATH: &str = "/_sandbox/view/press";
/// How often the page reloads itself, in seconds.
const REFRESH_SECS: u32 = 2;

/// The view's routes, merged into the sandbox's router.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(page))
        .route("/_sandbox/view", get(page))
        .route(PRESS_PATH, post(press))
}

#[derive(Deserialize)]
struct ViewQuery {
    /// The Telegram user the buttons press as.
    #[serde(rename = "as")]
    approver: Option<i64>,
    /// The callback query the last press queued, to confirm it.
    pressed: Option<String>,
}

async fn page(State(shared): State<Arc<Shared>>, Query(q): Query<ViewQuery>) -> Html<String> {
    let approver = q.approver.or(shared.opts.telegram_approver);
    let notice = q
        .pressed
        .map(|id| format!("Pressed: callback_query {id} is queued for the bot."));
    Html(render(&snapshot(&shared), approver, notice.as_deref()))
}

/// The page for a snapshot. `approver` is the user the buttons press as.
pub(crate) fn render(state: &SandboxState, approver: Option<i64>, notice: Option<&str>) -> String {
    let mut out = String::with_capacity(8 * 1024);
    out.push_str(concat!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
    ));
    let _ = write!(
        out,
        "<meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">"
    );
    out.push_str(concat!(
        "<title>switchyard sandbox</title><style>",
        "body{font-family:system-ui,sans-serif;margin:1rem;background:#f4f5f7;color:#1d1f23}",
        "main{display:grid;grid-template-columns:repeat(auto-fill,minmax(22rem,1fr));gap:1rem}",
        "section{background:#fff;border-radius:8px;padding:.5rem 1rem;box-shadow:0 1px 2px #0002}",
        "h2{font-size:1.05rem;margin:.4rem 0}h2 small{color:#777;font-weight:normal}",
        "ol{list-style:none;padding:0;margin:0}li{border-top:1px solid #eee;padding:.4rem 0}",
        ".time{color:#888;font-size:.8rem}.content{white-space:pre-wrap}",
        ".embed{border-left:4px solid #5865f2;padding:.2rem .5rem;margin:.3rem 0;background:#f7f7fb}",
        ".embed .title{font-weight:600}.embed .description{white-space:pre-wrap}",
        ".keyboard{display:flex;flex-wrap:wrap;gap:.3rem;margin-top:.3rem}form{margin:0}",
        "button{padding:.25rem .8rem;border:1px solid #2b88d8;background:#e8f3fc;border-radius:4px;cursor:pointer}",
        ".link{padding:.25rem .8rem;border:1px dashed #999;border-radius:4px;color:#555}",
        ".notice{background:#e6f4ea;padding:.4rem .8rem;border-radius:4px}",
        ".empty{color:#999}.edited{color:#999;font-size:.8rem}.author{font-weight:600;margin-left:.3rem}",
        ".asked{color:#555}.answer{border-left:3px solid #10a37f;padding-left:.4rem}.refused{color:#b00}",
        ".thread{margin:.3rem 0 .3rem 1rem;border-left:2px solid #ccd;padding-left:.6rem}",
        "h3{font-size:.95rem;margin:.3rem 0}h3 small{color:#777;font-weight:normal}",
        "</style></head><body><h1>switchyard sandbox</h1>\n",
    ));
    if let Some(notice) = notice {
        let _ = writeln!(out, "<p class=\"notice\">{}</p>", escape(notice));
    }
    match approver {
        Some(id) => {
            let _ = writeln!(
                out,
                "<p>Buttons press as Telegram user <code>{id}</code>.</p>"
            );
        }
        None => out.push_str(
            "<p>No approver is set: open this page as <code>/?as=USER_ID</code> to press buttons.</p>\n",
        ),
    }
    out.push_str("<main>\n");
    for ch in &state.discord.channels {
        let _ = write!(
            out,
            "<section class=\"conversation discord\" id=\"discord-{}\"><h2>Discord #{} <small>{} message(s)</small></h2><ol>",
            ch.id,
            escape(&ch.name),
            ch.messages.len()
        );
        if ch.messages.is_empty() {
            out.push_str("<li class=\"empty\">no messages yet</li>");
        }
        for m in &ch.messages {
            discord_message(&mut out, m);
        }
        out.push_str("</ol>");
        for t in state.discord.threads_in(ch.id) {
            let _ = write!(
                out,
                "<div class=\"thread\" id=\"discord-thread-{}\"><h3>Thread {} <small>{} message(s)</small></h3><ol>",
                t.id,
                escape(&t.name),
                t.messages.len()
            );
            for m in &t.messages {
                discord_message(&mut out, m);
            }
            out.push_str("</ol></div>");
        }
        out.push_str("</section>\n");
    }
    for chat in &state.telegram.chats {
        let _ = write!(
            out,
            "<section class=\"conversation telegram\" id=\"telegram-{}\"><h2>Telegram {} <small>{} message(s)</small></h2><ol>",
            chat.id,
            escape(&chat.name),
            chat.messages.len()
        );
        if chat.messages.is_empty() {
            out.push_str("<li class=\"empty\">no messages yet</li>");
        }
        for m in &chat.messages {
            telegram_message(&mut out, chat.id, m, approver);
        }
        out.push_str("</ol></section>\n");
    }
    openai_section(&mut out, state);
    out.push_str("</main></body></html>\n");
    out
}

fn discord_message(out: &mut String, m: &DiscordMessage) {
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
    for embed in &m.embeds {
        out.push_str("<div class=\"embed\">");
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
        out.push_str("</div>");
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

fn telegram_message(out: &mut String, chat_id: i64, m: &TelegramMessage, approver: Option<i64>) {
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
/// each was asked (persona, last user message) and answered. Only once there are any.
fn openai_section(out: &mut String, state: &SandboxState) {
    let all = &state.openai.completions;
    if all.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<section class=\"conversation openai\" id=\"openai\"><h2>OpenAI <small>{} request(s), the last {} shown</small></h2><ol>",
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
    out.push_str("</ol></section>\n");
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

/// Text and attribute values made inert: the five characters HTML gives meaning to.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Why a press from the page could not be played.
#[derive(Debug, thiserror::Error)]
enum PressError {
    #[error("the form is missing `{0}` or it is not a number; press the button on the page again")]
    Field(&'static str),
    #[error(
        "no approver to press as: open the page as /?as=USER_ID or set SandboxOptions::telegram_approver"
    )]
    NoApprover,
    #[error(transparent)]
    Control(#[from] ControlError),
}

impl IntoResponse for PressError {
    fn into_response(self) -> Response {
        let status = match &self {
            PressError::Control(
                ControlError::UnknownChat(_) | ControlError::UnknownMessage { .. },
            ) => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>press refused</title></head>\
             <body><p class=\"error\">{}</p><p><a href=\"/\">back to the sandbox</a></p></body></html>",
            escape(&self.to_string())
        );
        (status, Html(body)).into_response()
    }
}

/// Plays the approver pressing a button, then sends the browser back to the page.
async fn press(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Response, PressError> {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let chat_id: i64 = field("chat_id")
        .and_then(|v| v.parse().ok())
        .ok_or(PressError::Field("chat_id"))?;
    let message_id: i32 = field("message_id")
        .and_then(|v| v.parse().ok())
        .ok_or(PressError::Field("message_id"))?;
    let callback_data = field("callback_data")
        .ok_or(PressError::Field("callback_data"))?
        .to_owned();
    let approver = match field("from").filter(|v| !v.is_empty()) {
        Some(v) => v.parse().map_err(|_| PressError::Field("from"))?,
        None => shared
            .opts
            .telegram_approver
            .ok_or(PressError::NoApprover)?,
    };
    let queued = shared
        .lock()
        .telegram
        .enqueue(TelegramUserAction::PressButton {
            chat_id,
            message_id,
            from: TelegramUser::new(approver, "Approver"),
            callback_data,
        })?;
    shared.updates.notify_waiters();
    let callback = queued.callback_query_id.unwrap_or_default();
    tracing::info!(chat_id, message_id, approver, callback_query_id = %callback, "web view press");
    // 303: the browser follows with a GET, so reloading the page does not press again.
    let location = format!("/?as={approver}&pressed={}", url_component(&callback));
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response())
}

fn url_component(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DiscordChannelState, DiscordThreadState, TelegramChatState};
    use serde_json::json;

    #[test]
    fn user_text_is_escaped_everywhere() {
        let hostile = "<script>alert(1)</script>\"'&";
        let mut state = SandboxState::default();
        state.discord.channels.push(DiscordChannelState {
            id: 1,
            name: hostile.into(),
            messages: vec![DiscordMessage {
                attachments: Vec::new(),
                id: 2,
                content: hostile.into(),
                embeds: vec![json!({"title": hostile, "description": hostile})],
                components: vec![],
                nonce: None,
                edited: false,
                edits: 0,
                webhook_id: None,
                timestamp: "2026-01-01T10:00:00Z".into(),
                edited_timestamp: None,
                author_id: None,
                author_name: None,
                author_bot: true,
            }],
            typing: 0,
        });
        state.telegram.chats.push(TelegramChatState {
            id: 3,
            name: hostile.into(),
            messages: vec![TelegramMessage {
                document: None,
                photo: None,
                message_id: 4,
                text: hostile.into(),
                source_text: hostile.into(),
                parse_mode: None,
                entities: vec![],
                reply_markup: Some(json!({"inline_keyboard": [[
                    {"text": hostile, "callback_data": "a\"><script>x</script>"}
                ]]})),
                edited: false,
                edits: 0,
                date: 0,
            }],
            chat_actions: 0,
        });
        let html = render(&state, Some(3), Some(hostile));
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("\"'&<"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
        assert!(html.contains("value=\"a&quot;&gt;&lt;script&gt;x&lt;/script&gt;\""));
    }

    fn message(id: u64, content: &str) -> DiscordMessage {
        DiscordMessage {
            attachments: Vec::new(),
            id,
            content: content.into(),
            embeds: vec![],
            components: vec![],
            nonce: None,
            edited: false,
            edits: 0,
            webhook_id: None,
            timestamp: "2026-01-01T10:00:00Z".into(),
            edited_timestamp: None,
            author_id: None,
            author_name: None,
            author_bot: true,
        }
    }

    #[test]
    fn threads_show_under_their_channel_with_authors_and_edit_counts() {
        let mut state = SandboxState::default();
        let mut question = message(10, "<@7> how are the disks?");
        question.author_id = Some(42);
        question.author_name = Some("ops".into());
        question.author_bot = false;
        state.discord.channels.push(DiscordChannelState {
            id: 1,
            name: "chat".into(),
            messages: vec![question],
            typing: 0,
        });
        let mut answer = message(11, "Disks are at 40%.");
        answer.edited = true;
        answer.edits = 3;
        let mut once = message(12, "ok");
        once.edited = true;
        once.edits = 1;
        state.discord.threads.push(DiscordThreadState {
            id: 10,
            parent_id: 1,
            starter_message_id: 10,
            name: "how are the disks?".into(),
            auto_archive_duration: 1440,
            messages: vec![answer, once, message(13, "untouched")],
            owner_id: 7,
            typing: 2,
        });
        let html = render(&state, None, None);
        let thread = html.find("id=\"discord-thread-10\"").expect("the thread");
        assert!(html[..thread].contains("<span class=\"author\">ops</span>"));
        let section_end = html[thread..].find("</section>").unwrap() + thread;
        let in_thread = &html[thread..section_end];
        assert!(in_thread.contains("Disks are at 40%."), "{in_thread}");
        assert!(
            in_thread.contains("data-edits=\"3\">(edited 3 times)"),
            "{in_thread}"
        );
        assert!(
            in_thread.contains("data-edits=\"1\">(edited)"),
            "{in_thread}"
        );
        assert_eq!(
            in_thread.matches("class=\"edited\"").count(),
            2,
            "{in_thread}"
        );
    }

    #[test]
    fn the_models_side_shows_only_once_it_was_asked() {
        let mut state = SandboxState::default();
        assert!(!render(&state, None, None).contains("id=\"openai\""));
        state.openai.completions.push(crate::OpenaiCompletion {
            seq: 1,
            model: "llama3.2".into(),
            system_first_line: Some("You are <tech-lead>.".into()),
            last_user: Some("how are the disks?".into()),
            answer: Some("Disks at 40%.".into()),
            status: 200,
            stream: true,
            ..crate::OpenaiCompletion::default()
        });
        state.openai.completions.push(crate::OpenaiCompletion {
            seq: 2,
            status: 400,
            error: Some("Missing required parameter: 'model'.".into()),
            ..crate::OpenaiCompletion::default()
        });
        let html = render(&state, None, None);
        let section = &html[html.find("id=\"openai\"").expect("the section")..];
        assert!(
            section.contains("llama3.2 · 200 · streamed · persona: You are &lt;tech-lead&gt;.")
        );
        assert!(section.contains("<div class=\"content asked\">how are the disks?</div>"));
        assert!(section.contains("<div class=\"content answer\">Disks at 40%.</div>"));
        assert!(section.contains("Missing required parameter: &#39;model&#39;."));
    }

    #[test]
    fn buttons_carry_the_approver_only_when_known() {
        let mut state = SandboxState::default();
        state.telegram.chats.push(TelegramChatState {
            id: 7,
            name: "operator".into(),
            messages: vec![TelegramMessage {
                document: None,
                photo: None,
                message_id: 9,
                text: "Approve?".into(),
                source_text: "Approve?".into(),
                parse_mode: None,
                entities: vec![],
                reply_markup: Some(json!({"inline_keyboard": [[
                    {"text": "Approve", "callback_data": "ok"},
                    {"text": "Docs", "url": "https://example.invalid"}
                ]]})),
                edited: false,
                edits: 0,
                date: 0,
            }],
            chat_actions: 0,
        });
        let with = render(&state, Some(42), None);
        assert!(with.contains("name=\"from\" value=\"42\""));
        assert!(with.contains("<span class=\"link\">Docs</span>"));
        let without = render(&state, None, None);
        assert!(!without.contains("name=\"from\""));
        assert!(without.contains("/?as=USER_ID"));
    }
}
