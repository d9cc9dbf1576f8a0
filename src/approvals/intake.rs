//! The approval items an agent takes from its inbox: requests (anyone may
//! ask a human; only a sealed request from a peer may ask for the answer in
//! its inbox) and decisions (taken only when sealed by an agent of the fleet,
//! or signed by the prompting agent where `[approvals] decision_keys` is set,
//! for a request this agent forwarded, about exactly what it asked). Every
//! refusal says why, is audited, and changes nothing.

use chrono::Utc;
use serde_json::{Value, json};
use tracing::{info, warn};

use super::items::subject_digest;
use super::{
    ApprovalOrigin, ApprovalRequest, ApprovalsContext, AuditEntry, DecisionItem, RequestItem,
    request,
};

const REQUEST_FIX: &str = "send {\"kind\": \"approval_request\", \"summary\": \"...\", \"detail\": \"...\", \"risk\": 0-100, \"reasons\": [...], \"expires_in\": \"30m\"}";
const DECISION_FIX: &str = "a decision is made by an approver: with the buttons in Telegram, or from the shell with `switchyard approve ID` / `switchyard deny ID`";

/// Audit a refusal and return the item's failure record.
async fn refuse(
    ctx: &ApprovalsContext,
    action: &str,
    actor: &str,
    target: &str,
    why: String,
    fix: &str,
) -> Result<Value, Value> {
    warn!(agent = %ctx.agent, approval = %target, actor, reason = %why, "{action}");
    if let Err(e) = ctx
        .store
        .audit(AuditEntry {
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            outcome: "refused".into(),
            detail: why.clone(),
            at: Utc::now(),
        })
        .await
    {
        warn!(
            error = format!("{e:#}"),
            "cannot audit a refused approval item"
        );
    }
    Err(json!({ "error": why, "fix": fix }))
}

/// Handle an `approval_request` item; the JSON is the item's result record.
pub async fn handle_request_item(ctx: &ApprovalsContext, item: &Value) -> Result<Value, Value> {
    let parsed: RequestItem = serde_json::from_value(item.clone()).map_err(|e| {
        json!({"error": format!("the approval_request has the wrong shape: {e}"), "fix": REQUEST_FIX})
    })?;
    let target = parsed.id.clone().unwrap_or_else(|| "-".into());
    let actor = parsed
        .requested_by
        .clone()
        .unwrap_or_else(|| "inbox".into());
    const ACTION: &str = "approval.request_refused";
    if parsed.risk > 100 {
        return Err(json!({"error": format!("risk {} is outside 0-100", parsed.risk)}));
    }
    let expires_in = match parsed.expires_in.as_deref() {
        Some(t) => crate::config::parse_duration(t)
            .map_err(|e| json!({"error": format!("expires_in: {e}")}))?,
        None => ctx.config.approvals.expires,
    };
    let (origin, reply_to) = match (&parsed.seal, &parsed.reply_to) {
        (Some(_), _) => {
            let Some(secret) = &ctx.secret else {
                let why = format!(
                    "the request is sealed, but this agent has no fleet secret ({}) to check the seal with",
                    ctx.config.fleet.secret_env
                );
                return refuse(
                    ctx,
                    ACTION,
                    &actor,
                    &target,
                    why,
                    "set the same fleet secret in every agent's environment",
                )
                .await;
            };
            if !parsed.seal_is_valid(secret, &ctx.agent) {
                let why = "the seal does not hold: this request was not forwarded to this agent by an agent of this fleet, or was changed on the way".to_string();
                return refuse(ctx, ACTION, &actor, &target, why, REQUEST_FIX).await;
            }
            match parsed
                .reply_to
                .clone()
                .filter(|r| ctx.config.agent(r).is_some())
            {
                Some(to) if ctx.is_owner() => (ApprovalOrigin::Peer, Some(to)),
                _ => {
                    let why = "a forwarded request goes to the agent that owns Telegram and names a configured agent in reply_to".to_string();
                    return refuse(ctx, ACTION, &actor, &target, why, REQUEST_FIX).await;
                }
            }
        }
        (None, Some(to)) => {
            let why = format!(
                "reply_to ({to}) is only for requests forwarded by an agent of this fleet, which seals them; anyone else asks without it and reads the decision with `switchyard approvals`"
            );
            return refuse(ctx, ACTION, &actor, &target, why, REQUEST_FIX).await;
        }
        (None, None) => (ApprovalOrigin::Inbox, None),
    };
    let req = ApprovalRequest {
        summary: parsed.summary,
        detail: parsed.detail,
        task_id: parsed.task_id,
        requested_by: actor.clone(),
        risk: parsed.risk,
        reasons: parsed.reasons,
        expires_in: Some(expires_in),
        reply_to,
        id: parsed.id,
        origin,
    };
    // The same item again (redelivered) is the same request; another request
    // under an id already taken here is refused, so that no prompt can stand
    // for something else than what its requester asked.
    if let Some(id) = &req.id {
        match ctx.store.approval(id).await {
            Ok(Some(existing)) if !same_request(&existing, &req) => {
                let why = format!("approval id {id} already names another request on this agent");
                return refuse(
                    ctx,
                    ACTION,
                    &actor,
                    id,
                    why,
                    "leave `id` out to get a new one",
                )
                .await;
            }
            Ok(_) => {}
            Err(e) => return Err(json!({"error": format!("{e:#}")})),
        }
    }
    match request(&ctx.store, req).await {
        Ok(id) => {
            info!(approval = %id, origin = origin.as_str(), "approval requested");
            Ok(json!({"approval_id": id, "status": "pending",
                      "note": if ctx.is_owner() { "prompting in Telegram" } else { "forwarding to the agent that owns Telegram" }}))
        }
        Err(e) => Err(json!({"error": format!("{e:#}")})),
    }
}

fn same_request(a: &super::Approval, r: &ApprovalRequest) -> bool {
    a.origin == r.origin
        && a.summary == r.summary
        && a.detail == r.detail
        && a.task_id == r.task_id
        && a.requested_by == r.requested_by
        && a.risk == r.risk
        && a.reasons == r.reasons
        && a.reply_to == r.reply_to
}

/// Handle an `approval_decision` item: the answer to a request this agent
/// forwarded. Nothing in the item is believed until its seal holds.
pub async fn handle_decision_item(ctx: &ApprovalsContext, item: &Value) -> Result<Value, Value> {
    let d: DecisionItem = serde_json::from_value(item.clone()).map_err(|e| {
        json!({"error": format!("the approval_decision has the wrong shape: {e}"), "fix": DECISION_FIX})
    })?;
    const ACTION: &str = "approval.decision_refused";
    let Some(secret) = &ctx.secret else {
        let why = format!(
            "this agent has no fleet secret ({}), so it cannot tell a decision from its approver from a forged one",
            ctx.config.fleet.secret_env
        );
        return refuse(ctx, ACTION, &d.by, &d.id, why, DECISION_FIX).await;
    };
    let keys = &ctx.config.approvals.decision_keys;
    let why = if !keys.is_empty() {
        // Every agent's host holds the fleet secret: where decisions are
        // signed, a seal alone proves nothing.
        (!d.signature_is_valid(keys, &ctx.agent)).then(|| {
            "the decision is not signed for this agent with a key of approvals.decision_keys: only the agent that prompts the approvers holds such a key, so a host with the fleet secret alone cannot decide; it does not count".to_string()
        })
    } else {
        (!d.seal_is_valid(secret, &ctx.agent)).then(|| {
            "the decision is not sealed by an agent of this fleet for this agent: it does not count".to_string()
        })
    };
    if let Some(why) = why {
        return refuse(ctx, ACTION, &d.by, &d.id, why, DECISION_FIX).await;
    }
    let a = match ctx.store.approval(&d.id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            let why = format!("no approval {} was requested by this agent", d.id);
            return refuse(ctx, ACTION, &d.by, &d.id, why, DECISION_FIX).await;
        }
        Err(e) => return Err(json!({"error": format!("{e:#}")})),
    };
    let why = if a.forwarded_to.is_none() {
        Some(format!(
            "approval {} was not forwarded by this agent: it is decided here",
            a.id
        ))
    } else if a.task_id != d.task_id {
        Some(format!(
            "the decision names task {:?}, the approval is for {:?}",
            d.task_id, a.task_id
        ))
    } else if d.request_digest.as_deref() != Some(subject_digest(&a).as_str()) {
        Some("the decision is about another request than the one this agent made".into())
    } else if !d.decision.is_final() {
        Some("a decision is approved, denied or expired".into())
    } else {
        None
    };
    if let Some(why) = why {
        return refuse(ctx, ACTION, &d.by, &d.id, why, DECISION_FIX).await;
    }
    match ctx
        .store
        .record_remote_decision(&d.id, d.decision, &d.by, d.at)
        .await
    {
        Ok(changed) => {
            info!(approval = %d.id, decision = %d.decision, by = %d.by, changed, "approval decision received");
            Ok(
                json!({"approval_id": d.id, "decision": d.decision, "by": d.by, "recorded": changed}),
            )
        }
        Err(e) => Err(json!({"error": format!("{e:#}")})),
    }
}
