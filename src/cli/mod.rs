//! The shell commands behind `main.rs`: each loads the configuration, does
//! one thing, and prints for a person (or `--json` for a script).
//!
//! Errors a user can fix are [`BadInput`](crate::error::BadInput) (exit 2);
//! anything else is a failure (exit 1). Both print one clear sentence, with context.

mod approvals;
pub mod args;
mod doctor;
mod table;
mod tasks;

pub use approvals::{approval, approvals, decide};
pub use args::*;
pub use doctor::doctor;
pub use tasks::{policy, registry, spawn, task};

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use switchyard_routing::{Category, EventDraft, MuteTarget, RouteInput, Severity};

use crate::config::{Config, ConfigError, ConfigSource, parse_duration};
use crate::coord::inbox::Outcome;
use crate::coord::queue::hand_in;
use crate::coord::{CoordError, Status, StatusFile};
use crate::error::bad_input;

/// `--config`, else `switchyard.toml` in the working directory.
pub fn load_config(path: Option<PathBuf>) -> anyhow::Result<Config> {
    let path = path.unwrap_or_else(|| PathBuf::from("switchyard.toml"));
    if !path.exists() {
        return Err(bad_input(format!(
            "no configuration at {}: pass --config PATH, set SWITCHYARD_CONFIG, or start from config/example.toml \
             (`switchyard demo` needs none)",
            path.display()
        )));
    }
    Ok(Config::load(&ConfigSource::File(path))?)
}

pub fn check_config(path: Option<PathBuf>, agent: Option<&str>, json: bool) -> anyhow::Result<()> {
    let loaded = load_config(path).and_then(|config| {
        if let Some(name) = agent {
            let a = config.require_agent(name)?;
            let problems = config.check_tokens(a);
            if !problems.is_empty() {
                return Err(ConfigError {
                    source_name: config.source_name.clone(),
                    problems,
                }
                .into());
            }
        }
        Ok(config)
    });
    let config = match loaded {
        Ok(c) => c,
        Err(e) if json => {
            let problems: Vec<serde_json::Value> = e
                .chain()
                .find_map(|c| c.downcast_ref::<ConfigError>())
                .map(|ce| {
                    ce.problems
                        .iter()
                        .map(|p| serde_json::json!({"key": p.key, "problem": p.message}))
                        .collect()
                })
                .unwrap_or_else(|| {
                    vec![serde_json::json!({"key": null, "problem": format!("{e:#}")})]
                });
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"ok": false, "problems": problems})
                )?
            );
            return Err(crate::error::BadInput(
                "the configuration has problems (listed above)".into(),
            )
            .into());
        }
        Err(e) => return Err(e),
    };
    let notes = fleet_notes(&config)?;
    // Not a note about the fleet: what this command leaves to others.
    let not_checked = agent.is_none().then_some(
        "the tokens: `check-config --agent NAME` checks that an agent's variables are set, `switchyard doctor` that the platforms accept them and reach every channel and chat",
    );
    let (channels, chats) = (
        config.discord.as_ref().map_or(0, |d| d.channels.len()),
        config.telegram.as_ref().map_or(0, |t| t.chats.len()),
    );
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "ok": true, "source": config.source_name, "agents": config.agents.len(),
                "routes": config.routes.len(), "discord_channels": channels, "telegram_chats": chats,
                "notes": notes, "not_checked": not_checked,
            }))?
        );
        return Ok(());
    }
    println!(
        "{}: ok ({} agents, {} routes, {channels} Discord channels, {chats} Telegram chats)",
        config.source_name,
        config.agents.len(),
        config.routes.len(),
    );
    for note in notes {
        println!("note: {note}");
    }
    if let Some(what) = not_checked {
        println!("not checked: {what}");
    }
    Ok(())
}

/// What the fleet's databases allow, where an operator could expect more:
/// said by `check-config`, never an error (each is a valid way to run).
fn fleet_notes(config: &Config) -> anyhow::Result<Vec<&'static str>> {
    use crate::store::Backend;
    let state_shared = Backend::of(&config.fleet.database)? == Backend::Postgres;
    let mut notes = match (&config.fleet.coordination, state_shared) {
        (Some(_), false) => vec![
            "fleet.coordination is on PostgreSQL but fleet.database is a local SQLite file: each agent's state stays on the host it runs on, so a standby for an agent (`switchyard run --agent NAME` on another host) would be refused; put fleet.database on PostgreSQL to run standbys",
        ],
        (None, true) => vec![
            "fleet.database is on PostgreSQL but fleet.coordination is not set: the agents coordinate through the workspace directory, so the fleet stays on this host; set fleet.coordination to run agents and the CLI on several hosts",
        ],
        _ => Vec::new(),
    };
    if config.fleet.coordination.is_some()
        && config.needs_fleet_secret()
        && config.approvals.decision_keys.is_empty()
    {
        notes.push(
            "approval decisions forwarded between agents are sealed with the fleet secret, which every agent's host holds: on a fleet across hosts a worker's host could seal one; set [approvals] decision_keys (`switchyard approval keygen`) so that only the agent that owns Telegram can sign them (docs/APPROVALS.md)",
        );
    }
    Ok(notes)
}

pub async fn send(path: Option<PathBuf>, args: SendArgs) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let agent = target_agent(&config, args.to.as_deref())?;
    let draft = EventDraft {
        kind: Some("event".into()),
        event_id: args.event_id,
        event_type: args.event_type,
        category: Some(args.category),
        severity: Some(args.severity),
        source: Some(args.source),
        title: Some(args.title),
        body: Some(args.body),
        ..Default::default()
    };
    // A random last part: parallel sends never share an id (and drop_item
    // refuses to replace one that is waiting, so nothing is lost silently).
    let now = Utc::now();
    let event = draft
        .validate(
            now,
            switchyard_routing::EventId::generate(now, rand::random()),
        )
        .map_err(|e| bad_input(e.to_string()))?;
    let wait = if args.wait {
        Some(parse_duration(&args.timeout).map_err(bad_input)?)
    } else {
        None
    };
    warn_if_unrouted(&config, &event);
    let value = serde_json::to_value(&event).context("encoding the event")?;
    let mut value = value;
    value["kind"] = "event".into();
    let handed = hand_in(&config.fleet, agent, event.event_id.as_str(), &value)
        .with_context(|| format!("handing the event to {agent}"))?;
    println!("{} → {handed}", event.event_id);
    let Some(limit) = wait else {
        return Ok(());
    };
    let outcome = crate::coord::queue::wait_outcome(
        &config.fleet,
        agent,
        event.event_id.as_str(),
        &handed,
        limit,
    )?;
    match outcome {
        Some(Outcome::Done(result)) => {
            print_routing(&result);
            Ok(())
        }
        Some(Outcome::Failed(reason)) => Err(bad_input(format!(
            "{agent} refused the event: {}",
            reason["error"]
                .as_str()
                .map_or_else(|| reason.to_string(), str::to_owned)
        ))),
        None => anyhow::bail!(
            "{agent} did not handle the event within {}: is it running? (`switchyard status`)",
            args.timeout
        ),
    }
}

/// Warn (on stderr) when the event's category is one no route names, so
/// the event would land as unmatched: usually a typo.
fn warn_if_unrouted(config: &Config, event: &switchyard_routing::Event) {
    let Ok(router) = config.router() else {
        return;
    };
    let decision = router.route(&switchyard_routing::RouteInput::from(event));
    if !decision.unmatched {
        return;
    }
    let mut known: Vec<String> = config
        .routes
        .iter()
        .flat_map(|r| r.r#match.category.iter().flatten())
        .map(|c| c.as_str().to_string())
        .collect();
    known.sort();
    known.dedup();
    let goes: Vec<String> = decision.destinations().map(|d| d.to_string()).collect();
    eprintln!(
        "warning: no route matches category {:?}: the event goes {} as unmatched. Categories the routes name: {}. `switchyard route --category {}` explains the routing.",
        event.category.as_str(),
        if goes.is_empty() {
            "nowhere".to_string()
        } else {
            format!("to {}", goes.join(", "))
        },
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        },
        event.category.as_str()
    );
}

/// Where a handled event went, from its result.
fn print_routing(result: &serde_json::Value) {
    match result["status"].as_str() {
        Some("routed") => {
            let routed = result["routed"].as_array().cloned().unwrap_or_default();
            if routed.is_empty() {
                println!("handled: routed nowhere");
            }
            for r in routed {
                println!(
                    "  {}  (rule {}): {}",
                    r["destination"].as_str().unwrap_or("?"),
                    r["rule"].as_str().unwrap_or("?"),
                    r["state"].as_str().unwrap_or("?")
                );
            }
        }
        Some(other) => println!(
            "handled: {other}{}",
            result["note"]
                .as_str()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ),
        None => println!("handled: {result}"),
    }
}

fn target_agent<'c>(config: &'c Config, to: Option<&str>) -> anyhow::Result<&'c str> {
    match to {
        Some(name) => config.agent(name).map(|a| a.name.as_str()).ok_or_else(|| {
            bad_input(format!(
                "no agent named {name:?}; agents: {}",
                agent_names(config)
            ))
        }),
        None => config
            .agents
            .first()
            .map(|a| a.name.as_str())
            .ok_or_else(|| bad_input("the configuration has no agents")),
    }
}

fn agent_names(config: &Config) -> String {
    config
        .agents
        .iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn route(path: Option<PathBuf>, args: RouteArgs) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let router = config.router().map_err(|e| bad_input(e.to_string()))?;
    let category: Category = args.category.parse().unwrap_or_else(|never| match never {});
    let severity: Severity = args.severity.parse().map_err(bad_input)?;
    let event_type = args
        .event_type
        .unwrap_or_else(|| format!("{category}.event"));
    let labels = Default::default();
    let input = RouteInput {
        category: &category,
        severity,
        source: &args.source,
        event_type: &event_type,
        labels: &labels,
    };
    let decision = router.route(&input);
    let status = StatusFile::for_fleet(&config.fleet)?.read()?;
    let now = Utc::now();
    if args.json {
        let targets: Vec<serde_json::Value> = decision
            .targets
            .iter()
            .map(|t| {
                let held =
                    switchyard_routing::holding_mute(&status.mutes, &input, &t.destination, now);
                serde_json::json!({
                    "destination": t.destination.to_string(),
                    "rule": t.rule.to_string(),
                    "held_by": held.map(|m| m.id.to_string()),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"unmatched": decision.unmatched, "targets": targets})
            )?
        );
        return Ok(());
    }
    for line in decision.explain() {
        println!("{line}");
    }
    for target in &decision.targets {
        if let Some(m) =
            switchyard_routing::holding_mute(&status.mutes, &input, &target.destination, now)
        {
            println!(
                "  {} is muted by {} until {} ({}): it would be held",
                target.destination, m.id, m.expires_at, m.reason
            );
        }
    }
    Ok(())
}

pub fn mute(path: Option<PathBuf>, args: MuteArgs) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let target: MuteTarget = args
        .target
        .parse()
        .map_err(|e: switchyard_routing::MuteError| bad_input(e.to_string()))?;
    let duration = parse_duration(&args.duration).map_err(bad_input)?;
    let by = args.by.unwrap_or_else(shell_actor);
    let mute = crate::coord::mutes::create(
        &config,
        target,
        duration,
        &by,
        &args.reason,
        args.force,
        Utc::now(),
    )
    .map_err(|e| match e {
        crate::coord::mutes::MuteCreateError::Refused(m) => bad_input(m),
        crate::coord::mutes::MuteCreateError::Io(e) => e,
    })?;
    println!(
        "{} muted until {} (id {})",
        mute.target,
        mute.expires_at.format("%Y-%m-%d %H:%M:%S UTC"),
        mute.id
    );
    Ok(())
}

pub fn unmute(path: Option<PathBuf>, id: &str) -> anyhow::Result<()> {
    let config = load_config(path)?;
    match crate::coord::mutes::lift(&config, id, Utc::now())? {
        Some(m) => println!(
            "lifted {} on {}; held messages will be posted as one digest",
            m.id, m.target
        ),
        None => {
            return Err(bad_input(format!(
                "no active mute with id {id:?}: see `switchyard mutes`"
            )));
        }
    }
    Ok(())
}

pub fn mutes(path: Option<PathBuf>, json: bool) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let status = StatusFile::for_fleet(&config.fleet)?.read()?;
    let now = Utc::now();
    let active: Vec<_> = status.mutes.iter().filter(|m| m.expires_at > now).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&active)?);
        return Ok(());
    }
    if active.is_empty() {
        println!("no active mutes");
        return Ok(());
    }
    let mut t = table::Table::new(&["id", "target", "left", "by", "reason"]);
    for m in active {
        let left = (m.expires_at - now).to_std().unwrap_or_default();
        t.row(vec![
            m.id.to_string(),
            m.target.to_string(),
            humantime::format_duration(Duration::from_secs(left.as_secs())).to_string(),
            format!("{}{}", m.created_by, if m.force { " (force)" } else { "" }),
            m.reason.clone(),
        ]);
    }
    t.print();
    Ok(())
}

pub fn status(path: Option<PathBuf>, json: bool) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let status = StatusFile::for_fleet(&config.fleet)?.read()?;
    // Hot standbys exist only with a coordination database.
    let standbys = match &config.fleet.coordination {
        Some(url) => {
            let db = crate::coord::shared_db::CoordDb::open(url)?;
            crate::coord::shared_db::block(async move {
                crate::coord::agent_lease::standbys(&db).await
            })?
        }
        None => Vec::new(),
    };
    if json {
        let mut value = serde_json::to_value(&status)?;
        if !standbys.is_empty() {
            value["standbys"] = standbys
                .iter()
                .map(|(agent, who)| serde_json::json!({"agent": agent, "process": who}))
                .collect();
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!(
            "{}",
            render_status_table(&status, Utc::now(), config.fleet.stale_after)
        );
        for (agent, who) in &standbys {
            println!("standby for {agent}: {who}");
        }
    }
    Ok(())
}

pub fn kill(
    path: Option<PathBuf>,
    agent: Option<String>,
    reason: Option<String>,
    on: bool,
) -> anyhow::Result<()> {
    let config = load_config(path)?;
    if let Some(a) = &agent
        && config.agent(a).is_none()
    {
        return Err(bad_input(format!(
            "no agent named {a:?}; agents: {}",
            agent_names(&config)
        )));
    }
    let by = shell_actor();
    let file = StatusFile::for_fleet(&config.fleet)?;
    let scope = agent.as_deref().unwrap_or("the whole fleet");
    if on {
        file.kill(agent.as_deref(), &by, reason.as_deref().unwrap_or(""))?;
        println!("kill switch ON for {scope}: agents stop taking new work within 2 s");
    } else {
        file.resume(agent.as_deref(), &by, reason.as_deref().unwrap_or(""))?;
        println!("kill switch OFF for {scope}");
    }
    Ok(())
}

pub fn lock(path: Option<PathBuf>, cmd: LockCommand) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let file = StatusFile::for_fleet(&config.fleet)?;
    match cmd {
        LockCommand::Acquire {
            name,
            ttl,
            reason,
            holder,
        } => {
            let ttl = parse_duration(&ttl).map_err(bad_input)?;
            let lock = file
                .acquire(&name, &holder.unwrap_or_else(shell_actor), ttl, &reason)
                .map_err(coord_input)?;
            println!("{name} held by {} until {}", lock.holder, lock.expires_at);
        }
        LockCommand::Release {
            name,
            holder,
            force,
        } => {
            if force {
                file.force_release(&name)?;
            } else {
                file.release(&name, &holder.unwrap_or_else(shell_actor))
                    .map_err(coord_input)?;
            }
            println!("{name} released");
        }
        LockCommand::List { json } => {
            let status = file.read()?;
            if json {
                let now = Utc::now();
                let held: std::collections::BTreeMap<&String, &crate::coord::LockInfo> =
                    status.active_locks(now).collect();
                println!("{}", serde_json::to_string_pretty(&held)?);
                return Ok(());
            }
            if status.locks.is_empty() {
                println!("no locks held");
                return Ok(());
            }
            let mut t = table::Table::new(&["lock", "holder", "until", "reason"]);
            for (name, l) in &status.locks {
                t.row(vec![
                    name.clone(),
                    l.holder.clone(),
                    l.expires_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    l.reason.clone(),
                ]);
            }
            t.print();
        }
    }
    Ok(())
}

pub async fn run(
    path: Option<PathBuf>,
    agent: &str,
    listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let mut config = load_config(path)?;
    if let Some(addr) = listen {
        let a = config
            .agents
            .iter_mut()
            .find(|a| a.name == agent)
            .ok_or_else(|| bad_input(format!("no agent named {agent:?}")))?;
        a.listen = Some(addr);
    }
    crate::agent::run_agent(config, agent).await
}

/// `switchyard reload --agent NAME`: SIGHUP to the agent on this host, then
/// what it did, from its heartbeat (exit 2 when it refused the file).
pub fn reload(path: Option<PathBuf>, agent: &str, timeout: &str) -> anyhow::Result<()> {
    let config = load_config(path).with_context(|| {
        format!("{agent} was not asked to reload and keeps its running configuration")
    })?;
    config.require_agent(agent)?;
    let limit = parse_duration(timeout).map_err(bad_input)?;
    let status = StatusFile::for_fleet(&config.fleet)?;
    let hb = status
        .read()?
        .agents
        .get(agent)
        .cloned()
        .ok_or_else(|| bad_input(format!("{agent} has no heartbeat: is it running?")))?;
    let here = crate::coord::host_name();
    if hb.host != here {
        return Err(bad_input(format!(
            "{agent} runs on {} (pid {}), not on {here}: run `switchyard reload --agent {agent}` there, or send it SIGHUP",
            hb.host, hb.pid
        )));
    }
    // SIGHUP ends a process that does not handle it: only a live switchyard
    // agent with a fresh heartbeat is signalled, never a reused pid.
    let age = (Utc::now() - hb.last_beat).to_std().unwrap_or_default();
    let ours = std::fs::read(format!("/proc/{}/cmdline", hb.pid)).is_ok_and(|c| {
        let c = String::from_utf8_lossy(&c);
        c.contains("switchyard") && c.contains(agent)
    });
    if age > config.fleet.stale_after || !ours {
        return Err(bad_input(format!(
            "{agent}'s heartbeat (pid {}, {}s old) is not a running agent on this host: start it, or check `switchyard status`",
            hb.pid,
            age.as_secs()
        )));
    }
    let sent = Utc::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(hb.pid as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .map_err(|e| bad_input(format!("cannot signal {agent} (pid {}): {e}", hb.pid)))?;
    let deadline = std::time::Instant::now() + limit;
    let record = loop {
        let last = status
            .read()?
            .agents
            .get(agent)
            .and_then(|h| h.last_reload.clone())
            .filter(|r| r.at >= sent);
        if let Some(r) = last {
            break r;
        }
        if std::time::Instant::now() >= deadline {
            anyhow::bail!(
                "{agent} (pid {}) did not report a reload within {timeout}",
                hb.pid
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    match record.outcome.as_str() {
        "refused" => Err(bad_input(format!(
            "{agent} kept its running configuration: the file has {} problem(s):\n  - {}",
            record.problems.len(),
            record.problems.join("\n  - ")
        ))),
        outcome => {
            println!("{agent}: {outcome}");
            if !record.applied.is_empty() {
                println!("  applied now: {}", record.applied.join(", "));
            }
            if !record.needs_restart.is_empty() {
                println!(
                    "  changed, but takes a restart of {agent}: {}",
                    record.needs_restart.join(", ")
                );
            }
            Ok(())
        }
    }
}

/// `switchyard completions SHELL`: the shell's completion script on stdout.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    use clap::CommandFactory;
    let mut cmd = crate::cli::args::Cli::command();
    clap_complete::generate(shell, &mut cmd, "switchyard", &mut std::io::stdout());
    Ok(())
}

/// `switchyard man`: the manual page (roff) on stdout.
pub fn man() -> anyhow::Result<()> {
    use clap::CommandFactory;
    clap_mangen::Man::new(crate::cli::args::Cli::command())
        .render(&mut std::io::stdout())
        .context("cannot write the manual page")
}

/// GET the URL; success on a 2xx within 5 s.
pub async fn healthcheck(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let resp = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    if !resp.status().is_success() {
        anyhow::bail!("{url} answered {}", resp.status());
    }
    Ok(())
}

/// `switchyard sandbox`: with `--config` (or `SWITCHYARD_CONFIG`), the channels
/// and chats of that configuration and the bot tokens of its agents whose
/// variables are set in this environment; without, the demo fleet's. The demo's
/// variables (`DEMO_*`) default to the demo's fake tokens, as `switchyard demo`
/// hands them to its agents, so `--config config/demo.toml` serves the compose
/// fleet of `compose.sandbox.yaml`. Any other token is refused until registered
/// with `POST /_sandbox/tokens`.
pub async fn sandbox(path: Option<PathBuf>, listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let (opts, missing) = match path {
        Some(path) => {
            let config = load_config(Some(path))?;
            crate::demo::with_agent_tokens(
                crate::demo::sandbox_options_for(&config),
                &config,
                crate::demo::demo_token,
            )
        }
        None => (crate::demo::demo_sandbox_options()?, Vec::new()),
    };
    let opts = switchyard_sandbox::SandboxOptions { listen, ..opts };
    let (discord, telegram) = (opts.discord_tokens.len(), opts.telegram_tokens.len());
    let sandbox = switchyard_sandbox::start(opts).await?;
    // The address bound, not the one asked for: `--listen 127.0.0.1:0` picks a port.
    let addr = sandbox.addr();
    eprintln!(
        "sandbox: Discord API at http://{addr}/api/v10, Telegram Bot API at http://{addr}/telegram, \
         an OpenAI-compatible model at http://{addr}/openai/v1; the web view at http://{addr}/"
    );
    eprintln!(
        "sandbox: knows {discord} Discord and {telegram} Telegram bot token(s); register more with POST http://{addr}/_sandbox/tokens"
    );
    for var in missing {
        eprintln!(
            "sandbox: {var} is not set here, so its bot is refused until its token is registered"
        );
    }
    let _ = tokio::signal::ctrl_c().await;
    sandbox.shutdown().await;
    Ok(())
}

pub async fn demo(path: Option<PathBuf>, args: DemoArgs) -> anyhow::Result<()> {
    let options = crate::demo::DemoOptions {
        keep: args.keep,
        dir: args.dir,
    };
    crate::demo::run(path, options).await
}

/// Who acts from the shell, as audit rows and the status file record it.
fn shell_actor() -> String {
    format!(
        "shell:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

/// Lock conflicts and bad names are the user's to fix (exit 2); I/O is not.
fn coord_input(e: CoordError) -> anyhow::Error {
    match e {
        CoordError::LockHeld { .. }
        | CoordError::LockNotHeld { .. }
        | CoordError::LockNotYours { .. }
        | CoordError::InvalidLockName(_) => bad_input(e.to_string()),
        other => other.into(),
    }
}

/// `switchyard status`: one line per agent, then locks, mutes, the kill switch.
pub fn render_status_table(
    status: &Status,
    now: chrono::DateTime<Utc>,
    stale_after: Duration,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let stale: std::collections::BTreeSet<String> = status
        .stale_peers(now, stale_after)
        .into_iter()
        .map(|p| p.agent)
        .collect();
    let _ = writeln!(
        out,
        "AGENT            STATE     QUEUE  LAST BEAT  PID     HOST"
    );
    for (name, hb) in &status.agents {
        let age = (now - hb.last_beat).to_std().unwrap_or_default();
        let state = if stale.contains(name) && hb.state.as_str() != "stopped" {
            "STALE"
        } else {
            hb.state.as_str()
        };
        let _ = writeln!(
            out,
            "{:<16} {:<8} {:>6} {:>9}s  {:<7} {}",
            name,
            state,
            hb.queue_depth,
            age.as_secs(),
            hb.pid,
            hb.host
        );
    }
    if status.agents.is_empty() {
        let _ = writeln!(out, "(no agent has written a heartbeat yet)");
    }
    for (name, hb) in status
        .agents
        .iter()
        .filter(|(_, hb)| !hb.stale_temp_files.is_empty())
    {
        let _ = writeln!(
            out,
            "{name}: {} temporary file(s) untouched in its inbox, never taken: {}",
            hb.stale_temp_files.len(),
            hb.stale_temp_files.join(", ")
        );
    }
    let kill = match (&status.kill.fleet, status.kill.agents.is_empty()) {
        (Some(k), _) => format!(
            "ON for the whole fleet (by {} at {}: {})",
            k.by, k.at, k.reason
        ),
        (None, false) => format!(
            "ON for {}",
            status
                .kill
                .agents
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (None, true) => "off".to_string(),
    };
    let _ = writeln!(out, "\nkill switch: {kill}");
    let locks: Vec<_> = status.active_locks(now).collect();
    let _ = writeln!(
        out,
        "locks: {}",
        if locks.is_empty() {
            "none".to_string()
        } else {
            locks.len().to_string()
        }
    );
    for (name, l) in locks {
        let _ = writeln!(
            out,
            "  {name}  held by {} until {}  {}",
            l.holder, l.expires_at, l.reason
        );
    }
    let mutes: Vec<_> = status.mutes.iter().filter(|m| m.is_active(now)).collect();
    let _ = writeln!(
        out,
        "mutes: {}",
        if mutes.is_empty() {
            "none".to_string()
        } else {
            mutes.len().to_string()
        }
    );
    for m in mutes {
        let _ = writeln!(out, "  {}", m.describe());
    }
    out
}

/// `switchyard schedules`: each schedule with its next runs (UTC and local).
pub fn schedules(path: Option<PathBuf>, next: usize, json: bool) -> anyhow::Result<()> {
    let config = load_config(path)?;
    if json {
        let now = Utc::now();
        let list: Vec<serde_json::Value> = config
            .schedules
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name, "cron": s.cron_text, "timezone": s.timezone.name(),
                    "agent": s.agent, "missed": format!("{:?}", s.missed).to_lowercase(),
                    "kind": s.item.get("kind"), "next_runs": s.next_runs(now, next),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if config.schedules.is_empty() {
        println!("no [[schedules]] configured");
        return Ok(());
    }
    let now = Utc::now();
    let mut t = table::Table::new(&[
        "schedule",
        "cron",
        "zone",
        "agent",
        "kind",
        "missed",
        "next runs",
    ]);
    for s in &config.schedules {
        let kind = s
            .item
            .get("kind")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?");
        let runs: Vec<String> = s
            .next_runs(now, next)
            .into_iter()
            .map(|r| {
                r.with_timezone(&s.timezone)
                    .format("%a %Y-%m-%d %H:%M %Z")
                    .to_string()
            })
            .collect();
        t.row(vec![
            s.name.clone(),
            s.cron_text.clone(),
            s.timezone.to_string(),
            s.agent.to_string(),
            kind.to_string(),
            format!("{:?}", s.missed).to_lowercase(),
            runs.join(", "),
        ]);
    }
    t.print();
    Ok(())
}
