//! Coordination between the agents of one fleet through the shared workspace
//! (DESIGN.md 3.3): one inbox directory per agent, one status file for the
//! fleet (heartbeats, locks, mutes, kill switch), and the per-token run lock
//! that keeps one process per bot token.
//!
//! Everything here is plain files with atomic renames and `flock`-style locks,
//! so it works for processes on one host and for compose services sharing a
//! volume, with no broker. A fleet across hosts puts the status in PostgreSQL
//! instead (`fleet.coordination`, [`shared_db`]), with the same meaning. The calls are blocking (small file operations);
//! async callers wrap the slow ones (`StatusFile::update`, which may wait for
//! the lock) in `tokio::task::spawn_blocking`.

pub mod agent_lease;
pub mod dropbox;
pub mod inbox;
pub mod item;
pub mod mutes;
pub mod queue;
pub mod shared_db;
pub mod status;
mod status_file;
pub mod token_lock;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use inbox::{
    Claimed, DEFAULT_LEASE_TTL, DEFAULT_MAX_ITEM_BYTES, Inbox, InboxOptions, InboxWatcher, Outcome,
    RecoverReason, Recovered, WatchBackend, WatchMode, WatchOptions, drop_item,
};
pub use item::{InboxItem, ItemError, ItemKind, parse_item};
pub use status::{
    AgentState, Heartbeat, KillAction, KillInfo, KillRecord, KillSwitch, LockInfo, ReloadRecord,
    STATUS_SCHEMA, StalePeer, Status, StatusFile,
};
pub use token_lock::TokenLock;

/// What went wrong in the coordination layer. Callers branch on the kind:
/// `Rejected` means "this item was bad, it is in failed/, keep going";
/// `LockHeld` and `TokenInUse` name who is in the way.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    #[error("could not {what} `{}`: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{id:?} is not a valid inbox item id ({why}): use 1 to 128 letters, digits, `_`, `-` or `.`, not starting with `.`"
    )]
    InvalidId { id: String, why: &'static str },
    #[error(
        "{0:?} is not a valid agent name: use 1 to 32 lowercase letters, digits, `-` or `_`, as in the fleet configuration"
    )]
    InvalidAgent(String),
    #[error("an inbox item must be a JSON object, not {0}: wrap it as {{\"kind\": ..., ...}}")]
    ItemNotObject(&'static str),
    #[error(
        "an item named {id:?} is already waiting in {agent}'s inbox; nothing was replaced: give the new item another id"
    )]
    ItemExists { agent: String, id: String },
    #[error("inbox item `{name}` was rejected and moved to `{}`: {reason}", moved_to.display())]
    Rejected {
        name: String,
        reason: String,
        moved_to: PathBuf,
    },
    #[error("`{}` is not an entry of the inbox `{}`: only items directly in the inbox can be claimed", path.display(), inbox.display())]
    NotInInbox { path: PathBuf, inbox: PathBuf },
    #[error(
        "item `{id}` is no longer in running/: its lease lapsed and another process recovered it; its result was not recorded"
    )]
    LostLease { id: String },
    #[error("the status file `{}` is not valid: {why}; fix or remove it (the agents rebuild it from their heartbeats)", path.display())]
    CorruptStatus { path: PathBuf, why: String },
    #[error(
        "the status file uses schema {found}, newer than this switchyard understands ({supported}): upgrade switchyard"
    )]
    UnsupportedSchema { found: u32, supported: u32 },
    #[error(
        "{0:?} is not a valid lock name: use 1 to 128 printable characters without control characters"
    )]
    InvalidLockName(String),
    #[error(
        "lock `{name}` is held by {holder} until {until} ({reason}): wait for it, ask them to release it, or release it with force"
    )]
    LockHeld {
        name: String,
        holder: String,
        reason: String,
        until: DateTime<Utc>,
    },
    #[error("lock `{name}` is not held by anyone: nothing to release")]
    LockNotHeld { name: String },
    #[error(
        "lock `{name}` is held by {holder}, not by {requester}: release it as {holder}, or with force"
    )]
    LockNotYours {
        name: String,
        holder: String,
        requester: String,
    },
    #[error(
        "{0:?} is not a valid environment variable name for a token: use letters, digits and `_`"
    )]
    InvalidTokenEnv(String),
    #[error(
        "the bot token in ${env} is already in use by {} (lock `{}`): one process per token, so stop that process or give this agent its own token",
        holder.as_deref().unwrap_or("another process"), path.display()
    )]
    TokenInUse {
        env: String,
        holder: Option<String>,
        path: PathBuf,
    },
    #[error(
        "the item {place:?} is in the fleet's queue, but [fleet] coordination is not set any more: set it back to settle the item"
    )]
    NoCoordination { place: String },
    #[error(
        "this host's database role may not {what} ({why}): it connects as a producer's or a worker's host (docs/HOSTS.md); do this from an operator's host"
    )]
    NotAllowed { what: &'static str, why: String },
    #[error(
        "the coordination database did not answer in time; check that the server is reachable and not overloaded"
    )]
    Unanswered,
    #[error(
        "item {id:?} is {bytes} bytes, more than the inbox takes ({limit}): put the bulk in a file and name it in the item"
    )]
    ItemTooBig { id: String, bytes: u64, limit: u64 },
    #[error(
        "the fleet's coordination database (fleet.coordination): could not {what}: {source}; check that the server is reachable and the URL's user may create a schema"
    )]
    Database {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

impl CoordError {
    /// True when the error concerns one bad inbox item (already moved to
    /// `failed/`); the agent logs it and carries on.
    pub fn is_rejected_item(&self) -> bool {
        matches!(self, CoordError::Rejected { .. })
    }

    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> CoordError {
        let path = path.into();
        move |source| CoordError::Io { what, path, source }
    }
}

/// Who holds something (a claimed item, a token): enough to tell, from
/// another process, whether the holder is still alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: u32,
    pub host: String,
    /// Random per process start. A restarted container keeps its host name
    /// and often its pid (1); the incarnation tells the two lives apart.
    pub incarnation: String,
}

impl ProcessId {
    /// This process.
    pub fn current() -> &'static ProcessId {
        static ME: OnceLock<ProcessId> = OnceLock::new();
        ME.get_or_init(|| ProcessId {
            pid: std::process::id(),
            host: host_name().to_string(),
            incarnation: format!("{:016x}", rand::random::<u64>()),
        })
    }

    /// Whether this holder is known to be gone. `false` means "alive or
    /// unknown" (another host, no /proc): the caller then relies on expiry.
    pub fn is_known_dead(&self) -> bool {
        let me = ProcessId::current();
        if self.host != me.host {
            return false;
        }
        if self.incarnation == me.incarnation {
            return false;
        }
        if self.pid == me.pid {
            // Same host, same pid, another incarnation: our previous life.
            return true;
        }
        pid_is_dead(self.pid)
    }
}

/// Linux only: a pid with no `/proc` entry, or a zombie, is dead. Elsewhere
/// nothing is known and the lease expiry decides.
fn pid_is_dead(pid: u32) -> bool {
    if !Path::new("/proc/self/stat").exists() {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(e) => e.kind() == io::ErrorKind::NotFound,
        Ok(stat) => {
            // The state follows the parenthesised command name, which may itself contain ')'.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            matches!(state, Some('Z') | Some('X'))
        }
    }
}

/// The host name, read once. Used in leases, heartbeats and lock holders.
/// `SWITCHYARD_HOST` names the host instead (a container whose host name
/// changes at every start, or several "hosts" on one machine in tests).
pub fn host_name() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        std::env::var("SWITCHYARD_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .or_else(|| fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string())
    })
}

/// How much of a write must survive a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// A rendering of durable data (STATUS.md), or data whose loss is safe (a lease).
    None,
    /// The content is on disk before the rename, so the name never points at
    /// an empty file; the rename itself is made durable by a later `sync_dir`
    /// of the same directory, or is soft state (status.json is rewritten by
    /// every heartbeat).
    Content,
    /// Content and the rename.
    Full,
}

/// Writes `bytes` to `dir/name` so that a reader sees the old file, no file,
/// or the whole new one: a dot-named `.tmp` sibling, fsync, rename, fsync of
/// the directory, as `durability` asks.
pub(crate) fn write_atomic(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    durability: Durability,
) -> Result<PathBuf, CoordError> {
    write_file(dir, name, bytes, durability, false)
}

/// As [`write_atomic`], but never over an existing `dir/name`: then the
/// error's kind is `AlreadyExists` and nothing changed.
pub(crate) fn write_new(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    durability: Durability,
) -> Result<PathBuf, CoordError> {
    write_file(dir, name, bytes, durability, true)
}

fn write_file(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    durability: Durability,
    no_replace: bool,
) -> Result<PathBuf, CoordError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    // Unique per process and call, so two writers of the same name never share a temp file.
    let tmp = dir.join(format!(".{name}.{}-{seq}.tmp", std::process::id()));
    let target = dir.join(name);
    let result = (|| {
        let mut file = File::create(&tmp).map_err(CoordError::io("create", &tmp))?;
        file.write_all(bytes)
            .map_err(CoordError::io("write", &tmp))?;
        if durability != Durability::None {
            file.sync_all().map_err(CoordError::io("fsync", &tmp))?;
        }
        drop(file);
        if no_replace {
            rename_noreplace(&tmp, &target)
        } else {
            fs::rename(&tmp, &target)
        }
        .map_err(CoordError::io("rename into place", &target))?;
        if durability == Durability::Full {
            sync_dir(dir)?;
        }
        Ok(target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `rename(from, to)` that fails with `AlreadyExists` instead of replacing
/// `to`: two producers, or a producer and a finished item, never overwrite
/// each other.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (from_c, to_c) = (c(from)?, c(to)?);
    // SAFETY: two valid NUL-terminated paths that outlive the call; renameat2
    // reads them and nothing else. A raw syscall so glibc and musl builds alike have it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // A file system or kernel without the flag: check, then rename (a
        // narrow race instead of none, on file systems that cannot do better).
        Some(libc::EINVAL) | Some(libc::ENOSYS) => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(from, to)
        }
        _ => Err(e),
    }
}

/// Makes a rename in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), CoordError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(CoordError::io("fsync directory", dir))
}

pub(crate) fn valid_agent(agent: &str) -> Result<(), CoordError> {
    if switchyard_commands::AgentName::is_valid(agent) {
        Ok(())
    } else {
        Err(CoordError::InvalidAgent(agent.to_string()))
    }
}
/// Runs a blocking status-file update (it waits for the file lock, which a
/// busy peer may hold for a while) without stalling the other tasks of this
/// worker thread, such as the Discord gateway's. On a current-thread runtime
/// (some tests) there is no other worker to hand them to: it just runs.
pub fn off_worker<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
