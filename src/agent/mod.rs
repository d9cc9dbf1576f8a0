//! The composition root: builds one agent from the configuration, starts its
//! loops and waits for them. Only this module wires adapters (Discord,
//! Telegram, GitHub, Docker, the database) to the domain; each loop lives in
//! its own room:
//!
//! - [`intake`]: claims inbox items and dispatches them by kind;
//! - [`events`]: an event's way through route → repeat → plan → store;
//! - [`tasks`]: runs tasks, asks for approvals, resumes parked tasks;
//! - [`housekeeping`]: heartbeat, kill switch, breaker, schedules, once a tick;
//! - [`peers`]: stale peers and their return (the announcer);
//! - [`mutes`]: mute notices and the digests of held messages;
//! - [`github`]: the GitHub monitor's output over a running agent;
//! - [`login`]: the bot tokens checked once at start-up (a refused one exits 2).
//!
//! Shutdown is graceful: stop intake, drain, flush the outbox, write the final
//! status, exit within [`SHUTDOWN_DEADLINE`].

mod console;
mod db_watch;
mod events;
mod github;
mod housekeeping;
mod intake;
mod lease;
mod login;
mod mutes;
mod peers;
mod reload;
mod runner;
mod sessions;
mod tasks;
mod workers;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{Instrument, error, info, warn};

use crate::config::{AgentSettings, Config, ConfigError, Secret};
use crate::coord::{AgentState, Heartbeat, StatusFile, TokenLock};
use crate::delivery::{Outbox, OutboxNotify, Sinks};
use crate::health::{Readiness, ReadyFlag};
use crate::metrics::Metrics;
use crate::shutdown::{SHUTDOWN_DEADLINE, Shutdown, ShutdownHandle};
use crate::store::Store;
use runner::TaskRunner;

/// Run one agent until SIGINT/SIGTERM.
pub async fn run_agent(config: Config, name: &str) -> anyhow::Result<()> {
    let agent = config.require_agent(name)?.clone();
    let span = tracing::info_span!("agent", agent = %agent.name);
    async move {
        let shutdown = ShutdownHandle::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            crate::shutdown::wait_for_signal().await;
            info!("shutdown requested");
            on_signal.stop();
        });
        // Across hosts, one process per agent: a second one waits here as a standby.
        if let Some(url) = &config.fleet.coordination {
            match lease::hold(&config, &agent, url, &shutdown).await? {
                Some(lease) => drop(lease.watch(shutdown.clone())),
                None => return Ok(()), // stopped while waiting
            }
        }
        let agent_handle = Agent::start(config, agent, shutdown).await?;
        agent_handle.wait().await
    }
    .instrument(span)
    .await
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
    stop: ShutdownHandle,
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
    /// The routes and routing settings, replaced whole by a reload.
    routing: crate::config::LiveRouting,
    metrics: Metrics,
    ready: ReadyFlag,
    outbox: OutboxNotify,
    started_at: DateTime<Utc>,
    health_addr: std::sync::Mutex<Option<std::net::SocketAddr>>,
    /// The fleet's mutes, re-read only when `status.json` changed.
    mutes: crate::coord::mutes::MuteSnapshot,
    approvals: crate::approvals::ApprovalsContext,
    /// The commands' `Fleet`, shared by the Discord and Telegram shells.
    fleet: crate::fleet::AgentFleet,
    /// The outbox's Discord limiter, for the other writers to its channels.
    discord_limits: Option<crate::delivery::DiscordLimiter>,
    /// The agent's conversations, when it names a responder.
    conversations: Option<crate::conversations::Conversations>,
    /// How the last reload ended (SIGHUP), for the heartbeat.
    last_reload: std::sync::Mutex<Option<crate::coord::ReloadRecord>>,
    /// Schedules a reload brought, for the housekeeping loop to take.
    reloaded_schedules: std::sync::Mutex<Option<Vec<crate::config::Schedule>>>,
}

impl Agent {
    /// Start every loop; returns once the agent is ready. The loops run
    /// until `shutdown` is stopped (or one of them fails).
    pub async fn start(
        config: Config,
        agent: AgentSettings,
        shutdown: ShutdownHandle,
    ) -> anyhow::Result<Agent> {
        let stop = shutdown.listen();
        let problems = config.check_tokens(&agent);
        if !problems.is_empty() {
            return Err(ConfigError {
                source_name: config.source_name.clone(),
                problems,
            }
            .into());
        }
        let workspace = config.fleet.workspace.clone();
        // The environment is the operator's to fix, like the configuration:
        // exit status 2, with what to change.
        std::fs::create_dir_all(&workspace)
            .and_then(|()| probe_writable(&workspace))
            .map_err(|e| {
                crate::error::bad_input(format!(
                    "the workspace {} is not usable ({e}): create it, or give this user write access, or point [fleet] workspace elsewhere",
                    workspace.display()
                ))
            })?;
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
        // Once, before anything is opened: a refused token is the operator's to fix (exit 2).
        login::check_tokens(
            &config,
            &agent,
            discord_token.as_ref(),
            telegram_token.as_ref(),
        )
        .await?;
        let telegram_approvals = match &telegram_token {
            Some(token)
                if config
                    .telegram_owner()
                    .is_some_and(|o| o.name == agent.name) =>
            {
                // Checked before anything is opened; completed with the fleet below.
                Some(crate::telegram::TelegramApprovals::new(&config, token)?)
            }
            _ => None,
        };

        let database_url = config.database_url(&agent.name);
        let mut waiting = stop.clone();
        let open = || Store::open_agent(&database_url, &agent.name);
        // A server may be restarting: waited for. A SQLite file's errors are the operator's.
        let opened = match crate::store::Backend::of(&database_url)? {
            crate::store::Backend::Postgres => {
                db_watch::open_when_reachable("store", &mut waiting, open).await
            }
            crate::store::Backend::Sqlite => open().await.map(Some),
        };
        let store = match opened {
            Ok(Some(store)) => store,
            Ok(None) => anyhow::bail!("stopped while waiting for the agent's database"),
            Err(e) => {
                return Err(crate::error::bad_input(format!(
                    "cannot open the database of agent {} ({e:#}): check [fleet] database and that this user may write there",
                    agent.name
                )));
            }
        };
        let status = StatusFile::for_fleet(&config.fleet).map_err(|e| {
            crate::error::bad_input(format!(
                "cannot reach the fleet's status ({e}): check [fleet] coordination"
            ))
        })?;
        let routing = crate::config::LiveRouting::new(config.router()?, config.routing.clone());
        let crate::delivery::PlatformSinks {
            sinks,
            discord: discord_sink,
            telegram: telegram_sink,
        } = Sinks::from_config_with_platforms(
            &config,
            discord_token,
            telegram_token,
            crate::delivery::QuietFor {
                discord: store.quiet_for(switchyard_routing::Platform::Discord).await,
                telegram: store
                    .quiet_for(switchyard_routing::Platform::Telegram)
                    .await,
            },
        )?;
        let outbox = Outbox::new(store.clone(), sinks, config.delivery.clone());
        let stats = outbox.stats();
        let discord_limits = discord_sink.as_ref().map(|s| s.limits(stats.clone()));
        // Who may do what: one handle for the chat shells and the
        // conversations, replaced whole by a reload.
        let access = crate::config::LiveAccess::new(crate::config::Access::of(&config));
        let conversations = crate::responders::answerer_for(&config, &agent.name)
            .await
            .map_err(|e| crate::error::bad_input(format!("{e:#}")))?
            .map(|answerer| {
                crate::conversations::Conversations::new(
                    &agent.name,
                    store.clone(),
                    config.fleet.workspace.clone(),
                    config.conversations.clone(),
                    answerer,
                    access.clone(),
                    crate::conversations::incoming::IncomingLimits {
                        max_bytes: config.files.incoming_max_bytes,
                        timeout: config.files.incoming_timeout,
                    },
                )
            });
        if let (Some(c), Some(sink), Some(limits)) =
            (&conversations, &discord_sink, &discord_limits)
        {
            c.attach(
                switchyard_routing::Platform::Discord,
                Arc::new(crate::discord::conversation::DiscordChat::new(
                    sink.clone(),
                    limits.clone(),
                )),
            );
        }
        let conversation_stats = conversations.as_ref().map(|c| c.stats());
        let metrics = Metrics::new(|registry| {
            stats.register(registry);
            if let Some(c) = &conversation_stats {
                c.register(registry);
            }
        });
        let ready = ReadyFlag::default();
        let notify = outbox.notifier();
        // One `Fleet` for both chat shells: built once, cloned (it is an Arc).
        let fleet = crate::fleet::AgentFleet::new(
            config.clone(),
            agent.name.clone(),
            store.clone(),
            status.clone(),
            routing.clone(),
            access,
        );
        let telegram_limiter = telegram_sink.as_ref().map(|s| s.limits(stats.clone()));
        let telegram_approvals = telegram_approvals.map(|tg| {
            Arc::new(
                tg.with_fleet(fleet.clone())
                    .with_limiter(telegram_limiter)
                    .with_conversations(conversations.clone()),
            )
        });
        if let (Some(c), Some(tg)) = (&conversations, &telegram_approvals) {
            c.attach(
                switchyard_routing::Platform::Telegram,
                Arc::new(crate::telegram::conversation::TelegramChat::new(tg)),
            );
        }
        let approvals = crate::approvals::ApprovalsContext {
            config: config.clone(),
            agent: agent.name.to_string(),
            store: store.clone(),
            outbox: notify.clone(),
            prompter: telegram_approvals
                .clone()
                .map(|tg| tg as Arc<dyn crate::approvals::Prompter>),
            secret: crate::approvals::FleetSecret::from_env(&config.fleet.secret_env),
            // Checked with the tokens above: a signer that must sign has its key.
            signer: config.signing_key(&agent.name).ok().flatten().map(Arc::new),
        };
        if !config.signs_decisions(&agent.name)
            && std::env::var_os(&config.approvals.signing_key_env).is_some()
        {
            warn!(
                variable = %config.approvals.signing_key_env,
                "this agent does not sign approval decisions, yet the signing key is in its environment: keep it only where the agent that owns Telegram runs"
            );
        }

        let threads = crate::discord::threads::DiscordTaskThreads::new(
            &routing.get().router,
            discord_sink,
            store.clone(),
            &agent.name,
        );
        let tasks = TaskRunner::start(&config, &agent.name, store.clone())
            .await
            .with_threads(
                threads.map(|t| Arc::new(t) as Arc<dyn crate::tasks::progress::TaskThreads>),
            );
        let shared = Arc::new(Shared {
            tasks,
            approvals,
            config,
            agent,
            store,
            status,
            routing,
            metrics,
            ready,
            outbox: notify,
            started_at: Utc::now(),
            health_addr: std::sync::Mutex::new(None),
            mutes: Default::default(),
            fleet,
            discord_limits,
            conversations,
            last_reload: std::sync::Mutex::new(None),
            reloaded_schedules: std::sync::Mutex::new(None),
        });

        let webhook =
            crate::telegram::webhook::router(telegram_approvals.clone(), &shared.approvals)?;
        if webhook.is_some() && shared.agent.listen.is_none() {
            anyhow::bail!(
                "[telegram] webhook_url is set but agent {} has no `listen` address to receive it on",
                shared.agent.name
            );
        }
        if let Some(listen) = shared.agent.listen {
            let mut extra = webhook.clone().unwrap_or_default();
            if let Some(console) = console_router(&shared)? {
                info!(%listen, "fleet console on /console");
                extra = extra.merge(console);
            }
            let addr = crate::health::serve_with(
                listen,
                shared.agent.name.to_string(),
                shared.metrics.clone(),
                shared.ready.clone(),
                stop.clone(),
                extra,
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
        let coordination = match &shared.config.fleet.coordination {
            Some(url) => Some(crate::coord::shared_db::CoordDb::open(url)?),
            None => None,
        };
        let source = intake::open_source(&shared, coordination.clone(), &mut tasks, &stop).await?;
        tasks.spawn(intake::intake_loop(shared.clone(), source, stop.clone()).in_current_span());
        tasks.spawn(
            db_watch::run(
                shared.store.clone(),
                coordination,
                shared.ready.clone(),
                shared.metrics.clone(),
                stop.clone(),
            )
            .in_current_span(),
        );
        tasks
            .spawn(housekeeping::housekeeping_loop(shared.clone(), stop.clone()).in_current_span());
        tasks.spawn(reload::reload_loop(shared.clone(), stop.clone()).in_current_span());
        tasks
            .spawn(crate::approvals::run(shared.approvals.clone(), stop.clone()).in_current_span());
        if let Some(tg) = telegram_approvals {
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
        if let Some(c) = &shared.conversations {
            c.recover()
                .await
                .map_err(|e| e.context("cannot read the conversations"))?;
        }
        if let Some(shell) = shared.discord_shell() {
            tasks.spawn(crate::discord::run(shell, stop.clone()).in_current_span());
        }
        if let Some(github) = shared.config.github.clone() {
            let output = github::AgentOutput::new(
                shared.agent.name.clone(),
                shared.config.fleet.workspace.clone(),
                shared.pinned_messages()?,
                github::AgentEvents(shared.clone()),
            );
            let token = read_token(&Some(github.token_env.clone()));
            let spawner = crate::execution::spawn::Spawner::for_agent(
                &shared.config,
                shared.agent.name.as_ref(),
            );
            let workers = Arc::new(workers::AgentWorkers::new(shared.clone(), spawner));
            tasks.spawn(
                crate::github::runner::run(
                    shared.store.clone(),
                    shared.agent.name.to_string(),
                    github,
                    token,
                    output,
                    workers,
                    stop.clone(),
                )
                .in_current_span(),
            );
        }
        shared.beat(AgentState::Idle, 0, Vec::new())?;
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
            stop: shutdown,
            shared,
            outbox_done,
            _token_locks: token_locks,
        })
    }

    /// Wait for every loop to end (they end on the stop signal), within the deadline.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        let mut stop = self.stop.listen();
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
                        self.stop.stop();
                        first_error.get_or_insert(e);
                    }
                    Some(Err(e)) if e.is_panic() => {
                        error!("agent loop panicked; stopping the agent");
                        self.stop.stop();
                        first_error.get_or_insert(anyhow::anyhow!("an agent loop panicked"));
                    }
                    Some(Err(_)) => {}
                },
                _ = stop.stopped(), if deadline.is_none() => {
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
        if let Err(e) = self.shared.beat(AgentState::Stopped, 0, Vec::new()) {
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
    /// Whether this agent speaks for the fleet now: the first configured
    /// agent, or, while it (and any before this one) is down, this one.
    fn is_announcer(&self, status: &crate::coord::Status) -> bool {
        status.acting_announcer(
            self.config.agents.iter().map(|a| a.name.as_str()),
            &self.agent.name,
            Utc::now(),
            self.config.fleet.stale_after,
        ) == Some(self.agent.name.as_str())
    }

    /// The Discord gateway adapter, when this agent has a Discord token.
    fn discord_shell(&self) -> Option<crate::discord::DiscordShell> {
        let settings = self.config.discord.clone()?;
        let token = read_token(&self.agent.discord_token_env)?;
        Some(crate::discord::DiscordShell {
            fleet: self.fleet.clone(),
            settings,
            token,
            limits: self.discord_limits.clone(),
            conversations: self.conversations.clone(),
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
        crate::discord::pinned_status::PinnedMessages::new(
            settings,
            &token,
            self.store.clone(),
            self.discord_limits.clone(),
        )
        .map(Some)
    }

    fn beat(
        &self,
        state: AgentState,
        queue_depth: usize,
        stale_temp_files: Vec<String>,
    ) -> anyhow::Result<()> {
        let hb = Heartbeat {
            state,
            queue_depth: queue_depth as u64,
            stale_temp_files,
            started_at: self.started_at,
            health: self
                .health_addr
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .map(|a| a.to_string()),
            last_reload: self
                .last_reload
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            ..Heartbeat::current(Utc::now())
        };
        self.status.beat(&self.agent.name, hb)?;
        Ok(())
    }

    /// A heartbeat now, keeping the state and depth the last one had.
    fn beat_now(&self) -> anyhow::Result<()> {
        let last = self
            .status
            .read()?
            .agents
            .get(self.agent.name.as_str())
            .cloned();
        let (state, depth, stale) = last.map_or((AgentState::Idle, 0, Vec::new()), |h| {
            (h.state, h.queue_depth as usize, h.stale_temp_files)
        });
        self.beat(state, depth, stale)
    }
}

/// Whether a file can be made in `dir` (a read-only mount or a directory of
/// another user fails here, at start, instead of at the first item).
fn probe_writable(dir: &std::path::Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".switchyard-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

/// Where an agent's files live, for tests and the demo.
pub fn agent_workspace(config: &Config, agent: &str) -> PathBuf {
    config.agent_dir(agent)
}

/// Aborts `task` when `stop` fires.
fn abort_on_stop(stop: &Shutdown, task: tokio::task::JoinHandle<()>) {
    let mut stop = stop.clone();
    tokio::spawn(async move {
        stop.stopped().await;
        task.abort();
    });
}

/// The fleet console's routes, when `[console] enabled`. A token variable
/// that is configured but not set stops the start: serving the page without
/// its token would open what the operator meant to close.
fn console_router(shared: &Arc<Shared>) -> anyhow::Result<Option<axum::Router>> {
    let c = &shared.config.console;
    if !c.enabled {
        return Ok(None);
    }
    let token = match &c.token_env {
        None => None,
        Some(env) => Some(read_token(&Some(env.clone())).ok_or_else(|| {
            anyhow::anyhow!(
                "[console] token_env names {env}, which is not set: export the console's token in it, or remove token_env (then bind `listen` to 127.0.0.1)"
            )
        })?),
    };
    Ok(Some(crate::console::router(
        Arc::new(console::AgentConsole(shared.clone())),
        token,
    )))
}
