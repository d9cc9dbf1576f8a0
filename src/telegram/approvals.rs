//! Approval prompts in Telegram: the message (what will run, the risk and
//! the policy's reasons, cut to fit 4096 characters), its Approve / Deny
//! buttons whose `callback_data` is the request's secret, sending it with
//! Telegram's 429 obeyed, answering every button press, and editing the
//! message once the request is decided or expired.

use std::time::Duration;

use chrono::{DateTime, Utc};
use switchyard_commands::reply::escape_html;
use teloxide::prelude::*;
use teloxide::types::{
    CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, MessageId, ParseMode,
};
use teloxide::{ApiError, RequestError};
use tracing::{info, warn};

use super::TelegramApprovals;
use crate::approvals::buttons::{callback_data, parse_callback_data, until};
use crate::approvals::{Approval, ApprovalStatus, ApprovalsContext, DecideOutcome, Vote};
use crate::store::AuditEntry;
use crate::store::approvals::Voter;

/// Telegram's limit on a message's text, after entities are parsed.
pub const TEXT_MAX: usize = 4096;
const SUMMARY_MAX: usize = 300;
const REASON_MAX: usize = 200;
const REASONS_MAX: usize = 12;
/// How long a prompt being sent is held against a second send.
const PROMPT_LEASE_S: i64 = 60;
/// Kept free below [`TEXT_MAX`] for the cut note and rounding.
const MARGIN: usize = 160;

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The prompt's text (Telegram HTML). Everything but the preview is short
/// and bounded; the preview gets what is left of 4096 characters and says
/// when it was cut.
pub fn prompt_text(a: &Approval, now: DateTime<Utc>) -> String {
    let mut head = vec![format!(
        "⚠️ <b>Approval needed</b>: {}",
        escape_html(&cut(&a.summary, SUMMARY_MAX))
    )];
    let mut plain_len = a.summary.chars().count().min(SUMMARY_MAX) + 40;
    let mut who = format!(
        "Requested by <b>{}</b> · risk <b>{}</b>/100",
        escape_html(&cut(&a.requested_by, 64)),
        a.risk
    );
    if a.required_approvers > 1 {
        who.push_str(&format!(
            " · needs {} distinct approvers",
            a.required_approvers
        ));
    }
    plain_len += 90;
    head.push(who);
    if let Some(task) = &a.task_id {
        head.push(format!("Task <code>{}</code>", escape_html(&cut(task, 64))));
        plain_len += 80;
    }
    if !a.reasons.is_empty() {
        head.push("Why it needs you:".into());
        for r in a.reasons.iter().take(REASONS_MAX) {
            let r = cut(r, REASON_MAX);
            plain_len += r.chars().count() + 3;
            head.push(format!("• {}", escape_html(&r)));
        }
        if a.reasons.len() > REASONS_MAX {
            head.push(format!("• … and {} more", a.reasons.len() - REASONS_MAX));
            plain_len += 20;
        }
    }
    let mut tail = Vec::new();
    if a.votes.iter().any(|v| v.decision == Vote::Approve.as_str()) {
        let names: Vec<String> = a
            .votes
            .iter()
            .map(|v| escape_html(&cut(&v.voter, 64)))
            .collect();
        tail.push(format!(
            "Approved so far by {} ({} of {})",
            names.join(", "),
            names.len(),
            a.required_approvers
        ));
        plain_len += 80 + names.len() * 70;
    }
    tail.push(format!(
        "Expires in {} ({}) · id <code>{}</code>",
        until(a.expires_at, now),
        when(a.expires_at),
        escape_html(&a.id)
    ));
    plain_len += 90 + a.id.len();

    let mut parts = head;
    let detail = a.detail.trim();
    if !detail.is_empty() {
        let budget = TEXT_MAX.saturating_sub(plain_len + MARGIN + 20);
        let total = detail.chars().count();
        parts.push("What will run:".into());
        if total <= budget {
            parts.push(format!("<pre>{}</pre>", escape_html(detail)));
        } else {
            let shown: String = detail.chars().take(budget).collect();
            parts.push(format!("<pre>{}</pre>", escape_html(&shown)));
            parts.push(format!(
                "<i>Preview cut: {} more characters not shown. The full text: switchyard approvals --json</i>",
                total - budget
            ));
        }
    }
    parts.extend(tail);
    parts.join("\n")
}

/// The text the prompt becomes once decided: the outcome, who and when.
pub fn final_text(a: &Approval) -> String {
    let at = a.decided_at.map(when).unwrap_or_default();
    let by = escape_html(&cut(a.decided_by.as_deref().unwrap_or("unknown"), 200));
    let outcome = match a.status {
        ApprovalStatus::Approved => format!("✅ <b>Approved</b> by {by} at {at}"),
        ApprovalStatus::Denied => format!("❌ <b>Denied</b> by {by} at {at}"),
        ApprovalStatus::Expired => {
            format!("⌛ <b>Expired</b> at {at} without a decision: counted as denied")
        }
        ApprovalStatus::Cancelled => format!("🚫 <b>Cancelled</b> by {by} at {at}"),
        ApprovalStatus::Pending => "⏳ <b>Pending</b>".to_string(),
    };
    format!(
        "{outcome}\n{}\nRequested by {} · risk {}/100 · id <code>{}</code>",
        escape_html(&cut(&a.summary, SUMMARY_MAX)),
        escape_html(&cut(&a.requested_by, 64)),
        a.risk,
        escape_html(&a.id)
    )
}

fn keyboard(token: &str) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![
        InlineKeyboardButton::callback("✅ Approve", callback_data(Vote::Approve, token)),
        InlineKeyboardButton::callback("❌ Deny", callback_data(Vote::Deny, token)),
    ]])
}

/// How long to wait before trying a failed prompt again.
fn backoff(attempts: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempts.min(7))).min(Duration::from_secs(60))
}

/// Words for a teloxide error without the request URL (it holds the token).
fn describe(e: &RequestError) -> String {
    match e {
        RequestError::Network(n) => format!(
            "network error: {}",
            crate::delivery::http::describe_reqwest(n)
        ),
        other => other.to_string(),
    }
}

impl TelegramApprovals {
    /// Send every prompt that is due. A 429 moves the prompt to after
    /// `retry_after`; other failures back off; the prompt stays due until its
    /// message id is stored.
    pub async fn send_due_prompts(&self, ctx: &ApprovalsContext) -> anyhow::Result<()> {
        let now = Utc::now();
        for a in ctx.store.approvals_to_prompt(now).await? {
            let required = ctx.config.approvals.required_approvers(a.risk);
            let a = if required > a.required_approvers {
                ctx.store.raise_required_approvers(&a.id, required).await?;
                ctx.store.approval(&a.id).await?.unwrap_or(a)
            } else {
                a
            };
            let Some(token) = ctx.store.approval_token(&a.id).await? else {
                continue;
            };
            self.before_send(self.chat.0).await;
            ctx.store
                .lease_prompt(
                    &a.id,
                    Utc::now() + chrono::Duration::seconds(PROMPT_LEASE_S),
                )
                .await?;
            let sent = self
                .bot
                .send_message(self.chat, prompt_text(&a, now))
                .parse_mode(ParseMode::Html)
                .reply_markup(keyboard(&token))
                .await;
            match sent {
                Ok(msg) => {
                    ctx.store
                        .set_prompted(&a.id, self.chat.0, i64::from(msg.id.0), Utc::now())
                        .await?;
                    info!(approval = %a.id, message_id = msg.id.0, "approval prompt sent");
                }
                Err(RequestError::RetryAfter(s)) => {
                    self.after_429(self.chat.0, s.duration());
                    let next =
                        Utc::now() + chrono::Duration::from_std(s.duration()).unwrap_or_default();
                    ctx.store
                        .prompt_failed(
                            &a.id,
                            &format!("429: retry after {}s", s.seconds()),
                            next,
                            Utc::now(),
                        )
                        .await?;
                    warn!(approval = %a.id, retry_after_s = s.seconds(), "Telegram rate-limited the prompt; sending it later");
                    // Everything else to this chat would be refused as well.
                    break;
                }
                Err(e) => {
                    let next = Utc::now()
                        + chrono::Duration::from_std(backoff(a.prompt_attempts))
                            .unwrap_or_default();
                    ctx.store
                        .prompt_failed(&a.id, &describe(&e), next, Utc::now())
                        .await?;
                    warn!(approval = %a.id, attempt = a.prompt_attempts + 1, error = %describe(&e), "approval prompt not sent; trying again");
                }
            }
        }
        Ok(())
    }

    /// Show a decision (edit the prompt, buttons gone) and send it to the
    /// requester's inbox, once. A failure leaves it for the next round.
    pub async fn finalize(&self, ctx: &ApprovalsContext, a: &Approval) {
        let now = Utc::now();
        match ctx.store.claim_finalize(&a.id, now).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                warn!(approval = %a.id, error = format!("{e:#}"), "cannot finalise the approval");
                return;
            }
        }
        let done = async {
            if let (Some(chat), Some(msg)) = (a.chat_id, a.message_id) {
                let msg = MessageId(i32::try_from(msg).unwrap_or_default());
                self.before_send(chat).await;
                match self
                    .bot
                    .edit_message_text(ChatId(chat), msg, final_text(a))
                    .parse_mode(ParseMode::Html)
                    .await
                {
                    Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => {}
                    Err(RequestError::Api(ApiError::MessageToEditNotFound)) => {
                        warn!(approval = %a.id, "the prompt message is gone; nothing to edit");
                    }
                    Err(RequestError::RetryAfter(s)) => {
                        self.after_429(chat, s.duration());
                        anyhow::bail!(
                            "Telegram asked to wait {}s before editing the prompt",
                            s.seconds()
                        )
                    }
                    Err(e) => anyhow::bail!("cannot edit the prompt: {}", describe(&e)),
                }
            }
            crate::approvals::send_decision_back(ctx, a)?;
            Ok(())
        };
        match done.await {
            Ok(()) => {
                info!(approval = %a.id, status = %a.status, "approval decision shown and sent on")
            }
            Err(e) => {
                warn!(approval = %a.id, error = format!("{e:#}"), "approval not finalised; trying again");
                if let Err(e) = ctx.store.unclaim_finalize(&a.id).await {
                    warn!(approval = %a.id, error = format!("{e:#}"), "cannot reset the approval");
                }
            }
        }
    }

    /// A button press. Every press is answered (no spinning button), every
    /// refusal is audited, and a decision is shown at once.
    pub async fn on_callback(&self, ctx: &ApprovalsContext, q: &CallbackQuery) {
        let answer = match self.decide_from_callback(ctx, q).await {
            Ok(text) => text,
            Err(e) => {
                let id = crate::error::error_id();
                warn!(error_id = %id, error = format!("{e:#}"), "a button press failed");
                format!(
                    "Something went wrong (error {id}). Try again, or decide with switchyard approve/deny."
                )
            }
        };
        let answer = cut(&answer, 200);
        if let Err(e) = self
            .bot
            .answer_callback_query(q.id.clone())
            .text(answer)
            .await
        {
            warn!(error = %describe(&e), "could not answer a button press");
        }
    }

    async fn decide_from_callback(
        &self,
        ctx: &ApprovalsContext,
        q: &CallbackQuery,
    ) -> anyhow::Result<String> {
        let now = Utc::now();
        let user_id = i64::try_from(q.from.id.0).unwrap_or(i64::MAX);
        let name = match &q.from.username {
            Some(u) => format!("@{u}"),
            None => q.from.first_name.clone(),
        };
        let actor = format!("{name} (telegram:{user_id})");
        let refuse = |target: &str, detail: String| AuditEntry {
            actor: actor.clone(),
            action: "approval.callback".into(),
            target: target.to_string(),
            outcome: "refused".into(),
            detail,
            at: now,
        };
        let data = q.data.as_deref().unwrap_or("");
        let Some((vote, token)) = parse_callback_data(data) else {
            ctx.store
                .audit(refuse(
                    "telegram:callback",
                    format!("malformed callback_data ({} bytes)", data.len()),
                ))
                .await?;
            warn!(
                user = user_id,
                "refused a button press with malformed callback_data"
            );
            return Ok("This button is not valid. Use /approvals for the current requests.".into());
        };
        let Some(a) = ctx.store.approval_by_token(token).await? else {
            ctx.store
                .audit(refuse(
                    "telegram:callback",
                    "forged or stale callback_data: no request has this secret".into(),
                ))
                .await?;
            warn!(
                user = user_id,
                "refused a button press with a forged or stale secret"
            );
            return Ok("This request is unknown or no longer valid. Use /approvals for the current requests.".into());
        };
        if !self.is_approver(user_id) {
            ctx.store
                .audit(refuse(
                    &a.id,
                    format!("{} by someone who is not an approver", vote.as_str()),
                ))
                .await?;
            warn!(approval = %a.id, user = user_id, "refused a button press from a non-approver");
            return Ok(
                "You are not an approver on this fleet. Your press was recorded; ask an approver."
                    .into(),
            );
        }
        // A prompt sent just before a crash was never recorded: the message
        // pressed is the one to show the decision on.
        if a.message_id.is_none()
            && let Some(m) = &q.message
        {
            ctx.store
                .set_prompt_message(&a.id, m.chat().id.0, i64::from(m.id().0))
                .await?;
        }
        let voter = Voter {
            id: format!("telegram:{user_id}"),
            name,
        };
        let outcome = ctx
            .store
            .decide_approval(&a.id, &voter, vote, false, now)
            .await?;
        Ok(match outcome {
            DecideOutcome::Decided { status, .. } => {
                if let Some(decided) = ctx.store.approval(&a.id).await? {
                    self.finalize(ctx, &decided).await;
                }
                match status {
                    ApprovalStatus::Approved => "Approved. The requester is told now.".into(),
                    _ => "Denied. The requester is told now.".into(),
                }
            }
            DecideOutcome::Awaiting {
                approvals,
                required,
            } => {
                if let (Some(updated), Some(token)) = (
                    ctx.store.approval(&a.id).await?,
                    ctx.store.approval_token(&a.id).await?,
                ) && let (Some(chat), Some(msg)) = (updated.chat_id, updated.message_id)
                {
                    let msg = MessageId(i32::try_from(msg).unwrap_or_default());
                    self.before_send(chat).await;
                    if let Err(e) = self
                        .bot
                        .edit_message_text(ChatId(chat), msg, prompt_text(&updated, now))
                        .parse_mode(ParseMode::Html)
                        .reply_markup(keyboard(&token))
                        .await
                    {
                        warn!(approval = %a.id, error = %describe(&e), "could not show the first approval on the prompt");
                    }
                }
                format!(
                    "Recorded: {approvals} of {required} approvals. A second, different approver must approve too."
                )
            }
            DecideOutcome::AlreadyVoted => {
                "You already approved. A second, different approver must approve.".into()
            }
            DecideOutcome::AlreadyDecided { status, by, at } => {
                format!("Already {status} by {by} at {}.", at.format("%H:%M:%S UTC"))
            }
            DecideOutcome::Expired { at } => {
                if let Some(expired) = ctx.store.approval(&a.id).await? {
                    self.finalize(ctx, &expired).await;
                }
                format!(
                    "Too late: this request expired at {} and counts as denied.",
                    at.format("%H:%M:%S UTC")
                )
            }
            DecideOutcome::Unknown => "This request is unknown.".into(),
        })
    }
}

impl crate::approvals::Prompter for TelegramApprovals {
    fn send_due_prompts<'a>(
        &'a self,
        ctx: &'a ApprovalsContext,
    ) -> futures_util::future::BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(TelegramApprovals::send_due_prompts(self, ctx))
    }

    fn finalize<'a>(
        &'a self,
        ctx: &'a ApprovalsContext,
        approval: &'a Approval,
    ) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(TelegramApprovals::finalize(self, ctx, approval))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(detail: &str) -> Approval {
        let now = Utc::now();
        Approval {
            id: "apr_test".into(),
            origin: crate::store::approvals::ApprovalOrigin::Inbox,
            summary: "Deploy web-1 <prod>".into(),
            detail: detail.into(),
            task_id: None,
            requested_by: "tech-lead".into(),
            risk: 75,
            reasons: vec!["declared risk high (+60)".into(), "git push (+20)".into()],
            created_at: now,
            expires_at: now + chrono::Duration::minutes(30),
            status: ApprovalStatus::Pending,
            decided_by: None,
            decided_at: None,
            required_approvers: 1,
            votes: vec![],
            reply_to: None,
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

    #[test]
    fn callback_data_is_short_and_round_trips() {
        let token = crate::store::approvals::new_token();
        for vote in [Vote::Approve, Vote::Deny] {
            let data = callback_data(vote, &token);
            assert!(data.len() <= 64, "{data}");
            assert_eq!(parse_callback_data(&data), Some((vote, token.as_str())));
        }
        for forged in [
            "",
            "a:",
            "x:0123456789abcdef0123456789abcdef",
            "a:zz23456789abcdef0123456789abcdef",
            "a:abc",
        ] {
            assert_eq!(parse_callback_data(forged), None, "{forged}");
        }
        assert_ne!(crate::store::approvals::new_token(), token);
    }

    #[test]
    fn the_prompt_shows_what_runs_the_risk_and_the_reasons_escaped() {
        let t = prompt_text(
            &approval("git push origin main && scripts/deploy_prod.sh"),
            Utc::now(),
        );
        assert!(t.contains("Deploy web-1 &lt;prod&gt;"), "{t}");
        assert!(t.contains("risk <b>75</b>/100"), "{t}");
        assert!(t.contains("git push (+20)"), "{t}");
        assert!(
            t.contains("git push origin main &amp;&amp; scripts/deploy_prod.sh"),
            "{t}"
        );
        assert!(!t.contains("Preview cut"), "{t}");
    }

    #[test]
    fn a_long_preview_is_cut_with_a_note_and_fits_4096() {
        for detail in ["x".repeat(10_000), "<&>".repeat(5_000), "é".repeat(9_000)] {
            let t = prompt_text(&approval(&detail), Utc::now());
            assert!(t.contains("Preview cut"), "no note");
            // Telegram counts the text after entities are parsed.
            let parsed = switchyard_sandbox::telegram_html_text_len(&t).expect("valid HTML");
            assert!(parsed <= TEXT_MAX, "{parsed} characters");
        }
    }
}
