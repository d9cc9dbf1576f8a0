//! Files that travel with messages, end to end: a real agent process reads
//! the files an event names, keeps their bytes with each delivery, and
//! uploads them through serenity (Discord's multipart `payload_json` +
//! `files[n]`) and teloxide (`sendDocument` / `sendPhoto`) to the sandbox,
//! which keeps the bytes and serves them back as the platforms' CDNs do.
//! Paths that walk out of the workspace or into an agent's state refuse the
//! item; files that are missing or over a platform's limit stay behind, and
//! the message says so.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_sandbox::{Fault, Platform, SandboxState};

use crate::common::{self, DISCORD_CHANNELS, Fleet, OPERATOR_CHAT, wait_for};

/// A 4×4 red PNG.
pub const PNG: &[u8] = &[
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 4, 0, 0, 0, 4, 8, 2, 0,
    0, 0, 38, 147, 9, 41, 0, 0, 0, 16, 73, 68, 65, 84, 120, 218, 99, 56, 33, 39, 7, 71, 12, 196,
    113, 0, 177, 99, 16, 65, 211, 74, 204, 13, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

fn channel(alias: &str) -> u64 {
    DISCORD_CHANNELS
        .iter()
        .find(|(a, _)| *a == alias)
        .map(|(_, id)| *id)
        .unwrap()
}

/// The messages of a channel that carry the title.
fn with_title(
    state: &SandboxState,
    alias: &str,
    title: &str,
) -> Vec<switchyard_sandbox::DiscordMessage> {
    state
        .discord_messages(channel(alias))
        .iter()
        .filter(|m| m.text().contains(title))
        .cloned()
        .collect()
}

async fn download(url: &str) -> Vec<u8> {
    let r = reqwest::get(url)
        .await
        .expect("the sandbox serves the file");
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.bytes().await.unwrap().to_vec()
}

fn event_with(id: &str, category: &str, severity: &str, title: &str, files: &[&str]) -> Value {
    let mut e = common::event(id, category, severity, title);
    e["attachments"] = json!(files);
    e
}

fn write(fleet: &Fleet, rel: &str, bytes: &[u8]) {
    let path = fleet.workspace().join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_report_and_an_image_reach_discord_and_telegram_byte_for_byte() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        let report = b"# Weekly review\n\n- 3 PRs merged\n- 1 incident\n".to_vec();
        write(&fleet, "reports/weekly-review.md", &report);
        write(&fleet, "reports/latency.png", PNG);
        fleet.spawn_agent("manager").await;
        fleet.drop(
            "manager",
            "with-files",
            &event_with(
                "evt_files_1",
                "alert",
                "critical",
                "Latency over budget",
                &["reports/weekly-review.md", "reports/latency.png"],
            ),
        );
        let result = fleet.wait_result("manager", "done", "with-files").await;
        let listed = result["result"]["attachments"]
            .as_array()
            .expect("the result lists the files");
        assert_eq!(listed.len(), 2, "{result}");
        assert_eq!(listed[0]["path"], "reports/weekly-review.md");
        assert_eq!(listed[0]["size"], report.len());
        assert_eq!(
            listed[0]["sha256"],
            switchyard::files::hex_digest(&report),
            "{result}"
        );

        // Discord: one message, both files, the image shown in the embed.
        let message = wait_for(Duration::from_secs(20), "the alert with its files", || {
            with_title(&fleet.state(), "alerts", "Latency over budget")
                .into_iter()
                .next()
        })
        .await;
        let names: Vec<&str> = message
            .attachments
            .iter()
            .map(|a| a["filename"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["weekly-review.md", "latency.png"]);
        assert_eq!(
            message.embeds[0]["image"]["url"], "attachment://latency.png",
            "{:?}",
            message.embeds
        );
        assert_eq!(message.attachments[1]["content_type"], "image/png");
        let got = download(message.attachments[0]["url"].as_str().unwrap()).await;
        assert_eq!(got, report);
        let got = download(message.attachments[1]["url"].as_str().unwrap()).await;
        assert_eq!(got, PNG);

        // Telegram: the text, then the report as a document and the image as a photo.
        let tg = wait_for(Duration::from_secs(20), "the Telegram parts", || {
            let msgs = fleet.state().telegram_messages(OPERATOR_CHAT).to_vec();
            (msgs.len() >= 3).then_some(msgs)
        })
        .await;
        assert!(tg[0].text.contains("Latency over budget"), "{:?}", tg[0]);
        let doc = tg[1].document.as_ref().expect("a document");
        assert_eq!(doc["file_name"], "weekly-review.md");
        assert_eq!(tg[1].text, "📎 reports/weekly-review.md");
        assert!(tg[2].photo.is_some(), "{:?}", tg[2]);
        let base = fleet.sandbox.telegram_api_base();
        let token = common::TELEGRAM_TOKEN;
        let file: Value = reqwest::Client::new()
            .post(format!("{base}/bot{token}/getFile"))
            .json(&json!({"file_id": doc["file_id"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let path = file["result"]["file_path"].as_str().expect("a file path");
        let got = download(&format!("{base}/file/bot{token}/{path}")).await;
        assert_eq!(got, report);
        let _ = fleet.stop_agent("manager").await;
    });
}

#[test]
fn paths_out_of_the_workspace_or_into_state_refuse_the_item_and_send_nothing() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        write(&fleet, "notes/private.txt", b"not for chat");
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s3cret").unwrap();
        std::fs::create_dir_all(fleet.workspace().join("reports")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret"),
            fleet.workspace().join("reports/linked.txt"),
        )
        .unwrap();
        fleet.spawn_agent("manager").await;
        let cases = [
            ("escape", "../../etc/passwd", "`..`"),
            ("absolute", "/etc/passwd", "absolute"),
            ("symlink", "reports/linked.txt", "outside the workspace"),
            ("state", "agents/manager/state.db", "agent's own state"),
            (
                "unlisted",
                "notes/private.txt",
                "not in a folder messages may attach from",
            ),
        ];
        for (id, path, _) in &cases {
            fleet.drop(
                "manager",
                id,
                &event_with(
                    &format!("evt_bad_{id}"),
                    "briefing",
                    "info",
                    &format!("Bad {id}"),
                    &[path],
                ),
            );
        }
        for (id, path, why) in &cases {
            let r = fleet.wait_result("manager", "failed", id).await;
            assert!(r.to_string().contains(why), "{path}: {r}");
        }
        // Still running, and the next good item goes through.
        write(&fleet, "reports/ok.md", b"ok");
        fleet.drop(
            "manager",
            "good",
            &event_with(
                "evt_good",
                "briefing",
                "info",
                "Good one",
                &["reports/ok.md"],
            ),
        );
        fleet.wait_result("manager", "done", "good").await;
        wait_for(Duration::from_secs(20), "the good briefing", || {
            (!with_title(&fleet.state(), "briefings", "Good one").is_empty()).then_some(())
        })
        .await;
        let state = fleet.state();
        for (id, ..) in &cases {
            assert!(
                with_title(&state, "briefings", &format!("Bad {id}")).is_empty(),
                "{id} was posted"
            );
        }
        let _ = fleet.stop_agent("manager").await;
    });
}

#[test]
fn a_missing_or_too_big_file_stays_behind_and_the_message_says_where_it_is() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        // Over Discord's 10 MiB, under Telegram's 50 MB.
        let big = vec![b'x'; 11 * 1024 * 1024];
        write(&fleet, "reports/big.log", &big);
        fleet.spawn_agent("manager").await;
        fleet.drop(
            "manager",
            "behind",
            &event_with(
                "evt_behind",
                "alert",
                "critical",
                "Nightly build failed",
                &["reports/big.log", "reports/missing.md"],
            ),
        );
        let r = fleet.wait_result("manager", "done", "behind").await;
        let listed = r["result"]["attachments"].as_array().unwrap();
        assert!(
            listed[0]["left_behind"]["discord:alerts"]
                .as_str()
                .unwrap()
                .contains("Discord's upload limit"),
            "{r}"
        );
        assert!(
            listed[1]["left_behind"]
                .as_str()
                .unwrap()
                .contains("not found"),
            "{r}"
        );

        let message = wait_for(Duration::from_secs(20), "the alert", || {
            with_title(&fleet.state(), "alerts", "Nightly build failed")
                .into_iter()
                .next()
        })
        .await;
        assert!(message.attachments.is_empty(), "{:?}", message.attachments);
        let text = message.text();
        assert!(
            text.contains("reports/big.log was not attached")
                && text.contains("Discord's upload limit"),
            "{text}"
        );
        assert!(
            text.contains("reports/missing.md was not attached"),
            "{text}"
        );

        // Telegram takes the big log as a document; only the missing file is named.
        let tg = wait_for(Duration::from_secs(30), "the Telegram document", || {
            let msgs = fleet.state().telegram_messages(OPERATOR_CHAT).to_vec();
            msgs.iter().any(|m| m.document.is_some()).then_some(msgs)
        })
        .await;
        assert!(
            tg[0].text.contains("reports/missing.md was not attached"),
            "{}",
            tg[0].text
        );
        assert!(
            !tg[0].text.contains("big.log was not attached"),
            "{}",
            tg[0].text
        );
        let doc = tg.iter().find_map(|m| m.document.clone()).unwrap();
        assert_eq!(doc["file_size"], big.len());
        let _ = fleet.stop_agent("manager").await;
    });
}

#[test]
fn a_retry_sends_the_bytes_recorded_even_after_the_file_changed() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        write(&fleet, "reports/status.md", b"version one");
        fleet.spawn_agent("manager").await;
        common::fail_discord(&fleet.sandbox, true);
        fleet.drop(
            "manager",
            "changing",
            &event_with(
                "evt_change",
                "briefing",
                "info",
                "Status report",
                &["reports/status.md"],
            ),
        );
        fleet.wait_result("manager", "done", "changing").await;
        // Recorded: the file on disk changes before any send succeeds.
        write(&fleet, "reports/status.md", b"version two, written later");
        tokio::time::sleep(Duration::from_millis(500)).await;
        common::fail_discord(&fleet.sandbox, false);
        let message = wait_for(
            Duration::from_secs(30),
            "the briefing after retries",
            || {
                with_title(&fleet.state(), "briefings", "Status report")
                    .into_iter()
                    .next()
            },
        )
        .await;
        let got = download(message.attachments[0]["url"].as_str().unwrap()).await;
        assert_eq!(got, b"version one");
        let _ = fleet.stop_agent("manager").await;
    });
}

#[test]
fn kill_9_during_an_upload_delivers_the_file_exactly_once() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        write(&fleet, "reports/once.md", b"exactly once");
        fleet.spawn_agent("manager").await;
        // The sandbox takes the upload, then holds its answer: the agent
        // dies while the request is in flight.
        fleet.sandbox.inject(Fault::LostResponses {
            platform: Platform::Discord,
            count: 1,
            delay_ms: 8_000,
        });
        fleet.drop(
            "manager",
            "once",
            &event_with(
                "evt_once",
                "briefing",
                "info",
                "Upload once",
                &["reports/once.md"],
            ),
        );
        wait_for(Duration::from_secs(20), "the upload to arrive", || {
            (!with_title(&fleet.state(), "briefings", "Upload once").is_empty()).then_some(())
        })
        .await;
        fleet.kill_agent("manager");
        fleet.sandbox.clear_faults();
        fleet.spawn_agent("manager").await;
        let store = fleet.store("manager").await;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let sent = store
                .deliveries_in_state(switchyard::store::DeliveryState::Sent, 100)
                .await
                .unwrap();
            if sent.iter().any(|r| r.title == "Upload once") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the delivery was never marked sent"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let posted = with_title(&fleet.state(), "briefings", "Upload once");
        assert_eq!(posted.len(), 1, "posted {} times", posted.len());
        assert_eq!(posted[0].attachments.len(), 1);
        let got = download(posted[0].attachments[0]["url"].as_str().unwrap()).await;
        assert_eq!(got, b"exactly once");
        let _ = fleet.stop_agent("manager").await;
    });
}

#[test]
fn a_failed_task_that_asks_for_it_carries_its_output_log() {
    common::multi_thread().block_on(async {
        if !crate::agent::docker_ready().await {
            return;
        }
        let skills = "[skills.sh]\nimage = \"switchyard-worker:latest\"\ncommand = [\"sh\", \"-c\"]\nmemory = \"64m\"\ntimeout = \"30s\"\n";
        let mut fleet = Fleet::new(&["manager"], skills).await;
        fleet.spawn_agent("manager").await;
        let task = json!({
            "kind": "task", "id": "tsk_failing", "title": "Run the tests", "priority": "low", "risk": "low",
            "skills": ["sh"],
            "steps": [{"skill": "sh", "args": ["echo compiling; echo 'test parser::empty FAILED' >&2; exit 3"]}],
            "notify": {"channels": [], "attach_log": "on_failure"}
        });
        fleet.drop("manager", "tsk_failing", &task);
        let r = wait_for(Duration::from_secs(180), "the task's result", || {
            fleet.result("manager", "failed", "tsk_failing")
        })
        .await;
        assert_eq!(r["reason"]["status"], "failed", "{r}");
        let message = wait_for(Duration::from_secs(30), "the result with its log", || {
            with_title(&fleet.state(), "alerts", "Task tsk_failing failed")
                .into_iter()
                .next()
        })
        .await;
        assert_eq!(message.attachments.len(), 1, "{:?}", message.attachments);
        let name = message.attachments[0]["filename"].as_str().unwrap();
        assert!(name.starts_with("task-tsk_failing-") && name.ends_with(".log"), "{name}");
        let log = String::from_utf8(download(message.attachments[0]["url"].as_str().unwrap()).await).unwrap();
        assert!(log.contains("exit 3"), "{log}");
        assert!(log.contains("compiling") && log.contains("test parser::empty FAILED"), "{log}");
        let _ = fleet.stop_agent("manager").await;
    });
}
