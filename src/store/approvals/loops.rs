//! The bookkeeping of the approvals loops: what to prompt, finalise and
//! forward, reminders, escalations, and the Telegram polling offset.

use super::*;

impl Store {
    /// Pending requests this agent must prompt for, due now.
    pub async fn approvals_to_prompt(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<Approval>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM approvals WHERE status = $1 AND message_id IS NULL AND prompt_next_at <= $2 \
             ORDER BY created_at, id LIMIT 50",
        )
        .bind(ApprovalStatus::Pending.as_str())
        .bind(millis(now))
        .fetch_all(self.pool())
        .await
        .context("cannot look for prompts to send")?;
        self.by_ids(rows).await
    }

    async fn by_ids(&self, ids: Vec<(String,)>) -> anyhow::Result<Vec<Approval>> {
        let mut out = Vec::with_capacity(ids.len());
        for (id,) in ids {
            if let Some(a) = self.approval(&id).await? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// The policy of the deciding agent may ask for more approvers than the
    /// requester did; never fewer.
    pub async fn raise_required_approvers(&self, id: &str, at_least: u8) -> anyhow::Result<u8> {
        sqlx::query("UPDATE approvals SET required_approvers = $1 WHERE id = $2 AND required_approvers < $1")
            .bind(i64::from(at_least))
            .bind(id)
            .execute(self.pool())
            .await
            .context("cannot update the approval")?;
        let (n,): (i64,) = sqlx::query_as("SELECT required_approvers FROM approvals WHERE id = $1")
            .bind(id)
            .fetch_one(self.pool())
            .await
            .context("cannot read the approval")?;
        Ok(u8::try_from(n).unwrap_or(1))
    }

    /// The prompt went out: remember where, so it can be edited.
    /// The prompt a decision is shown on: the message the approver pressed
    /// (after a crash between sending a prompt and recording it, that may be
    /// one this record does not know yet).
    pub async fn set_prompt_message(
        &self,
        id: &str,
        chat_id: i64,
        message_id: i64,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE approvals SET chat_id = $1, message_id = $2 WHERE id = $3")
            .bind(chat_id)
            .bind(message_id)
            .bind(id)
            .execute(self.pool())
            .await
            .context("cannot record the prompt's message")?;
        Ok(())
    }

    /// Hold a prompt about to be sent for `until`: a crash between sending
    /// it and recording it must not send it again at once (Telegram has no
    /// idempotency key); after `until`, with nobody having answered, it is
    /// sent again.
    pub async fn lease_prompt(&self, id: &str, until: DateTime<Utc>) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE approvals SET prompt_next_at = $1 WHERE id = $2 AND message_id IS NULL",
        )
        .bind(millis(until))
        .bind(id)
        .execute(self.pool())
        .await
        .context("cannot hold the prompt")?;
        Ok(())
    }

    pub async fn set_prompted(
        &self,
        id: &str,
        chat_id: i64,
        message_id: i64,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE approvals SET chat_id = $1, message_id = $2, prompt_attempts = prompt_attempts + 1, \
             prompt_error = NULL, updated_at = $3 WHERE id = $4",
        )
        .bind(chat_id)
        .bind(message_id)
        .bind(millis(now))
        .bind(id)
        .execute(self.pool())
        .await
        .context("cannot record the prompt")?;
        self.audit(audit_entry(
            id,
            "telegram",
            "approval.prompt",
            "sent",
            format!("chat {chat_id} message {message_id}"),
            now,
        ))
        .await
    }

    /// The prompt did not go out: try again at `next_at`.
    pub async fn prompt_failed(
        &self,
        id: &str,
        error: &str,
        next_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE approvals SET prompt_attempts = prompt_attempts + 1, prompt_error = $1, prompt_next_at = $2, \
             updated_at = $3 WHERE id = $4",
        )
        .bind(error)
        .bind(millis(next_at))
        .bind(millis(now))
        .bind(id)
        .execute(self.pool())
        .await
        .context("cannot record the prompt failure")?;
        Ok(())
    }

    /// Decided requests whose decision is not yet shown and sent on.
    pub async fn approvals_to_finalize(&self) -> anyhow::Result<Vec<Approval>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM approvals WHERE status <> $1 AND finalized_at IS NULL ORDER BY decided_at, id LIMIT 50",
        )
        .bind(ApprovalStatus::Pending.as_str())
        .fetch_all(self.pool())
        .await
        .context("cannot look for decisions to finalise")?;
        self.by_ids(rows).await
    }

    /// Mark a decision as shown and sent on. Returns false when another
    /// caller got there first (so the requester is notified once).
    pub async fn claim_finalize(&self, id: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let r = sqlx::query("UPDATE approvals SET finalized_at = $1, updated_at = $1 WHERE id = $2 AND finalized_at IS NULL")
            .bind(millis(now))
            .bind(id)
            .execute(self.pool())
            .await
            .context("cannot mark the approval finalised")?;
        Ok(r.rows_affected() == 1)
    }

    /// Undo [`Store::claim_finalize`] after a failure, so the loop tries again.
    pub async fn unclaim_finalize(&self, id: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE approvals SET finalized_at = NULL WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await
            .context("cannot reset the approval")?;
        Ok(())
    }

    /// Pending requests this agent has not yet handed to the Telegram owner.
    pub async fn approvals_to_forward(&self) -> anyhow::Result<Vec<Approval>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM approvals WHERE status = $1 AND forwarded_at IS NULL AND reply_to IS NULL ORDER BY created_at, id",
        )
        .bind(ApprovalStatus::Pending.as_str())
        .fetch_all(self.pool())
        .await
        .context("cannot look for requests to forward")?;
        self.by_ids(rows).await
    }

    pub async fn set_forwarded(
        &self,
        id: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE approvals SET forwarded_at = $1, forwarded_to = $2, updated_at = $1 WHERE id = $3",
        )
        .bind(millis(now))
        .bind(to)
        .bind(id)
            .execute(self.pool())
            .await
            .context("cannot record the forward")?;
        self.audit(audit_entry(
            id,
            "switchyard",
            "approval.forward",
            "forwarded",
            format!("to {to}"),
            now,
        ))
        .await
    }

    pub async fn set_reminded(&self, id: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
        sqlx::query("UPDATE approvals SET reminded_at = $1, updated_at = $1 WHERE id = $2")
            .bind(millis(now))
            .bind(id)
            .execute(self.pool())
            .await
            .context("cannot record the reminder")?;
        self.audit(audit_entry(
            id,
            "switchyard",
            "approval.remind",
            "sent",
            String::new(),
            now,
        ))
        .await
    }

    pub async fn set_escalated(
        &self,
        id: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE approvals SET escalated_at = $1, updated_at = $1 WHERE id = $2")
            .bind(millis(now))
            .bind(id)
            .execute(self.pool())
            .await
            .context("cannot record the escalation")?;
        self.audit(audit_entry(
            id,
            "switchyard",
            "approval.escalate",
            "sent",
            format!("to {to}"),
            now,
        ))
        .await
    }

    /// The audit trail of one approval, oldest first.
    pub async fn approval_audit(&self, id: &str) -> anyhow::Result<Vec<AuditEntry>> {
        let rows: Vec<(i64, String, String, String, String, String)> = sqlx::query_as(
            "SELECT at, actor, action, target, outcome, detail FROM audit WHERE target = $1 ORDER BY at, id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await
        .context("cannot read the audit log")?;
        Ok(rows
            .into_iter()
            .map(|(at, actor, action, target, outcome, detail)| AuditEntry {
                actor,
                action,
                target,
                outcome,
                detail,
                at: from_millis(at),
            })
            .collect())
    }

    /// The next `getUpdates` offset of a bot (0 when it never polled).
    pub async fn telegram_offset(&self, bot_id: i64) -> anyhow::Result<i64> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT next_offset FROM telegram_offsets WHERE bot_id = $1")
                .bind(bot_id)
                .fetch_optional(self.pool())
                .await
                .context("cannot read the Telegram offset")?;
        Ok(row.map_or(0, |(o,)| o))
    }

    pub async fn set_telegram_offset(
        &self,
        bot_id: i64,
        next_offset: i64,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO telegram_offsets (bot_id, next_offset, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (bot_id) DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at",
        )
        .bind(bot_id)
        .bind(next_offset)
        .bind(millis(now))
        .execute(self.pool())
        .await
        .context("cannot store the Telegram offset")?;
        Ok(())
    }
}
