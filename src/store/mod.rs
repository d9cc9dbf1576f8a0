//! The agent's own durable state (sqlx): SQLite in WAL mode by default, or
//! PostgreSQL, where every agent of a fleet keeps its tables in a schema of its
//! own (`agent_<name>`) of one shared database.
//!
//! This module owns opening the database (either backend, through sqlx's `Any`
//! driver, so that every query is written once), running the
//! migrations (`migrations/`, portable SQL for both; SQLite's under a
//! cross-process file lock, PostgreSQL's under sqlx's advisory lock), and the
//! core table families: events, the outbox (`deliveries`), held messages and
//! the audit log. The outbox queries the
//! delivery worker uses live in [`outbox`]. Sibling modules written for other
//! tables reach the pool through [`Store::pool`]. sqlx rows stop here: callers
//! get the project's own types.

pub mod approvals;
mod discord_state;
mod files;
mod held;
pub mod outbox;
pub mod tasks;

use anyhow::Context;
use chrono::{DateTime, Utc};
pub use outbox::{HELD_DIGEST_EVENT_TYPE, HeldDigest};
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, AnyPool};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use switchyard_routing::{Category, Destination, Event, Hold, MuteId, Severity};

mod backend;
pub use backend::Backend;

/// The agent's database. Cheap to clone: it wraps the connection pool.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl fmt::Debug for Store {
    // The URL may carry a password: it is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Where an outbox row is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeliveryState {
    /// Waiting to be sent (possibly after `next_attempt_at`, when retrying).
    Pending,
    /// Handed to a platform; a row left here by a crash is recovered at start.
    Sending,
    /// Accepted by the platform; `platform_message_id` is set.
    Sent,
    /// Held by a mute until the mute ends.
    Held,
    /// Went out as part of a summary: a "while muted" digest or a coalesced message.
    Digested,
    /// Gave up: the retry budget is spent or the platform refused it for good.
    Failed,
    /// The outcome is unknown and resending could post twice (Telegram,
    /// webhooks): reported, not replayed.
    Ambiguous,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 7] = [
        DeliveryState::Pending,
        DeliveryState::Sending,
        DeliveryState::Sent,
        DeliveryState::Held,
        DeliveryState::Digested,
        DeliveryState::Failed,
        DeliveryState::Ambiguous,
    ];

    /// The name stored in the database and used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Held => "held",
            DeliveryState::Digested => "digested",
            DeliveryState::Failed => "failed",
            DeliveryState::Ambiguous => "ambiguous",
        }
    }
}

impl FromStr for DeliveryState {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        DeliveryState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .with_context(|| format!("unknown delivery state {s:?} in the database"))
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a new delivery starts out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewDeliveryState {
    Pending,
    /// Held by a mute or a digest window, until it ends.
    Held {
        hold: Hold,
    },
}

/// One destination a routed event goes to, with the rule that sent it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub destination: Destination,
    pub rule: String,
    pub state: NewDeliveryState,
    /// The files that go with it, fitted to its platform (most have none).
    pub files: Vec<crate::files::Attached>,
}

/// What [`Store::record_event`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The event and its deliveries are stored; ids in the order given.
    Inserted { delivery_ids: Vec<String> },
    /// An event with this `event_id` was stored before: nothing was written.
    Duplicate,
}

/// One row of the audit log: who did what to what, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// An outbox row as callers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: String,
    pub seq: i64,
    pub event_id: Option<String>,
    pub destination: Destination,
    pub rule: String,
    pub state: DeliveryState,
    pub category: Category,
    pub severity: Severity,
    pub source: String,
    pub event_type: String,
    pub title: String,
    pub body: String,
    pub occurred_at: DateTime<Utc>,
    pub mute_id: Option<String>,
    pub attempts: u32,
    /// Parts of a split message already accepted (Telegram splits at 4096).
    pub parts_sent: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub platform_message_id: Option<String>,
    pub coalesced_into: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// How many files go with it (kept in `delivery_files`).
    pub files: u32,
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRecord {
    id: String,
    seq: i64,
    event_id: Option<String>,
    destination: String,
    rule: String,
    state: String,
    category: String,
    severity: String,
    source: String,
    event_type: String,
    title: String,
    body: String,
    occurred_at: i64,
    mute_id: Option<String>,
    attempts: i64,
    parts_sent: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    platform_message_id: Option<String>,
    coalesced_into: Option<String>,
    created_at: i64,
    sent_at: Option<i64>,
    files: i64,
}

/// The columns [`DeliveryRecord`] reads, as a literal for `concat!` (sqlx
/// accepts only literal SQL without an audit wrapper).
macro_rules! delivery_columns {
    () => {
        "id, seq, event_id, destination, rule, state, category, severity, source, event_type, title, body, \
         occurred_at, mute_id, attempts, parts_sent, next_attempt_at, last_error, platform_message_id, \
         coalesced_into, created_at, sent_at, files"
    };
}
pub(crate) use delivery_columns;

impl TryFrom<DeliveryRecord> for DeliveryRow {
    type Error = anyhow::Error;
    fn try_from(r: DeliveryRecord) -> anyhow::Result<Self> {
        Ok(DeliveryRow {
            destination: r
                .destination
                .parse()
                .with_context(|| format!("delivery {} has a bad destination", r.id))?,
            state: r.state.parse()?,
            category: r.category.parse().unwrap_or_else(|never| match never {}),
            severity: r.severity.parse().map_err(anyhow::Error::msg)?,
            occurred_at: from_millis(r.occurred_at),
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            parts_sent: u32::try_from(r.parts_sent).unwrap_or(0),
            next_attempt_at: from_millis(r.next_attempt_at),
            created_at: from_millis(r.created_at),
            sent_at: r.sent_at.map(from_millis),
            id: r.id,
            seq: r.seq,
            event_id: r.event_id,
            rule: r.rule,
            source: r.source,
            event_type: r.event_type,
            title: r.title,
            body: r.body,
            mute_id: r.mute_id,
            last_error: r.last_error,
            platform_message_id: r.platform_message_id,
            coalesced_into: r.coalesced_into,
            files: u32::try_from(r.files).unwrap_or(0),
        })
    }
}

pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A short unique id: `prefix` + time + randomness, at most 25 characters so
/// that a delivery id can serve as Discord's `nonce` as it is.
pub(crate) fn new_id(prefix: &str) -> String {
    let t = radix36(u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0));
    let r = radix36(rand::random::<u64>() % 36u64.pow(11));
    format!("{prefix}{t}{r:0>11}")
}

fn radix36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The database file a `sqlite:` URL names, if it names one.
fn sqlite_file(options: &SqliteConnectOptions) -> Option<PathBuf> {
    let name = options.get_filename();
    (!name.as_os_str().is_empty() && name != Path::new(":memory:")).then(|| name.to_path_buf())
}

/// Opens (creating the file and its directories if needed) a SQLite database
/// in WAL mode and migrates it under an exclusive lock on `<db>.migrate-lock`:
/// several agents may start at once, and SQLite's migrator does not lock by itself.
async fn open_sqlite(database_url: &str) -> anyhow::Result<AnyPool> {
    let options = SqliteConnectOptions::from_str(database_url)
        .with_context(|| format!("database URL {database_url:?} is not a valid SQLite URL"))?;
    let file = sqlite_file(&options);
    if let Some(parent) = file
        .as_deref()
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).with_context(|| {
            format!("cannot create the database directory {}", parent.display())
        })?;
    }
    // The Any driver takes a URL: `mode=rwc` creates a missing file; the
    // pragmas the URL cannot carry are set on every new connection.
    let url = match &file {
        Some(_) if !database_url.contains("mode=") => {
            let sep = if database_url.contains('?') { '&' } else { '?' };
            format!("{database_url}{sep}mode=rwc")
        }
        _ => database_url.to_owned(),
    };
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                )
                .await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .with_context(|| format!("cannot open the database {database_url}"))?;
    let lock = match &file {
        Some(db) => {
            let mut lock_path = db.clone().into_os_string();
            lock_path.push(".migrate-lock");
            let lock_path = PathBuf::from(lock_path);
            Some(
                tokio::task::spawn_blocking(move || -> anyhow::Result<std::fs::File> {
                    let f = std::fs::OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(&lock_path)
                        .with_context(|| {
                            format!("cannot open the migration lock {}", lock_path.display())
                        })?;
                    f.lock()
                        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
                    Ok(f)
                })
                .await
                .context("the migration lock task panicked")??,
            )
        }
        None => None,
    };
    let migrated = backend::MIGRATOR.run(&pool).await;
    drop(lock);
    migrated.with_context(|| format!("cannot migrate the database {database_url}"))?;
    Ok(pool)
}

impl Store {
    /// Open the database at `database_url` (`sqlite:` or `postgres:`), creating
    /// it if needed, and bring its schema up to date. On PostgreSQL the tables
    /// live in the database's default schema; agents use [`Store::open_agent`].
    pub async fn open(database_url: &str) -> anyhow::Result<Store> {
        Self::open_in(database_url, None).await
    }

    /// Open one agent's store: on SQLite the file the URL names (one per
    /// agent), on PostgreSQL the schema `agent_<name>` of the shared database.
    pub async fn open_agent(database_url: &str, agent: &str) -> anyhow::Result<Store> {
        let schema = Backend::of(database_url)?.agent_schema(agent);
        Self::open_in(database_url, schema.as_deref()).await
    }

    async fn open_in(database_url: &str, schema: Option<&str>) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(database_url)?;
        let pool = match backend {
            Backend::Sqlite => open_sqlite(database_url).await?,
            Backend::Postgres => backend::open_postgres(database_url, schema).await?,
        };
        Ok(Store { pool, backend })
    }

    /// A transaction that decides approvals one at a time: SQLite's writer
    /// lock taken at `BEGIN IMMEDIATE`, or PostgreSQL's lock on the approvals
    /// table (reads still go on), so "first decision wins" holds on both.
    pub(crate) async fn begin_approvals(
        &self,
    ) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Any>> {
        use sqlx::Executor;
        match self.backend {
            Backend::Sqlite => self
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .context("cannot start a transaction"),
            Backend::Postgres => {
                let mut tx = self
                    .pool
                    .begin()
                    .await
                    .context("cannot start a transaction")?;
                tx.execute("LOCK TABLE approvals IN EXCLUSIVE MODE")
                    .await
                    .context("cannot lock the approvals")?;
                Ok(tx)
            }
        }
    }

    /// Whether the database answers: one round trip on a pooled connection.
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .context("the agent's database (fleet.database) does not answer")?;
        Ok(())
    }

    /// Which database this store is on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for sibling store modules (tasks, approvals).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Store an event and all its deliveries in ONE transaction. The same
    /// `event_id` twice is [`Recorded::Duplicate`] and writes nothing.
    pub async fn record_event(
        &self,
        ev: &Event,
        deliveries: &[NewDelivery],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Recorded> {
        let payload = serde_json::to_string(ev).context("cannot serialise the event")?;
        let mut tx = self
            .pool
            .begin()
            .await
            .context("cannot start a transaction")?;
        let inserted = sqlx::query(
            "INSERT INTO events (event_id, event_type, category, severity, source, title, occurred_at, recorded_at, payload) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(ev.event_id.as_str())
        .bind(&ev.event_type)
        .bind(ev.category.as_str())
        .bind(ev.severity.as_str())
        .bind(&ev.source)
        .bind(&ev.title)
        .bind(millis(ev.timestamp))
        .bind(millis(now))
        .bind(&payload)
        .execute(&mut *tx)
        .await
        .context("cannot store the event")?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await.ok();
            return Ok(Recorded::Duplicate);
        }
        let mut ids = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            let id = new_id("dl");
            let (state, hold) = match &d.state {
                NewDeliveryState::Pending => (DeliveryState::Pending, None),
                NewDeliveryState::Held { hold } => (DeliveryState::Held, Some(hold)),
            };
            let (hold_kind, mute_id, digest_category) = match hold {
                None => ("", None, None),
                Some(Hold::Mute(id)) => ("mute", Some(id.as_str()), None),
                Some(Hold::Digest(category)) => ("digest", None, Some(category.as_str())),
            };
            let content = Content {
                category: ev.category.as_str(),
                severity: ev.severity,
                source: &ev.source,
                event_type: &ev.event_type,
                title: &ev.title,
                body: &ev.body,
                occurred_at: ev.timestamp,
            };
            insert_delivery(
                &mut tx,
                self.backend,
                &id,
                Some(ev.event_id.as_str()),
                &d.destination,
                &d.rule,
                state,
                &content,
                mute_id,
                now,
            )
            .await?;
            files::insert_files(&mut tx, &id, &d.files).await?;
            if hold.is_some() {
                sqlx::query(
                    "INSERT INTO held_messages (delivery_id, hold_kind, mute_id, digest_category, event_id, destination, held_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&id)
                .bind(hold_kind)
                .bind(mute_id)
                .bind(digest_category)
                .bind(ev.event_id.as_str())
                .bind(d.destination.to_string())
                .bind(millis(now))
                .execute(&mut *tx)
                .await
                .context("cannot store a held message")?;
            }
            ids.push(id);
        }
        tx.commit()
            .await
            .context("cannot commit the event and its deliveries")?;
        Ok(Recorded::Inserted { delivery_ids: ids })
    }

    /// Enqueue a message that has no event of its own (mute notices, "while
    /// muted" digests). Returns the delivery id; the outbox sends it like any other.
    pub async fn enqueue_notice(
        &self,
        destination: &Destination,
        title: &str,
        body: &str,
        severity: Severity,
        now: DateTime<Utc>,
    ) -> anyhow::Result<String> {
        let id = new_id("dn");
        let content = Content {
            category: "system",
            severity,
            source: "switchyard",
            event_type: "switchyard.notice",
            title,
            body,
            occurred_at: now,
        };
        let mut tx = self
            .pool
            .begin()
            .await
            .context("cannot start a transaction")?;
        insert_delivery(
            &mut tx,
            self.backend,
            &id,
            None,
            destination,
            "notice",
            DeliveryState::Pending,
            &content,
            None,
            now,
        )
        .await?;
        tx.commit().await.context("cannot commit the notice")?;
        Ok(id)
    }

    /// Append one row to the audit log.
    pub async fn audit(&self, entry: AuditEntry) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO audit (id, at, actor, action, target, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new_id("au"))
        .bind(millis(entry.at))
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.outcome)
        .bind(&entry.detail)
        .execute(&self.pool)
        .await
        .context("cannot write the audit log")?;
        Ok(())
    }

    /// The most recent audit rows, newest first.
    pub async fn recent_audit(&self, limit: u32) -> anyhow::Result<Vec<AuditEntry>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            at: i64,
            actor: String,
            action: String,
            target: String,
            outcome: String,
            detail: String,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT at, actor, action, target, outcome, detail FROM audit ORDER BY at DESC, id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .context("cannot read the audit log")?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                actor: r.actor,
                action: r.action,
                target: r.target,
                outcome: r.outcome,
                detail: r.detail,
                at: from_millis(r.at),
            })
            .collect())
    }

    /// How many outbox rows are in each state (every state present, zeros included).
    pub async fn delivery_counts(&self) -> anyhow::Result<BTreeMap<DeliveryState, u64>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
                .fetch_all(&self.pool)
                .await
                .context("cannot count deliveries")?;
        let mut counts: BTreeMap<DeliveryState, u64> =
            DeliveryState::ALL.into_iter().map(|s| (s, 0)).collect();
        for (state, n) in rows {
            counts.insert(state.parse()?, u64::try_from(n).unwrap_or(0));
        }
        Ok(counts)
    }

    /// Every delivery of one event, in outbox order.
    pub async fn deliveries_for_event(&self, event_id: &str) -> anyhow::Result<Vec<DeliveryRow>> {
        let rows: Vec<DeliveryRecord> = sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries WHERE event_id = $1 ORDER BY seq"
        ))
        .bind(event_id)
        .fetch_all(&self.pool)
        .await
        .context("cannot read deliveries")?;
        rows.into_iter().map(DeliveryRow::try_from).collect()
    }

    /// One delivery by id.
    pub async fn delivery(&self, id: &str) -> anyhow::Result<Option<DeliveryRow>> {
        let row: Option<DeliveryRecord> = sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .context("cannot read a delivery")?;
        row.map(DeliveryRow::try_from).transpose()
    }
}

/// What a delivery renders, copied into its row.
pub(crate) struct Content<'a> {
    pub category: &'a str,
    pub severity: Severity,
    pub source: &'a str,
    pub event_type: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub occurred_at: DateTime<Utc>,
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_delivery(
    tx: &mut AnyConnection,
    backend: Backend,
    id: &str,
    event_id: Option<&str>,
    destination: &Destination,
    rule: &str,
    state: DeliveryState,
    c: &Content<'_>,
    mute_id: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    // seq is taken inside the writing transaction: SQLite has one writer at a
    // time, and on PostgreSQL the table is locked against other writers first.
    backend.lock_outbox(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO deliveries (id, seq, event_id, destination, rule, state, category, severity, source, event_type, \
         title, body, occurred_at, mute_id, next_attempt_at, created_at, updated_at) \
         VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM deliveries), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $14)",
    )
    .bind(id)
    .bind(event_id)
    .bind(destination.to_string())
    .bind(rule)
    .bind(state.as_str())
    .bind(c.category)
    .bind(c.severity.as_str())
    .bind(c.source)
    .bind(c.event_type)
    .bind(c.title)
    .bind(c.body)
    .bind(millis(c.occurred_at))
    .bind(mute_id)
    .bind(millis(now))
    .execute(&mut *tx)
    .await
    .with_context(|| format!("cannot store the delivery to {destination}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_fit_a_discord_nonce() {
        for _ in 0..100 {
            let id = new_id("dl");
            assert!(id.len() <= 25, "{id}");
        }
        assert_ne!(new_id("dl"), new_id("dl"));
    }

    #[test]
    fn states_round_trip() {
        for s in DeliveryState::ALL {
            assert_eq!(s.as_str().parse::<DeliveryState>().unwrap(), s);
        }
    }
}
