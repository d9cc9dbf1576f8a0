//! Conversations, measured: a real `switchyard run` process (serenity inside)
//! against the sandbox's gateway and REST, answering through the real
//! streaming client from the sandbox's OpenAI-compatible stand-in.
//!
//! 1. mention → first visible text in the thread, over N mentions a second
//!    apart (each opens a thread) with an instant answer: median, p90, p99,
//!    max; then 20 back to back, where the channel's rate bucket shows.
//! 2. a 3,000-character streamed answer: the edits made and the 429s provoked.
//! 3. 20 mentions at once with a model that takes 5 s: the time until the
//!    last is answered.
//! 4. the agent's resident memory (VmRSS) before, during and after 100
//!    conversations.
//!
//! `cargo bench --bench conversations` (`SWITCHYARD_BENCH_CALLS=N` mentions
//! in part 1, a second apart; default 60).

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{DISCORD_CHANNELS, Fleet};
use switchyard_sandbox::DiscordUserMessage;

const BOT: u64 = 100;
const OPERATOR: u64 = 200;

fn chat() -> u64 {
    DISCORD_CHANNELS
        .iter()
        .find(|(a, _)| *a == "chat")
        .map(|(_, id)| *id)
        .unwrap()
}

async fn fleet(extra: &str) -> Fleet {
    let mut fleet = Fleet::new(&["manager"], "").await;
    let config = format!(
        "responder = \"local\"\n\n[discord.access]\nread = [\"*\"]\noperate = [\"user:{OPERATOR}\"]\n\n\
         [responders.local]\nkind = \"openai\"\nbase_url = \"http://{}/openai/v1\"\nmodel = \"bench\"\n\n{extra}",
        fleet.sandbox.addr()
    );
    std::fs::write(
        &fleet.config_file,
        common::fleet_toml(&["manager"], &config),
    )
    .unwrap();
    fleet.spawn_agent("manager").await;
    common::wait_for(Duration::from_secs(60), "the bot to connect", || {
        let g = fleet.state().gateway;
        (!g.connections.is_empty() && !g.registered.is_empty()).then_some(())
    })
    .await;
    fleet
}

fn mention(fleet: &Fleet, text: &str) -> u64 {
    fleet
        .sandbox
        .discord_user_message(DiscordUserMessage {
            user_id: OPERATOR,
            channel_id: chat(),
            content: format!("<@{BOT}> {text}"),
            mentions: vec![BOT],
            ..DiscordUserMessage::default()
        })
        .expect("the bot is connected")
}

fn first_text(fleet: &Fleet, thread: u64) -> Option<switchyard_sandbox::DiscordMessage> {
    fleet
        .state()
        .discord
        .threads
        .iter()
        .find(|t| t.id == thread)
        .and_then(|t| t.messages.first().cloned())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let calls: usize = std::env::var("SWITCHYARD_BENCH_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);

        // 1. mention → first visible text.
        let f = fleet("").await;
        let pid = f.agents[0].child.id();
        let rss_before = rss_kib(pid);
        // Paced like people (one mention a second and a bit): each opens a
        // thread in #chat, and Discord's channel bucket allows 5 per 5 s.
        let mut lat = Vec::with_capacity(calls);
        for i in 0..calls {
            let t0 = Instant::now();
            let next = t0 + Duration::from_millis(1_050);
            let id = mention(&f, &format!("ping {i}"));
            loop {
                if first_text(&f, id).is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            lat.push(t0.elapsed());
            tokio::time::sleep_until(next.into()).await;
        }
        lat.sort();
        println!(
            "mention → first visible text over {calls} mentions a second apart: median {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            pct(&lat, 0.5).as_secs_f64() * 1e3,
            pct(&lat, 0.9).as_secs_f64() * 1e3,
            pct(&lat, 0.99).as_secs_f64() * 1e3,
            lat.last().unwrap().as_secs_f64() * 1e3
        );

        // 1b. the same, 20 back to back: the channel's bucket is felt.
        let mut burst = Vec::new();
        for i in 0..20 {
            let t0 = Instant::now();
            let id = mention(&f, &format!("burst {i}"));
            while first_text(&f, id).is_none() {
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            burst.push(t0.elapsed());
        }
        burst.sort();
        println!(
            "  20 back to back (each opens a thread; 5 per 5 s per channel): median {:.1} ms, p90 {:.1} ms, max {:.1} ms, {} 429s",
            pct(&burst, 0.5).as_secs_f64() * 1e3,
            pct(&burst, 0.9).as_secs_f64() * 1e3,
            burst.last().unwrap().as_secs_f64() * 1e3,
            f.state().stats.discord.rate_limited
        );

        // 2. a 3,000-character streamed answer.
        let before_429 = f.state().stats.discord.rate_limited;
        let id = mention(&f, "a long one [[sandbox:long=3000]] [[sandbox:chunk_ms=20]]");
        let t0 = Instant::now();
        let pages = loop {
            let pages = f.state().discord.threads.iter().find(|t| t.id == id).map(|t| t.messages.clone()).unwrap_or_default();
            if pages.iter().map(|m| m.content.chars().count()).sum::<usize>() >= 3000 {
                break pages;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let edits: u32 = pages.iter().map(|m| m.edits).sum();
        println!(
            "3,000-character streamed answer: {} messages, {edits} edits, {} 429s, whole in {:.2} s",
            pages.len(),
            f.state().stats.discord.rate_limited - before_429,
            t0.elapsed().as_secs_f64()
        );

        // 4. memory during and after 100 conversations (on top of part 1's).
        let mut peak = rss_before;
        for i in 0..100 {
            let id = mention(&f, &format!("conversation {i} [[sandbox:long=400]]"));
            loop {
                peak = peak.max(rss_kib(pid));
                if first_text(&f, id).is_some_and(|m| m.content.chars().count() >= 400) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!(
            "agent VmRSS: {:.1} MiB before, {:.1} MiB peak during 100 conversations, {:.1} MiB after (debug-free bench build)",
            rss_before as f64 / 1024.0,
            peak as f64 / 1024.0,
            rss_kib(pid) as f64 / 1024.0
        );
        drop(f);

        // 3. 20 at once, 5 s per answer.
        let f = fleet("[conversations]\nmax_concurrent = 20\n").await;
        let t0 = Instant::now();
        let ids: Vec<u64> = (0..20).map(|i| mention(&f, &format!("q{i} [[sandbox:slow=5000]]"))).collect();
        loop {
            let s = f.state();
            if ids.iter().all(|id| s.discord.threads.iter().any(|t| t.id == *id && !t.messages.is_empty())) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!(
            "20 mentions at once, 5 s per answer: the last answered after {:.2} s (one by one: 100 s), {} 429s",
            t0.elapsed().as_secs_f64(),
            f.state().stats.discord.rate_limited
        );
    });
}
