//! Watches the agent's databases (its store, `fleet.database`, and the
//! fleet's coordination, `fleet.coordination`) while it runs. A database
//! out of reach does not stop the agent: what arrives meanwhile is kept
//! (drop-box files stay claimed on disk, the outbox waits), the pools
//! reconnect by themselves, and until then the agent says so: once in the
//! log when it starts and once when it ends, on `/readyz` (503, `degraded:`
//! and why) and in the `switchyard_database_up` gauge.

use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::coord::shared_db::CoordDb;
use crate::health::ReadyFlag;
use crate::metrics::{DatabaseLabel, Metrics};
use crate::shutdown::Shutdown;
use crate::store::Store;

/// How often each database is asked.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// A probe unanswered for this long counts as failed (a pool retries a
/// refused connection until its own timeout: this is the shorter).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// One watched database and what was last seen of it.
struct Watched {
    /// The name in logs and in the metric's label: `store` or `coordination`.
    name: &'static str,
    /// Where the operator sets it.
    key: &'static str,
    probe: Probe,
    down: Option<Down>,
}

enum Probe {
    Store(Store),
    Coordination(CoordDb),
}

struct Down {
    since: Instant,
    error: String,
}

impl Probe {
    async fn ask(&self) -> Result<(), String> {
        let ping = async {
            match self {
                Probe::Store(store) => store.ping().await,
                Probe::Coordination(db) => Ok(db.ping().await?),
            }
        };
        match tokio::time::timeout(PROBE_TIMEOUT, ping).await {
            Ok(answer) => answer.map_err(|e| format!("{e:#}")),
            Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
        }
    }
}

/// Watches until `stop`. `coordination` is the fleet's coordination
/// database, when the fleet has one.
pub async fn run(
    store: Store,
    coordination: Option<CoordDb>,
    ready: ReadyFlag,
    metrics: Metrics,
    mut stop: Shutdown,
) -> anyhow::Result<()> {
    let mut watched = vec![Watched {
        name: "store",
        key: "fleet.database",
        probe: Probe::Store(store),
        down: None,
    }];
    if let Some(db) = coordination {
        watched.push(Watched {
            name: "coordination",
            key: "fleet.coordination",
            probe: Probe::Coordination(db),
            down: None,
        });
    }
    loop {
        // Both at once: one database's timeout does not delay the other's news.
        let answers = futures_util::future::join_all(watched.iter().map(|w| w.probe.ask())).await;
        for (w, answer) in watched.iter_mut().zip(answers) {
            let up = match answer {
                Ok(()) => {
                    if let Some(down) = w.down.take() {
                        info!(
                            database = w.name,
                            down_for_secs = down.since.elapsed().as_secs_f64(),
                            "the database answers again; the agent goes on with what it kept"
                        );
                    }
                    1
                }
                Err(error) => {
                    if w.down.is_none() {
                        warn!(
                            database = w.name,
                            setting = w.key,
                            error = %error,
                            "the database does not answer: the agent keeps running, keeps what arrives and retries"
                        );
                    }
                    let since = w.down.as_ref().map_or_else(Instant::now, |d| d.since);
                    w.down = Some(Down { since, error });
                    0
                }
            };
            metrics
                .database_up
                .get_or_create(&DatabaseLabel {
                    database: w.name.to_owned(),
                })
                .set(up);
        }
        ready.set_degraded(degraded(&watched));
        if !stop.sleep(PROBE_EVERY).await {
            return Ok(());
        }
    }
}

/// The sentence `/readyz` shows while a database is out of reach.
fn degraded(watched: &[Watched]) -> Option<String> {
    let parts: Vec<String> = watched
        .iter()
        .filter_map(|w| {
            let d = w.down.as_ref()?;
            Some(format!(
                "the {} database ({}) has not answered for {} s ({}); the agent keeps what arrives and retries",
                w.name,
                w.key,
                d.since.elapsed().as_secs(),
                d.error
            ))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// How often a database out of reach at start-up is tried again.
const START_RETRY: Duration = Duration::from_secs(2);

/// Opens a database at start-up, waiting while it is out of reach (a
/// server restarting, a network away) rather than failing: a refused login
/// or a bad URL is still an error at once. `None`: stopped while waiting.
pub async fn open_when_reachable<T, F, Fut>(
    name: &'static str,
    stop: &mut Shutdown,
    mut open: F,
) -> anyhow::Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut waiting_since = None;
    loop {
        match open().await {
            Ok(v) => {
                if let Some(since) = waiting_since {
                    info!(
                        database = name,
                        waited_secs = Instant::elapsed(&since).as_secs_f64(),
                        "the database answers: starting"
                    );
                }
                return Ok(Some(v));
            }
            Err(e) if is_unreachable(&e) => {
                if waiting_since.is_none() {
                    warn!(database = name, error = %format!("{e:#}"), "the database does not answer yet: waiting for it");
                    waiting_since = Some(Instant::now());
                }
                if !stop.sleep(START_RETRY).await {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// A PostgreSQL server that cannot be reached now, as opposed to one that
/// refuses this client (a wrong password, a missing database: the
/// operator's to fix). Asked only of PostgreSQL: a SQLite file is not waited for.
pub fn is_unreachable(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|cause| match cause.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) => true,
            // 57P: the server is shutting down or starting up.
            Some(sqlx::Error::Database(db)) => db.code().is_some_and(|c| c.starts_with("57P")),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::is_unreachable;
    use sqlx::Connection;

    #[tokio::test]
    async fn a_refused_connection_is_waited_for_and_a_bad_url_is_not() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Nothing listens there now: a server that is away.
        let away = sqlx::PgConnection::connect(&format!("postgres://u@127.0.0.1:{port}/db"))
            .await
            .unwrap_err();
        assert!(is_unreachable(&anyhow::Error::new(away).context("open")));
        let bad = sqlx::PgConnection::connect("postgres://u@127.0.0.1:notaport/db")
            .await
            .unwrap_err();
        assert!(!is_unreachable(&anyhow::Error::new(bad)));
    }
}
