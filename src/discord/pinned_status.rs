//! Messages kept in place: one Discord message per key (a GitHub task's
//! status), posted the first time and edited afterwards, its id stored in the
//! store's `discord_state` under the caller's key so a restarted agent edits
//! the same message. Like the status board, it talks to Discord through
//! serenity's `Http` directly, not the outbox: an edit replaces a message
//! rather than adding one, so queueing, coalescing and retries of the outbox
//! do not apply. serenity types stop in this file.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::Utc;
use poise::serenity_prelude as serenity;
use serenity::{
    ChannelId, CreateAllowedMentions, CreateEmbed, CreateMessage, EditMessage, MessageId,
};
use tracing::{debug, info};

use crate::config::{DiscordSettings, Secret};
use crate::delivery::ChannelBucket;
use crate::store::Store;

/// Discord's limit on an embed description.
const DESCRIPTION_MAX: usize = 4096;

/// Posts or edits kept-in-place messages in the configured channels.
pub struct PinnedMessages {
    http: Arc<serenity::Http>,
    /// The outbox's limiter: these edits share the channels' limits.
    limits: Option<crate::delivery::DiscordLimiter>,
    channels: BTreeMap<String, ChannelId>,
    store: Store,
}

impl std::fmt::Debug for PinnedMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedMessages")
            .field("channels", &self.channels.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What [`PinnedMessages::upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Posted { message_id: u64 },
    Edited { message_id: u64 },
}

impl PinnedMessages {
    /// Needs the bot token: webhooks cannot edit what the bot posted.
    pub fn new(
        settings: &DiscordSettings,
        token: &Secret,
        store: Store,
        limits: Option<crate::delivery::DiscordLimiter>,
    ) -> anyhow::Result<Self> {
        Ok(PinnedMessages {
            http: Arc::new(super::build_http(settings, token)?),
            limits,
            channels: settings
                .channels
                .iter()
                .map(|(a, id)| (a.clone(), ChannelId::new(*id)))
                .collect(),
            store,
        })
    }

    /// Edit the message stored under `key` in channel `alias`, or post it
    /// (and store its id) when there is none or it was deleted.
    pub async fn upsert(
        &self,
        alias: &str,
        key: &str,
        title: &str,
        text: &str,
    ) -> anyhow::Result<Upserted> {
        let channel = *self.channels.get(alias).with_context(|| {
            format!("no Discord channel discord:{alias} in [discord.channels]: add it to keep status messages there")
        })?;
        let embed = CreateEmbed::new()
            .title(crate::delivery::render::truncate(title, 256))
            .description(crate::delivery::render::truncate(text, DESCRIPTION_MAX));
        let stored = self
            .store
            .discord_state(key)
            .await?
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(mid) = stored {
            if let Some(l) = &self.limits {
                l.before_edit(channel.get()).await;
            }
            match channel
                .edit_message(
                    &self.http,
                    MessageId::new(mid),
                    EditMessage::new().embed(embed.clone()),
                )
                .await
            {
                Ok(_) => {
                    debug!(key, message_id = mid, "kept message edited");
                    return Ok(Upserted::Edited { message_id: mid });
                }
                Err(e) if is_unknown_message(&e) => {
                    info!(
                        key,
                        message_id = mid,
                        "the kept message is gone; posting a new one"
                    );
                }
                Err(e) => {
                    if let Some(l) = &self.limits {
                        l.after_error(channel.get(), ChannelBucket::Edit, &e);
                    }
                    return Err(anyhow::Error::new(e))
                        .with_context(|| format!("editing message {mid} in discord:{alias}"));
                }
            }
        }
        if let Some(l) = &self.limits {
            l.before_post(channel.get()).await;
        }
        let posted = channel
            .send_message(
                &self.http,
                CreateMessage::new()
                    .embed(embed)
                    .allowed_mentions(CreateAllowedMentions::new()),
            )
            .await
            .inspect_err(|e| {
                if let Some(l) = &self.limits {
                    l.after_error(channel.get(), ChannelBucket::Post, e);
                }
            })
            .with_context(|| format!("posting to discord:{alias}"))?;
        let mid = posted.id.get();
        self.store
            .set_discord_state(key, &mid.to_string(), Utc::now())
            .await
            .context("storing the kept message's id (a restart would post a new one)")?;
        Ok(Upserted::Posted { message_id: mid })
    }
}

fn is_unknown_message(e: &serenity::Error) -> bool {
    matches!(
        e,
        serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(r))
            if r.status_code.as_u16() == 404
    )
}
