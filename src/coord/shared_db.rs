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
//! queries run as tasks on a runtime of its own, one thread per process
//! that only drives them; a caller waits for the answer on a channel (from
//! a runtime's worker, in `block_in_place`, so the worker's other tasks go on).

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

/// How long a renewal waits for a connection: well inside a lease's life.
const LEASE_ACQUIRE: Duration = Duration::from_secs(1);

/// Serializes creating the schema between processes starting at once.
const SCHEMA_LOCK: i64 = 7_311_052;

/// A connection to the fleet's coordination database: two pools. The
/// blocking API's queries (the status) run on the coordination runtime
/// with a pool of their own, so that a caller blocked on one never waits
/// for a connection held by an async task of its own runtime (which, its
/// threads blocked, could not give it back: a deadlock until the acquire
/// timeout). The async users (the queue, the standbys, the listeners) share
/// a second, whose connections are made by the runtime that asks. The
/// holders' lease renewals have a third, on the coordination runtime too,
/// so that neither a busy agent nor a burst of claims can delay a renewal
/// until the lease lapses under a live holder.
#[derive(Clone)]
pub struct CoordDb {
    pool: PgPool,
    status_pool: PgPool,
    lease_pool: PgPool,
}

impl std::fmt::Debug for CoordDb {
    // The URL may carry a password: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CoordDb(postgres)")
    }
}

/// The coordination runtime: one thread of its own that only drives its
/// tasks, never blocked by a caller.
fn runtime() -> &'static tokio::runtime::Handle {
    static RUNTIME: OnceLock<tokio::runtime::Handle> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the coordination runtime starts");
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("switchyard-coord".into())
            .spawn(move || rt.block_on(std::future::pending::<()>()))
            .expect("the coordination thread starts");
        handle
    })
}

/// Runs `f` as a task of the coordination runtime and waits for its
/// output, from any thread (inside another runtime too: the caller's
/// thread waits on a channel, it never drives a runtime itself).
pub(crate) fn block<F>(f: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(f.await);
    });
    let wait = move || rx.recv().expect("a coordination query does not panic");
    // On a worker of a multi-threaded runtime (the agent's loops), the
    // worker's other tasks move to another thread while this one waits: a
    // query that waits out a database outage must not stall the agent (its
    // health probes, gateway heartbeats and timers with it).
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
        _ => wait(),
    }
}

/// Runs `f` as a task of the coordination runtime, apart from the caller's
/// runtime: for work whose timing must not depend on how busy that is.
pub(crate) fn spawn<F>(f: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime().spawn(f)
}

/// A failed query as the coordination layer reports it: a refused
/// privilege (SQLSTATE 42501: a producer's or worker's role, or the kill
/// switch's guard) is said as such, apart from the database being away.
pub(super) fn db_error(what: &'static str) -> impl FnOnce(sqlx::Error) -> CoordError {
    move |source| match &source {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42501") => {
            CoordError::NotAllowed {
                what,
                why: db.message().to_owned(),
            }
        }
        _ => CoordError::Database { what, source },
    }
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

    /// The pool of the lease renewals: used only from [`spawn`]ed tasks.
    pub(super) fn lease_pool(&self) -> &PgPool {
        &self.lease_pool
    }

    /// Whether the server answers, on the coordination runtime (whatever the
    /// caller's runtime is doing).
    pub async fn ping(&self) -> Result<(), CoordError> {
        let pool = self.status_pool.clone();
        spawn(async move {
            sqlx::query("SELECT 1")
                .execute(&pool)
                .await
                .map(drop)
                .map_err(db_error("reach the coordination database"))
        })
        .await
        .unwrap_or_else(|_| Err(CoordError::Unanswered))
    }

    /// The fleet's status document; an empty fleet when none was written yet.
    pub(super) fn read_status(&self) -> Result<Option<String>, CoordError> {
        let pool = self.status_pool.clone();
        block(async move {
            let row: Option<(String,)> =
                sqlx::query_as("SELECT doc FROM fleet_status WHERE id = 1")
                    .fetch_optional(&pool)
                    .await
                    .map_err(db_error("read the fleet's status"))?;
            Ok(row.map(|(doc,)| doc))
        })
    }

    /// Changes the status document under its row lock: other writers wait
    /// until this one commits, exactly as for the status file's lock.
    /// `change` gets the stored document (`None`: none yet) and returns the
    /// one to store with its result; an `Err` leaves the row as it was.
    pub(super) fn update_status<R>(
        &self,
        change: impl FnOnce(Option<&str>) -> Result<(String, R), CoordError>,
    ) -> Result<R, CoordError> {
        let pool = self.status_pool.clone();
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
        let stored = (!current.is_empty()).then_some(current.as_str());
        let (doc, result) = match change(stored) {
            Ok(v) => v,
            Err(e) => {
                block(async move { tx.rollback().await.ok() });
                return Err(e);
            }
        };
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
        let pool = self.status_pool.clone();
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
    // Asked first: a producer's or worker's role may use the schema but not
    // create one, and PostgreSQL checks that right even for IF NOT EXISTS.
    let (exists,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'switchyard_coord')",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(db_error("look for the schema switchyard_coord"))?;
    if !exists {
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
    }
    sqlx::Connection::close(conn).await.ok();
    let options = || {
        PgPoolOptions::new()
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("SET search_path TO switchyard_coord").await?;
                    Ok(())
                })
            })
    };
    let status_pool = options()
        .max_connections(4)
        .connect(url)
        .await
        .map_err(db_error("connect to the coordination database"))?;
    // Tables already current are not touched: the migrator would create its
    // own table first, which only the owner may.
    if !migrated(&status_pool).await {
        MIGRATOR.run(&status_pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(source) => {
                db_error("migrate the coordination database")(source)
            }
            e => CoordError::Database {
                what: "migrate the coordination database",
                source: sqlx::Error::Migrate(Box::new(e)),
            },
        })?;
    }
    // Two listeners hold a connection each for good (the inbox's and the
    // results'); the rest serve claims, renewals and outcomes.
    let pool = options()
        .max_connections(10)
        .connect_lazy(url)
        .map_err(db_error("connect to the coordination database"))?;
    // Made here, on the coordination runtime, which then drives its I/O.
    let lease_pool = options()
        .max_connections(2)
        .acquire_timeout(LEASE_ACQUIRE)
        .connect_lazy(url)
        .map_err(db_error("connect to the coordination database"))?;
    Ok(CoordDb {
        pool,
        status_pool,
        lease_pool,
    })
}

/// Whether every migration this build knows has been applied.
async fn migrated(pool: &PgPool) -> bool {
    let applied: Result<Vec<(i64,)>, _> =
        sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await;
    let Ok(applied) = applied else {
        return false;
    };
    let applied: std::collections::HashSet<i64> = applied.into_iter().map(|(v,)| v).collect();
    MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .all(|m| applied.contains(&m.version))
}

/// The status as stored: `None` is an empty fleet.
pub(super) fn parse(doc: Option<&str>) -> Result<Status, CoordError> {
    match doc {
        None => Ok(Status::default()),
        Some(doc) => serde_json::from_str(doc).map_err(|e| CoordError::CorruptStatus {
            path: "postgres: switchyard_coord.fleet_status".into(),
            why: e.to_string(),
        }),
    }
}
