//! One Discord thread per task: when a task starts, a "Task <id> started"
//! message goes to the channel its result is routed to (`subagent_result`),
//! a public thread is started on it, and the task's progress (steps, retries,
//! the final state) is posted there, so the channel itself stays quiet. The
//! thread id is kept (`discord_state` key `task_thread:<id>`), so a task
//! retried after a restart goes on in the same thread.
//!
//! Posting progress is best effort: a failure is logged and never touches
//! the task. Everything goes through the Discord sink (its rate limiter).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use switchyard_routing::{Category, Platform, RouteInput, Router, Severity};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::delivery::DiscordSink;
use crate::store::Store;
use crate::tasks::Progress;

/// A posted message can wait this long for the rate limiter and the request;
/// past it, the rest of a task's progress is dropped (logged).
const FLUSH_LIMIT: Duration = Duration::from_secs(60);

fn key(task_id: &str) -> String {
    format!("task_thread:{task_id}")
}

/// Where and how an agent posts its tasks' threads.
#[derive(Clone)]
pub struct DiscordTaskThreads {
    sink: Arc<DiscordSink>,
    channel: u64,
    store: Store,
}

impl DiscordTaskThreads {
    /// Task threads for an agent whose Discord sink has a bot token and where
    /// `subagent_result` is routed to a configured Discord channel; `None`
    /// (and no threads) otherwise.
    pub fn new(
        router: &Router,
        sink: Option<Arc<DiscordSink>>,
        store: Store,
        agent: &str,
    ) -> Option<DiscordTaskThreads> {
        let sink = sink?;
        let category: Category = "subagent_result"
            .parse()
            .unwrap_or_else(|never| match never {});
        let source = format!("worker:{agent}");
        let labels = Default::default();
        let input = RouteInput {
            category: &category,
            severity: Severity::Info,
            source: &source,
            event_type: "task.started",
            labels: &labels,
        };
        let channel = router
            .route(&input)
            .targets
            .iter()
            .filter(|t| t.destination.platform == Platform::Discord)
            .find_map(|t| sink.channel_id(&t.destination.alias))?;
        Some(DiscordTaskThreads {
            sink,
            channel,
            store,
        })
    }

    /// The task's thread: the stored one (a retried task), or a new one
    /// started from a "Task <id> started" message. `None` when Discord
    /// refused (logged).
    pub async fn open(&self, task_id: &str, title: &str) -> Option<u64> {
        match self.store.discord_state(&key(task_id)).await {
            Ok(Some(id)) => {
                if let Ok(id) = id.parse::<u64>() {
                    self.post(id, "Task started again (after a restart).").await;
                    return Some(id);
                }
            }
            Ok(None) => {}
            Err(e) => warn!(
                task = task_id,
                error = format!("{e:#}"),
                "cannot read the task's thread id"
            ),
        }
        let text = format!("Task {task_id} started: {title}");
        let message = match self.sink.post_text(self.channel, &text).await {
            Ok(id) if id != 0 => id,
            Ok(_) => {
                warn!(
                    task = task_id,
                    "Discord did not say which message it posted; no task thread"
                );
                return None;
            }
            Err(e) => {
                warn!(task = task_id, error = %e, "the task's start message was not posted; no task thread");
                return None;
            }
        };
        let name = format!("{task_id}: {title}");
        let thread = match self.sink.start_thread(self.channel, message, &name).await {
            Ok(id) if id != 0 => id,
            Ok(_) | Err(_) => {
                warn!(
                    task = task_id,
                    "the task's thread was not started; progress is not posted"
                );
                return None;
            }
        };
        if let Err(e) = self
            .store
            .set_discord_state(&key(task_id), &thread.to_string(), Utc::now())
            .await
        {
            warn!(
                task = task_id,
                error = format!("{e:#}"),
                "the task's thread id was not stored"
            );
        }
        info!(task = task_id, thread, "task thread started");
        Some(thread)
    }

    async fn post(&self, thread: u64, text: &str) {
        // One retry after a 429: the limiter has learned the wait by then.
        for _ in 0..2 {
            match self.sink.post_text(thread, text).await {
                Ok(_) => return,
                Err(e) => match e.kind {
                    crate::delivery::SendErrorKind::RateLimited { retry_after, .. } => {
                        tokio::time::sleep(retry_after).await;
                    }
                    _ => {
                        warn!(thread, error = %e, "a task progress message was not posted");
                        return;
                    }
                },
            }
        }
        warn!(
            thread,
            "a task progress message was not posted (rate limited twice)"
        );
    }

    /// Post every progress line to the thread, in order, until the sender is dropped.
    pub fn spawn_poster(&self, thread: u64, mut rx: UnboundedReceiver<Progress>) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                let line = p.line();
                if tokio::time::timeout(FLUSH_LIMIT, this.post(thread, &line))
                    .await
                    .is_err()
                {
                    warn!(
                        thread,
                        "posting task progress took too long; skipped a line"
                    );
                }
            }
            debug!(thread, "task progress posted");
        })
    }
}

impl crate::tasks::progress::TaskThreads for DiscordTaskThreads {
    fn open<'a>(
        &'a self,
        task_id: &'a str,
        title: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Option<u64>> {
        Box::pin(DiscordTaskThreads::open(self, task_id, title))
    }

    fn spawn_poster(
        &self,
        thread: u64,
        rx: tokio::sync::mpsc::UnboundedReceiver<Progress>,
    ) -> tokio::task::JoinHandle<()> {
        DiscordTaskThreads::spawn_poster(self, thread, rx)
    }
}
