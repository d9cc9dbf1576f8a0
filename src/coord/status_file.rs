//! The handle on the fleet's status ([`Status`]): read it, and change it
//! under an exclusive lock, in either of its homes. In a workspace directory
//! that is `status.json` under the `flock` of `status.json.lock` (see
//! `status.rs` for the write discipline); with `fleet.coordination` it is one
//! row of the coordination database, under its row lock ([`shared_db`]).
//! Either way a change is read, sweep, modify, write, then `STATUS.md` is
//! redrawn in the local workspace. Locks, the kill switch and heartbeats are
//! changes like any other.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::shared_db::{self, CoordDb};
use super::status::{
    Heartbeat, KillAction, KillInfo, KillRecord, KillSwitch, LockInfo, MAX_LOCK_NAME,
    STATUS_SCHEMA, StalePeer, Status,
};
use super::{CoordError, Durability, write_atomic};
use crate::config::FleetSettings;

/// Refuses a status written by a newer switchyard.
fn check_schema(status: Status) -> Result<Status, CoordError> {
    if status.schema > STATUS_SCHEMA {
        return Err(CoordError::UnsupportedSchema {
            found: status.schema,
            supported: STATUS_SCHEMA,
        });
    }
    Ok(status)
}

/// Handle on the fleet's status: `<workspace>/status.json`, or the row in
/// the coordination database when the fleet has one.
#[derive(Debug, Clone)]
pub struct StatusFile {
    dir: PathBuf,
    path: PathBuf,
    lock_path: PathBuf,
    stale_after: Duration,
    /// Set when the status lives in PostgreSQL (`fleet.coordination`).
    shared: Option<CoordDb>,
}

impl StatusFile {
    /// Opens (does not create) the status file of the workspace; the
    /// workspace directory is created if missing.
    pub fn open(workspace: &Path) -> Result<StatusFile, CoordError> {
        fs::create_dir_all(workspace).map_err(CoordError::io("create the workspace", workspace))?;
        Ok(StatusFile {
            dir: workspace.to_path_buf(),
            path: workspace.join("status.json"),
            lock_path: workspace.join("status.json.lock"),
            stale_after: Duration::from_secs(30),
            shared: None,
        })
    }

    /// The fleet's status where its configuration keeps it: the coordination
    /// database when `fleet.coordination` names one, else the workspace's
    /// `status.json`. `STATUS.md` is drawn in the local workspace either way.
    pub fn for_fleet(fleet: &FleetSettings) -> Result<StatusFile, CoordError> {
        let file = match &fleet.coordination {
            None => StatusFile::open(&fleet.workspace)?,
            Some(url) => StatusFile::open_shared(&fleet.workspace, url)?,
        };
        Ok(file.with_stale_after(fleet.stale_after))
    }

    /// The status in the coordination database at `url` (PostgreSQL), with
    /// `STATUS.md` drawn in `workspace`.
    pub fn open_shared(workspace: &Path, url: &str) -> Result<StatusFile, CoordError> {
        Ok(StatusFile {
            shared: Some(CoordDb::open(url)?),
            ..StatusFile::open(workspace)?
        })
    }

    /// Whether the status lives in the coordination database (shared
    /// between hosts) rather than in the workspace directory.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// A number that changes whenever the shared status changes (`None`
    /// for a status file: its inode and time stamp say that).
    pub fn shared_version(&self) -> Option<Result<i64, CoordError>> {
        self.shared.as_ref().map(CoordDb::status_version)
    }

    /// The age after which STATUS.md marks an agent stale (`fleet.stale_after`).
    pub fn with_stale_after(mut self, stale_after: Duration) -> StatusFile {
        self.stale_after = stale_after;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn markdown_path(&self) -> PathBuf {
        self.dir.join("STATUS.md")
    }

    /// The current state, without locking. A missing file is an empty fleet.
    pub fn read(&self) -> Result<Status, CoordError> {
        if let Some(db) = &self.shared {
            let status = shared_db::parse(db.read_status()?.as_deref())?;
            return check_schema(status);
        }
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Status::default()),
            Err(e) => return Err(CoordError::io("read", &self.path)(e)),
        };
        let status: Status =
            serde_json::from_slice(&bytes).map_err(|e| CoordError::CorruptStatus {
                path: self.path.clone(),
                why: e.to_string(),
            })?;
        check_schema(status)
    }

    /// Changes the state under the exclusive lock and writes it back
    /// (status.json durably, then STATUS.md). Blocks while another process
    /// holds the lock.
    pub fn update<R>(&self, change: impl FnOnce(&mut Status) -> R) -> Result<R, CoordError> {
        if let Some(db) = &self.shared {
            return self.update_shared(db, change);
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&self.lock_path)
            .map_err(CoordError::io("open", &self.lock_path))?;
        lock.lock()
            .map_err(CoordError::io("lock", &self.lock_path))?;
        let result = self.update_locked(change);
        // Dropping the file releases the lock too; unlocking first is explicit.
        let _ = File::unlock(&lock);
        result
    }

    /// As [`StatusFile::update`], on the coordination database's row lock.
    fn update_shared<R>(
        &self,
        db: &CoordDb,
        change: impl FnOnce(&mut Status) -> R,
    ) -> Result<R, CoordError> {
        let now = Utc::now();
        let (r, md) = db.update_status(|doc| {
            let mut status = check_schema(shared_db::parse(doc)?)?;
            status.schema = STATUS_SCHEMA;
            status.sweep(now);
            let r = change(&mut status);
            status.updated_at = Some(now);
            let doc = serde_json::to_string(&status).expect("the status serializes");
            Ok((doc, (r, status.render_markdown(now, self.stale_after))))
        })?;
        if let Err(e) = write_atomic(&self.dir, "STATUS.md", md.as_bytes(), Durability::None) {
            tracing::warn!(error = %e, "could not write STATUS.md");
        }
        Ok(r)
    }

    fn update_locked<R>(&self, change: impl FnOnce(&mut Status) -> R) -> Result<R, CoordError> {
        let mut status = self.read()?;
        let now = Utc::now();
        status.schema = STATUS_SCHEMA;
        status.sweep(now);
        let r = change(&mut status);
        status.updated_at = Some(now);
        let bytes = serde_json::to_vec_pretty(&status).expect("the status serializes");
        write_atomic(&self.dir, "status.json", &bytes, Durability::Content)?;
        let md = status.render_markdown(now, self.stale_after);
        if let Err(e) = write_atomic(&self.dir, "STATUS.md", md.as_bytes(), Durability::None) {
            // status.json is the truth; a stale STATUS.md is redrawn by the next update.
            tracing::warn!(error = %e, "could not write STATUS.md");
        }
        Ok(r)
    }

    /// Takes lock `name` for `holder` until now + `ttl`. Held and unexpired
    /// by someone else: refused, naming them. Held by `holder`: renewed.
    pub fn acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        reason: &str,
    ) -> Result<LockInfo, CoordError> {
        if name.is_empty()
            || name.chars().count() > MAX_LOCK_NAME
            || name.chars().any(char::is_control)
        {
            return Err(CoordError::InvalidLockName(name.to_string()));
        }
        self.update(|s| {
            let now = Utc::now();
            if let Some(l) = s.locks.get(name)
                && l.expires_at > now
                && l.holder != holder
            {
                return Err(CoordError::LockHeld {
                    name: name.to_string(),
                    holder: l.holder.clone(),
                    reason: l.reason.clone(),
                    until: l.expires_at,
                });
            }
            let acquired_at = s
                .locks
                .get(name)
                .filter(|l| l.holder == holder)
                .map_or(now, |l| l.acquired_at);
            let info = LockInfo {
                holder: holder.to_string(),
                reason: reason.to_string(),
                acquired_at,
                expires_at: super::inbox::after(now, ttl),
            };
            s.locks.insert(name.to_string(), info.clone());
            Ok(info)
        })?
    }

    /// Releases lock `name` held by `holder`.
    pub fn release(&self, name: &str, holder: &str) -> Result<LockInfo, CoordError> {
        self.update(|s| match s.locks.get(name) {
            None => Err(CoordError::LockNotHeld {
                name: name.to_string(),
            }),
            Some(l) if l.holder != holder => Err(CoordError::LockNotYours {
                name: name.to_string(),
                holder: l.holder.clone(),
                requester: holder.to_string(),
            }),
            Some(_) => Ok(s.locks.remove(name).expect("present")),
        })?
    }

    /// Releases lock `name` whoever holds it (operator override).
    pub fn force_release(&self, name: &str) -> Result<Option<LockInfo>, CoordError> {
        self.update(|s| s.locks.remove(name))
    }

    /// Unexpired locks, by name.
    pub fn list(&self) -> Result<Vec<(String, LockInfo)>, CoordError> {
        let now = Utc::now();
        Ok(self
            .read()?
            .active_locks(now)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    /// Pulls the kill switch for one agent or (`None`) the whole fleet.
    pub fn kill(
        &self,
        agent: Option<&str>,
        by: &str,
        reason: &str,
    ) -> Result<KillInfo, CoordError> {
        self.update(|s| {
            let info = KillInfo {
                by: by.to_string(),
                reason: reason.to_string(),
                at: Utc::now(),
            };
            match agent {
                None => s.kill.fleet = Some(info.clone()),
                Some(a) => {
                    s.kill.agents.insert(a.to_string(), info.clone());
                }
            }
            s.record(KillRecord {
                action: KillAction::Kill,
                agent: agent.map(str::to_string),
                by: info.by.clone(),
                reason: info.reason.clone(),
                at: info.at,
            });
            tracing::warn!(
                agent = agent.unwrap_or("fleet"),
                by,
                reason,
                "kill switch pulled"
            );
            info
        })
    }

    /// Resumes one agent, or (`None`) the whole fleet: the fleet-wide flag
    /// and every per-agent kill are cleared. Returns whether anything was killed.
    pub fn resume(&self, agent: Option<&str>, by: &str, reason: &str) -> Result<bool, CoordError> {
        self.update(|s| {
            let was = match agent {
                None => {
                    let was = s.kill.fleet.is_some() || !s.kill.agents.is_empty();
                    s.kill = KillSwitch::default();
                    was
                }
                Some(a) => s.kill.agents.remove(a).is_some(),
            };
            s.record(KillRecord {
                action: KillAction::Resume,
                agent: agent.map(str::to_string),
                by: by.to_string(),
                reason: reason.to_string(),
                at: Utc::now(),
            });
            tracing::info!(
                agent = agent.unwrap_or("fleet"),
                by,
                reason,
                "kill switch released"
            );
            was
        })
    }

    /// Whether `agent` must stop: the fleet-wide kill or its own.
    pub fn is_killed(&self, agent: &str) -> Result<Option<KillInfo>, CoordError> {
        Ok(self.read()?.is_killed(agent).cloned())
    }

    /// Records `agent`'s heartbeat.
    pub fn beat(&self, agent: &str, heartbeat: Heartbeat) -> Result<(), CoordError> {
        self.update(|s| {
            s.agents.insert(agent.to_string(), heartbeat);
        })
    }

    /// Agents whose last beat is older than `stale_after`.
    pub fn stale_peers(
        &self,
        now: DateTime<Utc>,
        stale_after: Duration,
    ) -> Result<Vec<StalePeer>, CoordError> {
        Ok(self.read()?.stale_peers(now, stale_after))
    }
}
