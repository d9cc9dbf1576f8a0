//! Bot tokens end to end: an agent whose token the platform refuses exits 2
//! at start-up naming the variable (Discord 401; Telegram 401, or 404 for a
//! malformed token), one whose platform cannot be asked starts anyway, and
//! `switchyard sandbox --config` knows the configured agents' tokens set in its
//! environment (and learns others through its control API).

use crate::common;

use std::io::{BufRead as _, Read as _};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use common::{Fleet, event, wait_for};
use serde_json::json;
use switchyard::config::{DiscordSettings, Secret, TelegramSettings};
use switchyard::error::TokenCheck;

/// Runs `switchyard run --agent NAME` with `env` over the fleet's; waits for it
/// to exit (the limit only keeps a wrong agent that keeps running from hanging
/// the test) and returns how it exited and what it said on stderr.
async fn run_to_exit(fleet: &Fleet, agent: &str, env: &[(&str, &str)]) -> (ExitStatus, String) {
    let mut cmd = fleet.command();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .args(["run", "--agent", agent])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the agent");
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let status = wait_for(Duration::from_secs(60), "the agent to exit", || {
        child.try_wait().ok().flatten()
    })
    .await;
    (status, reader.join().expect("stderr reader"))
}

/// How many calls of `route` the sandbox answered with `status` (Telegram's
/// method names in any case: teloxide writes `GetMe`).
fn answered(fleet: &Fleet, route: &str, status: u16) -> usize {
    fleet
        .state()
        .recent_requests
        .iter()
        .filter(|r| r.route.eq_ignore_ascii_case(route) && r.status == status)
        .count()
}

#[test]
fn an_agent_whose_discord_token_is_refused_exits_2_naming_the_variable() {
    common::multi_thread().block_on(async {
        let fleet = Fleet::new(&["manager"], "").await;
        let wrong = "MTAw.wrong.manager-token";
        let (status, stderr) =
            run_to_exit(&fleet, "manager", &[("TEST_MANAGER_DISCORD_TOKEN", wrong)]).await;
        assert_eq!(status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(
                "the Discord token in TEST_MANAGER_DISCORD_TOKEN was refused (401 Unauthorized): check that it is the bot's current token"
            ),
            "{stderr}"
        );
        assert!(!stderr.contains(wrong), "the token was printed: {stderr}");
        // Refused at login, before the gateway: the sandbox saw GET /users/@me refused and no Identify.
        assert_eq!(answered(&fleet, "get_my_user", 401), 1);
        let state = fleet.state();
        assert_eq!(state.gateway.identifies, 0);
        assert!(state.stats.discord.unauthorized >= 1);
        // Nothing was started: no heartbeat in the status file.
        let status_file = fleet.workspace().join("status.json");
        if status_file.exists() {
            let s = common::read_json(&status_file);
            assert!(s["agents"].get("manager").is_none(), "{s}");
        }
    });
}

#[test]
fn an_agent_whose_telegram_token_is_unknown_or_malformed_exits_2_naming_the_variable() {
    common::multi_thread().block_on(async {
        let fleet = Fleet::new(&["manager"], "").await;
        for (token, reason) in [
            // Well-formed, but not a token Telegram knows: 401.
            (
                "100000001:AAnot-the-right-token-0000000000000",
                "401 Unauthorized",
            ),
            // Not shaped like <bot id>:<secret>: Telegram serves no such URL, 404.
            ("100000001:not a token", "404 Not Found"),
            ("garbage", "404 Not Found"),
        ] {
            let (status, stderr) =
                run_to_exit(&fleet, "manager", &[("TEST_TELEGRAM_BOT_TOKEN", token)]).await;
            assert_eq!(status.code(), Some(2), "{token}: {stderr}");
            let said =
                format!("the Telegram token in TEST_TELEGRAM_BOT_TOKEN was refused ({reason})");
            assert!(stderr.contains(&said), "{token}: {stderr}");
            assert!(!stderr.contains(token), "the token was printed: {stderr}");
        }
        // Each was refused by the platform, not by a local guess: getMe answered 401 once, 404 twice.
        assert_eq!(answered(&fleet, "getMe", 401), 1);
        assert_eq!(answered(&fleet, "getMe", 404), 2);
        assert_eq!(fleet.state().stats.telegram.unauthorized, 3);
    });
}

#[test]
fn check_config_does_not_go_online() {
    common::multi_thread().block_on(async {
        let fleet = Fleet::new(&["manager"], "").await;
        let out = fleet
            .command()
            .env("TEST_MANAGER_DISCORD_TOKEN", "MTAw.wrong.manager-token")
            .args(["check-config", "--agent", "manager"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            fleet.state().stats.discord.requests,
            0,
            "check-config asked Discord"
        );
        assert_eq!(
            fleet.state().stats.telegram.requests,
            0,
            "check-config asked Telegram"
        );
    });
}

#[test]
fn an_agent_with_known_tokens_checks_them_and_starts() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        fleet.spawn_agent("manager").await;
        assert_eq!(
            answered(&fleet, "get_my_user", 200),
            1,
            "Discord asked once"
        );
        assert!(answered(&fleet, "getMe", 200) >= 1, "Telegram asked");
        fleet.drop(
            "manager",
            "evt_known",
            &event("evt_known", "alert", "warning", "Known tokens work"),
        );
        wait_for(Duration::from_secs(30), "the alert in #alerts", || {
            common::discord_texts(&fleet.state(), "alerts")
                .into_iter()
                .find(|t| t.contains("Known tokens work"))
        })
        .await;
        let stats = fleet.state().stats;
        assert_eq!(
            (stats.discord.unauthorized, stats.telegram.unauthorized),
            (0, 0)
        );
        assert!(fleet.stop_agent("manager").await.success());
    });
}

#[test]
fn a_platform_that_cannot_be_asked_at_start_is_not_a_refused_token() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], "").await;
        // Nothing listens on port 1: Telegram cannot be asked. The agent starts anyway.
        let child = fleet
            .command()
            .env(
                "SWITCHYARD__TELEGRAM__API_BASE",
                "http://127.0.0.1:1/telegram",
            )
            .args(["run", "--agent", "manager"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn the agent");
        let pid = child.id();
        fleet.agents.push(common::AgentProcess {
            name: "manager".into(),
            child,
        });
        let status = fleet.workspace().join("status.json");
        wait_for(Duration::from_secs(30), "the agent to start", || {
            let s: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&status).ok()?).ok()?;
            (s["agents"]["manager"]["pid"].as_u64() == Some(u64::from(pid))).then_some(())
        })
        .await;
        fleet.drop(
            "manager",
            "evt_unreachable",
            &event("evt_unreachable", "alert", "warning", "Telegram is away"),
        );
        wait_for(Duration::from_secs(30), "the alert in #alerts", || {
            common::discord_texts(&fleet.state(), "alerts")
                .into_iter()
                .find(|t| t.contains("Telegram is away"))
        })
        .await;
        assert!(
            fleet.agents[0].child.try_wait().unwrap().is_none(),
            "the agent keeps running"
        );
        assert!(fleet.stop_agent("manager").await.success());
    });
}

/// A stand-in platform that answers every request with `status` (and a body
/// shaped like Telegram's error), for the answers the sandbox does not give at login.
async fn answering(status: u16) -> String {
    let app = axum::Router::new().fallback(move || async move {
        let code = axum::http::StatusCode::from_u16(status).unwrap();
        (
            code,
            axum::Json(json!({"ok": false, "error_code": status, "description": code.canonical_reason(), "message": "down", "code": 0})),
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn discord_settings(api_base: String) -> DiscordSettings {
    DiscordSettings {
        api_base,
        guild_id: None,
        channels: Default::default(),
        webhooks: Default::default(),
        access: Default::default(),
    }
}

fn telegram_settings(api_base: String) -> TelegramSettings {
    TelegramSettings {
        api_base,
        webhook: None,
        chats: Default::default(),
        approvers: Vec::new(),
        access: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapters_tell_a_refusal_from_no_answer() {
    let token = Secret::new(common::discord_token("manager"));
    // 5xx and no connection at all: no verdict.
    for base in [answering(503).await, "http://127.0.0.1:1".to_owned()] {
        let check =
            switchyard::discord::check_token(&discord_settings(format!("{base}/api/v10")), &token)
                .await;
        assert!(
            matches!(check, TokenCheck::Unreachable { .. }),
            "{base}: {check:?}"
        );
    }
    // 401: refused.
    let check = switchyard::discord::check_token(
        &discord_settings(format!("{}/api/v10", answering(401).await)),
        &token,
    )
    .await;
    assert!(
        matches!(check, TokenCheck::Refused { status: 401, .. }),
        "{check:?}"
    );

    let token = Secret::new(common::TELEGRAM_TOKEN);
    for base in [answering(502).await, "http://127.0.0.1:1".to_owned()] {
        let check = switchyard::telegram::check_token(
            &telegram_settings(format!("{base}/telegram")),
            &token,
        )
        .await;
        assert!(
            matches!(check, TokenCheck::Unreachable { .. }),
            "{base}: {check:?}"
        );
        if let TokenCheck::Unreachable { error } = check {
            assert!(
                !error.contains(common::TELEGRAM_TOKEN),
                "the token is in: {error}"
            );
        }
    }
}

/// Kills the `switchyard sandbox` process this test started, however the test ends.
struct SandboxProcess(std::process::Child);

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn get_me(base: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}/api/v10/users/@me"))
        .header("Authorization", format!("Bot {token}"))
        .send()
        .await
        .expect("the sandbox answers")
        .status()
        .as_u16()
}

async fn telegram_get_me(base: &str, token: &str) -> u16 {
    reqwest::get(format!("{base}/telegram/bot{token}/getMe"))
        .await
        .expect("the sandbox answers")
        .status()
        .as_u16()
}

/// Starts `switchyard sandbox --config CONFIG` on a free port with `env` set
/// (and `unset` removed); returns it, its base URL and the first `lines` it said.
fn start_sandbox(
    config: &std::path::Path,
    env: &[(String, String)],
    unset: &[String],
    lines: usize,
) -> (SandboxProcess, String, String) {
    let mut cmd = Command::new(common::exe());
    cmd.args(["sandbox", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .env("SWITCHYARD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    for k in unset {
        cmd.env_remove(k);
    }
    let mut child = SandboxProcess(cmd.spawn().expect("start switchyard sandbox"));
    let stderr = child.0.stderr.take().expect("stderr");
    let mut reader = std::io::BufReader::new(stderr).lines();
    let said: Vec<String> = reader
        .by_ref()
        .take(lines)
        .map(|l| l.expect("utf-8"))
        .collect();
    // Keep reading, so that a later line does not meet a closed pipe.
    std::thread::spawn(move || reader.for_each(drop));
    let said = said.join("\n");
    let addr = said
        .split("Discord API at http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in: {said}"))
        .to_owned();
    (child, format!("http://{addr}"), said)
}

#[test]
fn switchyard_sandbox_knows_the_configured_tokens_set_in_its_environment() {
    common::multi_thread().block_on(switchyard_sandbox_with_a_fleet_config());
}

async fn switchyard_sandbox_with_a_fleet_config() {
    let fleet = Fleet::new(&["manager", "beta"], "").await;
    // manager's Discord and Telegram variables are set here; beta's is not.
    // Three lines: where it serves, how many tokens it knows, and beta's missing variable.
    let (_sandbox, base, said) = start_sandbox(
        &fleet.config_file,
        &[
            (
                common::discord_token_env("manager"),
                common::discord_token("manager"),
            ),
            (
                "TEST_TELEGRAM_BOT_TOKEN".into(),
                common::TELEGRAM_TOKEN.into(),
            ),
        ],
        &[common::discord_token_env("beta")],
        3,
    );
    assert!(said.contains("knows 1 Discord and 1 Telegram"), "{said}");
    assert!(said.contains(&format!("the web view at {base}/")), "{said}");
    assert!(
        said.contains("TEST_BETA_DISCORD_TOKEN is not set"),
        "{said}"
    );
    assert!(
        !said.contains(&common::discord_token("manager")) && !said.contains(common::TELEGRAM_TOKEN),
        "a token was printed: {said}"
    );

    assert_eq!(get_me(&base, &common::discord_token("manager")).await, 200);
    assert_eq!(telegram_get_me(&base, common::TELEGRAM_TOKEN).await, 200);
    assert_eq!(get_me(&base, &common::discord_token("beta")).await, 401);
    // The control API covers the rest.
    let r = reqwest::Client::new()
        .post(format!("{base}/_sandbox/tokens"))
        .json(&json!({"platform": "discord", "token": common::discord_token("beta")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(get_me(&base, &common::discord_token("beta")).await, 200);
    // The configuration's channels exist.
    let state: serde_json::Value = reqwest::get(format!("{base}/_sandbox/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let channels = state["discord"]["channels"].as_array().unwrap();
    assert!(
        channels
            .iter()
            .any(|c| c["id"] == common::DISCORD_CHANNELS[0].1),
        "{state}"
    );
}

/// The README's compose recipe: `switchyard --config config/demo.toml sandbox`
/// knows the demo's tokens the compose services carry, with no DEMO_* set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchyard_sandbox_with_the_demo_config_knows_the_demo_tokens() {
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
    let unset: Vec<String> = [
        "DEMO_MANAGER_DISCORD_TOKEN",
        "DEMO_TECH_LEAD_DISCORD_TOKEN",
        "DEMO_OPSCLAW_DISCORD_TOKEN",
        "DEMO_TELEGRAM_BOT_TOKEN",
    ]
    .map(String::from)
    .to_vec();
    let (_sandbox, base, said) = start_sandbox(&demo, &[], &unset, 2);
    assert!(said.contains("knows 3 Discord and 1 Telegram"), "{said}");
    // As compose.sandbox.yaml gives them to the services.
    assert_eq!(
        get_me(&base, "MTAwMDAwMDAwMDAwMDAwMDAx.demo.manager-token").await,
        200
    );
    assert_eq!(
        telegram_get_me(&base, "100000001:AAdemo-telegram-token-0000000000000").await,
        200
    );
    assert_eq!(
        get_me(&base, "MTAwMDAwMDAwMDAwMDAwMDAx.not.the-token").await,
        401
    );
}
