//! The agent's lease when the fleet coordinates through PostgreSQL: taken
//! before anything else starts (waiting for the database, or as the hot
//! standby while another process holds it).

use tracing::info;

use super::db_watch;
use crate::config::{AgentSettings, Config};
use crate::coord::agent_lease::AgentLease;
use crate::health::{Readiness, ReadyFlag};
use crate::shutdown::ShutdownHandle;

/// [`take_lease`], with the agent's health endpoints (if it has a `listen`
/// address) saying meanwhile that it is alive and a standby; the address
/// is free again for the agent when this returns.
pub(super) async fn hold(
    config: &Config,
    agent: &AgentSettings,
    url: &str,
    shutdown: &ShutdownHandle,
) -> anyhow::Result<Option<AgentLease>> {
    let waiting = ShutdownHandle::new();
    let endpoint = match agent.listen {
        Some(listen) => {
            let ready = ReadyFlag::default();
            ready.set(Readiness::Standby);
            let name = agent.name.to_string();
            Some(crate::health::serve_while_waiting(listen, name, ready, waiting.listen()).await?)
        }
        None => None,
    };
    let lease = take_lease(config, agent, url, shutdown).await;
    waiting.stop();
    if let Some(endpoint) = endpoint {
        // It stops accepting at once; a client's open connection is not waited on for long.
        tokio::time::timeout(std::time::Duration::from_secs(2), endpoint)
            .await
            .ok();
    }
    lease
}

/// The agent's lease in the coordination database, waiting as a hot
/// standby while another process holds it; `None` when stopped meanwhile.
async fn take_lease(
    config: &Config,
    agent: &AgentSettings,
    url: &str,
    shutdown: &ShutdownHandle,
) -> anyhow::Result<Option<AgentLease>> {
    use crate::coord::agent_lease::StandbyRefused;
    let mut stop = shutdown.listen();
    let open = || async { Ok(crate::coord::shared_db::CoordDb::open(url)?) };
    let db = match db_watch::open_when_reachable("coordination", &mut stop, open).await {
        Ok(Some(db)) => db,
        Ok(None) => return Ok(None),
        Err(e) => {
            return Err(crate::error::bad_input(format!(
                "cannot use the fleet's coordination database: {e:#}"
            )));
        }
    };
    let shared_state =
        crate::store::Backend::of(&config.fleet.database)? == crate::store::Backend::Postgres;
    match AgentLease::acquire(
        &db,
        &agent.name,
        &config.fingerprint(),
        shared_state,
        config.fleet.lease_ttl,
        shutdown.listen(),
    )
    .await
    {
        Ok(Some(lease)) => {
            info!(
                fencing = lease.fencing,
                took_over_from = lease.took_over_from.as_deref().unwrap_or("nobody"),
                "holding the agent's lease"
            );
            Ok(Some(lease))
        }
        Ok(None) => {
            info!("stopped while waiting as a standby");
            Ok(None)
        }
        Err(StandbyRefused::Coord(e)) => Err(e.into()),
        Err(e) => Err(crate::error::bad_input(e.to_string())),
    }
}
