//! The status board: one message in the `system` channel, edited in place
//! with the fleet's status (last heartbeat per agent, queues, deliveries,
//! mutes, kill switch) instead of a new message per heartbeat. Its message id
//! is stored (`discord_state`), so a restarted agent edits the same message;
//! when that message is gone (deleted by someone), a new one is posted.
//!
//! The fleet's first agent runs it (the one that also announces mutes), so
//! several bots do not fight over one board.

use std::sync::Arc;
use std::time::Duration;

use crate::shutdown::Shutdown;
use chrono::Utc;
use poise::serenity_prelude as serenity;
use serenity::{ChannelId, CreateEmbedFooter, CreateMessage, EditMessage, MessageId};
use switchyard_commands::{Fleet, status_reply};
use tracing::{debug, info, warn};

use crate::delivery::{ChannelBucket, DiscordLimiter};
use crate::fleet::AgentFleet;

/// The board's title, also how readers (and tests) recognise it.
pub const BOARD_TITLE: &str = "Fleet status";
/// Never edit more often than this, whatever the heartbeat interval (Discord
/// allows 5 edits per 5 s per channel, shared with other edits).
const MIN_INTERVAL: Duration = Duration::from_secs(1);

fn key(channel: u64) -> String {
    format!("status_board:{channel}")
}

/// Keep the board current until `stop`.
pub async fn run(
    http: Arc<serenity::Http>,
    limits: Option<DiscordLimiter>,
    fleet: AgentFleet,
    channel: u64,
    every: Duration,
    stop: Shutdown,
) {
    let channel_id = ChannelId::new(channel);
    let mut message = match fleet.store().discord_state(&key(channel)).await {
        Ok(v) => v.and_then(|v| v.parse::<u64>().ok()),
        Err(e) => {
            warn!(
                error = format!("{e:#}"),
                "cannot read the status board's message id; posting a new board"
            );
            None
        }
    };
    let mut tick = stop.ticker(every.max(MIN_INTERVAL));
    info!(channel, message_id = ?message, "status board running");
    while tick.tick().await {
        let now = Utc::now();
        let snapshot = match fleet.status(now).await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "the status board could not read the fleet status");
                continue;
            }
        };
        let reply = status_reply(&snapshot, now);
        let embed =
            super::commands::embed(&reply)
                .title(BOARD_TITLE)
                .footer(CreateEmbedFooter::new(format!(
                    "Edited in place · updated {}",
                    now.format("%Y-%m-%d %H:%M:%S UTC")
                )));
        if let Some(mid) = message {
            if let Some(l) = &limits {
                l.before_edit(channel).await;
            }
            match channel_id
                .edit_message(
                    &http,
                    MessageId::new(mid),
                    EditMessage::new().embed(embed.clone()),
                )
                .await
            {
                Ok(_) => {
                    debug!(channel, message_id = mid, "status board updated");
                    continue;
                }
                Err(e) if is_unknown_message(&e) => {
                    info!(
                        channel,
                        message_id = mid,
                        "the status board's message is gone; posting a new one"
                    );
                    message = None;
                }
                Err(e) => {
                    if let Some(l) = &limits {
                        l.after_error(channel, ChannelBucket::Edit, &e);
                    }
                    warn!(channel, error = %e, "the status board was not updated");
                    continue;
                }
            }
        }
        if let Some(l) = &limits {
            l.before_post(channel).await;
        }
        match channel_id
            .send_message(&http, CreateMessage::new().embed(embed))
            .await
        {
            Ok(m) => {
                let mid = m.id.get();
                message = Some(mid);
                if let Err(e) = fleet
                    .store()
                    .set_discord_state(&key(channel), &mid.to_string(), Utc::now())
                    .await
                {
                    warn!(
                        error = format!("{e:#}"),
                        "the status board's message id was not stored; a restart posts a new board"
                    );
                }
                info!(channel, message_id = mid, "status board posted");
            }
            Err(e) => {
                if let Some(l) = &limits {
                    l.after_error(channel, ChannelBucket::Post, &e);
                }
                warn!(channel, error = %e, "the status board was not posted")
            }
        }
    }
}

fn is_unknown_message(e: &serenity::Error) -> bool {
    matches!(
        e,
        serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(r))
            if r.status_code.as_u16() == 404
    )
}
