//! The page's forms and what they play: a button press
//! ([`PRESS_PATH`](super::PRESS_PATH)), a Telegram user writing in a chat
//! ([`SAY_PATH`]) and a Discord user running a slash command or posting a
//! message ([`COMMAND_PATH`]). Each is a plain form post answered 303 back to
//! the page (so a reload does not play it again), with what was played in the
//! query for the page's notice. What cannot be played is
//! answered with a short error page saying why (400 for the form's fault, 404
//! for an unknown chat or channel, 409 when no bot is there to receive it).
//! Also the slash command line's parser (`/mute target:system for:2h`).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use super::{COMMAND_PATH, SAY_PATH, View, escape};
use crate::{
    ControlError, DiscordUserCommand, DiscordUserMessage, Shared, TelegramUser, TelegramUserAction,
};

/// Telegram's limit on a message's text.
const TELEGRAM_TEXT_MAX: usize = 4096;
/// Discord's limit on a (non-Nitro) user's message.
const DISCORD_CONTENT_MAX: usize = 2000;

/// Why a form from the page could not be played.
#[derive(Debug, thiserror::Error)]
pub(super) enum FormError {
    #[error("the form is missing `{0}` or it is not a number; use the form on the page again")]
    Field(&'static str),
    #[error("the user id {0:?} is not a number: type the user's numeric id")]
    UserId(String),
    #[error("type the id of the {0} user to play (a number)")]
    NoUser(&'static str),
    #[error("there is nothing to send: type a message (or a command such as /status) first")]
    Empty,
    #[error("that is {0} characters; {1} allows at most {2}")]
    TooLong(usize, &'static str, usize),
    #[error(
        "no approver to press as: open the page as /?as=USER_ID or set SandboxOptions::telegram_approver"
    )]
    NoApprover,
    #[error("not a slash command the sandbox can play: {0}")]
    Command(#[from] CommandError),
    #[error(transparent)]
    Control(#[from] ControlError),
}

impl IntoResponse for FormError {
    fn into_response(self) -> Response {
        let status = match &self {
            FormError::Control(
                ControlError::UnknownChat(_)
                | ControlError::UnknownChannel(_)
                | ControlError::UnknownMessage { .. },
            ) => StatusCode::NOT_FOUND,
            // Nothing wrong with the form: nobody is there to receive it (yet).
            FormError::Control(ControlError::Gateway(_)) => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>not played</title></head>\
             <body><p class=\"error\">{}</p><p><a href=\"/\">back to the sandbox</a></p></body></html>",
            escape(&self.to_string())
        );
        (status, Html(body)).into_response()
    }
}

/// A form's fields, by name.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Self {
        Form(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A number the page wrote into a hidden field.
    fn number<T: std::str::FromStr>(&self, name: &'static str) -> Result<T, FormError> {
        self.get(name)
            .and_then(|v| v.trim().parse().ok())
            .ok_or(FormError::Field(name))
    }

    /// A number the user may have typed: absent or blank is `None`.
    fn typed_id<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, FormError> {
        match self.get(name).map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| FormError::UserId(v.to_owned())),
        }
    }

    /// The text typed, trimmed; refused when empty or over `limit` characters.
    fn text(&self, platform: &'static str, limit: usize) -> Result<&str, FormError> {
        let text = self.get("text").map(str::trim).unwrap_or("");
        if text.is_empty() {
            return Err(FormError::Empty);
        }
        let len = text.chars().count();
        if len > limit {
            return Err(FormError::TooLong(len, platform, limit));
        }
        Ok(text)
    }
}

/// The 303 back to the page, keeping who the page plays.
fn back(form: &Form, extra: &[(&str, String)], anchor: &str) -> Response {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for key in ["as", "discord_as"] {
        if let Some(v) = form.get(key).filter(|v| !v.is_empty()) {
            query.append_pair(key, v);
        }
    }
    for (k, v) in extra {
        query.append_pair(k, v);
    }
    let location = format!("/?{}{anchor}", query.finish());
    // 303: the browser follows with a GET, so reloading the page does not play it again.
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// Plays the approver pressing a button, then sends the browser back to the page.
pub(super) async fn press(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Response, FormError> {
    let form = Form::parse(&body);
    let chat_id: i64 = form.number("chat_id")?;
    let message_id: i32 = form.number("message_id")?;
    let callback_data = form
        .get("callback_data")
        .ok_or(FormError::Field("callback_data"))?
        .to_owned();
    let approver = match form.get("from").filter(|v| !v.is_empty()) {
        Some(v) => v.parse().map_err(|_| FormError::Field("from"))?,
        None => shared.opts.telegram_approver.ok_or(FormError::NoApprover)?,
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
    let form = Form(vec![("as".into(), approver.to_string())]);
    Ok(back(
        &form,
        &[("pressed", callback)],
        &format!("#telegram-{chat_id}"),
    ))
}

/// Plays a Telegram user writing in a chat (a command to the bot when it starts with `/`).
pub(super) async fn say(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Response, FormError> {
    let form = Form::parse(&body);
    let chat_id: i64 = form.number("chat_id")?;
    let from = form
        .typed_id::<i64>("from")?
        .or(shared.opts.telegram_approver)
        .ok_or(FormError::NoUser("Telegram"))?;
    let text = form.text("Telegram", TELEGRAM_TEXT_MAX)?.to_owned();
    let queued = shared
        .lock()
        .telegram
        .enqueue(TelegramUserAction::Message {
            chat_id,
            from: TelegramUser::new(from, "Operator"),
            text: text.clone(),
        })?;
    shared.updates.notify_waiters();
    tracing::info!(
        chat_id,
        from,
        update_id = queued.update_id,
        "web view message"
    );
    let played = format!(
        "Played: Telegram user {from} wrote “{text}” in chat {chat_id} (update {}); the bot gets it from getUpdates.",
        queued.update_id
    );
    Ok(back(
        &form,
        &[("played", played)],
        &format!("#telegram-{chat_id}"),
    ))
}

/// Plays a Discord user in a channel: a slash command when the text starts
/// with `/`, else a message (a `<@ID>` in it mentions, so addresses, that bot).
pub(super) async fn command(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Response, FormError> {
    let form = Form::parse(&body);
    let channel_id: u64 = form.number("channel_id")?;
    let user_id = form
        .typed_id::<u64>("user_id")?
        .ok_or(FormError::NoUser("Discord"))?;
    let text = form.text("Discord", DISCORD_CONTENT_MAX)?.to_owned();
    let mut keep = Form(vec![("discord_as".into(), user_id.to_string())]);
    if let Some(v) = form.get("as") {
        keep.0.push(("as".into(), v.to_owned()));
    }
    let anchor = format!("#discord-{channel_id}");
    let guild_id = Some(crate::discord::SANDBOX_GUILD);
    if text.starts_with('/') {
        let parsed = parse_command(&text)?;
        let cmd = DiscordUserCommand {
            user_id,
            command: parsed.command,
            subcommand: parsed.subcommand,
            options: parsed.options,
            channel_id: Some(channel_id),
            guild_id,
            ..DiscordUserCommand::default()
        };
        let id = {
            let mut inner = shared.lock();
            // The gateway would dispatch a command for any channel id: refuse a typo here.
            if inner.discord.interaction_channel(channel_id).is_none() {
                return Err(ControlError::UnknownChannel(channel_id).into());
            }
            crate::gateway::run_command(&mut inner, cmd)?
        };
        tracing::info!(
            channel_id,
            user_id,
            interaction = id,
            "web view slash command"
        );
        let played = format!(
            "Played: Discord user {user_id} ran {text} in channel {channel_id} (interaction {id})."
        );
        return Ok(back(
            &keep,
            &[("played", played), ("command", id.to_string())],
            &anchor,
        ));
    }
    let msg = DiscordUserMessage {
        user_id,
        channel_id,
        mentions: mentions(&text),
        content: text.clone(),
        guild_id,
        ..DiscordUserMessage::default()
    };
    let origin = format!("http://{}", shared.addr);
    let id = {
        let mut inner = shared.lock();
        if inner.discord.interaction_channel(channel_id).is_none() {
            return Err(ControlError::UnknownChannel(channel_id).into());
        }
        crate::gateway::post_message(&mut inner, msg, &origin)?
    };
    tracing::info!(channel_id, user_id, message_id = id, "web view message");
    let played = format!(
        "Played: Discord user {user_id} posted message {id} in channel {channel_id}: “{text}”."
    );
    Ok(back(&keep, &[("played", played)], &anchor))
}

/// The user ids a message mentions: `<@ID>` and the older `<@!ID>`.
fn mentions(text: &str) -> Vec<u64> {
    let mut found = Vec::new();
    for part in text.split("<@").skip(1) {
        let part = part.strip_prefix('!').unwrap_or(part);
        if let Some(id) = part
            .split_once('>')
            .and_then(|(id, _)| id.parse::<u64>().ok())
            .filter(|id| !found.contains(id))
        {
            found.push(id);
        }
    }
    found
}

/// A slash command line, parsed.
#[derive(Debug, PartialEq)]
pub(super) struct SlashCommand {
    pub command: String,
    pub subcommand: Option<String>,
    pub options: Vec<(String, Value)>,
}

/// Why a line is not a slash command.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum CommandError {
    #[error("type the command's name after the slash, as in /status")]
    NoName,
    #[error(
        "{0:?} is not a command or option name: Discord's are 1 to 32 lowercase letters, digits, `-` or `_`"
    )]
    BadName(String),
    #[error("{0:?} is not an option: write options as name:value, as in target:system")]
    Stray(String),
    #[error("option {0:?} has no value: write {0}:VALUE")]
    NoValue(String),
    #[error("option {0:?} is given twice")]
    Twice(String),
}

/// A name Discord accepts for a command, subcommand or option.
fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| (c.is_alphanumeric() && !c.is_uppercase()) || c == '-' || c == '_')
}

/// Parses `/name [subcommand] [option:value ...]` as Discord's client builds it
/// from what is typed. A value runs to the next `option:` (so it may hold
/// spaces, collapsed to one), may be quoted to keep it a string, and is a
/// boolean for `true`/`false`, an integer when it is one, else a string.
pub(super) fn parse_command(line: &str) -> Result<SlashCommand, CommandError> {
    let rest = line.trim().strip_prefix('/').ok_or(CommandError::NoName)?;
    let mut words = rest.split_whitespace();
    let command = words.next().ok_or(CommandError::NoName)?;
    if !valid_name(command) {
        return Err(CommandError::BadName(command.to_owned()));
    }
    let mut subcommand = None;
    let mut raw: Vec<(String, String)> = Vec::new();
    for word in words {
        let option = word
            .split_once(':')
            // `see:https://x` is a value holding a URL, not an option `https`.
            .filter(|(name, value)| valid_name(name) && !value.starts_with("//"));
        match (option, raw.last_mut()) {
            (Some((name, value)), _) => {
                if raw.iter().any(|(n, _)| n == name) {
                    return Err(CommandError::Twice(name.to_owned()));
                }
                raw.push((name.to_owned(), value.to_owned()));
            }
            (None, Some((_, value))) => {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(word);
            }
            (None, None) if subcommand.is_none() && valid_name(word) => {
                subcommand = Some(word.to_owned());
            }
            (None, None) => return Err(CommandError::Stray(word.to_owned())),
        }
    }
    let options = raw
        .into_iter()
        .map(|(name, value)| {
            let value = typed_value(&value).ok_or_else(|| CommandError::NoValue(name.clone()))?;
            Ok((name, value))
        })
        .collect::<Result<_, _>>()?;
    Ok(SlashCommand {
        command: command.to_owned(),
        subcommand,
        options,
    })
}

/// An option's value as the client would send it; `None` when empty.
fn typed_value(raw: &str) -> Option<Value> {
    if let Some(quoted) = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|_| raw.len() >= 2)
    {
        return Some(Value::String(quoted.to_owned()));
    }
    match raw {
        "" => None,
        "true" => Some(Value::Bool(true)),
        "false" => Some(Value::Bool(false)),
        _ => Some(
            raw.parse::<i64>()
                .map_or_else(|_| Value::String(raw.to_owned()), Value::from),
        ),
    }
}

/// The hidden fields that keep who the page plays across a form's 303.
fn keep_players(out: &mut String, view: &View) {
    if let Some(id) = view.approver {
        let _ = write!(out, "<input type=\"hidden\" name=\"as\" value=\"{id}\">");
    }
    if let Some(id) = view.discord_as {
        let _ = write!(
            out,
            "<input type=\"hidden\" name=\"discord_as\" value=\"{id}\">"
        );
    }
}

/// A Telegram chat's "message as user" box.
pub(super) fn say_form(out: &mut String, chat_id: i64, view: &View) {
    let _ = write!(
        out,
        "<form class=\"act say\" method=\"post\" action=\"{SAY_PATH}\">\
         <input type=\"hidden\" name=\"chat_id\" value=\"{chat_id}\">"
    );
    keep_players(out, view);
    let from = view.approver.map(|id| id.to_string()).unwrap_or_default();
    let _ = write!(
        out,
        "<label>Message as user ID <input id=\"say-from-{chat_id}\" name=\"from\" value=\"{from}\" \
         inputmode=\"numeric\" size=\"10\" required></label>\
         <label>text <input id=\"say-text-{chat_id}\" name=\"text\" size=\"22\" placeholder=\"/status\" \
         required></label><button type=\"submit\">Send</button></form>"
    );
}

/// A Discord channel's "slash command or message as user" box.
pub(super) fn command_form(out: &mut String, channel_id: u64, view: &View) {
    let _ = write!(
        out,
        "<form class=\"act command\" method=\"post\" action=\"{COMMAND_PATH}\">\
         <input type=\"hidden\" name=\"channel_id\" value=\"{channel_id}\">"
    );
    keep_players(out, view);
    let user = view.discord_as.map(|id| id.to_string()).unwrap_or_default();
    let _ = write!(
        out,
        "<label>as user ID <input id=\"command-user-{channel_id}\" name=\"user_id\" value=\"{user}\" \
         inputmode=\"numeric\" size=\"10\" required></label>\
         <label><input id=\"command-text-{channel_id}\" name=\"text\" size=\"26\" \
         placeholder=\"/status, or a message\" required></label><button type=\"submit\">Run</button></form>"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(line: &str) -> SlashCommand {
        parse_command(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn a_command_line_becomes_typed_options() {
        let c = parsed("/mute target:system for:2h reason:deploy of web-1 quiet:true count:3");
        assert_eq!(c.command, "mute");
        assert_eq!(c.subcommand, None);
        assert_eq!(
            c.options,
            vec![
                ("target".into(), json!("system")),
                ("for".into(), json!("2h")),
                ("reason".into(), json!("deploy of web-1")),
                ("quiet".into(), json!(true)),
                ("count".into(), json!(3)),
            ]
        );
        let bare = parsed("  /status ");
        assert_eq!((bare.command.as_str(), bare.options.len()), ("status", 0));
    }

    #[test]
    fn quotes_keep_a_value_a_string_and_a_url_stays_in_its_value() {
        let c = parsed("/remind list when:\"3\" flag:\"false\" see:https://example.invalid/x");
        assert_eq!(c.subcommand.as_deref(), Some("list"));
        assert_eq!(
            c.options,
            vec![
                ("when".into(), json!("3")),
                ("flag".into(), json!("false")),
                ("see".into(), json!("https://example.invalid/x")),
            ]
        );
        assert_eq!(parsed("/n x:-12").options, vec![("x".into(), json!(-12))]);
        assert_eq!(parsed("/n x:1.5").options, vec![("x".into(), json!("1.5"))]);
    }

    #[test]
    fn bad_command_lines_are_refused_with_the_reason() {
        assert_eq!(parse_command("status"), Err(CommandError::NoName));
        assert_eq!(parse_command("/"), Err(CommandError::NoName));
        assert_eq!(
            parse_command("/Mute"),
            Err(CommandError::BadName("Mute".into()))
        );
        assert_eq!(
            parse_command("/mute now later"),
            Err(CommandError::Stray("later".into()))
        );
        assert_eq!(
            parse_command("/mute target:"),
            Err(CommandError::NoValue("target".into()))
        );
        assert_eq!(
            parse_command("/mute a:1 a:2"),
            Err(CommandError::Twice("a".into()))
        );
        let long = format!("/{}", "x".repeat(33));
        assert!(matches!(
            parse_command(&long),
            Err(CommandError::BadName(_))
        ));
    }

    #[test]
    fn mentions_are_read_from_the_message() {
        assert_eq!(
            mentions("<@101234> and <@!7>, not <@x> nor <@101234>"),
            vec![101_234, 7]
        );
        assert!(mentions("no one").is_empty());
    }
}
