//! Discord interaction latency: a real `switchyard run` process (serenity +
//! poise) against the sandbox's gateway. The sandbox dispatches
//! `INTERACTION_CREATE` and times the callback it receives, so the number is
//! "interaction sent by Discord → response received by Discord" over
//! 127.0.0.1, the part Discord's 3 s window measures.
//!
//! 1. The median (and p90, p99, max) over 1,000 `/status` calls, small fleet.
//! 2. `/status` on a fleet of 20 agents with 10,000 pending deliveries in the
//!    agent's outbox (alerts, not coalesced): must stay under 3 s.
//!
//! `cargo bench --bench discord_interactions` (`SWITCHYARD_BENCH_CALLS=N` for
//! fewer calls in part 1).

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::Fleet;
use switchyard::coord::{Heartbeat, StatusFile};
use switchyard::store::{NewDelivery, NewDeliveryState, Store};
use switchyard_routing::{Destination, EventDraft};
use switchyard_sandbox::{DiscordUserCommand, InteractionState};

const OPERATOR: u64 = 200;
const ACCESS: &str =
    "\n[discord.access]\nread = [\"user:200\"]\noperate = [\"user:200\"]\nadmin = [\"user:200\"]\n";

async fn status_call(fleet: &Fleet) -> InteractionState {
    let id = fleet
        .sandbox
        .discord_run_command(DiscordUserCommand {
            user_id: OPERATOR,
            command: "status".into(),
            ..DiscordUserCommand::default()
        })
        .expect("the bot is connected");
    loop {
        let s = fleet.sandbox.discord_interaction(id).expect("recorded");
        if s.responses
            .iter()
            .any(|r| r.kind == "callback" || r.status >= 300)
        {
            return s;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

async fn connected(fleet: &Fleet) {
    common::wait_for(Duration::from_secs(60), "the bot to connect", || {
        let g = fleet.state().gateway;
        (!g.connections.is_empty() && !g.registered.is_empty()).then_some(())
    })
    .await;
}

fn micros(s: &InteractionState) -> u64 {
    let r = &s.responses[0];
    assert_eq!(r.kind, "callback", "answered in time: {s:?}");
    assert!(s.text().contains("Fleet status"), "{}", s.text());
    r.after_micros
}

fn report(what: &str, mut v: Vec<u64>) {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize] as f64 / 1000.0;
    println!(
        "{what}: n={} median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        v.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let calls: usize = std::env::var("SWITCHYARD_BENCH_CALLS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000);

        // 1. Median over many /status calls, one agent, empty outbox.
        let mut fleet = Fleet::new(&["manager"], ACCESS).await;
        fleet.spawn_agent("manager").await;
        connected(&fleet).await;
        for _ in 0..20 {
            status_call(&fleet).await; // warm-up
        }
        let mut v = Vec::with_capacity(calls);
        let t = Instant::now();
        for _ in 0..calls {
            v.push(micros(&status_call(&fleet).await));
        }
        let wall = t.elapsed();
        println!("discord_interactions: INTERACTION_CREATE sent → callback received (sandbox clock), 127.0.0.1");
        report("  /status, 1 agent", v);
        println!(
            "  {calls} sequential calls in {:.2} s ({:.0} calls/s)",
            wall.as_secs_f64(),
            calls as f64 / wall.as_secs_f64()
        );
        drop(fleet);

        // 2. 20 agents, 10,000 pending deliveries.
        let names: Vec<String> = (0..20).map(|i| if i == 0 { "manager".to_string() } else { format!("agent-{i:02}") }).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut fleet = Fleet::new(&refs, ACCESS).await;
        let status = StatusFile::open(&fleet.workspace())?;
        for n in &names[1..] {
            status.beat(n, Heartbeat::current(Utc::now()))?;
        }
        let config = switchyard::config::Config::load(&switchyard::config::ConfigSource::File(
            fleet.config_file.clone(),
        ))?;
        let store = Store::open_agent(&config.database_url("manager"), "manager").await?;
        let t = Instant::now();
        for i in 0..10_000 {
            let ev = EventDraft {
                event_id: Some(format!("evt_bench_{i}")),
                category: Some("alert".into()),
                severity: Some("warning".into()),
                title: Some(format!("pending {i}")),
                ..EventDraft::default()
            }
            .validate(Utc::now(), switchyard_routing::EventId::generate(Utc::now(), 0))
            .map_err(anyhow::Error::msg)?;
            let d = NewDelivery {
                destination: Destination::discord("alerts"),
                rule: "bench".into(),
                state: NewDeliveryState::Pending,
                files: Vec::new(),
            };
            store.record_event(&ev, &[d], Utc::now()).await?;
        }
        println!("  (10,000 pending deliveries stored in {:.1} s)", t.elapsed().as_secs_f64());
        drop(store);
        fleet.spawn_agent("manager").await;
        connected(&fleet).await;
        let mut v = Vec::new();
        let mut pending_seen = String::new();
        for _ in 0..50 {
            let s = status_call(&fleet).await;
            pending_seen = s
                .text()
                .lines()
                .find(|l| l.starts_with("Pending deliveries"))
                .unwrap_or("")
                .to_string();
            v.push(micros(&s));
        }
        let max = *v.iter().max().unwrap_or(&0);
        report("  /status, 20 agents, ~10,000 pending deliveries", v);
        println!("  the reply said: {pending_seen}");
        assert!(max < 3_000_000, "over Discord's 3 s window: {max} µs");
        Ok(())
    })
}
