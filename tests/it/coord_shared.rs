//! The fleet's status on PostgreSQL (`fleet.coordination`), as two hosts
//! see it: two workspaces that share nothing on disk, one coordination
//! database. Concurrent changes from both lose nothing; a mute, a kill and
//! a lock made with the CLI on one host hold on the other; an agent on one
//! host beats into the shared status and obeys a kill made on the other.
//! The inbox queue: claimed once by one of racing holders, a lapsed lease
//! back with its attempt counted; a file dropped on one host handled on the
//! other, its result filed beside it; `send` from a host without an agent.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use switchyard::coord::queue::{self, Queued, SharedQueue};
use switchyard::coord::shared_db::CoordDb;
use switchyard::coord::{Outcome, ProcessId, StatusFile};

use crate::common::{Fleet, event, fresh_database, multi_thread, wait_for};

/// The variable that puts a test fleet's coordination on PostgreSQL.
const COORDINATION: &str = "SWITCHYARD__FLEET__COORDINATION";

fn shared(workspace: &Path, url: &str) -> StatusFile {
    StatusFile::open_shared(workspace, url).expect("the coordination database opens")
}

#[test]
fn two_hosts_change_one_status_1000_times_at_once_and_lose_nothing() {
    let Some(url) = multi_thread().block_on(fresh_database()) else {
        return;
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let hosts = [shared(a.path(), &url), shared(b.path(), &url)];
    std::thread::scope(|s| {
        for t in 0..4 {
            let status = hosts[t % 2].clone();
            s.spawn(move || {
                for i in 0..250 {
                    status
                        .acquire(
                            &format!("t{t}-{i}"),
                            &format!("host{}", t % 2),
                            Duration::from_secs(3600),
                            "test",
                        )
                        .expect("a fresh lock is granted");
                }
            });
        }
    });
    for host in &hosts {
        let status = host.read().unwrap();
        assert_eq!(
            status.locks.len(),
            1000,
            "every change is kept, seen from either host"
        );
    }
    // Neither workspace has a status.json: the status is in the database.
    // Each draws STATUS.md for the people on its host.
    for dir in [a.path(), b.path()] {
        assert!(!dir.join("status.json").exists());
        let md = std::fs::read_to_string(dir.join("STATUS.md")).unwrap();
        assert!(md.contains("t3-249") || md.contains("t2-249"), "{md}");
    }
    // A lock held on one host is refused on the other, naming the holder.
    hosts[0]
        .acquire("deploy", "ana", Duration::from_secs(60), "release")
        .unwrap();
    let refused = hosts[1]
        .acquire("deploy", "bo", Duration::from_secs(60), "hotfix")
        .unwrap_err();
    assert!(refused.to_string().contains("held by ana"), "{refused}");
}

#[tokio::test(flavor = "current_thread")]
async fn the_shared_status_is_usable_from_inside_a_runtime() {
    // The CLI and the tests call the blocking API from async code too.
    let Some(url) = fresh_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let status = shared(dir.path(), &url);
    status.kill(None, "test", "drill").unwrap();
    assert!(status.is_killed("anyone").unwrap().is_some());
    assert!(status.resume(None, "test", "over").unwrap());
    assert!(status.read().unwrap().kill.fleet.is_none());
}

/// `switchyard ARGS` on the host of `fleet`, coordinating through `url`.
fn shell(fleet: &Fleet, url: &str, args: &[&str]) -> String {
    let out = cli(fleet, url, args);
    assert!(
        out.status.success(),
        "switchyard {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status_json(fleet: &Fleet, url: &str) -> Value {
    serde_json::from_str(&shell(fleet, url, &["status", "--json"])).expect("status --json is JSON")
}

#[test]
fn an_agent_on_one_host_answers_to_the_cli_on_another() {
    multi_thread().block_on(async {
        let Some(url) = fresh_database().await else {
            return;
        };
        // Host A runs the agent; host B only has the CLI and its own workspace.
        let host_a = Fleet::new(&["manager"], "").await;
        let host_b = Fleet::new(&["manager"], "").await;
        let agent = host_a.shared("manager", &url).spawn();
        let pid = agent.pid();
        wait_for(
            Duration::from_secs(30),
            "the agent's heartbeat, seen from host B",
            || {
                (status_json(&host_b, &url)["agents"]["manager"]["pid"].as_u64() == Some(pid))
                    .then_some(())
            },
        )
        .await;
        assert!(
            !host_a.workspace().join("status.json").exists(),
            "the status is not in A's files"
        );

        // A mute made on B holds for the agent on A: the event is held, not posted.
        shell(
            &host_b,
            &url,
            &["mute", "system", "--for", "1h", "--reason", "maintenance"],
        );
        let mutes: Value =
            serde_json::from_str(&shell(&host_a, &url, &["mutes", "--json"])).unwrap();
        assert_eq!(mutes.as_array().map(Vec::len), Some(1), "{mutes}");
        // The agent sees a mute within its recheck interval.
        tokio::time::sleep(switchyard::coord::mutes::SHARED_RECHECK * 2).await;
        host_a.drop(
            "manager",
            "held-1",
            &event("held-1", "system", "info", "disk at 70%"),
        );
        let held = host_a.wait_result("manager", "done", "held-1").await;
        assert!(held.to_string().contains("held"), "{held}");

        // A kill made on B stops A's agent from taking items; a resume lets it go on.
        shell(
            &host_b,
            &url,
            &["kill", "--agent", "manager", "--reason", "drill"],
        );
        wait_for(
            Duration::from_secs(15),
            "the agent to report killed",
            || (status_json(&host_b, &url)["agents"]["manager"]["state"] == "killed").then_some(()),
        )
        .await;
        host_a.drop(
            "manager",
            "after-kill",
            &event("after-kill", "briefing", "info", "waits"),
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            host_a.result("manager", "done", "after-kill").is_none(),
            "a killed agent takes nothing"
        );
        shell(
            &host_b,
            &url,
            &["resume", "--agent", "manager", "--reason", "over"],
        );
        host_a.wait_result("manager", "done", "after-kill").await;
        drop(agent);
    });
}

/// A queue of `agent` as a second process would hold it.
fn holder(queue: &SharedQueue, n: u32) -> SharedQueue {
    queue.clone().as_holder(ProcessId {
        pid: 4_000_000 + n,
        host: "another-host".into(),
        incarnation: format!("holder-{n}"),
    })
}

#[test]
fn two_holders_race_for_1000_queued_items_and_each_is_claimed_once() {
    multi_thread().block_on(async {
        let Some(url) = fresh_database().await else {
            return;
        };
        let db = CoordDb::open(&url).unwrap();
        for i in 0..1000 {
            let body = serde_json::json!({"kind": "event", "n": i}).to_string();
            let queued = queue::enqueue(
                db.pool(),
                "manager",
                &format!("i{i:04}"),
                &body,
                &format!("d{i}"),
                None,
            )
            .await
            .unwrap();
            assert_eq!(queued, Queued::New);
        }
        // The same drop again, and another drop with an id that waits: neither is queued.
        assert_eq!(
            queue::enqueue(db.pool(), "manager", "i0000", "{}", "d0", None)
                .await
                .unwrap(),
            Queued::Again
        );
        assert_eq!(
            queue::enqueue(db.pool(), "manager", "i0000", "{}", "other", None)
                .await
                .unwrap(),
            Queued::IdWaiting
        );
        let base = SharedQueue::new(db.clone(), "manager", Duration::from_secs(60));
        assert_eq!(base.depth().await.unwrap(), 1000);
        let mut racers = tokio::task::JoinSet::new();
        for n in 0..2 {
            let q = holder(&base, n);
            racers.spawn(async move {
                let mut got = Vec::new();
                while let Some(c) = q.claim().await.unwrap() {
                    assert_eq!(c.attempt, 1);
                    got.push(c.id.clone());
                    c.finish(Outcome::Done(serde_json::json!({"by": n})))
                        .await
                        .unwrap();
                }
                got
            });
        }
        let mut all = Vec::new();
        let mut per_holder = Vec::new();
        while let Some(got) = racers.join_next().await {
            let got = got.unwrap();
            per_holder.push(got.len());
            all.extend(got);
        }
        let unique: std::collections::BTreeSet<&String> = all.iter().collect();
        assert_eq!(
            (all.len(), unique.len()),
            (1000, 1000),
            "each item claimed exactly once"
        );
        assert!(
            per_holder.iter().all(|n| *n > 0),
            "both holders took items: {per_holder:?}"
        );
        assert_eq!(base.depth().await.unwrap(), 0);
        // Finished, the id may be queued again.
        assert_eq!(
            queue::enqueue(db.pool(), "manager", "i0000", "{}", "later", None)
                .await
                .unwrap(),
            Queued::New
        );
    });
}

#[test]
fn a_lapsed_lease_comes_back_with_its_attempt_counted_and_the_old_holder_loses_it() {
    multi_thread().block_on(async {
        let Some(url) = fresh_database().await else {
            return;
        };
        let db = CoordDb::open(&url).unwrap();
        queue::enqueue(db.pool(), "manager", "slow", "{}", "d-slow", None)
            .await
            .unwrap();
        let base = SharedQueue::new(db, "manager", Duration::from_millis(300));
        let (hung, other) = (holder(&base, 1), holder(&base, 2));
        let first = hung.claim().await.unwrap().expect("the item");
        assert_eq!(first.attempt, 1);
        assert!(other.claim().await.unwrap().is_none(), "held: not offered");
        tokio::time::sleep(Duration::from_millis(600)).await;
        let second = other
            .claim()
            .await
            .unwrap()
            .expect("the lease lapsed: it comes back");
        assert_eq!((second.id.as_str(), second.attempt), ("slow", 2));
        assert_eq!(second.first_claimed_at, first.first_claimed_at);
        let lost = first
            .finish(Outcome::Done(serde_json::json!({})))
            .await
            .unwrap_err();
        assert!(
            matches!(lost, switchyard::coord::CoordError::LostLease { .. }),
            "{lost}"
        );
        second
            .finish(Outcome::Failed(serde_json::json!({"why": "test"})))
            .await
            .unwrap();
    });
}

#[test]
fn a_file_dropped_on_one_host_is_handled_on_another_and_its_result_lands_beside_it() {
    multi_thread().block_on(async {
        let Some(url) = fresh_database().await else {
            return;
        };
        // The manager runs on host A; host B runs the tech-lead, whose
        // process imports B's drop-boxes, the manager's among them.
        let host_a = Fleet::new(&["manager", "tech-lead"], "").await;
        let host_b = Fleet::new(&["manager", "tech-lead"], "").await;
        let mut agents = Vec::new();
        for (fleet, name) in [(&host_a, "manager"), (&host_b, "tech-lead")] {
            agents.push(fleet.shared(name, &url).spawn());
        }
        wait_for(Duration::from_secs(30), "both agents' heartbeats", || {
            let s = status_json(&host_a, &url);
            (s["agents"]["manager"]["pid"].is_u64() && s["agents"]["tech-lead"]["pid"].is_u64())
                .then_some(())
        })
        .await;
        host_b.drop(
            "manager",
            "from-b",
            &event("from-b", "briefing", "info", "dropped on host B"),
        );
        let result = host_b.wait_result("manager", "done", "from-b").await;
        assert_eq!(result["result"]["status"], "routed", "{result}");
        assert!(
            host_b
                .agent_dir("manager")
                .join("done/from-b.json")
                .exists(),
            "the file beside its result"
        );
        assert!(
            host_a.result("manager", "done", "from-b").is_none(),
            "nothing on host A's disk"
        );
        wait_for(
            Duration::from_secs(15),
            "the manager on host A to post it",
            || (briefings_with(&host_a, "dropped on host B") >= 1).then_some(()),
        )
        .await;
        // `send` from host B goes into the queue directly.
        let sent = shell(
            &host_b,
            &url,
            &[
                "send",
                "--category",
                "briefing",
                "--title",
                "sent from host B",
                "--to",
                "manager",
            ],
        );
        assert!(sent.contains("the fleet's queue"), "{sent}");
        wait_for(
            Duration::from_secs(15),
            "the manager to post the sent event",
            || (briefings_with(&host_a, "sent from host B") >= 1).then_some(()),
        )
        .await;
        // A bad file is refused where it was dropped, with its reason.
        std::fs::write(
            host_b.agent_dir("manager").join("inbox/broken.json"),
            b"{not json",
        )
        .unwrap();
        let refused = host_b.wait_result("manager", "failed", "broken").await;
        assert!(
            refused.to_string().contains("JSON") || refused.to_string().contains("json"),
            "{refused}"
        );
        drop(agents);
    });
}

fn briefings_with(fleet: &Fleet, text: &str) -> usize {
    crate::common::discord_texts(&fleet.state(), "briefings")
        .iter()
        .filter(|t| t.contains(text))
        .count()
}

#[test]
fn a_standby_on_another_host_takes_over_after_kill_9_and_posts_nothing_twice() {
    multi_thread().block_on(async {
        let Some(url) = fresh_database().await else {
            return;
        };
        let host_a = Fleet::new(&["manager"], "").await;
        let host_b = Fleet::new(&["manager"], "").await;
        let mut holder = host_a.shared("manager", &url).host("host-a").platforms(&host_a).database(&url).spawn();
        let holder_pid = holder.pid();
        wait_for(Duration::from_secs(30), "the holder's heartbeat", || {
            (status_json(&host_b, &url)["agents"]["manager"]["pid"].as_u64() == Some(holder_pid)).then_some(())
        })
        .await;
        // The standby's endpoints on an address of its own: alive, not ready.
        let listen = format!(
            "127.0.0.1:{}",
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
        );
        let standby = host_b
            .shared("manager", &url)
            .host("host-b")
            .platforms(&host_a)
            .database(&url)
            .arg("--listen")
            .arg(&listen)
            .spawn();
        let standby_pid = standby.pid();
        wait_for(Duration::from_secs(30), "the standby in `status`", || {
            let s = status_json(&host_a, &url);
            let listed = s["standbys"].as_array().is_some_and(|l| {
                l.iter().any(|w| w["agent"] == "manager" && w["process"].as_str().is_some_and(|p| p.contains(&standby_pid.to_string())))
            });
            listed.then_some(())
        })
        .await;

        let (seen, poller) = watch_readyz(listen.clone());
        wait_for(Duration::from_secs(15), "the standby's /readyz", || {
            seen.lock().unwrap().iter().any(|(c, b)| *c == 503 && b.starts_with("standby")).then_some(())
        })
        .await;
        poller.abort();
        let healthz = reqwest::get(format!("http://{listen}/healthz")).await.unwrap();
        assert_eq!(healthz.status().as_u16(), 200, "a standby is alive");

        // A standby with another configuration, or over a local SQLite file, is refused.
        let other = Fleet::new(&["manager"], "[[routes]]\nname = \"extra\"\nmatch = { category = \"briefing\" }\nto = [\"discord:system\"]\n").await;
        for (fleet, database, says) in [(&other, Some(url.as_str()), "same one"), (&host_b, None, "SQLite")] {
            let mut refused = fleet.shared("manager", &url).host("host-c").platforms(&host_a).capturing_stderr();
            if let Some(db) = database {
                refused = refused.database(db);
            }
            let (code, stderr) = refused.spawn().finish();
            assert_eq!(code, Some(2), "{stderr}");
            assert!(stderr.contains(says), "{stderr}");
        }

        shell(&host_b, &url, &["send", "--category", "briefing", "--title", "before the failover", "--to", "manager"]);
        wait_for(Duration::from_secs(15), "the holder to post", || {
            (briefings_with(&host_a, "before the failover") == 1).then_some(())
        })
        .await;

        holder.kill();
        wait_for(Duration::from_secs(30), "the standby to take over", || {
            (status_json(&host_a, &url)["agents"]["manager"]["pid"].as_u64() == Some(standby_pid)).then_some(())
        })
        .await;
        shell(&host_a, &url, &["send", "--category", "briefing", "--title", "after the failover", "--to", "manager"]);
        wait_for(Duration::from_secs(15), "the new holder to post", || {
            (briefings_with(&host_a, "after the failover") == 1).then_some(())
        })
        .await;
        // The outbox resumed from the shared database: the first post was not sent again.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(briefings_with(&host_a, "before the failover"), 1);
        assert_eq!(briefings_with(&host_a, "after the failover"), 1);
        // The new holder serves its endpoints on the same address, ready.
        let (seen, poller) = watch_readyz(listen);
        wait_for(Duration::from_secs(15), "the new holder's /readyz", || {
            seen.lock().unwrap().iter().any(|(c, b)| *c == 200 && b == "ready\n").then_some(())
        })
        .await;
        poller.abort();
        drop(standby);
    });
}

/// Every distinct answer of `/readyz`, in order: status and body.
type Answers = std::sync::Arc<std::sync::Mutex<Vec<(u16, String)>>>;

/// Polls an agent's `/readyz` until aborted, keeping every distinct answer.
fn watch_readyz(addr: String) -> (Answers, tokio::task::JoinHandle<()>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(u16, String)>::new()));
    let keep = seen.clone();
    let task = tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        loop {
            if let Ok(r) = client.get(format!("http://{addr}/readyz")).send().await {
                let code = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                let mut seen = keep.lock().unwrap();
                if seen
                    .last()
                    .is_none_or(|(c, b)| (*c, b.as_str()) != (code, body.as_str()))
                {
                    seen.push((code, body));
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (seen, task)
}

/// The agent's health address and pid, from the shared status.
fn health_of(fleet: &Fleet, url: &str) -> Option<(u64, String)> {
    let s = status_json(fleet, url);
    let me = &s["agents"]["manager"];
    Some((me["pid"].as_u64()?, me["health"].as_str()?.to_owned()))
}

/// One outage of the test's own server under a running agent: the agent
/// keeps its pid, imports the file dropped meanwhile and posts it once.
/// Returns every answer `/readyz` gave from just before the outage on.
async fn outage(
    cluster: &crate::common::OwnCluster,
    host: &Fleet,
    pid: u64,
    down_for: Duration,
    id: &str,
) -> Vec<(u16, String)> {
    let url = &cluster.url;
    let (_, health) = wait_for(Duration::from_secs(30), "the agent's heartbeat", || {
        health_of(host, url).filter(|(p, _)| *p == pid)
    })
    .await;
    let (seen, poller) = watch_readyz(health);
    wait_for(Duration::from_secs(15), "/readyz to say ready", || {
        seen.lock()
            .unwrap()
            .iter()
            .any(|(c, _)| *c == 200)
            .then_some(())
    })
    .await;
    cluster.halt();
    let halted = std::time::Instant::now();
    let title = format!("dropped during outage {id}");
    host.drop("manager", id, &event(id, "briefing", "info", &title));
    while halted.elapsed() < down_for {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.resume();
    // Back: the file dropped meanwhile is imported, handled and filed.
    let result = host.wait_result("manager", "done", id).await;
    assert_eq!(result["result"]["status"], "routed", "{result}");
    wait_for(
        Duration::from_secs(30),
        "the post of the dropped file",
        || (briefings_with(host, &title) == 1).then_some(()),
    )
    .await;
    // The same process, under its pid, and ready again.
    let (after, health) = wait_for(
        Duration::from_secs(30),
        "the agent's heartbeat after",
        || health_of(host, url),
    )
    .await;
    assert_eq!(after, pid, "the agent kept running under its pid");
    poller.abort();
    let mut answers = seen.lock().unwrap().clone();
    let (seen, poller) = watch_readyz(health);
    wait_for(
        Duration::from_secs(15),
        "/readyz to say ready again",
        || {
            let seen = seen.lock().unwrap();
            seen.iter()
                .any(|(c, b)| *c == 200 && b == "ready\n")
                .then(|| answers.extend(seen.iter().cloned()))
        },
    )
    .await;
    poller.abort();
    answers
}

#[test]
fn postgresql_stopped_under_a_running_agent_and_started_again_loses_nothing_and_doubles_nothing() {
    multi_thread().block_on(async {
        // A server of the test's own: it is stopped and started again.
        let Some(cluster) = crate::common::OwnCluster::start() else {
            return;
        };
        let url = cluster.url.clone();
        let host = Fleet::new(&["manager"], "").await;

        // A lease long enough to ride out the outage: the agent says it is
        // degraded on /readyz all along, and goes on when the server is back.
        let agent = host
            .shared("manager", &url)
            .host("host-a")
            .platforms(&host)
            .database(&url)
            .env("SWITCHYARD__FLEET__LEASE_TTL", "60s")
            .spawn();
        let pid = agent.pid();
        wait_for(Duration::from_secs(30), "the agent's heartbeat", || {
            health_of(&host, &url).filter(|(p, _)| *p == pid)
        })
        .await;
        shell(
            &host,
            &url,
            &[
                "send",
                "--category",
                "briefing",
                "--title",
                "before the outage",
                "--to",
                "manager",
            ],
        );
        wait_for(Duration::from_secs(15), "the first post", || {
            (briefings_with(&host, "before the outage") == 1).then_some(())
        })
        .await;
        let answers = outage(&cluster, &host, pid, Duration::from_secs(4), "during-1").await;
        assert!(
            answers.iter().any(|(c, b)| *c == 503
                && b.starts_with("degraded: ")
                && b.contains("the coordination database (fleet.coordination) has not answered")
                && b.contains("the store database (fleet.database) has not answered")),
            "/readyz said it was degraded: {answers:?}"
        );
        drop(agent);

        // The default lease (5 s): an outage of 6 s makes the holder stop
        // everything and start over in place; it comes back holding its lease.
        let agent = host
            .shared("manager", &url)
            .host("host-a")
            .platforms(&host)
            .database(&url)
            .spawn();
        let pid = agent.pid();
        outage(&cluster, &host, pid, Duration::from_secs(6), "during-2").await;

        tokio::time::sleep(Duration::from_secs(2)).await;
        for title in [
            "before the outage",
            "dropped during outage during-1",
            "dropped during outage during-2",
        ] {
            assert_eq!(briefings_with(&host, title), 1, "{title}: posted once");
        }
        drop(agent);
    });
}

#[test]
fn check_config_says_what_a_mix_of_backends_allows() {
    multi_thread().block_on(async {
        let fleet = Fleet::new(&["manager"], "").await;
        let pg = "postgres://switchyard@db.invalid/fleet";
        let check = |coordination: Option<&str>, database: Option<&str>| {
            let mut cmd = fleet.command();
            cmd.arg("check-config");
            if let Some(c) = coordination {
                cmd.env(COORDINATION, c);
            }
            if let Some(d) = database {
                cmd.env("SWITCHYARD__FLEET__DATABASE", d);
            }
            let out = cmd.output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let mixed = check(Some(pg), None);
        assert!(mixed.contains("note: fleet.coordination is on PostgreSQL but fleet.database is a local SQLite file"), "{mixed}");
        assert!(mixed.contains("a standby for an agent"), "{mixed}");
        let local = check(None, Some(pg));
        assert!(local.contains("note: fleet.database is on PostgreSQL but fleet.coordination is not set"), "{local}");
        let both = check(Some(pg), Some(pg));
        assert!(!both.contains("note:"), "{both}");
        let neither = check(None, None);
        assert!(!neither.contains("note:"), "{neither}");
    });
}

/// `switchyard ARGS` against the coordination at `url`.
fn cli(fleet: &Fleet, url: &str, args: &[&str]) -> std::process::Output {
    fleet
        .command()
        .env(COORDINATION, url)
        .args(args)
        .output()
        .expect("run switchyard")
}

/// [`cli`] for a command that may be refused: its exit code and stderr.
fn try_shell(fleet: &Fleet, url: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = cli(fleet, url, args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_producers_host_only_queues_and_only_an_operator_lifts_the_kill_switch() {
    multi_thread().block_on(async {
        let Some(url) = fresh_database().await else {
            return;
        };
        let host = Fleet::new(&["manager"], "").await;
        // The owner's first use makes the schema; then the roles of docs/HOSTS.md.
        shell(&host, &url, &["status"]);
        let script = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/coordination-roles.sql"),
        )
        .unwrap();
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
        let tag = format!("{:08x}", rand::random::<u32>());
        sqlx::raw_sql(sqlx::AssertSqlSafe(script)).execute(&mut conn).await.unwrap();
        let mut urls = std::collections::HashMap::new();
        for group in ["producer", "agent", "operator"] {
            let login = format!("sy_{group}_{tag}");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE ROLE {login} LOGIN IN ROLE switchyard_{group}"
            )))
            .execute(&mut conn)
            .await
            .unwrap();
            urls.insert(group, url.replacen("postgres@", &format!("{login}@"), 1));
        }

        // A producer queues and reads the status...
        shell(&host, &urls["producer"], &["send", "--category", "briefing", "--title", "from a producer", "--to", "manager"]);
        let (queued,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM switchyard_coord.inbox_items WHERE agent = 'manager' AND state = 'ready'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(queued, 1, "the producer's item is queued");
        shell(&host, &urls["producer"], &["status"]);
        // ...and changes nothing else: the database refuses, the CLI says why.
        for args in [
            &["kill", "--reason", "a producer"][..],
            &["mute", "briefing", "--for", "1h"][..],
        ] {
            let (code, stderr) = try_shell(&host, &urls["producer"], args);
            assert_ne!(code, Some(0), "{args:?} from a producer: {stderr}");
            assert!(stderr.contains("this host's database role may not"), "{args:?}: {stderr}");
            assert!(stderr.contains("docs/HOSTS.md"), "{stderr}");
        }

        // A worker's agent role pulls the kill switch but cannot lift it.
        shell(&host, &urls["agent"], &["kill", "--reason", "drill"]);
        let (code, stderr) = try_shell(&host, &urls["agent"], &["resume", "--reason", "mine"]);
        assert_ne!(code, Some(0), "{stderr}");
        assert!(stderr.contains("only an operator may lift the kill switch"), "{stderr}");
        let killed = |u: &str| {
            let s = status_json(&host, u);
            s["kill"]["fleet"].is_object()
        };
        assert!(killed(&url), "still killed after the refused resume");
        // An operator lifts it.
        shell(&host, &urls["operator"], &["resume", "--reason", "over"]);
        assert!(!killed(&url), "lifted by the operator");
        sqlx::Connection::close(conn).await.ok();
    });
}

#[test]
fn a_parked_task_dropped_on_one_host_ends_in_failed_there_when_it_is_denied() {
    multi_thread().block_on(async {
        let Some(url) = fresh_database().await else {
            return;
        };
        const SKILLS: &str = "[skills.sh]\nimage = \"switchyard-worker:latest\"\ncommand = [\"sh\", \"-c\"]\nmemory = \"64m\"\ntimeout = \"30s\"\n";
        // The manager (the approvals' owner) runs on host A; host B runs
        // the tech-lead, whose process imports B's drop-boxes.
        let host_a = Fleet::new(&["manager", "tech-lead"], SKILLS).await;
        let host_b = Fleet::new(&["manager", "tech-lead"], SKILLS).await;
        let mut agents = Vec::new();
        for (fleet, name) in [(&host_a, "manager"), (&host_b, "tech-lead")] {
            agents.push(fleet.shared(name, &url).database(&url).spawn());
        }
        wait_for(Duration::from_secs(30), "both agents' heartbeats", || {
            let s = status_json(&host_a, &url);
            (s["agents"]["manager"]["pid"].is_u64() && s["agents"]["tech-lead"]["pid"].is_u64())
                .then_some(())
        })
        .await;
        let risky = serde_json::json!({
            "kind": "task", "id": "tsk_rm", "title": "Clean", "priority": "low", "risk": "low",
            "skills": ["sh"], "steps": [{"skill": "sh", "args": ["rm -rf /"]}]
        });
        host_b.drop("manager", "tsk_rm", &risky);
        let parked = host_b.wait_result("manager", "done", "tsk_rm").await;
        assert_eq!(parked["result"]["status"], "awaiting_approval", "{parked}");
        assert!(parked["queued_as"].is_string(), "{parked}");

        // B's importer restarts meanwhile: the new one finds the parked file.
        let mut importer = agents.pop().unwrap();
        let old_pid = importer.pid();
        importer.kill();
        let importer = host_b.shared("tech-lead", &url).database(&url).spawn();
        let new_pid = importer.pid();
        agents.push(importer);
        wait_for(Duration::from_secs(30), "the new importer's heartbeat", || {
            let pid = status_json(&host_a, &url)["agents"]["tech-lead"]["pid"].as_u64();
            (pid == Some(new_pid) && pid != Some(old_pid)).then_some(())
        })
        .await;

        // Denied from host B's shell: the task is blocked, and the file
        // dropped on B moves from done/ to failed/ there, with the reason.
        let store = switchyard::store::Store::open_agent(&url, "manager").await.unwrap();
        let started = std::time::Instant::now();
        let approval = loop {
            let row = switchyard::store::tasks::get(store.pool(), "tsk_rm").await.unwrap();
            if let Some(id) = row.and_then(|t| t.approval_id) {
                break id;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the parked task names its approval");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut deny = host_b.command();
        deny.env(COORDINATION, &url).env("SWITCHYARD__FLEET__DATABASE", &url).args(["deny", &approval]);
        let out = deny.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let blocked = wait_for(Duration::from_secs(30), "tsk_rm in B's failed/", || {
            host_b.result("manager", "failed", "tsk_rm")
        })
        .await;
        assert_eq!(blocked["reason"]["status"], "blocked", "{blocked}");
        assert!(host_b.result("manager", "done", "tsk_rm").is_none(), "nothing left in B's done/");
        assert!(host_b.agent_dir("manager").join("failed/tsk_rm.json").exists());
        assert!(host_a.result("manager", "failed", "tsk_rm").is_none(), "nothing on A's disk");
        drop(agents);
    });
}
