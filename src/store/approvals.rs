//! Approvals as records (`approvals`, `approval_votes`, `telegram_offsets`):
//! inserting a request, the compare-and-set that decides it (the first valid
//! decision wins, in one `BEGIN IMMEDIATE` transaction), expiry, and the
//! bookkeeping of the loops that prompt, remind, escalate, forward and
//! finalise. Every change leaves an audit row whose target is the approval id.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};

use super::{AuditEntry, Store, from_millis, millis, new_id};

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    /// Nobody decided in time: treated as denied.
    Expired,
    Cancelled,
}

impl ApprovalStatus {
    pub const ALL: [ApprovalStatus; 5] = [
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        ApprovalStatus::Denied,
        ApprovalStatus::Expired,
        ApprovalStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the work may go ahead.
    pub fn is_approved(self) -> bool {
        self == ApprovalStatus::Approved
    }

    pub fn is_final(self) -> bool {
        self != ApprovalStatus::Pending
    }
}

impl FromStr for ApprovalStatus {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        ApprovalStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .with_context(|| format!("unknown approval status {s:?}"))
    }
}

impl fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A yes or a no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vote {
    Approve,
    Deny,
}

impl Vote {
    pub fn as_str(self) -> &'static str {
        match self {
            Vote::Approve => "approve",
            Vote::Deny => "deny",
        }
    }
}

/// Who casts a vote: a stable identity (`telegram:424242`, `shell:alice`)
/// and the name shown in messages (`@alice`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub id: String,
    pub name: String,
}

/// Who made a request. Only a request the task pipeline made itself can
/// let a task run once approved; the others are questions for a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalOrigin {
    /// This agent's task pipeline, for a parked task.
    Task,
    /// Another agent of the fleet forwarded it (its seal checked).
    Peer,
    /// An `approval_request` item or the shell.
    Inbox,
}

impl ApprovalOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalOrigin::Task => "task",
            ApprovalOrigin::Peer => "peer",
            ApprovalOrigin::Inbox => "inbox",
        }
    }
}

impl FromStr for ApprovalOrigin {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        [
            ApprovalOrigin::Task,
            ApprovalOrigin::Peer,
            ApprovalOrigin::Inbox,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
        .with_context(|| format!("unknown approval origin {s:?}"))
    }
}

/// A request to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApproval {
    pub id: String,
    pub origin: ApprovalOrigin,
    pub summary: String,
    /// What will run (a command preview); may be long, the prompt cuts it.
    pub detail: String,
    pub task_id: Option<String>,
    pub requested_by: String,
    pub risk: u8,
    pub reasons: Vec<String>,
    pub expires_in: Duration,
    /// 1, or 2 when the policy wants two distinct approvers.
    pub required_approvers: u8,
    /// The agent to send the decision to (a forwarded request).
    pub reply_to: Option<String>,
}

/// One vote cast.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VoteRecord {
    pub voter: String,
    pub decision: String,
    pub at: DateTime<Utc>,
}

/// An approval as callers see it. The button secret is not in here.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Approval {
    pub id: String,
    pub origin: ApprovalOrigin,
    pub summary: String,
    pub detail: String,
    pub task_id: Option<String>,
    pub requested_by: String,
    pub risk: u8,
    pub reasons: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub status: ApprovalStatus,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub required_approvers: u8,
    pub votes: Vec<VoteRecord>,
    pub reply_to: Option<String>,
    pub forwarded_at: Option<DateTime<Utc>>,
    /// The agent this request was forwarded to: only its decision counts.
    pub forwarded_to: Option<String>,
    pub chat_id: Option<i64>,
    pub message_id: Option<i64>,
    pub prompt_attempts: u32,
    pub prompt_error: Option<String>,
    pub reminded_at: Option<DateTime<Utc>>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub finalized_at: Option<DateTime<Utc>>,
}

/// What a vote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideOutcome {
    /// This vote decided the request.
    Decided {
        status: ApprovalStatus,
        by: String,
        at: DateTime<Utc>,
    },
    /// Counted; the policy needs more distinct approvers.
    Awaiting { approvals: u8, required: u8 },
    /// This voter already approved; another approver is needed.
    AlreadyVoted,
    /// Someone was first.
    AlreadyDecided {
        status: ApprovalStatus,
        by: String,
        at: DateTime<Utc>,
    },
    /// Too late: the request expired (now, or before).
    Expired { at: DateTime<Utc> },
    /// No approval has this id or token.
    Unknown,
}

/// status, decided_by, decided_at, expires_at, required_approvers
type DecideRow = (String, Option<String>, Option<i64>, i64, i64);

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    origin: String,
    summary: String,
    detail: String,
    task_id: Option<String>,
    requested_by: String,
    risk: i64,
    reasons: String,
    created_at: i64,
    expires_at: i64,
    status: String,
    decided_by: Option<String>,
    decided_at: Option<i64>,
    required_approvers: i64,
    reply_to: Option<String>,
    forwarded_at: Option<i64>,
    forwarded_to: Option<String>,
    chat_id: Option<i64>,
    message_id: Option<i64>,
    prompt_attempts: i64,
    prompt_error: Option<String>,
    reminded_at: Option<i64>,
    escalated_at: Option<i64>,
    finalized_at: Option<i64>,
}

macro_rules! approval_columns {
    () => {
        "id, origin, summary, detail, task_id, requested_by, risk, reasons, created_at, expires_at, status, decided_by, \
         decided_at, required_approvers, reply_to, forwarded_at, forwarded_to, chat_id, message_id, prompt_attempts, prompt_error, \
         reminded_at, escalated_at, finalized_at"
    };
}

impl Row {
    fn into_approval(self, votes: Vec<VoteRecord>) -> anyhow::Result<Approval> {
        Ok(Approval {
            reasons: serde_json::from_str(&self.reasons)
                .with_context(|| format!("approval {} has unreadable reasons", self.id))?,
            status: self.status.parse()?,
            origin: self.origin.parse()?,
            risk: u8::try_from(self.risk.clamp(0, 100)).unwrap_or(100),
            required_approvers: u8::try_from(self.required_approvers.clamp(1, 9)).unwrap_or(1),
            created_at: from_millis(self.created_at),
            expires_at: from_millis(self.expires_at),
            decided_at: self.decided_at.map(from_millis),
            forwarded_at: self.forwarded_at.map(from_millis),
            reminded_at: self.reminded_at.map(from_millis),
            escalated_at: self.escalated_at.map(from_millis),
            finalized_at: self.finalized_at.map(from_millis),
            prompt_attempts: u32::try_from(self.prompt_attempts).unwrap_or(0),
            id: self.id,
            summary: self.summary,
            detail: self.detail,
            task_id: self.task_id,
            requested_by: self.requested_by,
            decided_by: self.decided_by,
            votes,
            reply_to: self.reply_to,
            forwarded_to: self.forwarded_to,
            chat_id: self.chat_id,
            message_id: self.message_id,
            prompt_error: self.prompt_error,
        })
    }
}

/// A new unguessable button secret: 128 random bits, hex.
pub fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new approval id (`apr_…`).
pub fn new_approval_id() -> String {
    new_id("apr_")
}

fn audit_entry(
    id: &str,
    actor: &str,
    action: &str,
    outcome: &str,
    detail: String,
    at: DateTime<Utc>,
) -> AuditEntry {
    AuditEntry {
        actor: actor.to_string(),
        action: action.to_string(),
        target: id.to_string(),
        outcome: outcome.to_string(),
        detail,
        at,
    }
}

async fn insert_audit(tx: &mut sqlx::SqliteConnection, e: &AuditEntry) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO audit (id, at, actor, action, target, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(new_id("au"))
        .bind(millis(e.at))
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.target)
        .bind(&e.outcome)
        .bind(&e.detail)
        .execute(&mut *tx)
        .await
        .context("cannot write the audit log")?;
    Ok(())
}

impl Store {
    /// Store a request. The same id twice (an inbox item delivered again)
    /// stores nothing and returns `false`.
    pub async fn insert_approval(
        &self,
        a: &NewApproval,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        if a.summary.trim().is_empty() {
            bail!("an approval needs a summary: say in one line what will run");
        }
        let expires =
            now + chrono::Duration::from_std(a.expires_in).unwrap_or(chrono::Duration::minutes(30));
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("cannot start a transaction")?;
        let inserted = sqlx::query(
            "INSERT INTO approvals (id, summary, detail, task_id, requested_by, risk, reasons, created_at, expires_at, status, \
             required_approvers, token, reply_to, origin, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&a.id)
        .bind(&a.summary)
        .bind(&a.detail)
        .bind(&a.task_id)
        .bind(&a.requested_by)
        .bind(i64::from(a.risk.min(100)))
        .bind(serde_json::to_string(&a.reasons).context("cannot serialise reasons")?)
        .bind(millis(now))
        .bind(millis(expires))
        .bind(ApprovalStatus::Pending.as_str())
        .bind(i64::from(a.required_approvers.clamp(1, 9)))
        .bind(new_token())
        .bind(&a.reply_to)
        .bind(a.origin.as_str())
        .execute(&mut *tx)
        .await
        .context("cannot store the approval")?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await.ok();
            return Ok(false);
        }
        let detail = format!(
            "risk {} · {} approver(s) · expires {} · {}",
            a.risk,
            a.required_approvers,
            expires.to_rfc3339(),
            a.summary
        );
        insert_audit(
            &mut tx,
            &audit_entry(
                &a.id,
                &a.requested_by,
                "approval.request",
                "pending",
                detail,
                now,
            ),
        )
        .await?;
        tx.commit().await.context("cannot commit the approval")?;
        Ok(true)
    }

    async fn votes(&self, id: &str) -> anyhow::Result<Vec<VoteRecord>> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT voter_name, decision, at FROM approval_votes WHERE approval_id = $1 ORDER BY at, voter")
                .bind(id)
                .fetch_all(self.pool())
                .await
                .context("cannot read votes")?;
        Ok(rows
            .into_iter()
            .map(|(voter, decision, at)| VoteRecord {
                voter,
                decision,
                at: from_millis(at),
            })
            .collect())
    }

    async fn approvals_where(
        &self,
        sql_tail: &str,
        bind: Option<&str>,
    ) -> anyhow::Result<Vec<Approval>> {
        let sql = format!("SELECT {} FROM approvals {sql_tail}", approval_columns!());
        let mut q = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql));
        if let Some(b) = bind {
            q = q.bind(b.to_string());
        }
        let rows = q
            .fetch_all(self.pool())
            .await
            .context("cannot read approvals")?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let votes = self.votes(&r.id).await?;
            out.push(r.into_approval(votes)?);
        }
        Ok(out)
    }

    /// One approval by id.
    pub async fn approval(&self, id: &str) -> anyhow::Result<Option<Approval>> {
        Ok(self
            .approvals_where("WHERE id = $1", Some(id))
            .await?
            .into_iter()
            .next())
    }

    /// The approval a button secret belongs to, with the secret checked in SQL
    /// (an index lookup; a wrong secret finds nothing).
    pub async fn approval_by_token(&self, token: &str) -> anyhow::Result<Option<Approval>> {
        Ok(self
            .approvals_where("WHERE token = $1", Some(token))
            .await?
            .into_iter()
            .next())
    }

    /// The button secret of an approval, for the prompt.
    pub(crate) async fn approval_token(&self, id: &str) -> anyhow::Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT token FROM approvals WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .context("cannot read the approval")?;
        Ok(row.map(|(t,)| t))
    }

    /// Every approval, newest first; only one status when given.
    pub async fn approvals(&self, status: Option<ApprovalStatus>) -> anyhow::Result<Vec<Approval>> {
        match status {
            Some(s) => {
                self.approvals_where(
                    "WHERE status = $1 ORDER BY created_at DESC, id",
                    Some(s.as_str()),
                )
                .await
            }
            None => {
                self.approvals_where("ORDER BY created_at DESC, id", None)
                    .await
            }
        }
    }

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
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("cannot start a transaction")?;
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
            let mut tx = self
                .pool()
                .begin_with("BEGIN IMMEDIATE")
                .await
                .context("cannot start a transaction")?;
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
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("cannot start a transaction")?;
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

/// Pending → `status`, in the caller's transaction. Returns whether it changed.
async fn set_final(
    tx: &mut sqlx::SqliteConnection,
    id: &str,
    status: ApprovalStatus,
    by: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let r = sqlx::query(
        "UPDATE approvals SET status = $1, decided_by = $2, decided_at = $3, updated_at = $3 WHERE id = $4 AND status = $5",
    )
    .bind(status.as_str())
    .bind(by)
    .bind(millis(now))
    .bind(id)
    .bind(ApprovalStatus::Pending.as_str())
    .execute(&mut *tx)
    .await
    .context("cannot decide the approval")?;
    Ok(r.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/state.db", dir.path().display()))
            .await
            .unwrap();
        (dir, store)
    }

    fn new(id: &str, required: u8) -> NewApproval {
        NewApproval {
            id: id.into(),
            origin: ApprovalOrigin::Inbox,
            summary: "Deploy".into(),
            detail: "deploy.sh".into(),
            task_id: None,
            requested_by: "tech-lead".into(),
            risk: 90,
            reasons: vec!["risky".into()],
            expires_in: Duration::from_secs(600),
            required_approvers: required,
            reply_to: None,
        }
    }

    fn voter(i: usize) -> Voter {
        Voter {
            id: format!("telegram:{i}"),
            name: format!("@u{i}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_votes_decide_once() {
        let (_dir, store) = store().await;
        let now = Utc::now();
        assert!(store.insert_approval(&new("apr_1", 1), now).await.unwrap());
        assert!(
            !store.insert_approval(&new("apr_1", 1), now).await.unwrap(),
            "the same id twice stores once"
        );
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                let vote = if i % 2 == 0 {
                    Vote::Approve
                } else {
                    Vote::Deny
                };
                tokio::spawn(async move {
                    store
                        .decide_approval("apr_1", &voter(i), vote, false, Utc::now())
                        .await
                })
            })
            .collect();
        let mut decided = 0;
        let mut already = 0;
        for t in tasks {
            match t.await.unwrap().unwrap() {
                DecideOutcome::Decided { .. } => decided += 1,
                DecideOutcome::AlreadyDecided { .. } => already += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((decided, already), (1, 15));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_approvers_must_be_distinct_and_concurrent_approvals_decide_once() {
        let (_dir, store) = store().await;
        let now = Utc::now();
        store.insert_approval(&new("apr_2", 2), now).await.unwrap();
        assert_eq!(
            store
                .decide_approval("apr_2", &voter(1), Vote::Approve, false, now)
                .await
                .unwrap(),
            DecideOutcome::Awaiting {
                approvals: 1,
                required: 2
            }
        );
        assert_eq!(
            store
                .decide_approval("apr_2", &voter(1), Vote::Approve, false, now)
                .await
                .unwrap(),
            DecideOutcome::AlreadyVoted
        );
        let tasks: Vec<_> = (2..10)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .decide_approval("apr_2", &voter(i), Vote::Approve, false, Utc::now())
                        .await
                })
            })
            .collect();
        let mut decided = Vec::new();
        for t in tasks {
            if let DecideOutcome::Decided { by, status, .. } = t.await.unwrap().unwrap() {
                assert_eq!(status, ApprovalStatus::Approved);
                decided.push(by);
            }
        }
        assert_eq!(decided.len(), 1, "{decided:?}");
        assert!(decided[0].starts_with("@u1 + @u"), "{decided:?}");
    }

    #[tokio::test]
    async fn a_vote_after_expiry_expires_the_request() {
        let (_dir, store) = store().await;
        let then = Utc::now() - chrono::Duration::hours(1);
        store.insert_approval(&new("apr_3", 1), then).await.unwrap();
        assert!(matches!(
            store
                .decide_approval("apr_3", &voter(1), Vote::Approve, false, Utc::now())
                .await
                .unwrap(),
            DecideOutcome::Expired { .. }
        ));
        let a = store.approval("apr_3").await.unwrap().unwrap();
        assert_eq!(a.status, ApprovalStatus::Expired);
        assert!(
            store
                .expire_due_approvals(Utc::now())
                .await
                .unwrap()
                .is_empty(),
            "expired once"
        );
        let audit = store.approval_audit("apr_3").await.unwrap();
        assert!(audit.iter().any(|e| e.action == "approval.expire"));
        assert!(audit.iter().any(|e| e.outcome == "refused"));
    }
}
