//! Approvals in Telegram end to end: real `switchyard run` processes with
//! the real teloxide client, the sandbox's Bot API over HTTP on 127.0.0.1,
//! a user the sandbox plays pressing the buttons, real SQLite files.

use crate::common;

use std::time::Duration;

use common::{Fleet, OPERATOR_CHAT, wait_for};
use serde_json::{Value, json};
use switchyard_sandbox::{
    EnqueuedUpdate, Fault, Platform, TelegramMessage, TelegramUser, TelegramUserAction,
};

const STRANGER: i64 = 777001;
const SECOND_APPROVER: i64 = 555002;

fn operator() -> TelegramUser {
    TelegramUser {
        id: OPERATOR_CHAT,
        first_name: "Op".into(),
        username: Some("operator".into()),
    }
}

fn user(id: i64, name: &str) -> TelegramUser {
    TelegramUser {
        id,
        first_name: name.into(),
        username: Some(name.into()),
    }
}

/// `switchyard approval request`; returns the id it printed.
fn request(fleet: &Fleet, summary: &str, extra: &[&str]) -> String {
    let out = fleet
        .command()
        .args([
            "approval",
            "request",
            "--summary",
            summary,
            "--detail",
            "scripts/deploy_prod.sh --yes",
        ])
        .args(extra)
        .output()
        .expect("run switchyard");
    assert!(
        out.status.success(),
        "approval request failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(id.starts_with("apr_"), "{id}");
    id
}

fn approvals(fleet: &Fleet, agent: Option<&str>) -> Vec<Value> {
    let mut cmd = fleet.command();
    cmd.args(["approvals", "--json"]);
    if let Some(a) = agent {
        cmd.args(["--agent", a]);
    }
    let out = cmd.output().expect("run switchyard");
    assert!(
        out.status.success(),
        "approvals failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn approval(fleet: &Fleet, id: &str, agent: Option<&str>) -> Option<Value> {
    approvals(fleet, agent).into_iter().find(|a| a["id"] == id)
}

async fn wait_status(fleet: &Fleet, id: &str, status: &str, agent: Option<&str>) -> Value {
    wait_for(
        Duration::from_secs(30),
        &format!("{id} to be {status}"),
        || approval(fleet, id, agent).filter(|a| a["status"] == status),
    )
    .await
}

/// The prompt of `id`: the message and its two callback_data values.
fn prompt(fleet: &Fleet, id: &str) -> Option<(TelegramMessage, String, String)> {
    let state = fleet.state();
    let m = state
        .telegram_messages(OPERATOR_CHAT)
        .iter()
        .find(|m| m.text.contains(id))?
        .clone();
    let buttons: Vec<String> = m.reply_markup.as_ref()?["inline_keyboard"][0]
        .as_array()?
        .iter()
        .filter_map(|b| b["callback_data"].as_str().map(String::from))
        .collect();
    (buttons.len() == 2).then(|| (m, buttons[0].clone(), buttons[1].clone()))
}

async fn wait_prompt(fleet: &Fleet, id: &str) -> (TelegramMessage, String, String) {
    wait_for(
        Duration::from_secs(30),
        &format!("the prompt of {id}"),
        || prompt(fleet, id),
    )
    .await
}

fn press(fleet: &Fleet, message_id: i32, data: &str, from: TelegramUser) -> EnqueuedUpdate {
    fleet
        .sandbox
        .telegram_user_action(TelegramUserAction::PressButton {
            chat_id: OPERATOR_CHAT,
            message_id,
            from,
            callback_data: data.into(),
        })
        .expect("press")
}

/// The answer to a press (every press must be answered).
async fn answer(fleet: &Fleet, pressed: &EnqueuedUpdate) -> String {
    let id = pressed.callback_query_id.clone().expect("a callback");
    wait_for(Duration::from_secs(30), "the press to be answered", || {
        fleet
            .state()
            .telegram
            .callback_answers
            .iter()
            .find(|a| a.callback_query_id == id)
            .map(|a| a.text.clone().unwrap_or_default())
    })
    .await
}

fn message(fleet: &Fleet, message_id: i32) -> TelegramMessage {
    fleet
        .state()
        .telegram_messages(OPERATOR_CHAT)
        .iter()
        .find(|m| m.message_id == message_id)
        .expect("message")
        .clone()
}

async fn wait_edited(fleet: &Fleet, message_id: i32, needle: &str) -> TelegramMessage {
    wait_for(
        Duration::from_secs(30),
        &format!("the prompt to say {needle:?}"),
        || {
            let m = message(fleet, message_id);
            (m.text.contains(needle) && m.reply_markup.is_none()).then_some(m)
        },
    )
    .await
}

async fn audit_rows(fleet: &Fleet, agent: &str) -> Vec<switchyard::store::AuditEntry> {
    fleet
        .store(agent)
        .await
        .recent_audit(1000)
        .await
        .expect("audit")
}

#[test]
fn approve_round_trip_with_a_double_click_and_a_stranger() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        fleet.spawn_agent("manager").await;
        let id = request(
            &fleet,
            "Deploy web-1 to production",
            &["--risk", "75", "--reason", "git push (+20)"],
        );
        let (msg, approve, deny) = wait_prompt(&fleet, &id).await;
        assert!(
            msg.text.contains("Deploy web-1 to production"),
            "{}",
            msg.text
        );
        assert!(
            msg.text.contains("75/100") && msg.text.contains("git push (+20)"),
            "{}",
            msg.text
        );
        assert!(
            msg.text.contains("scripts/deploy_prod.sh --yes"),
            "{}",
            msg.text
        );
        assert!(approve.len() <= 64 && deny.len() <= 64 && approve != deny);
        assert!(
            !approve.contains(&id),
            "callback_data must be opaque: {approve}"
        );

        // A stranger first: refused, audited, the request still pending.
        let stranger = press(&fleet, msg.message_id, &approve, user(STRANGER, "mallory"));
        let text = answer(&fleet, &stranger).await;
        assert!(text.contains("not an approver"), "{text}");
        assert_eq!(approval(&fleet, &id, None).unwrap()["status"], "pending");

        // Two quick clicks of the operator: the first decides, the second is told.
        let first = press(&fleet, msg.message_id, &approve, operator());
        let second = press(&fleet, msg.message_id, &deny, operator());
        assert!(answer(&fleet, &first).await.contains("Approved"));
        let later = answer(&fleet, &second).await;
        assert!(later.contains("Already approved by @operator"), "{later}");
        let a = wait_status(&fleet, &id, "approved", None).await;
        assert_eq!(a["decided_by"], "@operator");
        let edited = wait_edited(&fleet, msg.message_id, "Approved by @operator").await;
        assert!(edited.edited);

        let rows = audit_rows(&fleet, "manager").await;
        assert!(
            rows.iter().any(|r| r.target == id
                && r.outcome == "refused"
                && r.actor.contains("telegram:777001")),
            "the stranger is audited: {rows:?}"
        );
        assert!(
            rows.iter()
                .any(|r| r.target == id && r.action == "approval.vote" && r.outcome == "approved")
        );
    });
}

#[test]
fn deny_from_telegram_and_approve_from_the_shell() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        fleet.spawn_agent("manager").await;
        let id = request(&fleet, "Drop the staging database", &["--risk", "40"]);
        let (msg, _approve, deny) = wait_prompt(&fleet, &id).await;
        let pressed = press(&fleet, msg.message_id, &deny, operator());
        assert!(answer(&fleet, &pressed).await.contains("Denied"));
        wait_status(&fleet, &id, "denied", None).await;
        wait_edited(&fleet, msg.message_id, "Denied by @operator").await;

        // The operator's shell override, on a second request.
        let id2 = request(&fleet, "Restart web-2", &[]);
        let (msg2, _, _) = wait_prompt(&fleet, &id2).await;
        let out = fleet.command().args(["approve", &id2]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        wait_status(&fleet, &id2, "approved", None).await;
        wait_edited(&fleet, msg2.message_id, "Approved by").await;
        let again = fleet.command().args(["deny", &id2]).output().unwrap();
        assert_eq!(again.status.code(), Some(2), "deciding twice is refused");
        assert!(String::from_utf8_lossy(&again.stderr).contains("already approved"));
        let rows = audit_rows(&fleet, "manager").await;
        assert!(rows.iter().any(|r| r.target == id2
            && r.action == "approval.override"
            && r.outcome == "approved"));
    });
}

#[test]
fn expiry_edits_the_prompt_and_a_later_click_is_refused() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        fleet.spawn_agent("manager").await;
        let id = request(&fleet, "Rotate the API keys", &["--expires", "3s"]);
        let (msg, approve, _) = wait_prompt(&fleet, &id).await;
        // The click arrives while the agent is down, after the expiry.
        fleet.stop_agent("manager").await;
        let pressed = press(&fleet, msg.message_id, &approve, operator());
        tokio::time::sleep(Duration::from_secs(4)).await;
        fleet.spawn_agent("manager").await;
        let text = answer(&fleet, &pressed).await;
        assert!(text.contains("expired"), "{text}");
        let a = wait_status(&fleet, &id, "expired", None).await;
        assert_eq!(a["decided_by"], "expiry");
        wait_edited(&fleet, msg.message_id, "Expired").await;
    });
}

#[test]
fn two_distinct_approvers_above_the_risk_threshold() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "[approvals]\ntwo_approvers_at_risk = 80\n").await;
        let text = std::fs::read_to_string(&fleet.config_file)
            .unwrap()
            .replace(
                &format!("approvers = [{OPERATOR_CHAT}]"),
                &format!("approvers = [{OPERATOR_CHAT}, {SECOND_APPROVER}]"),
            );
        std::fs::write(&fleet.config_file, text).unwrap();
        fleet.spawn_agent("manager").await;
        let id = request(&fleet, "Force-push main", &["--risk", "90"]);
        let (msg, approve, _) = wait_prompt(&fleet, &id).await;
        assert!(
            msg.text.contains("needs 2 distinct approvers"),
            "{}",
            msg.text
        );
        let first = press(&fleet, msg.message_id, &approve, operator());
        assert!(answer(&fleet, &first).await.contains("1 of 2"));
        let (msg, approve, _) = wait_for(
            Duration::from_secs(30),
            "the prompt to show the first approval",
            || {
                prompt(&fleet, &id)
                    .filter(|(m, _, _)| m.text.contains("Approved so far by @operator"))
            },
        )
        .await;
        let same = press(&fleet, msg.message_id, &approve, operator());
        assert!(answer(&fleet, &same).await.contains("already approved"));
        assert_eq!(approval(&fleet, &id, None).unwrap()["status"], "pending");
        let second = press(
            &fleet,
            msg.message_id,
            &approve,
            user(SECOND_APPROVER, "bob"),
        );
        assert!(answer(&fleet, &second).await.contains("Approved"));
        let a = wait_status(&fleet, &id, "approved", None).await;
        assert_eq!(a["decided_by"], "@operator + @bob");
        wait_edited(&fleet, msg.message_id, "Approved by @operator + @bob").await;
    });
}

#[test]
fn forged_and_stale_callback_data_are_refused_and_audited() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        fleet.spawn_agent("manager").await;
        let id = request(&fleet, "Delete old backups", &[]);
        let (msg, approve, _) = wait_prompt(&fleet, &id).await;
        let forge = |data: &str| {
            fleet
                .sandbox
                .telegram_user_action(TelegramUserAction::ForgedPress {
                    chat_id: OPERATOR_CHAT,
                    message_id: msg.message_id,
                    from: operator(),
                    callback_data: data.into(),
                })
                .unwrap()
        };
        // A guessed secret (one hex digit off), a made-up shape, and the request id as a secret.
        let mut guessed = approve.clone();
        let last = guessed.pop().unwrap();
        guessed.push(if last == '0' { '1' } else { '0' });
        for data in [guessed.as_str(), "approve:apr_1", &format!("a:{id}")] {
            let pressed = forge(data);
            let text = answer(&fleet, &pressed).await;
            assert!(
                text.contains("not valid") || text.contains("unknown or no longer valid"),
                "{data}: {text}"
            );
        }
        assert_eq!(approval(&fleet, &id, None).unwrap()["status"], "pending");
        let rows = audit_rows(&fleet, "manager").await;
        let refused = rows
            .iter()
            .filter(|r| r.action == "approval.callback" && r.outcome == "refused")
            .count();
        assert_eq!(refused, 3, "{rows:?}");
        // Stale: the real button after the request was decided from the shell.
        let out = fleet.command().args(["deny", &id]).output().unwrap();
        assert!(out.status.success());
        wait_edited(&fleet, msg.message_id, "Denied").await;
        let stale = forge(&approve);
        let text = answer(&fleet, &stale).await;
        assert!(text.contains("Already denied"), "{text}");
    });
}

#[test]
fn a_restart_between_prompt_and_click_decides_once() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        fleet.spawn_agent("manager").await;
        let id = request(&fleet, "Migrate the orders table", &[]);
        let (msg, approve, _) = wait_prompt(&fleet, &id).await;
        fleet.kill_agent("manager");
        let pressed = press(&fleet, msg.message_id, &approve, operator());
        fleet.spawn_agent("manager").await;
        assert!(answer(&fleet, &pressed).await.contains("Approved"));
        wait_status(&fleet, &id, "approved", None).await;
        wait_edited(&fleet, msg.message_id, "Approved by @operator").await;
        // A second restart replays nothing: one answer, one vote, one prompt.
        fleet.stop_agent("manager").await;
        fleet.spawn_agent("manager").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let state = fleet.state();
        assert_eq!(
            state.telegram.callback_answers.len(),
            1,
            "{:?}",
            state.telegram.callback_answers
        );
        assert_eq!(
            state
                .telegram_messages(OPERATOR_CHAT)
                .iter()
                .filter(|m| m.text.contains(&id))
                .count(),
            1
        );
        let votes = approval(&fleet, &id, None).unwrap()["votes"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(votes, 1);
    });
}

#[test]
fn a_request_from_an_agent_without_telegram_round_trips_through_the_inboxes() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager", "beta"], "").await;
        fleet.spawn_agent("manager").await;
        fleet.spawn_agent("beta").await;
        fleet.drop(
            "beta",
            "apr_from_beta_1",
            &json!({"kind": "approval_request", "id": "apr_from_beta_1", "summary": "Run the nightly reindex now",
                    "detail": "psql -c 'REINDEX DATABASE app'", "risk": 65, "reasons": ["declared risk medium"],
                    "requested_by": "beta", "expires_in": "10m"}),
        );
        let (msg, approve, _) = wait_prompt(&fleet, "apr_from_beta_1").await;
        assert!(msg.text.contains("Requested by beta"), "{}", msg.text);
        assert_eq!(approval(&fleet, "apr_from_beta_1", Some("beta")).unwrap()["status"], "pending");
        let pressed = press(&fleet, msg.message_id, &approve, operator());
        assert!(answer(&fleet, &pressed).await.contains("Approved"));
        let a = wait_status(&fleet, "apr_from_beta_1", "approved", Some("beta")).await;
        assert_eq!(a["decided_by"], "@operator");
        let result = fleet.wait_result("beta", "done", "dec_apr_from_beta_1").await;
        assert_eq!(result["result"]["recorded"], true, "{result}");
    });
}

#[test]
fn a_429_delays_the_prompt_but_it_still_goes_out() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        fleet.spawn_agent("manager").await;
        fleet.sandbox.inject(Fault::RateLimitStorm {
            platform: Platform::Telegram,
            count: 3,
            retry_after_ms: 1000,
        });
        let id = request(&fleet, "Scale workers to 10", &[]);
        let (msg, _, _) = wait_prompt(&fleet, &id).await;
        assert!(msg.text.contains("Scale workers to 10"));
        assert!(
            fleet.state().stats.telegram.rate_limited >= 1,
            "the storm was served"
        );
        let a = approval(&fleet, &id, None).unwrap();
        assert!(a["prompt_attempts"].as_u64().unwrap() >= 2, "{a}");
        assert_eq!(a["message_id"].as_i64(), Some(i64::from(msg.message_id)));
    });
}

fn say(fleet: &Fleet, from: TelegramUser, text: &str) -> i32 {
    fleet
        .sandbox
        .telegram_user_action(TelegramUserAction::Message {
            chat_id: OPERATOR_CHAT,
            from,
            text: text.into(),
        })
        .expect("message")
        .message_id
        .expect("a message id")
}

/// The bot's first message after the user's message `after` that contains `needle`.
async fn bot_reply(fleet: &Fleet, after: i32, needle: &str) -> TelegramMessage {
    wait_for(
        Duration::from_secs(30),
        &format!("a reply containing {needle:?}"),
        || {
            fleet
                .state()
                .telegram_messages(OPERATOR_CHAT)
                .iter()
                .find(|m| m.message_id > after && m.text.contains(needle))
                .cloned()
        },
    )
    .await
}

#[test]
fn telegram_commands_status_approvals_mute_unmute() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        let text = std::fs::read_to_string(&fleet.config_file).unwrap().replace(
            &format!("approvers = [{OPERATOR_CHAT}]"),
            &format!("approvers = [{OPERATOR_CHAT}]\nread = [\"user:{OPERATOR_CHAT}\"]\noperate = [\"user:{OPERATOR_CHAT}\"]"),
        );
        std::fs::write(&fleet.config_file, text).unwrap();
        fleet.spawn_agent("manager").await;
        let registered = wait_for(Duration::from_secs(30), "setMyCommands", || {
            let c = fleet.state().telegram.commands;
            (!c.is_empty()).then_some(c)
        })
        .await;
        for name in ["status", "approvals", "mute", "unmute"] {
            assert!(registered.iter().any(|c| c.command == name), "{name} not registered: {registered:?}");
        }

        let asked = say(&fleet, operator(), "/status");
        bot_reply(&fleet, asked, "manager").await;

        // /approvals lists the pending request with working buttons.
        let id = request(&fleet, "Purge the CDN cache", &["--risk", "30"]);
        let (prompt_msg, _, _) = wait_prompt(&fleet, &id).await;
        let asked = say(&fleet, operator(), "/approvals");
        let listed = bot_reply(&fleet, asked, "Purge the CDN cache").await;
        let approve = listed.reply_markup.as_ref().expect("buttons")["inline_keyboard"][0][0]["callback_data"]
            .as_str()
            .expect("callback_data")
            .to_string();
        let pressed = press(&fleet, listed.message_id, &approve, operator());
        assert!(answer(&fleet, &pressed).await.contains("Approved"));
        wait_status(&fleet, &id, "approved", None).await;
        wait_edited(&fleet, prompt_msg.message_id, "Approved by @operator").await;

        // /mute and /unmute change the fleet's status file.
        let asked = say(&fleet, operator(), "/mute system 2h noisy deploy");
        bot_reply(&fleet, asked, "system").await;
        let status = common::read_json(&fleet.workspace().join("status.json"));
        let mute_id = status["mutes"][0]["id"].as_str().expect("a mute").to_string();
        let asked = say(&fleet, operator(), &format!("/unmute {mute_id}"));
        bot_reply(&fleet, asked, &mute_id).await;
        let status = common::read_json(&fleet.workspace().join("status.json"));
        let ends = status["mutes"][0]["expires_at"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        assert!(ends <= chrono::Utc::now(), "the mute was lifted");

        // A stranger may not mute.
        let asked = say(&fleet, user(STRANGER, "mallory"), "/mute alert 1h");
        bot_reply(&fleet, asked, "Not allowed").await;
        let rows = audit_rows(&fleet, "manager").await;
        assert!(rows.iter().any(|r| r.action == "command.mute" && r.outcome == "refused" && r.actor == "telegram:777001"), "{rows:?}");
    });
}

#[test]
fn access_taken_away_by_a_reload_applies_without_a_restart() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        let base = std::fs::read_to_string(&fleet.config_file).unwrap();
        let with = |read: &str| {
            base.replace(
                &format!("approvers = [{OPERATOR_CHAT}]"),
                &format!("approvers = [{OPERATOR_CHAT}]\nread = [{read}]"),
            )
        };
        std::fs::write(
            &fleet.config_file,
            with(&format!("\"user:{OPERATOR_CHAT}\", \"user:{STRANGER}\"")),
        )
        .unwrap();
        fleet.spawn_agent("manager").await;
        let pid =
            common::read_json(&fleet.workspace().join("status.json"))["agents"]["manager"]["pid"]
                .as_u64();
        let asked = say(&fleet, user(STRANGER, "mallory"), "/status");
        bot_reply(&fleet, asked, "manager").await;

        // The stranger is taken off the list: the reload applies it at once.
        std::fs::write(
            &fleet.config_file,
            with(&format!("\"user:{OPERATOR_CHAT}\"")),
        )
        .unwrap();
        let out = fleet
            .command()
            .args(["reload", "--agent", "manager"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("applied now: [telegram.access]"),
            "{stdout}"
        );
        assert!(
            !stdout.contains("takes a restart"),
            "nothing else changed: {stdout}"
        );
        let asked = say(&fleet, user(STRANGER, "mallory"), "/status");
        bot_reply(&fleet, asked, "Not allowed").await;
        let asked = say(&fleet, operator(), "/status");
        bot_reply(&fleet, asked, "manager").await;
        let now =
            common::read_json(&fleet.workspace().join("status.json"))["agents"]["manager"]["pid"]
                .as_u64();
        assert_eq!(now, pid, "the same process: no restart");
    });
}

#[test]
fn a_reminder_then_an_escalation_to_discord_before_expiry() {
    common::multi_thread().block_on(async {
        let mut opts = common::sandbox_options();
        common::fast_discord_limits(&mut opts);
        let mut fleet = Fleet::with_sandbox(
            &["manager"],
            "[approvals]\nexpires = \"1m\"\nremind_after = \"1s\"\nescalate_after = \"2s\"\nescalate_to = \"discord:alerts\"\n",
            opts,
        )
        .await;
        fleet.spawn_agent("manager").await;
        let id = request(&fleet, "Reboot the database host", &["--risk", "70"]);
        wait_prompt(&fleet, &id).await;
        wait_for(Duration::from_secs(30), "a reminder in Telegram", || {
            common::telegram_texts(&fleet.state()).into_iter().find(|t| t.contains("Reminder") && t.contains(&id))
        })
        .await;
        wait_for(Duration::from_secs(30), "a ping in #alerts", || {
            common::discord_texts(&fleet.state(), "alerts").into_iter().find(|t| t.contains("Reboot the database host"))
        })
        .await;
        let a = approval(&fleet, &id, None).unwrap();
        assert_eq!(a["status"], "pending");
        assert!(a["reminded_at"].is_string() && a["escalated_at"].is_string(), "{a}");
    });
}

#[test]
fn webhook_mode_takes_presses_and_refuses_a_wrong_secret() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        // The webhook URL must be known before the agent starts: ask the OS for a free port.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/telegram/webhook");
        let text = std::fs::read_to_string(&fleet.config_file)
            .unwrap()
            .replacen("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{port}\""), 1)
            .replace(
                "[telegram]\n",
                &format!("[telegram]\nwebhook_url = \"{url}\"\nwebhook_secret_env = \"TEST_WEBHOOK_SECRET\"\n"),
            );
        std::fs::write(&fleet.config_file, text).unwrap();
        let child = fleet
            .command()
            .env("TEST_WEBHOOK_SECRET", "s3cret-Webhook_token")
            .args(["run", "--agent", "manager"])
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        fleet.agents.push(common::AgentProcess { name: "manager".into(), child });
        wait_for(Duration::from_secs(30), "setWebhook", || {
            (fleet.state().telegram.webhook_url.as_deref() == Some(url.as_str())).then_some(())
        })
        .await;

        let id = request(&fleet, "Flip the feature flag", &[]);
        let (msg, approve, _) = wait_prompt(&fleet, &id).await;
        let pressed = press(&fleet, msg.message_id, &approve, operator());
        assert!(answer(&fleet, &pressed).await.contains("Approved"));
        wait_status(&fleet, &id, "approved", None).await;
        wait_edited(&fleet, msg.message_id, "Approved by @operator").await;

        let client = reqwest::Client::new();
        let update = json!({"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": {"id": OPERATOR_CHAT, "type": "private"}, "text": "/status"}});
        for secret in [None, Some("wrong"), Some("s3cret-Webhook_toke")] {
            let mut req = client.post(&url).json(&update);
            if let Some(s) = secret {
                req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
            }
            assert_eq!(req.send().await.unwrap().status(), reqwest::StatusCode::UNAUTHORIZED, "{secret:?}");
        }
    });
}

#[test]
fn a_second_process_for_the_same_telegram_token_refuses_to_start() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        fleet.spawn_agent("manager").await;
        let mut second = fleet
            .command()
            .args(["run", "--agent", "manager"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_for(
            Duration::from_secs(30),
            "the second process to exit",
            || second.try_wait().ok().flatten(),
        )
        .await;
        assert!(!status.success());
        let mut stderr = String::new();
        std::io::Read::read_to_string(second.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(
            stderr.contains("TEST_TELEGRAM_BOT_TOKEN") || stderr.contains("token"),
            "{stderr}"
        );
        // The first keeps answering.
        let id = request(&fleet, "Still alive?", &[]);
        wait_prompt(&fleet, &id).await;
    });
}

#[test]
fn a_forged_forwarded_request_is_refused_and_audited_by_the_owner() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager", "beta"], "").await;
        fleet.spawn_agent("manager").await;
        // Unsealed, but asking for the answer in beta's inbox: refused.
        fleet.drop(
            "manager",
            "fwd_unsealed",
            &json!({"kind": "approval_request", "id": "apr_unsealed", "summary": "Harmless cleanup",
                    "requested_by": "beta", "reply_to": "beta"}),
        );
        let r = fleet.wait_result("manager", "failed", "fwd_unsealed").await;
        assert!(
            r["reason"]["error"].as_str().unwrap().contains("reply_to"),
            "{r}"
        );
        // A seal that is not the fleet's: refused.
        fleet.drop(
            "manager",
            "fwd_bad_seal",
            &json!({"kind": "approval_request", "id": "apr_bad_seal", "summary": "Harmless cleanup",
                    "requested_by": "beta", "reply_to": "beta", "seal": "ab".repeat(32)}),
        );
        let r = fleet.wait_result("manager", "failed", "fwd_bad_seal").await;
        assert!(
            r["reason"]["error"]
                .as_str()
                .unwrap()
                .contains("seal does not hold"),
            "{r}"
        );
        for id in ["apr_unsealed", "apr_bad_seal"] {
            assert!(approval(&fleet, id, None).is_none(), "{id} was stored");
            assert!(prompt(&fleet, id).is_none(), "{id} was prompted");
        }
        let audit = audit_rows(&fleet, "manager").await;
        let refused: Vec<_> = audit
            .iter()
            .filter(|e| e.action == "approval.request_refused")
            .map(|e| e.target.as_str())
            .collect();
        assert_eq!(refused, ["apr_bad_seal", "apr_unsealed"], "{audit:?}");
    });
}

#[test]
fn when_the_first_agent_dies_the_next_speaks_for_the_fleet_and_approvals_wait_durably() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager", "beta"], "").await;
        fleet.spawn_agent("manager").await;
        fleet.spawn_agent("beta").await;
        fleet.kill_agent("manager");
        let alerts = |fleet: &Fleet| common::discord_texts(&fleet.state(), "alerts");
        wait_for(Duration::from_secs(30), "beta to take over", || {
            alerts(&fleet).into_iter().find(|t| t.contains("beta speaks for the fleet while manager is down"))
        })
        .await;
        wait_for(Duration::from_secs(10), "the stale alert for manager", || {
            alerts(&fleet).into_iter().find(|t| t.contains("Agent manager is not responding"))
        })
        .await;
        // An approval asked of beta waits: durably, and #alerts says why.
        fleet.drop(
            "beta",
            "apr_wait_1",
            &json!({"kind": "approval_request", "id": "apr_wait_1", "summary": "Rotate the TLS keys",
                    "requested_by": "beta", "expires_in": "10m"}),
        );
        let why = wait_for(Duration::from_secs(30), "the approvals-wait alert", || {
            alerts(&fleet).into_iter().find(|t| t.contains("Approvals wait: manager"))
        })
        .await;
        assert!(why.contains("1 approval request(s) of beta wait"), "{why}");
        assert_eq!(approval(&fleet, "apr_wait_1", Some("beta")).unwrap()["status"], "pending");
        // Said once, not every tick.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let takeovers = alerts(&fleet).iter().filter(|t| t.contains("speaks for the fleet")).count();
        assert_eq!(takeovers, 1);
        // Manager comes back: it prompts what waited, and beta says so.
        fleet.spawn_agent("manager").await;
        wait_prompt(&fleet, "apr_wait_1").await;
        wait_for(Duration::from_secs(30), "approvals flowing again", || {
            common::discord_texts(&fleet.state(), "system").into_iter().find(|t| t.contains("Approvals flow again: manager is back"))
        })
        .await;
    });
}
