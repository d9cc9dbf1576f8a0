//! The agent's Prometheus metrics, served on `/metrics` by [`crate::health`].
//!
//! One registry per agent process. Counters are cheap atomics, so the hot
//! paths (intake, routing, delivery) update them directly. Every counter
//! with labels is created at zero for each value it can take, so that
//! `increase()` and `rate()` alerts work before the first occurrence;
//! gauges of the outbox, approvals and the agent's state are set by the
//! housekeeping loop, the `process_*` figures at each scrape.

mod process;

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CategoryLabel {
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub commit: String,
}

/// The commit the binary was built from (`unknown` outside a git checkout; set by build.rs).
pub const COMMIT: &str = env!("SWITCHYARD_COMMIT");

/// `--version`: the version and the commit.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SWITCHYARD_COMMIT"),
    ")"
);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatabaseLabel {
    /// `store` (fleet.database) or `coordination` (fleet.coordination).
    pub database: String,
}

/// Every metric an agent exports. Cloning shares the same counters.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub events: Family<CategoryLabel, Counter>,
    pub unmatched: Counter,
    pub repeats_suppressed: Counter,
    pub inbox_items: Family<OutcomeLabel, Counter>,
    pub inbox_depth: Gauge,
    pub inbox_stale_temp_files: Gauge,
    pub intake_latency: Histogram,
    pub database_up: Family<DatabaseLabel, Gauge>,
    /// Outbox rows by state (pending, held, failed, ambiguous, ...).
    pub deliveries: Family<StateLabel, Gauge>,
    pub approvals_pending: Gauge,
    /// 1 for the agent's current state, 0 for the others.
    pub agent_state: Family<StateLabel, Gauge>,
    /// 1 while the kill switch holds this agent.
    pub kill_switch: Gauge,
    process: process::ProcessMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(|_| {})
    }
}

impl Metrics {
    /// The agent's metrics; `more` registers those other parts own (the
    /// outbox's delivery counters) in the same registry.
    pub fn new(more: impl FnOnce(&mut Registry)) -> Self {
        let mut root = Registry::default();
        let process = process::ProcessMetrics::default();
        process.register(&mut root);
        let registry = root.sub_registry_with_prefix("switchyard");
        let events = Family::<CategoryLabel, Counter>::default();
        let unmatched = Counter::default();
        let repeats_suppressed = Counter::default();
        let inbox_items = Family::<OutcomeLabel, Counter>::default();
        let inbox_depth = Gauge::default();
        let inbox_stale_temp_files = Gauge::default();
        let intake_latency = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        let database_up = Family::<DatabaseLabel, Gauge>::default();
        registry.register("events", "Events accepted, by category", events.clone());
        registry.register(
            "unmatched_events",
            "Events no rule matched (sent to routing.unmatched)",
            unmatched.clone(),
        );
        registry.register(
            "repeats_suppressed",
            "Repeats of the same event type, source and title counted instead of re-sent",
            repeats_suppressed.clone(),
        );
        registry.register(
            "inbox_items",
            "Inbox items handled, by outcome",
            inbox_items.clone(),
        );
        registry.register(
            "inbox_depth",
            "Items waiting in the agent's inbox",
            inbox_depth.clone(),
        );
        registry.register(
            "inbox_stale_temp_files",
            "Temporary (dot-named) files in the inbox untouched for fleet.stale_temp_after",
            inbox_stale_temp_files.clone(),
        );
        registry.register(
            "intake_latency_seconds",
            "Time from claiming an inbox item to its event being durably stored",
            intake_latency.clone(),
        );
        registry.register(
            "database_up",
            "1 while the agent reaches the database (store: fleet.database, coordination: fleet.coordination), 0 while it does not",
            database_up.clone(),
        );
        let deliveries = Family::<StateLabel, Gauge>::default();
        let approvals_pending = Gauge::default();
        let agent_state = Family::<StateLabel, Gauge>::default();
        let kill_switch = Gauge::default();
        let build_info = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "deliveries",
            "Outbox rows by state, as of the last heartbeat",
            deliveries.clone(),
        );
        registry.register(
            "approvals_pending",
            "Approval requests waiting for a human, as of the last heartbeat",
            approvals_pending.clone(),
        );
        registry.register(
            "agent_state",
            "1 for the agent's current state (idle, busy, paused, killed), 0 for the others",
            agent_state.clone(),
        );
        registry.register(
            "kill_switch",
            "1 while the kill switch holds this agent",
            kill_switch.clone(),
        );
        registry.register(
            "build_info",
            "1, labelled with the version and the commit the binary was built from",
            build_info.clone(),
        );
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
                commit: COMMIT.into(),
            })
            .set(1);
        // Every label value an alert may name, at zero from the start.
        for c in switchyard_routing::Category::KNOWN {
            let _ = events.get_or_create(&CategoryLabel {
                category: c.as_str().into(),
            });
        }
        for outcome in ["done", "failed"] {
            let _ = inbox_items.get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            });
        }
        for state in crate::store::DeliveryState::ALL {
            let _ = deliveries.get_or_create(&StateLabel {
                state: state.as_str().into(),
            });
        }
        for state in crate::coord::AgentState::ALL {
            let _ = agent_state.get_or_create(&StateLabel {
                state: state.as_str().into(),
            });
        }
        more(registry);
        Metrics {
            registry: Arc::new(root),
            deliveries,
            approvals_pending,
            agent_state,
            kill_switch,
            process,
            events,
            unmatched,
            repeats_suppressed,
            inbox_items,
            inbox_depth,
            inbox_stale_temp_files,
            intake_latency,
            database_up,
        }
    }

    /// The text exposition format Prometheus scrapes.
    pub fn render(&self) -> String {
        self.process.refresh();
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn count_event(&self, category: &str) {
        self.events
            .get_or_create(&CategoryLabel {
                category: category.to_string(),
            })
            .inc();
    }

    /// The agent's state: 1 for it, 0 for every other.
    pub fn set_agent_state(&self, now: crate::coord::AgentState) {
        for state in crate::coord::AgentState::ALL {
            self.agent_state
                .get_or_create(&StateLabel {
                    state: state.as_str().into(),
                })
                .set(i64::from(state == now));
        }
    }

    pub fn count_inbox(&self, outcome: &str) {
        self.inbox_items
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_metrics_registered_by_other_parts() {
        let extra = Counter::<u64>::default();
        let registered = extra.clone();
        let m =
            Metrics::new(move |r| r.register("extra", "registered by another part", registered));
        m.count_event("alert");
        extra.inc();
        let text = m.render();
        assert!(
            text.contains("switchyard_events_total{category=\"alert\"} 1"),
            "{text}"
        );
        assert!(text.contains("switchyard_extra_total 1"), "{text}");
        assert!(text.contains("# EOF"));
    }
}
