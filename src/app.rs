//! The composition root: builds one agent from the configuration, runs its
//! loops (inbox intake, outbox delivery, heartbeat and fleet state, mute and
//! digest lifecycle, health endpoints) and shuts them down gracefully: stop
//! intake, drain, flush the outbox, write the final status, exit within a
//! deadline.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::json;
use switchyard_routing::{
    Category, Destination, Event, HeldSummary, RepeatLimiter, RepeatVerdict, RouteInput, Router, holding_mute,
};
use tokio::sync::watch;
use tracing::{Instrument, debug, error, info, warn};

use crate::config::{AgentSettings, Config, ConfigError, Secret};
use crate::coord::{AgentState, Claimed, Heartbeat, Inbox, InboxItem, Outcome, StatusFile, TokenLock, WatchOptions, parse_item};
use crate::delivery::{Outbox, OutboxNotify, Sinks};
use crate::health::{Readiness, ReadyFlag};
use crate::metrics::Metrics;
use crate::store::{NewDelivery, NewDeliveryState, Recorded, Store};

/// How long shutdown may take before the process exits anyway.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);
/// Held deliveries waiting for a digest window carry this prefix instead of a mute id.
const DIGEST_KEY_PREFIX: &str = "digest:";

/// Run one agent until SIGINT/SIGTERM.
pub async fn run_agent(config: Config, name: &str) -> anyhow::Result<()> {
    let agent = config
        .agent(name)
        .cloned()
        .ok_or_else(|| crate::cli::bad_input(format!("no agent named {name:?} in {}", config.source_name)))?;
    let span = tracing::info_span!("agent", agent = %agent.name);
    async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            info!("shutdown requested");
            let _ = stop_tx.send(true);
        });
        let agent_handle = Agent::start(config, agent, stop_rx).await?;
        agent_handle.wait().await
    }
    .instrument(span)
    .await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn read_token(env: &Option<String>) -> Option<Secret> {
    env.as_ref().and_then(|e| std::env::var(e).ok()).filter(|v| !v.trim().is_empty()).map(Secret::new)
}

/// A running agent: its tasks and what they share.
pub struct Agent {
    tasks: tokio::task::JoinSet<anyhow::Result<()>>,
    shared: Arc<Shared>,
    outbox_done: tokio::sync::oneshot::Receiver<()>,
    _token_locks: Vec<TokenLock>,
}

/// What the agent's loops share.
struct Shared {
    config: Config,
    agent: AgentSettings,
    store: Store,
    status: StatusFile,
    router: Router,
    metrics: Metrics,
    ready: ReadyFlag,
    outbox: OutboxNotify,
    started_at: DateTime<Utc>,
    health_addr: std::sync::Mutex<Option<std::net::SocketAddr>>,
}

impl Agent {
    /// Start every loop; returns once the agent is ready.
    pub async fn start(config: Config, agent: AgentSettings, stop: watch::Receiver<bool>) -> anyhow::Result<Agent> {
        let problems = config.check_tokens(&agent);
        if !problems.is_empty() {
            return Err(ConfigError { source_name: config.source_name.clone(), problems }.into());
        }
        let workspace = config.fleet.workspace.clone();
        std::fs::create_dir_all(&workspace)
            .with_context(|| format!("cannot create the workspace {}", workspace.display()))?;
        // One process per token: a second process with the same token stops here.
        let mut token_locks = Vec::new();
        for env in [&agent.discord_token_env, &agent.telegram_token_env].into_iter().flatten() {
            token_locks.push(TokenLock::acquire(&workspace, env)?);
        }
        let discord_token = read_token(&agent.discord_token_env);
        let telegram_token = read_token(&agent.telegram_token_env);

        let store = Store::open(&config.database_url(&agent.name))
            .await
            .with_context(|| format!("opening the database of agent {}", agent.name))?;
        let status = StatusFile::open(&workspace)?;
        let router = Router::new(config.routes.clone(), config.routing.unmatched.clone())
            .map_err(|errs| anyhow::anyhow!("routes: {}", errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))?;
        let sinks = Sinks::from_config(&config, discord_token, telegram_token)?;
        let outbox = Outbox::new(store.clone(), sinks, config.delivery.clone());
        let stats = outbox.stats();
        let metrics = Metrics::new(|registry| stats.register(registry));
        let ready = ReadyFlag::default();
        let notify = outbox.notifier();

        let shared = Arc::new(Shared {
            config,
            agent,
            store,
            status,
            router,
            metrics,
            ready,
            outbox: notify,
            started_at: Utc::now(),
            health_addr: std::sync::Mutex::new(None),
        });

        if let Some(listen) = shared.agent.listen {
            let addr = crate::health::serve(
                listen,
                shared.agent.name.clone(),
                shared.metrics.clone(),
                shared.ready.clone(),
                stop.clone(),
            )
            .await?;
            info!(%addr, "health endpoints on /healthz /readyz /metrics");
            *shared.health_addr.lock().unwrap_or_else(|p| p.into_inner()) = Some(addr);
        }

        let mut tasks = tokio::task::JoinSet::new();
        let (outbox_done_tx, outbox_done) = tokio::sync::oneshot::channel();
        {
            let stop = stop.clone();
            tasks.spawn(
                async move {
                    let result = outbox.run(stop).await;
                    let _ = outbox_done_tx.send(());
                    result
                }
                .in_current_span(),
            );
        }
        let inbox = Inbox::open(&shared.config.fleet.workspace, &shared.agent.name)?;
        for r in inbox.recover()? {
            warn!(item = %r.id, attempt = r.attempt, "recovered an item left running by a previous process");
        }
        tasks.spawn(intake_loop(shared.clone(), inbox, stop.clone()).in_current_span());
        tasks.spawn(housekeeping_loop(shared.clone(), stop.clone()).in_current_span());
        if let Some(shell) = shared.discord_shell() {
            tasks.spawn(crate::discord::run(shell, stop.clone()).in_current_span());
        }
        shared.beat(AgentState::Idle, 0)?;
        shared.ready.set(Readiness::Ready);
        info!(workspace = %shared.config.fleet.workspace.display(), "agent started");
        Ok(Agent { tasks, shared, outbox_done, _token_locks: token_locks })
    }

    /// Wait for every loop to end (they end on the stop signal), within the deadline.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        let deadline = async {
            while let Some(res) = self.tasks.join_next().await {
                match res {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        error!(error = format!("{e:#}"), "agent loop failed");
                        first_error.get_or_insert(e);
                    }
                    Err(e) if e.is_panic() => {
                        error!("agent loop panicked");
                        first_error.get_or_insert(anyhow::anyhow!("an agent loop panicked"));
                    }
                    Err(_) => {}
                }
            }
        };
        // The stop signal makes every loop return; the deadline only bounds a stuck send.
        let finished = tokio::time::timeout(SHUTDOWN_DEADLINE + Duration::from_secs(5), deadline).await.is_ok();
        let _ = self.outbox_done.try_recv();
        if !finished {
            warn!("shutdown deadline passed with work still running; exiting anyway");
        }
        self.shared.ready.set(Readiness::Stopping);
        if let Err(e) = self.shared.beat(AgentState::Stopped, 0) {
            warn!(error = %e, "could not write the final status");
        }
        info!("agent stopped");
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Shared {
    /// The Discord gateway adapter, when this agent has a Discord token.
    fn discord_shell(&self) -> Option<crate::discord::DiscordShell> {
        let settings = self.config.discord.clone()?;
        let token = read_token(&self.agent.discord_token_env)?;
        Some(crate::discord::DiscordShell {
            fleet: crate::fleet::AgentFleet::new(
                self.config.clone(),
                self.agent.name.clone(),
                self.store.clone(),
                self.status.clone(),
                self.router.clone(),
            ),
            settings,
            token,
        })
    }

    fn beat(&self, state: AgentState, queue_depth: usize) -> anyhow::Result<()> {
        let hb = Heartbeat {
            state,
            queue_depth: queue_depth as u64,
            started_at: self.started_at,
            health: self.health_addr.lock().unwrap_or_else(|p| p.into_inner()).map(|a| a.to_string()),
            ..Heartbeat::current(Utc::now())
        };
        self.status.beat(&self.agent.name, hb)?;
        Ok(())
    }
}

/// Claim inbox items one at a time and handle them; stop taking new items on
/// the stop signal or while the kill switch is on.
async fn intake_loop(shared: Arc<Shared>, inbox: Inbox, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut repeat = RepeatLimiter::new(shared.config.routing.repeat_interval);
    let mut seq: u32 = 0;
    let mut watcher = inbox.watch(WatchOptions::default())?;
    info!(backend = ?watcher.backend(), "watching the inbox");
    loop {
        let path = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            p = watcher.next() => p,
        };
        if shared.status.read()?.is_killed(&shared.agent.name).is_some() {
            // Leave the item where it is; it is picked up after `resume`.
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
            }
        }
        let Some(claimed) = inbox.claim(&path)? else { continue };
        seq = seq.wrapping_add(1);
        let started = Instant::now();
        let outcome = handle_item(&shared, &claimed, &mut repeat, seq).await;
        shared.metrics.intake_latency.observe(started.elapsed().as_secs_f64());
        let label = match &outcome {
            Outcome::Done(_) => "done",
            Outcome::Failed(_) => "failed",
        };
        shared.metrics.count_inbox(label);
        if let Err(e) = claimed.finish(outcome) {
            error!(item = %path.display(), error = format!("{e:#}"), "could not move the item out of running/");
        }
        shared.metrics.inbox_depth.set(inbox.depth().unwrap_or(0) as i64);
    }
    debug!("intake stopped");
    Ok(())
}

async fn handle_item(shared: &Shared, claimed: &Claimed, repeat: &mut RepeatLimiter, seq: u32) -> Outcome {
    let item = match parse_item(&claimed.bytes) {
        Ok(item) => item,
        Err(e) => {
            warn!(item = %claimed.id, error = %e, "rejected an inbox item");
            return Outcome::Failed(json!({ "error": e.to_string(), "attempt": claimed.attempt }));
        }
    };
    match item {
        InboxItem::Event(draft) => match draft.validate(Utc::now(), seq) {
            Ok(event) => match handle_event(shared, event, repeat).await {
                Ok(result) => Outcome::Done(result),
                Err(e) => {
                    let id = error_id();
                    error!(error_id = %id, item = %claimed.id, error = format!("{e:#}"), "could not store an event");
                    Outcome::Failed(json!({ "error": format!("internal error {id}: {e:#}"), "retry": "drop the file into the inbox again" }))
                }
            },
            Err(e) => {
                warn!(item = %claimed.id, error = %e, "rejected an event");
                Outcome::Failed(json!({ "error": e.to_string(), "problems": e.problems, "fix": "correct the fields named and drop the file again" }))
            }
        },
        other => Outcome::Failed(json!({
            "error": format!("items of kind `{}` are not handled by this agent yet", other.kind().as_str()),
            "fix": "send events for now; tasks and approvals arrive with the task pipeline"
        })),
    }
}

/// Runs a blocking status-file update (it waits for the file lock, which a
/// busy peer may hold for a while) without stalling the other tasks of this
/// worker thread, such as the Discord gateway's. On a current-thread runtime
/// (some tests) there is no other worker to hand them to: it just runs.
fn off_worker<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A short id shown to users and written in the log beside the full error.
pub fn error_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// Route, apply repeats, mutes and digests, and store the event with its
/// deliveries in one transaction. Returns the item's result record.
async fn handle_event(shared: &Shared, event: Event, repeat: &mut RepeatLimiter) -> anyhow::Result<serde_json::Value> {
    let now = Utc::now();
    let input = RouteInput::from(&event);
    let decision = shared.router.route(&input);
    shared.metrics.count_event(event.category.as_str());
    if decision.unmatched {
        shared.metrics.unmatched.inc();
    }
    if let RepeatVerdict::Repeat { count, first_seen } = repeat.check(&event, now) {
        shared.metrics.repeats_suppressed.inc();
        return Ok(json!({
            "event_id": event.event_id, "status": "repeat",
            "note": format!("same event_type, source and title seen {count} times since {first_seen}: counted, not re-sent"),
        }));
    }
    let mutes = shared.status.read()?.mutes;
    let digest_window = shared.config.routing.digest.get(&event.category).copied();
    let deliveries: Vec<NewDelivery> = decision
        .targets
        .iter()
        .map(|t| {
            let state = match holding_mute(&mutes, &input, &t.destination, now) {
                Some(m) => NewDeliveryState::Held { mute_id: m.id.to_string() },
                None if digest_window.is_some() => {
                    NewDeliveryState::Held { mute_id: format!("{DIGEST_KEY_PREFIX}{}", event.category) }
                }
                None => NewDeliveryState::Pending,
            };
            NewDelivery { destination: t.destination.clone(), rule: t.rule.name.clone(), state }
        })
        .collect();
    let recorded = shared.store.record_event(&event, &deliveries, now).await?;
    let routed: Vec<serde_json::Value> = deliveries
        .iter()
        .map(|d| {
            json!({
                "destination": d.destination.to_string(),
                "rule": d.rule,
                "state": match &d.state { NewDeliveryState::Pending => "pending".to_string(), NewDeliveryState::Held { mute_id } => format!("held ({mute_id})") },
            })
        })
        .collect();
    match recorded {
        Recorded::Duplicate => Ok(json!({
            "event_id": event.event_id, "status": "duplicate",
            "note": "this event_id was already received: delivered once, not again",
        })),
        Recorded::Inserted { delivery_ids } => {
            shared.outbox.wake();
            info!(event_id = %event.event_id, category = %event.category, targets = deliveries.len(), "event stored");
            Ok(json!({
                "event_id": event.event_id, "status": "routed", "unmatched": decision.unmatched,
                "routed": routed, "delivery_ids": delivery_ids,
            }))
        }
    }
}

/// Once a second: heartbeat, leases, the kill switch, mute notices, held
/// digests and digest windows.
async fn housekeeping_loop(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut last_beat = Instant::now() - shared.config.fleet.heartbeat_interval;
    let mut digest_due: BTreeMap<String, Instant> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            _ = tick.tick() => {}
        }
        let status = match shared.status.read() {
            Ok(s) => s,
            Err(e) => {
                warn!(error = format!("{e:#}"), "cannot read the status file");
                continue;
            }
        };
        let killed = status.is_killed(&shared.agent.name).is_some();
        shared.ready.set(if killed { Readiness::Paused } else { Readiness::Ready });
        if last_beat.elapsed() >= shared.config.fleet.heartbeat_interval {
            last_beat = Instant::now();
            let state = if killed { AgentState::Killed } else { AgentState::Idle };
            if let Err(e) = off_worker(|| shared.beat(state, 0)) {
                warn!(error = format!("{e:#}"), "heartbeat not written");
            }
        }
        if let Err(e) = mute_lifecycle(&shared, &status.mutes).await {
            warn!(error = format!("{e:#}"), "mute lifecycle step failed");
        }
        if let Err(e) = digest_windows(&shared, &mut digest_due).await {
            warn!(error = format!("{e:#}"), "digest window step failed");
        }
    }
    Ok(())
}

/// Announce mutes (the fleet's first agent does that, once per mute) and
/// post the "while muted" digest of this agent's held messages when a mute ends.
async fn mute_lifecycle(shared: &Shared, mutes: &[switchyard_routing::Mute]) -> anyhow::Result<()> {
    let now = Utc::now();
    let announcer = shared.config.agents.first().is_some_and(|a| a.name == shared.agent.name);
    if announcer {
        let lead = shared.config.routing.mute_notice_lead;
        let due = off_worker(|| crate::coord::mutes::due_notices(&shared.status, now, lead))?;
        for (mute, notice) in due {
            let dest = crate::coord::mutes::notice_destination(&shared.config, &mute.target);
            let (title, body) = notice.text(&mute, now);
            shared.store.enqueue_notice(&dest, &title, &body, switchyard_routing::Severity::Info, now).await?;
            shared.outbox.wake();
        }
    }
    let active: std::collections::BTreeSet<String> =
        mutes.iter().filter(|m| m.expires_at > now).map(|m| m.id.to_string()).collect();
    for mute_id in shared.store.held_mute_ids().await? {
        if mute_id.starts_with(DIGEST_KEY_PREFIX) || active.contains(&mute_id) {
            continue;
        }
        post_held_digest(shared, &mute_id, "While muted", now).await?;
    }
    Ok(())
}

async fn post_held_digest(shared: &Shared, key: &str, header: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
    let released = shared.store.release_held(key, now).await?;
    let mut by_dest: BTreeMap<Destination, Vec<Event>> = BTreeMap::new();
    for (dest, ev) in released {
        by_dest.entry(dest).or_default().push(ev);
    }
    for (dest, events) in by_dest {
        let summary = HeldSummary::from_events(&events);
        let title = format!("{header}: {} message(s) for {dest}", events.len());
        // The title already says what this is; the body starts with the counts.
        let body = summary.render_text("").trim_start().to_string();
        let severity = events.iter().map(|e| e.severity).max().unwrap_or_default();
        shared.store.enqueue_notice(&dest, &title, &body, severity, now).await?;
        info!(key, destination = %dest, count = events.len(), "posted a digest of held messages");
    }
    shared.outbox.wake();
    Ok(())
}

/// Ambient categories configured under `[routing.digest]` are held for their
/// window, then posted as one message.
async fn digest_windows(shared: &Shared, due: &mut BTreeMap<String, Instant>) -> anyhow::Result<()> {
    let now = Utc::now();
    for key in shared.store.held_mute_ids().await? {
        let Some(cat) = key.strip_prefix(DIGEST_KEY_PREFIX) else { continue };
        let category: Category = cat.parse().unwrap_or_else(|never| match never {});
        let window = shared.config.routing.digest.get(&category).copied().unwrap_or(Duration::ZERO);
        let at = *due.entry(key.clone()).or_insert_with(|| Instant::now() + window);
        if Instant::now() >= at {
            due.remove(&key);
            post_held_digest(shared, &key, &format!("Digest of {category}"), now).await?;
        }
    }
    Ok(())
}

/// Where an agent's files live, for tests and the demo.
pub fn agent_workspace(config: &Config, agent: &str) -> PathBuf {
    config.agent_dir(agent)
}
