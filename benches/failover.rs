//! Failover of an agent to its hot standby on another host
//! (`fleet.coordination`): `kill -9` of the holder → the standby's first
//! heartbeat as the agent, and → the first event posted by the new holder
//! (an event queued right after the kill). Ten rounds; the hosts swap roles
//! each round. Both hosts are workspaces of their own on this machine, with
//! the agent's state and the coordination in one PostgreSQL database.
//!
//! `cargo bench --bench failover` (env: `FAILOVER_ROUNDS`, default 10). The
//! server is `$SWITCHYARD_TEST_POSTGRES_URL`, else a throwaway cluster.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Fleet, fresh_database};
use switchyard::coord::StatusFile;

fn holder_pid(status: &StatusFile) -> Option<u64> {
    status
        .read()
        .ok()?
        .agents
        .get("manager")
        .map(|h| u64::from(h.pid))
}

async fn until(limit: Duration, mut probe: impl FnMut() -> bool) -> Instant {
    let deadline = Instant::now() + limit;
    loop {
        if probe() {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn posted(fleet: &Fleet, text: &str) -> bool {
    common::discord_texts(&fleet.state(), "briefings")
        .iter()
        .any(|t| t.contains(text))
}

fn main() {
    let rounds: usize = std::env::var("FAILOVER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    common::multi_thread().block_on(async {
        let url = fresh_database().await.expect("a PostgreSQL server");
        let hosts = [
            Fleet::new(&["manager"], "").await,
            Fleet::new(&["manager"], "").await,
        ];
        let status = StatusFile::open_shared(&hosts[0].workspace(), &url).unwrap();
        let db = switchyard::coord::shared_db::CoordDb::open(&url).unwrap();
        let platforms = &hosts[0];
        let mut holder = hosts[0]
            .shared("manager", &url)
            .host("host-0")
            .platforms(platforms)
            .database(&url)
            .spawn();
        let pid = holder.pid();
        until(Duration::from_secs(60), || holder_pid(&status) == Some(pid)).await;
        let (mut to_heartbeat, mut to_post) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let standby_host = &hosts[(round + 1) % 2];
            let standby = standby_host
                .shared("manager", &url)
                .host(if round % 2 == 0 { "host-1" } else { "host-0" })
                .platforms(platforms)
                .database(&url)
                .spawn();
            let standby_pid = standby.pid();
            // Let the standby start and register as one.
            tokio::time::sleep(Duration::from_secs(3)).await;
            holder.child.kill().expect("kill -9");
            let killed = Instant::now();
            holder.child.wait().ok();
            let title = format!("after failover {round}");
            let item = common::event(&format!("fo-{round}"), "briefing", "info", &title);
            let id = format!("fo-{round}");
            switchyard::coord::queue::enqueue(
                db.pool(),
                "manager",
                &id,
                &item.to_string(),
                &id,
                None,
            )
            .await
            .unwrap();
            let beat = until(Duration::from_secs(60), || {
                holder_pid(&status) == Some(standby_pid)
            })
            .await;
            let post = until(Duration::from_secs(60), || posted(platforms, &title)).await;
            to_heartbeat.push(beat - killed);
            to_post.push(post - killed);
            println!(
                "round {round}: heartbeat after {:.2} s, first post after {:.2} s",
                (beat - killed).as_secs_f64(),
                (post - killed).as_secs_f64()
            );
            holder = standby;
        }
        drop(holder);
        for (what, mut v) in [
            ("kill -9 -> new holder's heartbeat", to_heartbeat),
            ("kill -9 -> first post by the new holder", to_post),
        ] {
            v.sort();
            println!(
                "{what}: median {:.2} s, max {:.2} s over {} rounds",
                v[v.len() / 2].as_secs_f64(),
                v.last().unwrap().as_secs_f64(),
                v.len()
            );
        }
    });
}
