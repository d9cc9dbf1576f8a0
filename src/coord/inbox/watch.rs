//! Noticing new items: file-system notifications, a polling fallback when
//! they cannot start, and a periodic rescan in both modes.

use super::*;

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
    pub(super) fn start(dir: PathBuf, options: WatchOptions) -> Result<InboxWatcher, CoordError> {
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
