//! Filing items away: moving a finished item to `done/` or `failed/` with
//! its result beside it, never over anything (a name taken by an earlier item
//! gets a `~N` suffix), and settling an item finished early (a parked task)
//! once its work ends.

use super::*;

impl Claimed {
    /// Moves the item to `done/` or `failed/` with `<id>.result.json` beside
    /// it and drops the lease. Returns the item's final path.
    pub fn finish(self, outcome: Outcome) -> Result<PathBuf, CoordError> {
        self.finish_with(outcome, None)
    }

    /// [`Claimed::finish`] for a drop-box file whose item was queued as
    /// `drop` (its result says so in `queued_as`): a parked task's file can
    /// then be found and filed again after a restart.
    pub fn finish_queued(self, outcome: Outcome, drop: &str) -> Result<PathBuf, CoordError> {
        self.finish_with(outcome, Some(drop))
    }

    fn finish_with(
        mut self,
        outcome: Outcome,
        queued_as: Option<&str>,
    ) -> Result<PathBuf, CoordError> {
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
        if let Some(drop) = queued_as {
            result["queued_as"] = json!(drop);
        }
        let moved = file_away(dir, &self.id, ".json", &self.path, &mut result);
        let target = match moved {
            Ok(target) => target,
            Err(e) => {
                inner.held.lock().unwrap().remove(&self.id);
                return Err(match e {
                    FileAway::Gone => CoordError::LostLease {
                        id: self.id.clone(),
                    },
                    FileAway::Failed(e) => e,
                });
            }
        };
        inner.held.lock().unwrap().remove(&self.id);
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

impl Inbox {
    /// Give an item that was finished early (a parked task, done while it
    /// waited for a human) its final outcome: a success rewrites its result
    /// in done/, a failure moves it with its result to failed/ (replacing
    /// nothing there). `stem` is its name in done/. Returns its final path.
    pub fn settle(&self, stem: &str, outcome: Outcome) -> Result<PathBuf, CoordError> {
        validate_id(stem.split('~').next().unwrap_or(stem))?;
        let done = &self.inner.dirs.done;
        let item = done.join(format!("{stem}.json"));
        let result_path = done.join(format!("{stem}.result.json"));
        let mut result: Value = fs::read(&result_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| json!({ "id": stem, "agent": self.inner.agent }));
        result["finished_at"] = json!(Utc::now());
        match outcome {
            Outcome::Done(v) => {
                result["outcome"] = json!("done");
                result["result"] = v;
                let bytes = serde_json::to_vec_pretty(&result).expect("JSON values serialize");
                write_atomic(
                    done,
                    &format!("{stem}.result.json"),
                    &bytes,
                    Durability::Full,
                )?;
                Ok(item)
            }
            Outcome::Failed(v) => {
                result["outcome"] = json!("failed");
                if let Some(r) = result.as_object_mut() {
                    r.remove("result");
                    r.remove("stored_as");
                }
                result["reason"] = v;
                let failed = &self.inner.dirs.failed;
                let base = stem.split('~').next().unwrap_or(stem);
                let target = match file_away(failed, base, ".json", &item, &mut result) {
                    Ok(t) => t,
                    Err(FileAway::Gone) => {
                        return Err(CoordError::io("settle", &item)(io::Error::from(
                            io::ErrorKind::NotFound,
                        )));
                    }
                    Err(FileAway::Failed(e)) => return Err(e),
                };
                remove_if_exists(&result_path);
                sync_dir(failed)?;
                sync_dir(done)?;
                Ok(target)
            }
        }
    }
}

pub(super) enum FileAway {
    /// The entry to move was not there any more.
    Gone,
    Failed(CoordError),
}

/// Moves `from` into `dir` as `<stem><ext>` with `result` written first as
/// `<stem>.result.json`, replacing nothing: a name taken by an earlier item
/// (one dropped again under its old id) gets `<stem>~2`, `<stem>~3`, ... and
/// `result.stored_as` says which. `~` is not allowed in ids, so these names
/// belong to no other item.
pub(super) fn file_away(
    dir: &Path,
    stem: &str,
    ext: &str,
    from: &Path,
    result: &mut Value,
) -> Result<PathBuf, FileAway> {
    for n in 1u32.. {
        let name = if n > 1 {
            format!("{stem}~{n}")
        } else {
            stem.to_string()
        };
        let target = dir.join(format!("{name}{ext}"));
        if fs::symlink_metadata(&target).is_ok() {
            continue;
        }
        if n > 1 {
            result["stored_as"] = json!(name);
        }
        let bytes = serde_json::to_vec_pretty(result).expect("JSON values serialize");
        let result_name = format!("{name}.result.json");
        // The result goes first, so an item that shows up in done/ always has
        // it; the caller's sync_dir after the rename makes both durable.
        match write_new(dir, &result_name, &bytes, Durability::Content) {
            Ok(_) => {}
            Err(CoordError::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
                continue;
            }
            Err(e) => return Err(FileAway::Failed(e)),
        }
        match rename_noreplace(from, &target) {
            Ok(()) => return Ok(target),
            Err(e) => {
                remove_if_exists(&dir.join(&result_name));
                match e.kind() {
                    io::ErrorKind::AlreadyExists => continue,
                    io::ErrorKind::NotFound => return Err(FileAway::Gone),
                    _ => {
                        return Err(FileAway::Failed(CoordError::io(
                            "move the finished item",
                            &target,
                        )(e)));
                    }
                }
            }
        }
    }
    unreachable!("some suffix is free")
}
