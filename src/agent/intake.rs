//! Inbox intake: claims items one at a time, in arrival order, and sends each
//! to the room its kind belongs to (events, tasks, approvals). Refused items
//! go to `failed/` with the reason; nothing is dropped. The items come from
//! the agent's inbox directory, or, when the fleet coordinates through
//! PostgreSQL, from its queue there ([`Source::Shared`]); [`open_source`]
//! opens the one the configuration names.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;
use switchyard_routing::{EventId, RepeatLimiter};
use tracing::{Instrument, debug, error, info, warn};

use super::Shared;
use super::events::handle_event;
use super::runner::{Accepted, TaskIntakeError};
use super::tasks::{request_task_approval, run_task};
use crate::coord::queue::{POLL_FALLBACK, QUEUED_ITEM, SharedClaim, SharedQueue};
use crate::coord::shared_db::CoordDb;
use crate::coord::{Claimed, CoordError, Inbox, InboxItem, Outcome, WatchOptions, parse_item};
use crate::error::error_id;
use crate::health::Readiness;
use crate::shutdown::Shutdown;

/// Where the agent's items come from.
pub(super) enum Source {
    /// Its inbox directory in the workspace.
    Files(Inbox),
    /// Its queue in the coordination database.
    Shared(SharedQueue),
}

/// An item this process holds, from either source.
pub(super) struct Taken {
    pub id: String,
    pub bytes: Vec<u8>,
    pub attempt: u32,
    pub first_claimed_at: DateTime<Utc>,
    hold: Hold,
}

enum Hold {
    File(Claimed),
    Shared(SharedClaim),
}

impl Taken {
    // The bytes move out of the claim: finishing it does not need them.
    fn file(mut c: Claimed) -> Taken {
        Taken {
            id: c.id.clone(),
            bytes: std::mem::take(&mut c.bytes),
            attempt: c.attempt,
            first_claimed_at: c.first_claimed_at,
            hold: Hold::File(c),
        }
    }

    fn shared(mut c: SharedClaim) -> Taken {
        Taken {
            id: c.id.clone(),
            bytes: std::mem::take(&mut c.bytes),
            attempt: c.attempt,
            first_claimed_at: c.first_claimed_at,
            hold: Hold::Shared(c),
        }
    }

    /// Ends the item; where it now is, for a parked task to settle later
    /// (a file's stem in `done/`, or [`QUEUED_ITEM`] and its drop id).
    async fn finish(self, outcome: Outcome) -> Result<String, CoordError> {
        match self.hold {
            Hold::File(c) => {
                let path = c.finish(outcome)?;
                Ok(path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default())
            }
            Hold::Shared(c) => {
                let drop = format!("{QUEUED_ITEM}{}", c.drop_id);
                c.finish(outcome).await?;
                Ok(drop)
            }
        }
    }
}

/// Where the agent's items come from: its inbox directory, or with the
/// fleet's `coordination` database its queue (and this host's drop-boxes,
/// imported by a task added to `tasks`). What a previous process left
/// running is put back first.
pub(super) async fn open_source(
    shared: &Arc<Shared>,
    coordination: Option<CoordDb>,
    tasks: &mut tokio::task::JoinSet<anyhow::Result<()>>,
    stop: &Shutdown,
) -> anyhow::Result<Source> {
    Ok(match coordination {
        None => {
            let inbox = Inbox::open(&shared.config.fleet.workspace, &shared.agent.name)?;
            for r in inbox.recover()? {
                warn!(item = %r.id, attempt = r.attempt, "recovered an item left running by a previous process");
            }
            // Leases on claimed items are renewed while this process lives, so a
            // restarted agent can tell a dead holder's items from its own.
            let renewal = inbox.spawn_lease_renewal(crate::coord::DEFAULT_LEASE_TTL / 3);
            super::abort_on_stop(stop, renewal);
            Source::Files(inbox)
        }
        Some(db) => {
            let queue = crate::coord::queue::SharedQueue::new(
                db.clone(),
                &shared.agent.name,
                crate::coord::DEFAULT_LEASE_TTL,
            );
            for drop in queue.recover().await? {
                warn!(drop = %drop, "put back a queued item left running by a previous process");
            }
            super::abort_on_stop(
                stop,
                queue.spawn_lease_renewal(crate::coord::DEFAULT_LEASE_TTL / 3),
            );
            // Files dropped into this host's inbox directories join the queues.
            let agents = shared
                .config
                .agents
                .iter()
                .map(|a| a.name.to_string())
                .collect();
            tasks.spawn(
                crate::coord::dropbox::run(
                    db,
                    shared.config.fleet.workspace.clone(),
                    agents,
                    stop.clone(),
                )
                .in_current_span(),
            );
            Source::Shared(queue)
        }
    })
}

impl Source {
    async fn depth(&self) -> usize {
        match self {
            Source::Files(inbox) => inbox.depth().unwrap_or(0),
            Source::Shared(queue) => queue.depth().await.unwrap_or(0),
        }
    }
}

/// Claim inbox items one at a time and handle them; stop taking new items on
/// the stop signal or while the kill switch is on.
pub(super) async fn intake_loop(
    shared: Arc<Shared>,
    mut source: Source,
    mut stop: Shutdown,
) -> anyhow::Result<()> {
    let mut repeat = RepeatLimiter::new(shared.routing.get().settings.repeat_interval);
    let mut watcher = match &source {
        Source::Files(inbox) => {
            let w = inbox.watch(WatchOptions::default())?;
            info!(backend = ?w.backend(), "watching the inbox");
            Some(w)
        }
        Source::Shared(_) => None,
    };
    let mut waker = match &source {
        Source::Shared(queue) => {
            info!("taking items from the fleet's queue in PostgreSQL");
            queue.listen().await
        }
        Source::Files(_) => None,
    };
    loop {
        // Housekeeping keeps the kill switch in the readiness flag (every 0.5 s):
        // no status read per item. A paused agent leaves items where they are
        // (a file in the inbox, a queued item for after `resume`).
        let paused = || shared.ready.get() == Readiness::Paused;
        let claim = match &mut source {
            Source::Files(inbox) => {
                let watcher = watcher.as_mut().expect("a file source has a watcher");
                let path = tokio::select! {
                    biased;
                    _ = stop.stopped() => break,
                    p = watcher.next() => p,
                };
                if paused() {
                    if stop.sleep(Duration::from_millis(500)).await {
                        continue;
                    }
                    break;
                }
                inbox.claim(&path).map(|c| c.map(Taken::file))
            }
            Source::Shared(queue) => {
                if paused() {
                    if stop.sleep(Duration::from_millis(500)).await {
                        continue;
                    }
                    break;
                }
                match queue.claim().await {
                    Ok(None) => {
                        let wait = async {
                            match &mut waker {
                                Some(w) => w.wait(POLL_FALLBACK).await,
                                None => tokio::time::sleep(POLL_FALLBACK).await,
                            }
                        };
                        tokio::select! {
                            biased;
                            _ = stop.stopped() => break,
                            () = wait => continue,
                        }
                    }
                    other => other.map(|c| c.map(Taken::shared)),
                }
            }
        };
        let claimed = match claim {
            Ok(Some(c)) => c,
            Ok(None) => continue, // another claimer won, or it went away
            Err(e) if e.is_rejected_item() => {
                // Already moved to failed/ with its reason beside it.
                warn!(error = %e, "rejected an inbox entry");
                shared.metrics.count_inbox("failed");
                continue;
            }
            Err(e) => {
                error!(error = %e, "could not claim an inbox entry; will retry");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let started = Instant::now();
        let id = claimed.id.clone();
        let outcome = match handle_item(&shared, &claimed, &mut repeat).await {
            Handled::Now(outcome) => outcome,
            Handled::Parked { task_id, outcome } => {
                // Done for now; where it was filed is kept so that it can end
                // in failed/ if the task is blocked or fails later.
                shared.metrics.count_inbox("done");
                match claimed.finish(outcome).await {
                    Ok(stem) => {
                        if let Err(e) =
                            crate::store::tasks::set_item_file(shared.store.pool(), &task_id, &stem)
                                .await
                        {
                            warn!(task = %task_id, error = %e, "could not record where a parked task's item is");
                        }
                    }
                    Err(e) => {
                        error!(item = %id, error = format!("{e:#}"), "could not record a parked task's item as done")
                    }
                }
                continue;
            }
            Handled::RunTask { spec, approved } => {
                // The item stays claimed (its lease renewed) until the task ends.
                let shared = shared.clone();
                tokio::spawn(
                    async move {
                        let outcome = run_task(&shared, *spec, approved).await;
                        if let Err(e) = claimed.finish(outcome).await {
                            error!(
                                error = format!("{e:#}"),
                                "could not record a task item's outcome"
                            );
                        }
                    }
                    .in_current_span(),
                );
                continue;
            }
        };
        shared
            .metrics
            .intake_latency
            .observe(started.elapsed().as_secs_f64());
        let label = match &outcome {
            Outcome::Done(_) => "done",
            Outcome::Failed(_) => "failed",
        };
        shared.metrics.count_inbox(label);
        if let Err(e) = claimed.finish(outcome).await {
            error!(item = %id, error = format!("{e:#}"), "could not record an item's outcome");
        }
        shared.metrics.inbox_depth.set(source.depth().await as i64);
    }
    debug!("intake stopped");
    Ok(())
}

/// What intake does with an item: finish it now, or run a task in the background.
enum Handled {
    Now(Outcome),
    /// A task parked until a human decides: its item is done for now.
    Parked {
        task_id: String,
        outcome: Outcome,
    },
    RunTask {
        spec: Box<crate::tasks::TaskSpec>,
        approved: bool,
    },
}

async fn handle_item(shared: &Shared, claimed: &Taken, repeat: &mut RepeatLimiter) -> Handled {
    let item = match parse_item(&claimed.bytes) {
        Ok(item) => item,
        Err(e) => {
            warn!(item = %claimed.id, error = %e, "rejected an inbox item");
            return Handled::Now(Outcome::Failed(
                json!({ "error": e.to_string(), "attempt": claimed.attempt }),
            ));
        }
    };
    let outcome = match item {
        InboxItem::Event(draft) => match draft.validate(
            Utc::now(),
            EventId::for_item(&claimed.id, claimed.first_claimed_at),
        ) {
            Ok(event) => match handle_event(shared, event, Some(repeat)).await {
                Ok(result) => Outcome::Done(result),
                Err(e) if e.downcast_ref::<crate::files::Refused>().is_some() => {
                    warn!(item = %claimed.id, error = %e, "refused an event's attachment");
                    Outcome::Failed(json!({
                        "error": e.to_string(),
                        "fix": "attach only files inside the folders [files] attachable names (default reports/), then drop the file again"
                    }))
                }
                Err(e) => {
                    let id = error_id();
                    error!(error_id = %id, item = %claimed.id, error = format!("{e:#}"), "could not store an event");
                    Outcome::Failed(
                        json!({ "error": format!("internal error {id}: {e:#}"), "retry": "drop the file into the inbox again" }),
                    )
                }
            },
            Err(e) => {
                warn!(item = %claimed.id, error = %e, "rejected an event");
                Outcome::Failed(
                    json!({ "error": e.to_string(), "problems": e.problems, "fix": "correct the fields named and drop the file again" }),
                )
            }
        },
        InboxItem::Task(value) => match shared.tasks.accept(&value).await {
            Ok(Accepted::Run(spec)) => {
                return Handled::RunTask {
                    spec,
                    approved: false,
                };
            }
            Ok(Accepted::AwaitingApproval { task_id, result }) => {
                request_task_approval(shared, &task_id).await;
                return Handled::Parked {
                    task_id,
                    outcome: Outcome::Done(result),
                };
            }
            Err(e) => task_refusal(claimed, e),
        },
        InboxItem::ApprovalRequest(v) => {
            match crate::approvals::handle_request_item(&shared.approvals, &v).await {
                Ok(result) => Outcome::Done(result),
                Err(reason) => Outcome::Failed(reason),
            }
        }
        // A decision counts only once the approvals module has checked it
        // against the request this agent made; a parked task then picks it
        // up from its own request (agent::tasks), never from the item.
        InboxItem::ApprovalDecision(v) => {
            match crate::approvals::handle_decision_item(&shared.approvals, &v).await {
                Ok(result) => Outcome::Done(result),
                Err(reason) => Outcome::Failed(reason),
            }
        }
        InboxItem::Reply(v) => reply(shared, &v).await,
        InboxItem::Chat(_) => Outcome::Failed(json!({
            "error": "chat items are what an agent hands to another inbox; this agent does not answer them",
            "fix": "to talk to an agent, mention it in Discord or write to it in Telegram; to answer a chat item, drop a reply item"
        })),
    };
    Handled::Now(outcome)
}

/// The shape of a `reply` item (strict: a misspelt key is an error).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyItem {
    #[allow(dead_code)]
    kind: String,
    /// The turn (or the chat item that carried it) this answers.
    to: String,
    text: String,
    /// Workspace files to post with the answer.
    #[serde(default)]
    attachments: Vec<switchyard_routing::AttachmentPath>,
}

/// A `reply` item: the answer of the inbox a turn was handed to.
async fn reply(shared: &Shared, v: &serde_json::Value) -> Outcome {
    let item: ReplyItem = match serde_json::from_value(v.clone()) {
        Ok(i) => i,
        Err(e) => {
            return Outcome::Failed(json!({
                "error": format!("not a reply item: {e}"),
                "fix": "a reply is {\"kind\": \"reply\", \"to\": \"<turn id>\", \"text\": \"...\"}"
            }));
        }
    };
    if item.text.trim().is_empty() {
        return Outcome::Failed(
            json!({"error": "the reply's text is empty", "fix": "say something in `text`"}),
        );
    }
    let Some(conversations) = &shared.conversations else {
        return Outcome::Failed(json!({
            "error": "this agent has no responder, so it has no turns to answer",
            "fix": "send the reply to the agent that handed the turn over (its `reply_to`)"
        }));
    };
    if item.attachments.len() > switchyard_routing::MAX_ATTACHMENTS {
        return Outcome::Failed(json!({
            "error": format!("{} attachments; a reply carries at most {}", item.attachments.len(), switchyard_routing::MAX_ATTACHMENTS),
            "fix": "attach fewer files",
        }));
    }
    let attached = match super::events::read_attachments(shared, &item.attachments).await {
        Ok(a) => a,
        Err(e) => {
            warn!(to = %item.to, error = %e, "refused a reply's attachment");
            return Outcome::Failed(json!({
                "error": e.to_string(),
                "fix": "attach only files inside the folders [files] attachable names (default reports/)"
            }));
        }
    };
    match conversations.reply(&item.to, &item.text, &attached).await {
        Ok(turn) => Outcome::Done(json!({"answered": turn.as_str()})),
        Err(e) => {
            warn!(to = %item.to, reason = %e, "refused a reply item");
            Outcome::Failed(json!({"error": e.to_string(), "to": item.to}))
        }
    }
}

fn task_refusal(claimed: &Taken, e: TaskIntakeError) -> Outcome {
    match e {
        TaskIntakeError::Invalid(reason) => {
            warn!(item = %claimed.id, reason = %reason, "refused a task item");
            Outcome::Failed(reason)
        }
        TaskIntakeError::Internal(e) => {
            let id = error_id();
            error!(error_id = %id, item = %claimed.id, error = format!("{e:#}"), "task intake failed");
            Outcome::Failed(
                json!({ "error": format!("internal error {id}"), "retry": "drop the file into the inbox again" }),
            )
        }
    }
}
