//! The Discord sink: serenity's `Http` posting embeds to channels
//! (`POST /channels/{id}/messages`) and to channel webhooks.
//!
//! Against discord.com serenity's own rate limiter does the work. Against
//! any other `api_base` (the sandbox, a REST proxy) serenity's limiter must
//! be off (it ignores the proxy, INTEGRATION-NOTES §3), so this sink limits
//! itself: 50 requests/s globally and per-channel buckets learned from the
//! `X-RateLimit-*` headers. To see those headers and the 429 body, the
//! request is built by serenity (`Request::build`: route, auth, proxy) and
//! executed on the same reqwest client the `Http` uses. serenity types stop
//! in this file.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serenity::builder::{
    Builder as _, CreateAllowedMentions, CreateAttachment, CreateEmbed, CreateEmbedFooter,
    CreateMessage, ExecuteWebhook,
};
use serenity::http::{Http, HttpBuilder, HttpError, LightMethod, Request, Route};
use serenity::model::Timestamp;
use serenity::model::channel::{Message, Nonce};
use serenity::model::id::{ChannelId, WebhookId};
use switchyard_routing::{Destination, Platform};

pub use super::discord_limiter::DiscordOptions;

mod posts;
use super::discord_limiter::{CHANNEL_BUCKET_RESET, DiscordLimiter, GLOBAL_LANE, channel_lane};
use super::http::describe_reqwest;
use super::limiter::{RateLimiter, Rule};
use super::render;
use super::sink::{ChatSink, OutgoingMessage, SendError, SendErrorKind, Sent};
use crate::config::{DiscordSettings, Secret};
use crate::files::FileData;

struct WebhookTarget {
    id: WebhookId,
    token: Secret,
}

/// Delivers `discord:<alias>` destinations to the configured channels and webhooks.
pub struct DiscordSink {
    http: Arc<Http>,
    client: reqwest::Client,
    proxied: bool,
    /// Where attachments people post may be fetched from: Discord's CDN,
    /// or, against a proxy or the sandbox, the proxy's own origin.
    file_origins: Vec<url::Origin>,
    downloads: reqwest::Client,
    channels: BTreeMap<String, ChannelId>,
    webhooks: BTreeMap<String, WebhookTarget>,
    limiter: Arc<RateLimiter>,
    options: DiscordOptions,
}

impl DiscordSink {
    /// The limiter this sink sends through, for the agent's other writers.
    pub fn limits(&self, stats: Arc<super::stats::DeliveryStats>) -> DiscordLimiter {
        DiscordLimiter {
            limiter: self.limiter.clone(),
            proxied: self.proxied,
            options: self.options.clone(),
            stats,
        }
    }

    /// A sink for the configured channels (needs the bot token) and webhooks
    /// (their URLs are read from the environment variables the file names).
    pub fn new(
        settings: &DiscordSettings,
        token: Option<Secret>,
        options: DiscordOptions,
    ) -> anyhow::Result<Self> {
        let mut urls = BTreeMap::new();
        for (alias, env) in &settings.webhooks {
            let url = std::env::var(env).with_context(|| {
                format!("the webhook for discord:{alias} is read from the environment variable {env}, which is not set")
            })?;
            urls.insert(alias.clone(), Secret::new(url));
        }
        Self::with_webhook_urls(settings, token, urls, options)
    }

    /// As [`DiscordSink::new`], with the webhook URLs (alias = URL) given
    /// instead of read from the environment.
    pub fn with_webhook_urls(
        settings: &DiscordSettings,
        token: Option<Secret>,
        webhook_urls: BTreeMap<String, Secret>,
        options: DiscordOptions,
    ) -> anyhow::Result<Self> {
        let mut webhooks = BTreeMap::new();
        for (alias, url) in webhook_urls {
            let target = parse_webhook_url(url.expose()).with_context(|| {
                format!("the webhook URL for discord:{alias} is not a Discord webhook URL")
            })?;
            webhooks.insert(alias, target);
        }
        if token.is_none() && webhooks.is_empty() {
            bail!("no Discord bot token and no webhooks: there is no way to post to Discord");
        }
        let client = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(options.request_timeout.min(Duration::from_secs(10)))
            .build()
            .context("cannot build the HTTP client")?;
        let proxied = settings.is_proxied();
        // Without a bot token only webhooks are used; they need no Authorization.
        let mut builder =
            HttpBuilder::new(token.as_ref().map_or("", Secret::expose)).client(client.clone());
        if proxied {
            builder = builder
                .proxy(settings.proxy_origin())
                .ratelimiter_disabled(true);
        }
        let channels = if token.is_some() {
            settings
                .channels
                .iter()
                .map(|(a, id)| (a.clone(), ChannelId::new(*id)))
                .collect()
        } else {
            BTreeMap::new()
        };
        let file_origins = if proxied {
            url::Url::parse(&settings.proxy_origin())
                .map(|u| vec![u.origin()])
                .unwrap_or_default()
        } else {
            ["https://cdn.discordapp.com", "https://media.discordapp.net"]
                .iter()
                .filter_map(|u| url::Url::parse(u).ok())
                .map(|u| u.origin())
                .collect()
        };
        Ok(DiscordSink {
            http: Arc::new(builder.build()),
            client,
            proxied,
            file_origins,
            downloads: super::http::download_client(),
            channels,
            webhooks,
            limiter: Arc::new(RateLimiter::after_quiet(
                CHANNEL_BUCKET_RESET,
                options.quiet_for,
            )),
            options,
        })
    }

    fn rules(&self, dest: &Destination) -> Vec<Rule> {
        if !self.proxied {
            return Vec::new();
        }
        let global = Rule::Window {
            lane: GLOBAL_LANE.into(),
            limit: self.options.global_per_second,
            window: Duration::from_secs(1) + self.options.margin,
        };
        if let Some(channel) = self.channels.get(&dest.alias) {
            vec![
                global,
                Rule::Learned {
                    lane: channel_lane(*channel),
                },
            ]
        } else if let Some(hook) = self.webhooks.get(&dest.alias) {
            let (limit, window) = self.options.webhook_limit;
            vec![
                global,
                Rule::Window {
                    lane: format!("discord:webhook:{}", hook.id),
                    limit,
                    window: window + self.options.margin,
                },
            ]
        } else {
            vec![global]
        }
    }

    async fn send_to_channel(
        &self,
        channel: ChannelId,
        m: &OutgoingMessage,
    ) -> Result<Sent, SendError> {
        let embed = embed(m);
        let message = CreateMessage::new()
            .embed(embed)
            .nonce(Nonce::String(m.nonce.clone()))
            .enforce_nonce(true)
            .allowed_mentions(CreateAllowedMentions::new());
        let files: Vec<&FileData> = m.sent_files().collect();
        if !self.proxied {
            let sent = if files.is_empty() {
                self.http.send_message(channel, Vec::new(), &message).await
            } else {
                // The builder numbers the files and lists them in `attachments`.
                let message = message.add_files(files.iter().map(|f| attachment(f)));
                channel.send_message(&*self.http, message).await
            };
            return match sent {
                Ok(msg) => Ok(Sent {
                    message_id: msg.id.to_string(),
                    parts_sent: 1,
                }),
                Err(e) => Err(classify_serenity(e)),
            };
        }
        let route = Route::ChannelMessages {
            channel_id: channel,
        };
        let request = if files.is_empty() {
            let body = serde_json::to_vec(&message).map_err(|e| {
                SendError::new(
                    SendErrorKind::Rejected,
                    format!("cannot serialise the message: {e}"),
                )
            })?;
            Request::new(route, LightMethod::Post)
                .body(Some(body))
                .build(&self.client, self.http.token(), self.http.proxy.as_deref())
                .map_err(|e| {
                    SendError::new(
                        SendErrorKind::Rejected,
                        format!("cannot build the request: {e}"),
                    )
                })?
        } else {
            self.upload_request(route, &message, &files)?
        };
        let response = request.send().await.map_err(|e| classify_reqwest(&e))?;
        let lane = channel_lane(channel);
        self.learn(&lane, response.headers());
        let status = response.status();
        if status.is_success() {
            let id = match response.json::<Message>().await {
                Ok(msg) => msg.id.to_string(),
                // Accepted (2xx) even if the body did not arrive whole.
                Err(_) => "unknown".to_string(),
            };
            return Ok(Sent {
                message_id: id,
                parts_sent: 1,
            });
        }
        let retry_after_header = header_f64(response.headers(), "retry-after");
        let text = response.text().await.unwrap_or_default();
        Err(self.refused(&lane, status, retry_after_header, &text))
    }

    /// What a refused answer means: a 429 blocks its lane (or every lane,
    /// when global) for its `retry_after`; anything else is classified.
    fn refused(
        &self,
        lane: &str,
        status: reqwest::StatusCode,
        retry_after_header: Option<f64>,
        text: &str,
    ) -> SendError {
        if status.as_u16() != 429 {
            return classify_status(status, text);
        }
        #[derive(serde::Deserialize)]
        struct Limited {
            retry_after: Option<f64>,
            #[serde(default)]
            global: bool,
        }
        let body: Option<Limited> = serde_json::from_str(text).ok();
        let secs = body
            .as_ref()
            .and_then(|b| b.retry_after)
            .filter(|s| s.is_finite())
            .or(retry_after_header)
            .unwrap_or(1.0);
        let global = body.is_some_and(|b| b.global);
        let retry_after = Duration::from_secs_f64(secs.clamp(0.0, 3600.0));
        self.limiter
            .block(if global { GLOBAL_LANE } else { lane }, retry_after);
        SendError::new(
            SendErrorKind::RateLimited {
                retry_after,
                global,
            },
            format!(
                "429 from Discord ({}), retry after {secs:.3}s",
                if global { "global" } else { "route" }
            ),
        )
    }

    async fn send_to_webhook(
        &self,
        hook: &WebhookTarget,
        m: &OutgoingMessage,
    ) -> Result<Sent, SendError> {
        let payload = ExecuteWebhook::new()
            .embed(embed(m))
            .allowed_mentions(CreateAllowedMentions::new());
        let sent = if m.sent_files().next().is_none() {
            self.http
                .execute_webhook(
                    hook.id,
                    None,
                    hook.token.expose(),
                    true,
                    Vec::new(),
                    &payload,
                )
                .await
        } else {
            // The builder numbers the files and lists them in `attachments`.
            payload
                .add_files(m.sent_files().map(attachment))
                .execute(&*self.http, (hook.id, hook.token.expose(), true))
                .await
        };
        match sent {
            Ok(msg) => Ok(Sent {
                message_id: msg.map_or_else(|| "unknown".into(), |m| m.id.to_string()),
                parts_sent: 1,
            }),
            Err(e) => {
                let e = classify_serenity(e);
                if let SendErrorKind::RateLimited { retry_after, .. } = e.kind {
                    self.limiter
                        .block(&format!("discord:webhook:{}", hook.id), retry_after);
                }
                Err(e)
            }
        }
    }

    fn learn(&self, lane: &str, headers: &reqwest::header::HeaderMap) {
        let remaining = headers
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok());
        let reset_after = header_f64(headers, "x-ratelimit-reset-after");
        if let (Some(remaining), Some(secs)) = (remaining, reset_after) {
            self.limiter.learn(
                lane,
                remaining,
                Duration::from_secs_f64(secs.clamp(0.0, 3600.0)),
            );
        } else {
            // An answer without the bucket (a 500, a proxy's page): the probe is
            // over all the same; the next request may go.
            self.limiter.answered(lane);
        }
    }
}

/// A snowflake `id` of a Discord object (0 when absent: the caller treats it as unknown).
fn id_of(v: &serde_json::Value) -> u64 {
    v["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn header_f64(headers: &reqwest::header::HeaderMap, name: &str) -> Option<f64> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        // "NaN" and "inf" parse, and would panic in Duration::from_secs_f64.
        .filter(|v| v.is_finite())
}

fn attachment(f: &FileData) -> CreateAttachment {
    CreateAttachment::bytes(f.bytes.to_vec(), f.name.clone())
}

fn embed(m: &OutgoingMessage) -> CreateEmbed {
    let body = m.body_with_notes();
    let text = render::discord_embed(m.severity, &m.title, &body, &m.footer());
    let mut embed = CreateEmbed::new()
        .title(text.title)
        .colour(text.colour)
        .footer(CreateEmbedFooter::new(text.footer));
    if !text.description.is_empty() {
        embed = embed.description(text.description);
    }
    if let Ok(ts) = Timestamp::from_unix_timestamp(m.occurred_at.timestamp()) {
        embed = embed.timestamp(ts);
    }
    // The first image shows in the embed itself (Discord's `attachment://NAME`).
    if let Some(image) = m.sent_files().find(|f| f.is_image()) {
        embed = embed.image(format!("attachment://{}", image.name));
    }
    embed
}

/// `https://discord.com/api/webhooks/{id}/{token}` (any host: a proxy or the sandbox).
fn parse_webhook_url(url: &str) -> anyhow::Result<WebhookTarget> {
    let url = url::Url::parse(url.trim()).context("not a URL")?;
    let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    let at = segments
        .iter()
        .position(|s| *s == "webhooks")
        .context("the path has no /webhooks/ part")?;
    let id = segments
        .get(at + 1)
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|id| *id > 0)
        .context("the webhook id is missing or not a number")?;
    let token = segments
        .get(at + 2)
        .filter(|t| !t.is_empty())
        .context("the webhook token is missing")?;
    Ok(WebhookTarget {
        id: WebhookId::new(id),
        token: Secret::new(*token),
    })
}

/// What an HTTP status means for the message.
fn classify_status(status: reqwest::StatusCode, body: &str) -> SendError {
    let detail = render::truncate(body.trim(), 300);
    let message = format!("HTTP {status} from Discord: {detail}");
    let kind = match status.as_u16() {
        429 => SendErrorKind::RateLimited {
            retry_after: Duration::from_secs(1),
            global: false,
        },
        // The gateway gave up waiting for Discord: it may have posted.
        504 => SendErrorKind::Unknown,
        500..=599 => SendErrorKind::Transient,
        _ => SendErrorKind::Rejected,
    };
    SendError::new(kind, message)
}

/// What a transport error means for the message. The URL is left out of
/// the text: webhook URLs carry a token.
pub(crate) fn classify_reqwest(e: &reqwest::Error) -> SendError {
    let kind = if e.is_connect() {
        SendErrorKind::Transient
    } else if e.is_builder() {
        SendErrorKind::Rejected
    } else {
        SendErrorKind::Unknown
    };
    SendError::new(kind, describe_reqwest(e))
}

fn classify_serenity(e: serenity::Error) -> SendError {
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => {
            classify_status(r.status_code, &r.error.message)
        }
        serenity::Error::Http(HttpError::Request(e)) => classify_reqwest(&e),
        other => SendError::new(
            SendErrorKind::Unknown,
            format!("Discord request failed: {other}"),
        ),
    }
}

impl ChatSink for DiscordSink {
    fn platform(&self) -> Platform {
        Platform::Discord
    }

    fn knows(&self, dest: &Destination) -> bool {
        self.channels.contains_key(&dest.alias) || self.webhooks.contains_key(&dest.alias)
    }

    fn resend_is_safe(&self, dest: &Destination) -> bool {
        // Channel messages carry a nonce with enforce_nonce; webhooks have no such key.
        self.channels.contains_key(&dest.alias)
    }

    fn drain_rate(&self, dest: &Destination) -> f64 {
        if self.webhooks.contains_key(&dest.alias) && !self.channels.contains_key(&dest.alias) {
            let (limit, window) = self.options.webhook_limit;
            return limit as f64 / window.as_secs_f64().max(0.001);
        }
        // A channel's bucket, as Discord documents it: 5 messages per 5 s.
        1.0
    }

    fn ready<'a>(&'a self, dest: &'a Destination) -> BoxFuture<'a, ()> {
        async move { self.limiter.acquire(&self.rules(dest)).await }.boxed()
    }

    fn send<'a>(
        &'a self,
        dest: &'a Destination,
        m: &'a OutgoingMessage,
    ) -> BoxFuture<'a, Result<Sent, SendError>> {
        async move {
            if let Some(channel) = self.channels.get(&dest.alias) {
                self.send_to_channel(*channel, m).await
            } else if let Some(hook) = self.webhooks.get(&dest.alias) {
                self.send_to_webhook(hook, m).await
            } else {
                Err(SendError::new(
                    SendErrorKind::Rejected,
                    format!("{dest} is not a configured channel or webhook"),
                ))
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_headers_that_are_not_finite_numbers_are_ignored() {
        // "NaN" and "inf" parse as f64 and would panic in Duration::from_secs_f64.
        let mut h = reqwest::header::HeaderMap::new();
        for (value, expected) in [
            ("NaN", None),
            ("inf", None),
            ("-inf", None),
            ("1.5", Some(1.5)),
            ("x", None),
        ] {
            h.insert("retry-after", value.parse().unwrap());
            assert_eq!(header_f64(&h, "retry-after"), expected, "{value}");
        }
    }

    #[test]
    fn webhook_urls_parse_from_any_host() {
        let t = parse_webhook_url("http://127.0.0.1:9/api/v10/webhooks/123456789012345678/abcDEF")
            .unwrap();
        assert_eq!(t.id.get(), 123456789012345678);
        assert_eq!(t.token.expose(), "abcDEF");
        assert!(parse_webhook_url("https://discord.com/api/webhooks/x/y").is_err());
        assert!(parse_webhook_url("https://discord.com/api/channels/1").is_err());
    }

    #[test]
    fn statuses_classify() {
        assert_eq!(
            classify_status(reqwest::StatusCode::BAD_GATEWAY, "").kind,
            SendErrorKind::Transient
        );
        assert_eq!(
            classify_status(reqwest::StatusCode::GATEWAY_TIMEOUT, "").kind,
            SendErrorKind::Unknown
        );
        assert_eq!(
            classify_status(reqwest::StatusCode::BAD_REQUEST, "{}").kind,
            SendErrorKind::Rejected
        );
    }
}
