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
        "telegram operator (2 message(s))",
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
