//! Inbox latency: how long an item that appears in an agent's inbox waits
//! until the agent has claimed it, with file-system notifications and with
//! the polling fallback; and the sustained rate of one agent's inbox.
//!
//! `cargo bench --bench inbox_latency` (env: `INBOX_BENCH_ITEMS`, default 10000;
//! `INBOX_BENCH_THROUGHPUT`, default 2000).
//!
//! Latency is measured from the producer's rename (the moment the item
//! becomes visible) to the claim returning, in an open loop: items arrive
//! every 0.5–2.5 ms at random, unsynchronised with the poll. The producer's
//! own durable write (`drop_item`: two fsyncs) is measured apart, since it
//! is the producer's cost and depends only on the disk.

use std::fs;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;
use switchyard::coord::{Inbox, Outcome, WatchBackend, WatchMode, WatchOptions, drop_item};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn item(i: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({ "kind": "event", "event_id": format!("evt_20261121_101500_{:03}", i % 1000),
        "category": "system", "severity": "info", "source": "bench", "title": format!("item {i}") }))
    .unwrap()
}

/// Drops `n` items at random spacing and returns, per item, rename → claimed.
fn latency(options: WatchOptions, n: usize) -> (WatchBackend, Vec<Duration>) {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(dir.path(), "bench").unwrap();
    let (tx, rx) = mpsc::channel::<(usize, Instant)>();
    let consumer_inbox = inbox.clone();
    let (backend_tx, backend_rx) = mpsc::channel();
    let consumer = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut watcher = consumer_inbox.watch(options).unwrap();
            backend_tx.send(watcher.backend()).unwrap();
            let mut got = 0;
            while got < n {
                let path = watcher.next().await;
                if let Ok(Some(claimed)) = consumer_inbox.claim(&path) {
                    let at = Instant::now();
                    let i: usize = claimed.id.trim_start_matches('b').parse().unwrap();
                    tx.send((i, at)).unwrap();
                    got += 1;
                    // Left in running/: finishing (fsyncs) is not part of drop → claimed.
                    std::mem::forget(claimed);
                }
            }
        })
    });
    let backend = backend_rx.recv().unwrap();
    let mut rng = rand::rng();
    let mut visible = vec![Instant::now(); n];
    let inbox_dir = inbox.inbox_dir().to_path_buf();
    for (i, slot) in visible.iter_mut().enumerate() {
        let tmp = inbox_dir.join(format!(".b{i:05}.json.tmp"));
        fs::write(&tmp, item(i)).unwrap();
        *slot = Instant::now();
        fs::rename(&tmp, inbox_dir.join(format!("b{i:05}.json"))).unwrap();
        std::thread::sleep(Duration::from_micros(rng.random_range(500..2500)));
    }
    consumer.join().unwrap();
    let mut lat: Vec<Duration> = rx
        .try_iter()
        .map(|(i, at)| at.saturating_duration_since(visible[i]))
        .collect();
    assert_eq!(lat.len(), n);
    lat.sort();
    (backend, lat)
}

/// `n` items waiting at once: claimed, parsed and finished (durably) by one agent.
fn throughput(n: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(dir.path(), "bench").unwrap();
    for i in 0..n {
        let tmp = inbox.inbox_dir().join(format!(".b{i:05}.json.tmp"));
        fs::write(&tmp, item(i)).unwrap();
        fs::rename(&tmp, inbox.inbox_dir().join(format!("b{i:05}.json"))).unwrap();
    }
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        for path in inbox.ready().unwrap() {
            if let Some(c) = inbox.claim(&path).unwrap() {
                let kind = c.item().unwrap().kind();
                c.finish(Outcome::Done(json!({ "kind": kind.as_str() })))
                    .unwrap();
                done += 1;
            }
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn durable_drop_cost(ws: &Path, n: usize) -> Duration {
    let mut costs: Vec<Duration> = (0..n)
        .map(|i| {
            let start = Instant::now();
            drop_item(
                ws,
                "bench",
                &format!("d{i:05}"),
                &json!({ "kind": "chat", "text": "hi" }),
            )
            .unwrap();
            start.elapsed()
        })
        .collect();
    costs.sort();
    percentile(&costs, 0.5)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let n = env_usize("INBOX_BENCH_ITEMS", 10_000);
    let t = env_usize("INBOX_BENCH_THROUGHPUT", 2_000);
    println!("inbox drop → claimed, {n} items arriving every 0.5–2.5 ms (open loop)");
    println!(
        "{:<28} {:>10} {:>12} {:>12} {:>12}",
        "mode", "backend", "median", "p99", "max"
    );
    for (label, options) in [
        (
            "notify (rescan 5 s)",
            WatchOptions {
                mode: WatchMode::Notify,
                poll_interval: Duration::from_millis(100),
                rescan_interval: Duration::from_secs(5),
            },
        ),
        (
            "polling fallback (100 ms)",
            WatchOptions {
                mode: WatchMode::Poll,
                poll_interval: Duration::from_millis(100),
                rescan_interval: Duration::from_secs(5),
            },
        ),
    ] {
        let (backend, lat) = latency(options, n);
        println!(
            "{label:<28} {:>10} {:>12} {:>12} {:>12}",
            format!("{backend:?}"),
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            ms(*lat.last().unwrap())
        );
    }
    for (label, secs) in [
        ("seed 004 orchestrator (poll 5 s)", 5.0),
        ("seed 002 worker-poll (poll 60 s)", 60.0),
    ] {
        // A poll every T seconds: a uniform wait, median T/2, p99 0.99 T.
        println!(
            "{label:<40} median ≈ {:>6.1} s, p99 ≈ {:>6.1} s (analytic)",
            secs / 2.0,
            secs * 0.99
        );
    }
    let dir = tempfile::tempdir().unwrap();
    println!(
        "producer's durable drop_item (write, fsync, rename, fsync dir): median {}",
        ms(durable_drop_cost(dir.path(), 200))
    );
    println!(
        "sustained: {t} waiting items claimed, parsed, finished durably: {:.0} items/s",
        throughput(t)
    );
}
