//! An inbox file, as any producer on the host may drop it: every kind goes
//! through `coord::parse_item`, then through the pure part of what the agent
//! does with it (agent/intake.rs):
//! - events: `EventDraft::validate`, then the delivery rendering both sinks
//!   apply (`render::discord_embed`, `render::telegram_parts`, with the footer
//!   built by `OutgoingMessage::footer`);
//! - tasks: `TaskSpec::parse` of the item re-serialised (agent/runner.rs);
//! - approval requests and decisions: the typed items and their seals
//!   (approvals/intake.rs), and `expires_in` through `config::parse_duration`.
#![no_main]

use std::sync::LazyLock;

use chrono::Utc;
use libfuzzer_sys::fuzz_target;
use switchyard::approvals::{DecisionItem, FleetSecret, RequestItem};
use switchyard::coord::{InboxItem, parse_item};
use switchyard::delivery::{OutgoingMessage, render};
use switchyard::tasks::TaskSpec;
use switchyard_routing::EventId;

static SECRET: LazyLock<FleetSecret> =
    LazyLock::new(|| FleetSecret::new("f".repeat(40)).expect("40 bytes is long enough"));

fuzz_target!(|data: &[u8]| {
    let item = match parse_item(data) {
        Ok(item) => item,
        Err(e) => {
            let _ = e.to_string();
            let _ = e.to_reason();
            return;
        }
    };
    let _ = item.kind();
    match item {
        InboxItem::Event(draft) => {
            let now = Utc::now();
            match draft.validate(now, EventId::generate(now, 0)) {
                Ok(event) => {
                    let m = OutgoingMessage {
                        delivery_id: format!("dlv_{}", event.event_id.as_str()),
                        nonce: switchyard::delivery::sink::nonce_for(event.event_id.as_str()),
                        category: event.category.clone(),
                        severity: event.severity,
                        source: event.source.clone(),
                        event_type: event.event_type.clone(),
                        title: event.title.clone(),
                        body: event.body.clone(),
                        occurred_at: event.timestamp,
                        parts_sent: 0,
                    };
                    let footer = m.footer();
                    let _ = render::discord_embed(m.severity, &m.title, &m.body, &footer);
                    let _ = render::telegram_parts(m.severity, &m.title, &m.body, &footer);
                    let _ = serde_json::to_vec(&event);
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
        InboxItem::Task(value) => {
            let bytes = serde_json::to_vec(&value).expect("a Value serialises");
            if let Err(e) = TaskSpec::parse(&bytes) {
                let _ = e.to_string();
            }
        }
        InboxItem::ApprovalRequest(value) => {
            if let Ok(r) = serde_json::from_value::<RequestItem>(value) {
                if let Some(t) = &r.expires_in {
                    let _ = switchyard::config::parse_duration(t);
                }
                let _ = r.seal_is_valid(&SECRET, "alpha");
            }
        }
        InboxItem::ApprovalDecision(value) => {
            if let Ok(d) = serde_json::from_value::<DecisionItem>(value) {
                let _ = d.seal_is_valid(&SECRET, "alpha");
            }
        }
        InboxItem::Chat(value) => {
            let _ = serde_json::to_vec(&value);
        }
    }
});
