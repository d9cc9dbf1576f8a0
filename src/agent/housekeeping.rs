//! Housekeeping, once a tick: the heartbeat, the kill switch (kept in the
//! readiness flag intake reads), the circuit breaker, schedules, parked
//! tasks, peers, mute notices and digest windows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::Shared;
use super::events::post_event;
use super::mutes::{digest_windows, mute_lifecycle};
use super::peers::{PeerWatch, watch_peers};
use super::tasks::resume_parked_tasks;
use crate::coord::{AgentState, off_worker};
use crate::health::Readiness;
use crate::shutdown::Shutdown;

/// Once a second: heartbeat, leases, the kill switch, mute notices, held
/// digests and digest windows.
pub(super) async fn housekeeping_loop(shared: Arc<Shared>, stop: Shutdown) -> anyhow::Result<()> {
    let mut last_beat = Instant::now() - shared.config.fleet.heartbeat_interval;
    let mut digest_due: BTreeMap<switchyard_routing::Category, Instant> = BTreeMap::new();
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
    let inbox = crate::coord::Inbox::open(&shared.config.fleet.workspace, &shared.agent.name)?;
    let mut reported_temporaries: std::collections::BTreeSet<String> = Default::default();
    let mut tick = stop.ticker(Duration::from_millis(500));
    while tick.tick().await {
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
            let depth = inbox.depth().unwrap_or(0);
            let stale = inbox.stale_temporaries(shared.config.fleet.stale_temp_after);
            for name in stale.iter().filter(|n| !reported_temporaries.contains(*n)) {
                warn!(inbox = %inbox.inbox_dir().display(), file = %name,
                      untouched_for = %humantime::format_duration(shared.config.fleet.stale_temp_after),
                      "a temporary file has sat in the inbox untouched; it is not taken (its producer never renamed it to <id>.json): finish or remove it");
            }
            reported_temporaries = stale.iter().cloned().collect();
            shared.metrics.inbox_depth.set(depth as i64);
            shared
                .metrics
                .inbox_stale_temp_files
                .set(stale.len() as i64);
            if let Err(e) = off_worker(|| shared.beat(state, depth, stale)) {
                warn!(error = format!("{e:#}"), "heartbeat not written");
            }
            gauges(&shared, state, killed).await;
        }
        if let Err(e) = watch_breaker(&shared, &status, &mut paused_since).await {
            warn!(error = format!("{e:#}"), "breaker step failed");
        }
        let reloaded = shared
            .reloaded_schedules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(schedules) = reloaded {
            let names = scheduler.replace(&schedules, Utc::now());
            info!(schedules = ?names, "schedules reloaded");
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

/// The gauges a scrape cannot compute itself: the outbox by state, the
/// approvals waiting, the agent's state and the kill switch.
async fn gauges(shared: &Shared, state: AgentState, killed: bool) {
    let m = &shared.metrics;
    m.kill_switch.set(i64::from(killed));
    m.set_agent_state(state);
    match shared.store.delivery_counts().await {
        Ok(counts) => {
            for st in crate::store::DeliveryState::ALL {
                let n = counts.get(&st).copied().unwrap_or(0) as i64;
                m.deliveries
                    .get_or_create(&crate::metrics::StateLabel {
                        state: st.as_str().into(),
                    })
                    .set(n);
            }
        }
        Err(e) => tracing::debug!(
            error = format!("{e:#}"),
            "cannot count the outbox for /metrics"
        ),
    }
    match shared
        .store
        .approvals(Some(crate::approvals::ApprovalStatus::Pending))
        .await
    {
        Ok(pending) => {
            m.approvals_pending.set(pending.len() as i64);
        }
        Err(e) => tracing::debug!(
            error = format!("{e:#}"),
            "cannot count pending approvals for /metrics"
        ),
    }
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
