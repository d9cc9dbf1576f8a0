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
    Category, Destination, Event, HeldSummary, RepeatLimiter, RepeatVerdict, RouteInput, Router,
    holding_mute,
};
use tokio::sync::watch;
use tracing::{Instrument, debug, error, info, warn};

use crate::config::{AgentSettings, Config, ConfigError, Secret};
use crate::coord::{
    AgentState, Claimed, Heartbeat, Inbox, InboxItem, Outcome, StatusFile, TokenLock, WatchOptions,
    parse_item,
};
use crate::delivery::{Outbox, OutboxNotify, Sinks};
use crate::error::error_id;
use crate::health::{Readiness, ReadyFlag};
use crate::metrics::Metrics;
use crate::store::{NewDelivery, NewDeliveryState, Recorded, Store};
use crate::tasks::runner::{Accepted, TaskIntakeError, TaskRunner};

/// How long shutdown may take before the process exits anyway.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);
/// Held deliveries waiting for a digest window carry this prefix instead of a mute id.
const DIGEST_KEY_PREFIX: &str = "digest:";

/// Run one agent until SIGINT/SIGTERM.
pub async fn run_agent(config: Config, name: &str) -> anyhow::Result<()> {
    let agent = config.require_agent(name)?.clone();
    let span = tracing::info_span!("agent", agent = %agent.name);
    async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        let on_signal = stop_tx.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            info!("shutdown requested");
            let _ = on_signal.send(true);
        });
        let agent_handle = Agent::start(config, agent, stop_tx, stop_rx).await?;
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
    env.as_ref()
        .and_then(|e| std::env::var(e).ok())
        .filter(|v| !v.trim().is_empty())
        .map(Secret::new)
}

/// A running agent: its tasks and what they share.
pub struct Agent {
    tasks: tokio::task::JoinSet<anyhow::Result<()>>,
    /// A loop that fails stops the others: half an agent is worse than none.
    stop: watch::Sender<bool>,
    shared: Arc<Shared>,
    outbox_done: tokio::sync::oneshot::Receiver<()>,
    _token_locks: Vec<TokenLock>,
}

/// What the agent's loops share.
struct Shared {
    config: Config,
    tasks: TaskRunner,
    agent: AgentSettings,
    store: Store,
    status: StatusFile,
    router: Router,
    metrics: Metrics,
    ready: ReadyFlag,
    outbox: OutboxNotify,
    started_at: DateTime<Utc>,
    health_addr: std::sync::Mutex<Option<std::net::SocketAddr>>,
    approvals: crate::approvals::ApprovalsContext,
}

impl Agent {
    /// Start every loop; returns once the agent is ready.
    pub async fn start(
        config: Config,
        agent: AgentSettings,
        stop_tx: watch::Sender<bool>,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Agent> {
        let problems = config.check_tokens(&agent);
        if !problems.is_empty() {
            return Err(ConfigError {
                source_name: config.source_name.clone(),
                problems,
            }
            .into());
        }
        let workspace = config.fleet.workspace.clone();
        std::fs::create_dir_all(&workspace)
            .with_context(|| format!("cannot create the workspace {}", workspace.display()))?;
        // One process per token: a second process with the same token stops here.
        let mut token_locks = Vec::new();
        for env in [&agent.discord_token_env, &agent.telegram_token_env]
            .into_iter()
            .flatten()
        {
            token_locks.push(TokenLock::acquire(&workspace, env)?);
        }
        // One process per agent name too (agents without tokens included):
        // two would share an inbox, its leases and a database.
        let agent_key = format!(
            "AGENT_{}",
            agent.name.to_ascii_uppercase().replace('-', "_")
        );
        token_locks.push(TokenLock::acquire(&workspace, &agent_key)?);
        let discord_token = read_token(&agent.discord_token_env);
        let telegram_token = read_token(&agent.telegram_token_env);
        let telegram_approvals = match &telegram_token {
            Some(token)
                if config
                    .telegram_owner()
                    .is_some_and(|o| o.name == agent.name) =>
            {
                Some(Arc::new(crate::telegram::TelegramApprovals::new(
                    &config, token,
                )?))
            }
            _ => None,
        };

        let store = Store::open(&config.database_url(&agent.name))
            .await
            .with_context(|| format!("opening the database of agent {}", agent.name))?;
        let status = StatusFile::open(&workspace)?;
        let router = config.router()?;
        let (sinks, discord_sink) =
            Sinks::from_config_with_discord(&config, discord_token, telegram_token)?;
        let outbox = Outbox::new(store.clone(), sinks, config.delivery.clone());
        let stats = outbox.stats();
        let metrics = Metrics::new(|registry| stats.register(registry));
        let ready = ReadyFlag::default();
        let notify = outbox.notifier();
        // One `Fleet` for both chat shells: built once, cloned (it is an Arc).
        let fleet = crate::fleet::AgentFleet::new(
            config.clone(),
            agent.name.clone(),
            store.clone(),
            status.clone(),
            router.clone(),
        );
        let approvals = crate::approvals::ApprovalsContext {
            config: config.clone(),
            agent: agent.name.to_string(),
            store: store.clone(),
            outbox: notify.clone(),
            telegram: telegram_approvals,
            fleet,
        };

        let threads = crate::discord::threads::TaskThreads::new(
            &router,
            discord_sink,
            store.clone(),
            &agent.name,
        );
        let tasks = TaskRunner::start(&config, &agent.name, store.clone())
            .await
            .with_threads(threads);
        let shared = Arc::new(Shared {
            tasks,
            approvals,
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

        let webhook = crate::telegram::webhook::router(&shared.approvals)?;
        if webhook.is_some() && shared.agent.listen.is_none() {
            anyhow::bail!(
                "[telegram] webhook_url is set but agent {} has no `listen` address to receive it on",
                shared.agent.name
            );
        }
        if let Some(listen) = shared.agent.listen {
            let addr = crate::health::serve_with(
                listen,
                shared.agent.name.to_string(),
                shared.metrics.clone(),
                shared.ready.clone(),
                stop.clone(),
                webhook.clone().unwrap_or_default(),
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
        // Leases on claimed items are renewed while this process lives, so a
        // restarted agent can tell a dead holder's items from its own.
        let renewal = inbox.spawn_lease_renewal(crate::coord::DEFAULT_LEASE_TTL / 3);
        {
            let mut stop = stop.clone();
            tokio::spawn(async move {
                let _ = stop.wait_for(|s| *s).await;
                renewal.abort();
            });
        }
        tasks.spawn(intake_loop(shared.clone(), inbox, stop.clone()).in_current_span());
        tasks.spawn(housekeeping_loop(shared.clone(), stop.clone()).in_current_span());
        tasks
            .spawn(crate::approvals::run(shared.approvals.clone(), stop.clone()).in_current_span());
        if let Some(tg) = shared.approvals.telegram.clone() {
            if webhook.is_some() {
                tasks.spawn(
                    crate::telegram::webhook::register(tg, shared.approvals.clone(), stop.clone())
                        .in_current_span(),
                );
            } else {
                tasks.spawn(
                    crate::telegram::poll::run(tg, shared.approvals.clone(), stop.clone())
                        .in_current_span(),
                );
            }
        }
        if let Some(shell) = shared.discord_shell() {
            tasks.spawn(crate::discord::run(shell, stop.clone()).in_current_span());
        }
        if let Some(github) = shared.config.github.clone() {
            let output = crate::github::output::AgentOutput::new(
                shared.agent.name.clone(),
                shared.config.fleet.workspace.clone(),
                shared.pinned_messages()?,
                AgentEvents(shared.clone()),
            );
            let token = read_token(&Some(github.token_env.clone()));
            tasks.spawn(
                crate::github::runner::run(
                    shared.store.clone(),
                    shared.agent.name.to_string(),
                    github,
                    token,
                    output,
                    stop.clone(),
                )
                .in_current_span(),
            );
        }
        shared.beat(AgentState::Idle, 0)?;
        let killed = shared
            .status
            .read()?
            .is_killed(&shared.agent.name)
            .is_some();
        shared.ready.set(if killed {
            Readiness::Paused
        } else {
            Readiness::Ready
        });
        info!(workspace = %shared.config.fleet.workspace.display(), "agent started");
        Ok(Agent {
            tasks,
            stop: stop_tx,
            shared,
            outbox_done,
            _token_locks: token_locks,
        })
    }

    /// Wait for every loop to end (they end on the stop signal), within the deadline.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        let mut stop = self.stop.subscribe();
        // No deadline while running; once stop is signalled, the loops have
        // SHUTDOWN_DEADLINE to drain (the outbox finishes in-flight sends).
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut finished = true;
        loop {
            let until_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                res = self.tasks.join_next() => match res {
                    None => break,
                    Some(Ok(Ok(()))) => {}
                    Some(Ok(Err(e))) => {
                        error!(error = format!("{e:#}"), "agent loop failed; stopping the agent");
                        let _ = self.stop.send(true);
                        first_error.get_or_insert(e);
                    }
                    Some(Err(e)) if e.is_panic() => {
                        error!("agent loop panicked; stopping the agent");
                        let _ = self.stop.send(true);
                        first_error.get_or_insert(anyhow::anyhow!("an agent loop panicked"));
                    }
                    Some(Err(_)) => {}
                },
                _ = stop.wait_for(|s| *s), if deadline.is_none() => {
                    deadline = Some(tokio::time::Instant::now() + SHUTDOWN_DEADLINE);
                }
                _ = until_deadline => {
                    finished = false;
                    break;
                }
            }
        }
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
    fn is_announcer(&self) -> bool {
        self.config.is_announcer(&self.agent.name)
    }

    /// The Discord gateway adapter, when this agent has a Discord token.
    fn discord_shell(&self) -> Option<crate::discord::DiscordShell> {
        let settings = self.config.discord.clone()?;
        let token = read_token(&self.agent.discord_token_env)?;
        Some(crate::discord::DiscordShell {
            fleet: self.approvals.fleet.clone(),
            settings,
            token,
        })
    }

    /// Messages edited in place (GitHub task status), when this agent has a Discord bot token.
    fn pinned_messages(
        &self,
    ) -> anyhow::Result<Option<crate::discord::pinned_status::PinnedMessages>> {
        let (Some(settings), Some(token)) = (
            self.config.discord.as_ref(),
            read_token(&self.agent.discord_token_env),
        ) else {
            return Ok(None);
        };
        crate::discord::pinned_status::PinnedMessages::new(settings, &token, self.store.clone())
            .map(Some)
    }

    fn beat(&self, state: AgentState, queue_depth: usize) -> anyhow::Result<()> {
        let hb = Heartbeat {
            state,
            queue_depth: queue_depth as u64,
            started_at: self.started_at,
            health: self
                .health_addr
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .map(|a| a.to_string()),
            ..Heartbeat::current(Utc::now())
        };
        self.status.beat(&self.agent.name, hb)?;
        Ok(())
    }
}

/// Claim inbox items one at a time and handle them; stop taking new items on
/// the stop signal or while the kill switch is on.
async fn intake_loop(
    shared: Arc<Shared>,
    inbox: Inbox,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
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
        // Housekeeping keeps the kill switch in the readiness flag (every 0.5 s):
        // no status-file read per item.
        if shared.ready.get() == Readiness::Paused {
            // Leave the item where it is; it is picked up after `resume`.
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
            }
        }
        let claimed = match inbox.claim(&path) {
            Ok(Some(c)) => c,
            Ok(None) => continue, // another claimer won, or it went away
            Err(e) if e.is_rejected_item() => {
                // Already moved to failed/ with its reason beside it.
                warn!(item = %path.display(), error = %e, "rejected an inbox entry");
                shared.metrics.count_inbox("failed");
                continue;
            }
            Err(e) => {
                error!(item = %path.display(), error = %e, "could not claim an inbox entry; will retry");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        seq = seq.wrapping_add(1);
        let started = Instant::now();
        let outcome = match handle_item(&shared, &claimed, &mut repeat, seq).await {
            Handled::Now(outcome) => outcome,
            Handled::RunTask { spec, approved } => {
                // The item stays claimed (its lease renewed) until the task ends.
                let shared = shared.clone();
                tokio::spawn(
                    async move {
                        let outcome = run_task(&shared, *spec, approved).await;
                        if let Err(e) = claimed.finish(outcome) {
                            error!(
                                error = format!("{e:#}"),
                                "could not move a task item out of running/"
                            );
                        }
                    }
                    .in_current_span(),
                );
                continue;
            }
        };
        shared
            .metrics
            .intake_latency
            .observe(started.elapsed().as_secs_f64());
        let label = match &outcome {
            Outcome::Done(_) => "done",
            Outcome::Failed(_) => "failed",
        };
        shared.metrics.count_inbox(label);
        if let Err(e) = claimed.finish(outcome) {
            error!(item = %path.display(), error = format!("{e:#}"), "could not move the item out of running/");
        }
        shared
            .metrics
            .inbox_depth
            .set(inbox.depth().unwrap_or(0) as i64);
    }
    debug!("intake stopped");
    Ok(())
}

/// What intake does with an item: finish it now, or run a task in the background.
enum Handled {
    Now(Outcome),
    RunTask {
        spec: Box<crate::tasks::TaskSpec>,
        approved: bool,
    },
}

async fn handle_item(
    shared: &Shared,
    claimed: &Claimed,
    repeat: &mut RepeatLimiter,
    seq: u32,
) -> Handled {
    let item = match parse_item(&claimed.bytes) {
        Ok(item) => item,
        Err(e) => {
            warn!(item = %claimed.id, error = %e, "rejected an inbox item");
            return Handled::Now(Outcome::Failed(
                json!({ "error": e.to_string(), "attempt": claimed.attempt }),
            ));
        }
    };
    let outcome = match item {
        InboxItem::Event(draft) => match draft.validate(Utc::now(), seq) {
            Ok(event) => match handle_event(shared, event, Some(repeat)).await {
                Ok(result) => Outcome::Done(result),
                Err(e) => {
                    let id = error_id();
                    error!(error_id = %id, item = %claimed.id, error = format!("{e:#}"), "could not store an event");
                    Outcome::Failed(
                        json!({ "error": format!("internal error {id}: {e:#}"), "retry": "drop the file into the inbox again" }),
                    )
                }
            },
            Err(e) => {
                warn!(item = %claimed.id, error = %e, "rejected an event");
                Outcome::Failed(
                    json!({ "error": e.to_string(), "problems": e.problems, "fix": "correct the fields named and drop the file again" }),
                )
            }
        },
        InboxItem::Task(value) => match shared.tasks.accept(&value).await {
            Ok(Accepted::Run(spec)) => {
                return Handled::RunTask {
                    spec,
                    approved: false,
                };
            }
            Ok(Accepted::AwaitingApproval(result)) => {
                request_task_approval(shared, &result).await;
                Outcome::Done(result)
            }
            Err(e) => task_refusal(claimed, e),
        },
        InboxItem::ApprovalRequest(v) => {
            match crate::approvals::handle_request_item(&shared.approvals, &v).await {
                Ok(result) => Outcome::Done(result),
                Err(reason) => Outcome::Failed(reason),
            }
        }
        // A decision naming a task directly (an operator's or a script's) goes
        // to the task runner; one answering an approval request is recorded by
        // the approvals module, and parked tasks pick it up from there.
        InboxItem::ApprovalDecision(v) if v.get("task_id").is_some() => {
            match shared.tasks.decide(&v).await {
                Ok(Some(spec)) => {
                    return Handled::RunTask {
                        spec: Box::new(spec),
                        approved: true,
                    };
                }
                Ok(None) => {
                    Outcome::Done(json!({ "status": "blocked", "task_id": v.get("task_id") }))
                }
                Err(e) => task_refusal(claimed, e),
            }
        }
        InboxItem::ApprovalDecision(v) => {
            match crate::approvals::handle_decision_item(&shared.approvals, &v).await {
                Ok(result) => Outcome::Done(result),
                Err(reason) => Outcome::Failed(reason),
            }
        }
        other => Outcome::Failed(json!({
            "error": format!("items of kind `{}` are not handled by this agent yet", other.kind().as_str()),
            "fix": "send events, tasks or approval decisions"
        })),
    };
    Handled::Now(outcome)
}

fn task_refusal(claimed: &Claimed, e: TaskIntakeError) -> Outcome {
    match e {
        TaskIntakeError::Invalid(reason) => {
            warn!(item = %claimed.id, reason = %reason, "refused a task item");
            Outcome::Failed(reason)
        }
        TaskIntakeError::Internal(e) => {
            let id = error_id();
            error!(error_id = %id, item = %claimed.id, error = format!("{e:#}"), "task intake failed");
            Outcome::Failed(
                json!({ "error": format!("internal error {id}"), "retry": "drop the file into the inbox again" }),
            )
        }
    }
}

/// Ask a human (Telegram, through the approvals module) about a parked task.
async fn request_task_approval(shared: &Shared, parked: &serde_json::Value) {
    let Some(task_id) = parked["task_id"].as_str() else {
        return;
    };
    let mut req = crate::approvals::ApprovalRequest::new(
        format!(
            "Run task {task_id}: {}",
            parked["title"].as_str().unwrap_or("")
        ),
        shared.agent.name.clone(),
    );
    req.id = Some(crate::tasks::runner::approval_id(task_id));
    req.task_id = Some(task_id.to_string());
    req.detail = parked["preview"].as_str().unwrap_or("").to_string();
    req.risk = parked["risk"].as_u64().unwrap_or(100).min(100) as u8;
    req.reasons = parked["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if let Err(e) = crate::approvals::request(&shared.store, req).await {
        error!(
            task = task_id,
            error = format!("{e:#}"),
            "could not request an approval for a task"
        );
    }
}

/// Parked tasks whose approval request has been decided: run or block them.
async fn resume_parked_tasks(shared: &Arc<Shared>) -> anyhow::Result<()> {
    for task_id in shared.tasks.parked().await? {
        let Some(approval) = shared
            .store
            .approval(&crate::tasks::runner::approval_id(&task_id))
            .await?
        else {
            continue;
        };
        if !approval.status.is_final() {
            continue;
        }
        let decision = json!({
            "task_id": task_id,
            "decision": if approval.status.is_approved() { "approved" } else if approval.status.as_str() == "expired" { "expired" } else { "denied" },
            "by": approval.decided_by.clone().unwrap_or_else(|| "approvals".into()),
        });
        match shared.tasks.decide(&decision).await {
            Ok(Some(spec)) => {
                let shared = shared.clone();
                tokio::spawn(
                    async move {
                        if let Outcome::Failed(e) = run_task(&shared, spec, true).await {
                            warn!(error = %e, "an approved task failed to run");
                        }
                    }
                    .in_current_span(),
                );
            }
            Ok(None) => info!(task = %task_id, "task blocked by its approval decision"),
            Err(e) => warn!(task = %task_id, error = %e, "could not apply an approval decision"),
        }
    }
    Ok(())
}

/// Run a task to its end and route its result event.
async fn run_task(shared: &Shared, spec: crate::tasks::TaskSpec, approved: bool) -> Outcome {
    let id = spec.id.to_string();
    match shared.tasks.run(spec, approved).await {
        Ok((report, event)) => {
            let mut routed = serde_json::Value::Null;
            if let Some(event) = event {
                match handle_event(shared, event, None).await {
                    Ok(r) => routed = r,
                    Err(e) => {
                        warn!(task = %id, error = format!("{e:#}"), "could not route the task's result")
                    }
                }
            }
            // The task's memory entry (seed 004) went to the memory log; say so.
            if let Some(memory) = report.memory_record(Utc::now()) {
                let draft = switchyard_routing::EventDraft {
                    event_id: Some(format!(
                        "evt_memory_{id}_{}",
                        report.started_at.timestamp_millis()
                    )),
                    event_type: Some("memory.appended".into()),
                    category: Some("memory_update".into()),
                    source: Some(format!("worker:{}", shared.agent.name)),
                    title: Some(format!(
                        "Memory ({}) from task {id}",
                        memory["kind"].as_str().unwrap_or("note")
                    )),
                    body: Some(memory["text"].as_str().unwrap_or("").to_string()),
                    ..Default::default()
                };
                if let Err(e) = post_event(shared, draft, None).await {
                    warn!(task = %id, error = format!("{e:#}"), "could not announce the memory entry");
                }
            }
            Outcome::Done(json!({
                "task_id": id, "status": report.state.as_str(), "reason": report.reason,
                "attempts": report.attempts, "duration_ms": report.duration_ms,
                "exit_codes": report.exit_codes(), "result_event": routed,
            }))
        }
        Err(e) => Outcome::Failed(json!({ "task_id": id, "error": format!("{e:#}") })),
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

/// Validate and route an event the agent makes itself (notices, task
/// results): the same path as an inbox event.
async fn post_event(
    shared: &Shared,
    draft: switchyard_routing::EventDraft,
    repeat: Option<&mut RepeatLimiter>,
) -> anyhow::Result<serde_json::Value> {
    let event = draft
        .validate(Utc::now(), 0)
        .map_err(|e| anyhow::anyhow!(e))?;
    handle_event(shared, event, repeat).await
}

/// Route, apply repeats, mutes and digests, and store the event with its
/// deliveries in one transaction. Returns the item's result record.
/// `repeat` is the intake's limiter; the agent's own events (task results,
/// notices with unique ids) pass `None` and are never counted as repeats.
async fn handle_event(
    shared: &Shared,
    event: Event,
    repeat: Option<&mut RepeatLimiter>,
) -> anyhow::Result<serde_json::Value> {
    let now = Utc::now();
    let input = RouteInput::from(&event);
    let decision = shared.router.route(&input);
    shared.metrics.count_event(event.category.as_str());
    if decision.unmatched {
        shared.metrics.unmatched.inc();
    }
    if let Some(RepeatVerdict::Repeat { count, first_seen }) = repeat.map(|r| r.check(&event, now))
    {
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
                Some(m) => NewDeliveryState::Held {
                    mute_id: m.id.to_string(),
                },
                None if digest_window.is_some() => NewDeliveryState::Held {
                    mute_id: format!("{DIGEST_KEY_PREFIX}{}", event.category),
                },
                None => NewDeliveryState::Pending,
            };
            NewDelivery {
                destination: t.destination.clone(),
                rule: t.rule.name.clone(),
                state,
            }
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

/// The GitHub monitor's way into routing: its events go where inbox events go.
struct AgentEvents(Arc<Shared>);

impl crate::github::output::EventPort for AgentEvents {
    async fn route(&self, event: Event) -> anyhow::Result<()> {
        // Each event is its own decision: repeats are the monitor's business (event ids).
        handle_event(&self.0, event, None).await.map(|_| ())
    }
}

/// Once a second: heartbeat, leases, the kill switch, mute notices, held
/// digests and digest windows.
async fn housekeeping_loop(
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut last_beat = Instant::now() - shared.config.fleet.heartbeat_interval;
    let mut digest_due: BTreeMap<String, Instant> = BTreeMap::new();
    let mut peers = PeerWatch::new(&shared);
    let mut was_killed = false;
    let mut paused_since: Option<DateTime<Utc>> = None;
    let mut scheduler = crate::schedules::Scheduler::new(
        &shared.config.schedules,
        &shared.config.fleet.workspace,
        &shared.config.agent_dir(&shared.agent.name),
        &shared.agent.name,
        Utc::now(),
    );
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
        if killed != was_killed {
            was_killed = killed;
            if killed {
                let n = shared.tasks.kill().await;
                warn!(
                    containers_killed = n,
                    "kill switch on: no new work, running containers killed"
                );
            } else {
                shared.tasks.resume();
                info!("kill switch off: taking work again");
            }
        }
        shared.ready.set(if killed {
            Readiness::Paused
        } else {
            Readiness::Ready
        });
        if last_beat.elapsed() >= shared.config.fleet.heartbeat_interval {
            last_beat = Instant::now();
            let state = if killed {
                AgentState::Killed
            } else if shared.tasks.paused().is_some() {
                AgentState::Paused
            } else {
                AgentState::Idle
            };
            if let Err(e) = off_worker(|| shared.beat(state, 0)) {
                warn!(error = format!("{e:#}"), "heartbeat not written");
            }
        }
        if let Err(e) = watch_breaker(&shared, &status, &mut paused_since).await {
            warn!(error = format!("{e:#}"), "breaker step failed");
        }
        if !scheduler.is_empty() && !killed {
            match scheduler.tick(Utc::now(), chrono::TimeDelta::seconds(5)) {
                Ok(fired) => {
                    for f in fired {
                        match f {
                            crate::schedules::Fired::Dropped {
                                schedule,
                                item_id,
                                missed,
                            } => {
                                info!(schedule, item = %item_id, missed, "schedule fired")
                            }
                            crate::schedules::Fired::Skipped { schedule, missed } => {
                                warn!(
                                    schedule,
                                    missed,
                                    "runs missed while down were skipped (missed = \"skip\")"
                                )
                            }
                        }
                    }
                }
                Err(e) => warn!(error = format!("{e:#}"), "schedule step failed"),
            }
        }
        if let Err(e) = resume_parked_tasks(&shared).await {
            warn!(error = format!("{e:#}"), "parked task step failed");
        }
        if let Err(e) = watch_peers(&shared, &status, &mut peers).await {
            warn!(error = format!("{e:#}"), "peer watch step failed");
        }
        if let Err(e) = mute_lifecycle(&shared, &status).await {
            warn!(error = format!("{e:#}"), "mute lifecycle step failed");
        }
        if let Err(e) = digest_windows(&shared, &mut digest_due).await {
            warn!(error = format!("{e:#}"), "digest window step failed");
        }
    }
    Ok(())
}

/// The circuit breaker: when this agent pauses itself after consecutive task
/// failures it says so (an `alert`, and `paused` in its heartbeat); a
/// `switchyard resume` (fleet-wide or for this agent) made after that closes it.
async fn watch_breaker(
    shared: &Shared,
    status: &crate::coord::Status,
    paused_since: &mut Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    let now = Utc::now();
    match (shared.tasks.paused(), *paused_since) {
        (Some(failures), None) => {
            *paused_since = Some(now);
            warn!(
                failures,
                "agent paused itself after consecutive task failures"
            );
            let name = &shared.agent.name;
            let draft = switchyard_routing::EventDraft {
                event_id: Some(format!(
                    "evt_agent_paused_{name}_{}",
                    now.timestamp_millis()
                )),
                event_type: Some("agent.paused".into()),
                category: Some("alert".into()),
                severity: Some("warning".into()),
                source: Some(format!("agent:{name}")),
                title: Some(format!(
                    "Agent {name} paused itself after {failures} failed tasks in a row"
                )),
                body: Some(format!(
                    "It takes no new tasks until a human looks at the failures and runs `switchyard resume --agent {name}`."
                )),
                ..Default::default()
            };
            post_event(shared, draft, None).await?;
        }
        (Some(_), Some(since)) => {
            let resumed = status.history.iter().any(|r| {
                r.action == crate::coord::KillAction::Resume
                    && r.at > since
                    && r.agent.as_deref().is_none_or(|a| a == shared.agent.name)
            });
            if resumed {
                shared.tasks.resume();
                *paused_since = None;
                info!("resumed by an operator: taking tasks again");
            }
        }
        (None, _) => *paused_since = None,
    }
    Ok(())
}

/// Which peers the announcer has reported stale, and since when it watches.
struct PeerWatch {
    stale: std::collections::BTreeSet<String>,
    since: Instant,
    repeat: RepeatLimiter,
}

impl PeerWatch {
    fn new(shared: &Shared) -> PeerWatch {
        PeerWatch {
            stale: Default::default(),
            since: Instant::now(),
            repeat: RepeatLimiter::new(shared.config.routing.repeat_interval),
        }
    }
}

/// The announcer raises an `alert` when a peer's heartbeat goes stale and a
/// `system` event when it comes back. Peers get `stale_after` after this
/// agent starts to write their first beat.
async fn watch_peers(
    shared: &Shared,
    status: &crate::coord::Status,
    watch: &mut PeerWatch,
) -> anyhow::Result<()> {
    if !shared.is_announcer() || watch.since.elapsed() < shared.config.fleet.stale_after {
        return Ok(());
    }
    let now = Utc::now();
    let stale_after = shared.config.fleet.stale_after;
    let stale: BTreeMap<String, crate::coord::StalePeer> = status
        .stale_peers(now, stale_after)
        .into_iter()
        .filter(|p| p.agent != shared.agent.name && shared.config.agent(&p.agent).is_some())
        .map(|p| (p.agent.clone(), p))
        .collect();
    for (name, peer) in &stale {
        if watch.stale.insert(name.clone()) {
            warn!(peer = %name, age_s = peer.age.as_secs(), "peer is stale");
            let draft = switchyard_routing::EventDraft {
                event_id: Some(format!("evt_peer_stale_{name}_{}", now.timestamp_millis())),
                event_type: Some("fleet.peer_stale".into()),
                category: Some("alert".into()),
                severity: Some("warning".into()),
                source: Some(format!("agent:{}", shared.agent.name)),
                title: Some(format!("Agent {name} is not responding")),
                body: Some(format!(
                    "Its last heartbeat was {}s ago (pid {} on {}); peers are stale after {}s.",
                    peer.age.as_secs(),
                    peer.pid,
                    peer.host,
                    stale_after.as_secs()
                )),
                ..Default::default()
            };
            post_event(shared, draft, Some(&mut watch.repeat)).await?;
        }
    }
    let back: Vec<String> = watch
        .stale
        .iter()
        .filter(|n| !stale.contains_key(*n))
        .cloned()
        .collect();
    for name in back {
        watch.stale.remove(&name);
        info!(peer = %name, "peer is back");
        let draft = switchyard_routing::EventDraft {
            event_id: Some(format!("evt_peer_back_{name}_{}", now.timestamp_millis())),
            event_type: Some("fleet.peer_back".into()),
            category: Some("system".into()),
            source: Some(format!("agent:{}", shared.agent.name)),
            title: Some(format!("Agent {name} is back")),
            body: Some("Its heartbeat is current again.".into()),
            ..Default::default()
        };
        post_event(shared, draft, Some(&mut watch.repeat)).await?;
    }
    Ok(())
}

/// Announce mutes (the fleet's first agent does that, once per mute) and
/// post the "while muted" digest of this agent's held messages when a mute ends.
async fn mute_lifecycle(shared: &Shared, status: &crate::coord::Status) -> anyhow::Result<()> {
    let now = Utc::now();
    let mutes = &status.mutes;
    let lead = shared.config.routing.mute_notice_lead;
    if shared.is_announcer() && crate::coord::mutes::any_notice_due(status, now, lead) {
        let due = off_worker(|| crate::coord::mutes::due_notices(&shared.status, now, lead))?;
        for (mute, notice) in due {
            let dest = crate::coord::mutes::notice_destination(&shared.config, &mute.target);
            let (title, body) = notice.text(&mute, now);
            shared
                .store
                .enqueue_notice(
                    &dest,
                    &title,
                    &body,
                    switchyard_routing::Severity::Info,
                    now,
                )
                .await?;
            shared.outbox.wake();
        }
    }
    let active: std::collections::BTreeSet<String> = mutes
        .iter()
        .filter(|m| m.expires_at > now)
        .map(|m| m.id.to_string())
        .collect();
    for mute_id in shared.store.held_mute_ids().await? {
        if mute_id.starts_with(DIGEST_KEY_PREFIX) || active.contains(&mute_id) {
            continue;
        }
        post_held_digest(shared, &mute_id, "While muted", now).await?;
    }
    Ok(())
}

async fn post_held_digest(
    shared: &Shared,
    key: &str,
    header: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
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
        shared
            .store
            .enqueue_notice(&dest, &title, &body, severity, now)
            .await?;
        info!(key, destination = %dest, count = events.len(), "posted a digest of held messages");
    }
    shared.outbox.wake();
    Ok(())
}

/// Ambient categories configured under `[routing.digest]` are held for their
/// window, then posted as one message.
async fn digest_windows(
    shared: &Shared,
    due: &mut BTreeMap<String, Instant>,
) -> anyhow::Result<()> {
    let now = Utc::now();
    for key in shared.store.held_mute_ids().await? {
        let Some(cat) = key.strip_prefix(DIGEST_KEY_PREFIX) else {
            continue;
        };
        let category: Category = cat.parse().unwrap_or_else(|never| match never {});
        let window = shared
            .config
            .routing
            .digest
            .get(&category)
            .copied()
            .unwrap_or(Duration::ZERO);
        let at = *due
            .entry(key.clone())
            .or_insert_with(|| Instant::now() + window);
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
