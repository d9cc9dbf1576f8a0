//! One process per agent across hosts (`fleet.coordination`): the per-host
//! token lock becomes a lease in the coordination database, lasting
//! `fleet.lease_ttl` ([`DEFAULT_LEASE_TTL`]). The holder renews it every
//! fifth of that; a second process for the same agent
//! does not fail but waits as a hot standby (listed in `switchyard status`)
//! and takes over once the lease lapses, with the fencing number raised.
//!
//! No double posting rests on two things: the lease's time is the server's
//! (`clock_timestamp()`), and a holder that cannot renew stops all it does
//! before its lease can lapse ([`AgentLease::watch`]) and starts over in
//! place, so two holdings never overlap; and the outbox is in the shared database, where a
//! delivery already marked sent is never sent again (Discord's nonce also
//! covers a send that was in flight at a `kill -9`).

use std::time::{Duration, Instant};

use super::shared_db::{CoordDb, db_error};
use super::{CoordError, ProcessId};
use crate::shutdown::ShutdownHandle;

/// How long a lease lasts without renewal unless `fleet.lease_ttl` says
/// otherwise: a `kill -9` of the holder is taken over within this and one
/// standby poll.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(5);

/// A holder that has not renewed for this long stops: well before the
/// lease lapses (by the server's clock) and a standby may take over.
fn fence_after(ttl: Duration) -> Duration {
    ttl * 3 / 5
}
/// How often a standby asks whether the lease lapsed.
pub const STANDBY_POLL: Duration = Duration::from_millis(500);

fn pid(me: &ProcessId) -> i32 {
    i32::try_from(me.pid).unwrap_or(i32::MAX)
}

/// A holding of an agent's lease.
#[derive(Debug)]
pub struct AgentLease {
    db: CoordDb,
    agent: String,
    me: ProcessId,
    ttl: Duration,
    /// Raised at every takeover.
    pub fencing: i64,
    /// The holder this process took over from, if the lease was held before.
    pub took_over_from: Option<String>,
}

/// What a try at the lease found.
enum Try {
    Held(AgentLease),
    /// Someone else holds it: their host and pid, and their configuration.
    Busy {
        holder: String,
        fingerprint: String,
    },
}

async fn try_take(
    db: &CoordDb,
    agent: &str,
    me: &ProcessId,
    fingerprint: &str,
    ttl: Duration,
) -> Result<Try, CoordError> {
    let ttl_ms = ttl.as_millis() as i64;
    let mut tx = db
        .pool()
        .begin()
        .await
        .map_err(db_error("start a transaction"))?;
    let row: Option<(String, i32, String, i64, bool, String)> = sqlx::query_as(
        "SELECT holder_host, holder_pid, holder_incarnation, fencing, lease_until < clock_timestamp(), config_fingerprint \
         FROM agent_leases WHERE agent = $1 FOR UPDATE",
    )
    .bind(agent)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error("read the agent's lease"))?;
    let (fencing, took_over_from) = match row {
        None => (1, None),
        Some((host, holder_pid, incarnation, fencing, lapsed, theirs)) => {
            let holder = ProcessId {
                pid: u32::try_from(holder_pid).unwrap_or(0),
                host: host.clone(),
                incarnation: incarnation.clone(),
            };
            let ours = incarnation == me.incarnation;
            if !(lapsed || ours || holder.is_known_dead()) {
                tx.rollback().await.ok();
                return Ok(Try::Busy {
                    holder: format!("pid {holder_pid} on {host}"),
                    fingerprint: theirs,
                });
            }
            (
                fencing + 1,
                (!ours).then(|| format!("pid {holder_pid} on {host}")),
            )
        }
    };
    sqlx::query(
        "INSERT INTO agent_leases (agent, holder_host, holder_pid, holder_incarnation, fencing, lease_until, config_fingerprint) \
         VALUES ($1, $2, $3, $4, $5, clock_timestamp() + make_interval(secs => $6::double precision / 1000), $7) \
         ON CONFLICT (agent) DO UPDATE SET holder_host = $2, holder_pid = $3, holder_incarnation = $4, fencing = $5, \
           lease_until = clock_timestamp() + make_interval(secs => $6::double precision / 1000), config_fingerprint = $7, \
           acquired_at = clock_timestamp()",
    )
    .bind(agent)
    .bind(&me.host)
    .bind(pid(me))
    .bind(&me.incarnation)
    .bind(fencing)
    .bind(ttl_ms)
    .bind(fingerprint)
    .execute(&mut *tx)
    .await
    .map_err(db_error("take the agent's lease"))?;
    sqlx::query("DELETE FROM agent_standbys WHERE incarnation = $1")
        .bind(&me.incarnation)
        .execute(&mut *tx)
        .await
        .map_err(db_error("leave the standbys"))?;
    tx.commit()
        .await
        .map_err(db_error("take the agent's lease"))?;
    Ok(Try::Held(AgentLease {
        db: db.clone(),
        agent: agent.to_owned(),
        me: me.clone(),
        ttl,
        fencing,
        took_over_from,
    }))
}

/// Why a process may not wait as a standby.
#[derive(Debug, thiserror::Error)]
pub enum StandbyRefused {
    #[error(
        "agent {agent} runs as {holder} with another configuration: a standby must run the same one (copy that host's switchyard.toml here)"
    )]
    OtherConfiguration { agent: String, holder: String },
    #[error(
        "agent {agent} runs as {holder}, and this process's [fleet] database is a local SQLite file: a standby would take over without the agent's state; put fleet.database on PostgreSQL too"
    )]
    LocalDatabase { agent: String, holder: String },
    #[error(transparent)]
    Coord(#[from] CoordError),
}

impl AgentLease {
    /// Takes `agent`'s lease, waiting as a standby while a live holder has
    /// it (`shared_state`: the agent's database is shared, so a standby may
    /// take over; `stop` ends the wait with `Ok(None)`).
    pub async fn acquire(
        db: &CoordDb,
        agent: &str,
        fingerprint: &str,
        shared_state: bool,
        ttl: Duration,
        mut stop: crate::shutdown::Shutdown,
    ) -> Result<Option<AgentLease>, StandbyRefused> {
        let me = ProcessId::current().clone();
        let mut announced = false;
        loop {
            match try_take(db, agent, &me, fingerprint, ttl).await? {
                Try::Held(lease) => return Ok(Some(lease)),
                Try::Busy {
                    holder,
                    fingerprint: theirs,
                } => {
                    if !shared_state {
                        return Err(StandbyRefused::LocalDatabase {
                            agent: agent.to_owned(),
                            holder,
                        });
                    }
                    if theirs != fingerprint {
                        return Err(StandbyRefused::OtherConfiguration {
                            agent: agent.to_owned(),
                            holder,
                        });
                    }
                    if !announced {
                        tracing::info!(agent, holder = %holder, "the agent runs elsewhere: waiting as its hot standby");
                        announced = true;
                    }
                    sqlx::query(
                        "INSERT INTO agent_standbys (agent, host, pid, incarnation) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (incarnation) DO UPDATE SET seen_at = clock_timestamp()",
                    )
                    .bind(agent)
                    .bind(&me.host)
                    .bind(pid(&me))
                    .bind(&me.incarnation)
                    .execute(db.pool())
                    .await
                    .map_err(|e| StandbyRefused::Coord(db_error("announce the standby")(e)))?;
                }
            }
            if stop.sleep(STANDBY_POLL).await {
                continue;
            }
            return Ok(None);
        }
    }

    /// Renews the lease while the process runs. A renewal that finds the
    /// lease taken, or no renewal for most of the lease's life (the database
    /// unreachable), ends what the process does at once, without the
    /// graceful drain: its lease may lapse and a standby take over, and two
    /// holders must never post at once. The process then starts over in
    /// place ([`crate::shutdown::start_over`]): it waits for the database,
    /// takes the lease back if nobody took it meanwhile (a lease of its own
    /// pid is its own), or waits as the standby.
    pub fn watch(self, stop: ShutdownHandle) -> tokio::task::JoinHandle<()> {
        // On the coordination runtime with a pool of its own: the agent's
        // own runtime may be busy, and a renewal it delays could let the
        // lease lapse under a live holder.
        super::shared_db::spawn(async move {
            let fence = fence_after(self.ttl);
            let mut last_ok = Instant::now();
            let mut tick = tokio::time::interval(self.ttl / 5);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if stop.is_stopped() {
                    self.release().await;
                    return;
                }
                // A renewal that hangs counts as a failed one once the
                // holder's deadline has passed.
                let deadline = (last_ok + fence).saturating_duration_since(Instant::now());
                let renewed = tokio::time::timeout(deadline, self.renew())
                    .await
                    .unwrap_or(Err(CoordError::Unanswered));
                match renewed {
                    Ok(true) => last_ok = Instant::now(),
                    Ok(false) => {
                        tracing::error!(agent = %self.agent, fencing = self.fencing, "the agent's lease was taken by another process: starting over as a standby");
                        crate::shutdown::start_over();
                    }
                    Err(e) => {
                        tracing::warn!(agent = %self.agent, error = %e, "could not renew the agent's lease");
                        if last_ok.elapsed() >= fence {
                            tracing::error!(agent = %self.agent, "the agent's lease could not be renewed in time: stopping everything before it lapses, and starting over");
                            crate::shutdown::start_over();
                        }
                    }
                }
            }
        })
    }

    async fn renew(&self) -> Result<bool, CoordError> {
        let n = sqlx::query(
            "UPDATE agent_leases SET lease_until = clock_timestamp() + make_interval(secs => $3::double precision / 1000) \
             WHERE agent = $1 AND holder_incarnation = $2 AND fencing = $4",
        )
        .bind(&self.agent)
        .bind(&self.me.incarnation)
        .bind(self.ttl.as_millis() as i64)
        .bind(self.fencing)
        .execute(self.db.lease_pool())
        .await
        .map_err(db_error("renew the agent's lease"))?
        .rows_affected();
        Ok(n == 1)
    }

    /// Ends the holding at a clean stop, so that a standby takes over at once.
    async fn release(&self) {
        let released = sqlx::query(
            "UPDATE agent_leases SET lease_until = clock_timestamp() WHERE agent = $1 AND holder_incarnation = $2 AND fencing = $3",
        )
        .bind(&self.agent)
        .bind(&self.me.incarnation)
        .bind(self.fencing)
        .execute(self.db.lease_pool())
        .await;
        if let Err(e) = released {
            tracing::warn!(agent = %self.agent, error = %e, "could not release the agent's lease; it lapses by itself");
        }
    }
}

/// The standbys waiting now (seen within a few polls), as `(agent, "pid N on HOST")`.
pub async fn standbys(db: &CoordDb) -> Result<Vec<(String, String)>, CoordError> {
    let rows: Vec<(String, String, i32)> = sqlx::query_as(
        "SELECT agent, host, pid FROM agent_standbys \
         WHERE seen_at > clock_timestamp() - make_interval(secs => 5) ORDER BY agent, since",
    )
    .fetch_all(db.pool())
    .await
    .map_err(db_error("list the standbys"))?;
    Ok(rows
        .into_iter()
        .map(|(agent, host, pid)| (agent, format!("pid {pid} on {host}")))
        .collect())
}
