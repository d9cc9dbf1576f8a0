//! The shell commands behind `main.rs`: each loads the configuration, does
//! one thing, and prints for a person (or `--json` for a script).
//!
//! Errors a user can fix are [`BadInput`](crate::error::BadInput) (exit 2);
//! anything else is a failure (exit 1). Both print one clear sentence, with context.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use clap::{Args, Subcommand};
use switchyard_routing::{Category, EventDraft, MuteTarget, RouteInput, Severity};

use crate::config::{Config, ConfigError, ConfigSource, parse_duration};
use crate::coord::{CoordError, Status, StatusFile, drop_item};
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

pub fn check_config(path: Option<PathBuf>, agent: Option<&str>) -> anyhow::Result<()> {
    let config = load_config(path)?;
    if let Some(name) = agent {
        let agent = config.require_agent(name)?;
        let problems = config.check_tokens(agent);
        if !problems.is_empty() {
            return Err(ConfigError {
                source_name: config.source_name.clone(),
                problems,
            }
            .into());
        }
    }
    println!(
        "{}: ok ({} agents, {} routes, {} Discord channels, {} Telegram chats)",
        config.source_name,
        config.agents.len(),
        config.routes.len(),
        config.discord.as_ref().map_or(0, |d| d.channels.len()),
        config.telegram.as_ref().map_or(0, |t| t.chats.len()),
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct SendArgs {
    #[arg(long)]
    pub category: String,
    #[arg(long)]
    pub title: String,
    #[arg(long, default_value = "")]
    pub body: String,
    #[arg(long, default_value = "info")]
    pub severity: String,
    #[arg(long)]
    pub event_id: Option<String>,
    #[arg(long, default_value = "cli")]
    pub source: String,
    #[arg(long)]
    pub event_type: Option<String>,
    /// The agent whose inbox receives it [default: the first agent]
    #[arg(long)]
    pub to: Option<String>,
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
    // The generated id's last part is the millisecond, so two sends in one second differ.
    let now = Utc::now();
    let event = draft
        .validate(now, now.timestamp_subsec_millis())
        .map_err(|e| bad_input(e.to_string()))?;
    let value = serde_json::to_value(&event).context("encoding the event")?;
    let mut value = value;
    value["kind"] = "event".into();
    let path = drop_item(
        &config.fleet.workspace,
        agent,
        event.event_id.as_str(),
        &value,
    )
    .with_context(|| format!("dropping the event into {agent}'s inbox"))?;
    println!("{} → {}", event.event_id, path.display());
    Ok(())
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

#[derive(Args, Debug)]
pub struct RouteArgs {
    #[arg(long)]
    pub category: String,
    #[arg(long, default_value = "info")]
    pub severity: String,
    #[arg(long, default_value = "cli")]
    pub source: String,
    #[arg(long)]
    pub event_type: Option<String>,
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
    let status = StatusFile::open(&config.fleet.workspace)?.read()?;
    let now = Utc::now();
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

#[derive(Args, Debug)]
pub struct MuteArgs {
    /// A category (`system`), a destination (`discord:system`) or a source (`source:worker:opsclaw`)
    pub target: String,
    /// How long, like 30m or 2h
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: String,
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Allow muting what reaches the human (action_required, alerts, Telegram)
    #[arg(long)]
    pub force: bool,
    /// Who is muting [default: $USER]
    #[arg(long)]
    pub by: Option<String>,
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
    let status = StatusFile::open(&config.fleet.workspace)?.read()?;
    let now = Utc::now();
    let active: Vec<_> = status.mutes.iter().filter(|m| m.expires_at > now).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&active)?);
        return Ok(());
    }
    if active.is_empty() {
        println!("no active mutes");
    }
    for m in active {
        let left = (m.expires_at - now).to_std().unwrap_or_default();
        println!(
            "{}  {}  {} left  by {}{}  {}",
            m.id,
            m.target,
            humantime::format_duration(Duration::from_secs(left.as_secs())),
            m.created_by,
            if m.force { " (force)" } else { "" },
            m.reason
        );
    }
    Ok(())
}

pub fn status(path: Option<PathBuf>, json: bool) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let status = StatusFile::open(&config.fleet.workspace)?.read()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!(
            "{}",
            render_status_table(&status, Utc::now(), config.fleet.stale_after)
        );
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
    let file = StatusFile::open(&config.fleet.workspace)?;
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

#[derive(Subcommand, Debug)]
pub enum LockCommand {
    /// Take a named lock (refused while someone else holds it)
    Acquire {
        name: String,
        #[arg(long, default_value = "30m")]
        ttl: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long)]
        holder: Option<String>,
    },
    /// Release a lock you hold (`--force` for anyone's)
    Release {
        name: String,
        #[arg(long)]
        holder: Option<String>,
        #[arg(long)]
        force: bool,
    },
    /// List held locks
    List,
}

pub fn lock(path: Option<PathBuf>, cmd: LockCommand) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let file = StatusFile::open(&config.fleet.workspace)?;
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
        LockCommand::List => {
            let status = file.read()?;
            if status.locks.is_empty() {
                println!("no locks held");
            }
            for (name, l) in &status.locks {
                println!(
                    "{name}  held by {}  until {}  {}",
                    l.holder, l.expires_at, l.reason
                );
            }
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

pub async fn sandbox(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let opts = switchyard_sandbox::SandboxOptions {
        listen,
        ..crate::demo::demo_sandbox_options()?
    };
    eprintln!(
        "sandbox: Discord API at http://{listen}/api/v10, Telegram Bot API at http://{listen}/telegram"
    );
    switchyard_sandbox::serve(opts, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep the sandbox and agent running after the tour (Ctrl-C stops)
    #[arg(long)]
    pub keep: bool,
    /// Where to put the demo workspace [default: a fresh temporary directory]
    #[arg(long)]
    pub dir: Option<PathBuf>,
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

#[derive(Subcommand, Debug)]
pub enum TaskCommand {
    /// Validate a task spec (seed 004's format) and drop it into an agent's inbox
    Submit {
        file: PathBuf,
        /// The agent that runs it [default: the first agent]
        #[arg(long)]
        to: Option<String>,
    },
    /// Tasks of an agent, newest first
    List {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One task: its state, policy decision, execution and acceptance records
    Show {
        id: String,
        #[arg(long)]
        agent: Option<String>,
    },
    /// Cancel a task that has not started (queued or awaiting approval)
    Cancel {
        id: String,
        #[arg(long)]
        agent: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// The risk score of a task spec, line by line
    Check { file: PathBuf },
}

fn read_spec(
    config: &Config,
    file: &Path,
) -> anyhow::Result<(crate::tasks::TaskSpec, serde_json::Value)> {
    let bytes = std::fs::read(file)
        .map_err(|e| bad_input(format!("cannot read {}: {e}", file.display())))?;
    let spec =
        crate::tasks::TaskSpec::parse_checked(&bytes, config.skills.keys().map(String::as_str))
            .map_err(|e| {
                bad_input(format!(
                    "{} is not a valid task spec:\n  - {}",
                    file.display(),
                    e.problems.join("\n  - ")
                ))
            })?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad_input(e.to_string()))?;
    Ok((spec, value))
}

pub fn policy(path: Option<PathBuf>, cmd: PolicyCommand) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let PolicyCommand::Check { file } = cmd;
    let (spec, _) = read_spec(&config, &file)?;
    print!("{}", crate::tasks::score(&spec, &config.policy).explain());
    Ok(())
}

pub async fn task(path: Option<PathBuf>, cmd: TaskCommand) -> anyhow::Result<()> {
    use crate::store::tasks as task_store;
    let config = load_config(path)?;
    match cmd {
        TaskCommand::Submit { file, to } => {
            let agent = target_agent(&config, to.as_deref())?;
            let (spec, mut value) = read_spec(&config, &file)?;
            if value.get("kind").is_none() {
                value["kind"] = "task".into();
            }
            let report = crate::tasks::score(&spec, &config.policy);
            let dropped = drop_item(&config.fleet.workspace, agent, spec.id.as_str(), &value)
                .with_context(|| format!("dropping the task into {agent}'s inbox"))?;
            println!(
                "{} → {} (risk {}{})",
                spec.id,
                dropped.display(),
                report.score,
                if report.needs_approval {
                    ", needs a human approval"
                } else {
                    ""
                }
            );
        }
        TaskCommand::List { agent, json } => {
            let agent = target_agent(&config, agent.as_deref())?;
            let store = crate::store::Store::open(&config.database_url(agent)).await?;
            let rows = task_store::list(store.pool(), None, 200).await?;
            if json {
                let out: Vec<_> = rows
                    .iter()
                    .map(|r| serde_json::json!({"id": r.id, "title": r.title, "state": r.state.as_str(),
                        "risk": r.risk_score, "attempts": r.attempts, "reason": r.reason, "updated_at": r.updated_at}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else if rows.is_empty() {
                println!("no tasks on {agent}");
            } else {
                for r in rows {
                    println!(
                        "{:<28} {:<18} risk {:>3}  attempts {}  {}",
                        r.id,
                        r.state.as_str(),
                        r.risk_score,
                        r.attempts,
                        r.title
                    );
                }
            }
        }
        TaskCommand::Show { id, agent } => {
            let agent = target_agent(&config, agent.as_deref())?;
            let store = crate::store::Store::open(&config.database_url(agent)).await?;
            let row = task_store::get(store.pool(), &id).await?.ok_or_else(|| {
                bad_input(format!(
                    "no task {id:?} on {agent}: `switchyard task list` shows them"
                ))
            })?;
            println!(
                "{} — {}\nstate: {}  risk: {}  attempts: {}",
                row.id,
                row.title,
                row.state.as_str(),
                row.risk_score,
                row.attempts
            );
            if let Some(reason) = &row.reason {
                println!("reason: {reason}");
            }
            for kind in [
                task_store::RecordKind::Intent,
                task_store::RecordKind::Receipt,
                task_store::RecordKind::Verification,
            ] {
                if let Some(body) = task_store::record(store.pool(), &id, kind).await? {
                    println!(
                        "\n{}:\n{}",
                        kind.as_str(),
                        serde_json::to_string_pretty(&body)?
                    );
                }
            }
        }
        TaskCommand::Cancel { id, agent } => {
            let agent = target_agent(&config, agent.as_deref())?;
            let store = crate::store::Store::open(&config.database_url(agent)).await?;
            let row = task_store::get(store.pool(), &id)
                .await?
                .ok_or_else(|| bad_input(format!("no task {id:?} on {agent}")))?;
            if !matches!(
                row.state,
                crate::tasks::TaskState::Queued | crate::tasks::TaskState::AwaitingApproval
            ) {
                return Err(bad_input(format!(
                    "task {id} is {}: only a queued or waiting task can be cancelled; stop running work with `switchyard kill --agent {agent}`",
                    row.state.as_str()
                )));
            }
            let by = shell_actor();
            task_store::transition(
                store.pool(),
                &id,
                crate::tasks::TaskState::Cancelled,
                Some(&format!("cancelled by {by}")),
                Utc::now(),
            )
            .await?;
            println!("{id} cancelled");
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum RegistryCommand {
    /// Track the tasks of an active-tasks.json file; each is monitored by the agent its `agent` names
    Import { file: PathBuf },
    /// Write every agent's tracked tasks to one active-tasks.json file
    Export { file: PathBuf },
}

pub async fn registry(path: Option<PathBuf>, cmd: RegistryCommand) -> anyhow::Result<()> {
    use crate::github::{registry, store as gh_store};
    let config = load_config(path)?;
    match cmd {
        RegistryCommand::Import { file } => {
            let tasks = registry::import(&file).map_err(|e| bad_input(e.to_string()))?;
            let unknown: Vec<String> = tasks
                .iter()
                .filter(|t| config.agent(&t.record.agent).is_none())
                .map(|t| format!("{} names agent {:?}", t.id(), t.record.agent))
                .collect();
            if !unknown.is_empty() {
                return Err(bad_input(format!(
                    "{}: no such agent in the configuration (agents: {})",
                    unknown.join("; "),
                    agent_names(&config)
                )));
            }
            let now = Utc::now().timestamp_millis();
            for agent in &config.agents {
                let mine: Vec<_> = tasks
                    .iter()
                    .filter(|t| t.record.agent == agent.name)
                    .cloned()
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                let store = crate::store::Store::open(&config.database_url(&agent.name)).await?;
                gh_store::upsert_tasks(store.pool(), &mine, now).await?;
                println!("{}: tracking {} task(s)", agent.name, mine.len());
            }
        }
        RegistryCommand::Export { file } => {
            let mut all = Vec::new();
            for agent in &config.agents {
                let db = config.database_url(&agent.name);
                let db_path = db.trim_start_matches("sqlite://");
                if !Path::new(db_path).exists() {
                    continue;
                }
                let store = crate::store::Store::open(&db).await?;
                all.extend(gh_store::list_tasks(store.pool(), Some(&agent.name)).await?);
            }
            registry::export(&file, &all)?;
            println!("wrote {} task(s) to {}", all.len(), file.display());
        }
    }
    Ok(())
}

/// `switchyard approval request`.
#[derive(Args, Debug)]
pub struct ApprovalRequestArgs {
    /// One line: what will happen
    #[arg(long)]
    pub summary: String,
    /// What will run (the command); long previews are cut in the prompt
    #[arg(long, default_value = "")]
    pub detail: String,
    /// Risk score 0-100
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub risk: u8,
    /// A reason for the score (repeat for several)
    #[arg(long = "reason")]
    pub reasons: Vec<String>,
    /// How long a human has to answer [default: `[approvals] expires`]
    #[arg(long)]
    pub expires: Option<String>,
    /// Who asks (shown in the prompt)
    #[arg(long, default_value = "shell")]
    pub requested_by: String,
}

#[derive(Subcommand, Debug)]
pub enum ApprovalCommand {
    /// Ask a human in Telegram; prints the approval id
    Request(ApprovalRequestArgs),
}

/// The agent whose database holds the fleet's approvals: the Telegram owner,
/// or the one named.
fn approvals_store_agent(config: &Config, agent: Option<&str>) -> anyhow::Result<String> {
    match agent {
        Some(a) => Ok(config.require_agent(a)?.name.to_string()),
        None => config.telegram_owner().map(|o| o.name.to_string()).ok_or_else(|| {
            bad_input("no agent has telegram_token_env: approvals need the agent that owns the Telegram bot")
        }),
    }
}

pub fn approval(path: Option<PathBuf>, cmd: ApprovalCommand) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let ApprovalCommand::Request(args) = cmd;
    let owner = approvals_store_agent(&config, None)?;
    if args.summary.trim().is_empty() {
        return Err(bad_input(
            "--summary is empty: say in one line what will run",
        ));
    }
    let expires = match &args.expires {
        Some(t) => parse_duration(t).map_err(bad_input)?,
        None => config.approvals.expires,
    };
    let id = crate::approvals::new_approval_id();
    let item = serde_json::json!({
        "kind": "approval_request", "id": id, "summary": args.summary, "detail": args.detail,
        "risk": args.risk, "reasons": args.reasons, "requested_by": args.requested_by,
        "expires_in": humantime::format_duration(expires).to_string(),
    });
    drop_item(&config.fleet.workspace, &owner, &id, &item)
        .with_context(|| format!("cannot drop the request into {owner}'s inbox"))?;
    println!("{id}");
    Ok(())
}

pub async fn approvals(
    path: Option<PathBuf>,
    json: bool,
    agent: Option<String>,
) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let agent = approvals_store_agent(&config, agent.as_deref())?;
    let store = crate::store::Store::open(&config.database_url(&agent)).await?;
    let list = store.approvals(None).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        println!("no approvals on {agent}");
    }
    for a in list {
        let decided = match (&a.decided_by, a.decided_at) {
            (Some(by), Some(at)) => format!(" by {by} at {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
            _ => format!(
                " · expires {}",
                a.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        };
        println!(
            "{}  {:<9} risk {:>3}  {}{decided}",
            a.id,
            a.status.as_str(),
            a.risk,
            a.summary
        );
    }
    Ok(())
}

/// `switchyard approve ID` / `deny ID`: the operator's override from the
/// shell, audited as such. The running agent shows the decision in Telegram
/// and tells the requester.
pub async fn decide(path: Option<PathBuf>, id: &str, approve: bool) -> anyhow::Result<()> {
    use crate::approvals::{DecideOutcome, Vote};
    let config = load_config(path)?;
    let agent = approvals_store_agent(&config, None)?;
    let store = crate::store::Store::open(&config.database_url(&agent)).await?;
    let user = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    let voter = crate::store::approvals::Voter {
        id: format!("shell:{user}"),
        name: format!("{user} (shell)"),
    };
    let vote = if approve { Vote::Approve } else { Vote::Deny };
    match store
        .decide_approval(id, &voter, vote, true, Utc::now())
        .await?
    {
        DecideOutcome::Decided { status, .. } => {
            println!("{id} {status}");
            Ok(())
        }
        DecideOutcome::AlreadyDecided { status, by, at } => Err(bad_input(format!(
            "{id} was already {status} by {by} at {}",
            at.format("%Y-%m-%d %H:%M:%S UTC")
        ))),
        DecideOutcome::Expired { at } => Err(bad_input(format!(
            "{id} expired at {} and counts as denied; ask again with `switchyard approval request`",
            at.format("%Y-%m-%d %H:%M:%S UTC")
        ))),
        DecideOutcome::Unknown => Err(bad_input(format!(
            "no approval has the id {id:?}; `switchyard approvals` lists them"
        ))),
        DecideOutcome::Awaiting { .. } | DecideOutcome::AlreadyVoted => {
            unreachable!("a forced decision is never left waiting")
        }
    }
}

/// `switchyard schedules`: each schedule with its next runs (UTC and local).
pub fn schedules(path: Option<PathBuf>, next: usize) -> anyhow::Result<()> {
    let config = load_config(path)?;
    if config.schedules.is_empty() {
        println!("no [[schedules]] configured");
    }
    let now = Utc::now();
    for s in &config.schedules {
        let kind = s
            .item
            .get("kind")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?");
        println!(
            "{}  \"{}\" {}  → {} ({kind})  missed: {:?}",
            s.name, s.cron_text, s.timezone, s.agent, s.missed
        );
        for t in s.next_runs(now, next) {
            println!(
                "    {}  ({})",
                t.format("%Y-%m-%d %H:%M UTC"),
                t.with_timezone(&s.timezone).format("%a %Y-%m-%d %H:%M %Z")
            );
        }
    }
    Ok(())
}
