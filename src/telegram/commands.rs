//! Chat commands in Telegram (`/status`, `/approvals`, `/mute`, `/unmute`
//! and the rest of the catalog): a thin shell over the neutral handler of
//! `switchyard-commands` with the Telegram access list, rendered with
//! `Reply::to_telegram_html`, buttons as an inline keyboard. Every command
//! leaves an audit row.

use chrono::Utc;
use switchyard_commands::{Caller, handle_text};
use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::{BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message, ParseMode};
use tracing::warn;

use super::TelegramApprovals;
use crate::approvals::ApprovalsContext;

/// Register the command list shown in Telegram's menu.
pub async fn register(tg: &TelegramApprovals) {
    let commands: Vec<BotCommand> = switchyard_commands::telegram_commands()
        .into_iter()
        .map(|c| BotCommand::new(c.command, c.description))
        .collect();
    // A 429 here (a restart loop, a shared token) is waited out, a few times.
    for _ in 0..3 {
        match tg.bot.set_my_commands(commands.clone()).await {
            Ok(_) => return,
            Err(RequestError::RetryAfter(s)) => {
                warn!(
                    retry_after_secs = s.duration().as_secs(),
                    "Telegram rate-limited the command list; waiting"
                );
                tokio::time::sleep(s.duration()).await;
            }
            Err(e) => {
                warn!(error = %e, "could not register the Telegram command list");
                return;
            }
        }
    }
    warn!("could not register the Telegram command list: still rate-limited after three tries");
}

/// A message to the bot: commands are answered; anything else may be a
/// turn of a conversation.
pub async fn on_message(tg: &TelegramApprovals, ctx: &ApprovalsContext, m: &Message) {
    let Some(text) = m.text().filter(|t| t.starts_with('/')) else {
        super::conversation::on_text(tg, m).await;
        return;
    };
    let Some(from) = m.from.as_ref() else { return };
    let caller = Caller {
        platform: switchyard_routing::Platform::Telegram,
        user_id: from.id.0,
        display_name: from
            .username
            .as_ref()
            .map_or_else(|| from.first_name.clone(), |u| format!("@{u}")),
        roles: Vec::new(),
    };
    // The same runtime `Fleet` the Discord shell uses: one implementation, one instance.
    let Some(fleet) = tg.fleet.clone() else {
        warn!("a Telegram command arrived before the agent's fleet was wired; ignored");
        return;
    };
    // Read per command: a reload may have changed it.
    let access = fleet
        .access()
        .get()
        .list(switchyard_routing::Platform::Telegram);
    let input = text.to_string();
    let who = caller.clone();
    // Its own task: a panic in a command is answered as a failure, not a crash.
    let handled =
        match tokio::spawn(
            async move { handle_text(&input, &who, &access, &fleet, Utc::now()).await },
        )
        .await
        {
            Ok(h) => h,
            Err(e) => {
                warn!(error = %e, "a Telegram command panicked");
                return;
            }
        };
    // The same audit row shape as Discord's, from the neutral handler's record.
    let entry = crate::fleet::audit_entry(&handled.audit, "telegram");
    if let Err(e) = ctx.store.audit(entry).await {
        warn!(
            error = format!("{e:#}"),
            "could not audit a Telegram command"
        );
    }
    let reply = &handled.reply;
    let markup = (!reply.buttons.is_empty()).then(|| {
        InlineKeyboardMarkup::new(
            reply
                .buttons
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|b| {
                            InlineKeyboardButton::callback(
                                b.label.clone(),
                                b.token.as_str().to_string(),
                            )
                        })
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>(),
        )
    });
    // The answer shares the chat's one-message-a-second limit with prompts and
    // the outbox: a 429 is waited out (a few times), not dropped.
    for _ in 0..5 {
        tg.before_send(m.chat.id.0).await;
        let mut send = tg
            .bot
            .send_message(m.chat.id, reply.to_telegram_html())
            .parse_mode(ParseMode::Html);
        if let Some(k) = &markup {
            send = send.reply_markup(k.clone());
        }
        match send.await {
            Ok(_) => return,
            Err(RequestError::RetryAfter(s)) => {
                tg.after_429(m.chat.id.0, s.duration());
                tokio::time::sleep(s.duration()).await
            }
            Err(e) => {
                warn!(error = %e, "could not answer a Telegram command");
                return;
            }
        }
    }
    warn!("could not answer a Telegram command: still rate-limited after five tries");
}
