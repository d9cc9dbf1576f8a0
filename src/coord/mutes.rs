//! Fleet-wide mutes in the status file: create, lift, and the notices that
//! tell people a mute started, ends soon, and ended.
//!
//! Whether a mute holds an event is decided by `switchyard_routing::Mute`;
//! this module only keeps the list in `status.json` (under its lock) and
//! records which notices were posted, so exactly one of each goes out even
//! when several agents look.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use switchyard_routing::{Destination, Mute, MuteId, MuteRequest, MuteTarget};

use crate::config::Config;
use crate::coord::status::StatusFile;

/// Ended mutes stay listed this long, so the end notice and every agent's
/// "while muted" digest can still find them; then they are swept.
const KEEP_ENDED: TimeDelta = TimeDelta::hours(1);

#[derive(Debug, thiserror::Error)]
pub enum MuteCreateError {
    /// The request itself is wrong (protected target, bad duration): exit 2.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

pub use crate::coord::status::NoticesPosted;

/// Which notice is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Started,
    EndingSoon,
    Ended,
}

impl Notice {
    /// Title and body of the notice.
    pub fn text(self, mute: &Mute, now: DateTime<Utc>) -> (String, String) {
        match self {
            Notice::Started => (format!("Muted: {}", mute.target), mute.describe()),
            Notice::EndingSoon => {
                let left =
                    humantime::format_duration(Duration::from_secs(mute.remaining(now).as_secs()));
                (
                    format!("Mute on {} ends in {left}", mute.target),
                    mute.describe(),
                )
            }
            Notice::Ended => (
                format!("Mute on {} ended", mute.target),
                format!("{}\nHeld messages follow as one digest.", mute.describe()),
            ),
        }
    }
}

fn new_id(now: DateTime<Utc>) -> MuteId {
    let id = format!(
        "mute_{}_{:04x}",
        now.format("%Y%m%d%H%M%S"),
        rand::random::<u16>()
    );
    id.parse()
        .unwrap_or_else(|_| unreachable!("generated mute ids are valid"))
}

/// Create a mute (fleet-wide, effective for every agent at its next look).
pub fn create(
    config: &Config,
    target: MuteTarget,
    duration: Duration,
    by: &str,
    reason: &str,
    force: bool,
    now: DateTime<Utc>,
) -> Result<Mute, MuteCreateError> {
    if let MuteTarget::Destination(d) = &target
        && !destination_known(config, d)
    {
        return Err(MuteCreateError::Refused(format!(
            "{d} is not a configured destination; configured: {}",
            configured_destinations(config).join(", ")
        )));
    }
    let request = MuteRequest {
        target,
        duration,
        created_by: by.to_string(),
        reason: reason.to_string(),
        force,
    };
    let mute = Mute::new(new_id(now), request, now)
        .map_err(|e| MuteCreateError::Refused(e.to_string()))?;
    let file = StatusFile::for_fleet(&config.fleet).map_err(anyhow::Error::from)?;
    let stored = mute.clone();
    file.update(move |s| {
        sweep(s, now);
        s.mutes.push(stored);
    })
    .map_err(anyhow::Error::from)?;
    tracing::info!(mute = %mute.id, target = %mute.target, until = %mute.expires_at, by, "mute created");
    Ok(mute)
}

/// End a mute now. Returns it, or `None` when no active mute has that id.
pub fn lift(config: &Config, id: &str, now: DateTime<Utc>) -> anyhow::Result<Option<Mute>> {
    let file = StatusFile::for_fleet(&config.fleet)?;
    let lifted = file.update(|s| {
        let m = s
            .mutes
            .iter_mut()
            .find(|m| m.id.as_str() == id && m.is_active(now))?;
        // Ending it (rather than deleting it) lets the end notice and the digests follow.
        m.expires_at = now;
        Some(m.clone())
    })?;
    if let Some(m) = &lifted {
        tracing::info!(mute = %m.id, target = %m.target, "mute lifted");
    }
    Ok(lifted)
}

fn sweep(s: &mut crate::coord::status::Status, now: DateTime<Utc>) {
    s.mutes.retain(|m| m.expires_at + KEEP_ENDED > now);
    let ids: std::collections::BTreeSet<String> =
        s.mutes.iter().map(|m| m.id.to_string()).collect();
    s.mute_notices.retain(|id, _| ids.contains(id));
}

/// Whether any notice is due, from a plain read: callers check this before
/// taking the status file's lock, so a quiet fleet does not rewrite it.
pub fn any_notice_due(
    status: &crate::coord::status::Status,
    now: DateTime<Utc>,
    lead: Duration,
) -> bool {
    status.mutes.iter().any(|m| {
        let posted = status
            .mute_notices
            .get(m.id.as_str())
            .copied()
            .unwrap_or_default();
        let long_enough = (m.expires_at - m.created_at).to_std().unwrap_or_default() > lead;
        (!posted.started && m.is_active(now))
            || (!posted.ending && long_enough && m.notice_due(now, lead))
            || (!posted.ended && !m.is_active(now))
    })
}

/// The notices due now, marked as posted in the same locked update, so that
/// a second caller does not post them again.
pub fn due_notices(
    file: &StatusFile,
    now: DateTime<Utc>,
    lead: Duration,
) -> anyhow::Result<Vec<(Mute, Notice)>> {
    let due = file.update(|s| {
        sweep(s, now);
        let mut due = Vec::new();
        for m in &s.mutes {
            let posted = s.mute_notices.entry(m.id.to_string()).or_default();
            if !posted.started && m.is_active(now) {
                posted.started = true;
                due.push((m.clone(), Notice::Started));
            }
            // A mute shorter than the lead gets no "ends soon" notice: the start notice says when.
            let long_enough = (m.expires_at - m.created_at).to_std().unwrap_or_default() > lead;
            if !posted.ending && long_enough && m.notice_due(now, lead) {
                posted.ending = true;
                due.push((m.clone(), Notice::EndingSoon));
            }
            if !posted.ended && !m.is_active(now) {
                posted.ended = true;
                posted.ending = true;
                due.push((m.clone(), Notice::Ended));
            }
        }
        due
    })?;
    Ok(due)
}

/// Where a mute's notices go: the muted destination itself, or for a
/// category the destination its default route uses; sources go to `unmatched`.
pub fn notice_destination(config: &Config, target: &MuteTarget) -> Destination {
    match target {
        MuteTarget::Destination(d) => d.clone(),
        MuteTarget::Category(c) => config
            .routes
            .iter()
            .find(|r| {
                r.r#match
                    .category
                    .as_ref()
                    .is_some_and(|cats| cats.contains(c))
            })
            .and_then(|r| {
                r.to.iter()
                    .find(|d| d.platform == switchyard_routing::Platform::Discord)
                    .cloned()
            })
            .unwrap_or_else(|| config.routing.unmatched.clone()),
        MuteTarget::Source(_) => config.routing.unmatched.clone(),
    }
}

fn destination_known(config: &Config, d: &Destination) -> bool {
    configured_destinations(config).contains(&d.to_string())
}

fn configured_destinations(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(dc) = &config.discord {
        out.extend(
            dc.channels
                .keys()
                .chain(dc.webhooks.keys())
                .map(|a| format!("discord:{a}")),
        );
    }
    if let Some(t) = &config.telegram {
        out.extend(t.chats.keys().map(|a| format!("telegram:{a}")));
    }
    out
}
/// The fleet's mutes as this agent last read them, for routing: re-read only
/// when the status changed since, never parsed per event. A `status.json`
/// is always replaced by rename, so its inode, size and modification time
/// say so; the shared status (`fleet.coordination`) says so by its version,
/// asked at most every [`SHARED_RECHECK`].
#[derive(Debug, Default)]
pub struct MuteSnapshot {
    cached: std::sync::Mutex<Option<(Stamp, Arc<Vec<Mute>>)>>,
}

/// How stale a shared status's mutes may be before the version is asked
/// again: a mute made on another host holds here within this.
pub const SHARED_RECHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// What identifies one version of the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stamp {
    File(FileStamp),
    /// The shared status's version, and when it was asked.
    Shared(i64, std::time::Instant),
}

/// What identifies one version of the status file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    inode: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    fn of(path: &std::path::Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            inode: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

impl MuteSnapshot {
    /// The current mutes: the cached list while the status is unchanged.
    pub fn current(&self, status: &StatusFile) -> Result<Arc<Vec<Mute>>, crate::coord::CoordError> {
        let cached = self.lock().clone();
        let stamp = match (status.shared_version(), &cached) {
            (None, _) => FileStamp::of(status.path()).map(Stamp::File),
            (Some(_), Some((Stamp::Shared(_, at), mutes))) if at.elapsed() < SHARED_RECHECK => {
                return Ok(mutes.clone());
            }
            (Some(version), _) => Some(Stamp::Shared(version?, std::time::Instant::now())),
        };
        if let (Some(stamp), Some((seen, mutes))) = (stamp, &cached) {
            let same = match (stamp, seen) {
                (Stamp::File(a), Stamp::File(b)) => a == *b,
                (Stamp::Shared(a, _), Stamp::Shared(b, _)) => a == *b,
                _ => false,
            };
            if same {
                *self.lock() = Some((stamp, mutes.clone()));
                return Ok(mutes.clone());
            }
        }
        let mutes = Arc::new(status.read()?.mutes);
        if let Some(stamp) = stamp {
            *self.lock() = Some((stamp, mutes.clone()));
        }
        Ok(mutes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Stamp, Arc<Vec<Mute>>)>> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }
}
