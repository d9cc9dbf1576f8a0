//! Each agent's inbox as a queue in the coordination database
//! (`fleet.coordination`), with the meaning an inbox directory has: an item
//! waits until one process claims it (`FOR UPDATE SKIP LOCKED`: exactly one
//! claimer wins), the claim is a lease the holder renews while it works, a
//! lease that lapses (its holder died or hung, on any host) puts the item back
//! with its attempt counted, and the item ends done or failed with the result
//! or the reason. One id waits or runs at a time per agent.
//!
//! A queued item wakes its agent at once (`NOTIFY switchyard_inbox`, the
//! payload the agent's name); the agent also looks every
//! [`POLL_FALLBACK`], for a lapsed lease or a missed notification.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgListener, PgPool};

use super::shared_db::{CoordDb, db_error};
use super::{CoordError, Outcome, ProcessId};

/// The channel a queued item is announced on (payload: the agent).
pub const INBOX_CHANNEL: &str = "switchyard_inbox";
/// The channel a finished item is announced on (payload: its drop id).
pub const RESULT_CHANNEL: &str = "switchyard_inbox_result";
/// How often the queue is looked at without a notification.
pub const POLL_FALLBACK: Duration = Duration::from_secs(1);

/// What queueing an item did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    /// It waits for its agent.
    New,
    /// This drop was queued before (an import after a crash): nothing added.
    Again,
    /// Another item with this id waits or runs for the agent: not queued.
    IdWaiting,
}

/// Queues `body` for `agent` as the drop `drop_id` (from the drop-box
/// `dropbox`, or `None` when queued directly) and wakes the agent.
pub async fn enqueue(
    pool: &PgPool,
    agent: &str,
    id: &str,
    body: &str,
    drop_id: &str,
    dropbox: Option<&str>,
) -> Result<Queued, CoordError> {
    let mut tx = pool
        .begin()
        .await
        .map_err(db_error("start a transaction"))?;
    let inserted = sqlx::query(
        "INSERT INTO inbox_items (drop_id, agent, id, body, dropbox) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT DO NOTHING",
    )
    .bind(drop_id)
    .bind(agent)
    .bind(id)
    .bind(body)
    .bind(dropbox)
    .execute(&mut *tx)
    .await
    .map_err(db_error("queue an inbox item"))?
    .rows_affected();
    let outcome = if inserted == 1 {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(INBOX_CHANNEL)
            .bind(agent)
            .execute(&mut *tx)
            .await
            .map_err(db_error("wake the agent"))?;
        Queued::New
    } else {
        let again: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM inbox_items WHERE drop_id = $1")
            .bind(drop_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error("look up an inbox item"))?;
        if again.is_some() {
            Queued::Again
        } else {
            Queued::IdWaiting
        }
    };
    tx.commit().await.map_err(db_error("queue an inbox item"))?;
    Ok(outcome)
}

/// An item this process holds from the queue.
#[derive(Debug)]
pub struct SharedClaim {
    pub drop_id: String,
    pub id: String,
    pub bytes: Vec<u8>,
    /// 1 on the first claim; more when a lapsed lease brought it back.
    pub attempt: u32,
    /// When this drop was first claimed, the same on every attempt.
    pub first_claimed_at: DateTime<Utc>,
    queue: SharedQueue,
    finished: bool,
}

impl Drop for SharedClaim {
    fn drop(&mut self) {
        if !self.finished {
            // Not renewed any more: its lease lapses and it comes back.
            self.queue.held().remove(&self.drop_id);
            tracing::warn!(id = %self.id, "a claimed item was dropped without an outcome; its lease will lapse and it will come back");
        }
    }
}

impl SharedClaim {
    /// Ends the item with its outcome; `Err(LostLease)` when its lease
    /// lapsed and another process took it.
    pub async fn finish(mut self, outcome: Outcome) -> Result<(), CoordError> {
        self.finished = true;
        self.queue.held().remove(&self.drop_id);
        self.queue.end(&self.drop_id, &self.id, outcome, true).await
    }
}

/// One agent's queue, as one process claims from it. Cheap to clone; clones
/// share the set of held items whose leases are renewed.
#[derive(Debug, Clone)]
pub struct SharedQueue {
    db: CoordDb,
    agent: String,
    me: ProcessId,
    ttl: Duration,
    held: Arc<Mutex<BTreeSet<String>>>,
}

impl SharedQueue {
    pub fn new(db: CoordDb, agent: &str, ttl: Duration) -> SharedQueue {
        SharedQueue {
            db,
            agent: agent.to_owned(),
            me: ProcessId::current().clone(),
            ttl,
            held: Arc::default(),
        }
    }

    /// The same queue as another process would hold it (tests: two holders in one process).
    pub fn as_holder(mut self, me: ProcessId) -> SharedQueue {
        self.me = me;
        self.held = Arc::default();
        self
    }

    fn pool(&self) -> &PgPool {
        self.db.pool()
    }

    fn held(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims the oldest waiting item (or one whose lease lapsed).
    pub async fn claim(&self) -> Result<Option<SharedClaim>, CoordError> {
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        // Times as epoch milliseconds: the store's portable convention.
        let row: Option<(String, String, String, i32, i64)> = sqlx::query_as(
            "UPDATE inbox_items SET state = 'running', attempt = attempt + 1, \
               first_claimed_at = COALESCE(first_claimed_at, clock_timestamp()), \
               lease_host = $2, lease_pid = $3, lease_incarnation = $4, \
               lease_until = clock_timestamp() + make_interval(secs => $5::double precision / 1000) \
             WHERE drop_id = ( \
               SELECT drop_id FROM inbox_items \
               WHERE agent = $1 AND (state = 'ready' OR (state = 'running' AND lease_until < clock_timestamp())) \
               ORDER BY queued_at, drop_id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING drop_id, id, body, attempt, \
               (extract(epoch FROM first_claimed_at) * 1000)::bigint",
        )
        .bind(&self.agent)
        .bind(&self.me.host)
        .bind(i32::try_from(self.me.pid).unwrap_or(i32::MAX))
        .bind(&self.me.incarnation)
        .bind(ttl_ms)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error("claim an inbox item"))?;
        Ok(row.map(|(drop_id, id, body, attempt, first_claimed_at)| {
            self.held().insert(drop_id.clone());
            SharedClaim {
                drop_id,
                id,
                bytes: body.into_bytes(),
                attempt: u32::try_from(attempt).unwrap_or(1),
                first_claimed_at: DateTime::<Utc>::from_timestamp_millis(first_claimed_at)
                    .unwrap_or_else(Utc::now),
                queue: self.clone(),
                finished: false,
            }
        }))
    }

    /// Ends `drop_id` with `outcome` (`holder_only`: only while this process
    /// holds its lease) and announces it on [`RESULT_CHANNEL`].
    async fn end(
        &self,
        drop_id: &str,
        id: &str,
        outcome: Outcome,
        holder_only: bool,
    ) -> Result<(), CoordError> {
        let (state, value) = match outcome {
            Outcome::Done(v) => ("done", v),
            Outcome::Failed(v) => ("failed", v),
        };
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(db_error("start a transaction"))?;
        let ended = sqlx::query(
            "UPDATE inbox_items SET state = $2, result = $3, finished_at = clock_timestamp(), lease_until = NULL \
             WHERE drop_id = $1 AND (NOT $4 OR (state = 'running' AND lease_incarnation = $5 AND lease_pid = $6))",
        )
        .bind(drop_id)
        .bind(state)
        .bind(value.to_string())
        .bind(holder_only)
        .bind(&self.me.incarnation)
        .bind(i32::try_from(self.me.pid).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await
        .map_err(db_error("record an inbox item's outcome"))?
        .rows_affected();
        if ended == 0 {
            return Err(CoordError::LostLease { id: id.to_owned() });
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(RESULT_CHANNEL)
            .bind(drop_id)
            .execute(&mut *tx)
            .await
            .map_err(db_error("announce an inbox item's outcome"))?;
        tx.commit()
            .await
            .map_err(db_error("record an inbox item's outcome"))
    }

    /// Gives a finished item (a parked task's, done since it was parked) the
    /// outcome it ends with.
    pub async fn settle(&self, drop_id: &str, outcome: Outcome) -> Result<(), CoordError> {
        self.end(drop_id, drop_id, outcome, false).await
    }

    /// Renews the leases of the items this process holds; the ids whose
    /// lease was lost (taken back after it lapsed).
    pub async fn renew_leases(&self) -> Result<Vec<String>, CoordError> {
        let held: Vec<String> = self.held().iter().cloned().collect();
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let renewed: Vec<(String,)> = sqlx::query_as(
            "UPDATE inbox_items SET lease_until = clock_timestamp() + make_interval(secs => $2::double precision / 1000) \
             WHERE drop_id = ANY($1) AND state = 'running' AND lease_incarnation = $3 AND lease_pid = $4 \
             RETURNING drop_id",
        )
        .bind(&held)
        .bind(ttl_ms)
        .bind(&self.me.incarnation)
        .bind(i32::try_from(self.me.pid).unwrap_or(i32::MAX))
        .fetch_all(self.pool())
        .await
        .map_err(db_error("renew inbox leases"))?;
        let renewed: BTreeSet<String> = renewed.into_iter().map(|(d,)| d).collect();
        Ok(held.into_iter().filter(|d| !renewed.contains(d)).collect())
    }

    /// Renews the leases every `every` until aborted.
    pub fn spawn_lease_renewal(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let queue = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match queue.renew_leases().await {
                    Ok(lost) => {
                        for id in lost {
                            tracing::warn!(drop = %id, "the lease of a claimed item was lost: another process took it back");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "lease renewal failed; retrying"),
                }
            }
        })
    }

    /// Puts back at once the items a previous life of a process on this host
    /// held (their holder is known dead), rather than waiting for their
    /// leases to lapse; the attempt is counted at the next claim.
    pub async fn recover(&self) -> Result<Vec<String>, CoordError> {
        let rows: Vec<(String, String, i32, String)> = sqlx::query_as(
            "SELECT drop_id, lease_host, lease_pid, lease_incarnation FROM inbox_items \
             WHERE agent = $1 AND state = 'running' AND lease_host = $2",
        )
        .bind(&self.agent)
        .bind(&self.me.host)
        .fetch_all(self.pool())
        .await
        .map_err(db_error("look for items left running"))?;
        let mut back = Vec::new();
        for (drop_id, host, pid, incarnation) in rows {
            let holder = ProcessId {
                pid: u32::try_from(pid).unwrap_or(0),
                host,
                incarnation: incarnation.clone(),
            };
            if !holder.is_known_dead() {
                continue;
            }
            let n = sqlx::query(
                "UPDATE inbox_items SET state = 'ready', lease_until = NULL \
                 WHERE drop_id = $1 AND state = 'running' AND lease_incarnation = $2",
            )
            .bind(&drop_id)
            .bind(&incarnation)
            .execute(self.pool())
            .await
            .map_err(db_error("put back an item left running"))?
            .rows_affected();
            if n == 1 {
                back.push(drop_id);
            }
        }
        Ok(back)
    }

    /// How many items wait for the agent.
    pub async fn depth(&self) -> Result<usize, CoordError> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM inbox_items WHERE agent = $1 AND state = 'ready'")
                .bind(&self.agent)
                .fetch_one(self.pool())
                .await
                .map_err(db_error("count the inbox"))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// A listener for this agent's wake-ups, or `None` when LISTEN failed
    /// (polling still finds every item).
    pub async fn listen(&self) -> Option<QueueWaker> {
        let mut listener = match PgListener::connect_with(self.pool()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for inbox wake-ups; polling every second");
                return None;
            }
        };
        if let Err(e) = listener.listen(INBOX_CHANNEL).await {
            tracing::warn!(error = %e, "cannot LISTEN for inbox wake-ups; polling every second");
            return None;
        }
        Some(QueueWaker {
            listener,
            agent: self.agent.clone(),
        })
    }
}

/// Waits for a wake-up of one agent's queue.
pub struct QueueWaker {
    listener: PgListener,
    agent: String,
}

impl QueueWaker {
    /// Returns when an item was queued for the agent, or after `limit`.
    pub async fn wait(&mut self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.listener.recv()).await {
                Err(_) => return,
                Ok(Ok(n)) if n.payload() == self.agent => return,
                Ok(Ok(_)) => {}
                // The listener reconnects by itself; until then, poll.
                Ok(Err(_)) => {
                    tokio::time::sleep_until(deadline).await;
                    return;
                }
            }
        }
    }
}

/// The outcomes of finished drops among `drop_ids`.
pub async fn finished(
    pool: &PgPool,
    drop_ids: &[String],
) -> Result<Vec<(String, Outcome)>, CoordError> {
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT drop_id, state, result FROM inbox_items WHERE drop_id = ANY($1) AND state IN ('done', 'failed')",
    )
    .bind(drop_ids)
    .fetch_all(pool)
    .await
    .map_err(db_error("read inbox outcomes"))?;
    Ok(rows
        .into_iter()
        .map(|(drop_id, state, result)| {
            let value = result
                .and_then(|r| serde_json::from_str(&r).ok())
                .unwrap_or(Value::Null);
            let outcome = if state == "done" {
                Outcome::Done(value)
            } else {
                Outcome::Failed(value)
            };
            (drop_id, outcome)
        })
        .collect())
}

/// Where a parked task's item is recorded as being, for a queued item: the
/// drop id behind this prefix (a file's stem never has a `:`).
pub const QUEUED_ITEM: &str = "queue:";

/// Gives a parked task's item, finished as done when the task was parked,
/// the outcome the task ended with, wherever it is: `place` is a file's stem
/// in `agent`'s `done/`, or [`QUEUED_ITEM`] and a drop id in its queue.
pub async fn settle_parked(
    fleet: &crate::config::FleetSettings,
    agent: &str,
    place: &str,
    outcome: Outcome,
) -> Result<(), CoordError> {
    let Some(drop) = place.strip_prefix(QUEUED_ITEM) else {
        return super::Inbox::open(&fleet.workspace, agent)
            .and_then(|inbox| inbox.settle(place, outcome))
            .map(|_| ());
    };
    let Some(url) = &fleet.coordination else {
        return Err(CoordError::NoCoordination {
            place: place.to_owned(),
        });
    };
    SharedQueue::new(CoordDb::open(url)?, agent, super::DEFAULT_LEASE_TTL)
        .settle(drop, outcome)
        .await
}

/// Where [`hand_in`] put an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandedIn {
    /// A file in the agent's inbox directory.
    File(std::path::PathBuf),
    /// The agent's queue in the coordination database, as this drop.
    Queue { drop_id: String },
}

impl std::fmt::Display for HandedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandedIn::File(path) => write!(f, "{}", path.display()),
            HandedIn::Queue { .. } => f.write_str("the fleet's queue (fleet.coordination)"),
        }
    }
}

/// How a handed-in item ended, once it did: polls its result file (the
/// inbox directory) or its row (the queue) until `limit`. `None`: not
/// finished by then. Blocking.
pub fn wait_outcome(
    fleet: &crate::config::FleetSettings,
    agent: &str,
    id: &str,
    handed: &HandedIn,
    limit: Duration,
) -> Result<Option<Outcome>, CoordError> {
    let deadline = std::time::Instant::now() + limit;
    let db = match (handed, &fleet.coordination) {
        (HandedIn::Queue { .. }, Some(url)) => Some(CoordDb::open(url)?),
        _ => None,
    };
    loop {
        let outcome = match (handed, &db) {
            (HandedIn::Queue { drop_id }, Some(db)) => {
                let ids = vec![drop_id.clone()];
                let pool = db.pool().clone();
                super::shared_db::block(async move { finished(&pool, &ids).await })?
                    .into_iter()
                    .next()
                    .map(|(_, o)| o)
            }
            _ => {
                let dir = fleet.workspace.join("agents").join(agent);
                let read = |folder: &str| -> Option<Value> {
                    let text =
                        std::fs::read_to_string(dir.join(folder).join(format!("{id}.result.json")))
                            .ok()?;
                    serde_json::from_str(&text).ok()
                };
                read("done")
                    .map(|v| Outcome::Done(v.get("result").cloned().unwrap_or(v)))
                    .or_else(|| {
                        read("failed")
                            .map(|v| Outcome::Failed(v.get("reason").cloned().unwrap_or(v)))
                    })
            }
        };
        if outcome.is_some() {
            return Ok(outcome);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Hands `item` to `agent` where the fleet takes items: its inbox
/// directory, or with `fleet.coordination` its queue, from any host (the
/// CLI's `send`, `task submit` and `approvals request`). Blocking.
pub fn hand_in(
    fleet: &crate::config::FleetSettings,
    agent: &str,
    id: &str,
    item: &Value,
) -> Result<HandedIn, CoordError> {
    let Some(url) = &fleet.coordination else {
        return super::drop_item(&fleet.workspace, agent, id, item).map(HandedIn::File);
    };
    super::valid_agent(agent)?;
    super::inbox::validate_id(id)?;
    if !item.is_object() {
        return Err(CoordError::ItemNotObject("not an object"));
    }
    let body = item.to_string();
    if body.len() as u64 > super::DEFAULT_MAX_ITEM_BYTES {
        return Err(CoordError::ItemTooBig {
            id: id.to_owned(),
            bytes: body.len() as u64,
            limit: super::DEFAULT_MAX_ITEM_BYTES,
        });
    }
    let db = CoordDb::open(url)?;
    let drop_id = format!("direct|{agent}|{id}|{:016x}", rand::random::<u64>());
    let (agent_owned, id_owned) = (agent.to_owned(), id.to_owned());
    let drop_owned = drop_id.clone();
    let queued = super::shared_db::block(async move {
        enqueue(db.pool(), &agent_owned, &id_owned, &body, &drop_owned, None).await
    })?;
    match queued {
        Queued::New | Queued::Again => Ok(HandedIn::Queue { drop_id }),
        Queued::IdWaiting => Err(CoordError::ItemExists {
            agent: agent.to_owned(),
            id: id.to_owned(),
        }),
    }
}
