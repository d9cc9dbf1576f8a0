//! `switchyard demo`: the fleet offline against the built-in sandbox.
//!
//! It starts the sandbox in this process, starts every agent of the demo
//! fleet as its own `switchyard run` process (one per token, as in
//! production), drops one event of every category plus a critical alert and
//! an unmatched one into the first agent's inbox, mutes `system` for a minute
//! and shows a held event, then prints where each message landed, per
//! channel. Then the fleet tour: a task handed to `tech-lead` through its inbox
//! (run in a container when Docker answers), `opsclaw` killed with SIGKILL until
//! the manager reports it stale, and the kill switch pulled and released.
//! The sandbox's web view (`GET /`) shows the channels fill meanwhile.
//! With `--keep` it keeps serving until Ctrl-C.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use serde_json::json;
use switchyard_routing::MuteTarget;
use tokio::process::{Child, Command};

mod chart;
mod conversation;

use crate::config::{Config, ConfigSource, DEMO_TOML};
use crate::coord::inbox::drop_item;
use crate::coord::status::{AgentState, StatusFile};
use crate::workers::{DockerRuntime, WORKER_IMAGE, ensure_worker_image};
use switchyard_sandbox::{SandboxHandle, SandboxState};

mod sandbox_setup;

use sandbox_setup::DEMO_TOKENS;
pub use sandbox_setup::{
    demo_sandbox_options, demo_token, env_token, sandbox_options_for, with_agent_tokens,
};

/// How the demo runs (the command line's `--keep` and `--dir`).
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// Keep the sandbox and the agents running after the tour.
    pub keep: bool,
    /// Where to put the workspace; `None`: a temporary directory, removed after.
    pub dir: Option<PathBuf>,
}

pub async fn run(config_path: Option<PathBuf>, args: DemoOptions) -> anyhow::Result<()> {
    // A workspace the user did not ask to keep is removed at the end.
    let temporary = args.dir.is_none() && !args.keep;
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("switchyard-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config_file = match config_path {
        Some(p) => p,
        None => {
            let p = dir.join("switchyard.toml");
            std::fs::write(&p, DEMO_TOML)
                .with_context(|| format!("cannot write {}", p.display()))?;
            p
        }
    };
    let config = Config::load(&ConfigSource::File(config_file.clone()))?;
    println!(
        "switchyard demo: workspace {}",
        config.fleet.workspace.display()
    );

    // The sandbox knows the tokens the agents are about to be given.
    let (options, _) = with_agent_tokens(sandbox_options_for(&config), &config, demo_token);
    let sandbox = switchyard_sandbox::start(options)
        .await
        .context("starting the sandbox")?;
    println!(
        "sandbox: Discord at {}  Telegram at {}",
        sandbox.discord_api_base(),
        sandbox.telegram_api_base()
    );
    println!(
        "web view: http://{}/ (the channels and the Telegram chat as they fill)",
        sandbox.addr()
    );

    let mut agents = Vec::new();
    for agent in &config.agents {
        agents.push((
            agent.name.to_string(),
            spawn_agent(
                &config_file,
                &agent.name,
                &sandbox,
                &config.fleet.secret_env,
            )?,
        ));
    }
    let work = async {
        let mut result = tour(&config, &sandbox).await;
        if result.is_ok() {
            result = fleet_tour(&config, &config_file, &sandbox, &mut agents).await;
        }
        if result.is_ok() && args.keep {
            println!(
                "\nkeeping the fleet running: web view at http://{0}/, state at http://{0}/_sandbox/state — Ctrl-C to stop",
                sandbox.addr()
            );
            crate::shutdown::wait_for_signal().await;
        }
        result
    };
    // Ctrl-C or SIGTERM during the tour stops everything the demo started
    // (the agents by SIGTERM, then the sandbox) before it exits; were the
    // demo itself killed outright, its agents get SIGTERM from the kernel
    // (PR_SET_PDEATHSIG, set in `spawn_agent`).
    let result = tokio::select! {
        biased;
        r = work => r,
        _ = crate::shutdown::wait_for_signal() => {
            eprintln!("\ninterrupted: stopping the demo's agents and its sandbox");
            Err(crate::error::Interrupted("the demo stopped its agents and its sandbox").into())
        }
    };
    stop_agents(agents).await;
    sandbox.shutdown().await;
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// The demo fleet's secret: made once per run, handed to the agents in
/// their environment only (never written anywhere).
static DEMO_FLEET_SECRET: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
});

fn spawn_agent(
    config_file: &Path,
    agent: &str,
    sandbox: &SandboxHandle,
    secret_env: &str,
) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("finding the switchyard binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("run")
        .arg("--agent")
        .arg(agent)
        .arg("--config")
        .arg(config_file)
        .env("SWITCHYARD__DISCORD__API_BASE", sandbox.discord_api_base())
        .env(
            "SWITCHYARD__TELEGRAM__API_BASE",
            sandbox.telegram_api_base(),
        )
        .env(
            "SWITCHYARD__RESPONDERS__LOCAL__BASE_URL",
            format!("http://{}/openai/v1", sandbox.addr()),
        )
        .env(
            "SWITCHYARD_LOG",
            // The tour prints what matters; the agents' own warnings (a stale peer,
            // the kill switch) are part of the show, so only errors reach the terminal.
            std::env::var("SWITCHYARD_LOG").unwrap_or_else(|_| "error".into()),
        )
        .stdin(Stdio::null())
        .kill_on_drop(true);
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (prctl, getppid). The agent is told to stop (SIGTERM: it drains and
    // writes its final status) when the demo dies, however it dies; if the
    // demo died before the prctl took effect, the agent stops itself now.
    unsafe {
        let demo = libc::getpid();
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != demo {
                libc::raise(libc::SIGTERM);
            }
            Ok(())
        });
    }
    for (env, token) in DEMO_TOKENS {
        if std::env::var_os(env).is_none() {
            cmd.env(env, token);
        }
    }
    if std::env::var_os(secret_env).is_none() {
        cmd.env(secret_env, DEMO_FLEET_SECRET.as_str());
    }
    cmd.spawn()
        .with_context(|| format!("starting agent {agent}"))
}

async fn stop_agents(agents: Vec<(String, Child)>) {
    for (name, mut child) in agents {
        if let Some(pid) = child.id() {
            // SIGTERM: the agent drains and writes its final status.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        match tokio::time::timeout(crate::shutdown::SHUTDOWN_DEADLINE, child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => eprintln!("agent {name} exited with {status}"),
            _ => {
                eprintln!("agent {name} did not stop in time; killing it");
                let _ = child.kill().await;
            }
        }
    }
}

/// The scripted part: events in, a mute, and where everything landed.
async fn tour(config: &Config, sandbox: &SandboxHandle) -> anyhow::Result<()> {
    let first = &config.agents[0].name;
    let status = StatusFile::for_fleet(&config.fleet)?;
    wait_until(Duration::from_secs(20), "the agents to start", || {
        let s = status.read().ok()?;
        config
            .agents
            .iter()
            .all(|a| s.agents.contains_key(a.name.as_str()))
            .then_some(())
    })
    .await?;
    println!(
        "agents up: {}",
        config
            .agents
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let now = Utc::now();
    let mute = crate::coord::mutes::create(
        config,
        MuteTarget::Category(switchyard_routing::Category::System),
        Duration::from_secs(60),
        "demo",
        "showing a held event",
        false,
        now,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("muted `system` for 1 minute ({})", mute.id);

    let stamp = now.format("%H%M%S");
    let events = [
        (
            "briefing",
            "info",
            "Morning briefing",
            "3 tasks done overnight, 1 waiting for review.",
        ),
        (
            "alert",
            "warning",
            "Disk 85% on web-1",
            "Threshold crossed at 06:55.",
        ),
        (
            "alert",
            "critical",
            "web-1 is down",
            "Health check failed 3 times in a row.",
        ),
        (
            "subagent_result",
            "info",
            "Invoice run finished",
            "42 invoices, 0 errors.",
        ),
        (
            "system",
            "info",
            "Heartbeat OK",
            "All cron jobs ran on time.",
        ),
        (
            "memory_update",
            "info",
            "MEMORY.md updated",
            "Added: the deploy checklist.",
        ),
        (
            "chat",
            "info",
            "Hello from the demo",
            "A conversation message.",
        ),
        (
            "action_required",
            "warning",
            "Approve deploy of web-1?",
            "Risk 75: git push, production.",
        ),
        (
            "mystery",
            "info",
            "An event nobody routes",
            "Its category matches no rule.",
        ),
    ];
    // Files travel with messages: the briefing's report, the disk alert's chart.
    let reports = config.fleet.workspace.join("reports");
    std::fs::create_dir_all(&reports).context("cannot make the demo's reports/ folder")?;
    std::fs::write(
        reports.join("morning-briefing.md"),
        "# Morning briefing\n\n- 3 tasks done overnight\n- 1 waiting for review: web-1's deploy\n",
    )
    .context("cannot write the demo's report")?;
    std::fs::write(reports.join("disk-web-1.png"), chart::disk_chart())
        .context("cannot write the demo's chart")?;
    for (i, (category, severity, title, body)) in events.iter().enumerate() {
        let id = format!("evt_demo_{stamp}_{i:03}");
        let mut item = json!({
            "kind": "event", "event_id": id, "event_type": format!("demo.{category}"),
            "category": category, "severity": severity, "source": "demo",
            "title": title, "body": body,
        });
        match *title {
            "Morning briefing" => item["attachments"] = json!(["reports/morning-briefing.md"]),
            "Disk 85% on web-1" => item["attachments"] = json!(["reports/disk-web-1.png"]),
            _ => {}
        }
        drop_item(&config.fleet.workspace, first, &id, &item)?;
    }
    println!("dropped {} events into {first}'s inbox", events.len());
    // A real approval request: the prompt in Telegram has Approve and Deny
    // buttons, which the web view presses as the configured approver.
    let approval = match config.telegram_owner() {
        Some(owner) => {
            let id = crate::approvals::new_approval_id();
            let item = json!({
                "kind": "approval_request", "id": id,
                "summary": "Deploy web-1 to production", "detail": "git push origin main (risk 75)",
                "risk": 75, "requested_by": "demo", "expires_in": "10m",
            });
            drop_item(&config.fleet.workspace, &owner.name, &id, &item)?;
            println!(
                "asked for an approval in Telegram ({id}): press Approve or Deny in the web view"
            );
            1
        }
        None => 0,
    };

    // Everything but the held `system` event lands, the critical alert twice
    // (Discord and Telegram), plus the notice that `system` is muted and the
    // approval prompt.
    let expected = events.len() - 1 + 1 + 1 + approval;
    let state = wait_until(Duration::from_secs(30), "the deliveries", || {
        let st = sandbox.state();
        // The status board in #system is edited in place; it is not one of the messages counted.
        let boards = st
            .discord
            .channels
            .iter()
            .flat_map(|c| &c.messages)
            .filter(|m| m.has_embed_title(crate::discord::board::BOARD_TITLE))
            .count();
        (st.total_messages() - boards >= expected).then_some(st)
    })
    .await?;
    print_state(config, &state);
    let done = config.agent_dir(first).join("done");
    let held = count_held(&done);
    println!("\nheld by the `system` mute: {held} event(s)");

    crate::coord::mutes::lift(config, mute.id.as_str(), Utc::now())?;
    println!(
        "lifted the mute ({}): the held event comes back as one digest",
        mute.id
    );
    let system = config
        .discord
        .as_ref()
        .and_then(|d| d.channels.get("system"))
        .copied();
    let digest = wait_until(Duration::from_secs(20), "the digest", || {
        let st = sandbox.state();
        system.and_then(|id| {
            st.discord_messages(id)
                .iter()
                .map(|m| m.text())
                .find(|t| t.starts_with("While muted"))
        })
    })
    .await?;
    println!("  discord #system:");
    for line in digest.lines() {
        println!("    | {line}");
    }
    let stats = sandbox.state().stats;
    println!(
        "\nsandbox: {} Discord and {} Telegram requests, {} refused, {} rate-limited (429)",
        stats.discord.requests,
        stats.telegram.requests,
        stats.discord.rejected + stats.telegram.rejected,
        stats.discord.rate_limited + stats.telegram.rate_limited
    );
    Ok(())
}

/// The fleet part of the tour: a hand-off through an inbox, a stale peer, the kill switch.
async fn fleet_tour(
    config: &Config,
    config_file: &Path,
    sandbox: &SandboxHandle,
    agents: &mut Vec<(String, Child)>,
) -> anyhow::Result<()> {
    hand_off_task(config, sandbox).await?;
    conversation::talk(config, sandbox).await?;
    stale_peer(config, config_file, sandbox, agents).await?;
    kill_switch(config).await
}

/// Drops a tiny `sh` task into `tech-lead`'s inbox and prints its result; tasks
/// run in containers, so without Docker the step says so and moves on.
async fn hand_off_task(config: &Config, sandbox: &SandboxHandle) -> anyhow::Result<()> {
    const TO: &str = "tech-lead";
    println!("\nhanding a task to {TO} through its inbox:");
    let runtime = match DockerRuntime::connect(&config.docker, &config.fleet_id()).await {
        Ok(rt) => rt,
        Err(e) => {
            println!("  skipped: tasks run in containers, and {e}");
            return Ok(());
        }
    };
    if let Err(e) = ensure_worker_image(runtime.docker(), WORKER_IMAGE).await {
        println!("  skipped: the worker image {WORKER_IMAGE} could not be built ({e})");
        return Ok(());
    }
    let id = format!("tsk_demo_{}", Utc::now().format("%H%M%S"));
    let task = json!({
        "kind": "task", "id": id, "title": "Say hello from a container",
        "priority": "low", "risk": "low", "skills": ["sh"],
        "steps": [{"skill": "sh", "args": ["echo \"hello from $(hostname)\"; uname -s"]}],
        "acceptance": ["stdout contains \"hello from\""],
    });
    drop_item(&config.fleet.workspace, TO, &id, &task)?;
    println!("  dropped {id} into agents/{TO}/inbox");
    let agent_dir = config.agent_dir(TO);
    let result = wait_until(Duration::from_secs(60), "the task's result", || {
        ["done", "failed"].iter().find_map(|outcome| {
            let path = agent_dir.join(outcome).join(format!("{id}.result.json"));
            let text = std::fs::read_to_string(path).ok()?;
            let value: serde_json::Value = serde_json::from_str(&text).ok()?;
            Some((*outcome, value))
        })
    })
    .await?;
    let (outcome, value) = result;
    let r = &value["result"];
    println!(
        "  {TO} → {outcome}/{id}.result.json: status {}, exit codes {}, {} ms",
        r["status"].as_str().unwrap_or("?"),
        r["exit_codes"],
        r["duration_ms"]
    );
    // The result also goes out as an event: what the operator reads.
    let posted = wait_until(Duration::from_secs(20), "the task's result message", || {
        sandbox.state().discord.channels.iter().find_map(|ch| {
            ch.messages
                .iter()
                .map(|m| m.text())
                .find(|t| t.contains(&id))
                .map(|t| (ch.name.clone(), t))
        })
    })
    .await?;
    println!("  discord #{}:", posted.0);
    for line in posted.1.lines() {
        println!("    | {line}");
    }
    Ok(())
}

/// SIGKILLs `opsclaw` (no chance to say goodbye), waits for the manager's
/// stale-peer alert, then starts it again.
async fn stale_peer(
    config: &Config,
    config_file: &Path,
    sandbox: &SandboxHandle,
    agents: &mut Vec<(String, Child)>,
) -> anyhow::Result<()> {
    const VICTIM: &str = "opsclaw";
    let Some(pos) = agents.iter().position(|(name, _)| name == VICTIM) else {
        println!("\nno agent {VICTIM} in this fleet: the stale-peer step is skipped");
        return Ok(());
    };
    let (_, mut child) = agents.remove(pos);
    child.kill().await.context("killing opsclaw")?;
    println!(
        "\nkilled {VICTIM} with SIGKILL; peers call it stale after {}s without a heartbeat",
        config.fleet.stale_after.as_secs()
    );
    let wanted = format!("Agent {VICTIM} is not responding");
    let (channel, alert) = wait_until(Duration::from_secs(30), "the stale-peer alert", || {
        let st = sandbox.state();
        let found = st.discord.channels.iter().find_map(|ch| {
            ch.messages
                .iter()
                .map(|m| m.text())
                .find(|t| t.contains(&wanted))
                .map(|t| (ch.name.clone(), t))
        });
        found.or_else(|| {
            st.telegram.chats.iter().find_map(|chat| {
                chat.messages
                    .iter()
                    .find(|m| m.text.contains(&wanted))
                    .map(|m| (format!("telegram {}", chat.name), m.text.clone()))
            })
        })
    })
    .await?;
    println!("  discord #{channel}:");
    for line in alert.lines() {
        println!("    | {line}");
    }
    let child = spawn_agent(config_file, VICTIM, sandbox, &config.fleet.secret_env)?;
    let pid = child.id();
    agents.push((VICTIM.to_owned(), child));
    let status = StatusFile::for_fleet(&config.fleet)?;
    wait_until(Duration::from_secs(20), "opsclaw to restart", || {
        let s = status.read().ok()?;
        (s.agents.get(VICTIM).map(|hb| hb.pid) == pid).then_some(())
    })
    .await?;
    println!("  restarted {VICTIM} (pid {})", pid.unwrap_or_default());
    Ok(())
}

/// Pulls the fleet-wide kill switch, shows every agent report `killed`, resumes.
async fn kill_switch(config: &Config) -> anyhow::Result<()> {
    let status = StatusFile::for_fleet(&config.fleet)?;
    let names: Vec<&str> = config.agents.iter().map(|a| a.name.as_str()).collect();
    let states = |s: &crate::coord::status::Status| {
        names
            .iter()
            .map(|n| (*n, s.agents.get(*n).map(|hb| hb.state)))
            .collect::<Vec<_>>()
    };
    status.kill(None, "demo", "showing the kill switch")?;
    println!("\npulled the kill switch for the whole fleet");
    let killed = wait_until(
        Duration::from_secs(15),
        "every agent to report killed",
        || {
            let s = status.read().ok()?;
            let now = states(&s);
            now.iter()
                .all(|(_, st)| *st == Some(AgentState::Killed))
                .then_some(now)
        },
    )
    .await?;
    print_states(&killed);
    status.resume(None, "demo", "the tour is over")?;
    println!("resumed the fleet");
    let resumed = wait_until(Duration::from_secs(15), "every agent to resume", || {
        let s = status.read().ok()?;
        let now = states(&s);
        now.iter()
            .all(|(_, st)| matches!(st, Some(AgentState::Idle | AgentState::Busy)))
            .then_some(now)
    })
    .await?;
    print_states(&resumed);
    Ok(())
}

fn print_states(states: &[(&str, Option<AgentState>)]) {
    for (name, state) in states {
        println!(
            "  {name:<10} {}",
            state.map_or("no heartbeat", AgentState::as_str)
        );
    }
}

fn count_held(done: &Path) -> usize {
    std::fs::read_dir(done)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".result.json"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter(|t| t.contains("held (mute_"))
        .count()
}

fn print_state(config: &Config, state: &SandboxState) {
    let aliases: BTreeMap<u64, &str> = config
        .discord
        .iter()
        .flat_map(|d| d.channels.iter().map(|(a, id)| (*id, a.as_str())))
        .collect();
    println!("\nwhere each message landed:");
    for ch in &state.discord.channels {
        let name = aliases.get(&ch.id).copied().unwrap_or(ch.name.as_str());
        println!("  discord #{name} ({} message(s))", ch.messages.len());
        for m in &ch.messages {
            println!("    - {}", first_line(&m.text()));
            for a in &m.attachments {
                println!(
                    "      📎 {} ({}, {} bytes)",
                    a["filename"].as_str().unwrap_or("?"),
                    a["content_type"].as_str().unwrap_or("?"),
                    a["size"].as_u64().unwrap_or(0)
                );
            }
        }
    }
    for chat in &state.telegram.chats {
        println!(
            "  telegram {} ({} message(s))",
            chat.name,
            chat.messages.len()
        );
        for m in &chat.messages {
            println!("    - {}", first_line(&m.text));
            let buttons: Vec<String> = m
                .reply_markup
                .as_ref()
                .and_then(|k| k["inline_keyboard"].as_array())
                .into_iter()
                .flatten()
                .filter_map(|row| row.as_array())
                .flatten()
                .filter_map(|b| b["text"].as_str().map(|t| format!("[{t}]")))
                .collect();
            if !buttons.is_empty() {
                println!("      {}", buttons.join(" "));
            }
        }
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut out: String = line.chars().take(100).collect();
    if line.chars().count() > 100 {
        out.push('…');
    }
    out
}

async fn wait_until<T>(
    limit: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("gave up waiting for {what} after {limit:?}: see the agents' logs above");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
