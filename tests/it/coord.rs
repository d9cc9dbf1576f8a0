//! The coordination layer against a real directory and real processes: the
//! inbox claim protocol (races, crashes, hostile entries), the status file
//! under concurrent writers, and the per-token run lock.
//!
//! Multi-process tests re-run this test binary (`it`) as a child with
//! `SWITCHYARD_COORD_CHILD=<role>`, selecting only the `coord::child_role`
//! test, so everything lives in one binary.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use switchyard::coord::{
    AgentState, Claimed, CoordError, Heartbeat, Inbox, InboxItem, InboxOptions, KillAction,
    Outcome, RecoverReason, Status, StatusFile, TokenLock, WatchBackend, WatchMode, WatchOptions,
    drop_item,
};

const CHILD_ENV: &str = "SWITCHYARD_COORD_CHILD";
/// Guards against a hung test only; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- child roles

/// Runs a child role when spawned by a test below; does nothing otherwise.
#[test]
fn child_role() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("child needs {k}"));
    let ws = PathBuf::from(var("WS"));
    match role.as_str() {
        "claimer" => {
            let inbox = Inbox::open(&ws, &var("AGENT")).unwrap();
            wait_for_file(Path::new(&var("GO")));
            let mut mine = Vec::new();
            loop {
                let ready = inbox.ready().unwrap();
                if ready.is_empty() {
                    break;
                }
                for path in ready {
                    if let Some(c) = inbox.claim(&path).unwrap() {
                        mine.push(c.id.clone());
                        c.finish(Outcome::Done(json!({ "pid": std::process::id() })))
                            .unwrap();
                    }
                }
            }
            fs::write(var("OUT"), mine.join("\n")).unwrap();
        }
        "status" => {
            let status = StatusFile::open(&ws).unwrap();
            let idx: usize = var("IDX").parse().unwrap();
            let n: usize = var("N").parse().unwrap();
            wait_for_file(Path::new(&var("GO")));
            for i in 0..n {
                if i % 2 == 0 {
                    let hb = Heartbeat {
                        queue_depth: i as u64,
                        state: AgentState::Busy,
                        ..Heartbeat::current(chrono::Utc::now())
                    };
                    status.beat(&format!("p{idx}"), hb).unwrap();
                } else {
                    status
                        .acquire(
                            &format!("p{idx}-{i}"),
                            &format!("p{idx}"),
                            Duration::from_secs(3600),
                            "test",
                        )
                        .unwrap();
                }
            }
        }
        "hold" => {
            let inbox = Inbox::open(&ws, &var("AGENT")).unwrap();
            let path = inbox.ready().unwrap().pop().expect("an item to hold");
            let claimed = inbox.claim(&path).unwrap().expect("claim");
            write_mark(&claimed.attempt.to_string());
            std::thread::sleep(Duration::from_secs(120));
        }
        "token" => {
            let _lock = TokenLock::acquire(&ws, &var("TOKEN_ENV")).unwrap();
            write_mark(&std::process::id().to_string());
            std::thread::sleep(Duration::from_secs(120));
        }
        other => panic!("unknown child role {other}"),
    }
}

fn spawn_child(role: &str, env: &[(&str, String)]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "coord::child_role",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(CHILD_ENV, role)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the test binary as a child")
}

/// The child's "I got here" mark, written whole (temporary name, then
/// rename): the parent reads it as soon as it exists.
fn write_mark(text: &str) {
    let mark = std::path::PathBuf::from(std::env::var("MARK").expect("MARK is set for the child"));
    let tmp = mark.with_extension("tmp");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, &mark).unwrap();
}

fn wait_for_file(path: &Path) {
    let start = std::time::Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < PATIENCE,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn event(n: usize) -> Value {
    json!({ "kind": "event", "event_id": format!("evt_20261121_101500_{n:03}"), "category": "system",
            "severity": "info", "source": "test", "title": format!("item {n}") })
}

fn result_of(dir: &Path, id: &str) -> Value {
    let path = dir.join(format!("{id}.result.json"));
    serde_json::from_slice(&fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

// ---------------------------------------------------------------- inbox

#[test]
fn two_processes_race_for_1000_items_and_each_is_claimed_once() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let inbox = Inbox::open(ws, "racer").unwrap();
    for i in 0..1000 {
        drop_item(ws, "racer", &format!("item-{i:04}"), &event(i)).unwrap();
    }
    let go = ws.join("go");
    let children: Vec<(Child, PathBuf)> = (0..2)
        .map(|n| {
            let out = ws.join(format!("claimed-{n}"));
            let child = spawn_child(
                "claimer",
                &[
                    ("WS", s(ws)),
                    ("AGENT", "racer".into()),
                    ("GO", s(&go)),
                    ("OUT", s(&out)),
                ],
            );
            (child, out)
        })
        .collect();
    fs::write(&go, "").unwrap();
    let mut per_child = Vec::new();
    let mut all = Vec::new();
    for (mut child, out) in children {
        assert!(child.wait().unwrap().success(), "a claimer failed");
        let ids: Vec<String> = fs::read_to_string(out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        per_child.push(ids.len());
        all.extend(ids);
    }
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 1000, "claims per process: {per_child:?}");
    assert_eq!(unique.len(), 1000, "an item was claimed twice");
    eprintln!("race: claims per process {per_child:?}");
    assert!(inbox.ready().unwrap().is_empty());
    assert!(
        names(inbox.running_dir()).is_empty(),
        "leftovers in running/: {:?}",
        names(inbox.running_dir())
    );
    let done = names(inbox.done_dir());
    assert_eq!(done.len(), 2000, "1000 items and 1000 results");
    let r = result_of(inbox.done_dir(), "item-0500");
    assert_eq!(r["outcome"], "done");
    assert_eq!(r["attempt"], 1);
}

#[test]
fn kill_9_of_a_holder_brings_the_item_back_with_attempt_2() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let inbox = Inbox::open(ws, "worker").unwrap();
    drop_item(
        ws,
        "worker",
        "tsk_smoke",
        &json!({"id": "tsk_smoke", "steps": []}),
    )
    .unwrap();
    let mark = ws.join("held");
    let mut child = spawn_child(
        "hold",
        &[
            ("WS", s(ws)),
            ("AGENT", "worker".into()),
            ("MARK", s(&mark)),
        ],
    );
    wait_for_file(&mark);
    assert_eq!(fs::read_to_string(&mark).unwrap(), "1");
    // The holder is alive: nothing to recover.
    assert!(inbox.recover().unwrap().is_empty());
    assert!(inbox.running_dir().join("tsk_smoke.json").exists());

    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let recovered = inbox.recover().unwrap();
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(recovered[0].id, "tsk_smoke");
    assert_eq!(recovered[0].attempt, 2);
    assert_eq!(recovered[0].reason, RecoverReason::HolderDead);
    assert_eq!(
        recovered[0].previous_holder.as_ref().unwrap().pid,
        child.id()
    );
    assert!(
        names(inbox.running_dir()).is_empty(),
        "the lease went with the item"
    );

    let path = inbox.ready().unwrap().pop().unwrap();
    let claimed = inbox.claim(&path).unwrap().unwrap();
    assert_eq!(claimed.attempt, 2);
    assert!(matches!(claimed.item().unwrap(), InboxItem::Task(_)));
    claimed.finish(Outcome::Done(json!({"ok": true}))).unwrap();
    assert_eq!(result_of(inbox.done_dir(), "tsk_smoke")["attempt"], 2);
    // The attempt note is consumed by the claim.
    assert!(
        names(inbox.inbox_dir()).is_empty(),
        "{:?}",
        names(inbox.inbox_dir())
    );
}

#[test]
fn an_expired_lease_from_another_host_is_recovered_and_a_live_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let inbox = Inbox::open(ws, "agent").unwrap();
    let now = chrono::Utc::now();
    for (id, expires, attempt) in [
        ("old", now - chrono::Duration::seconds(1), 3),
        ("live", now + chrono::Duration::seconds(600), 1),
    ] {
        fs::write(
            inbox.running_dir().join(format!("{id}.json")),
            event(1).to_string(),
        )
        .unwrap();
        let lease = json!({ "id": id, "agent": "agent",
            "holder": { "pid": 1, "host": "some-other-host", "incarnation": "x" },
            "attempt": attempt, "claimed_at": now, "expires_at": expires });
        fs::write(
            inbox.running_dir().join(format!("{id}.lease.json")),
            lease.to_string(),
        )
        .unwrap();
    }
    let recovered = inbox.recover().unwrap();
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(
        (
            recovered[0].id.as_str(),
            recovered[0].attempt,
            recovered[0].reason
        ),
        ("old", 4, RecoverReason::LeaseExpired)
    );
    assert!(inbox.running_dir().join("live.json").exists());
    let claimed = inbox
        .claim(&inbox.inbox_dir().join("old.json"))
        .unwrap()
        .unwrap();
    assert_eq!(claimed.attempt, 4);
}

#[test]
fn abandoned_and_lease_less_items_are_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let inbox = Inbox::open_with(
        ws,
        "agent",
        InboxOptions {
            lease_ttl: Duration::ZERO,
            ..Default::default()
        },
    )
    .unwrap();
    let path = drop_item(ws, "agent", "dropped", &event(1)).unwrap();
    let claimed = inbox.claim(&path).unwrap().unwrap();
    drop(claimed); // neither finished nor failed
    fs::write(
        inbox.running_dir().join("orphan.json"),
        event(2).to_string(),
    )
    .unwrap();
    let mut recovered = inbox.recover().unwrap();
    recovered.sort_by(|a, b| a.id.cmp(&b.id));
    let got: Vec<(&str, u32, RecoverReason)> = recovered
        .iter()
        .map(|r| (r.id.as_str(), r.attempt, r.reason))
        .collect();
    assert_eq!(
        got,
        [
            ("dropped", 2, RecoverReason::Abandoned),
            ("orphan", 2, RecoverReason::NoLease)
        ]
    );
}

#[test]
fn leases_are_renewed_and_a_lost_item_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let inbox = Inbox::open(ws, "agent").unwrap();
    let a = inbox
        .claim(&drop_item(ws, "agent", "a", &event(1)).unwrap())
        .unwrap()
        .unwrap();
    let b = inbox
        .claim(&drop_item(ws, "agent", "b", &event(2)).unwrap())
        .unwrap()
        .unwrap();
    let lease = |id: &str| -> Value {
        serde_json::from_slice(
            &fs::read(inbox.running_dir().join(format!("{id}.lease.json"))).unwrap(),
        )
        .unwrap()
    };
    let before: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(lease("a")["expires_at"].clone()).unwrap();
    assert_eq!(inbox.held(), ["a", "b"]);
    // Someone took b away (as a recoverer would if we had stalled).
    fs::rename(&b.path, inbox.inbox_dir().join("b.json")).unwrap();
    let lost = inbox.renew_leases().unwrap();
    assert_eq!(lost, ["b"]);
    let after: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(lease("a")["expires_at"].clone()).unwrap();
    assert!(after >= before);
    assert!(matches!(
        b.finish(Outcome::Done(json!({}))),
        Err(CoordError::LostLease { .. })
    ));
    a.finish(Outcome::Failed(
        json!({"error": "boom", "message": "it broke; retry later"}),
    ))
    .unwrap();
    let r = result_of(inbox.failed_dir(), "a");
    assert_eq!(
        (r["outcome"].as_str(), r["reason"]["error"].as_str()),
        (Some("failed"), Some("boom"))
    );
    assert!(inbox.failed_dir().join("a.json").exists());
    assert!(!inbox.running_dir().join("a.lease.json").exists());
}

#[tokio::test]
async fn the_renewal_task_pushes_the_lease_expiry_forward() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let inbox = Inbox::open(ws, "agent").unwrap();
    let claimed = inbox
        .claim(&drop_item(ws, "agent", "long", &event(1)).unwrap())
        .unwrap()
        .unwrap();
    let lease_path = inbox.running_dir().join("long.lease.json");
    let expiry = || -> chrono::DateTime<chrono::Utc> {
        let v: Value = serde_json::from_slice(&fs::read(&lease_path).unwrap()).unwrap();
        serde_json::from_value(v["expires_at"].clone()).unwrap()
    };
    let first = expiry();
    let renewal = inbox.spawn_lease_renewal(Duration::from_millis(10));
    tokio::time::timeout(PATIENCE, async {
        while expiry() == first {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the lease was renewed");
    renewal.abort();
    assert!(expiry() > first);
    claimed.finish(Outcome::Done(json!({}))).unwrap();
}

#[test]
fn drop_item_refuses_names_that_could_escape_and_non_objects() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    for bad in [
        "../escape",
        "/etc/passwd",
        "a/b",
        "a\\b",
        "nul\0byte",
        ".hidden",
        "",
        "x.lease",
        "x.result",
        "é",
        &"x".repeat(129),
    ] {
        let err = drop_item(ws, "agent", bad, &event(1)).unwrap_err();
        assert!(
            matches!(err, CoordError::InvalidId { .. }),
            "{bad:?}: {err}"
        );
    }
    assert!(matches!(
        drop_item(ws, "../up", "ok", &event(1)),
        Err(CoordError::InvalidAgent(_))
    ));
    assert!(matches!(
        drop_item(ws, "agent", "ok", &json!([1, 2])),
        Err(CoordError::ItemNotObject(_))
    ));
    assert!(!ws.join("escape").exists() && !ws.join("agents/escape").exists());
    let inbox_dir = ws.join("agents/agent/inbox");
    assert!(!inbox_dir.exists() || names(&inbox_dir).is_empty());
}

/// Runs a minimal agent loop: watch, claim, parse, finish; until `done_id` is
/// done and nothing else waits.
async fn agent_loop(inbox: &Inbox, options: WatchOptions, done_id: &str) -> Vec<String> {
    let mut watcher = inbox.watch(options).unwrap();
    let mut rejected = Vec::new();
    let target = inbox.done_dir().join(format!("{done_id}.json"));
    while !(target.exists() && inbox.ready().unwrap().is_empty()) {
        let path = watcher.next().await;
        match inbox.claim(&path) {
            Ok(Some(c)) => {
                let outcome = match c.item() {
                    Ok(item) => Outcome::Done(json!({ "kind": item.kind().as_str() })),
                    Err(e) => {
                        rejected.push(c.id.clone());
                        Outcome::Failed(e.to_reason())
                    }
                };
                c.finish(outcome).unwrap();
            }
            Ok(None) => {}
            Err(CoordError::Rejected { name, .. }) => rejected.push(name),
            Err(e) => panic!("the loop must keep going, got {e}"),
        }
    }
    rejected
}

#[tokio::test]
async fn garbage_goes_to_failed_with_a_reason_and_the_loop_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let inbox = Inbox::open(ws, "agent").unwrap();
    let inb = inbox.inbox_dir().to_path_buf();
    fs::write(inb.join("binary.json"), [0xffu8, 0x00, 0xfe, 0x13, 0x37]).unwrap();
    let huge = fs::File::create(inb.join("huge.json")).unwrap();
    huge.set_len(10 * 1024 * 1024).unwrap();
    drop(huge);
    let outside = ws.join("outside.json");
    fs::write(&outside, event(9).to_string()).unwrap();
    std::os::unix::fs::symlink(&outside, inb.join("link.json")).unwrap();
    fs::write(inb.join("array.json"), "[1, 2, 3]").unwrap();
    fs::write(inb.join("prose.json"), "hello, agent").unwrap();
    fs::write(inb.join("shapeless.json"), r#"{"hello": "agent"}"#).unwrap();
    fs::write(inb.join("notes.txt"), "{}").unwrap();
    fs::write(inb.join("bad name!.json"), "{}").unwrap();
    fs::write(
        inb.join(std::ffi::OsStr::from_encoded_bytes_unchecked_safe(
            b"\xff\xfe.json",
        )),
        "{}",
    )
    .unwrap();
    fs::create_dir(inb.join("folder.json")).unwrap();
    fs::write(inb.join(".half.json.tmp"), r#"{"kind": "ev"#).unwrap();
    fs::write(inb.join("half.json.tmp"), r#"{"kind": "ev"#).unwrap();
    drop_item(ws, "agent", "zz-good", &event(1)).unwrap();

    let rejected = tokio::time::timeout(
        PATIENCE,
        agent_loop(&inbox, WatchOptions::default(), "zz-good"),
    )
    .await
    .expect("the loop finished");
    assert_eq!(
        result_of(inbox.done_dir(), "zz-good")["result"]["kind"],
        "event"
    );

    let failed = inbox.failed_dir();
    for (id, code) in [
        ("binary", "not_utf8"),
        ("huge", "too_large"),
        ("link", "symlink"),
        ("array", "not_an_object"),
        ("prose", "not_json"),
        ("shapeless", "unknown_shape"),
        ("folder", "not_a_file"),
    ] {
        let r = result_of(failed, id);
        assert_eq!(r["reason"]["error"], code, "{id}: {r}");
        assert!(!r["reason"]["message"].as_str().unwrap().is_empty());
        assert!(
            fs::symlink_metadata(failed.join(format!("{id}.json"))).is_ok(),
            "{id} moved to failed/"
        );
    }
    assert!(
        result_of(failed, "huge")["reason"]["message"]
            .as_str()
            .unwrap()
            .contains("10485760 bytes")
    );
    // The link itself was moved; its target was neither followed nor touched.
    assert!(
        fs::symlink_metadata(failed.join("link.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_to_string(&outside).unwrap(), event(9).to_string());
    // Bad names: moved aside under a safe name, with a reason.
    let bad_names: Vec<String> = names(failed)
        .into_iter()
        .filter(|n| n.starts_with("rejected-") && !n.ends_with(".result.json"))
        .collect();
    assert_eq!(bad_names.len(), 3, "{bad_names:?}");
    for n in &bad_names {
        let r = result_of(failed, n);
        assert_eq!(r["reason"]["error"], "bad_name");
    }
    assert_eq!(rejected.len(), 10, "{rejected:?}");
    // Temporary names are never picked up.
    assert_eq!(
        names(&inb),
        BTreeSet::from([".half.json.tmp".to_string(), "half.json.tmp".to_string()])
    );
}

trait FromBytes {
    fn from_encoded_bytes_unchecked_safe(b: &[u8]) -> std::ffi::OsString;
}
impl FromBytes for std::ffi::OsStr {
    fn from_encoded_bytes_unchecked_safe(b: &[u8]) -> std::ffi::OsString {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(b).to_os_string()
    }
}

#[tokio::test]
async fn notify_and_polling_both_notice_a_new_item() {
    for (mode, backend) in [
        (WatchMode::Notify, WatchBackend::Notify),
        (WatchMode::Poll, WatchBackend::Poll),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        let inbox = Inbox::open(ws, "agent").unwrap();
        // A rescan interval far beyond the test's patience: only the backend under test can wake it.
        let options = WatchOptions {
            mode,
            poll_interval: Duration::from_millis(20),
            rescan_interval: Duration::from_secs(3600),
        };
        let mut watcher = inbox.watch(options).unwrap();
        assert_eq!(watcher.backend(), backend);
        let ws2 = ws.to_path_buf();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop_item(&ws2, "agent", "fresh", &event(1)).unwrap()
        });
        let seen = tokio::time::timeout(PATIENCE, watcher.next())
            .await
            .expect("noticed");
        assert_eq!(seen, writer.await.unwrap());
        assert_eq!(inbox.claim(&seen).unwrap().unwrap().id, "fresh");
    }
}

#[test]
fn a_dropped_file_is_never_seen_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().to_path_buf();
    let inbox = Inbox::open(&ws, "agent").unwrap();
    let body = "x".repeat(200_000);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let inbox = inbox.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut parsed = 0usize;
            loop {
                let finished = stop.load(std::sync::atomic::Ordering::SeqCst);
                for path in inbox.ready().unwrap() {
                    match fs::read(&path) {
                        Ok(bytes) => {
                            let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                                panic!(
                                    "{} was seen half-written ({} bytes): {e}",
                                    path.display(),
                                    bytes.len()
                                )
                            });
                            assert_eq!(v["body"].as_str().unwrap().len(), 200_000);
                            parsed += 1;
                            // Make room, so the reader keeps meeting fresh files.
                            let _ = fs::remove_file(&path);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                if finished {
                    return parsed;
                }
            }
        })
    };
    for i in 0..150 {
        let mut item = event(i);
        item["body"] = json!(body);
        drop_item(&ws, "agent", &format!("w{i:03}"), &item).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let parsed = reader.join().unwrap();
    assert_eq!(parsed, 150, "the reader read every file whole");
}

// ---------------------------------------------------------------- status file

#[test]
fn status_survives_1000_concurrent_updates_from_three_processes() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let status = StatusFile::open(ws).unwrap();
    let go = ws.join("go");
    let per = [334usize, 333, 333];
    let mut children: Vec<Child> = per
        .iter()
        .enumerate()
        .map(|(idx, n)| {
            spawn_child(
                "status",
                &[
                    ("WS", s(ws)),
                    ("IDX", idx.to_string()),
                    ("N", n.to_string()),
                    ("GO", s(&go)),
                ],
            )
        })
        .collect();
    fs::write(&go, "").unwrap();
    // Read without the lock all along: every read must be a whole file.
    let mut reads = 0usize;
    let mut running = true;
    while running {
        running = children.iter_mut().any(|c| c.try_wait().unwrap().is_none());
        match fs::read(status.path()) {
            Ok(bytes) => {
                serde_json::from_slice::<Status>(&bytes)
                    .unwrap_or_else(|e| panic!("status.json did not parse mid-run: {e}"));
                reads += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("{e}"),
        }
    }
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a status writer failed");
    }
    eprintln!("status: {reads} concurrent reads parsed");
    let final_status = status.read().unwrap();
    // Every lock acquire survived (a lost update would drop some) ...
    let expected_locks: usize = per.iter().map(|n| n / 2).sum();
    assert_eq!(final_status.locks.len(), expected_locks);
    for (idx, n) in per.iter().enumerate() {
        for i in (1..*n).step_by(2) {
            assert!(
                final_status.locks.contains_key(&format!("p{idx}-{i}")),
                "lock p{idx}-{i} was lost"
            );
        }
        // ... and each process's last heartbeat is its last even step.
        let last_even = (n - 1) / 2 * 2;
        assert_eq!(
            final_status.agents[&format!("p{idx}")].queue_depth,
            last_even as u64
        );
    }
    assert_eq!(final_status.schema, 1);
    assert!(
        fs::read_to_string(status.markdown_path())
            .unwrap()
            .contains("| p2 | busy")
    );
}

#[test]
fn locks_are_refused_renewed_released_and_swept() {
    let dir = tempfile::tempdir().unwrap();
    let status = StatusFile::open(dir.path()).unwrap();
    let hour = Duration::from_secs(3600);
    let first = status
        .acquire("deploy", "manager", hour, "rolling out web-1")
        .unwrap();
    match status.acquire("deploy", "tech-lead", hour, "hotfix") {
        Err(CoordError::LockHeld {
            holder,
            reason,
            until,
            ..
        }) => {
            assert_eq!(
                (holder.as_str(), reason.as_str(), until),
                ("manager", "rolling out web-1", first.expires_at)
            );
        }
        other => panic!("expected LockHeld, got {other:?}"),
    }
    let renewed = status
        .acquire("deploy", "manager", hour, "still rolling")
        .unwrap();
    assert_eq!(renewed.acquired_at, first.acquired_at);
    assert!(matches!(
        status.release("deploy", "tech-lead"),
        Err(CoordError::LockNotYours { .. })
    ));
    assert_eq!(status.list().unwrap().len(), 1);
    status.release("deploy", "manager").unwrap();
    assert!(matches!(
        status.release("deploy", "manager"),
        Err(CoordError::LockNotHeld { .. })
    ));
    // An expired lock does not block and is swept.
    status
        .acquire("short", "a", Duration::ZERO, "gone at once")
        .unwrap();
    status.acquire("short", "b", hour, "mine now").unwrap();
    assert_eq!(status.list().unwrap()[0].1.holder, "b");
    assert_eq!(status.force_release("short").unwrap().unwrap().holder, "b");
    assert!(status.list().unwrap().is_empty());
    assert!(matches!(
        status.acquire("bad\nname", "a", hour, ""),
        Err(CoordError::InvalidLockName(_))
    ));
}

#[test]
fn the_kill_switch_is_set_read_resumed_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let status = StatusFile::open(dir.path()).unwrap();
    assert!(status.is_killed("manager").unwrap().is_none());
    status
        .kill(Some("worker"), "user:42", "runaway retries")
        .unwrap();
    assert_eq!(
        status.is_killed("worker").unwrap().unwrap().reason,
        "runaway retries"
    );
    assert!(status.is_killed("manager").unwrap().is_none());
    status.kill(None, "user:42", "stop everything").unwrap();
    assert_eq!(
        status.is_killed("manager").unwrap().unwrap().reason,
        "stop everything"
    );
    assert!(
        fs::read_to_string(status.markdown_path())
            .unwrap()
            .contains("FLEET KILLED")
    );
    assert!(status.resume(Some("worker"), "user:42", "fixed").unwrap());
    assert!(
        status.is_killed("worker").unwrap().is_some(),
        "the fleet-wide kill still holds"
    );
    status.kill(Some("worker"), "user:42", "again").unwrap();
    assert!(status.resume(None, "user:42", "all clear").unwrap());
    assert!(status.is_killed("worker").unwrap().is_none());
    assert!(status.is_killed("manager").unwrap().is_none());
    let history = status.read().unwrap().history;
    let actions: Vec<(KillAction, Option<&str>)> = history
        .iter()
        .map(|r| (r.action, r.agent.as_deref()))
        .collect();
    assert_eq!(
        actions,
        [
            (KillAction::Kill, Some("worker")),
            (KillAction::Kill, None),
            (KillAction::Resume, Some("worker")),
            (KillAction::Kill, Some("worker")),
            (KillAction::Resume, None)
        ]
    );
}

#[test]
fn heartbeats_and_stale_peers() {
    let dir = tempfile::tempdir().unwrap();
    let status = StatusFile::open(dir.path()).unwrap();
    let now = chrono::Utc::now();
    status
        .beat(
            "manager",
            Heartbeat {
                current_task: Some("tsk_1".into()),
                queue_depth: 3,
                ..Heartbeat::current(now)
            },
        )
        .unwrap();
    status
        .beat(
            "worker",
            Heartbeat::current(now - chrono::Duration::seconds(120)),
        )
        .unwrap();
    let stale = status.stale_peers(now, Duration::from_secs(30)).unwrap();
    assert_eq!(
        stale.iter().map(|p| p.agent.as_str()).collect::<Vec<_>>(),
        ["worker"]
    );
    let st = status.read().unwrap();
    assert_eq!(st.agents["manager"].current_task.as_deref(), Some("tsk_1"));
    assert_eq!(st.agents["manager"].pid, std::process::id());
    let md = fs::read_to_string(status.markdown_path()).unwrap();
    assert!(md.contains("| manager | idle | tsk_1 | 3 |"), "{md}");
    assert!(md.contains("| worker | idle **STALE**"), "{md}");
}

#[test]
fn a_corrupt_or_newer_status_file_is_reported_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let status = StatusFile::open(dir.path()).unwrap();
    fs::write(status.path(), "{ half").unwrap();
    assert!(matches!(
        status.read(),
        Err(CoordError::CorruptStatus { .. })
    ));
    assert!(
        status
            .beat("a", Heartbeat::current(chrono::Utc::now()))
            .is_err()
    );
    assert_eq!(fs::read_to_string(status.path()).unwrap(), "{ half");
    fs::write(status.path(), r#"{"schema": 2}"#).unwrap();
    assert!(matches!(
        status.read(),
        Err(CoordError::UnsupportedSchema {
            found: 2,
            supported: 1
        })
    ));
}

// ---------------------------------------------------------------- token lock

#[test]
fn a_second_process_with_the_same_token_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let mark = ws.join("token-held");
    let mut child = spawn_child(
        "token",
        &[
            ("WS", s(ws)),
            ("TOKEN_ENV", "MANAGER_DISCORD_TOKEN".into()),
            ("MARK", s(&mark)),
        ],
    );
    wait_for_file(&mark);
    // The mark is written after the lock note; give the note a moment only through the retry below.
    let err = TokenLock::acquire(ws, "MANAGER_DISCORD_TOKEN").unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, CoordError::TokenInUse { .. }), "{message}");
    assert!(
        message.contains(&format!("process {}", child.id())),
        "{message}"
    );
    assert!(message.contains("MANAGER_DISCORD_TOKEN"), "{message}");
    // Another token is free.
    let other = TokenLock::acquire(ws, "WORKER_DISCORD_TOKEN").unwrap();
    // In-process too: a second open of the same lock is refused.
    assert!(matches!(
        TokenLock::acquire(ws, "WORKER_DISCORD_TOKEN"),
        Err(CoordError::TokenInUse { .. })
    ));
    drop(other);
    TokenLock::acquire(ws, "WORKER_DISCORD_TOKEN").unwrap();
    // The operating system frees the lock when the holder dies.
    child.kill().unwrap();
    child.wait().unwrap();
    TokenLock::acquire(ws, "MANAGER_DISCORD_TOKEN").unwrap();
    assert!(matches!(
        TokenLock::acquire(ws, "BAD-NAME"),
        Err(CoordError::InvalidTokenEnv(_))
    ));
}

#[allow(dead_code)]
fn unused(_: Claimed, _: BTreeMap<(), ()>) {}

#[test]
fn no_item_is_ever_replaced_in_inbox_running_done_or_failed() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let inbox = Inbox::open(ws, "agent").unwrap();
    // Two producers, one id: the second is refused and the first is intact.
    drop_item(ws, "agent", "tsk_deploy", &json!({"n": 1})).unwrap();
    let second = drop_item(ws, "agent", "tsk_deploy", &json!({"n": 2})).unwrap_err();
    assert!(matches!(second, CoordError::ItemExists { .. }), "{second}");
    assert!(
        second.to_string().contains("nothing was replaced"),
        "{second}"
    );
    let first = inbox
        .claim(&inbox.inbox_dir().join("tsk_deploy.json"))
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first.bytes).contains("\"n\": 1"));
    // Dropped again while the first runs: it waits in the inbox, untouched.
    drop_item(ws, "agent", "tsk_deploy", &json!({"n": 2})).unwrap();
    let again = inbox.inbox_dir().join("tsk_deploy.json");
    assert!(
        inbox.claim(&again).unwrap().is_none(),
        "the same id is running"
    );
    assert!(again.exists());
    first.finish(Outcome::Done(json!("first"))).unwrap();
    // Its second run finishes beside the first one, under a suffix.
    let second = inbox.claim(&again).unwrap().unwrap();
    let kept = second.finish(Outcome::Done(json!("second"))).unwrap();
    assert_eq!(kept.file_name().unwrap(), "tsk_deploy~2.json");
    let done = inbox.done_dir();
    assert!(
        fs::read_to_string(done.join("tsk_deploy.json"))
            .unwrap()
            .contains("\"n\": 1")
    );
    assert!(
        fs::read_to_string(done.join("tsk_deploy~2.json"))
            .unwrap()
            .contains("\"n\": 2")
    );
    assert_eq!(result_of(done, "tsk_deploy")["result"], "first");
    let r2 = result_of(done, "tsk_deploy~2");
    assert_eq!(
        (r2["result"].clone(), r2["stored_as"].clone()),
        (json!("second"), json!("tsk_deploy~2"))
    );
    // And a third time, failed: failed/ keeps its own, done/ is untouched.
    for n in 3..5 {
        drop_item(ws, "agent", "tsk_deploy", &json!({"n": n})).unwrap();
        let c = inbox.claim(&again).unwrap().unwrap();
        c.finish(Outcome::Failed(json!(n))).unwrap();
    }
    let failed = inbox.failed_dir();
    assert_eq!(result_of(failed, "tsk_deploy")["reason"], 3);
    assert_eq!(result_of(failed, "tsk_deploy~2")["reason"], 4);
    assert_eq!(names(done).len(), 4, "{:?}", names(done));
}

#[test]
fn items_are_taken_in_arrival_order_whatever_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let inbox = Inbox::open(ws, "agent").unwrap();
    // Names that sort nothing like the order they were dropped in.
    let ids: Vec<String> = (0..40u64)
        .map(|i| format!("brief_{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
        .collect();
    for id in &ids {
        drop_item(ws, "agent", id, &json!({"id": id})).unwrap();
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_ne!(sorted, ids, "the names must not already be in order");
    let ready: Vec<String> = inbox
        .ready()
        .unwrap()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ready, ids);
}

#[test]
fn old_temporary_files_are_reported_and_left_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let inbox = Inbox::open(ws, "agent").unwrap();
    let old = inbox.inbox_dir().join(".briefing.json.Xy12Ab");
    let fresh = inbox.inbox_dir().join(".incoming.json.Qw34Er");
    let note = inbox.inbox_dir().join(".tsk_a.attempt.json");
    for p in [&old, &fresh, &note] {
        fs::write(p, b"{}").unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    for p in [&old, &note] {
        fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
    }
    assert_eq!(
        inbox.stale_temporaries(Duration::from_secs(3600)),
        [".briefing.json.Xy12Ab"]
    );
    assert!(
        inbox.ready().unwrap().is_empty(),
        "temporary names are never taken"
    );
    assert!(old.exists() && fresh.exists());
}

#[test]
fn every_attempt_of_one_drop_names_an_id_less_event_alike_and_a_new_drop_anew() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let inbox = Inbox::open(ws, "agent").unwrap();
    let id_of = |c: &Claimed| switchyard_routing::EventId::for_item(&c.id, c.first_claimed_at);
    drop_item(
        ws,
        "agent",
        "backup",
        &json!({"category": "system", "title": "backup OK"}),
    )
    .unwrap();
    let path = inbox.inbox_dir().join("backup.json");
    let first = inbox.claim(&path).unwrap().unwrap();
    let first_id = id_of(&first);
    // The holder dies mid-item; the item is recovered and claimed again.
    drop(first);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(inbox.recover().unwrap().len(), 1);
    let again = inbox.claim(&path).unwrap().unwrap();
    assert_eq!(again.attempt, 2);
    assert_eq!(
        id_of(&again),
        first_id,
        "a retry is the same event, deduplicated"
    );
    again.finish(Outcome::Done(json!("ok"))).unwrap();
    // The same file name dropped again (tomorrow's backup) is another event.
    drop_item(
        ws,
        "agent",
        "backup",
        &json!({"category": "system", "title": "backup OK"}),
    )
    .unwrap();
    let next = inbox.claim(&path).unwrap().unwrap();
    assert_ne!(id_of(&next), first_id);
}

#[test]
fn sixty_parallel_sends_are_sixty_items() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchyard.toml");
    fs::write(&config, crate::common::fleet_toml(&["manager"], "")).unwrap();
    let children: Vec<Child> = (0..60)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_switchyard"))
                .args([
                    "send",
                    "--config",
                    &s(&config),
                    "--category",
                    "system",
                    "--title",
                    &format!("send {i}"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let items = names(&dir.path().join("workspace/agents/manager/inbox"));
    assert_eq!(items.len(), 60, "{items:?}");
}
