//! The two approval items as they cross inboxes (DESIGN.md 3.3): one
//! `RequestItem` and one `DecisionItem`, parsed from what producers drop and
//! written by this agent when it forwards a request or answers one. What a
//! seal covers is defined here, once, for both the writer and the reader.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::seal::{FleetSecret, digest};
use super::{Approval, ApprovalStatus};
use crate::config::keys::{DecisionKey, SigningKey};

const REQUEST_DOMAIN: &str = "switchyard approval_request v1";
const DECISION_DOMAIN: &str = "switchyard approval_decision v1";

/// The `kind` field of a request item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestKind {
    #[serde(rename = "approval_request")]
    ApprovalRequest,
}

/// The `kind` field of a decision item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecisionKind {
    #[serde(rename = "approval_decision")]
    ApprovalDecision,
}

/// An `approval_request` item: a question for a human. Anyone may ask; a
/// request that names `reply_to` (forwarded by a peer, which wants the
/// decision back in its inbox) must carry that peer's `seal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<RequestKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub summary: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default)]
    pub risk: u8,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// `30m`, `2h`: humantime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
    /// The agent whose inbox gets the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
}

/// The fields of an approval that a decision is about: what the human was
/// shown. Both sides digest their own copy; a decision whose digest differs
/// from the requester's record is about something else.
#[derive(Serialize)]
struct Subject<'a> {
    id: &'a str,
    task_id: Option<&'a str>,
    summary: &'a str,
    detail: &'a str,
    risk: u8,
    reasons: &'a [String],
    requested_by: &'a str,
}

/// The digest of what `a` asks.
pub fn subject_digest(a: &Approval) -> String {
    digest(&Subject {
        id: &a.id,
        task_id: a.task_id.as_deref(),
        summary: &a.summary,
        detail: &a.detail,
        risk: a.risk,
        reasons: &a.reasons,
        requested_by: &a.requested_by,
    })
}

impl RequestItem {
    /// The sealed request a peer hands to `owner` for `a`, which it keeps.
    pub fn forward(
        a: &Approval,
        reply_to: &str,
        expires_in: Duration,
        owner: &str,
        secret: &FleetSecret,
    ) -> RequestItem {
        let mut item = RequestItem {
            kind: Some(RequestKind::ApprovalRequest),
            id: Some(a.id.clone()),
            summary: a.summary.clone(),
            detail: a.detail.clone(),
            task_id: a.task_id.clone(),
            risk: a.risk,
            reasons: a.reasons.clone(),
            requested_by: Some(a.requested_by.clone()),
            expires_in: Some(
                humantime::format_duration(Duration::from_secs(expires_in.as_secs().max(1)))
                    .to_string(),
            ),
            reply_to: Some(reply_to.to_string()),
            seal: None,
        };
        item.seal = Some(secret.seal(REQUEST_DOMAIN, owner, &item.sealed_fields()));
        item
    }

    /// Whether the seal is `secret`'s, for `recipient`.
    pub fn seal_is_valid(&self, secret: &FleetSecret, recipient: &str) -> bool {
        self.seal.as_deref().is_some_and(|seal| {
            secret.verify(REQUEST_DOMAIN, recipient, &self.sealed_fields(), seal)
        })
    }

    /// Everything but `kind` and the seal itself.
    fn sealed_fields(&self) -> RequestItem {
        RequestItem {
            kind: None,
            seal: None,
            ..self.clone()
        }
    }
}

/// An `approval_decision` item: the answer to a forwarded request, written
/// by the agent that prompted for it into the requester's inbox. It counts
/// only when its seal holds, or, where `[approvals] decision_keys` is set,
/// its signature: no field of it is trusted on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<DecisionKind>,
    /// The approval id.
    pub id: String,
    #[serde(default)]
    pub task_id: Option<String>,
    pub decision: ApprovalStatus,
    pub by: String,
    pub at: DateTime<Utc>,
    /// SHA-256 of what the human was shown (see [`subject_digest`]).
    #[serde(default)]
    pub request_digest: Option<String>,
    #[serde(default)]
    pub seal: Option<String>,
    /// Ed25519 over the same fields and recipient as the seal, by the
    /// prompting agent's signing key (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// What a decision seal (and signature) covers.
#[derive(Serialize)]
struct DecisionSealed<'a> {
    id: &'a str,
    task_id: Option<&'a str>,
    decision: ApprovalStatus,
    by: &'a str,
    at: DateTime<Utc>,
    request_digest: Option<&'a str>,
}

impl DecisionItem {
    /// The sealed decision on `a` for the agent `to` (its requester), signed
    /// too when `signer` is given. `None` while `a` is undecided.
    pub fn for_requester(
        a: &Approval,
        to: &str,
        secret: &FleetSecret,
        signer: Option<&SigningKey>,
    ) -> Option<DecisionItem> {
        if !a.status.is_final() {
            return None;
        }
        let mut item = DecisionItem {
            kind: Some(DecisionKind::ApprovalDecision),
            id: a.id.clone(),
            task_id: a.task_id.clone(),
            decision: a.status,
            by: a.decided_by.clone().unwrap_or_else(|| "approvals".into()),
            at: a.decided_at.unwrap_or(a.expires_at),
            request_digest: Some(subject_digest(a)),
            seal: None,
            signature: None,
        };
        item.seal = Some(secret.seal(DECISION_DOMAIN, to, &item.sealed()));
        item.signature = signer.map(|k| k.sign(DECISION_DOMAIN, to, &item.sealed()));
        Some(item)
    }

    /// Whether the signature is one of `keys`', for `recipient`.
    pub fn signature_is_valid(&self, keys: &[DecisionKey], recipient: &str) -> bool {
        self.signature.as_deref().is_some_and(|sig| {
            keys.iter()
                .any(|k| k.verify(DECISION_DOMAIN, recipient, &self.sealed(), sig))
        })
    }

    /// Whether the seal is `secret`'s, for `recipient`.
    pub fn seal_is_valid(&self, secret: &FleetSecret, recipient: &str) -> bool {
        self.seal
            .as_deref()
            .is_some_and(|seal| secret.verify(DECISION_DOMAIN, recipient, &self.sealed(), seal))
    }

    fn sealed(&self) -> DecisionSealed<'_> {
        DecisionSealed {
            id: &self.id,
            task_id: self.task_id.as_deref(),
            decision: self.decision,
            by: &self.by,
            at: self.at,
            request_digest: self.request_digest.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::approvals::ApprovalOrigin;

    fn approval() -> Approval {
        let now = Utc::now();
        Approval {
            id: "apr_1".into(),
            origin: ApprovalOrigin::Task,
            summary: "Run task tsk_push".into(),
            detail: "sh: git push".into(),
            task_id: Some("tsk_push".into()),
            requested_by: "opsclaw".into(),
            risk: 100,
            reasons: vec!["dangerous".into()],
            created_at: now,
            expires_at: now,
            status: ApprovalStatus::Approved,
            decided_by: Some("@operator".into()),
            decided_at: Some(now),
            required_approvers: 1,
            votes: vec![],
            reply_to: Some("opsclaw".into()),
            forwarded_at: None,
            forwarded_to: None,
            chat_id: None,
            message_id: None,
            prompt_attempts: 0,
            prompt_error: None,
            reminded_at: None,
            escalated_at: None,
            finalized_at: None,
        }
    }

    fn secret() -> FleetSecret {
        FleetSecret::new("k".repeat(40)).expect("long enough")
    }

    #[test]
    fn a_decision_round_trips_as_json_and_any_changed_field_breaks_its_seal() {
        let item = DecisionItem::for_requester(&approval(), "opsclaw", &secret(), None).unwrap();
        assert_eq!(item.signature, None);
        let json = serde_json::to_string(&item).unwrap();
        let back: DecisionItem = serde_json::from_str(&json).unwrap();
        assert!(back.seal_is_valid(&secret(), "opsclaw"));
        assert!(
            !back.seal_is_valid(&secret(), "manager"),
            "replayed elsewhere"
        );
        for tamper in [
            |d: &mut DecisionItem| d.decision = ApprovalStatus::Denied,
            |d: &mut DecisionItem| d.task_id = Some("tsk_other".into()),
            |d: &mut DecisionItem| d.id = "apr_2".into(),
            |d: &mut DecisionItem| d.by = "@mallory".into(),
            |d: &mut DecisionItem| d.at += chrono::Duration::seconds(1),
            |d: &mut DecisionItem| d.request_digest = None,
        ] {
            let mut d = back.clone();
            tamper(&mut d);
            assert!(!d.seal_is_valid(&secret(), "opsclaw"), "{d:?}");
        }
    }

    #[test]
    fn a_signed_decision_holds_only_under_a_listed_key_and_a_seal_alone_is_no_signature() {
        let (key, _) = SigningKey::generate();
        let (other, _) = SigningKey::generate();
        let item =
            DecisionItem::for_requester(&approval(), "opsclaw", &secret(), Some(&key)).unwrap();
        let back: DecisionItem =
            serde_json::from_value(serde_json::to_value(&item).unwrap()).unwrap();
        assert!(back.seal_is_valid(&secret(), "opsclaw"));
        assert!(back.signature_is_valid(&[other.public(), key.public()], "opsclaw"));
        assert!(!back.signature_is_valid(&[other.public()], "opsclaw"));
        assert!(!back.signature_is_valid(&[], "opsclaw"));
        assert!(
            !back.signature_is_valid(&[key.public()], "manager"),
            "replayed elsewhere"
        );
        let mut denied = back.clone();
        denied.decision = ApprovalStatus::Denied;
        assert!(!denied.signature_is_valid(&[key.public()], "opsclaw"));
        // Whoever holds only the fleet secret seals, and cannot sign.
        let sealed_only =
            DecisionItem::for_requester(&approval(), "opsclaw", &secret(), None).unwrap();
        assert!(!sealed_only.signature_is_valid(&[key.public()], "opsclaw"));
    }

    #[test]
    fn a_forwarded_request_is_sealed_for_the_owner_and_its_fields() {
        let a = approval();
        let item = RequestItem::forward(
            &a,
            "opsclaw",
            Duration::from_secs(600),
            "manager",
            &secret(),
        );
        let back: RequestItem =
            serde_json::from_value(serde_json::to_value(&item).unwrap()).unwrap();
        assert!(back.seal_is_valid(&secret(), "manager"));
        let mut changed = back.clone();
        changed.summary = "Something harmless".into();
        assert!(!changed.seal_is_valid(&secret(), "manager"));
        let mut unsealed = back;
        unsealed.seal = None;
        assert!(!unsealed.seal_is_valid(&secret(), "manager"));
    }
}
