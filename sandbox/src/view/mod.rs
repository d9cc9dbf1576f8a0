//! The sandbox's web view: a server-rendered page (`GET /`, also at
//! `/_sandbox/view`) showing each Discord channel (with the threads started in
//! it) and each Telegram chat as they fill, newest message last, with Telegram
//! inline keyboards rendered as buttons. A message edited in place (a streamed
//! answer growing) carries an edit mark with its count, and a person's message
//! (one the sandbox played) its author's name. Embeds show as Discord draws
//! them (colour bar, author, footer, timestamp). Once the OpenAI stand-in has
//! been asked anything, the latest requests show too: the persona and the last
//! user message each was given, and the answer or the refusal.
//!
//! The page also plays people, with plain HTML forms (so it works without
//! JavaScript; see `forms.rs`): each button posts to [`PRESS_PATH`] (the
//! approver pressing it, a [`TelegramUserAction::PressButton`]), each Telegram
//! chat has a box posting to [`SAY_PATH`] (a user writing in the chat, a command
//! when it starts with `/`), each Discord channel one posting to
//! [`COMMAND_PATH`] (a slash command, or a plain message). Each answers 303 back
//! to the page, which then says what was played and, as it arrives, what the
//! bot answered: the `answerCallbackQuery` text for a press, the interaction's
//! answer for a slash command.
//!
//! The page keeps itself current: a small inline script (`live.js`) fetches it
//! every 2 s and swaps the parts marked `data-live` (the conversations and the
//! notice), leaving the forms, and what is typed into them, alone; without
//! JavaScript a `<meta http-equiv=refresh>` inside `<noscript>` reloads it.
//! The approver is the `as` query parameter of the page (`/?as=USER_ID`), else
//! [`SandboxOptions::telegram_approver`](super::SandboxOptions::telegram_approver);
//! the Discord forms' user is `discord_as`. Everything shown comes from bots
//! and users, so every piece of text is escaped.

mod forms;
mod render;

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::{get, post};
use serde::Deserialize;

use super::{SandboxState, Shared, snapshot};

/// Where the buttons' forms post.
pub const PRESS_PATH: &str = "/_sandbox/view/press";
/// Where a Telegram chat's "message as user" form posts.
pub const SAY_PATH: &str = "/_sandbox/view/say";
/// Where a Discord channel's "slash command or message as user" form posts.
pub const COMMAND_PATH: &str = "/_sandbox/view/command";
/// How often the page refreshes itself, in seconds (the script's period too).
const REFRESH_SECS: u32 = 2;

/// The view's routes, merged into the sandbox's router.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(page))
        .route("/_sandbox/view", get(page))
        .route(PRESS_PATH, post(forms::press))
        .route(SAY_PATH, post(forms::say))
        .route(COMMAND_PATH, post(forms::command))
}

/// What the page is asked to show besides the conversations; also what the
/// forms' 303 carries back, so that a reload shows the same page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct View {
    /// The Telegram user the buttons press as (and the say-forms' default).
    #[serde(rename = "as")]
    pub approver: Option<i64>,
    /// The Discord user the command forms play, once one was typed.
    pub discord_as: Option<u64>,
    /// The callback query the last press queued: its answer is shown.
    pub pressed: Option<String>,
    /// The interaction the last slash command created: its answer is shown.
    pub command: Option<u64>,
    /// What the last form played, in words.
    pub played: Option<String>,
}

async fn page(State(shared): State<Arc<Shared>>, Query(mut view): Query<View>) -> Html<String> {
    view.approver = view.approver.or(shared.opts.telegram_approver);
    Html(render(&snapshot(&shared), &view))
}

/// The page for a snapshot.
pub(crate) fn render(state: &SandboxState, view: &View) -> String {
    let mut out = String::with_capacity(8 * 1024);
    out.push_str(concat!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
    ));
    // Only without JavaScript: a reload would wipe what is typed into the forms.
    let _ = write!(
        out,
        "<noscript><meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\"></noscript>"
    );
    out.push_str(concat!(
        "<title>switchyard sandbox</title><style>",
        "body{font-family:system-ui,sans-serif;margin:1rem;background:#f4f5f7;color:#1d1f23}",
        "main{display:grid;grid-template-columns:repeat(auto-fill,minmax(22rem,1fr));gap:1rem}",
        "section{background:#fff;border-radius:8px;padding:.5rem 1rem;box-shadow:0 1px 2px #0002}",
        "h2{font-size:1.05rem;margin:.4rem 0}h2 small{color:#777;font-weight:normal}",
        "ol{list-style:none;padding:0;margin:0}li{border-top:1px solid #eee;padding:.4rem 0}",
        ".time{color:#888;font-size:.8rem}.content{white-space:pre-wrap}",
        ".embed{border-left:4px solid #5865f2;border-radius:4px;padding:.3rem .6rem;margin:.3rem 0;background:#f2f3f5}",
        ".embed .title{font-weight:600}.embed .description{white-space:pre-wrap}",
        ".embed .embed-author{font-size:.85rem;font-weight:600}",
        ".embed .footer{font-size:.75rem;color:#6d6f78;margin-top:.3rem}",
        ".keyboard{display:flex;flex-wrap:wrap;gap:.3rem;margin-top:.3rem}form{margin:0}",
        "button{padding:.25rem .8rem;border:1px solid #2b88d8;background:#e8f3fc;border-radius:4px;cursor:pointer}",
        ".link{padding:.25rem .8rem;border:1px dashed #999;border-radius:4px;color:#555}",
        ".notice{background:#e6f4ea;padding:.4rem .8rem;border-radius:4px}",
        ".waiting{background:#fff4e5}.reply{background:#fff;border:1px solid #dde;padding:.4rem .8rem;border-radius:4px}",
        ".empty{color:#999}.edited{color:#999;font-size:.8rem}.author{font-weight:600;margin-left:.3rem}",
        ".asked{color:#555}.answer{border-left:3px solid #10a37f;padding-left:.4rem}.refused{color:#b00}",
        ".thread{margin:.3rem 0 .3rem 1rem;border-left:2px solid #ccd;padding-left:.6rem}",
        "h3{font-size:.95rem;margin:.3rem 0}h3 small{color:#777;font-weight:normal}",
        "form.act{display:flex;flex-wrap:wrap;gap:.3rem;align-items:center;margin-top:.5rem;",
        "padding-top:.4rem;border-top:1px dashed #ccd;font-size:.85rem;color:#555}",
        "form.act input{font:inherit;padding:.15rem .3rem}",
        "</style></head><body data-updates=\"0\"><h1>switchyard sandbox</h1>\n",
    ));
    out.push_str("<div id=\"live-notice\" data-live>");
    render::notices(&mut out, state, view);
    out.push_str("</div>\n");
    match view.approver {
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
    out.push_str("<main id=\"live\">\n");
    for ch in &state.discord.channels {
        let _ = write!(
            out,
            "<section class=\"conversation discord\" id=\"discord-{id}\">\
             <div data-live id=\"live-discord-{id}\"><h2>Discord #{} <small>{} message(s)</small></h2><ol>",
            escape(&ch.name),
            ch.messages.len(),
            id = ch.id,
        );
        if ch.messages.is_empty() {
            out.push_str("<li class=\"empty\">no messages yet</li>");
        }
        for m in &ch.messages {
            render::discord_message(&mut out, m);
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
                render::discord_message(&mut out, m);
            }
            out.push_str("</ol></div>");
        }
        out.push_str("</div>");
        forms::command_form(&mut out, ch.id, view);
        out.push_str("</section>\n");
    }
    for chat in &state.telegram.chats {
        let _ = write!(
            out,
            "<section class=\"conversation telegram\" id=\"telegram-{id}\">\
             <div data-live id=\"live-telegram-{id}\"><h2>Telegram {} <small>{} message(s)</small></h2><ol>",
            escape(&chat.name),
            chat.messages.len(),
            id = chat.id,
        );
        if chat.messages.is_empty() {
            out.push_str("<li class=\"empty\">no messages yet</li>");
        }
        for m in &chat.messages {
            render::telegram_message(&mut out, chat.id, m, view.approver);
        }
        out.push_str("</ol></div>");
        forms::say_form(&mut out, chat.id, view);
        out.push_str("</section>\n");
    }
    if !state.openai.completions.is_empty() {
        out.push_str("<section class=\"conversation openai\" id=\"openai\"><div data-live id=\"live-openai\">");
        render::openai_section(&mut out, state);
        out.push_str("</div></section>\n");
    }
    out.push_str("</main>\n<script>\n");
    out.push_str(include_str!("live.js"));
    out.push_str("</script></body></html>\n");
    out
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

#[cfg(test)]
mod tests;
