//! End to end: real `switchyard run` processes, a real workspace directory,
//! real SQLite files, and the sandbox over HTTP on 127.0.0.1 with the real
//! serenity and teloxide clients inside the agent.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Fleet, event, wait_for};
use serde_json::json;

#[test]
fn every_category_lands_where_seed_002_says() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        fleet.spawn_agent("manager").await;
        let cases = [
            ("briefing", "info", "Morning briefing"),
            ("alert", "warning", "Disk 85%"),
            ("alert", "critical", "web-1 down"),
            ("subagent_result", "info", "Invoice run finished"),
            ("system", "info", "Heartbeat OK"),
            ("memory_update", "info", "MEMORY.md updated"),
            ("chat", "info", "Hello"),
            ("action_required", "warning", "Approve deploy?"),
            ("mystery", "info", "Nobody routes this"),
        ];
        for (i, (cat, sev, title)) in cases.iter().enumerate() {
            fleet.drop(
                "manager",
                &format!("evt_cat_{i}"),
                &event(&format!("evt_cat_{i}"), cat, sev, title),
            );
        }
        let state = wait_for(
            Duration::from_secs(30),
            "10 messages in the sandbox",
            || {
                let st = fleet.state();
                (common::total_messages(&st) >= 10).then_some(st)
            },
        )
        .await;
        let expect: [(&str, &[&str]); 6] = [
            ("briefings", &["Morning briefing"]),
            ("alerts", &["Disk 85%", "web-1 down"]),
            ("sub-agent-results", &["Invoice run finished"]),
            ("system", &["Heartbeat OK", "Nobody routes this"]),
            ("memory-updates", &["MEMORY.md updated"]),
            ("chat", &["Hello"]),
        ];
        for (alias, titles) in expect {
            let texts = common::discord_texts(&state, alias);
            assert_eq!(texts.len(), titles.len(), "#{alias}: {texts:?}");
            for t in titles {
                assert!(
                    texts.iter().any(|x| x.contains(t)),
                    "#{alias} lacks {t:?}: {texts:?}"
                );
            }
        }
        let telegram = common::telegram_texts(&state);
        assert_eq!(telegram.len(), 2, "{telegram:?}");
        assert!(
            telegram.iter().any(|t| t.contains("web-1 down")),
            "{telegram:?}"
        );
        assert!(
            telegram.iter().any(|t| t.contains("Approve deploy?")),
            "{telegram:?}"
        );
        let unmatched = fleet.wait_result("manager", "done", "evt_cat_8").await;
        assert_eq!(unmatched["result"]["unmatched"], true, "{unmatched}");
        assert_eq!(
            common::total_messages(&fleet.state()),
            10,
            "nothing posted twice"
        );
    });
}

#[test]
fn bad_inbox_files_go_to_failed_and_the_agent_keeps_going() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        fleet.spawn_agent("manager").await;
        let inbox = fleet.agent_dir("manager").join("inbox");
        // A half-written file under a temporary name is never read.
        std::fs::write(inbox.join(".half.json.tmp"), b"{\"kind\": \"ev").unwrap();
        std::fs::write(inbox.join("garbage.json"), b"this is not json").unwrap();
        std::fs::write(inbox.join("array.json"), b"[1, 2, 3]").unwrap();
        std::fs::write(inbox.join("binary.json"), [0u8, 159, 146, 150, 255, 0, 1]).unwrap();
        std::fs::write(inbox.join("huge.json"), vec![b' '; 10 * 1024 * 1024]).unwrap();
        fleet.drop("manager", "no_title", &json!({"kind": "event", "category": "system"}));
        let long = "x".repeat(50_000);
        fleet.drop(
            "manager",
            "long_body",
            &json!({"kind": "event", "event_id": "long_body", "category": "chat", "title": "Long", "body": long}),
        );
        for id in ["garbage", "array", "binary", "huge", "no_title"] {
            let r = fleet.wait_result("manager", "failed", id).await;
            let reason = r.to_string();
            assert!(reason.len() > 20, "{id}: the reason says what was wrong: {reason}");
            assert!(fleet.agent_dir("manager").join("failed").join(format!("{id}.json")).exists(), "{id} kept in failed/");
        }
        let r = fleet.wait_result("manager", "done", "long_body").await;
        assert_eq!(r["result"]["status"], "routed", "{r}");
        let st = wait_for(Duration::from_secs(20), "the long message", || {
            let st = fleet.state();
            (!common::discord_texts(&st, "chat").is_empty()).then_some(st)
        })
        .await;
        let posted = common::discord_texts(&st, "chat").join("");
        assert!(posted.contains("truncated"), "a truncated body says so");
        assert!(posted.len() < 10_000);
        // Still alive and routing after all of it.
        fleet.drop("manager", "after", &event("after", "briefing", "info", "Still alive"));
        fleet.wait_result("manager", "done", "after").await;
        assert!(inbox.join(".half.json.tmp").exists(), "a temporary name is left alone");
    });
}

#[test]
fn kill_9_with_500_pending_deliveries_delivers_each_exactly_once() {
    common::multi_thread().block_on(async {
        // Faster channel buckets than Discord's so the test takes seconds, not
        // minutes; no coalescing, so every event stays one message to count.
        let mut opts = common::sandbox_options();
        common::fast_discord_limits(&mut opts);
        let mut fleet = Fleet::with_sandbox(&["manager"], "", opts).await;
        std::fs::write(
            &fleet.config_file,
            common::fleet_toml(&["manager"], "").replace(
                "max_attempts = 50",
                "max_attempts = 1000\ncoalesce_after = 100000",
            ),
        )
        .unwrap();
        common::fail_discord(&fleet.sandbox, true);
        fleet.spawn_agent("manager").await;
        let channels = ["briefing", "subagent_result", "memory_update", "chat"];
        for i in 0..500 {
            let id = format!("evt_k9_{i:04}");
            fleet.drop(
                "manager",
                &id,
                &event(
                    &id,
                    channels[i % channels.len()],
                    "info",
                    &format!("message {i:04}"),
                ),
            );
        }
        wait_for(Duration::from_secs(120), "500 events stored", || {
            (fleet.count("manager", "done") >= 500).then_some(())
        })
        .await;
        assert_eq!(
            common::total_messages(&fleet.state()),
            0,
            "the sandbox refused everything so far"
        );
        fleet.kill_agent("manager");
        common::fail_discord(&fleet.sandbox, false);
        fleet.spawn_agent("manager").await;
        wait_for(Duration::from_secs(180), "500 messages delivered", || {
            (common::total_messages(&fleet.state()) >= 500).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let st = fleet.state();
        let mut titles = BTreeSet::new();
        for alias in ["briefings", "sub-agent-results", "memory-updates", "chat"] {
            for t in common::discord_texts(&st, alias) {
                assert!(titles.insert(t.clone()), "posted twice: {t}");
            }
        }
        assert_eq!(titles.len(), 500);
        assert_eq!(common::total_messages(&st), 500);
    });
}

#[test]
fn a_mute_holds_events_and_the_unmute_posts_one_digest() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        fleet.spawn_agent("manager").await;
        let out = fleet
            .command()
            .args(["mute", "system", "--for", "1h", "--reason", "noisy"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let id = stdout
            .split("id ")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .expect("mute id printed")
            .to_string();
        for i in 0..3 {
            let eid = format!("evt_muted_{i}");
            fleet.drop(
                "manager",
                &eid,
                &event(&eid, "system", "info", &format!("cron {i}")),
            );
            let r = fleet.wait_result("manager", "done", &eid).await;
            assert!(r.to_string().contains("held"), "{r}");
        }
        // A critical system event is never held by a mute without force.
        fleet.drop(
            "manager",
            "evt_crit",
            &event("evt_crit", "system", "critical", "disk failing"),
        );
        wait_for(Duration::from_secs(20), "the critical event", || {
            common::discord_texts(&fleet.state(), "system")
                .iter()
                .any(|t| t.contains("disk failing"))
                .then_some(())
        })
        .await;
        let texts = common::discord_texts(&fleet.state(), "system");
        assert!(
            !texts.iter().any(|t| t.contains("cron 0")),
            "held, not posted: {texts:?}"
        );

        let out = fleet.command().args(["unmute", &id]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let digest = wait_for(Duration::from_secs(20), "the digest", || {
            common::discord_texts(&fleet.state(), "system")
                .into_iter()
                .find(|t| t.contains("While muted"))
        })
        .await;
        for i in 0..3 {
            assert!(digest.contains(&format!("cron {i}")), "{digest}");
        }
        let texts = common::discord_texts(&fleet.state(), "system");
        assert_eq!(
            texts.iter().filter(|t| t.contains("While muted")).count(),
            1,
            "{texts:?}"
        );
    });
}

#[test]
fn sigterm_shuts_down_gracefully_and_records_the_final_state() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        fleet.spawn_agent("manager").await;
        let status = fleet.stop_agent("manager").await;
        assert!(status.success(), "{status}");
        let s = common::read_json(&fleet.workspace().join("status.json"));
        assert_eq!(s["agents"]["manager"]["state"], "stopped", "{s}");
    });
}

#[test]
fn cli_reports_bad_config_with_exit_2_and_explains_routes() {
    common::multi_thread().block_on(async {
        let fleet = Fleet::new(&["manager"], "").await;
        let out = fleet.command().args(["route", "--category", "alert", "--severity", "critical"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("telegram:operator") && text.contains("discord:alerts"), "{text}");
        let out = fleet.command().args(["route", "--category", "alert", "--severity", "critical", "--json"]).output().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("route --json prints JSON");
        let dests: Vec<&str> = json["targets"].as_array().unwrap().iter().map(|t| t["destination"].as_str().unwrap()).collect();
        assert!(dests.contains(&"telegram:operator") && dests.contains(&"discord:alerts"), "{json}");
        assert_eq!(json["unmatched"], false);

        let bad = fleet.dir.path().join("bad.toml");
        std::fs::write(
            &bad,
            "[fleet]\nheartbeat_interval = \"soon\"\nbogus = 1\n[[agents]]\ndiscord_token_env = \"X\"\n[[agents]]\nname = \"b\"\ndiscord_token_env = \"X\"\n",
        )
        .unwrap();
        let out = fleet.command().args(["check-config", "--config"]).arg(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        for key in ["fleet.bogus", "fleet.heartbeat_interval", "agents[0].name", "agents[1].discord_token_env"] {
            assert!(err.contains(key), "{key} missing from: {err}");
        }
        // Values of the wrong type hide nothing: each is named with its path,
        // in plain words, beside every other problem of the file.
        std::fs::write(
            &bad,
            "[fleet]\nheartbeat_interval = \"soon\"\n[policy]\napproval_threshold = \"high\"\n             [delivery]\nmax_attempts = [1]\n[[agents]]\nname = \"a\"\ndiscord_token_env = \"X\"\nbogus = true\n",
        )
        .unwrap();
        let out = fleet.command().args(["check-config", "--config"]).arg(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        for expected in [
            "policy.approval_threshold",
            "is the text \"high\"; expected a whole number",
            "delivery.max_attempts",
            "is a list; expected a whole number (0 or more)",
            "fleet.heartbeat_interval",
            "agents[0].bogus",
        ] {
            assert!(err.contains(expected), "{expected} missing from: {err}");
        }
        assert!(!err.contains("(shape)"), "{err}");
        let out = fleet.command().args(["send", "--category", "chat", "--title", "t", "--severity", "loud"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
        let out = fleet.command().args(["mute", "action_required", "--for", "1h"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("force"));
    });
}

/// `switchyard mutes --json | head -1`: the reader is gone before the
/// command writes; it ends (by SIGPIPE, as other tools do) without a panic.
#[test]
fn a_cli_command_whose_reader_is_gone_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    common::multi_thread().block_on(async {
        let fleet = Fleet::new(&["manager"], "").await;
        for i in 0..20 {
            fleet.shell(&[
                "mute",
                "system",
                "--for",
                "1h",
                "--reason",
                &format!("quiet {i}"),
            ]);
        }
        for args in [
            &["mutes", "--json"][..],
            &["mutes"],
            &["status", "--json"],
            &["route", "--category", "alert"],
        ] {
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            let out = fleet
                .command()
                .args(args)
                .stdout(writer)
                .stderr(std::process::Stdio::piped())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.is_empty(),
                "{args:?} said on a closed pipe: {stderr}"
            );
            assert_eq!(
                out.status.signal(),
                Some(nix::sys::signal::Signal::SIGPIPE as i32),
                "{args:?}: {:?}",
                out.status
            );
        }
        // With its reader there, the same command still prints everything.
        let listed: serde_json::Value =
            serde_json::from_str(&fleet.shell(&["mutes", "--json"])).unwrap();
        assert_eq!(listed.as_array().map(Vec::len), Some(20), "{listed}");
    });
}

#[test]
fn an_unusable_workspace_or_database_exits_2_saying_what_to_fix() {
    common::multi_thread().block_on(async {
        let fleet = Fleet::new(&["manager"], "").await;
        // A file where a directory must be: not even root can write under it.
        let blocker = fleet.dir.path().join("not-a-dir");
        std::fs::write(&blocker, b"").unwrap();
        for (key, value, needle) in [
            (
                "SWITCHYARD__FLEET__WORKSPACE",
                format!("{}/ws", blocker.display()),
                "workspace",
            ),
            (
                "SWITCHYARD__FLEET__DATABASE",
                format!("sqlite://{}/{{agent}}.db", blocker.display()),
                "database",
            ),
        ] {
            let out = fleet
                .command()
                .env(key, &value)
                .args(["run", "--agent", "manager"])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{key}: {err}");
            assert!(
                err.contains(needle) && err.contains("not-a-dir"),
                "{key}: {err}"
            );
        }
    });
}

/// Docker present (and the worker image built), or a loud skip — a failure
/// under `SWITCHYARD_REQUIRE_DOCKER=1`.
pub(crate) async fn docker_ready() -> bool {
    let settings = switchyard::config::DockerSettings {
        host: "unix:///var/run/docker.sock".into(),
    };
    match switchyard::workers::DockerRuntime::connect(&settings, "probe").await {
        Ok(rt) => {
            switchyard::workers::ensure_worker_image(
                rt.docker(),
                switchyard::workers::WORKER_IMAGE,
            )
            .await
            .expect("build the worker image");
            true
        }
        Err(e) if std::env::var("SWITCHYARD_REQUIRE_DOCKER").as_deref() == Ok("1") => {
            panic!("SWITCHYARD_REQUIRE_DOCKER=1 but Docker is unavailable: {e}")
        }
        Err(e) => {
            eprintln!(
                "\n!!!!!!!! SKIPPED: no Docker engine ({e}); set SWITCHYARD_REQUIRE_DOCKER=1 to fail instead !!!!!!!!\n"
            );
            false
        }
    }
}

const SKILLS: &str = "[skills.sh]\nimage = \"switchyard-worker:latest\"\ncommand = [\"sh\", \"-c\"]\nmemory = \"64m\"\ntimeout = \"30s\"\n";

#[test]
fn a_task_runs_in_a_container_and_a_risky_one_waits_for_approval() {
    common::multi_thread().block_on(async {
        if !docker_ready().await {
            return;
        }
        let mut fleet = Fleet::new(&["manager", "opsclaw"], SKILLS).await;
        fleet.spawn_agent("manager").await;
        fleet.spawn_agent("opsclaw").await;
        // Handed from the shell to a peer: opsclaw runs it.
        let task = json!({
            "kind": "task", "id": "tsk_hello", "title": "Say hello", "priority": "low", "risk": "low",
            "skills": ["sh"], "steps": [{"skill": "sh", "args": ["echo hello from a container"]}],
            "acceptance": ["stdout contains \"hello from a container\""],
            "memory": {"kind": "solution", "text": "hello works"}
        });
        fleet.drop("opsclaw", "tsk_hello", &task);
        let r = common::wait_for(Duration::from_secs(120), "the task's result", || fleet.result("opsclaw", "done", "tsk_hello")).await;
        assert_eq!(r["result"]["status"], "succeeded", "{r}");
        assert_eq!(r["result"]["exit_codes"], json!([0]), "{r}");
        // The channel holds the task's start message (its thread hangs off it) and the result.
        let posted = wait_for(Duration::from_secs(30), "the result in #sub-agent-results", || {
            common::discord_texts(&fleet.state(), "sub-agent-results")
                .into_iter()
                .find(|t| t.contains("Task tsk_hello succeeded"))
        })
        .await;
        assert!(posted.contains("Say hello"), "{posted}");
        let memory = wait_for(Duration::from_secs(30), "the memory entry in #memory-updates", || {
            common::discord_texts(&fleet.state(), "memory-updates").into_iter().find(|t| t.contains("hello works"))
        })
        .await;
        assert!(memory.contains("tsk_hello"), "{memory}");
        let log = std::fs::read_to_string(fleet.workspace().join("memory.ndjson")).unwrap();
        assert!(log.contains("hello works"), "{log}");
        let telemetry = std::fs::read_to_string(fleet.workspace().join("telemetry.ndjson")).unwrap();
        assert!(telemetry.contains("tsk_hello"), "{telemetry}");

        // A high-risk task parks until its approver decides. opsclaw has no
        // Telegram: it forwards the request to manager, which prompts.
        let risky = json!({
            "kind": "task", "id": "tsk_push", "title": "Push", "priority": "urgent", "risk": "high",
            "skills": ["sh"], "steps": [{"skill": "sh", "args": ["echo git push origin feature"]}]
        });
        fleet.drop("opsclaw", "tsk_push", &risky);
        let parked = fleet.wait_result("opsclaw", "done", "tsk_push").await;
        assert_eq!(parked["result"]["status"], "awaiting_approval", "{parked}");
        let approval = task_approval(&fleet, "opsclaw", "tsk_push").await;
        wait_for(Duration::from_secs(30), "the request to reach manager", || {
            common::telegram_texts(&fleet.state()).into_iter().find(|t| t.contains(&approval))
        })
        .await;

        // Anyone who can write to the inbox can forge a decision with the real
        // approval id, the real task id and a configured approver: refused, audited,
        // the task still parked and its approval still pending everywhere.
        forge_decision(&fleet, "opsclaw", &approval, "tsk_push", "approved").await;
        assert_task_state(&fleet, "opsclaw", "tsk_push", "awaiting_approval").await;

        // The operator's override from the shell decides it on manager, which
        // sends the sealed decision back; approved, it runs.
        fleet.shell(&["approve", &approval]);
        let ran = wait_for(Duration::from_secs(120), "the approved task's result", || {
            common::discord_texts(&fleet.state(), "sub-agent-results")
                .into_iter()
                .find(|t| t.contains("Task tsk_push succeeded"))
        })
        .await;
        assert!(ran.contains("Push"), "{ran}");
        assert_task_state(&fleet, "opsclaw", "tsk_push", "succeeded").await;

        // Denied: blocked, never run.
        let denied = json!({
            "kind": "task", "id": "tsk_rm", "title": "Clean", "priority": "low", "risk": "low",
            "skills": ["sh"], "steps": [{"skill": "sh", "args": ["rm -rf /"]}]
        });
        fleet.drop("opsclaw", "tsk_rm", &denied);
        let parked = fleet.wait_result("opsclaw", "done", "tsk_rm").await;
        assert_eq!(parked["result"]["status"], "awaiting_approval", "dangerous patterns wait for a human: {parked}");
        let approval = task_approval(&fleet, "opsclaw", "tsk_rm").await;
        wait_for(Duration::from_secs(30), "the request to reach manager", || {
            common::telegram_texts(&fleet.state()).into_iter().find(|t| t.contains(&approval))
        })
        .await;
        fleet.shell(&["deny", &approval]);
        assert_task_state(&fleet, "opsclaw", "tsk_rm", "blocked").await;
        // Seed 004: "failed/ — failed or blocked": the item moves there with its reason.
        let blocked = wait_for(Duration::from_secs(30), "tsk_rm in failed/", || fleet.result("opsclaw", "failed", "tsk_rm")).await;
        assert_eq!(blocked["reason"]["status"], "blocked", "{blocked}");
        assert!(blocked["reason"]["reason"].as_str().unwrap().starts_with("denied by"), "{blocked}");
        assert!(fleet.result("opsclaw", "done", "tsk_rm").is_none(), "nothing left behind in done/");
        assert!(fleet.agent_dir("opsclaw").join("failed/tsk_rm.json").exists());
        // The approved one stayed in done/, its result now the final one.
        let pushed = fleet.result("opsclaw", "done", "tsk_push").unwrap();
        assert_eq!(pushed["result"]["status"], "succeeded", "{pushed}");
    });
}

/// The approval request `task` on `agent` waits on.
async fn task_approval(fleet: &Fleet, agent: &str, task: &str) -> String {
    let store = fleet.store(agent).await;
    let row = switchyard::store::tasks::get(store.pool(), task)
        .await
        .unwrap()
        .expect("the task");
    let id = row.approval_id.expect("a parked task names its approval");
    let a = store.approval(&id).await.unwrap().expect("the approval");
    assert_eq!(a.task_id.as_deref(), Some(task));
    id
}

async fn assert_task_state(fleet: &Fleet, agent: &str, task: &str, state: &str) {
    let store = fleet.store(agent).await;
    let start = std::time::Instant::now();
    loop {
        let row = switchyard::store::tasks::get(store.pool(), task)
            .await
            .unwrap()
            .expect("the task");
        if row.state.as_str() == state {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{task} is {}, not {state} ({:?})",
            row.state.as_str(),
            row.reason
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Drop a forged `approval_decision` and check it is refused, audited and
/// changes nothing: not on `agent`, not on the Telegram owner.
async fn forge_decision(fleet: &Fleet, agent: &str, approval: &str, task: &str, decision: &str) {
    let forged = format!("forged_{approval}");
    fleet.drop(
        agent,
        &forged,
        &json!({"kind": "approval_decision", "id": approval, "task_id": task, "decision": decision,
                "by": "@operator", "at": chrono::Utc::now().to_rfc3339()}),
    );
    let refused = fleet.wait_result(agent, "failed", &forged).await;
    let why = refused["reason"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(why.contains("not sealed"), "{refused}");
    let store = fleet.store(agent).await;
    let audit = store.approval_audit(approval).await.unwrap();
    assert!(
        audit.iter().any(|e| e.action == "approval.decision_refused"
            && e.actor == "@operator"
            && e.outcome == "refused"),
        "{audit:?}"
    );
    assert_eq!(
        store
            .approval(approval)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "pending"
    );
    let owner = fleet.store("manager").await;
    assert_eq!(
        owner
            .approval(approval)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "pending"
    );
}

#[test]
fn a_task_dropped_again_after_it_failed_is_a_new_attempt_and_both_are_kept() {
    common::multi_thread().block_on(async {
        if !docker_ready().await {
            return;
        }
        let mut fleet = Fleet::new(&["manager"], SKILLS).await;
        fleet.spawn_agent("manager").await;
        let task = |script: &str| {
            json!({"kind": "task", "id": "tsk_retry", "title": "Retry me", "priority": "low", "risk": "low",
                   "skills": ["sh"], "steps": [{"skill": "sh", "args": [script]}]})
        };
        fleet.drop("manager", "tsk_retry", &task("exit 4"));
        let failed = wait_for(Duration::from_secs(120), "the failed run", || fleet.result("manager", "failed", "tsk_retry")).await;
        assert_eq!(failed["reason"]["status"], "failed", "{failed}");
        // Fixed and dropped again under the same id: it runs again.
        fleet.drop("manager", "tsk_retry", &task("echo fixed"));
        let done = wait_for(Duration::from_secs(120), "the second run", || fleet.result("manager", "done", "tsk_retry")).await;
        assert_eq!(done["result"]["status"], "succeeded", "{done}");
        // The first run's files are still there, untouched.
        assert_eq!(fleet.result("manager", "failed", "tsk_retry").unwrap()["reason"]["status"], "failed");
        let store = fleet.store("manager").await;
        let row = switchyard::store::tasks::get(store.pool(), "tsk_retry").await.unwrap().unwrap();
        assert_eq!(row.state.as_str(), "succeeded");
    });
}

#[test]
fn a_tasks_progress_goes_into_one_thread_and_the_channel_stays_quiet() {
    common::multi_thread().block_on(async {
        if !docker_ready().await {
            return;
        }
        let mut fleet = Fleet::new(&["manager"], SKILLS).await;
        fleet.spawn_agent("manager").await;
        let task = json!({
            "kind": "task", "id": "tsk_two", "title": "Two steps", "priority": "low", "risk": "low",
            "skills": ["sh"],
            "steps": [{"skill": "sh", "args": ["echo first"]}, {"skill": "sh", "args": ["echo second"]}],
        });
        fleet.drop("manager", "tsk_two", &task);
        let r = common::wait_for(Duration::from_secs(120), "the task's result", || fleet.result("manager", "done", "tsk_two")).await;
        assert_eq!(r["result"]["status"], "succeeded", "{r}");
        let results = common::DISCORD_CHANNELS.iter().find(|(a, _)| *a == "sub-agent-results").unwrap().1;
        // The result is routed after the thread is written; wait for it to be delivered.
        let channel = wait_for(Duration::from_secs(30), "the result in #sub-agent-results", || {
            let texts = common::discord_texts(&fleet.state(), "sub-agent-results");
            (texts.len() >= 2).then_some(texts)
        })
        .await;
        assert_eq!(channel.len(), 2, "only the start message and the result: {channel:#?}");
        assert!(channel[0].contains("Task tsk_two started: Two steps"), "{channel:#?}");
        assert!(channel[1].contains("tsk_two") && channel[1].contains("succeeded"), "{channel:#?}");
        let state = fleet.state();
        let threads = state.discord.threads_in(results);
        assert_eq!(threads.len(), 1, "one thread per task: {threads:#?}");
        let thread = threads[0];
        assert!(thread.name.contains("tsk_two"), "{}", thread.name);
        let starter = &state.discord_messages(results)[0];
        assert_eq!(thread.starter_message_id, starter.id);
        let lines: Vec<String> = thread.messages.iter().map(|m| m.text()).collect();
        let find = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle:?} not in {lines:#?}"));
        let (s1, e1, s2, e2, done) = (
            find("Step 1 (sh) started"),
            find("Step 1 (sh) succeeded: exit code 0"),
            find("Step 2 (sh) started"),
            find("Step 2 (sh) succeeded: exit code 0"),
            find("Task succeeded after 1 attempt"),
        );
        assert!(s1 < e1 && e1 < s2 && s2 < e2 && e2 < done, "in order: {lines:#?}");
        assert_eq!(lines.len(), 5, "{lines:#?}");
    });
}

#[test]
fn the_kill_switch_reaches_every_agent() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["alpha", "beta", "gamma"], "").await;
        for a in ["alpha", "beta", "gamma"] {
            fleet.spawn_agent(a).await;
        }
        let started = std::time::Instant::now();
        let out = fleet
            .command()
            .args(["kill", "--reason", "test"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status = fleet.workspace().join("status.json");
        wait_for(
            Duration::from_secs(30),
            "every agent to report killed",
            || {
                let s = common::read_json(&status);
                ["alpha", "beta", "gamma"]
                    .iter()
                    .all(|a| s["agents"][a]["state"] == "killed")
                    .then_some(())
            },
        )
        .await;
        eprintln!(
            "kill switch reached 3 agents in {:?} (heartbeat interval 1 s)",
            started.elapsed()
        );
        // Killed agents take no new work: an event waits in the inbox.
        fleet.drop(
            "beta",
            "while_killed",
            &event("while_killed", "chat", "info", "held by the kill switch"),
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            fleet.result("beta", "done", "while_killed").is_none(),
            "no work while killed"
        );
        let out = fleet.command().args(["resume"]).output().unwrap();
        assert!(out.status.success());
        fleet.wait_result("beta", "done", "while_killed").await;
    });
}

#[test]
fn a_schedule_drops_its_item_into_the_agents_inbox() {
    common::multi_thread().block_on(async {
        let schedule = "[[schedules]]\nname = \"every-second\"\ncron = \"* * * * * *\"\nagent = \"manager\"\n\
                        item = { kind = \"event\", category = \"briefing\", title = \"Scheduled briefing\" }\n";
        let mut fleet = Fleet::new(&["manager"], schedule).await;
        let out = fleet.command().args(["schedules", "--next", "2"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(listed.contains("every-second"));
        // A table: a header, then one row per schedule under it.
        let lines: Vec<&str> = listed.lines().collect();
        assert!(lines[0].starts_with("SCHEDULE") && lines[0].ends_with("NEXT RUNS"), "{listed}");
        assert_eq!(lines[1].find("manager"), lines[0].find("AGENT"), "{listed}");
        fleet.spawn_agent("manager").await;
        let text = wait_for(Duration::from_secs(30), "the scheduled briefing", || {
            common::discord_texts(&fleet.state(), "briefings").into_iter().find(|t| t.contains("Scheduled briefing"))
        })
        .await;
        assert!(text.contains("Scheduled briefing"));
    });
}

#[test]
fn a_schedule_added_by_a_reload_fires_without_a_restart() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        fleet.spawn_agent("manager").await;
        let pid = common::read_json(&fleet.workspace().join("status.json"))["agents"]["manager"]["pid"].as_u64();
        let schedule = "[[schedules]]\nname = \"every-second\"\ncron = \"* * * * * *\"\nagent = \"manager\"\n\
                        item = { kind = \"event\", category = \"briefing\", title = \"Reloaded briefing\" }\n";
        std::fs::write(&fleet.config_file, common::fleet_toml(&["manager"], schedule)).unwrap();
        let out = fleet.command().args(["reload", "--agent", "manager"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("applied now: [[schedules]]"), "{stdout}");
        assert!(!stdout.contains("takes a restart"), "{stdout}");
        wait_for(Duration::from_secs(30), "the reloaded schedule's briefing", || {
            common::discord_texts(&fleet.state(), "briefings").into_iter().find(|t| t.contains("Reloaded briefing"))
        })
        .await;
        let now = common::read_json(&fleet.workspace().join("status.json"))["agents"]["manager"]["pid"].as_u64();
        assert_eq!(now, pid, "the same process: no restart");
    });
}

#[test]
fn a_task_on_a_locked_repo_waits_until_the_lock_is_released() {
    common::multi_thread().block_on(async {
        if !docker_ready().await {
            return;
        }
        let mut fleet = Fleet::new(&["manager"], SKILLS).await;
        fleet.spawn_agent("manager").await;
        let out = fleet
            .command()
            .args(["lock", "acquire", "repo:acme/web", "--ttl", "10m", "--reason", "deploying", "--holder", "aaron"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let task = json!({
            "kind": "task", "id": "tsk_locked", "title": "Touch the repo", "priority": "low", "risk": "low",
            "repo": "acme/web", "branch": "feature", "skills": ["sh"], "steps": [{"skill": "sh", "args": ["echo touched"]}]
        });
        fleet.drop("manager", "tsk_locked", &task);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(fleet.result("manager", "done", "tsk_locked").is_none(), "the task must wait for the lock");
        // The holder releases; the task runs, holding the lock itself meanwhile.
        let out = fleet.command().args(["lock", "release", "repo:acme/web", "--holder", "aaron"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let r = common::wait_for(Duration::from_secs(60), "the task after the release", || {
            fleet.result("manager", "done", "tsk_locked")
        })
        .await;
        assert_eq!(r["result"]["status"], "succeeded", "{r}");
        let s = common::read_json(&fleet.workspace().join("status.json"));
        assert!(s["locks"].get("repo:acme/web").is_none(), "the task released its lock: {s}");
    });
}

fn containers(label: &str, all: bool) -> Vec<String> {
    let mut cmd = std::process::Command::new("docker");
    cmd.args(["ps", "-q", "--filter", &format!("label={label}")]);
    if all {
        cmd.arg("-a");
    }
    let out = cmd.output().expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn kill_9_mid_step_reaps_the_orphan_and_runs_the_task_again() {
    common::multi_thread().block_on(async {
        if !docker_ready().await {
            return;
        }
        let mut fleet = Fleet::new(&["manager"], SKILLS).await;
        fleet.spawn_agent("manager").await;
        let task = json!({
            "kind": "task", "id": "tsk_k9", "title": "Slow", "priority": "low", "risk": "low",
            "skills": ["sh"], "steps": [{"skill": "sh", "args": ["sleep 3; echo slow done"]}]
        });
        fleet.drop("manager", "tsk_k9", &task);
        let label = "switchyard.task=tsk_k9";
        wait_for(
            Duration::from_secs(60),
            "the step's container to run",
            || (!containers(label, false).is_empty()).then_some(()),
        )
        .await;
        fleet.kill_agent("manager");
        assert!(
            !containers(label, true).is_empty(),
            "the crash leaves the container behind"
        );
        fleet.spawn_agent("manager").await;
        let r = common::wait_for(
            Duration::from_secs(90),
            "the task after the restart",
            || fleet.result("manager", "done", "tsk_k9"),
        )
        .await;
        assert_eq!(
            r["attempt"], 2,
            "the recovered item says it is a second attempt: {r}"
        );
        assert_eq!(r["result"]["status"], "succeeded", "{r}");
        wait_for(
            Duration::from_secs(30),
            "no container of the task left",
            || containers(label, true).is_empty().then_some(()),
        )
        .await;
    });
}

#[test]
fn consecutive_failures_pause_the_agent_until_an_operator_resumes_it() {
    common::multi_thread().block_on(async {
        if !docker_ready().await {
            return;
        }
        let mut fleet = Fleet::new(&["manager"], SKILLS).await;
        fleet.spawn_agent("manager").await;
        let failing = |i: usize| {
            json!({"kind": "task", "id": format!("tsk_fail_{i}"), "title": "Fails", "priority": "low", "risk": "low",
                   "skills": ["sh"], "steps": [{"skill": "sh", "args": ["exit 3"]}]})
        };
        // The breaker opens after 5 failed tasks in a row (3 attempts each, with backoff).
        for i in 0..5 {
            fleet.drop("manager", &format!("tsk_fail_{i}"), &failing(i));
        }
        let alert = wait_for(Duration::from_secs(120), "the paused alert", || {
            common::discord_texts(&fleet.state(), "alerts").into_iter().find(|t| t.contains("paused itself"))
        })
        .await;
        assert!(alert.contains("switchyard resume --agent manager"), "{alert}");
        // A task that fails ends in failed/ (seed 004), with its exit codes.
        let failed = fleet.wait_result("manager", "failed", "tsk_fail_0").await;
        assert_eq!(failed["reason"]["status"], "failed", "{failed}");
        assert_eq!(failed["reason"]["exit_codes"], json!([3, 3, 3]), "{failed}");
        let status = fleet.workspace().join("status.json");
        wait_for(Duration::from_secs(10), "the heartbeat to say paused", || {
            (common::read_json(&status)["agents"]["manager"]["state"] == "paused").then_some(())
        })
        .await;
        // Paused: a new task is refused with the reason, not run.
        fleet.drop("manager", "tsk_while_paused", &failing(99).as_object().cloned().map(|mut o| {
            o.insert("id".into(), "tsk_while_paused".into());
            serde_json::Value::Object(o)
        }).unwrap());
        let refused = fleet.wait_result("manager", "failed", "tsk_while_paused").await;
        assert!(refused.to_string().contains("paused"), "{refused}");
        // The operator resumes it; work flows again.
        let out = fleet.command().args(["resume", "--agent", "manager"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        wait_for(Duration::from_secs(10), "the heartbeat to leave paused", || {
            (common::read_json(&status)["agents"]["manager"]["state"] == "idle").then_some(())
        })
        .await;
        let ok = json!({"kind": "task", "id": "tsk_after", "title": "Works", "priority": "low", "risk": "low",
                        "skills": ["sh"], "steps": [{"skill": "sh", "args": ["echo ok"]}]});
        fleet.drop("manager", "tsk_after", &ok);
        let r = common::wait_for(Duration::from_secs(60), "a task after the resume", || fleet.result("manager", "done", "tsk_after")).await;
        assert_eq!(r["result"]["status"], "succeeded", "{r}");
    });
}

#[test]
fn send_warns_of_a_category_no_route_names_and_wait_shows_where_the_event_went() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        // Before the agent runs: --wait gives up after its timeout, and says why.
        let out = fleet
            .command()
            .args([
                "send",
                "--category",
                "alert",
                "--title",
                "nobody home",
                "--wait",
                "--timeout",
                "1s",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("did not handle the event within 1s"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        fleet.spawn_agent("manager").await;
        let out = fleet
            .command()
            .args(["send", "--category", "bogus", "--title", "typo", "--wait"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("warning: no route matches category \"bogus\"")
                && stderr.contains("Categories the routes name: ")
                && stderr.contains("alert"),
            "{stderr}"
        );
        let out = fleet
            .command()
            .args([
                "send",
                "--category",
                "alert",
                "--severity",
                "critical",
                "--title",
                "down",
                "--wait",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).is_empty(),
            "no warning for a routed category"
        );
        assert!(
            stdout.contains("discord:alerts")
                && stdout.contains("telegram:operator")
                && stdout.contains(": pending"),
            "{stdout}"
        );
        let _ = fleet.stop_agent("manager").await;
    });
}

#[test]
fn sighup_reloads_routes_names_what_needs_a_restart_and_keeps_running_on_a_bad_file() {
    common::multi_thread().block_on(async {
        let routes = |to: &str, attempts: u32| {
            format!(
                "[[routes]]\nname = \"odd\"\nmatch = {{ category = \"memory_update\" }}\nto = [\"{to}\"]\n\n\
                 [[routes]]\nname = \"rest\"\nto = [\"discord:system\"]\n"
            )
            .replace("max_attempts = 50", &format!("max_attempts = {attempts}"))
        };
        let mut fleet = Fleet::new(&["manager"], &routes("discord:system", 50)).await;
        fleet.spawn_agent("manager").await;
        let reload = |fleet: &Fleet| {
            fleet
                .command()
                .args(["reload", "--agent", "manager"])
                .output()
                .unwrap()
        };
        let out = reload(&fleet);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "manager: unchanged"
        );

        // A new route applies at once; a changed [delivery] is named as needing a restart.
        let text = common::fleet_toml(&["manager"], &routes("discord:alerts", 50))
            .replace("max_attempts = 50", "max_attempts = 7");
        std::fs::write(&fleet.config_file, &text).unwrap();
        let good = fleet.dir.path().join("good.toml");
        std::fs::write(&good, &text).unwrap();
        let out = reload(&fleet);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("manager: applied") && stdout.contains("applied now: routes"),
            "{stdout}"
        );
        assert!(
            stdout.contains("takes a restart of manager: [delivery]"),
            "{stdout}"
        );
        let out = fleet
            .command()
            .args([
                "send",
                "--category",
                "memory_update",
                "--title",
                "after the reload",
                "--wait",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("discord:alerts  (rule odd)"), "{stdout}");

        // A file with problems changes nothing, and says why: `reload` checks it
        // first, and the agent itself when signalled directly.
        std::fs::write(
            &fleet.config_file,
            common::fleet_toml(
                &["manager"],
                &format!("[policy]\napproval_threshold = \"high\"\n{}", routes("discord:chat", 50)),
            ),
        )
        .unwrap();
        let out = reload(&fleet);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("keeps its running configuration") && stderr.contains("policy.approval_threshold"),
            "{stderr}"
        );
        let status_path = fleet.workspace().join("status.json");
        let pid = common::read_json(&status_path)["agents"]["manager"]["pid"].as_i64().unwrap();
        let sent = chrono::Utc::now();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGHUP).unwrap();
        let record = common::wait_for(Duration::from_secs(10), "the refused reload in the heartbeat", || {
            let r = common::read_json(&status_path)["agents"]["manager"]["last_reload"].clone();
            let at: chrono::DateTime<chrono::Utc> = r["at"].as_str()?.parse().ok()?;
            (at >= sent).then_some(r)
        })
        .await;
        assert_eq!(record["outcome"], "refused", "{record}");
        assert!(record["problems"][0].as_str().unwrap().contains("policy.approval_threshold"), "{record}");
        // The agent routes as before (the CLI reads the good copy: the file is bad).
        let out = fleet
            .command()
            .args(["--config"])
            .arg(&good)
            .args(["send", "--category", "memory_update", "--title", "still alerts", "--wait"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("discord:alerts  (rule odd)"), "{stdout}");
        // Still running: it stops on SIGTERM as usual, with its final status.
        let status = fleet.stop_agent("manager").await;
        assert!(status.success(), "{status}");
    });
}

/// The metric families an agent serves, as `# TYPE NAME KIND` lines name them.
fn metric_families(text: &str) -> std::collections::BTreeSet<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
        })
        .collect()
}

#[test]
fn metrics_a_prometheus_user_alerts_on_are_there_from_the_start_and_readme_lists_them_all() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        fleet.spawn_agent("manager").await;
        let status_path = fleet.workspace().join("status.json");
        let health = common::wait_for(Duration::from_secs(20), "the health address", || {
            common::read_json(&status_path)["agents"]["manager"]["health"]
                .as_str()
                .map(str::to_owned)
        })
        .await;
        // Wait for a heartbeat after start, which sets the gauges.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let text = reqwest::get(format!("http://{health}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // Counters are there at zero before anything happened.
        for sample in [
            "switchyard_delivery_failed_total{platform=\"discord\"} 0",
            "switchyard_delivery_retried_total{platform=\"telegram\"} 0",
            "switchyard_delivery_coalesced_total{platform=\"discord\"} 0",
            "switchyard_delivery_rate_limited_429_total{platform=\"discord\"} 0",
            "switchyard_events_total{category=\"alert\"} 0",
            "switchyard_inbox_items_total{outcome=\"failed\"} 0",
            "switchyard_deliveries{state=\"failed\"} 0",
            "switchyard_deliveries{state=\"pending\"} 0",
            "switchyard_approvals_pending 0",
            "switchyard_kill_switch 0",
            "switchyard_agent_state{state=\"idle\"} 1",
            "switchyard_agent_state{state=\"killed\"} 0",
        ] {
            assert!(text.contains(sample), "{sample} not in:\n{text}");
        }
        let build = format!(
            "switchyard_build_info{{version=\"{}\",commit=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            switchyard::metrics::COMMIT
        );
        assert!(text.contains(&build), "{build} not in:\n{text}");
        let rss = text
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .expect("process_resident_memory_bytes");
        assert!(rss > 1e6, "{rss}");
        // README's table lists exactly what is served.
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let listed: std::collections::BTreeSet<(String, String)> = readme
            .lines()
            // The conversation metrics are registered by agents with a responder only.
            .filter(|l| !l.contains("(agents with a responder)"))
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| {
                let (name, rest) = l.split_once("` | ")?;
                let kind = rest.split(" |").next()?.trim().to_owned();
                (name.starts_with("switchyard_") || name.starts_with("process_"))
                    .then(|| (name.to_owned(), kind))
            })
            .collect();
        let served = metric_families(&text);
        assert_eq!(
            listed,
            served,
            "README's metric table and /metrics differ:\nonly in README: {:?}\nonly served: {:?}",
            listed.difference(&served).collect::<Vec<_>>(),
            served.difference(&listed).collect::<Vec<_>>()
        );
        let _ = fleet.stop_agent("manager").await;
    });
}

#[test]
fn completions_and_the_manual_page_cover_every_command() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(common::exe())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = run(&["completions", "bash"]);
    assert!(bash.contains("_switchyard()"), "{bash}");
    for command in ["reload", "check-config", "completions", "send"] {
        assert!(bash.contains(command), "{command} not completed");
    }
    assert!(run(&["completions", "zsh"]).contains("#compdef switchyard"));
    assert!(run(&["completions", "fish"]).contains("complete -c switchyard"));
    let man = run(&["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH switchyard"),
        "{}",
        &man[..200.min(man.len())]
    );
    assert!(man.contains("reload"), "the manual names the commands");
    let version = run(&["--version"]);
    assert!(
        version.trim() == format!("switchyard {}", switchyard::metrics::VERSION),
        "{version}"
    );
}

#[test]
fn the_worker_thread_count_is_checked_and_one_worker_is_enough() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        for bad in ["0", "65", "many"] {
            let out = fleet
                .command()
                .env("SWITCHYARD_WORKER_THREADS", bad)
                .arg("check-config")
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2), "{bad}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("SWITCHYARD_WORKER_THREADS") && stderr.contains("1 to 64"),
                "{stderr}"
            );
        }
        // One worker is enough for an agent: it starts, routes and stops as usual.
        fleet
            .spawn_agent_with("manager", &[("SWITCHYARD_WORKER_THREADS", "1")])
            .await;
        fleet.drop(
            "manager",
            "evt_one_worker",
            &event("evt_one_worker", "alert", "warning", "one worker"),
        );
        wait_for(
            Duration::from_secs(20),
            "the alert from a one-worker agent",
            || {
                common::discord_texts(&fleet.state(), "alerts")
                    .into_iter()
                    .find(|t| t.contains("one worker"))
            },
        )
        .await;
        assert!(fleet.stop_agent("manager").await.success());
    });
}

#[test]
fn doctor_checks_tokens_channels_chats_and_the_workspace_against_the_platforms() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager", "beta"], "").await;
        let out = fleet.command().args(["doctor", "--agent", "manager"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        // Before the agent's first run its slash commands are not registered: a warning.
        assert!(
            stdout.contains("warn  manager discord commands: not registered on guild 900000000000000000: /"),
            "{stdout}"
        );
        fleet.spawn_agent("manager").await;
        let registered = wait_for(Duration::from_secs(20), "the commands registered", || {
            let out = fleet.command().args(["doctor", "--agent", "manager"]).output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            stdout.contains("ok    manager discord commands: ").then_some(stdout)
        })
        .await;
        assert!(registered.contains("slash commands registered on guild 900000000000000000"), "{registered}");
        assert!(fleet.stop_agent("manager").await.success());
        let out = fleet.command().args(["doctor", "--agent", "manager"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        for expected in [
            "ok    manager discord token: TEST_MANAGER_DISCORD_TOKEN is accepted: bot 100",
            "ok    manager discord:alerts: #alerts (900000000000000002) is reachable",
            "ok    manager telegram token: TEST_TELEGRAM_BOT_TOKEN is accepted",
            "ok    manager telegram:operator: ",
            "ok    manager workspace: ",
            "every check passed",
        ] {
            assert!(stdout.contains(expected), "{expected:?} not in:\n{stdout}");
        }
        // A channel the server does not have, and a token variable that is not set.
        let text = std::fs::read_to_string(&fleet.config_file)
            .unwrap()
            .replace("[discord.channels]\n", "[discord.channels]\nghost = \"900000000000000099\"\n");
        std::fs::write(&fleet.config_file, text).unwrap();
        let out = fleet
            .command()
            .env_remove(common::discord_token_env("beta"))
            .args(["doctor"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{stdout}");
        assert!(
            stdout.contains("FAIL  manager discord:ghost: Discord has no channel 900000000000000099 (404 Unknown Channel): copy the id again"),
            "{stdout}"
        );
        assert!(
            stdout.contains("FAIL  beta discord token: TEST_BETA_DISCORD_TOKEN is not set"),
            "{stdout}"
        );
        // check-config says what it did not check.
        let out = fleet.command().args(["check-config"]).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("not checked: the tokens"));
    });
}

#[test]
fn commands_that_print_data_print_json_on_request() {
    common::multi_thread().block_on(async {
        let fleet = Fleet::new(
            &["manager"],
            "[[schedules]]\nname = \"brief\"\ncron = \"0 7 * * 1-5\"\nagent = \"manager\"\nitem = { kind = \"event\", category = \"briefing\", title = \"b\" }\n",
        )
        .await;
        let json = |args: &[&str]| -> (Option<i32>, serde_json::Value) {
            let out = fleet.command().args(args).output().unwrap();
            let v = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
            (out.status.code(), v)
        };
        let (code, v) = json(&["check-config", "--json"]);
        assert_eq!((code, v["ok"].clone()), (Some(0), serde_json::json!(true)), "{v}");
        assert_eq!(v["agents"], 1);
        let (_, v) = json(&["schedules", "--json", "--next", "2"]);
        assert_eq!(v[0]["name"], "brief");
        assert_eq!(v[0]["next_runs"].as_array().unwrap().len(), 2, "{v}");
        fleet.shell(&["lock", "acquire", "deploy", "--ttl", "5m", "--reason", "release"]);
        let (_, v) = json(&["lock", "list", "--json"]);
        assert_eq!(v["deploy"]["reason"], "release", "{v}");
        let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/risky-task.json");
        let out = fleet
            .command()
            .args(["--config", concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.toml"), "policy", "check", spec, "--json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!((v["score"].clone(), v["needs_approval"].clone()), (serde_json::json!(100), serde_json::json!(true)), "{v}");
        // A bad file: every problem as an object, exit 2.
        let bad = fleet.dir.path().join("bad.toml");
        std::fs::write(&bad, "[policy]\napproval_threshold = \"high\"\n").unwrap();
        let out = fleet.command().args(["check-config", "--json", "--config"]).arg(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["ok"], false);
        assert!(
            v["problems"].as_array().unwrap().iter().any(|p| p["key"] == "policy.approval_threshold"),
            "{v}"
        );
    });
}
