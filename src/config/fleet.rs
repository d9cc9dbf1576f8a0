//! `[fleet]`, `[docker]` and `[delivery]`: where the fleet keeps its state,
//! how it reaches Docker, and how hard delivery retries.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{RawDelivery, RawDocker, RawFleet};
use super::validator::Validator;

#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// Absolute: relative paths in the file are resolved against the file's directory.
    pub workspace: PathBuf,
    /// A template with `{workspace}` and `{agent}`.
    pub database: String,
    /// `postgres://...` when the fleet's status (heartbeats, locks, mutes,
    /// the kill switch) lives in PostgreSQL, shared between hosts; `None`:
    /// in the workspace directory.
    pub coordination: Option<String>,
    /// How long an agent's lease lasts unrenewed (`fleet.coordination`
    /// only): a `kill -9` is taken over by a standby within about this; a
    /// database out of reach for more than 3/5 of it makes the holder start
    /// over.
    pub lease_ttl: Duration,
    pub heartbeat_interval: Duration,
    /// A peer whose last heartbeat is older than this is stale.
    pub stale_after: Duration,
    /// The environment variable holding the fleet secret, which seals the
    /// approval items agents forward to each other.
    pub secret_env: String,
    /// A producer's temporary (dot-named) file in an inbox untouched this
    /// long is reported: a transfer that died, or a producer that never renamed.
    pub stale_temp_after: Duration,
}

/// Where the fleet secret is read from unless `[fleet] secret_env` says otherwise.
pub const DEFAULT_SECRET_ENV: &str = "SWITCHYARD_FLEET_SECRET";

/// The shortest fleet secret accepted, in bytes (`openssl rand -hex 32` gives 64).
pub const MIN_FLEET_SECRET_LEN: usize = 32;

#[derive(Debug, Clone)]
pub struct DockerSettings {
    pub host: String,
}

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Pending ambient messages to one channel beyond this many, which would
    /// also take longer than `coalesce_backlog` to drain, are coalesced.
    pub coalesce_after: usize,
    pub coalesce_backlog: Duration,
}

pub(super) fn fleet(v: &mut Validator, raw: RawFleet, base_dir: &Path) -> FleetSettings {
    FleetSettings {
        workspace: {
            let w = raw.workspace.unwrap_or_else(|| "workspace".into());
            let p = PathBuf::from(&w);
            if p.is_absolute() { p } else { base_dir.join(p) }
        },
        database: {
            let d = raw
                .database
                .unwrap_or_else(|| "sqlite://{workspace}/agents/{agent}/state.db".into());
            let sqlite = d.starts_with("sqlite:");
            let postgres = d.starts_with("postgres://") || d.starts_with("postgresql://");
            if !sqlite && !postgres {
                v.problem(
                    "fleet.database",
                    "must be a sqlite:// URL (one file per agent) or a postgres:// URL (one shared database, a schema per agent)",
                );
            }
            if sqlite && !d.contains("{agent}") {
                v.problem(
                    "fleet.database",
                    "must contain {agent}: each agent has its own SQLite file",
                );
            }
            d
        },
        coordination: raw.coordination.inspect(|url| {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                v.problem(
                    "fleet.coordination",
                    "must be a postgres:// URL (the fleet's status in PostgreSQL, shared between hosts); leave it out to coordinate through the workspace directory",
                );
            }
        }),
        lease_ttl: {
            let ttl = v.duration("fleet.lease_ttl", raw.lease_ttl, "5s");
            if !(Duration::from_secs(2)..=Duration::from_secs(600)).contains(&ttl) {
                v.problem(
                    "fleet.lease_ttl",
                    "must be between 2s and 10m: shorter leases are taken over sooner, longer ones ride out longer database outages",
                );
            }
            ttl
        },
        heartbeat_interval: v.duration("fleet.heartbeat_interval", raw.heartbeat_interval, "5s"),
        stale_after: v.duration("fleet.stale_after", raw.stale_after, "30s"),
        stale_temp_after: v.duration("fleet.stale_temp_after", raw.stale_temp_after, "1h"),
        secret_env: {
            let e = raw
                .secret_env
                .unwrap_or_else(|| DEFAULT_SECRET_ENV.to_string());
            v.env_name("fleet.secret_env", &e);
            e
        },
    }
}

pub(super) fn docker(raw: RawDocker) -> DockerSettings {
    DockerSettings {
        host: raw
            .host
            .unwrap_or_else(|| "unix:///var/run/docker.sock".into()),
    }
}

pub(super) fn delivery(v: &mut Validator, raw: RawDelivery) -> DeliverySettings {
    DeliverySettings {
        max_attempts: match raw.max_attempts.unwrap_or(8) {
            0 => {
                v.problem("delivery.max_attempts", "must be at least 1");
                1
            }
            n => n,
        },
        backoff_base: v.duration("delivery.backoff_base", raw.backoff_base, "500ms"),
        backoff_max: v.duration("delivery.backoff_max", raw.backoff_max, "5m"),
        coalesce_after: raw.coalesce_after.unwrap_or(20).max(2),
        coalesce_backlog: v.duration("delivery.coalesce_backlog", raw.coalesce_backlog, "2m"),
    }
}
