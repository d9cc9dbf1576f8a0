//! Long polling of the Bot API (`getUpdates`) with the offset kept in the
//! agent's database: an update is confirmed (the stored offset moves past
//! it) only after it was handled, so a restart neither loses nor replays a
//! button press (a crash in between replays at most that one update, and
//! deciding twice is refused by the store). A second poller of the same
//! token makes Telegram answer 409; that is reported as such.

use std::sync::Arc;
use std::time::Duration;

use crate::shutdown::Shutdown;
use chrono::Utc;
use teloxide::prelude::*;
use teloxide::types::{AllowedUpdate, Update, UpdateKind};
use teloxide::{ApiError, RequestError};
use tracing::{debug, error, info, warn};

use super::{POLL_TIMEOUT, TelegramApprovals};
use crate::approvals::ApprovalsContext;

/// Poll until the stop signal. Errors are logged and retried: the agent's
/// other work goes on while Telegram is unreachable.
pub async fn run(
    tg: Arc<TelegramApprovals>,
    ctx: ApprovalsContext,
    mut stop: Shutdown,
) -> anyhow::Result<()> {
    let mut offset = ctx.store.telegram_offset(tg.bot_id).await?;
    info!(offset, "polling Telegram for button presses and commands");
    // A webhook left set (an earlier webhook mode) would make getUpdates fail with 409.
    if let Err(e) = tg.bot.delete_webhook().await {
        warn!(error = %e, "could not clear a webhook before polling");
    }
    super::commands::register(&tg).await;
    let mut conflict_reported = false;
    loop {
        let poll = tg
            .bot
            .get_updates()
            .offset(i32::try_from(offset).unwrap_or(i32::MAX))
            .timeout(POLL_TIMEOUT.as_secs() as u32)
            .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
        let result = tokio::select! {
            biased;
            _ = stop.stopped() => break,
            r = poll.send() => r,
        };
        match result {
            Ok(updates) => {
                conflict_reported = false;
                for update in updates {
                    let next = i64::from(update.id.0) + 1;
                    handle(&tg, &ctx, &update).await;
                    offset = offset.max(next);
                    if let Err(e) = ctx
                        .store
                        .set_telegram_offset(tg.bot_id, offset, Utc::now())
                        .await
                    {
                        warn!(error = format!("{e:#}"), "cannot store the Telegram offset");
                    }
                }
            }
            Err(RequestError::Api(ApiError::TerminatedByOtherGetUpdates)) => {
                if !conflict_reported {
                    error!(
                        "another process is polling this Telegram bot token (Telegram answered 409 Conflict): \
                         exactly one agent may own a token; stop the other process or give it its own token"
                    );
                    conflict_reported = true;
                }
                pause(&mut stop, Duration::from_secs(5)).await;
            }
            Err(RequestError::RetryAfter(s)) => pause(&mut stop, s.duration()).await,
            Err(e) => {
                let text = match &e {
                    RequestError::Network(n) => crate::delivery::http::describe_reqwest(n),
                    other => other.to_string(),
                };
                warn!(error = %text, "getUpdates failed; polling again shortly");
                pause(&mut stop, Duration::from_secs(1)).await;
            }
        }
    }
    debug!("Telegram polling stopped");
    Ok(())
}

async fn pause(stop: &mut Shutdown, d: Duration) {
    // Stopping is noticed by the loop's next select.
    let _ = stop.sleep(d).await;
}

/// One update: a button press or a command. Shared with the webhook route.
pub async fn handle(tg: &TelegramApprovals, ctx: &ApprovalsContext, update: &Update) {
    match &update.kind {
        UpdateKind::CallbackQuery(q) => tg.on_callback(ctx, q).await,
        UpdateKind::Message(m) => super::commands::on_message(tg, ctx, m).await,
        _ => debug!(update = update.id.0, "ignored an update of another kind"),
    }
}
