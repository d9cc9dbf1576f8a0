//! An event's way through the agent: route → repeat → plan (mutes, digest
//! windows) → store with its deliveries in one transaction, then wake the
//! outbox. Inbox events, the agent's own notices and the GitHub monitor's
//! findings all take this one path.

use chrono::Utc;
use serde_json::json;
use switchyard_routing::{Event, RepeatLimiter, RepeatVerdict, RouteInput, holding_mute};
use tracing::info;

use super::Shared;
use crate::store::{NewDelivery, NewDeliveryState, Recorded};

/// Held deliveries waiting for a digest window carry this prefix instead of a mute id.
pub(super) const DIGEST_KEY_PREFIX: &str = "digest:";

/// Validate and route an event the agent makes itself (notices, task
/// results): the same path as an inbox event.
pub(super) async fn post_event(
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
pub(super) async fn handle_event(
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
