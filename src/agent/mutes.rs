//! Mutes in a running agent: the notices when a mute is made and before it
//! ends (the announcer posts them), and the digests of held messages, when a
//! mute ends or a digest window closes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use switchyard_routing::{Category, Destination, Event, HeldSummary, Hold, MuteId};
use tracing::info;

use super::Shared;
use crate::coord::off_worker;

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
    let active: std::collections::BTreeSet<&MuteId> = mutes
        .iter()
        .filter(|m| m.expires_at > now)
        .map(|m| &m.id)
        .collect();
    for hold in shared.store.holds().await? {
        if let Hold::Mute(id) = &hold
            && !active.contains(id)
        {
            post_held_digest(shared, &hold, "While muted", now).await?;
        }
    }
    Ok(())
}

async fn post_held_digest(
    shared: &Shared,
    hold: &Hold,
    header: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let released = shared.store.release_held(hold, now).await?;
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
        info!(hold = %hold, destination = %dest, count = events.len(), "posted a digest of held messages");
    }
    shared.outbox.wake();
    Ok(())
}

/// Ambient categories configured under `[routing.digest]` are held for their
/// window, then posted as one message.
pub(super) async fn digest_windows(
    shared: &Shared,
    due: &mut BTreeMap<Category, Instant>,
) -> anyhow::Result<()> {
    let now = Utc::now();
    for hold in shared.store.holds().await? {
        let Hold::Digest(category) = &hold else {
            continue;
        };
        let window = shared
            .config
            .routing
            .digest
            .get(category)
            .copied()
            .unwrap_or(Duration::ZERO);
        let at = *due
            .entry(category.clone())
            .or_insert_with(|| Instant::now() + window);
        if Instant::now() >= at {
            due.remove(category);
            post_held_digest(shared, &hold, &format!("Digest of {category}"), now).await?;
        }
    }
    Ok(())
}
