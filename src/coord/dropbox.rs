//! The inbox directories as drop-boxes, when the fleet coordinates through
//! PostgreSQL: producers (cron, scripts, other agents on this host) keep
//! dropping files into `agents/<agent>/inbox/` as the inbox protocol says;
//! an agent process on the host claims each file as it would claim an item
//! (so a bad file goes to `failed/` with its reason, as always), queues it
//! for its agent, wherever that agent runs, and holds the file in
//! `running/` until the item is finished. Then the file and its
//! `<id>.result.json` land in that same directory's `done/` or `failed/`.
//! An item done for now as a parked task (waiting for a human) is filed
//! in `done/` and filed again where the task ends: its result rewritten in
//! `done/`, or moved to `failed/` when the task fails or is blocked.
//!
//! Every agent process on a host imports every agent's drop-box in its
//! workspace: several importers race for a file by rename, as claimers do,
//! and one wins. A drop is named by its host, workspace, agent, id and
//! first claim, which survive a crash (a recovered file keeps its first
//! claim): importing it again after a restart finds the queued row instead
//! of queueing the item twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use sqlx::postgres::PgListener;

use super::queue::{self, Queued, RESULT_CHANNEL};
use super::shared_db::CoordDb;
use super::{Claimed, DEFAULT_LEASE_TTL, Inbox, Outcome, WatchOptions, host_name};
use crate::shutdown::Shutdown;

/// The drop-box's name in the queue: this host and workspace.
pub fn dropbox_name(workspace: &Path) -> String {
    format!("{}:{}", host_name(), workspace.display())
}

fn drop_id(dropbox: &str, claimed: &Claimed, agent: &str) -> String {
    format!(
        "{dropbox}|{agent}|{}|{}",
        claimed.id,
        claimed.first_claimed_at.to_rfc3339()
    )
}

/// Imports the drop-boxes of `agents` in `workspace` until `stop`, and files
/// the outcomes of what it imported.
pub async fn run(
    db: CoordDb,
    workspace: PathBuf,
    agents: Vec<String>,
    stop: Shutdown,
) -> anyhow::Result<()> {
    let workspace = workspace.as_path();
    let dropbox = dropbox_name(workspace);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Imported>();
    let mut tasks = tokio::task::JoinSet::new();
    for agent in agents.clone() {
        let inbox = Inbox::open(workspace, &agent)?;
        for r in inbox.recover()? {
            tracing::info!(agent = %agent, item = %r.id, "a drop-box file left by a previous import is imported again");
        }
        let renewal = inbox.spawn_lease_renewal(DEFAULT_LEASE_TTL / 3);
        let (db, dropbox, tx, mut stop) = (db.clone(), dropbox.clone(), tx.clone(), stop.clone());
        tasks.spawn(async move {
            let mut watcher = match inbox.watch(WatchOptions::default()) {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!(agent = %agent, error = %e, "cannot watch a drop-box");
                    return;
                }
            };
            loop {
                let path = tokio::select! {
                    biased;
                    _ = stop.stopped() => break,
                    p = watcher.next() => p,
                };
                let claimed = match inbox.claim(&path) {
                    Ok(Some(c)) => c,
                    Ok(None) => continue,
                    Err(e) if e.is_rejected_item() => {
                        tracing::warn!(item = %path.display(), error = %e, "rejected a drop-box file");
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(item = %path.display(), error = %e, "could not claim a drop-box file; will retry");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                import(&db, &dropbox, &agent, claimed, &tx).await;
            }
            renewal.abort();
        });
    }
    drop(tx);
    file_outcomes(db, workspace, &agents, &mut rx, stop).await;
    tasks.shutdown().await;
    Ok(())
}

/// Queues one claimed file; one that cannot be queued ends in `failed/`.
async fn import(
    db: &CoordDb,
    dropbox: &str,
    agent: &str,
    claimed: Claimed,
    held: &tokio::sync::mpsc::UnboundedSender<Imported>,
) {
    let Ok(body) = std::str::from_utf8(&claimed.bytes).map(str::to_owned) else {
        let reason = json!({"error": "the file is not UTF-8 text", "fix": "inbox items are JSON objects in UTF-8"});
        if let Err(e) = claimed.finish(Outcome::Failed(reason)) {
            tracing::warn!(error = %e, "could not file a refused drop-box file");
        }
        return;
    };
    let drop = drop_id(dropbox, &claimed, agent);
    loop {
        match queue::enqueue(db.pool(), agent, &claimed.id, &body, &drop, Some(dropbox)).await {
            Ok(Queued::New | Queued::Again) => {
                tracing::debug!(agent, item = %claimed.id, "a drop-box file is queued");
                let _ = held.send(Imported {
                    drop,
                    agent: agent.to_owned(),
                    claimed,
                });
                return;
            }
            Ok(Queued::IdWaiting) => {
                let reason = json!({
                    "error": format!("an item named {:?} already waits or runs for {agent}", claimed.id),
                    "fix": "give the new item another id, or drop it again once the other has finished",
                });
                if let Err(e) = claimed.finish(Outcome::Failed(reason)) {
                    tracing::warn!(error = %e, "could not file a refused drop-box file");
                }
                return;
            }
            Err(e) => {
                // The database is away: the file stays claimed and is offered again.
                tracing::warn!(agent, item = %claimed.id, error = %e, "could not queue a drop-box file; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// A file queued from a drop-box, held in `running/` until its item ends.
struct Imported {
    drop: String,
    agent: String,
    claimed: Claimed,
}

/// A file filed in `done/` for a parked task: where it lies and the result
/// it was filed with, to file it again when the task ends.
struct Parked {
    agent: String,
    stem: String,
    result: String,
}

/// Whether an item's result is a task's, parked until a human decides.
fn is_parked(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Done(v) if v["status"] == "awaiting_approval")
}

/// The parked tasks' files an earlier import left in `done/`: found by the
/// `queued_as` their result carries.
fn parked_on_disk(workspace: &Path, agents: &[String]) -> HashMap<String, Parked> {
    let mut parked = HashMap::new();
    for agent in agents {
        let Ok(inbox) = Inbox::open(workspace, agent) else {
            continue;
        };
        let Ok(entries) = std::fs::read_dir(inbox.done_dir()) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".result.json") else {
                continue;
            };
            let Some(result) = std::fs::read(entry.path())
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            else {
                continue;
            };
            let outcome = Outcome::Done(result["result"].clone());
            if let (Some(drop), true) = (result["queued_as"].as_str(), is_parked(&outcome)) {
                parked.insert(
                    drop.to_owned(),
                    Parked {
                        agent: agent.clone(),
                        stem: stem.to_owned(),
                        result: outcome_text(&outcome),
                    },
                );
            }
        }
    }
    parked
}

/// Files each imported item's outcome beside its file, as soon as it is
/// announced (or found by a poll every second).
async fn file_outcomes(
    db: CoordDb,
    workspace: &Path,
    agents: &[String],
    imported: &mut tokio::sync::mpsc::UnboundedReceiver<Imported>,
    mut stop: Shutdown,
) {
    let mut held: HashMap<String, (String, Claimed)> = HashMap::new();
    // Reading every result in done/ is file I/O: off the runtime's threads.
    let mut parked = {
        let (workspace, agents) = (workspace.to_owned(), agents.to_vec());
        tokio::task::spawn_blocking(move || parked_on_disk(&workspace, &agents))
            .await
            .unwrap_or_default()
    };
    let mut listener = match PgListener::connect_with(db.pool()).await {
        Ok(mut l) => match l.listen(RESULT_CHANNEL).await {
            Ok(()) => Some(l),
            Err(_) => None,
        },
        Err(_) => None,
    };
    let mut open = true;
    loop {
        let announced = async {
            match &mut listener {
                Some(l) => {
                    let _ = tokio::time::timeout(queue::POLL_FALLBACK, l.recv()).await;
                }
                None => tokio::time::sleep(queue::POLL_FALLBACK).await,
            }
        };
        tokio::select! {
            biased;
            _ = stop.stopped() => break,
            got = imported.recv(), if open => match got {
                Some(i) => { held.insert(i.drop, (i.agent, i.claimed)); }
                None => open = false,
            },
            () = announced => {}
        }
        if held.is_empty() && parked.is_empty() {
            continue;
        }
        let ids: Vec<String> = held.keys().chain(parked.keys()).cloned().collect();
        match queue::finished(db.pool(), &ids).await {
            Ok(done) => {
                for (drop, outcome) in done {
                    if let Some((agent, claimed)) = held.remove(&drop) {
                        let result = outcome_text(&outcome);
                        let parks = is_parked(&outcome);
                        match claimed.finish_queued(outcome, &drop) {
                            Ok(path) if parks => {
                                let stem =
                                    path.file_stem().map(|s| s.to_string_lossy().into_owned());
                                if let Some(stem) = stem {
                                    parked.insert(
                                        drop,
                                        Parked {
                                            agent,
                                            stem,
                                            result,
                                        },
                                    );
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "could not file a drop-box item's outcome")
                            }
                        }
                    } else if let Some(mut p) = parked.remove(&drop)
                        && refile(workspace, &mut p, outcome)
                    {
                        parked.insert(drop, p);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the outcomes of imported items"),
        }
    }
    // Still held: their files stay in running/ and a later import files them.
    std::mem::forget(held);
}

fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Done(v) => format!("done {v}"),
        Outcome::Failed(v) => format!("failed {v}"),
    }
}

/// Files a parked task's file again once its item's outcome changed;
/// whether it is still parked (and so still watched).
fn refile(workspace: &Path, p: &mut Parked, outcome: Outcome) -> bool {
    let result = outcome_text(&outcome);
    if result == p.result {
        return true;
    }
    let still_parked = is_parked(&outcome);
    p.result = result;
    let settled = Inbox::open(workspace, &p.agent).and_then(|inbox| inbox.settle(&p.stem, outcome));
    if let Err(e) = settled {
        tracing::warn!(agent = %p.agent, item = %p.stem, error = %e, "could not file a parked task's drop-box file where the task ended");
    }
    still_parked
}
