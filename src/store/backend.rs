//! The two databases a store can be on, and what differs between them: where an agent's
//! tables live on a shared PostgreSQL database (a schema per agent), and the
//! one lock the outbox needs on PostgreSQL to number its rows. Every query is
//! otherwise the same text on both (portable SQL, `$N` placeholders).

use std::fmt;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool};
use sqlx::{AssertSqlSafe, Connection, Executor};

/// One set of migrations for both backends: the SQL is portable (see
/// `migrations/README.md`); a backend gets a folder of its own only when its
/// SQL must differ.
pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Which database engine a store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file per agent (`sqlite://...`), the embedded default.
    Sqlite,
    /// One shared server (`postgres://...` or `postgresql://...`), a schema per agent.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

impl Backend {
    /// The backend a database URL names.
    pub fn of(database_url: &str) -> anyhow::Result<Backend> {
        if database_url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
        {
            Ok(Backend::Postgres)
        } else {
            bail!(
                "the database URL does not start with sqlite: or postgres://: use \
                 sqlite://PATH (one file per agent) or postgres://USER@HOST/DB"
            )
        }
    }

    /// The schema an agent's tables live in, on a backend that shares one
    /// database between agents. Agent names are lowercase letters, digits, `-`
    /// and `_` (checked by the configuration), so the quoted name is unambiguous.
    pub fn agent_schema(self, agent: &str) -> Option<String> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some(format!("agent_{agent}")),
        }
    }

    /// Locks the outbox against other writers until the transaction ends, so
    /// that `MAX(seq) + 1` numbers rows without a gap or a twin (SQLite needs
    /// nothing: it has one writer at a time).
    pub(super) async fn lock_outbox(self, tx: &mut AnyConnection) -> anyhow::Result<()> {
        if self == Backend::Postgres {
            tx.execute("LOCK TABLE deliveries IN EXCLUSIVE MODE")
                .await
                .context("cannot lock the outbox to number a delivery")?;
        }
        Ok(())
    }
}

/// A schema name as a quoted SQL identifier; `None` when it holds a character
/// no agent name has (the caller's mistake, said in full).
fn quoted_schema(schema: &str) -> anyhow::Result<String> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok {
        bail!(
            "{schema:?} cannot name a PostgreSQL schema: use at most 63 lowercase letters, digits, `-` or `_`"
        );
    }
    Ok(format!("\"{schema}\""))
}

/// Opens a pool on PostgreSQL whose connections see only `schema` (created if
/// missing), and migrates it. sqlx's migrator holds an advisory lock while it
/// runs, so agents starting at once migrate one after another.
pub(super) async fn open_postgres(
    database_url: &str,
    schema: Option<&str>,
) -> anyhow::Result<AnyPool> {
    let schema = schema.map(quoted_schema).transpose()?;
    if let Some(schema) = &schema {
        let mut conn = AnyConnection::connect(database_url)
            .await
            .context("cannot connect to the PostgreSQL database")?;
        // Two agents creating their schemas at the same moment can collide in
        // the catalogue even with IF NOT EXISTS: one at a time, in a transaction.
        let mut tx = conn.begin().await.context("cannot start a transaction")?;
        tx.execute("SELECT pg_advisory_xact_lock(7311051)")
            .await
            .context("cannot take the schema lock")?;
        tx.execute(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .await
        .with_context(|| format!("cannot create the schema {schema}"))?;
        tx.commit().await.context("cannot create the schema")?;
        conn.close().await.ok();
    }
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _meta| {
            let schema = schema.clone();
            Box::pin(async move {
                if let Some(schema) = schema {
                    conn.execute(AssertSqlSafe(format!("SET search_path TO {schema}")))
                        .await?;
                }
                Ok(())
            })
        })
        .connect(database_url)
        .await
        .context("cannot connect to the PostgreSQL database")?;
    MIGRATOR
        .run(&pool)
        .await
        .context("cannot migrate the PostgreSQL database")?;
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(Backend::of("sqlite://a/b.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of("postgres://u@h/db").unwrap(), Backend::Postgres);
        assert_eq!(
            Backend::of("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        let err = Backend::of("mysql://secret@h/db").unwrap_err().to_string();
        assert!(!err.contains("secret"), "the URL is not echoed: {err}");
    }

    #[test]
    fn schemas_are_quoted_agent_names() {
        assert_eq!(
            Backend::Postgres.agent_schema("tech-lead").as_deref(),
            Some("agent_tech-lead")
        );
        assert_eq!(Backend::Sqlite.agent_schema("x"), None);
        assert_eq!(quoted_schema("agent_a-b").unwrap(), "\"agent_a-b\"");
        assert!(quoted_schema("a\"; DROP").is_err());
    }
}
