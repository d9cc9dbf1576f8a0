//! README's first command: `switchyard demo` runs the whole tour offline
//! (sandbox, three agent processes, every category, a mute and its digest,
//! a task handed to a peer, a stale peer, the kill switch) and exits 0.

use std::process::Command;

#[test]
fn the_demo_runs_its_whole_tour_and_exits_cleanly() {
    // Its agents (manager, tech-lead, opsclaw) share the Docker engine's labels
    // with the other modules' fleets: see `ModuleGate`.
    let _alone = crate::common::ModuleGate::enter();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["demo", "--dir"])
        .arg(dir.path())
        .env_remove("SWITCHYARD_CONFIG")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    for expected in [
        "where each message landed",
        "discord #alerts (2 message(s))",
        "📎 morning-briefing.md (text/markdown,",
        "📎 disk-web-1.png (image/png,",
        "telegram operator (3 message(s))",
        "asked for an approval in Telegram",
        "[✅ Approve] [❌ Deny]",
        "held by the `system` mute: 1 event(s)",
        "While muted",
        "is not responding",
        "kill switch",
    ] {
        assert!(
            stdout.contains(expected),
            "demo output lacks {expected:?}:\n{stdout}"
        );
    }
    // The agents were stopped: nothing of the demo keeps running.
    let status: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("workspace/status.json")).unwrap(),
    )
    .unwrap();
    for agent in ["manager", "tech-lead", "opsclaw"] {
        assert_eq!(
            status["agents"][agent]["state"], "stopped",
            "{agent}: {status}"
        );
    }
}

/// Whether a process is alive (a zombie waiting for its reaper counts as gone).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Start the demo, wait until its three agents run, stop the demo with
/// `signal`, and return how it exited and the agents' pids.
fn interrupt_demo(
    signal: nix::sys::signal::Signal,
) -> (std::process::ExitStatus, Vec<i32>, tempfile::TempDir) {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["demo", "--dir"])
        .arg(dir.path())
        .env_remove("SWITCHYARD_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run the demo");
    let stdout = demo.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // "agents up" is printed once all three have a heartbeat in status.json.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("the demo says its agents are up");
        if line.starts_with("agents up") {
            break;
        }
    }
    let status: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("workspace/status.json")).unwrap(),
    )
    .unwrap();
    let pids: Vec<i32> = ["manager", "tech-lead", "opsclaw"]
        .iter()
        .map(|a| status["agents"][a]["pid"].as_i64().expect("an agent's pid") as i32)
        .collect();
    assert!(pids.iter().all(|p| alive(*p)), "{pids:?}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(demo.id() as i32), signal).unwrap();
    let exit = demo.wait().unwrap();
    (exit, pids, dir)
}

fn all_gone(pids: &[i32]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pids.iter().any(|p| alive(*p)) {
        assert!(
            std::time::Instant::now() < deadline,
            "agents still running after the demo ended: {:?}",
            pids.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn interrupting_the_demo_stops_every_agent_it_started() {
    let _alone = crate::common::ModuleGate::enter();
    // SIGTERM (and Ctrl-C's SIGINT alike): the demo stops its agents, then exits 130.
    let (exit, pids, _dir) = interrupt_demo(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(exit.code(), Some(130), "{exit}");
    assert!(
        pids.iter().all(|p| !alive(*p)),
        "the demo exited before its agents"
    );
    // SIGKILL: the demo cannot clean up; the kernel tells its agents to stop.
    let (exit, pids, _dir) = interrupt_demo(nix::sys::signal::Signal::SIGKILL);
    assert_eq!(exit.code(), None, "{exit}");
    all_gone(&pids);
}

/// README's "A first run against the sandbox" runs exactly as written: the
/// block between its markers, in an empty directory with a copy of `config/`.
#[test]
fn the_readme_walkthrough_against_the_sandbox_runs_as_written() {
    let _alone = crate::common::ModuleGate::enter();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = readme
        .split("<!-- walkthrough:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- walkthrough:end -->").next())
        .expect("README has the walkthrough block");
    let script = block
        .lines()
        .filter(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo.toml"),
        dir.path().join("config/demo.toml"),
    )
    .unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_switchyard"))
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Job control for `kill %1 %2`, errors stop the script; the sandbox and
    // the agent are killed with the script's process group if anything fails.
    let out = Command::new("bash")
        .args(["-e", "-m", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("SWITCHYARD_CONFIG")
        .env("SWITCHYARD_LOG", "error")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the walkthrough");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the walkthrough failed: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    for expected in [
        "switchyard.toml: ok",
        "every check passed",
        "telegram:operator  (rule critical-alerts): pending",
        "discord:alerts  (rule alerts): pending",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} not in:\n{stdout}\n--- stderr\n{stderr}"
        );
    }
}
