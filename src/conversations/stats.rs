//! Conversation counters for `/metrics` (`switchyard_conversations_*`):
//! turns by how they ended, responder failures by kind, tokens spent,
//! edits made, refusals (budgets, strangers, the bot-pair guard). Tests
//! read the same counters.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::turn::{TurnState, Usage};

type Labels = Vec<(String, String)>;

fn label(name: &str, value: &str) -> Labels {
    vec![(name.to_string(), value.to_string())]
}

#[derive(Debug, Default)]
pub struct ConversationStats {
    received: Counter,
    ended: Family<Labels, Counter>,
    responder_errors: Family<Labels, Counter>,
    tokens: Counter,
    edits: Counter,
    not_permitted: Counter,
    budget_refused: Counter,
    pair_paused: Counter,
    spent_today: Gauge,
}

impl ConversationStats {
    pub fn register(&self, registry: &mut Registry) {
        // Every label value at zero from the start, for `increase()` alerts.
        for state in TurnState::ALL.into_iter().filter(|s| s.is_final()) {
            let _ = self.ended.get_or_create(&label("state", state.as_str()));
        }
        for kind in crate::conversations::ResponderError::KINDS {
            let _ = self.responder_errors.get_or_create(&label("kind", kind));
        }
        let r = registry.sub_registry_with_prefix("conversations");
        r.register(
            "turns_received",
            "Addressed messages recorded as turns",
            self.received.clone(),
        );
        r.register("turns_ended", "Turns by how they ended", self.ended.clone());
        r.register(
            "responder_errors",
            "Answers that failed, by kind",
            self.responder_errors.clone(),
        );
        r.register(
            "tokens",
            "Tokens spent on answers (prompt and completion)",
            self.tokens.clone(),
        );
        r.register("edits", "Edits of streamed answers", self.edits.clone());
        r.register(
            "not_permitted",
            "Messages from people who may not talk to the agents",
            self.not_permitted.clone(),
        );
        r.register(
            "budget_refused",
            "Turns refused because a token budget was spent",
            self.budget_refused.clone(),
        );
        r.register(
            "bot_pair_paused",
            "Turns refused by the bot-pair guard",
            self.pair_paused.clone(),
        );
        r.register(
            "tokens_spent_today",
            "Tokens this agent spent since 00:00 UTC (when a daily budget is set)",
            self.spent_today.clone(),
        );
    }

    pub(super) fn received(&self) {
        self.received.inc();
    }
    pub(super) fn ended(&self, state: TurnState) {
        self.ended
            .get_or_create(&label("state", state.as_str()))
            .inc();
    }
    pub(super) fn answered(&self, usage: Usage, edits: u32) {
        self.ended(TurnState::Answered);
        self.tokens.inc_by(usage.total());
        self.edits.inc_by(u64::from(edits));
    }
    pub(super) fn responder_error(&self, kind: &str) {
        self.responder_errors
            .get_or_create(&label("kind", kind))
            .inc();
    }
    pub(super) fn not_permitted(&self) {
        self.not_permitted.inc();
    }
    pub(super) fn budget_refused(&self) {
        self.budget_refused.inc();
    }
    pub(super) fn pair_paused(&self) {
        self.pair_paused.inc();
    }
    pub(super) fn set_spent(&self, tokens: u64) {
        self.spent_today
            .set(i64::try_from(tokens).unwrap_or(i64::MAX));
    }

    pub fn turns_ended(&self, state: TurnState) -> u64 {
        self.ended
            .get_or_create(&label("state", state.as_str()))
            .get()
    }
    pub fn edits(&self) -> u64 {
        self.edits.get()
    }
}
