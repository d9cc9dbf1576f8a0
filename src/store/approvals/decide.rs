//! Deciding approvals: the compare-and-set that lets the first valid
//! decision win, expiry, and decisions that arrive from the Telegram owner.

use super::*;

impl Store {
    /// Cast a vote: the compare-and-set at the heart of approvals. In one
    /// transaction that holds the write lock from its first statement: a
    /// request that is no longer pending reports who was first; a request past
    /// its expiry expires now; a deny decides at once; an approve decides when
    /// the required number of distinct approvers have approved. `force` (the
    /// operator's shell override) decides on one approve whatever the policy.
    pub async fn decide_approval(
        &self,
        id: &str,
        voter: &Voter,
        vote: Vote,
        force: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<DecideOutcome> {
        let mut tx = self.begin_approvals().await?;
        let row: Option<DecideRow> = sqlx::query_as(
            "SELECT status, decided_by, decided_at, expires_at, required_approvers FROM approvals WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .context("cannot read the approval")?;
        let Some((status, decided_by, decided_at, expires_at, required)) = row else {
            return Ok(DecideOutcome::Unknown);
        };
        let status: ApprovalStatus = status.parse()?;
        let action = if force {
            "approval.override"
        } else {
            "approval.vote"
        };
        let actor = format!("{} ({})", voter.name, voter.id);
        let actor = actor.as_str();
        if status.is_final() {
            let at = decided_at.map(from_millis).unwrap_or(now);
            let by = decided_by.unwrap_or_default();
            insert_audit(
                &mut tx,
                &audit_entry(
                    id,
                    actor,
                    action,
                    "refused",
                    format!("{} after it was {status} by {by}", vote.as_str()),
                    now,
                ),
            )
            .await?;
            tx.commit().await.context("cannot commit the audit row")?;
            return Ok(if status == ApprovalStatus::Expired {
                DecideOutcome::Expired { at }
            } else {
                DecideOutcome::AlreadyDecided { status, by, at }
            });
        }
        if millis(now) >= expires_at {
            let at = from_millis(expires_at);
            set_final(&mut tx, id, ApprovalStatus::Expired, "expiry", now).await?;
            insert_audit(
                &mut tx,
                &audit_entry(
                    id,
                    "expiry",
                    "approval.expire",
                    "expired",
                    String::new(),
                    now,
                ),
            )
            .await?;
            insert_audit(
                &mut tx,
                &audit_entry(
                    id,
                    actor,
                    action,
                    "refused",
                    format!("{} after expiry", vote.as_str()),
                    now,
                ),
            )
            .await?;
            tx.commit().await.context("cannot commit the expiry")?;
            return Ok(DecideOutcome::Expired { at });
        }
        let fresh = sqlx::query(
            "INSERT INTO approval_votes (approval_id, voter, voter_name, decision, at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (approval_id, voter) DO NOTHING",
        )
        .bind(id)
        .bind(&voter.id)
        .bind(&voter.name)
        .bind(vote.as_str())
        .bind(millis(now))
        .execute(&mut *tx)
        .await
        .context("cannot record the vote")?
        .rows_affected()
            == 1;
        let outcome = match vote {
            Vote::Deny => {
                set_final(&mut tx, id, ApprovalStatus::Denied, &voter.name, now).await?;
                DecideOutcome::Decided {
                    status: ApprovalStatus::Denied,
                    by: voter.name.clone(),
                    at: now,
                }
            }
            Vote::Approve if !fresh && !force => DecideOutcome::AlreadyVoted,
            Vote::Approve => {
                let approvers: Vec<(String,)> = sqlx::query_as(
                    "SELECT voter_name FROM approval_votes WHERE approval_id = $1 AND decision = $2 ORDER BY at, voter",
                )
                .bind(id)
                .bind(Vote::Approve.as_str())
                .fetch_all(&mut *tx)
                .await
                .context("cannot count votes")?;
                let n = approvers.len() as i64;
                if force || n >= required {
                    let by = approvers
                        .into_iter()
                        .map(|(v,)| v)
                        .collect::<Vec<_>>()
                        .join(" + ");
                    let by = if force { voter.name.clone() } else { by };
                    set_final(&mut tx, id, ApprovalStatus::Approved, &by, now).await?;
                    DecideOutcome::Decided {
                        status: ApprovalStatus::Approved,
                        by,
                        at: now,
                    }
                } else {
                    DecideOutcome::Awaiting {
                        approvals: u8::try_from(n).unwrap_or(u8::MAX),
                        required: u8::try_from(required).unwrap_or(2),
                    }
                }
            }
        };
        let (outcome_text, detail) = match &outcome {
            DecideOutcome::Decided { status, .. } => (status.as_str(), vote.as_str().to_string()),
            DecideOutcome::Awaiting {
                approvals,
                required,
            } => (
                "counted",
                format!("approve {approvals} of {required}: waiting for another approver"),
            ),
            DecideOutcome::AlreadyVoted => (
                "refused",
                "the same approver again: a distinct approver is needed".into(),
            ),
            _ => ("refused", String::new()),
        };
        insert_audit(
            &mut tx,
            &audit_entry(id, actor, action, outcome_text, detail, now),
        )
        .await?;
        tx.commit().await.context("cannot commit the decision")?;
        Ok(outcome)
    }

    /// Expire every pending request past its expiry; returns their ids.
    pub async fn expire_due_approvals(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<String>> {
        let due: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM approvals WHERE status = $1 AND expires_at <= $2 ORDER BY expires_at",
        )
        .bind(ApprovalStatus::Pending.as_str())
        .bind(millis(now))
        .fetch_all(self.pool())
        .await
        .context("cannot look for expired approvals")?;
        let mut expired = Vec::new();
        for (id,) in due {
            let mut tx = self.begin_approvals().await?;
            let changed = set_final(&mut tx, &id, ApprovalStatus::Expired, "expiry", now).await?;
            if changed {
                insert_audit(
                    &mut tx,
                    &audit_entry(
                        &id,
                        "expiry",
                        "approval.expire",
                        "expired",
                        String::new(),
                        now,
                    ),
                )
                .await?;
                expired.push(id);
            }
            tx.commit().await.context("cannot commit the expiry")?;
        }
        Ok(expired)
    }

    /// Record a decision made elsewhere (the Telegram owner answered a request
    /// this agent forwarded). Compare-and-set: only a pending request changes.
    pub async fn record_remote_decision(
        &self,
        id: &str,
        status: ApprovalStatus,
        by: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        if !status.is_final() {
            bail!("a decision is approved, denied or expired, not pending");
        }
        let mut tx = self.begin_approvals().await?;
        let changed = set_final(&mut tx, id, status, by, at).await?;
        insert_audit(
            &mut tx,
            &audit_entry(
                id,
                by,
                "approval.decision_received",
                if changed { status.as_str() } else { "ignored" },
                if changed {
                    String::new()
                } else {
                    "the request was no longer pending here".into()
                },
                Utc::now(),
            ),
        )
        .await?;
        tx.commit().await.context("cannot commit the decision")?;
        Ok(changed)
    }
}
