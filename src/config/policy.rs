//! `[policy]` and `[approvals]`: the risk score at which a human must
//! approve, how an approval request waits, reminds and escalates, and which
//! keys sign the decisions.

use std::time::Duration;

use switchyard_routing::Destination;

use super::keys::{DEFAULT_SIGNING_KEY_ENV, DecisionKey};
use super::raw::{RawApprovals, RawPolicy};
use super::routes::Destinations;
use super::telegram::TelegramSettings;
use super::validator::Validator;

#[derive(Debug, Clone)]
pub struct PolicySettings {
    pub approval_threshold: u8,
}

/// `[approvals]`: how long a request waits, its escalation ladder, and
/// when two distinct approvers are needed.
#[derive(Debug, Clone)]
pub struct ApprovalSettings {
    /// A request nobody answers in time expires (and counts as denied).
    pub expires: Duration,
    /// A reminder in Telegram after this long, if still pending.
    pub remind_after: Option<Duration>,
    /// A ping to `escalate_to` after this long, if still pending.
    pub escalate_after: Option<Duration>,
    pub escalate_to: Option<Destination>,
    /// At or above this risk score two distinct approvers must approve.
    pub two_approvers_at_risk: Option<u8>,
    /// The `[telegram.chats]` alias prompts go to.
    pub chat: String,
    /// The public keys a decision forwarded between agents must be signed
    /// with. Empty: decisions are sealed with the fleet secret only.
    pub decision_keys: Vec<DecisionKey>,
    /// Where the agent that prompts (the Telegram owner) reads its signing
    /// key from, when `decision_keys` is set.
    pub signing_key_env: String,
}

impl ApprovalSettings {
    /// How many distinct approvers a request of this risk needs.
    pub fn required_approvers(&self, risk: u8) -> u8 {
        match self.two_approvers_at_risk {
            Some(at) if risk >= at => 2,
            _ => 1,
        }
    }
}

pub(super) fn policy(v: &mut Validator, raw: RawPolicy) -> PolicySettings {
    PolicySettings {
        approval_threshold: match raw.approval_threshold.unwrap_or(60) {
            t @ 0..=100 => t as u8,
            t => {
                v.problem("policy.approval_threshold", format!("{t} is outside 0-100"));
                60
            }
        },
    }
}

pub(super) fn approvals(
    v: &mut Validator,
    a: &RawApprovals,
    telegram: Option<&TelegramSettings>,
    dests: Destinations<'_>,
) -> ApprovalSettings {
    let expires = v.duration("approvals.expires", a.expires.clone(), "30m");
    let mut step = |key: &str, value: &Option<String>, default: &str| {
        let d = v.duration(key, value.clone(), default);
        (d < expires).then_some(d)
    };
    let remind_after = step("approvals.remind_after", &a.remind_after, "10m");
    let escalate_after = step("approvals.escalate_after", &a.escalate_after, "20m");
    let escalate_to = a
        .escalate_to
        .as_deref()
        .and_then(|d| match d.parse::<Destination>() {
            Ok(dest) => {
                dests.check(v, "approvals.escalate_to", &dest);
                Some(dest)
            }
            Err(e) => {
                v.problem("approvals.escalate_to", e.to_string());
                None
            }
        });
    let two_approvers_at_risk = match a.two_approvers_at_risk {
        None => None,
        Some(t @ 0..=100) => Some(t as u8),
        Some(t) => {
            v.problem(
                "approvals.two_approvers_at_risk",
                format!("{t} is outside 0-100"),
            );
            None
        }
    };
    let chats: Vec<&String> = telegram
        .map(|t| t.chats.keys().collect())
        .unwrap_or_default();
    let chat = match &a.chat {
        Some(c) => {
            if telegram.is_some() && !chats.contains(&c) {
                v.problem(
                    "approvals.chat",
                    format!("{c:?} is not in [telegram.chats]: prompts go to a configured chat"),
                );
            }
            c.clone()
        }
        None if chats.iter().any(|c| *c == "operator") => "operator".into(),
        None => chats
            .first()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "operator".into()),
    };
    let decision_keys = a
        .decision_keys
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, text)| match text.parse::<DecisionKey>() {
            Ok(k) => Some(k),
            Err(e) => {
                v.problem(
                    &format!("approvals.decision_keys[{i}]"),
                    format!("{text:?} {e}"),
                );
                None
            }
        })
        .collect();
    let signing_key_env = a
        .signing_key_env
        .clone()
        .unwrap_or_else(|| DEFAULT_SIGNING_KEY_ENV.into());
    v.env_name("approvals.signing_key_env", &signing_key_env);
    ApprovalSettings {
        expires,
        remind_after,
        escalate_after,
        escalate_to,
        two_approvers_at_risk,
        chat,
        decision_keys,
        signing_key_env,
    }
}
