//! The agent's Prometheus metrics, served on `/metrics` by [`crate::health`].
//!
//! One registry per agent process. Counters are cheap atomics, so the hot
//! paths (intake, routing, delivery) update them directly.

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
        let mut registry = Registry::with_prefix("switchyard");
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
        more(&mut registry);
        Metrics {
            registry: Arc::new(registry),
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
