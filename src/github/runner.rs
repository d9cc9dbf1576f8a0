//! The monitor inside an agent: builds the client from `[github]`, restores
//! what the last run learned (task records, per-task state, the ETag cache),
//! runs passes on the monitor's own pacing, re-reads the agent's tracked
//! tasks before each pass (so `switchyard registry import` into a running
//! agent is picked up) and writes back what changed after each pass, so a
//! crash loses at most one pass. Stops on the agent's stop signal.

use std::collections::HashMap;

use crate::shutdown::Shutdown;
use tracing::{info, warn};

use super::client::GithubClient;
use super::monitor::{Monitor, MonitorOutput, MonitorSettings, TaskState};
use super::registry::TaskRecord;
use super::store as gh_store;
use crate::config::{GithubSettings, Secret};
use crate::store::Store;

/// What was last read from or written to the store, to write only changes
/// and to tell an import (the stored record moved) from our own write.
#[derive(Default)]
struct Persisted {
    records: HashMap<String, TaskRecord>,
    states: HashMap<String, TaskState>,
    etags: HashMap<String, String>,
}

/// Runs until `stop`. Errors only when the configuration cannot work (an
/// `api_base` that is not a URL); store hiccups are logged and retried.
pub async fn run<O: MonitorOutput>(
    store: Store,
    agent: String,
    settings: GithubSettings,
    token: Option<Secret>,
    output: O,
    workers: std::sync::Arc<dyn super::workers::WorkerPort>,
    mut stop: Shutdown,
) -> anyhow::Result<()> {
    let client = GithubClient::new(&settings.api_base, token.as_ref())?;
    if token.is_none() {
        info!(
            api_base = %settings.api_base,
            token_env = %settings.token_env,
            "GitHub monitor running unauthenticated ({} is not set): GitHub allows 60 requests an hour without a token",
            settings.token_env
        );
    }
    if token.is_none() && !settings.critical_markers.is_empty() {
        info!(
            token_env = %settings.token_env,
            "review threads are not read: GitHub's GraphQL API answers only with a token"
        );
    }
    let pool = store.pool();
    let mut persisted = Persisted::default();
    match gh_store::load_etags(pool).await {
        Ok(entries) => {
            persisted.etags = entries
                .iter()
                .map(|e| (e.url.clone(), e.etag.clone()))
                .collect();
            client.load_cache(entries);
        }
        Err(e) => warn!(
            error = format!("{e:#}"),
            "cannot restore the GitHub ETag cache; starting cold"
        ),
    }
    let mut monitor =
        Monitor::new(client, output, MonitorSettings::from_config(&settings)).with_workers(workers);
    match gh_store::load_states(pool).await {
        Ok(states) => {
            persisted.states = states.clone();
            monitor.restore_state(states);
        }
        Err(e) => warn!(
            error = format!("{e:#}"),
            "cannot restore the GitHub monitor state"
        ),
    }
    info!(api_base = %settings.api_base, interval = ?settings.interval, "GitHub monitor started");

    loop {
        refresh_tasks(&store, &agent, &mut monitor, &mut persisted).await;
        let delay = if monitor.tasks().is_empty() {
            // Nothing tracked: no requests, just look at the table again later.
            settings.interval
        } else {
            let report = tokio::select! {
                biased;
                _ = stop.stopped() => break,
                r = monitor.pass() => r,
            };
            persist(&store, &mut monitor, &mut persisted).await;
            monitor.next_delay(&report)
        };
        if !stop.sleep(delay).await {
            break;
        }
    }
    persist(&store, &mut monitor, &mut persisted).await;
    info!("GitHub monitor stopped");
    Ok(())
}

/// Picks up tasks imported (or re-imported) since the last look.
async fn refresh_tasks<O: MonitorOutput>(
    store: &Store,
    agent: &str,
    monitor: &mut Monitor<O>,
    persisted: &mut Persisted,
) {
    let stored = match gh_store::list_tasks(store.pool(), Some(agent)).await {
        Ok(t) => t,
        Err(e) => {
            warn!(
                error = format!("{e:#}"),
                "cannot read the tracked GitHub tasks; keeping the ones known"
            );
            return;
        }
    };
    for task in stored {
        if persisted.records.get(task.id()) != Some(&task.record) {
            if persisted.records.contains_key(task.id()) {
                info!(task = %task.id(), "tracked task changed in the store (re-imported); using the stored record");
            } else {
                info!(task = %task.id(), repo = %task.repo, branch = %task.record.branch, "tracking GitHub task");
            }
            persisted
                .records
                .insert(task.id().to_string(), task.record.clone());
            monitor.track(task);
        }
    }
}

/// Writes back what the pass changed: task records (PR number, attempts,
/// the terminal contract), per-task state and new ETags.
async fn persist<O: MonitorOutput>(
    store: &Store,
    monitor: &mut Monitor<O>,
    persisted: &mut Persisted,
) {
    let pool = store.pool();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let changed: Vec<_> = monitor
        .tasks()
        .iter()
        .filter(|t| persisted.records.get(t.id()) != Some(&t.record))
        .cloned()
        .collect();
    if !changed.is_empty() {
        // An import that landed during the pass wins: it is picked up next pass.
        let current = gh_store::list_tasks(pool, None).await.unwrap_or_default();
        let changed: Vec<_> = changed
            .into_iter()
            .filter(|t| {
                current
                    .iter()
                    .find(|c| c.id() == t.id())
                    .is_none_or(|c| persisted.records.get(t.id()) == Some(&c.record))
            })
            .collect();
        match gh_store::upsert_tasks(pool, &changed, now_ms).await {
            Ok(()) => {
                for t in changed {
                    persisted.records.insert(t.id().to_string(), t.record);
                }
            }
            Err(e) => warn!(
                error = format!("{e:#}"),
                "cannot store the GitHub tasks' progress"
            ),
        }
    }
    for (id, state) in monitor.states() {
        if persisted.states.get(id) == Some(state) {
            continue;
        }
        match gh_store::save_state(pool, id, state, now_ms).await {
            Ok(()) => {
                persisted.states.insert(id.clone(), state.clone());
            }
            Err(e) => {
                warn!(task = %id, error = format!("{e:#}"), "cannot store the GitHub monitor state")
            }
        }
    }
    let fresh: Vec<_> = monitor
        .client()
        .cache_entries()
        .into_iter()
        .filter(|e| persisted.etags.get(&e.url) != Some(&e.etag))
        .collect();
    if !fresh.is_empty() {
        match gh_store::save_etags(pool, &fresh, now_ms).await {
            Ok(()) => {
                for e in fresh {
                    persisted.etags.insert(e.url, e.etag);
                }
            }
            Err(e) => warn!(
                error = format!("{e:#}"),
                "cannot store the GitHub ETag cache"
            ),
        }
    }
}
