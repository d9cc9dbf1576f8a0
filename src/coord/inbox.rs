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
use super::{CoordError, Durability, ProcessId, sync_dir, valid_agent, write_atomic};

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
    write_atomic(&dir, &format!("{id}.json"), &bytes, Durability::Full)
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
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AttemptNote {
    attempt: u32,
    recovered_at: DateTime<Utc>,
    reason: RecoverReason,
    #[serde(default)]
    previous_holder: Option<ProcessId>,
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

    /// Moves the item to `done/` or `failed/` with `<id>.result.json` beside
    /// it and drops the lease. Returns the item's final path.
    pub fn finish(mut self, outcome: Outcome) -> Result<PathBuf, CoordError> {
        self.finished = true;
        let inner = self.inner.clone();
        let (dir, key, value, label) = match outcome {
            Outcome::Done(v) => (&inner.dirs.done, "result", v, "done"),
            Outcome::Failed(v) => (&inner.dirs.failed, "reason", v, "failed"),
        };
        if fs::symlink_metadata(&self.path).is_err() {
            inner.held.lock().unwrap().remove(&self.id);
            return Err(CoordError::LostLease {
                id: self.id.clone(),
            });
        }
        let me = ProcessId::current();
        let mut result = json!({
            "id": self.id,
            "agent": inner.agent,
            "outcome": label,
            "attempt": self.attempt,
            "finished_at": Utc::now(),
            "handled_by": { "pid": me.pid, "host": me.host },
        });
        result[key] = value;
        let bytes = serde_json::to_vec_pretty(&result).expect("JSON values serialize");
        // The result goes first, so an item that shows up in done/ always has it;
        // the sync_dir after the item's rename makes both renames durable.
        write_atomic(
            dir,
            &format!("{}.result.json", self.id),
            &bytes,
            Durability::Content,
        )?;
        let target = dir.join(format!("{}.json", self.id));
        let moved = fs::rename(&self.path, &target);
        inner.held.lock().unwrap().remove(&self.id);
        match moved {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CoordError::LostLease {
                    id: self.id.clone(),
                });
            }
            Err(e) => return Err(CoordError::io("move the finished item", &target)(e)),
        }
        sync_dir(dir)?;
        remove_if_exists(
            &inner
                .dirs
                .running
                .join(format!("{}{LEASE_SUFFIX}.json", self.id)),
        );
        tracing::debug!(agent = %inner.agent, id = %self.id, outcome = label, attempt = self.attempt, "inbox item finished");
        Ok(target)
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
        match fs::rename(path, &running) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
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
        let attempt = match fs::read(&note_path) {
            Ok(b) => serde_json::from_slice::<AttemptNote>(&b)
                .map(|n| n.attempt.max(2))
                .unwrap_or(2),
            Err(_) => 1,
        };
        let now = Utc::now();
        let lease = Lease {
            id: id.clone(),
            agent: inner.agent.clone(),
            holder: ProcessId::current().clone(),
            attempt,
            claimed_at: now,
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
        let result = json!({
            "id": id,
            "agent": self.inner.agent,
            "outcome": "failed",
            "attempt": 1,
            "finished_at": Utc::now(),
            "original_name": from.file_name().map(|n| n.to_string_lossy().into_owned()),
            "reason": { "error": code, "message": reason },
        });
        write_atomic(
            failed,
            &format!("{id}.result.json"),
            &serde_json::to_vec_pretty(&result).unwrap(),
            Durability::Content,
        )?;
        let target = failed.join(target_name);
        match fs::rename(from, &target) {
            Ok(()) => {}
            // Someone else moved it first; their rejection stands.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(CoordError::io("move the rejected entry", &target)(e)),
        }
        sync_dir(failed)?;
        tracing::warn!(agent = %self.inner.agent, id, code, reason = %reason, "inbox entry rejected");
        Err(CoordError::Rejected {
            name: id.to_string(),
            reason,
            moved_to: target,
        })
    }

    /// Renews the leases of every item this process holds. Call it at a
    /// fraction of the lease TTL (a third is comfortable). Items recovered by
    /// someone else meanwhile (this process was presumed dead) are forgotten
    /// and their ids returned.
    pub fn renew_leases(&self) -> Result<Vec<String>, CoordError> {
        let held: Vec<(String, u32)> = self
            .inner
            .held
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let mut lost = Vec::new();
        let now = Utc::now();
        for (id, attempt) in held {
            let item = self.inner.dirs.running.join(format!("{id}.json"));
            if fs::symlink_metadata(&item).is_err() {
                self.inner.held.lock().unwrap().remove(&id);
                tracing::error!(agent = %self.inner.agent, id = %id, "a held item left running/: its lease lapsed and it was recovered elsewhere");
                lost.push(id);
                continue;
            }
            let claimed_at = self.read_lease(&id).map(|l| l.claimed_at).unwrap_or(now);
            self.write_lease(&Lease {
                id: id.clone(),
                agent: self.inner.agent.clone(),
                holder: ProcessId::current().clone(),
                attempt,
                claimed_at,
                expires_at: after(now, self.inner.options.lease_ttl),
            })?;
        }
        Ok(lost)
    }

    /// Renews this inbox's leases every `every` on the blocking pool, until
    /// the returned task is aborted. Pick `every` well under the lease TTL
    /// (a third of it). Needs a tokio runtime.
    pub fn spawn_lease_renewal(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let inbox = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let inbox = inbox.clone();
                match tokio::task::spawn_blocking(move || inbox.renew_leases()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "lease renewal failed; retrying"),
                    Err(e) => tracing::warn!(error = %e, "lease renewal task failed; retrying"),
                }
            }
        })
    }

    fn read_lease(&self, id: &str) -> Option<Lease> {
        let bytes = fs::read(
            self.inner
                .dirs
                .running
                .join(format!("{id}{LEASE_SUFFIX}.json")),
        )
        .ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Puts items whose holder is gone back into `inbox/` with their attempt
    /// count raised, and sweeps leases left without an item. Safe to run from
    /// several processes at once: each item is recovered by exactly one.
    pub fn recover(&self) -> Result<Vec<Recovered>, CoordError> {
        let inner = &self.inner;
        let now = Utc::now();
        let entries = fs::read_dir(&inner.dirs.running)
            .map_err(CoordError::io("list", &inner.dirs.running))?;
        let mut items = Vec::new();
        let mut leases = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') || name.ends_with(".tmp") {
                continue;
            }
            if let Some(id) = name.strip_suffix(".lease.json") {
                leases.push(id.to_string());
            } else if let Some(id) = name.strip_suffix(".json") {
                items.push(id.to_string());
            }
        }
        let item_set: HashSet<&String> = items.iter().collect();
        let mut recovered = Vec::new();
        for id in &items {
            if inner.held.lock().unwrap().contains_key(id) {
                continue;
            }
            let item_path = inner.dirs.running.join(format!("{id}.json"));
            let lease_path = inner.dirs.running.join(format!("{id}{LEASE_SUFFIX}.json"));
            let lease = self.read_lease(id);
            let (reason, attempt, previous) = match &lease {
                Some(l) => {
                    let reason = if l.holder == *ProcessId::current() {
                        RecoverReason::Abandoned
                    } else if l.holder.is_known_dead() {
                        RecoverReason::HolderDead
                    } else if l.expires_at <= now {
                        RecoverReason::LeaseExpired
                    } else {
                        continue;
                    };
                    (reason, l.attempt + 1, Some(l.holder.clone()))
                }
                None => {
                    if lease_path.exists() {
                        continue; // unreadable for a moment (being replaced); look again next time
                    }
                    let Ok(meta) = fs::symlink_metadata(&item_path) else {
                        continue;
                    };
                    let since_claim = SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_secs_f64()
                        - meta.ctime() as f64;
                    if since_claim < inner.options.lease_ttl.as_secs_f64() {
                        continue;
                    }
                    (RecoverReason::NoLease, 2, None)
                }
            };
            // Taking the lease away first makes this recoverer the only one.
            if lease.is_some() {
                let grabbed = inner.dirs.running.join(format!(
                    ".{id}.lease.recovering-{}",
                    ProcessId::current().incarnation
                ));
                if fs::rename(&lease_path, &grabbed).is_err() {
                    continue;
                }
                remove_if_exists(&grabbed);
            }
            let note = AttemptNote {
                attempt,
                recovered_at: now,
                reason,
                previous_holder: previous.clone(),
            };
            write_atomic(
                &inner.dirs.inbox,
                &format!(".{id}.attempt.json"),
                &serde_json::to_vec(&note).unwrap(),
                Durability::Content,
            )?;
            match fs::rename(&item_path, inner.dirs.inbox.join(format!("{id}.json"))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(CoordError::io("move back to the inbox", &item_path)(e)),
            }
            sync_dir(&inner.dirs.inbox)?;
            tracing::warn!(agent = %inner.agent, id = %id, attempt, ?reason, "recovered an unfinished inbox item");
            recovered.push(Recovered {
                id: id.clone(),
                attempt,
                reason,
                previous_holder: previous,
            });
        }
        for id in leases {
            if item_set.contains(&id) || inner.held.lock().unwrap().contains_key(&id) {
                continue;
            }
            // A lease whose item is gone: the holder finished (and is about to remove it) or crashed.
            if let Some(l) = self.read_lease(&id)
                && !(l.holder.is_known_dead() || l.expires_at <= now)
            {
                continue;
            }
            remove_if_exists(&inner.dirs.running.join(format!("{id}{LEASE_SUFFIX}.json")));
        }
        Ok(recovered)
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

fn scan(dir: &Path) -> Result<Vec<PathBuf>, CoordError> {
    let entries = fs::read_dir(dir).map_err(CoordError::io("list", dir))?;
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| !is_ignored_name(&e.file_name()))
        .map(|e| e.path())
        .collect();
    paths.sort();
    Ok(paths)
}

/// How to notice new items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WatchMode {
    /// Notifications, falling back to polling when they cannot start.
    #[default]
    Auto,
    /// Notifications or an error.
    Notify,
    /// Polling only (file systems without notifications, e.g. some network mounts).
    Poll,
}

/// Which mechanism a watcher ended up using.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchBackend {
    Notify,
    Poll,
}

#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub mode: WatchMode,
    /// How often the polling fallback lists the inbox.
    pub poll_interval: Duration,
    /// With notifications on, how often the inbox is listed anyway, so a
    /// lost notification is noticed.
    pub rescan_interval: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            mode: WatchMode::Auto,
            poll_interval: Duration::from_secs(1),
            rescan_interval: Duration::from_secs(5),
        }
    }
}

/// Yields paths of inbox entries that look ready to claim. A path may be
/// yielded again later if it is still there (nobody claimed it), but not in
/// a tight loop: an entry already yielded waits for the next wake-up.
pub struct InboxWatcher {
    dir: PathBuf,
    wake: Arc<tokio::sync::Notify>,
    _watcher: Option<notify::RecommendedWatcher>,
    backend: WatchBackend,
    options: WatchOptions,
    pending: VecDeque<PathBuf>,
    yielded: HashSet<PathBuf>,
}

impl std::fmt::Debug for InboxWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxWatcher")
            .field("dir", &self.dir)
            .field("backend", &self.backend)
            .finish()
    }
}

impl InboxWatcher {
    fn start(dir: PathBuf, options: WatchOptions) -> Result<InboxWatcher, CoordError> {
        let wake = Arc::new(tokio::sync::Notify::new());
        let mut watcher = None;
        if options.mode != WatchMode::Poll {
            match start_notify(&dir, wake.clone()) {
                Ok(w) => watcher = Some(w),
                Err(e) if options.mode == WatchMode::Auto => {
                    tracing::warn!(dir = %dir.display(), error = %e, interval = ?options.poll_interval,
                        "file-system notifications unavailable; polling the inbox instead");
                }
                Err(e) => {
                    return Err(CoordError::Io {
                        what: "watch",
                        path: dir,
                        source: io::Error::other(e.to_string()),
                    });
                }
            }
        }
        let backend = if watcher.is_some() {
            WatchBackend::Notify
        } else {
            WatchBackend::Poll
        };
        Ok(InboxWatcher {
            dir,
            wake,
            _watcher: watcher,
            backend,
            options,
            pending: VecDeque::new(),
            yielded: HashSet::new(),
        })
    }

    pub fn backend(&self) -> WatchBackend {
        self.backend
    }

    /// The next entry to try to claim; waits until there is one.
    pub async fn next(&mut self) -> PathBuf {
        loop {
            if let Some(p) = self.pending.pop_front() {
                return p;
            }
            match scan(&self.dir) {
                Ok(paths) => {
                    let present: HashSet<&PathBuf> = paths.iter().collect();
                    // Forget what left, so a name that comes back (a recovered item) is seen again.
                    self.yielded.retain(|p| present.contains(p));
                    for p in paths {
                        if self.yielded.insert(p.clone()) {
                            self.pending.push_back(p);
                        }
                    }
                    if !self.pending.is_empty() {
                        continue;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "inbox scan failed; retrying"),
            }
            let interval = match self.backend {
                WatchBackend::Notify => self.options.rescan_interval,
                WatchBackend::Poll => self.options.poll_interval,
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(interval) => {
                    // A timed rescan offers every entry again (one a claimer could not take before).
                    self.yielded.clear();
                }
            }
        }
    }

    /// The watcher as a stream of paths.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = PathBuf> {
        futures_util::stream::unfold(self, |mut w| async move {
            let p = w.next().await;
            Some((p, w))
        })
    }
}

fn start_notify(
    dir: &Path,
    wake: Arc<tokio::sync::Notify>,
) -> notify::Result<notify::RecommendedWatcher> {
    let mut watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(ev) => {
                let arrival = matches!(
                    ev.kind,
                    EventKind::Create(_)
                        | EventKind::Modify(notify::event::ModifyKind::Name(
                            notify::event::RenameMode::To
                                | notify::event::RenameMode::Both
                                | notify::event::RenameMode::Any
                        ))
                        | EventKind::Any
                        | EventKind::Other
                );
                if arrival {
                    wake.notify_one();
                }
            }
            // An overflowed queue or a watch error: rescan.
            Err(_) => wake.notify_one(),
        })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
