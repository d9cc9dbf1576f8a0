//! The fleet's coordination on PostgreSQL (`fleet.coordination =
//! "postgres://..."`), for fleets whose agents run on several hosts: the
//! fleet's status document (heartbeats and agent states, locks, mutes, the
//! kill switch) lives in one row, changed under a row lock with the same
//! read-modify-write meaning `status.json` has under its file lock, so every
//! CLI command and every agent on any host sees and changes the same fleet.
//!
//! The tables live in the schema `switchyard_coord` (migrations in
//! `migrations/coordination/`), apart from the agents' own schemas, so one
//! database can hold both. The coordination layer's API is blocking (small
//! operations, called from the CLI and from `spawn_blocking`), so its
//! queries run on a small runtime of its own, one per process, which is
//! never dropped: a caller inside another runtime hands the query to a
//! short-lived thread rather than blocking that runtime's thread on itself.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Executor, Postgres, Transaction};

use super::CoordError;
use super::status::Status;

/// The coordination tables' migrations (PostgreSQL only).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/coordination");

/// Serializes creating the schema between processes starting at once.
const SCHEMA_LOCK: i64 = 7_311_052;

/// A connection to the fleet's coordination database.
#[derive(Clone)]
pub struct CoordDb {
    pool: PgPool,
}

impl std::fmt::Debug for CoordDb {
    // The URL may carry a password: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CoordDb(postgres)")
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("switchyard-coord")
            .enable_all()
            .build()
            .expect("the coordination runtime starts")
    })
}

/// Runs `f` to completion on the coordination runtime, from any thread.
pub(crate) fn block<F>(f: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        // Blocking a runtime's own thread on a future is refused by tokio;
        // a scoped thread waits instead (only the CLI and tests get here:
        // agents call the coordination layer from `spawn_blocking`).
        std::thread::scope(|s| {
            s.spawn(|| runtime().block_on(f))
                .join()
                .expect("a coordination query does not panic")
        })
    } else {
        runtime().block_on(f)
    }
}

fn db_error(what: &'static str) -> impl FnOnce(sqlx::Error) -> CoordError {
    move |source| CoordError::Database { what, source }
}

impl CoordDb {
    /// Connects (once per URL and process) and migrates the coordination
    /// tables. The URL is never echoed in an error: it may hold a password.
    pub fn open(url: &str) -> Result<CoordDb, CoordError> {
        static OPEN: OnceLock<Mutex<HashMap<String, CoordDb>>> = OnceLock::new();
        let mut open = OPEN
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(db) = open.get(url) {
            return Ok(db.clone());
        }
        let url_owned = url.to_owned();
        let db = block(async move { connect(&url_owned).await })?;
        open.insert(url.to_owned(), db.clone());
        Ok(db)
    }

    /// The pool, for the queue (`queue.rs`) and its tests. Async callers use it on their
    /// own runtime: a pool serves any runtime while that runtime lives.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The fleet's status document; an empty fleet when none was written yet.
    pub(super) fn read_status(&self) -> Result<Option<Vec<u8>>, CoordError> {
        let pool = self.pool.clone();
        block(async move {
            let row: Option<(String,)> =
                sqlx::query_as("SELECT doc FROM fleet_status WHERE id = 1")
                    .fetch_optional(&pool)
                    .await
                    .map_err(db_error("read the fleet's status"))?;
            Ok(row.map(|(doc,)| doc.into_bytes()))
        })
    }

    /// Changes the status document under its row lock: other writers wait
    /// until this one commits, exactly as for the status file's lock.
    /// `change` gets the stored document (`None`: none yet) and returns the
    /// one to store with its result; an `Err` leaves the row as it was.
    pub(super) fn update_status<R>(
        &self,
        change: impl FnOnce(Option<&[u8]>) -> Result<(Vec<u8>, R), CoordError>,
    ) -> Result<R, CoordError> {
        let pool = self.pool.clone();
        let (tx, current) = block(async move {
            let mut tx = pool
                .begin()
                .await
                .map_err(db_error("start a transaction"))?;
            // The row exists from the first change on; creating it is part of
            // the same locked step, so two first writers do not both win.
            sqlx::query(
                "INSERT INTO fleet_status (id, doc) VALUES (1, '') ON CONFLICT (id) DO NOTHING",
            )
            .execute(&mut *tx)
            .await
            .map_err(db_error("create the fleet's status"))?;
            let (doc,): (String,) =
                sqlx::query_as("SELECT doc FROM fleet_status WHERE id = 1 FOR UPDATE")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error("lock the fleet's status"))?;
            Ok::<(Transaction<'static, Postgres>, String), CoordError>((tx, doc))
        })?;
        let stored = (!current.is_empty()).then_some(current.as_bytes());
        let (doc, result) = match change(stored) {
            Ok(v) => v,
            Err(e) => {
                block(async move { tx.rollback().await.ok() });
                return Err(e);
            }
        };
        let doc = String::from_utf8(doc).expect("the status serializes to UTF-8");
        block(async move {
            let mut tx = tx;
            sqlx::query("UPDATE fleet_status SET doc = $1, version = version + 1, updated_at = now() WHERE id = 1")
                .bind(doc)
                .execute(&mut *tx)
                .await
                .map_err(db_error("write the fleet's status"))?;
            tx.commit()
                .await
                .map_err(db_error("commit the fleet's status"))
        })?;
        Ok(result)
    }

    /// How many times the status was changed: a cheap question that tells a
    /// reader whether its copy is still current.
    pub(super) fn status_version(&self) -> Result<i64, CoordError> {
        let pool = self.pool.clone();
        block(async move {
            let row: Option<(i64,)> =
                sqlx::query_as("SELECT version FROM fleet_status WHERE id = 1")
                    .fetch_optional(&pool)
                    .await
                    .map_err(db_error("read the fleet's status version"))?;
            Ok(row.map_or(0, |(v,)| v))
        })
    }
}

async fn connect(url: &str) -> Result<CoordDb, CoordError> {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .map_err(db_error("connect to the coordination database"))?;
    let mut tx = sqlx::Connection::begin(&mut conn)
        .await
        .map_err(db_error("start a transaction"))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SCHEMA_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(db_error("take the schema lock"))?;
    tx.execute("CREATE SCHEMA IF NOT EXISTS switchyard_coord")
        .await
        .map_err(db_error("create the schema switchyard_coord"))?;
    tx.commit()
        .await
        .map_err(db_error("create the schema switchyard_coord"))?;
    sqlx::Connection::close(conn).await.ok();
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("SET search_path TO switchyard_coord").await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .map_err(db_error("connect to the coordination database"))?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| CoordError::Database {
            what: "migrate the coordination database",
            source: sqlx::Error::Migrate(Box::new(e)),
        })?;
    Ok(CoordDb { pool })
}

/// The status as stored: `None` is an empty fleet.
pub(super) fn parse(doc: Option<&[u8]>) -> Result<Status, CoordError> {
    match doc {
        None => Ok(Status::default()),
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| CoordError::CorruptStatus {
            path: "postgres: switchyard_coord.fleet_status".into(),
            why: e.to_string(),
        }),
    }
}
