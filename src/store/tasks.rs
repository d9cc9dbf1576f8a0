//! Task rows: the spec, its state and attempts, and its intent → receipt →
//! verification records. Functions over an `AnyPool` (the lead wires them
//! into `Store`); sqlx rows stop here and callers get [`TaskRow`].

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::AnyPool;

use crate::tasks::pipeline::TaskReport;
use crate::tasks::{PolicyReport, TaskSpec, TaskState};

#[derive(Debug, thiserror::Error)]
pub enum TaskStoreError {
    #[error("task {0} already exists: give the new task another id")]
    Duplicate(String),
    #[error("no task {0}")]
    NotFound(String),
    #[error("task {id} is {from}; it cannot become {to}")]
    IllegalTransition {
        id: String,
        from: TaskState,
        to: TaskState,
    },
    #[error("task {id}: stored data is unreadable: {message}")]
    Corrupt { id: String, message: String },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Which of seed 001's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Intent,
    Receipt,
    Verification,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Intent => "intent",
            RecordKind::Receipt => "receipt",
            RecordKind::Verification => "verification",
        }
    }
}

/// A stored task, as `task show` needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    pub id: String,
    pub title: String,
    pub state: TaskState,
    pub spec: TaskSpec,
    pub risk_score: u8,
    pub attempts: u32,
    pub reason: Option<String>,
    /// The approval request a parked task waits on (its pipeline's own).
    pub approval_id: Option<String>,
    /// A parked task's inbox item, as filed in done/ (its stem).
    pub item_file: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    title: String,
    state: String,
    spec: String,
    risk_score: i64,
    attempts: i64,
    reason: Option<String>,
    approval_id: Option<String>,
    item_file: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<Row> for TaskRow {
    type Error = TaskStoreError;
    fn try_from(r: Row) -> Result<TaskRow, TaskStoreError> {
        let corrupt = |message: String| TaskStoreError::Corrupt {
            id: r.id.clone(),
            message,
        };
        let state = TaskState::from_str(&r.state).map_err(corrupt)?;
        let spec: TaskSpec = serde_json::from_str(&r.spec).map_err(|e| corrupt(e.to_string()))?;
        Ok(TaskRow {
            state,
            spec,
            risk_score: r.risk_score.clamp(0, 100) as u8,
            attempts: r.attempts.max(0) as u32,
            created_at: DateTime::from_timestamp_millis(r.created_at).unwrap_or_default(),
            updated_at: DateTime::from_timestamp_millis(r.updated_at).unwrap_or_default(),
            id: r.id,
            title: r.title,
            reason: r.reason,
            approval_id: r.approval_id,
            item_file: r.item_file,
        })
    }
}

// A macro, not a const: sqlx takes only literal SQL, and `concat!` keeps it literal.
macro_rules! columns {
    () => {
        "id, title, state, spec, risk_score, attempts, reason, approval_id, item_file, created_at, updated_at"
    };
}

/// Store a new task, `queued`, with its intent (spec and policy verdict).
pub async fn insert(
    pool: &AnyPool,
    spec: &TaskSpec,
    policy: &PolicyReport,
    now: DateTime<Utc>,
) -> Result<(), TaskStoreError> {
    let spec_json = serde_json::to_string(spec).expect("a spec serializes");
    let ms = now.timestamp_millis();
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO tasks (id, title, state, spec, risk_score, attempts, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, $6) ON CONFLICT (id) DO NOTHING",
    )
    .bind(spec.id.as_str())
    .bind(&spec.title)
    .bind(TaskState::Queued.as_str())
    .bind(&spec_json)
    .bind(i64::from(policy.score))
    .bind(ms)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(TaskStoreError::Duplicate(spec.id.to_string()));
    }
    let intent = serde_json::json!({"spec": spec, "policy": policy, "approval": null});
    put_record_in(&mut tx, spec.id.as_str(), RecordKind::Intent, &intent, ms).await?;
    tx.commit().await?;
    Ok(())
}

/// A task that ended, dropped again: back to `queued` with the new spec and
/// verdict, its attempts, reason, approval and item cleared, its intent
/// replaced (the earlier run's files stay in done/ or failed/ under a suffix).
pub async fn restart(
    pool: &AnyPool,
    spec: &TaskSpec,
    policy: &PolicyReport,
    now: DateTime<Utc>,
) -> Result<(), TaskStoreError> {
    let spec_json = serde_json::to_string(spec).expect("a spec serializes");
    let ms = now.timestamp_millis();
    let mut tx = pool.begin().await?;
    let terminal: Vec<&str> = TaskState::ALL
        .iter()
        .filter(|s| s.is_terminal())
        .map(|s| s.as_str())
        .collect();
    let placeholders = (0..terminal.len())
        .map(|i| format!("${}", i + 6))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE tasks SET state = $1, title = $2, spec = $3, risk_score = $4, attempts = 0, reason = NULL, \
         approval_id = NULL, item_file = NULL, updated_at = $5 WHERE id = ${} AND state IN ({placeholders})",
        terminal.len() + 6
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(TaskState::Queued.as_str())
        .bind(&spec.title)
        .bind(&spec_json)
        .bind(i64::from(policy.score))
        .bind(ms);
    for s in &terminal {
        q = q.bind(*s);
    }
    let done = q.bind(spec.id.as_str()).execute(&mut *tx).await?;
    if done.rows_affected() == 0 {
        return Err(TaskStoreError::Duplicate(spec.id.to_string()));
    }
    sqlx::query("DELETE FROM task_records WHERE task_id = $1 AND kind <> $2")
        .bind(spec.id.as_str())
        .bind(RecordKind::Intent.as_str())
        .execute(&mut *tx)
        .await?;
    let intent = serde_json::json!({"spec": spec, "policy": policy, "approval": null});
    put_record_in(&mut tx, spec.id.as_str(), RecordKind::Intent, &intent, ms).await?;
    tx.commit().await?;
    Ok(())
}

/// Record where a parked task's inbox item was filed.
pub async fn set_item_file(
    pool: &AnyPool,
    task_id: &str,
    stem: &str,
) -> Result<(), TaskStoreError> {
    sqlx::query("UPDATE tasks SET item_file = $1 WHERE id = $2")
        .bind(stem)
        .bind(task_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Bind a task to the approval request that decides it.
pub async fn set_approval_id(
    pool: &AnyPool,
    task_id: &str,
    approval_id: &str,
) -> Result<(), TaskStoreError> {
    let done = sqlx::query("UPDATE tasks SET approval_id = $1 WHERE id = $2")
        .bind(approval_id)
        .bind(task_id)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(TaskStoreError::NotFound(task_id.to_string()));
    }
    Ok(())
}

/// Move a task to `to` if its current state allows it (compare-and-set, so
/// two writers cannot both move it).
pub async fn transition(
    pool: &AnyPool,
    id: &str,
    to: TaskState,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<TaskState, TaskStoreError> {
    let from = get(pool, id)
        .await?
        .ok_or_else(|| TaskStoreError::NotFound(id.to_string()))?
        .state;
    if !from.can_become(to) {
        return Err(TaskStoreError::IllegalTransition {
            id: id.to_string(),
            from,
            to,
        });
    }
    let done = sqlx::query(
        "UPDATE tasks SET state = $1, reason = $2, updated_at = $3 WHERE id = $4 AND state = $5",
    )
    .bind(to.as_str())
    .bind(reason)
    .bind(now.timestamp_millis())
    .bind(id)
    .bind(from.as_str())
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        let now_state = get(pool, id).await?.map(|r| r.state).unwrap_or(from);
        return Err(TaskStoreError::IllegalTransition {
            id: id.to_string(),
            from: now_state,
            to,
        });
    }
    Ok(from)
}

/// Store a finished (or gated) pipeline report: state, attempts, reason, records.
pub async fn save_report(
    pool: &AnyPool,
    report: &TaskReport,
    now: DateTime<Utc>,
) -> Result<(), TaskStoreError> {
    let id = report.intent.spec.id.as_str();
    let current = get(pool, id)
        .await?
        .ok_or_else(|| TaskStoreError::NotFound(id.to_string()))?
        .state;
    if current != report.state && !current.can_become(report.state) {
        return Err(TaskStoreError::IllegalTransition {
            id: id.to_string(),
            from: current,
            to: report.state,
        });
    }
    let ms = now.timestamp_millis();
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE tasks SET state = $1, reason = $2, attempts = attempts + $3, updated_at = $4 WHERE id = $5")
        .bind(report.state.as_str())
        .bind(report.reason.as_deref())
        .bind(i64::from(report.attempts))
        .bind(ms)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let intent = serde_json::to_value(&report.intent).expect("serializes");
    put_record_in(&mut tx, id, RecordKind::Intent, &intent, ms).await?;
    if report.attempts > 0 {
        let receipt = serde_json::to_value(&report.receipt).expect("serializes");
        put_record_in(&mut tx, id, RecordKind::Receipt, &receipt, ms).await?;
        let verification = serde_json::to_value(&report.verification).expect("serializes");
        put_record_in(&mut tx, id, RecordKind::Verification, &verification, ms).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn put_record_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    kind: RecordKind,
    body: &serde_json::Value,
    ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO task_records (task_id, kind, body, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (task_id, kind) DO UPDATE SET body = excluded.body, created_at = excluded.created_at",
    )
    .bind(id)
    .bind(kind.as_str())
    .bind(body.to_string())
    .bind(ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn record(
    pool: &AnyPool,
    id: &str,
    kind: RecordKind,
) -> Result<Option<serde_json::Value>, TaskStoreError> {
    let body: Option<(String,)> =
        sqlx::query_as("SELECT body FROM task_records WHERE task_id = $1 AND kind = $2")
            .bind(id)
            .bind(kind.as_str())
            .fetch_optional(pool)
            .await?;
    body.map(|(b,)| {
        serde_json::from_str(&b).map_err(|e| TaskStoreError::Corrupt {
            id: id.into(),
            message: e.to_string(),
        })
    })
    .transpose()
}

pub async fn get(pool: &AnyPool, id: &str) -> Result<Option<TaskRow>, TaskStoreError> {
    let row: Option<Row> =
        sqlx::query_as(concat!("SELECT ", columns!(), " FROM tasks WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    row.map(TaskRow::try_from).transpose()
}

/// Newest first; all states when `state` is `None`.
pub async fn list(
    pool: &AnyPool,
    state: Option<TaskState>,
    limit: u32,
) -> Result<Vec<TaskRow>, TaskStoreError> {
    let rows: Vec<Row> = match state {
        Some(s) => {
            sqlx::query_as(concat!(
                "SELECT ",
                columns!(),
                " FROM tasks WHERE state = $1 ORDER BY created_at DESC, id LIMIT $2"
            ))
            .bind(s.as_str())
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }
        None => {
            sqlx::query_as(concat!(
                "SELECT ",
                columns!(),
                " FROM tasks ORDER BY created_at DESC, id LIMIT $1"
            ))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }
    };
    rows.into_iter().map(TaskRow::try_from).collect()
}

/// After a crash: tasks left `running` are re-queued when attempts remain,
/// or failed with a reason when not, never silently lost. Returns them with
/// their new state.
pub async fn recover_interrupted(
    pool: &AnyPool,
    max_attempts: u32,
    now: DateTime<Utc>,
) -> Result<Vec<(String, TaskState)>, TaskStoreError> {
    let mut out = Vec::new();
    for row in list(pool, Some(TaskState::Running), u32::MAX).await? {
        let (to, reason) = if row.attempts < max_attempts {
            (TaskState::Queued, "interrupted by a restart; queued again")
        } else {
            (
                TaskState::Failed,
                "interrupted by a restart with no attempts left",
            )
        };
        transition(pool, &row.id, to, Some(reason), now).await?;
        out.push((row.id, to));
    }
    Ok(out)
}
