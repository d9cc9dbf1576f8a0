//! Webhook mode: Telegram POSTs each update to `[telegram] webhook_url`,
//! which reaches the agent's `listen` address at [`PATH`]. A request without
//! the right `X-Telegram-Bot-Api-Secret-Token` is refused (401) and logged;
//! an update already handled (Telegram retries until it gets a 2xx) is
//! acknowledged without being handled again.

use std::sync::Arc;
use std::time::Duration;

use crate::shutdown::Shutdown;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::Utc;
use teloxide::prelude::*;
use teloxide::types::{AllowedUpdate, Update};
use tracing::{info, warn};

use super::TelegramApprovals;
use crate::approvals::ApprovalsContext;
use crate::config::Secret;

/// Where the agent receives updates.
pub const PATH: &str = "/telegram/webhook";
const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

struct Hook {
    tg: Arc<TelegramApprovals>,
    ctx: ApprovalsContext,
    secret: Secret,
    /// One update at a time, in order, like the polling loop.
    lock: tokio::sync::Mutex<()>,
}

fn secret(ctx: &ApprovalsContext) -> anyhow::Result<Option<Secret>> {
    let Some(webhook) = ctx
        .config
        .telegram
        .as_ref()
        .and_then(|t| t.webhook.as_ref())
    else {
        return Ok(None);
    };
    match std::env::var(&webhook.secret_env) {
        Ok(v) if !v.trim().is_empty() => Ok(Some(Secret::new(v.trim()))),
        _ => anyhow::bail!(
            "[telegram] webhook_url is set but {} is empty: export a random secret (1-256 of A-Z a-z 0-9 _ -) there",
            webhook.secret_env
        ),
    }
}

/// The webhook route, when this agent owns Telegram in webhook mode.
pub fn router(
    tg: Option<Arc<TelegramApprovals>>,
    ctx: &ApprovalsContext,
) -> anyhow::Result<Option<Router>> {
    let Some(tg) = tg else {
        return Ok(None);
    };
    let Some(secret) = secret(ctx)? else {
        return Ok(None);
    };
    let hook = Arc::new(Hook {
        tg,
        ctx: ctx.clone(),
        secret,
        lock: tokio::sync::Mutex::new(()),
    });
    Ok(Some(
        Router::new().route(PATH, post(receive)).with_state(hook),
    ))
}

/// Same length and same bytes, looked at in full whatever the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn receive(State(hook): State<Arc<Hook>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let given = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !same(given, hook.secret.expose().as_bytes()) {
        warn!("refused a webhook request without the right secret token");
        return StatusCode::UNAUTHORIZED;
    }
    let update: Update = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => {
            warn!(error = %e, "a webhook request is not a Telegram update");
            return StatusCode::BAD_REQUEST;
        }
    };
    let _one_at_a_time = hook.lock.lock().await;
    let id = i64::from(update.id.0);
    let next = match hook.ctx.store.telegram_offset(hook.tg.bot_id).await {
        Ok(n) => n,
        Err(e) => {
            warn!(error = format!("{e:#}"), "cannot read the Telegram offset");
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    };
    if id < next {
        return StatusCode::OK;
    }
    super::poll::handle(&hook.tg, &hook.ctx, &update).await;
    if let Err(e) = hook
        .ctx
        .store
        .set_telegram_offset(hook.tg.bot_id, id + 1, Utc::now())
        .await
    {
        warn!(error = format!("{e:#}"), "cannot store the Telegram offset");
    }
    StatusCode::OK
}

/// Tell Telegram where to post (`setWebhook` with the secret), retrying
/// until it accepts, then register the command list.
pub async fn register(
    tg: Arc<TelegramApprovals>,
    ctx: ApprovalsContext,
    mut stop: Shutdown,
) -> anyhow::Result<()> {
    let (Some(webhook), Some(secret)) = (
        ctx.config.telegram.as_ref().and_then(|t| t.webhook.clone()),
        secret(&ctx)?,
    ) else {
        return Ok(());
    };
    let url = url::Url::parse(&webhook.url)
        .map_err(|e| anyhow::anyhow!("[telegram] webhook_url: {e}"))?;
    loop {
        let set = tg
            .bot
            .set_webhook(url.clone())
            .secret_token(secret.expose().to_string())
            .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
        match set.await {
            Ok(_) => {
                info!(url = %webhook.url, "Telegram webhook set");
                break;
            }
            Err(e) => {
                warn!(error = %e, "setWebhook failed; trying again");
                if !stop.sleep(Duration::from_secs(2)).await {
                    return Ok(());
                }
            }
        }
    }
    super::commands::register(&tg).await;
    Ok(())
}
