//! Burst benchmark: 2,000 messages over 10 Discord channels through the real
//! outbox, the real serenity client and the sandbox with Discord's limits
//! (5 messages per 5 s per channel, 50 requests/s global). Prints the
//! achieved rate as a fraction of the allowed rate and the 429s provoked.
//!
//! `cargo bench --bench delivery_burst` (about 3.5 minutes at Discord's real
//! limits). `SWITCHYARD_BENCH_SCALE=N` divides the per-channel window by N
//! and multiplies the global limit by N: the same ratio, N times faster.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use switchyard::config::{DeliverySettings, DiscordSettings, Secret};
use switchyard::delivery::{DiscordOptions, DiscordSink, Outbox, Sinks};
use switchyard::store::{DeliveryState, NewDelivery, NewDeliveryState, Store};
use switchyard_commands::AccessList;
use switchyard_routing::{Destination, EventDraft};
use switchyard_sandbox::{self as sandbox, DiscordLimits, Rate, SandboxOptions};

const MESSAGES: usize = 2_000;
/// The bot's token; the sandbox is told it exists.
const TOKEN: &str = "MTAxMjM0.bench.token";
const CHANNELS: u64 = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let scale: u32 = std::env::var("SWITCHYARD_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1);
    let per_channel = Rate::new(5, Duration::from_secs(5) / scale);
    let global = Rate::per_second(50 * scale);
    let channels: Vec<(u64, String)> = (0..CHANNELS)
        .map(|i| (1_000_000_000_000_000_000 + i, format!("c{i}")))
        .collect();
    let h = sandbox::start(SandboxOptions {
        discord_channels: channels.clone(),
        discord_rate: DiscordLimits {
            channel_messages: per_channel,
            global,
            ..DiscordLimits::default()
        },
        discord_tokens: vec![TOKEN.into()],
        ..SandboxOptions::default()
    })
    .await?;

    let dir = tempfile::tempdir()?;
    let store = Store::open(&format!("sqlite://{}/bench/state.db", dir.path().display())).await?;
    let t_insert = Instant::now();
    for i in 0..MESSAGES {
        let (_, alias) = &channels[i % channels.len()];
        let ev = EventDraft {
            event_id: Some(format!("evt_burst_{i}")),
            category: Some("alert".into()),
            title: Some(format!("burst {i}")),
            body: Some("x".repeat(200)),
            ..Default::default()
        }
        .validate(
            Utc::now(),
            switchyard_routing::EventId::generate(Utc::now(), 0),
        )
        .map_err(anyhow::Error::msg)?;
        let d = NewDelivery {
            destination: Destination::discord(alias.clone()),
            rule: "bench".into(),
            state: NewDeliveryState::Pending,
            files: Vec::new(),
        };
        store.record_event(&ev, &[d], Utc::now()).await?;
    }
    let insert = t_insert.elapsed();

    let settings = DiscordSettings {
        api_base: h.discord_api_base(),
        guild_id: None,
        channels: channels.iter().map(|(id, a)| (a.clone(), *id)).collect(),
        webhooks: Default::default(),
        access: AccessList::default(),
    };
    let sink = DiscordSink::new(
        &settings,
        Some(Secret::new(TOKEN)),
        DiscordOptions::default(),
    )?;
    // Coalescing off: this measures raw throughput against the limits.
    let delivery = DeliverySettings {
        max_attempts: 8,
        backoff_base: Duration::from_millis(200),
        backoff_max: Duration::from_secs(5),
        coalesce_after: usize::MAX,
        coalesce_backlog: std::time::Duration::MAX,
    };
    let outbox = Outbox::new(store.clone(), Sinks::new().with(Arc::new(sink)), delivery);
    let stats = outbox.stats();
    let (stop, rx) = switchyard::shutdown::ShutdownHandle::pair();
    let start = Instant::now();
    let task = tokio::spawn(outbox.run(rx));
    loop {
        let c = store.delivery_counts().await?;
        if c[&DeliveryState::Pending] + c[&DeliveryState::Sending] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed();
    stop.stop();
    task.await??;

    let state = h.state();
    let posted: usize = state
        .discord
        .channels
        .iter()
        .map(|c| c.messages.len())
        .sum();
    let per_ch = MESSAGES.div_ceil(CHANNELS as usize);
    // Buckets start full: the last of `per_ch` messages may go at (windows - 1) * window.
    let windows = per_ch.div_ceil(per_channel.count as usize);
    let ideal = per_channel.per * (windows as u32 - 1);
    let allowed_rate = (CHANNELS as f64 * f64::from(per_channel.count)
        / per_channel.per.as_secs_f64())
    .min(f64::from(global.count));
    let achieved = MESSAGES as f64 / elapsed.as_secs_f64();
    println!(
        "delivery_burst: {MESSAGES} messages over {CHANNELS} channels, limits 5 per {:?} per channel, {}/s global (scale {scale})",
        per_channel.per, global.count
    );
    println!(
        "  enqueue (2,000 record_event transactions): {:.2} s",
        insert.as_secs_f64()
    );
    println!(
        "  drained in {:.2} s; posted {posted}; sent {}",
        elapsed.as_secs_f64(),
        stats.sent(switchyard_routing::Platform::Discord)
    );
    println!(
        "  achieved {achieved:.2} msg/s vs allowed {allowed_rate:.2} msg/s: fraction {:.3}",
        achieved / allowed_rate
    );
    println!(
        "  fraction of the ideal schedule (buckets start full, ideal {:.1} s): {:.3}",
        ideal.as_secs_f64(),
        ideal.as_secs_f64() / elapsed.as_secs_f64()
    );
    println!(
        "  429s provoked: {} (sandbox), {} (counted by the outbox)",
        state.stats.discord.rate_limited,
        stats.rate_limited_429(switchyard_routing::Platform::Discord)
    );
    println!(
        "  rejected by the sandbox: {}",
        state.stats.discord.rejected
    );
    h.shutdown().await;
    Ok(())
}
