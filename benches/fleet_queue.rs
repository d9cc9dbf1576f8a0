//! The inbox queue on PostgreSQL (`fleet.coordination`): how long a queued
//! item waits until its agent has claimed it (LISTEN/NOTIFY wake-ups), the
//! same from a file dropped into a drop-box (imported, then claimed), and
//! the sustained rate of three agents' queues at once.
//!
//! `cargo bench --bench fleet_queue` (env: `QUEUE_BENCH_ITEMS`, default
//! 10000; `QUEUE_BENCH_DROPS`, default 2000; `QUEUE_BENCH_THROUGHPUT`, items
//! per agent, default 3000). The server is `$SWITCHYARD_BENCH_POSTGRES_URL`,
//! else a throwaway cluster started with `scripts/postgres-cluster`.
//!
//! Latency is measured from `enqueue` returning (the item is committed and
//! visible) to `claim` returning in the agent's loop, in an open loop: items
//! arrive every 0.5–2.5 ms at random, so the claimer is usually asleep on
//! its LISTEN when one arrives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;
use sqlx::Connection;
use switchyard::coord::queue::{self, POLL_FALLBACK, SharedQueue};
use switchyard::coord::shared_db::CoordDb;
use switchyard::coord::{Outcome, drop_item};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what}: n={} median {} p90 {} p99 {} max {}",
        samples.len(),
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.9)),
        ms(percentile(&samples, 0.99)),
        ms(*samples.last().unwrap()),
    );
}

/// A server URL, and the cluster directory when this bench started one.
fn server() -> (String, Option<tempfile::TempDir>) {
    if let Ok(url) = std::env::var("SWITCHYARD_BENCH_POSTGRES_URL") {
        return (url, None);
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/postgres-cluster"
    ))
    .arg("start")
    .arg(dir.path())
    .output()
    .expect("scripts/postgres-cluster runs (Debian's postgresql package)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Some(dir),
    )
}

async fn fresh_database(base: &str) -> String {
    let name = format!("sy_bench_{:08x}", rand::random::<u32>());
    let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}

fn body(i: usize) -> String {
    json!({"kind": "event", "category": "system", "severity": "info", "source": "bench", "title": format!("item {i}")}).to_string()
}

/// The agent's loop: claim, finish, sleep on LISTEN when empty; records
/// when each id was claimed, until `n` were.
async fn claimer(queue: SharedQueue, n: usize, claimed: Arc<Mutex<HashMap<String, Instant>>>) {
    let mut waker = queue.listen().await;
    let mut got = 0;
    while got < n {
        match queue.claim().await.unwrap() {
            Some(c) => {
                claimed.lock().unwrap().insert(c.id.clone(), Instant::now());
                got += 1;
                c.finish(Outcome::Done(json!({}))).await.unwrap();
            }
            None => match &mut waker {
                Some(w) => w.wait(POLL_FALLBACK).await,
                None => tokio::time::sleep(POLL_FALLBACK).await,
            },
        }
    }
}

/// Per item: visible → claimed.
fn waits(
    visible: &HashMap<String, Instant>,
    claimed: &Mutex<HashMap<String, Instant>>,
) -> Vec<Duration> {
    let claimed = claimed.lock().unwrap();
    visible
        .iter()
        .map(|(id, at)| claimed[id].saturating_duration_since(*at))
        .collect()
}

fn main() {
    let items = env_usize("QUEUE_BENCH_ITEMS", 10_000);
    let drops = env_usize("QUEUE_BENCH_DROPS", 2_000);
    let per_agent = env_usize("QUEUE_BENCH_THROUGHPUT", 3_000);
    let (base, cluster) = server();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = fresh_database(&base).await;
        let db = CoordDb::open(&url).unwrap();

        // 1. Queued → claimed.
        let queue = SharedQueue::new(db.clone(), "latency", Duration::from_secs(60));
        let claimed = Arc::new(Mutex::new(HashMap::new()));
        let agent = tokio::spawn(claimer(queue, items, claimed.clone()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut visible = HashMap::new();
        for i in 0..items {
            let id = format!("q{i}");
            queue::enqueue(db.pool(), "latency", &id, &body(i), &id, None)
                .await
                .unwrap();
            visible.insert(id, Instant::now());
            let gap = rand::rng().random_range(500..2500);
            tokio::time::sleep(Duration::from_micros(gap)).await;
        }
        agent.await.unwrap();
        let samples = waits(&visible, &claimed);
        report("queued -> claimed (LISTEN/NOTIFY)", samples);

        // 2. A file in a drop-box → imported → claimed.
        let workspace = tempfile::tempdir().unwrap();
        let (stop_handle, stop) = switchyard::shutdown::ShutdownHandle::pair();
        let importer = tokio::spawn(switchyard::coord::dropbox::run(
            db.clone(),
            workspace.path().to_path_buf(),
            vec!["dropped".into()],
            stop,
        ));
        let queue = SharedQueue::new(db.clone(), "dropped", Duration::from_secs(60));
        let claimed = Arc::new(Mutex::new(HashMap::new()));
        let agent = tokio::spawn(claimer(queue, drops, claimed.clone()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut visible = HashMap::new();
        for i in 0..drops {
            let id = format!("f{i}");
            let item: serde_json::Value = serde_json::from_str(&body(i)).unwrap();
            drop_item(workspace.path(), "dropped", &id, &item).unwrap();
            visible.insert(id, Instant::now());
            let gap = rand::rng().random_range(500..2500);
            tokio::time::sleep(Duration::from_micros(gap)).await;
        }
        agent.await.unwrap();
        let samples = waits(&visible, &claimed);
        report("drop-box file -> claimed (import, queue, claim)", samples);
        stop_handle.stop();
        importer.await.unwrap().unwrap();

        // 3. Three agents' queues at once, producers as fast as they go.
        let started = Instant::now();
        let mut all = tokio::task::JoinSet::new();
        for a in 0..3 {
            let agent = format!("agent{a}");
            let queue = SharedQueue::new(db.clone(), &agent, Duration::from_secs(60));
            all.spawn(claimer(
                queue,
                per_agent,
                Arc::new(Mutex::new(HashMap::new())),
            ));
            let db = db.clone();
            all.spawn(async move {
                for i in 0..per_agent {
                    let id = format!("t{i}");
                    queue::enqueue(
                        db.pool(),
                        &agent,
                        &id,
                        &body(i),
                        &format!("{agent}-{id}"),
                        None,
                    )
                    .await
                    .unwrap();
                }
            });
        }
        while let Some(r) = all.join_next().await {
            r.unwrap();
        }
        let elapsed = started.elapsed();
        let total = 3 * per_agent;
        println!(
            "three agents: {total} items queued and claimed in {:.2} s: {:.0} items/s",
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64()
        );
    });
    if let Some(dir) = cluster {
        let _ = std::process::Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/postgres-cluster"
        ))
        .arg("stop")
        .arg(dir.path())
        .status();
    }
}
