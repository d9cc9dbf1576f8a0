//! An event's way through the agent: route → repeat → plan (mutes, digest
//! windows) → store with its deliveries in one transaction, then wake the
//! outbox. Inbox events, the agent's own notices and the GitHub monitor's
//! findings all take this one path.

use anyhow::Context as _;
use chrono::Utc;
use serde_json::json;
use switchyard_routing::{Event, Hold, RepeatLimiter, RepeatVerdict, RouteInput};
use tracing::info;

use super::Shared;
use crate::files::{Attachable, Attached, fit};
use crate::store::{NewDelivery, NewDeliveryState, Recorded};

/// A delivery's state as the item's result file says it (a stable format:
/// `pending`, `held (<mute id>)`, `held (digest:<category>)`).
fn state_label(state: &NewDeliveryState) -> String {
    match state {
        NewDeliveryState::Pending => "pending".into(),
        NewDeliveryState::Held {
            hold: Hold::Mute(id),
        } => format!("held ({id})"),
        NewDeliveryState::Held {
            hold: Hold::Digest(category),
        } => format!("held (digest:{category})"),
    }
}

/// Validate and route an event the agent makes itself (notices, task
/// results): the same path as an inbox event.
pub(super) async fn post_event(
    shared: &Shared,
    draft: switchyard_routing::EventDraft,
    repeat: Option<&mut RepeatLimiter>,
) -> anyhow::Result<serde_json::Value> {
    let event = draft
        .validate(
            Utc::now(),
            switchyard_routing::EventId::generate(Utc::now(), rand::random()),
        )
        .map_err(|e| anyhow::anyhow!(e))?;
    handle_event(shared, event, repeat).await
}

/// Read the files an item names, as this agent may attach them. A refused
/// path fails the item (the error is a [`crate::files::Refused`], which the
/// intake reports as such); nothing is stored or sent.
pub(super) async fn read_attachments(
    shared: &Shared,
    paths: &[switchyard_routing::AttachmentPath],
) -> anyhow::Result<Vec<Attached>> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let attachable = Attachable::new(
        &shared.config.fleet.workspace,
        &shared.config.files,
        &shared.agent.name,
    );
    let paths = paths.to_vec();
    Ok(
        tokio::task::spawn_blocking(move || attachable.read_all(&paths))
            .await
            .context("the attachment reader stopped")??,
    )
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
    // One snapshot for the whole event: a reload meanwhile applies to the next.
    let routing = shared.routing.get();
    let decision = routing.router.route(&input);
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
    let attached = read_attachments(shared, &event.attachments).await?;
    let mutes = shared.mutes.current(&shared.status)?;
    let deliveries: Vec<NewDelivery> =
        switchyard_routing::plan(&decision, &input, &mutes, &routing.settings.digest, now)
            .into_iter()
            .map(|p| NewDelivery {
                files: fit(p.destination.platform, &attached),
                destination: p.destination,
                rule: p.rule,
                state: match p.hold {
                    Some(hold) => NewDeliveryState::Held { hold },
                    None => NewDeliveryState::Pending,
                },
            })
            .collect();
    let recorded = shared.store.record_event(&event, &deliveries, now).await?;
    let routed: Vec<serde_json::Value> = deliveries
        .iter()
        .map(|d| {
            json!({
                "destination": d.destination.to_string(),
                "rule": d.rule,
                "state": state_label(&d.state),
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
            info!(event_id = %event.event_id, category = %event.category, targets = deliveries.len(), files = attached.len(), "event stored");
            let mut result = json!({
                "event_id": event.event_id, "status": "routed", "unmatched": decision.unmatched,
                "routed": routed, "delivery_ids": delivery_ids,
            });
            if !attached.is_empty() {
                result["attachments"] = attachments_record(&attached, &deliveries);
            }
            Ok(result)
        }
    }
}

/// What became of each named file, for the item's result: its size and
/// digest when read, and, per destination, whether it stayed behind and why.
fn attachments_record(attached: &[Attached], deliveries: &[NewDelivery]) -> serde_json::Value {
    attached
        .iter()
        .enumerate()
        .map(|(i, a)| match a {
            Attached::Read(f) => {
                let behind: serde_json::Map<String, serde_json::Value> = deliveries
                    .iter()
                    .filter_map(|d| match d.files.get(i) {
                        Some(Attached::LeftBehind { why, .. }) => {
                            Some((d.destination.to_string(), json!(why)))
                        }
                        _ => None,
                    })
                    .collect();
                let mut v = json!({"path": f.path, "size": f.size(), "sha256": f.sha256, "content_type": f.content_type});
                if !behind.is_empty() {
                    v["left_behind"] = behind.into();
                }
                v
            }
            Attached::LeftBehind { path, why } => json!({"path": path, "left_behind": why}),
        })
        .collect()
}
