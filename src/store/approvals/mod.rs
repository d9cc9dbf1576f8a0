//! Approvals as records (`approvals`, `approval_votes`, `telegram_offsets`):
//! inserting a request, the compare-and-set that decides it (the first valid
//! decision wins, in one transaction that holds the approvals alone: `BEGIN IMMEDIATE` on SQLite, a table lock on PostgreSQL), expiry, and the
//! bookkeeping of the loops that prompt, remind, escalate, forward and
//! finalise. Every change leaves an audit row whose target is the approval id.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};

use super::{AuditEntry, Store, from_millis, millis, new_id};

mod decide;
mod loops;

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

async fn insert_audit(tx: &mut sqlx::AnyConnection, e: &AuditEntry) -> anyhow::Result<()> {
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
        let mut tx = self.begin_approvals().await?;
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
}

/// Pending → `status`, in the caller's transaction. Returns whether it changed.
async fn set_final(
    tx: &mut sqlx::AnyConnection,
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
