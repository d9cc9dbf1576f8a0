//! The cost of watching workers: one liveness check of a tmux session (has-session, then
//! the pane's program), and one correction typed into a pane, against a private tmux
//! server with SESSIONS sessions. Prints medians and p99s, and what a monitor pass adds
//! per tracked task. `cargo bench --bench worker_liveness`.

use std::process::Command;
use std::time::{Duration, Instant};

use switchyard::execution::tmux::{Tmux, judge};
use switchyard::github::workers::Liveness;

const SESSIONS: usize = 20;
const ROUNDS: usize = 10;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    // SAFETY: set before any thread starts; every tmux call (ours and the adapter's) uses it.
    unsafe { std::env::set_var("TMUX_TMPDIR", dir.path()) };
    let tmux_cmd = || {
        let mut c = Command::new("tmux");
        c.env_remove("TMUX");
        c
    };
    if !tmux_cmd()
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("worker_liveness: tmux is not installed (apt install tmux)");
        std::process::exit(1);
    }
    for i in 0..SESSIONS {
        let ok = tmux_cmd()
            .args(["new-session", "-d", "-s", &format!("w{i}"), "--", "cat"])
            .status()
            .expect("tmux")
            .success();
        assert!(ok, "could not start session w{i}");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tmux = Tmux::default();
    let mut checks = Vec::new();
    let mut passes = Vec::new();
    rt.block_on(async {
        for _ in 0..ROUNDS {
            let pass = Instant::now();
            for i in 0..SESSIONS {
                let name = format!("w{i}");
                let t = Instant::now();
                let pane = tmux.pane(&name).await.expect("tmux answers");
                let l = judge(&name, pane.as_ref(), Some("cat"));
                checks.push(t.elapsed());
                assert_eq!(l, Liveness::Alive, "{name}");
            }
            passes.push(pass.elapsed());
        }
        let mut typed = Vec::new();
        for i in 0..SESSIONS {
            let t = Instant::now();
            tmux.send_literal(&format!("w{i}"), "Rebase on main, resolve the conflicts; change nothing else.")
                .await
                .expect("send-keys");
            typed.push(t.elapsed());
        }
        let missing = Instant::now();
        let gone = tmux.pane("not-there").await.expect("tmux answers");
        let missing = missing.elapsed();
        assert!(gone.is_none());
        println!("worker_liveness: {SESSIONS} tmux sessions, {ROUNDS} rounds");
        println!(
            "liveness check (has-session + display-message): median {:.2} ms, p99 {:.2} ms, n = {}",
            ms(pct(&mut checks.clone(), 0.5)),
            ms(pct(&mut checks, 0.99)),
            SESSIONS * ROUNDS
        );
        println!(
            "all {SESSIONS} sessions in one pass: median {:.1} ms, p99 {:.1} ms ({:.2} ms per tracked task)",
            ms(pct(&mut passes.clone(), 0.5)),
            ms(pct(&mut passes.clone(), 0.99)),
            ms(pct(&mut passes, 0.5)) / SESSIONS as f64
        );
        println!(
            "a correction typed (send-keys -l, then Enter): median {:.2} ms, p99 {:.2} ms",
            ms(pct(&mut typed.clone(), 0.5)),
            ms(pct(&mut typed, 0.99))
        );
        println!("a session that does not exist: {:.2} ms (one call)", ms(missing));
    });
    let _ = tmux_cmd().arg("kill-server").status();
}
