//! The fleet console on an agent's listen address: its page loaded in
//! headless Chromium shows the fleet (agents, mutes, approvals) after the
//! page's own script fetched and drew it, and keeps redrawing without a
//! reload; with a token, the state answers only a request carrying it.
//!
//! Needs Debian's `chromium`; without it the page test says SKIPPED loudly,
//! and fails under `SWITCHYARD_REQUIRE_CHROMIUM=1` (as `.ci/run` sets).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{self, Fleet};

fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        eprintln!(
            "\n********************************************************************\n\
             SKIPPED: chromium not found on PATH (apt-get install -y chromium)\n\
             ********************************************************************\n"
        );
        assert_ne!(
            std::env::var("SWITCHYARD_REQUIRE_CHROMIUM").as_deref(),
            Ok("1"),
            "SWITCHYARD_REQUIRE_CHROMIUM=1 but chromium is not installed"
        );
    }
    found
}

/// The DOM after the page's scripts ran for `budget_ms` of virtual time.
async fn dump_dom(chromium: &Path, profile: &Path, url: &str, budget_ms: u32) -> String {
    let run = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg("--dump-dom")
        .arg(url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("chromium did not finish within 60 s")
        .expect("chromium starts");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the DOM is UTF-8")
}

/// The agent's health address from the status document.
fn health(fleet: &Fleet, agent: &str) -> String {
    let v = common::read_json(&fleet.workspace().join("status.json"));
    v["agents"][agent]["health"]
        .as_str()
        .expect("the agent serves its endpoints")
        .to_string()
}

const CONSOLE: &str = "[console]\nenabled = true\n";

#[test]
fn the_console_page_draws_the_fleet_and_keeps_refreshing_without_a_reload() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager", "beta"], CONSOLE).await;
        fleet.spawn_agent("manager").await;
        fleet.spawn_agent("beta").await;
        let mute = fleet.shell(&["mute", "system", "--for", "2h", "--reason", "deploy window"]);
        let mute_id = mute
            .split_whitespace()
            .find(|w| w.starts_with("mute_"))
            .map(|w| {
                w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .to_string()
            });
        fleet.shell(&[
            "approval",
            "request",
            "--summary",
            "Restart the payments worker",
            "--risk",
            "70",
        ]);
        let base = format!("http://{}", health(&fleet, "manager"));

        // The state the page draws from.
        let mut state = serde_json::Value::Null;
        for _ in 0..100 {
            if let Ok(r) = reqwest::get(format!("{base}/console/state")).await
                && let Ok(v) = r.json::<serde_json::Value>().await
                && v["agents"].as_array().is_some_and(|a| a.len() == 2)
                && v["approvals"].as_array().is_some_and(|a| !a.is_empty())
            {
                state = v;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(state["agent"], "manager");
        assert_eq!(state["mutes"][0]["reason"], "deploy window", "{state:#}");
        assert_eq!(state["approvals"][0]["risk"], 70, "{state:#}");

        let Some(chromium) = chromium() else { return };
        let profile = tempfile::tempdir().unwrap();
        let dom = dump_dom(&chromium, profile.path(), &format!("{base}/console"), 7000).await;
        // Drawn by the page's script from /console/state (the page itself carries no data).
        for want in [
            "manager",
            "beta",
            "deploy window",
            "Restart the payments worker",
            "system",
        ] {
            assert!(dom.contains(want), "{want:?} not on the page:\n{dom}");
        }
        let id = mute_id.unwrap_or_else(|| panic!("`mute` printed no id: {mute}"));
        assert!(dom.contains(&id), "the mute's id {id} is listed");
        assert!(
            dom.contains("left"),
            "mutes and approvals show their expiry: {dom}"
        );
        // Redrawn in place, several times, in one page load.
        let refreshes: u32 = dom
            .split("data-refreshes=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no refresh count on the page:\n{dom}"));
        assert!(
            refreshes >= 2,
            "the page refreshed {refreshes} time(s) in 7 s"
        );
        assert!(
            dom.contains("<div id=\"error\"></div>"),
            "the page reports no error: {dom}"
        );
    });
}

#[test]
fn with_a_token_the_console_state_answers_only_a_request_carrying_it() {
    common::multi_thread().block_on(async {
        let extra = "[console]\nenabled = true\ntoken_env = \"TEST_CONSOLE_TOKEN\"\n";
        let mut fleet = Fleet::new(&["manager"], extra).await;
        fleet
            .spawn_agent_with("manager", &[("TEST_CONSOLE_TOKEN", "s3cret-console-token")])
            .await;
        let base = format!("http://{}", health(&fleet, "manager"));
        let client = reqwest::Client::new();
        let page = client.get(format!("{base}/console")).send().await.unwrap();
        assert_eq!(page.status(), 200, "the page itself holds no data");
        let bare = client
            .get(format!("{base}/console/state"))
            .send()
            .await
            .unwrap();
        assert_eq!(bare.status(), 401);
        let wrong = client
            .get(format!("{base}/console/state"))
            .bearer_auth("s3cret-console-tokeX")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        let ok = client
            .get(format!("{base}/console/state"))
            .bearer_auth("s3cret-console-token")
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let v: serde_json::Value = ok.json().await.unwrap();
        assert_eq!(v["agent"], "manager");

        // Configured but not set: the agent refuses to start rather than serve it open.
        fleet.stop_agent("manager").await;
        let out = fleet
            .command()
            .args(["run", "--agent", "manager"])
            .env_remove("TEST_CONSOLE_TOKEN")
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("TEST_CONSOLE_TOKEN, which is not set"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

#[test]
fn an_open_console_on_a_reachable_address_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchyard.toml");
    let text = common::fleet_toml(&["manager"], CONSOLE)
        .replace("listen = \"127.0.0.1:0\"", "listen = \"0.0.0.0:7601\"");
    std::fs::write(&config, text).unwrap();
    let out = std::process::Command::new(common::exe())
        .args(["--config"])
        .arg(&config)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("console.token_env") && all.contains("0.0.0.0:7601"),
        "{all}"
    );
}
