//! Bot tokens end to end: `switchyard sandbox --config` knows the configured
//! agents' tokens set in its environment (and learns others through its
//! control API).

use crate::common;

use std::io::BufRead as _;
use std::process::{Command, Stdio};

use common::Fleet;
use serde_json::json;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchyard_sandbox_knows_the_configured_tokens_set_in_its_environment() {
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
