//! Delivery counters for `/metrics` (prometheus-client): messages sent,
//! failed, retried, ambiguous, coalesced and 429s received, by platform, and
//! the time from enqueue to sent. Tests read the same counters.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use switchyard_routing::Platform;

type Labels = Vec<(String, String)>;

fn labels(platform: Platform) -> Labels {
    vec![("platform".to_string(), platform.as_str().to_string())]
}

fn latency_histogram() -> Histogram {
    // 10 ms .. ~5.5 min: from an instant send to a long outage.
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

/// Prometheus-friendly delivery counters, shared by the outbox and `/metrics`.
#[derive(Debug)]
pub struct DeliveryStats {
    sent: Family<Labels, Counter>,
    failed: Family<Labels, Counter>,
    retried: Family<Labels, Counter>,
    ambiguous: Family<Labels, Counter>,
    coalesced: Family<Labels, Counter>,
    rate_limited_429: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Default for DeliveryStats {
    fn default() -> Self {
        let stats = DeliveryStats {
            sent: Family::default(),
            failed: Family::default(),
            retried: Family::default(),
            ambiguous: Family::default(),
            coalesced: Family::default(),
            rate_limited_429: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        };
        // Every counter exported from zero, for both platforms: an
        // `increase()` alert needs the series before the first occurrence.
        for platform in [Platform::Discord, Platform::Telegram] {
            let l = labels(platform);
            for family in [
                &stats.sent,
                &stats.failed,
                &stats.retried,
                &stats.ambiguous,
                &stats.coalesced,
                &stats.rate_limited_429,
            ] {
                let _ = family.get_or_create(&l);
            }
            let _ = stats.latency.get_or_create(&l);
        }
        stats
    }
}

impl DeliveryStats {
    /// Register every metric under `switchyard_delivery_*`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("delivery");
        r.register(
            "sent",
            "Messages accepted by the platform",
            self.sent.clone(),
        );
        r.register(
            "failed",
            "Messages given up on (retry budget spent or refused)",
            self.failed.clone(),
        );
        r.register(
            "retried",
            "Attempts that will be retried",
            self.retried.clone(),
        );
        r.register(
            "ambiguous",
            "Sends whose outcome is unknown, not replayed",
            self.ambiguous.clone(),
        );
        r.register(
            "coalesced",
            "Messages merged into a summary",
            self.coalesced.clone(),
        );
        r.register(
            "rate_limited_429",
            "429 answers received",
            self.rate_limited_429.clone(),
        );
        r.register(
            "latency_seconds",
            "From enqueued to sent",
            self.latency.clone(),
        );
    }

    pub(crate) fn on_sent(&self, platform: Platform, latency_secs: f64) {
        self.sent.get_or_create(&labels(platform)).inc();
        self.latency
            .get_or_create(&labels(platform))
            .observe(latency_secs.max(0.0));
    }
    pub(crate) fn on_failed(&self, platform: Platform) {
        self.failed.get_or_create(&labels(platform)).inc();
    }
    pub(crate) fn on_retry(&self, platform: Platform) {
        self.retried.get_or_create(&labels(platform)).inc();
    }
    pub(crate) fn on_ambiguous(&self, platform: Platform) {
        self.ambiguous.get_or_create(&labels(platform)).inc();
    }
    pub(crate) fn on_coalesced(&self, platform: Platform, n: u64) {
        self.coalesced.get_or_create(&labels(platform)).inc_by(n);
    }
    pub(crate) fn on_429(&self, platform: Platform) {
        self.rate_limited_429.get_or_create(&labels(platform)).inc();
    }

    pub fn sent(&self, platform: Platform) -> u64 {
        self.sent.get_or_create(&labels(platform)).get()
    }
    pub fn failed(&self, platform: Platform) -> u64 {
        self.failed.get_or_create(&labels(platform)).get()
    }
    pub fn retried(&self, platform: Platform) -> u64 {
        self.retried.get_or_create(&labels(platform)).get()
    }
    pub fn ambiguous(&self, platform: Platform) -> u64 {
        self.ambiguous.get_or_create(&labels(platform)).get()
    }
    pub fn coalesced(&self, platform: Platform) -> u64 {
        self.coalesced.get_or_create(&labels(platform)).get()
    }
    pub fn rate_limited_429(&self, platform: Platform) -> u64 {
        self.rate_limited_429.get_or_create(&labels(platform)).get()
    }
}
