//! Mutes in a running agent: the notices when a mute is made and before it
//! ends (the announcer posts them), and the digests of held messages, when a
//! mute ends or a digest window closes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use switchyard_routing::{Category, Destination, Event, HeldSummary};
use tracing::info;

use super::Shared;
use super::events::DIGEST_KEY_PREFIX;
use super::housekeeping::off_worker;

/// Announce mutes (the fleet's first agent does that, once per mute) and
/// post the "while muted" digest of this agent's held messages when a mute ends.
pub(super) async fn mute_lifecycle(
    shared: &Shared,
    status: &crate::coord::Status,
) -> anyhow::Result<()> {
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
pub(super) async fn digest_windows(
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
