//! Peers: the announcer raises an alert when a peer's heartbeat goes stale
//! and a system event when it comes back. The announcer is the first
//! configured agent while it is live; when it is down the next live agent
//! takes over (and says so once) until it is back. An agent whose approvals
//! wait for the Telegram owner says in #alerts why, while the owner is down.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::Utc;
use switchyard_routing::RepeatLimiter;
use tracing::{info, warn};

use super::Shared;
use super::events::post_event;

/// Which peers the announcer has reported stale, and since when it watches.
pub(super) struct PeerWatch {
    stale: std::collections::BTreeSet<String>,
    since: Instant,
    repeat: RepeatLimiter,
    /// This agent announces in place of the first configured one.
    acting: bool,
    /// The Telegram owner is down and this agent said so.
    owner_down: bool,
}

impl PeerWatch {
    pub(super) fn new(shared: &Shared) -> PeerWatch {
        PeerWatch {
            stale: Default::default(),
            since: Instant::now(),
            repeat: RepeatLimiter::new(shared.routing.get().settings.repeat_interval),
            acting: false,
            owner_down: false,
        }
    }
}

/// The announcer raises an `alert` when a peer's heartbeat goes stale and a
/// `system` event when it comes back. Peers get `stale_after` after this
/// agent starts to write their first beat.
pub(super) async fn watch_peers(
    shared: &Shared,
    status: &crate::coord::Status,
    watch: &mut PeerWatch,
) -> anyhow::Result<()> {
    if watch.since.elapsed() < shared.config.fleet.stale_after {
        return Ok(());
    }
    let now = Utc::now();
    let stale_after = shared.config.fleet.stale_after;
    watch_telegram_owner(shared, status, watch, now).await?;
    if !shared.is_announcer(status) {
        if watch.acting {
            watch.acting = false;
            info!("the first agent is back: it announces again");
        }
        // Whoever announces now reports what this one saw; start afresh
        // if this agent takes over later.
        watch.stale.clear();
        return Ok(());
    }
    let first = shared.config.agents.first().map(|a| a.name.to_string());
    let acting = first.as_deref() != Some(shared.agent.name.as_str());
    if acting && !watch.acting {
        watch.acting = true;
        let first = first.unwrap_or_default();
        warn!(instead_of = %first, "taking over the fleet's announcements");
        let draft = switchyard_routing::EventDraft {
            event_id: Some(format!(
                "evt_announcer_{}_{}",
                shared.agent.name,
                now.timestamp_millis()
            )),
            event_type: Some("fleet.announcer_takeover".into()),
            category: Some("alert".into()),
            severity: Some("warning".into()),
            source: Some(format!("agent:{}", shared.agent.name)),
            title: Some(format!(
                "{} speaks for the fleet while {first} is down",
                shared.agent.name
            )),
            body: Some(format!(
                "{first} is not responding, so {} reports stale peers and posts mute notices until {first} is back.",
                shared.agent.name
            )),
            ..Default::default()
        };
        post_event(shared, draft, Some(&mut watch.repeat)).await?;
    }
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

/// While the agent that owns Telegram is down, this agent's approval
/// requests wait (durably, in the owner's inbox and in this agent's
/// database): say so once in #alerts, and again when the owner is back.
async fn watch_telegram_owner(
    shared: &Shared,
    status: &crate::coord::Status,
    watch: &mut PeerWatch,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    let Some(owner) = shared.config.telegram_owner() else {
        return Ok(());
    };
    if owner.name == shared.agent.name {
        return Ok(());
    }
    let down = !status.is_live(&owner.name, now, shared.config.fleet.stale_after);
    if down == watch.owner_down {
        return Ok(());
    }
    let waiting = shared
        .store
        .approvals(Some(crate::approvals::ApprovalStatus::Pending))
        .await?
        .into_iter()
        .filter(|a| a.reply_to.is_none())
        .count();
    if down && waiting == 0 {
        // Nothing waits; say so only once something does.
        return Ok(());
    }
    watch.owner_down = down;
    let (event_type, category, title, body) = if down {
        warn!(owner = %owner.name, waiting, "the Telegram owner is down: approvals wait");
        (
            "fleet.approvals_waiting",
            "alert",
            format!(
                "Approvals wait: {} (which owns Telegram) is down",
                owner.name
            ),
            format!(
                "{waiting} approval request(s) of {} wait, kept in its database and in {}'s inbox; they are prompted in Telegram when {} is back, or decide them from the shell with `switchyard approve ID` once it is.",
                shared.agent.name, owner.name, owner.name
            ),
        )
    } else {
        info!(owner = %owner.name, "the Telegram owner is back: approvals flow again");
        (
            "fleet.approvals_flowing",
            "system",
            format!("Approvals flow again: {} is back", owner.name),
            "Waiting requests are being prompted in Telegram.".to_string(),
        )
    };
    let draft = switchyard_routing::EventDraft {
        event_id: Some(format!(
            "evt_{}_{}_{}",
            event_type.replace('.', "_"),
            shared.agent.name,
            now.timestamp_millis()
        )),
        event_type: Some(event_type.into()),
        category: Some(category.into()),
        severity: Some(if down { "warning" } else { "info" }.into()),
        source: Some(format!("agent:{}", shared.agent.name)),
        title: Some(title),
        body: Some(body),
        ..Default::default()
    };
    post_event(shared, draft, Some(&mut watch.repeat)).await?;
    Ok(())
}
