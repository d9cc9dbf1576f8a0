//! Inbox intake: claims items one at a time, in arrival order, and sends each
//! to the room its kind belongs to (events, tasks, approvals). Refused items
//! go to `failed/` with the reason; nothing is dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use switchyard_routing::{EventId, RepeatLimiter};
use tracing::{Instrument, debug, error, info, warn};

use super::Shared;
use super::events::handle_event;
use super::runner::{Accepted, TaskIntakeError};
use super::tasks::{request_task_approval, run_task};
use crate::coord::{Claimed, Inbox, InboxItem, Outcome, WatchOptions, parse_item};
use crate::error::error_id;
use crate::health::Readiness;
use crate::shutdown::Shutdown;

/// Claim inbox items one at a time and handle them; stop taking new items on
/// the stop signal or while the kill switch is on.
pub(super) async fn intake_loop(
    shared: Arc<Shared>,
    inbox: Inbox,
    mut stop: Shutdown,
) -> anyhow::Result<()> {
    let mut repeat = RepeatLimiter::new(shared.config.routing.repeat_interval);
    let mut watcher = inbox.watch(WatchOptions::default())?;
    info!(backend = ?watcher.backend(), "watching the inbox");
    loop {
        let path = tokio::select! {
            biased;
            _ = stop.stopped() => break,
            p = watcher.next() => p,
        };
        // Housekeeping keeps the kill switch in the readiness flag (every 0.5 s):
        // no status-file read per item.
        if shared.ready.get() == Readiness::Paused {
            // Leave the item where it is; it is picked up after `resume`.
            if stop.sleep(Duration::from_millis(500)).await {
                continue;
            }
            break;
        }
        let claimed = match inbox.claim(&path) {
            Ok(Some(c)) => c,
            Ok(None) => continue, // another claimer won, or it went away
            Err(e) if e.is_rejected_item() => {
                // Already moved to failed/ with its reason beside it.
                warn!(item = %path.display(), error = %e, "rejected an inbox entry");
                shared.metrics.count_inbox("failed");
                continue;
            }
            Err(e) => {
                error!(item = %path.display(), error = %e, "could not claim an inbox entry; will retry");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let started = Instant::now();
        let outcome = match handle_item(&shared, &claimed, &mut repeat).await {
            Handled::Now(outcome) => outcome,
            Handled::Parked { task_id, outcome } => {
                // Done for now; where it was filed is kept so that it can end
                // in failed/ if the task is blocked or fails later.
                shared.metrics.count_inbox("done");
                match claimed.finish(outcome) {
                    Ok(path) => {
                        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
                        if let Some(stem) = stem
                            && let Err(e) = crate::store::tasks::set_item_file(
                                shared.store.pool(),
                                &task_id,
                                &stem,
                            )
                            .await
                        {
                            warn!(task = %task_id, error = %e, "could not record where a parked task's item is");
                        }
                    }
                    Err(e) => {
                        error!(item = %path.display(), error = format!("{e:#}"), "could not move the item out of running/")
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
                        if let Err(e) = claimed.finish(outcome) {
                            error!(
                                error = format!("{e:#}"),
                                "could not move a task item out of running/"
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
        if let Err(e) = claimed.finish(outcome) {
            error!(item = %path.display(), error = format!("{e:#}"), "could not move the item out of running/");
        }
        shared
            .metrics
            .inbox_depth
            .set(inbox.depth().unwrap_or(0) as i64);
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

async fn handle_item(shared: &Shared, claimed: &Claimed, repeat: &mut RepeatLimiter) -> Handled {
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
    match conversations.reply(&item.to, &item.text).await {
        Ok(turn) => Outcome::Done(json!({"answered": turn.as_str()})),
        Err(e) => {
            warn!(to = %item.to, reason = %e, "refused a reply item");
            Outcome::Failed(json!({"error": e.to_string(), "to": item.to}))
        }
    }
}

fn task_refusal(claimed: &Claimed, e: TaskIntakeError) -> Outcome {
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
