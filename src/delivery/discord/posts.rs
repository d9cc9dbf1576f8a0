//! The Discord sink's other writers and uploads: plain messages to a channel
//! or thread (task threads, conversations), threads started from a message,
//! files uploaded as `multipart/form-data` (`payload_json` + `files[n]`),
//! attachments people posted fetched from Discord's CDN only, and the
//! proxied request path they share (the limiter, the learned buckets, 429s).

use std::sync::Arc;
use std::time::Duration;

use serenity::builder::{CreateAllowedMentions, CreateMessage, CreateThread};
use serenity::http::{Http, LightMethod, Request, Route};
use serenity::model::channel::{AutoArchiveDuration, ChannelType, Nonce};
use serenity::model::id::{ChannelId, MessageId};

use super::super::discord_limiter::{GLOBAL_LANE, channel_lane};
use super::super::limiter::Rule;
use super::super::render;
use super::super::sink::{SendError, SendErrorKind};
use super::{DiscordSink, attachment, classify_reqwest, classify_serenity, header_f64, id_of};
use crate::files::FileData;

/// Task threads (one per task, see `crate::discord::threads`): a plain message
/// to a configured channel or to a thread by id, and a thread started from a
/// message. Same limiter, same 429 handling as the outbox's sends.
impl DiscordSink {
    /// A `multipart/form-data` message through the proxy, in Discord's
    /// documented shape: `payload_json` (the message, with `attachments`
    /// listing each file's id and name) and one `files[n]` part per file.
    pub(super) fn upload_request(
        &self,
        route: Route<'_>,
        message: &CreateMessage,
        files: &[&FileData],
    ) -> Result<reqwest::RequestBuilder, SendError> {
        let rejected = |what: &str, e: &dyn std::fmt::Display| {
            SendError::new(
                SendErrorKind::Rejected,
                format!("cannot build the upload ({what}): {e}"),
            )
        };
        let mut payload = serde_json::to_value(message).map_err(|e| rejected("payload", &e))?;
        payload["attachments"] = files
            .iter()
            .enumerate()
            .map(|(i, f)| serde_json::json!({"id": i, "filename": f.name}))
            .collect();
        let mut form = reqwest::multipart::Form::new().text("payload_json", payload.to_string());
        for (i, f) in files.iter().enumerate() {
            let part = reqwest::multipart::Part::bytes(f.bytes.to_vec())
                .file_name(f.name.clone())
                .mime_str(&f.content_type)
                .map_err(|e| rejected("content type", &e))?;
            form = form.part(format!("files[{i}]"), part);
        }
        let proxy = self.http.proxy.as_deref().unwrap_or("https://discord.com");
        let url = route
            .path()
            .replace("https://discord.com", proxy.trim_end_matches('/'));
        Ok(self
            .client
            .post(url)
            .header(reqwest::header::AUTHORIZATION, self.http.token())
            .header(reqwest::header::USER_AGENT, serenity::constants::USER_AGENT)
            .multipart(form))
    }

    /// The HTTP client this sink sends with (for the other writers that
    /// share its limiter).
    pub fn http(&self) -> Arc<Http> {
        self.http.clone()
    }

    /// The channel id of a configured `discord:<alias>` (bot token needed).
    pub fn channel_id(&self, alias: &str) -> Option<u64> {
        self.channels.get(alias).map(|c| c.get())
    }

    /// Post `text` as a plain message to a channel or thread; returns the message id.
    pub async fn post_text(&self, channel: u64, text: &str) -> Result<u64, SendError> {
        self.post_text_once(channel, text, None).await
    }

    /// As [`DiscordSink::post_text`]; with a `nonce`, Discord's
    /// `enforce_nonce` makes a repeat (after a crash) return the message
    /// posted the first time instead of posting again.
    pub async fn post_text_once(
        &self,
        channel: u64,
        text: &str,
        nonce: Option<String>,
    ) -> Result<u64, SendError> {
        self.post_files_once(channel, text, &[], nonce).await
    }

    /// Start a public thread from `message` in `channel`; returns the thread's id.
    pub async fn start_thread(
        &self,
        channel: u64,
        message: u64,
        name: &str,
    ) -> Result<u64, SendError> {
        let (channel, message) = (ChannelId::new(channel), MessageId::new(message));
        let name: String = name.chars().take(100).collect();
        let builder = CreateThread::new(name)
            .kind(ChannelType::PublicThread)
            .auto_archive_duration(AutoArchiveDuration::OneDay);
        if !self.proxied {
            return channel
                .create_thread_from_message(&self.http, message, builder)
                .await
                .map(|c| c.id.get())
                .map_err(classify_serenity);
        }
        let v = self
            .proxied_post(
                Route::ChannelMessageThreads {
                    channel_id: channel,
                    message_id: message,
                },
                format!("discord:threads:{channel}"),
                &builder,
            )
            .await?;
        Ok(id_of(&v))
    }

    /// Download an attachment a person posted, from Discord's CDN only
    /// (or the proxy's origin), at most `max_bytes`.
    pub async fn fetch_attachment(&self, url: &str, max_bytes: u64) -> Result<Vec<u8>, String> {
        let parsed =
            url::Url::parse(url).map_err(|_| "the attachment's URL is not a URL".to_string())?;
        if !self.file_origins.contains(&parsed.origin()) {
            return Err(format!(
                "the attachment is on {}, not on Discord's file host: not fetched",
                parsed.host_str().unwrap_or("an unknown host")
            ));
        }
        super::super::http::fetch_bounded(&self.downloads, url, max_bytes).await
    }

    /// A POST through a proxy: wait for the limiter, learn the bucket, map 429.
    async fn proxied_post(
        &self,
        route: Route<'_>,
        lane: String,
        body: &impl serde::Serialize,
    ) -> Result<serde_json::Value, SendError> {
        let body = serde_json::to_vec(body).map_err(|e| {
            SendError::new(
                SendErrorKind::Rejected,
                format!("cannot serialise the request: {e}"),
            )
        })?;
        let request = Request::new(route, LightMethod::Post)
            .body(Some(body))
            .build(&self.client, self.http.token(), self.http.proxy.as_deref())
            .map_err(|e| {
                SendError::new(
                    SendErrorKind::Rejected,
                    format!("cannot build the request: {e}"),
                )
            })?;
        self.proxied_send(lane, request).await
    }

    /// Send a built request through the proxy: wait for the limiter, learn
    /// the bucket, map 429; the answer's JSON on success.
    async fn proxied_send(
        &self,
        lane: String,
        request: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, SendError> {
        let rules = vec![
            Rule::Window {
                lane: GLOBAL_LANE.into(),
                limit: self.options.global_per_second,
                window: Duration::from_secs(1) + self.options.margin,
            },
            Rule::Learned { lane: lane.clone() },
        ];
        self.limiter.acquire(&rules).await;
        let response = request.send().await.map_err(|e| classify_reqwest(&e))?;
        self.learn(&lane, response.headers());
        let status = response.status();
        let retry_after_header = header_f64(response.headers(), "retry-after");
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(serde_json::from_str(&text).unwrap_or_default());
        }
        Err(self.refused(&lane, status, retry_after_header, &text))
    }

    /// Post `text` with `files` (none: a plain JSON post) to a channel or
    /// thread; with a `nonce`, a repeat returns the first post.
    pub async fn post_files_once(
        &self,
        channel: u64,
        text: &str,
        files: &[&FileData],
        nonce: Option<String>,
    ) -> Result<u64, SendError> {
        let channel = ChannelId::new(channel);
        let mut message = CreateMessage::new()
            .content(render::truncate(text, 2000))
            .allowed_mentions(CreateAllowedMentions::new());
        if let Some(n) = nonce {
            message = message.nonce(Nonce::String(n)).enforce_nonce(true);
        }
        let route = Route::ChannelMessages {
            channel_id: channel,
        };
        match (self.proxied, files.is_empty()) {
            (false, true) => self
                .http
                .send_message(channel, Vec::new(), &message)
                .await
                .map(|m| m.id.get())
                .map_err(classify_serenity),
            (false, false) => {
                let message = message.add_files(files.iter().map(|f| attachment(f)));
                channel
                    .send_message(&*self.http, message)
                    .await
                    .map(|m| m.id.get())
                    .map_err(classify_serenity)
            }
            (true, true) => Ok(id_of(
                &self
                    .proxied_post(route, channel_lane(channel), &message)
                    .await?,
            )),
            (true, false) => {
                let request = self.upload_request(route, &message, files)?;
                Ok(id_of(
                    &self.proxied_send(channel_lane(channel), request).await?,
                ))
            }
        }
    }
}
