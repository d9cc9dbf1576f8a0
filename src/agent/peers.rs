//! Peers: the announcer raises an alert when a peer's heartbeat goes stale
//! and a system event when it comes back.

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
}

impl PeerWatch {
    pub(super) fn new(shared: &Shared) -> PeerWatch {
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
pub(super) async fn watch_peers(
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
