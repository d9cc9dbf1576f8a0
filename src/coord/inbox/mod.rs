//! One agent's inbox directory and the claim protocol over it.
//!
//! ```text
//! <workspace>/agents/<agent>/inbox/     producers drop <id>.json here (write-then-rename)
//!                            running/   claimed items, each with <id>.lease.json beside it
//!                            done/      finished: <id>.json and <id>.result.json
//!                            failed/    rejected or failed: <id>.json (or the bad entry) and <id>.result.json
//! ```
//!
//! * Producers write a dot-named `.tmp` file, fsync, rename to `<id>.json`,
//!   fsync the directory ([`drop_item`]). Readers ignore dot files and `.tmp`.
//! * Claiming is `rename(inbox/<id>.json, running/<id>.json)`: of two
//!   claimers, processes included, exactly one rename succeeds; the other
//!   sees `ENOENT` and gets `Ok(None)`.
//! * Leases: the claimer writes `running/<id>.lease.json` (holder pid, host,
//!   incarnation, attempt, expiry) and renews it ([`Inbox::renew_leases`])
//!   while it lives. [`Inbox::recover`] puts an item back into `inbox/` when
//!   its holder is known dead (same host, process gone) or its lease expired
//!   (any host). The attempt count travels in a hidden sidecar
//!   `inbox/.<id>.attempt.json` that the next claim reads and removes, so a
//!   re-run item says `attempt: 2`; the producer's bytes are never rewritten.
//!   An item in `running/` without a lease (a claimer crashed between rename
//!   and lease write) is recovered once it has sat there a lease TTL, judged
//!   by its ctime, which the claim's rename set.
//! * Hostile entries never stop the agent: names that are not `<id>.json`,
//!   symbolic links (moved, never followed), directories and other non-files,
//!   and files over the size limit go to `failed/` with a result that says
//!   what was wrong; the size is checked before any byte is read, and reading
//!   stops at the limit.
//! * Noticing new items: file-system notifications (`notify`), a polling
//!   fallback used when notifications cannot start, and a periodic rescan in
//!   both modes so a lost notification costs at most one rescan interval.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use notify::{EventKind, RecursiveMode, Watcher};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::item::{InboxItem, ItemError, parse_item};
use super::{
    CoordError, Durability, ProcessId, rename_noreplace, sync_dir, valid_agent, write_atomic,
    write_new,
};

mod finish;
use finish::{FileAway, file_away};
mod recover;
mod watch;

pub use watch::{InboxWatcher, WatchBackend, WatchMode, WatchOptions};

/// Items larger than this are refused unread.
pub const DEFAULT_MAX_ITEM_BYTES: u64 = 1024 * 1024;
/// How long a claim lasts without renewal.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(60);
const MAX_ID_CHARS: usize = 128;
const LEASE_SUFFIX: &str = ".lease";
const RESULT_SUFFIX: &str = ".result";

/// Checks an item id (the file stem of `<id>.json`). It becomes a file name in
/// four directories, so nothing that could name another place is allowed.
pub fn validate_id(id: &str) -> Result<(), CoordError> {
    let bad = |why| {
        Err(CoordError::InvalidId {
            id: id.chars().take(200).collect(),
            why,
        })
    };
    if id.is_empty() {
        return bad("it is empty");
    }
    if id.chars().count() > MAX_ID_CHARS {
        return bad("it is longer than 128 characters");
    }
    if id.starts_with('.') {
        return bad("a leading `.` makes it a hidden temporary name");
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return if c == '/' || c == '\\' {
            bad("it contains a path separator")
        } else if c == '\0' {
            bad("it contains a NUL byte")
        } else {
            bad("it contains a character outside letters, digits, `_`, `-`, `.`")
        };
    }
    if id.ends_with(LEASE_SUFFIX)
        || id.ends_with(RESULT_SUFFIX)
        || id.ends_with(".tmp")
        || id.ends_with(".attempt")
    {
        return bad("it ends in a suffix the inbox uses for its own files");
    }
    Ok(())
}

/// Drops one item into `agent`'s inbox atomically and returns its path.
/// The inbox directory is created if the agent has not run yet.
pub fn drop_item(
    workspace: &Path,
    agent: &str,
    id: &str,
    item: &Value,
) -> Result<PathBuf, CoordError> {
    valid_agent(agent)?;
    validate_id(id)?;
    if !item.is_object() {
        return Err(CoordError::ItemNotObject(match item {
            Value::Array(_) => "an array",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            _ => "null",
        }));
    }
    let dir = workspace.join("agents").join(agent).join("inbox");
    fs::create_dir_all(&dir).map_err(CoordError::io("create the inbox", &dir))?;
    let bytes = serde_json::to_vec_pretty(item).expect("a serde_json::Value always serializes");
    write_new(&dir, &format!("{id}.json"), &bytes, Durability::Full).map_err(|e| match e {
        CoordError::Io { source, .. } if source.kind() == io::ErrorKind::AlreadyExists => {
            CoordError::ItemExists {
                agent: agent.to_string(),
                id: id.to_string(),
            }
        }
        e => e,
    })
}

/// Tunables of an [`Inbox`].
#[derive(Debug, Clone)]
pub struct InboxOptions {
    pub max_item_bytes: u64,
    pub lease_ttl: Duration,
}

impl Default for InboxOptions {
    fn default() -> Self {
        InboxOptions {
            max_item_bytes: DEFAULT_MAX_ITEM_BYTES,
            lease_ttl: DEFAULT_LEASE_TTL,
        }
    }
}

#[derive(Debug)]
struct Dirs {
    inbox: PathBuf,
    running: PathBuf,
    done: PathBuf,
    failed: PathBuf,
}

#[derive(Debug)]
struct Inner {
    agent: String,
    dirs: Dirs,
    options: InboxOptions,
    /// Items this process holds: id → attempt. Only these leases are renewed.
    held: Mutex<BTreeMap<String, u32>>,
}

/// One agent's inbox. Cheap to clone; clones share the set of held items.
#[derive(Debug, Clone)]
pub struct Inbox {
    inner: Arc<Inner>,
}

/// The lease file beside a running item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub id: String,
    pub agent: String,
    pub holder: ProcessId,
    pub attempt: u32,
    pub claimed_at: DateTime<Utc>,
    /// When this drop of the item was first claimed: the same on every
    /// attempt (leases from before this field: the claim time).
    #[serde(default)]
    pub first_claimed_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AttemptNote {
    attempt: u32,
    recovered_at: DateTime<Utc>,
    reason: RecoverReason,
    #[serde(default)]
    previous_holder: Option<ProcessId>,
    #[serde(default)]
    first_claimed_at: Option<DateTime<Utc>>,
}

/// Why an item was taken back from `running/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoverReason {
    /// The holder ran on this host and its process is gone.
    HolderDead,
    /// The lease was not renewed in time (holder hung, or on another host).
    LeaseExpired,
    /// No lease was ever written (crash between claim and lease).
    NoLease,
    /// This process claimed it and dropped the claim without finishing it.
    Abandoned,
}

/// An item put back into the inbox by [`Inbox::recover`].
#[derive(Debug, Clone, PartialEq)]
pub struct Recovered {
    pub id: String,
    /// The attempt number the next claim will carry.
    pub attempt: u32,
    pub reason: RecoverReason,
    pub previous_holder: Option<ProcessId>,
}

/// An item this process holds in `running/`.
#[derive(Debug)]
pub struct Claimed {
    pub id: String,
    /// Its path in `running/`.
    pub path: PathBuf,
    /// The whole file (at most the size limit).
    pub bytes: Vec<u8>,
    /// 1 on the first claim; more when a dead holder's claim was recovered.
    pub attempt: u32,
    /// When this drop of the item was first claimed, the same on every
    /// attempt: with the id, it names what the item carried when the item
    /// itself does not (an event without `event_id`).
    pub first_claimed_at: DateTime<Utc>,
    inner: Arc<Inner>,
    finished: bool,
}

/// How an item ended. The value is written as `result` (done) or `reason`
/// (failed) in `<id>.result.json`: say what happened, or what was wrong and
/// what to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done(Value),
    Failed(Value),
}

impl Claimed {
    /// Parses the bytes as an inbox item.
    pub fn item(&self) -> Result<InboxItem, ItemError> {
        parse_item(&self.bytes)
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        if !self.finished {
            // Not renewed any more: recover() in this or a later process takes it back.
            self.inner.held.lock().unwrap().remove(&self.id);
            tracing::warn!(agent = %self.inner.agent, id = %self.id, "claimed inbox item dropped without finish; it will be recovered");
        }
    }
}

fn remove_if_exists(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove a file");
    }
}

/// Whether a directory entry name is a producer's temporary file.
fn is_ignored_name(name: &OsStr) -> bool {
    let bytes = name.as_encoded_bytes();
    bytes.starts_with(b".") || bytes.ends_with(b".tmp")
}

/// A name safe to use in failed/ for an entry whose own name is not an id.
fn sanitized_name(name: &OsStr) -> String {
    let lossy = name.to_string_lossy();
    let mut s: String = lossy
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    while s.starts_with('.') {
        s.replace_range(0..1, "_");
    }
    format!("rejected-{}-{s}", Utc::now().format("%Y%m%dT%H%M%S%.6f"))
}

impl Inbox {
    /// Opens `<workspace>/agents/<agent>/` with default options, creating the four directories.
    pub fn open(workspace: &Path, agent: &str) -> Result<Inbox, CoordError> {
        Inbox::open_with(workspace, agent, InboxOptions::default())
    }

    pub fn open_with(
        workspace: &Path,
        agent: &str,
        options: InboxOptions,
    ) -> Result<Inbox, CoordError> {
        valid_agent(agent)?;
        let base = workspace.join("agents").join(agent);
        let dirs = Dirs {
            inbox: base.join("inbox"),
            running: base.join("running"),
            done: base.join("done"),
            failed: base.join("failed"),
        };
        for d in [&dirs.inbox, &dirs.running, &dirs.done, &dirs.failed] {
            fs::create_dir_all(d).map_err(CoordError::io("create", d))?;
        }
        Ok(Inbox {
            inner: Arc::new(Inner {
                agent: agent.to_string(),
                dirs,
                options,
                held: Mutex::new(BTreeMap::new()),
            }),
        })
    }

    pub fn agent(&self) -> &str {
        &self.inner.agent
    }
    pub fn inbox_dir(&self) -> &Path {
        &self.inner.dirs.inbox
    }
    pub fn running_dir(&self) -> &Path {
        &self.inner.dirs.running
    }
    pub fn done_dir(&self) -> &Path {
        &self.inner.dirs.done
    }
    pub fn failed_dir(&self) -> &Path {
        &self.inner.dirs.failed
    }
    pub fn options(&self) -> &InboxOptions {
        &self.inner.options
    }

    /// The entries waiting in `inbox/`, in name order (ids made from
    /// timestamps come out oldest first). Temporary names are left out.
    pub fn ready(&self) -> Result<Vec<PathBuf>, CoordError> {
        scan(&self.inner.dirs.inbox)
    }

    /// Temporary (dot-named or `.tmp`) entries of `inbox/` not modified for
    /// `older_than`, by name: a transfer that died, or a producer that never
    /// renamed. They are never taken nor moved (one may still be written);
    /// the caller reports them. The inbox's own attempt notes are left out.
    pub fn stale_temporaries(&self, older_than: Duration) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.inner.dirs.inbox) else {
            return Vec::new();
        };
        let now = SystemTime::now();
        let mut stale: Vec<String> = entries
            .flatten()
            .filter(|e| is_ignored_name(&e.file_name()))
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".attempt.json") {
                    return None;
                }
                let modified = e.metadata().ok()?.modified().ok()?;
                let age = now.duration_since(modified).unwrap_or_default();
                (age >= older_than).then_some(name)
            })
            .collect();
        stale.sort();
        stale
    }

    /// How many items wait in `inbox/` (the heartbeat's queue depth).
    pub fn depth(&self) -> Result<usize, CoordError> {
        Ok(self.ready()?.len())
    }

    /// Ids this process holds in `running/`.
    pub fn held(&self) -> Vec<String> {
        self.inner.held.lock().unwrap().keys().cloned().collect()
    }

    /// Claims one entry of the inbox.
    ///
    /// `Ok(Some)`: this process holds it now. `Ok(None)`: someone else was
    /// first (or it is a temporary name). `Err(Rejected)`: the entry was not
    /// an acceptable item and is in `failed/` with the reason; carry on.
    pub fn claim(&self, path: &Path) -> Result<Option<Claimed>, CoordError> {
        let inner = &self.inner;
        let not_in_inbox = || CoordError::NotInInbox {
            path: path.to_path_buf(),
            inbox: inner.dirs.inbox.clone(),
        };
        if path.parent() != Some(inner.dirs.inbox.as_path()) {
            return Err(not_in_inbox());
        }
        let name = path.file_name().ok_or_else(not_in_inbox)?;
        if is_ignored_name(name) {
            return Ok(None);
        }
        let id = match name.to_str().and_then(|n| n.strip_suffix(".json")) {
            Some(id) if validate_id(id).is_ok() => id.to_string(),
            _ => {
                let why = match name.to_str() {
                    None => "its file name is not valid UTF-8".to_string(),
                    Some(n) if !n.ends_with(".json") => {
                        "its name does not end in `.json`".to_string()
                    }
                    Some(n) => validate_id(n.trim_end_matches(".json"))
                        .unwrap_err()
                        .to_string(),
                };
                let reason = format!("{why}; inbox items are files named `<id>.json`");
                let safe = sanitized_name(name);
                return self
                    .reject_from(path, &safe, safe.clone(), "bad_name", reason)
                    .map(|_| None);
            }
        };
        let running = inner.dirs.running.join(name);
        match rename_noreplace(path, &running) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            // The same id is running now: this one waits in the inbox until
            // that one has finished (a later scan offers it again).
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(CoordError::io("claim", path)(e)),
        }
        // From here on the entry is ours; anything wrong with it sends it to failed/.
        let meta = fs::symlink_metadata(&running).map_err(CoordError::io("inspect", &running))?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            let reason =
                "it is a symbolic link; links are never followed: drop the file itself".to_string();
            return self
                .reject_from(&running, &id, format!("{id}.json"), "symlink", reason)
                .map(|_| None);
        }
        if !kind.is_file() {
            let what = if kind.is_dir() {
                "a directory"
            } else {
                "not a regular file"
            };
            let reason = format!("it is {what}; inbox items are regular files");
            return self
                .reject_from(&running, &id, format!("{id}.json"), "not_a_file", reason)
                .map(|_| None);
        }
        let limit = inner.options.max_item_bytes;
        if meta.len() > limit {
            let reason = format!(
                "it is {} bytes, over the limit of {limit} bytes; send large data by reference",
                meta.len()
            );
            return self
                .reject_from(&running, &id, format!("{id}.json"), "too_large", reason)
                .map(|_| None);
        }
        let bytes = match read_bounded(&running, &meta, limit) {
            Ok(b) => b,
            Err(reason) => {
                return self
                    .reject_from(&running, &id, format!("{id}.json"), "unreadable", reason)
                    .map(|_| None);
            }
        };

        let note_path = inner.dirs.inbox.join(format!(".{id}.attempt.json"));
        let now = Utc::now();
        let (attempt, first_claimed_at) = match fs::read(&note_path) {
            Ok(b) => serde_json::from_slice::<AttemptNote>(&b)
                .map(|n| (n.attempt.max(2), n.first_claimed_at.unwrap_or(now)))
                .unwrap_or((2, now)),
            Err(_) => (1, now),
        };
        let lease = Lease {
            id: id.clone(),
            agent: inner.agent.clone(),
            holder: ProcessId::current().clone(),
            attempt,
            claimed_at: now,
            first_claimed_at: Some(first_claimed_at),
            expires_at: after(now, inner.options.lease_ttl),
        };
        self.write_lease(&lease)?;
        remove_if_exists(&note_path);
        inner.held.lock().unwrap().insert(id.clone(), attempt);
        if attempt > 1 {
            tracing::warn!(agent = %inner.agent, id = %id, attempt, "claimed a recovered inbox item: it ran before and did not finish");
        }
        Ok(Some(Claimed {
            id,
            path: running,
            bytes,
            attempt,
            first_claimed_at,
            inner: inner.clone(),
            finished: false,
        }))
    }

    fn write_lease(&self, lease: &Lease) -> Result<(), CoordError> {
        let bytes = serde_json::to_vec(lease).expect("a lease serializes");
        // Not fsynced: after a power loss the item is recovered as lease-less, which is safe.
        write_atomic(
            &self.inner.dirs.running,
            &format!("{}{LEASE_SUFFIX}.json", lease.id),
            &bytes,
            Durability::None,
        )?;
        Ok(())
    }

    /// Moves a bad entry (from inbox/ or running/) to failed/ and writes why.
    fn reject_from(
        &self,
        from: &Path,
        id: &str,
        target_name: String,
        code: &str,
        reason: String,
    ) -> Result<(), CoordError> {
        let failed = &self.inner.dirs.failed;
        let mut result = json!({
            "id": id,
            "agent": self.inner.agent,
            "outcome": "failed",
            "attempt": 1,
            "finished_at": Utc::now(),
            "original_name": from.file_name().map(|n| n.to_string_lossy().into_owned()),
            "reason": { "error": code, "message": reason },
        });
        // `<id>.json` keeps its id; a bad name is kept whole (its result is
        // `<name>.result.json`).
        let (stem, ext) = if target_name == format!("{id}.json") {
            (id.to_string(), ".json")
        } else {
            (target_name.clone(), "")
        };
        let target = match file_away(failed, &stem, ext, from, &mut result) {
            Ok(target) => target,
            // Someone else moved it first; their rejection stands.
            Err(FileAway::Gone) => return Ok(()),
            Err(FileAway::Failed(e)) => return Err(e),
        };
        sync_dir(failed)?;
        tracing::warn!(agent = %self.inner.agent, id, code, reason = %reason, "inbox entry rejected");
        Err(CoordError::Rejected {
            name: id.to_string(),
            reason,
            moved_to: target,
        })
    }

    /// Starts watching the inbox. Needs a tokio runtime (the returned
    /// watcher's `next` is async).
    pub fn watch(&self, options: WatchOptions) -> Result<InboxWatcher, CoordError> {
        InboxWatcher::start(self.inner.dirs.inbox.clone(), options)
    }
}

/// `at + d`, saturating instead of panicking on absurd TTLs.
pub(crate) fn after(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Reads at most `limit` bytes of a file we hold, checking that the file
/// opened is the entry we inspected (not swapped in between).
fn read_bounded(path: &Path, meta: &fs::Metadata, limit: u64) -> Result<Vec<u8>, String> {
    let file = File::open(path).map_err(|e| format!("it could not be opened: {e}"))?;
    let opened = file
        .metadata()
        .map_err(|e| format!("it could not be inspected: {e}"))?;
    if opened.ino() != meta.ino() || opened.dev() != meta.dev() || !opened.is_file() {
        return Err("it was replaced while being claimed".to_string());
    }
    let mut bytes = Vec::with_capacity(meta.len().min(limit) as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("it could not be read: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "it grew past the limit of {limit} bytes while being read"
        ));
    }
    Ok(bytes)
}

/// The entries of `dir` in arrival order: the time each appeared there (its
/// inode change time, which the producer's final rename sets), then name.
/// Ids need not sort by time for items to be taken in the order they came.
fn scan(dir: &Path) -> Result<Vec<PathBuf>, CoordError> {
    let entries = fs::read_dir(dir).map_err(CoordError::io("list", dir))?;
    let mut paths: Vec<((i64, i64), PathBuf)> = entries
        .flatten()
        .filter(|e| !is_ignored_name(&e.file_name()))
        .map(|e| {
            let arrived = fs::symlink_metadata(e.path())
                .map(|m| (m.ctime(), m.ctime_nsec()))
                // Gone meanwhile: the claim will say so.
                .unwrap_or((i64::MAX, 0));
            (arrived, e.path())
        })
        .collect();
    paths.sort();
    Ok(paths.into_iter().map(|(_, p)| p).collect())
}
