//! Leases and recovery: renewing what this process holds, and putting back
//! into `inbox/` the items whose holder died or whose lease ran out.

use super::*;

impl Inbox {
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
            let old = self.read_lease(&id);
            let claimed_at = old.as_ref().map_or(now, |l| l.claimed_at);
            self.write_lease(&Lease {
                id: id.clone(),
                agent: self.inner.agent.clone(),
                holder: ProcessId::current().clone(),
                attempt,
                claimed_at,
                first_claimed_at: old.and_then(|l| l.first_claimed_at).or(Some(claimed_at)),
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
            let (reason, attempt, previous, first_claimed_at) = match &lease {
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
                    let first = l.first_claimed_at.unwrap_or(l.claimed_at);
                    (reason, l.attempt + 1, Some(l.holder.clone()), Some(first))
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
                    // Claimed by the rename that set the ctime.
                    let claimed =
                        DateTime::<Utc>::from_timestamp(meta.ctime(), meta.ctime_nsec() as u32);
                    (RecoverReason::NoLease, 2, None, claimed)
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
                first_claimed_at,
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
}
