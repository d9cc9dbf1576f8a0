//! Durable delivery: the outbox worker that takes pending rows from the
//! store and sends them through the platform sinks, within the platforms'
//! rate limits, with retries (exponential backoff with jitter), coalescing of
//! ambient backlogs, and crash recovery.
//!
//! Each destination is a lane worked by one task at a time, so messages to
//! one channel go out in order: the head of a lane blocks what is behind it,
//! also while it waits for a retry. Different destinations proceed in
//! parallel. Every state change is written before the next step, so a crash
//! at any point loses nothing (see [`crate::store::outbox`]).

pub mod discord;
pub mod discord_limiter;
pub mod http;
pub mod limiter;
pub mod render;
pub mod sink;
pub mod stats;
pub mod telegram;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use rand::Rng;
use switchyard_routing::{Destination, Platform};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::config::{Config, DeliverySettings, Secret};
use crate::shutdown::Shutdown;
use crate::store::outbox::is_ambient;
use crate::store::{DeliveryState, Store};

pub use discord::{DiscordOptions, DiscordSink};
pub use discord_limiter::{ChannelBucket, DiscordLimiter};
pub use sink::{ChatSink, OutgoingMessage, SendError, SendErrorKind, Sent, Sinks};
pub use stats::DeliveryStats;
pub use telegram::{TelegramLimiter, TelegramLimits, TelegramOptions, TelegramSink};

/// Most rows merged into one coalesced summary.
const MAX_COALESCE: u32 = 500;
/// Without a wake-up, look for due work this often (new rows from another
/// process, retries whose time came).
const POLL: Duration = Duration::from_secs(1);

/// How long since the agent last sent to each platform, by its outbox
/// (`None`: not known). A sink's limiter starting after a restart or a
/// takeover counts that time toward its caution.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuietFor {
    pub discord: Option<Duration>,
    pub telegram: Option<Duration>,
}

impl Sinks {
    /// The sinks an agent's configuration and tokens allow: Discord when the
    /// agent has a Discord token or the fleet has webhooks, Telegram when it
    /// has a Telegram token.
    pub fn from_config(
        cfg: &Config,
        discord_token: Option<Secret>,
        telegram_token: Option<Secret>,
    ) -> anyhow::Result<Sinks> {
        Ok(Self::from_config_with_platforms(
            cfg,
            discord_token,
            telegram_token,
            QuietFor::default(),
        )?
        .sinks)
    }

    /// As [`Sinks::from_config`], also handing back each platform's sink
    /// itself (task threads, the status board, approval prompts send through
    /// them, sharing their rate limiters).
    /// `quiet`: how long since the agent last sent to each platform.
    pub fn from_config_with_platforms(
        cfg: &Config,
        discord_token: Option<Secret>,
        telegram_token: Option<Secret>,
        quiet: QuietFor,
    ) -> anyhow::Result<PlatformSinks> {
        let mut sinks = Sinks::new();
        let mut discord = None;
        if let Some(settings) = &cfg.discord
            && (discord_token.is_some() || !settings.webhooks.is_empty())
        {
            let sink = Arc::new(
                DiscordSink::new(
                    settings,
                    discord_token,
                    DiscordOptions {
                        quiet_for: quiet.discord,
                        ..DiscordOptions::default()
                    },
                )
                .context("cannot set up the Discord sink")?,
            );
            discord = Some(sink.clone());
            sinks = sinks.with(sink);
        }
        let mut telegram = None;
        if let (Some(settings), Some(token)) = (&cfg.telegram, telegram_token) {
            let sink = Arc::new(
                TelegramSink::new(
                    settings,
                    token,
                    TelegramOptions {
                        quiet_for: quiet.telegram,
                        ..TelegramOptions::default()
                    },
                )
                .context("cannot set up the Telegram sink")?,
            );
            telegram = Some(sink.clone());
            sinks = sinks.with(sink);
        }
        Ok(PlatformSinks {
            sinks,
            discord,
            telegram,
        })
    }
}

/// The outbox's sinks, and each platform's sink for the agent's other senders.
pub struct PlatformSinks {
    pub sinks: Sinks,
    pub discord: Option<Arc<DiscordSink>>,
    pub telegram: Option<Arc<TelegramSink>>,
}

/// Wakes the outbox after the runtime recorded new deliveries. Cheap to clone.
#[derive(Clone, Debug)]
pub struct OutboxNotify(Arc<Notify>);

impl OutboxNotify {
    /// Look for new work now (a wake-up while the outbox is busy is kept, not lost).
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// The outbox worker. Build it, take a [`OutboxNotify`] and the stats, then `run` it.
pub struct Outbox {
    ctx: Arc<Ctx>,
    notify: Arc<Notify>,
}

struct Ctx {
    store: Store,
    sinks: Sinks,
    settings: DeliverySettings,
    stats: Arc<DeliveryStats>,
}

impl Outbox {
    pub fn new(store: Store, sinks: Sinks, settings: DeliverySettings) -> Outbox {
        Outbox {
            ctx: Arc::new(Ctx {
                store,
                sinks,
                settings,
                stats: Arc::new(DeliveryStats::default()),
            }),
            notify: Arc::new(Notify::new()),
        }
    }

    pub fn notifier(&self) -> OutboxNotify {
        OutboxNotify(self.notify.clone())
    }

    /// The counters this outbox updates (register them on `/metrics`).
    pub fn stats(&self) -> Arc<DeliveryStats> {
        self.ctx.stats.clone()
    }

    /// Work the outbox until `shutdown` turns true (or its sender is
    /// dropped). First recovers rows a crash left in `sending`. On shutdown
    /// it takes no new work, lets in-flight sends finish and returns; the
    /// caller bounds that with its own deadline (a row cut off mid-send is
    /// recovered at the next start).
    pub async fn run(self, mut shutdown: Shutdown) -> anyhow::Result<()> {
        let ctx = self.ctx;
        let recovered = ctx
            .store
            .recover_sending(Utc::now(), |d| {
                ctx.sinks
                    .for_platform(d.platform)
                    .is_some_and(|s| s.resend_is_safe(d))
            })
            .await?;
        if !recovered.resent.is_empty() || !recovered.ambiguous.is_empty() {
            tracing::warn!(
                resent = recovered.resent.len(),
                ambiguous = recovered.ambiguous.len(),
                "recovered deliveries left in sending by an earlier stop"
            );
        }
        let mut lanes: JoinSet<anyhow::Result<()>> = JoinSet::new();
        let mut lane_of: HashMap<tokio::task::Id, Destination> = HashMap::new();
        let mut active: HashSet<Destination> = HashSet::new();
        let mut rescan = true;
        loop {
            if shutdown.is_stopped() {
                break;
            }
            if rescan {
                match ctx.store.pending_destinations().await {
                    Ok(dests) => {
                        for dest in dests {
                            if active.insert(dest.clone()) {
                                let handle =
                                    lanes.spawn(lane(ctx.clone(), dest.clone(), shutdown.clone()));
                                lane_of.insert(handle.id(), dest);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "cannot read the outbox; retrying")
                    }
                }
                rescan = false;
            }
            tokio::select! {
                _ = self.notify.notified() => rescan = true,
                Some(done) = lanes.join_next_with_id(), if !lanes.is_empty() => {
                    let id = match &done { Ok((id, _)) => *id, Err(e) => e.id() };
                    if let Some(dest) = lane_of.remove(&id) {
                        active.remove(&dest);
                        match done {
                            Ok((_, Err(e))) => tracing::error!(destination = %dest, error = %format!("{e:#}"), "delivery lane stopped; it restarts at the next scan"),
                            Err(e) if e.is_panic() => tracing::error!(destination = %dest, "delivery lane panicked; it restarts at the next scan"),
                            _ => {}
                        }
                    }
                    rescan = true;
                }
                _ = shutdown.stopped() => {}
                _ = tokio::time::sleep(POLL) => rescan = true,
            }
        }
        tracing::info!(
            lanes = lanes.len(),
            "outbox stopping: letting in-flight sends finish"
        );
        while lanes.join_next().await.is_some() {}
        Ok(())
    }
}

/// The delay before retry number `attempts` (1-based): exponential, capped,
/// with jitter in [half, full] so that lanes recovering from one outage do
/// not all come back in the same instant.
pub fn backoff(settings: &DeliverySettings, attempts: u32) -> Duration {
    let exp = settings
        .backoff_base
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
    let capped = exp.min(settings.backoff_max);
    let jitter = rand::rng().random_range(0.5..=1.0);
    capped.mul_f64(jitter)
}

/// Whether `dest`'s pending messages are more than `coalesce_after` and
/// would take longer than `coalesce_backlog` to drain at the sink's rate.
async fn backed_up(ctx: &Ctx, sink: &dyn ChatSink, dest: &Destination) -> anyhow::Result<bool> {
    let pending = ctx.store.pending_count(dest).await?;
    let pending = usize::try_from(pending).unwrap_or(usize::MAX);
    let drain = pending as f64 / sink.drain_rate(dest).max(f64::MIN_POSITIVE);
    Ok(
        pending > ctx.settings.coalesce_after
            && drain > ctx.settings.coalesce_backlog.as_secs_f64(),
    )
}

/// Work one destination's queue, head first, until it is empty or shutdown.
async fn lane(ctx: Arc<Ctx>, dest: Destination, mut shutdown: Shutdown) -> anyhow::Result<()> {
    let sink = ctx.sinks.for_platform(dest.platform).cloned();
    loop {
        if shutdown.is_stopped() {
            return Ok(());
        }
        let queue = ctx.store.pending_queue(&dest, 1).await?;
        let Some(head) = queue.first() else {
            return Ok(());
        };

        let wait = (head.next_attempt_at - Utc::now())
            .to_std()
            .unwrap_or_default();
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.stopped() => return Ok(()),
            }
            continue;
        }

        let head = head.clone();
        let Some(sink) = sink.as_ref().filter(|s| s.knows(&dest)) else {
            if ctx.store.claim(&head.id, Utc::now()).await? {
                let why = format!(
                    "no way to deliver to {dest}: this agent has no {} sink for that alias (check the token and the [{}] section of the configuration)",
                    dest.platform, dest.platform
                );
                fail(&ctx, &dest, &head, &why).await?;
                tracing::warn!(destination = %dest, delivery = %head.id, "delivery failed: no sink");
            }
            continue;
        };

        tokio::select! {
            _ = sink.ready(&dest) => {}
            _ = shutdown.stopped() => return Ok(()),
        }
        // A backlog of ambient messages at the head that would take longer
        // than `coalesce_backlog` to drain goes out as summaries that name
        // every message they stand for. Decided once the sink is ready, not
        // before: what piled up while the lane waited belongs in them too.
        // The summary takes the head's place and goes out on the send slot the
        // lane just waited for.
        let mut head = head;
        if is_ambient(&head) && backed_up(&ctx, sink.as_ref(), &dest).await? {
            let backlog = ctx.store.pending_queue(&dest, MAX_COALESCE).await?;
            let run = backlog.iter().take_while(|r| is_ambient(r)).count();
            if run > 1 {
                let rows = &backlog[..run];
                let mut start = 0;
                // Pages in order: each takes the seq of its first row, so the
                // summaries go out in the order of what they stand for.
                for (n, title, body, severity) in render::coalesced_summaries(rows) {
                    let chunk = &rows[start..start + n];
                    start += n;
                    let id = ctx
                        .store
                        .coalesce(chunk, &title, &body, severity, Utc::now())
                        .await?;
                    tracing::info!(destination = %dest, merged = chunk.len(), summary = %id, "coalesced a backlog of ambient messages");
                }
                ctx.stats.on_coalesced(dest.platform, rows.len() as u64);
                match ctx.store.pending_queue(&dest, 1).await?.into_iter().next() {
                    Some(summary) => head = summary,
                    None => continue,
                }
            }
        }
        if !ctx.store.claim(&head.id, Utc::now()).await? {
            continue;
        }
        let mut message = OutgoingMessage::from_row(&head);
        if head.files > 0 {
            match ctx.store.delivery_files(&head.id).await {
                Ok(files) => message.files = files,
                Err(e) => {
                    // Kept bytes that cannot be read back are not guessed at:
                    // the delivery fails with the reason, and nothing goes out.
                    let why = format!("{e:#}");
                    fail(&ctx, &dest, &head, &why).await?;
                    tracing::error!(destination = %dest, delivery = %head.id, error = %why, "delivery failed: its files cannot be read back");
                    continue;
                }
            }
        }
        let result = sink.send(&dest, &message).await;
        let now = Utc::now();
        match result {
            Ok(sent) => {
                ctx.store
                    .mark_sent(&head.id, &sent.message_id, sent.parts_sent, now)
                    .await?;
                let latency = (now - head.created_at).num_milliseconds() as f64 / 1000.0;
                ctx.stats.on_sent(dest.platform, latency);
                tracing::debug!(destination = %dest, delivery = %head.id, message_id = %sent.message_id, "sent");
            }
            Err(e) => on_error(&ctx, &dest, sink.as_ref(), &head, e, now).await?,
        }
    }
}

/// End a claimed row as failed with `why`, and count it.
async fn fail(
    ctx: &Ctx,
    dest: &Destination,
    head: &crate::store::DeliveryRow,
    why: &str,
) -> anyhow::Result<()> {
    ctx.store
        .mark_terminal(
            &head.id,
            DeliveryState::Failed,
            head.attempts,
            head.parts_sent,
            why,
            Utc::now(),
        )
        .await?;
    ctx.stats.on_failed(dest.platform);
    Ok(())
}

async fn on_error(
    ctx: &Ctx,
    dest: &Destination,
    sink: &dyn ChatSink,
    head: &crate::store::DeliveryRow,
    e: SendError,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    let parts = head.parts_sent.max(e.parts_sent);
    let platform: Platform = dest.platform;
    match &e.kind {
        SendErrorKind::RateLimited {
            retry_after,
            global,
        } => {
            ctx.stats.on_429(platform);
            let next = now + chrono::Duration::from_std(*retry_after).unwrap_or_default();
            ctx.store
                .reschedule(&head.id, head.attempts, parts, next, &e.message, now)
                .await?;
            tracing::info!(destination = %dest, delivery = %head.id, retry_after_ms = retry_after.as_millis() as u64, global, "rate limited (429)");
        }
        SendErrorKind::Transient => retry_or_fail(ctx, dest, head, parts, &e.message, now).await?,
        SendErrorKind::Unknown if sink.resend_is_safe(dest) => {
            retry_or_fail(ctx, dest, head, parts, &e.message, now).await?
        }
        SendErrorKind::Unknown => {
            let why = format!(
                "outcome unknown, not resent (it could post twice): {}",
                e.message
            );
            ctx.store
                .mark_terminal(
                    &head.id,
                    DeliveryState::Ambiguous,
                    head.attempts + 1,
                    parts,
                    &why,
                    now,
                )
                .await?;
            ctx.stats.on_ambiguous(platform);
            tracing::warn!(destination = %dest, delivery = %head.id, error = %e.message, "delivery ambiguous: reported, not replayed");
        }
        SendErrorKind::Rejected => {
            let why = format!("refused by {platform}: {}", e.message);
            ctx.store
                .mark_terminal(
                    &head.id,
                    DeliveryState::Failed,
                    head.attempts + 1,
                    parts,
                    &why,
                    now,
                )
                .await?;
            ctx.stats.on_failed(platform);
            tracing::warn!(destination = %dest, delivery = %head.id, error = %e.message, "delivery refused by the platform");
        }
    }
    Ok(())
}

/// Count one more attempt: schedule a retry with backoff, or give up when
/// the budget is spent.
async fn retry_or_fail(
    ctx: &Ctx,
    dest: &Destination,
    head: &crate::store::DeliveryRow,
    parts: u32,
    error: &str,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    let attempts = head.attempts + 1;
    if attempts >= ctx.settings.max_attempts {
        let why = format!("gave up after {attempts} attempts; last error: {error}");
        ctx.store
            .mark_terminal(&head.id, DeliveryState::Failed, attempts, parts, &why, now)
            .await?;
        ctx.stats.on_failed(dest.platform);
        tracing::warn!(destination = %dest, delivery = %head.id, attempts, error, "delivery failed");
    } else {
        let delay = backoff(&ctx.settings, attempts);
        let next = now + chrono::Duration::from_std(delay).unwrap_or_default();
        ctx.store
            .reschedule(&head.id, attempts, parts, next, error, now)
            .await?;
        ctx.stats.on_retry(dest.platform);
        tracing::info!(destination = %dest, delivery = %head.id, attempts, retry_in_ms = delay.as_millis() as u64, error, "send failed; will retry");
    }
    Ok(())
}
