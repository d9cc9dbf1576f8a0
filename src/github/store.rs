//! Persistence of the GitHub monitor over `&sqlx::AnyPool`
//! (`migrations/0003_github.sql`): tracked tasks, per-task monitor state and
//! the ETag cache. sqlx rows stop here; callers get project types.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use sqlx::AnyPool;

use super::client::CachedBody;
use super::monitor::TaskState;
use super::registry::{TaskRecord, TrackedTask};

/// Inserts or replaces tasks (one transaction): `registry import`.
pub async fn upsert_tasks(
    pool: &AnyPool,
    tasks: &[TrackedTask],
    now_ms: i64,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    for t in tasks {
        let record = serde_json::to_string(&t.record)?;
        sqlx::query(
            "INSERT INTO github_tasks (id, agent, repo, branch, status, record, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET agent = $2, repo = $3, branch = $4, status = $5, record = $6, updated_at = $7",
        )
        .bind(t.id())
        .bind(&t.record.agent)
        .bind(t.repo.to_string())
        .bind(&t.record.branch)
        .bind(t.record.status.as_str())
        .bind(record)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .with_context(|| format!("storing GitHub task {:?}", t.id()))?;
    }
    tx.commit().await?;
    Ok(())
}

/// Tasks in id order; only those the named agent monitors when `agent` is given.
pub async fn list_tasks(pool: &AnyPool, agent: Option<&str>) -> anyhow::Result<Vec<TrackedTask>> {
    let rows: Vec<(String, String)> = match agent {
        Some(a) => {
            sqlx::query_as("SELECT id, record FROM github_tasks WHERE agent = $1 ORDER BY id")
                .bind(a)
                .fetch_all(pool)
                .await?
        }
        None => {
            sqlx::query_as("SELECT id, record FROM github_tasks ORDER BY id")
                .fetch_all(pool)
                .await?
        }
    };
    rows.into_iter()
        .map(|(id, record)| {
            let record: TaskRecord = serde_json::from_str(&record)
                .with_context(|| format!("stored GitHub task {id:?} is not valid JSON"))?;
            TrackedTask::new(record)
                .map_err(|p| anyhow::anyhow!("stored GitHub task {id:?}: {}", p.join("; ")))
        })
        .collect()
}

pub async fn remove_task(pool: &AnyPool, id: &str) -> anyhow::Result<bool> {
    let done = sqlx::query("DELETE FROM github_tasks WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// `switchyard registry import FILE`: validates the whole file, then stores it.
pub async fn import_file(pool: &AnyPool, path: &Path, now_ms: i64) -> anyhow::Result<usize> {
    let tasks = super::registry::import(path)?;
    upsert_tasks(pool, &tasks, now_ms).await?;
    Ok(tasks.len())
}

/// `switchyard registry export FILE`.
pub async fn export_file(pool: &AnyPool, path: &Path) -> anyhow::Result<usize> {
    let tasks = list_tasks(pool, None).await?;
    super::registry::export(path, &tasks)?;
    Ok(tasks.len())
}

pub async fn save_state(
    pool: &AnyPool,
    task_id: &str,
    state: &TaskState,
    now_ms: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO github_monitor_state (task_id, state, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (task_id) DO UPDATE SET state = $2, updated_at = $3",
    )
    .bind(task_id)
    .bind(serde_json::to_string(state)?)
    .bind(now_ms)
    .execute(pool)
    .await
    .with_context(|| format!("storing monitor state of GitHub task {task_id:?}"))?;
    Ok(())
}

pub async fn load_states(pool: &AnyPool) -> anyhow::Result<HashMap<String, TaskState>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT task_id, state FROM github_monitor_state")
            .fetch_all(pool)
            .await?;
    rows.into_iter()
        .map(|(id, s)| {
            Ok((
                id,
                serde_json::from_str(&s).context("stored monitor state is not valid JSON")?,
            ))
        })
        .collect()
}

pub async fn save_etags(pool: &AnyPool, entries: &[CachedBody], now_ms: i64) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    for e in entries {
        sqlx::query(
            "INSERT INTO github_etags (url, etag, body, fetched_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (url) DO UPDATE SET etag = $2, body = $3, fetched_at = $4",
        )
        .bind(&e.url)
        .bind(&e.etag)
        .bind(&e.body)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn load_etags(pool: &AnyPool) -> anyhow::Result<Vec<CachedBody>> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT url, etag, body FROM github_etags ORDER BY url")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(url, etag, body)| CachedBody { url, etag, body })
        .collect())
}

/// Drops cache entries not refreshed since `before_ms` (old head shas).
pub async fn prune_etags(pool: &AnyPool, before_ms: i64) -> anyhow::Result<u64> {
    let done = sqlx::query("DELETE FROM github_etags WHERE fetched_at < $1")
        .bind(before_ms)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
