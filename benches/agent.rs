//! Agent benchmarks (issue 2): a real `switchyard run` process against the
//! in-process sandbox.
//!
//! - intake latency: an inbox file dropped (renamed into place) → the event
//!   durably stored (its `done/<id>.result.json` is written after the SQLite
//!   commit), one file at a time, over N files (default 10,000;
//!   `SWITCHYARD_BENCH_FILES`);
//! - resident memory of an idle agent connected to the sandbox (VmRSS and the
//!   high-water mark VmHWM from /proc).
//!
//! Run: `cargo bench --bench agent` (release) or `cargo bench --profile dev --bench agent`.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let files: usize = std::env::var("SWITCHYARD_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The bench measures intake, not Discord's pacing: unlimited channel buckets.
        let mut opts = common::sandbox_options();
        opts.discord_rate.channel_messages = switchyard_sandbox::Rate::new(1_000_000, Duration::from_secs(1));
        opts.discord_rate.global = switchyard_sandbox::Rate::new(1_000_000, Duration::from_secs(1));
        let agents = ["manager", "tech-lead", "opsclaw"];
        let mut fleet = common::Fleet::with_sandbox(&agents, "", opts).await;
        for a in agents {
            fleet.spawn_agent(a).await;
        }
        let pid = fleet.agents[0].child.id();

        // A three-agent fleet, each its own process, idle and connected (Discord
        // gateway, Telegram polling on the manager, outbox, inbox watcher).
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut total = 0;
        for a in &fleet.agents {
            let (rss, hwm) = rss_kib(a.child.id());
            total += rss;
            println!("idle {:<10} VmRSS {:.1} MiB (high-water {:.1} MiB)", a.name, rss as f64 / 1024.0, hwm as f64 / 1024.0);
        }
        println!("idle three-agent fleet: {:.1} MiB in all", total as f64 / 1024.0);

        let done = fleet.agent_dir("manager").join("done");
        let mut lat = Vec::with_capacity(files);
        let started = Instant::now();
        for i in 0..files {
            let id = format!("evt_bench_{i:06}");
            let item = common::event(&id, "subagent_result", "info", &format!("bench {i}"));
            fleet.drop("manager", &id, &item);
            let t0 = Instant::now();
            let result = done.join(format!("{id}.result.json"));
            while !result.exists() {
                std::thread::sleep(Duration::from_micros(50));
                assert!(t0.elapsed() < Duration::from_secs(30), "item {id} not stored within 30 s");
            }
            lat.push(t0.elapsed());
        }
        let total = started.elapsed();
        lat.sort();
        println!(
            "intake (inbox drop → event stored), {files} files one at a time: median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {:.0} items/s sequential",
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.9).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
            lat.last().unwrap().as_secs_f64() * 1e3,
            files as f64 / total.as_secs_f64()
        );
        let (rss, hwm) = rss_kib(pid);
        println!("after the run: VmRSS {:.1} MiB (high-water {:.1} MiB)", rss as f64 / 1024.0, hwm as f64 / 1024.0);
    });
}
