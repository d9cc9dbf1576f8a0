//! The neutral conversation handler: the Discord and Telegram shells hand
//! it an addressed message with its caller; it checks who may talk,
//! records the turn before anything is called, and answers it in the
//! background (turns of one conversation in order, different
//! conversations side by side up to `max_concurrent`), with the budgets
//! and the bot-pair guard checked before the responder is called.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use switchyard_commands::Caller;
use switchyard_routing::Platform;
use tokio::sync::{Semaphore, mpsc};
use tracing::{Instrument, error, info, warn};

mod endings;

pub use endings::ReplyRefused;

use super::context::{self, Sources};
use super::guard::{PairGuard, PairVerdict};
use super::incoming::{self, IncomingLimits};
use super::ports::{ChatPort, Prompt, Responder, ResponderError};
use super::stats::ConversationStats;
use super::stream::{self, Pace};
use super::turn::{ConversationId, Place, Turn, TurnId, TurnRequest, TurnState, Usage};
use crate::config::ConversationSettings;
use crate::conversations::records::TurnEnd;
use crate::store::Store;

/// What answers this agent's turns.
#[derive(Clone)]
pub enum Answerer {
    /// A responder that streams its answer (a model endpoint).
    Stream(Arc<dyn Responder>),
    /// Handed to another inbox, answered by its `reply` item.
    Inbox(Arc<dyn Handoff>),
}

/// Hands a turn to another inbox (the `inbox` responder).
pub trait Handoff: Send + Sync + 'static {
    /// Drop the turn, with its prompt, where its answerer takes it.
    fn hand_off(&self, turn: &Turn, prompt: &Prompt) -> anyhow::Result<()>;
    /// How long a reply may take.
    fn timeout(&self) -> Duration;
}

/// What became of an addressed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Recorded; it is answered in the background.
    Queued(TurnId),
    /// The same message was a turn already.
    Duplicate(TurnId),
    /// The caller may not talk to the agents.
    NotPermitted,
}

/// The agent's conversations. Cheap to clone.
#[derive(Clone)]
pub struct Conversations {
    inner: Arc<Inner>,
}

struct Inner {
    agent: String,
    store: Store,
    workspace: PathBuf,
    settings: ConversationSettings,
    /// Replaced whole by a reload that changes this agent's responder.
    answerer: std::sync::RwLock<Answerer>,
    /// Who may talk to the agent (a reload may change it).
    access: crate::config::LiveAccess,
    ports: RwLock<HashMap<Platform, Arc<dyn ChatPort>>>,
    slots: Semaphore,
    /// One lock per conversation (or per message that opens one): its turns in order.
    lanes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pairs: Mutex<PairGuard>,
    threads: RwLock<HashSet<u64>>,
    /// The people told once that they may not talk to the agents.
    hinted: Mutex<HashSet<(Platform, String)>>,
    stats: Arc<ConversationStats>,
    /// The bounds on files people attach.
    incoming: IncomingLimits,
}

/// The sentence a turn cut short by a restart ends with.
pub const INTERRUPTED: &str = "(the answer was interrupted; ask again)";

/// 00:00 UTC of `now`'s day: where the daily token budgets start.
pub fn day_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(now, |d| d.and_utc())
}

/// A rough token count where the endpoint reported none: four characters a token.
fn estimate_tokens(chars: usize) -> u64 {
    chars.div_ceil(4).max(1) as u64
}

impl Conversations {
    /// The answerer now (a reload may replace it between turns).
    pub(crate) fn answerer(&self) -> Answerer {
        self.inner
            .answerer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A reloaded responder answers the turns from now on; a turn already
    /// being answered finishes with the one it started with.
    pub fn set_answerer(&self, answerer: Answerer) {
        *self
            .inner
            .answerer
            .write()
            .unwrap_or_else(|e| e.into_inner()) = answerer;
    }

    pub fn new(
        agent: &str,
        store: Store,
        workspace: PathBuf,
        settings: ConversationSettings,
        answerer: Answerer,
        access: crate::config::LiveAccess,
        incoming: IncomingLimits,
    ) -> Conversations {
        let pairs = PairGuard::new(settings.bot_pair_turns, settings.bot_pair_window);
        Conversations {
            inner: Arc::new(Inner {
                agent: agent.to_string(),
                store,
                workspace,
                slots: Semaphore::new(settings.max_concurrent),
                settings,
                answerer: std::sync::RwLock::new(answerer),
                access,
                ports: RwLock::default(),
                lanes: Mutex::default(),
                pairs: Mutex::new(pairs),
                threads: RwLock::default(),
                hinted: Mutex::default(),
                stats: Arc::new(ConversationStats::default()),
                incoming,
            }),
        }
    }

    pub fn stats(&self) -> Arc<ConversationStats> {
        self.inner.stats.clone()
    }

    /// Where answers on `platform` are shown (set once the adapter is up).
    pub fn attach(&self, platform: Platform, port: Arc<dyn ChatPort>) {
        self.inner
            .ports
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(platform, port);
    }

    fn port(&self, platform: Platform) -> Option<Arc<dyn ChatPort>> {
        self.inner
            .ports
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&platform)
            .cloned()
    }

    /// Whether this agent holds a conversation in Discord thread `id`.
    pub fn owns_thread(&self, id: u64) -> bool {
        self.inner
            .threads
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&id)
    }

    /// Where a turn's answer goes: its conversation's place once it has one.
    fn answer_place(&self, turn: &Turn) -> Place {
        match &turn.conversation {
            Some(c) => {
                let id = c.as_str().split_once(':').map_or(c.as_str(), |(_, id)| id);
                Place {
                    platform: turn.place.platform,
                    id: id.to_string(),
                }
            }
            None => turn.place.clone(),
        }
    }

    /// An addressed message from `caller`.
    pub async fn accept(&self, req: TurnRequest, caller: &Caller) -> anyhow::Result<Accepted> {
        let permitted = self
            .inner
            .access
            .get()
            .list(req.place.platform)
            .may_chat(caller);
        if !permitted {
            self.inner.stats.not_permitted();
            self.hint_once(&req);
            return Ok(Accepted::NotPermitted);
        }
        let conversation = if req.opens_thread {
            None
        } else {
            let c = self
                .inner
                .store
                .open_conversation(&req.place, None, &req.author.id, req.received_at)
                .await?;
            Some(c)
        };
        let id = req.turn_id();
        if !self
            .inner
            .store
            .record_turn(&req, conversation.as_ref())
            .await?
        {
            return Ok(Accepted::Duplicate(id));
        }
        self.inner.stats.received();
        info!(turn = %id, place = %req.place, author = %req.author.id, "a turn is recorded");
        self.spawn_answer(id.clone());
        Ok(Accepted::Queued(id))
    }

    /// One polite sentence, once per person while the agent runs, for
    /// someone who may not talk to the agents (silence looks broken; a
    /// sentence every time would be noise).
    fn hint_once(&self, req: &TurnRequest) {
        let first = self
            .inner
            .hinted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((req.place.platform, req.author.id.clone()));
        if !first || req.author.is_bot {
            return;
        }
        let Some(port) = self.port(req.place.platform) else {
            return;
        };
        let place = req.place.clone();
        let text = format!(
            "Sorry {}, I only talk with the people this fleet's operators allow; ask one of them to add you.",
            req.author.name
        );
        tokio::spawn(async move {
            if let Err(e) = port.post(&place, &text, None).await {
                warn!(error = %e, "could not tell a stranger they may not talk to the agents");
            }
        });
    }

    fn lane(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut lanes = self.inner.lanes.lock().unwrap_or_else(|e| e.into_inner());
        // Forget lanes nobody holds, so the map does not grow with every thread.
        lanes.retain(|_, l| Arc::strong_count(l) > 1);
        lanes.entry(key.to_string()).or_default().clone()
    }

    fn spawn_answer(&self, id: TurnId) {
        let this = self.clone();
        let span = tracing::info_span!("turn", turn = %id);
        tokio::spawn(
            async move {
                if let Err(e) = this.answer(&id).await {
                    let eid = crate::error::error_id();
                    error!(error_id = %eid, error = format!("{e:#}"), "a turn failed inside the agent");
                    let reason = format!("internal error {eid}");
                    this.fail(&id, &reason, None).await;
                }
            }
            .instrument(span),
        );
    }

    async fn answer(&self, id: &TurnId) -> anyhow::Result<()> {
        let Some(turn) = self.inner.store.turn(id).await? else {
            return Ok(());
        };
        let lane_key = turn
            .conversation
            .as_ref()
            .map_or_else(|| format!("message:{}", turn.message_id), |c| c.0.clone());
        let lane = self.lane(&lane_key);
        let _in_order = lane.lock().await;
        let _slot = self.inner.slots.acquire().await?;
        // Read again: the turn may have been answered while this one waited.
        let Some(mut turn) = self.inner.store.turn(id).await? else {
            return Ok(());
        };
        if turn.state != TurnState::Received {
            return Ok(());
        }
        let Some(port) = self.port(turn.place.platform) else {
            anyhow::bail!("no {} adapter is connected", turn.place.platform.as_str());
        };
        // The bot-pair guard.
        if turn.author.is_bot {
            let verdict = self
                .inner
                .pairs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .check(
                    &turn.author.id,
                    &self.inner.agent,
                    tokio::time::Instant::now(),
                );
            if let PairVerdict::Paused { first } = verdict {
                let s = &self.inner.settings;
                let notice = format!(
                    "⏸️ {} and I have exchanged {} messages in {}s: I am pausing this exchange.",
                    turn.author.name,
                    s.bot_pair_turns,
                    s.bot_pair_window.as_secs()
                );
                self.inner.stats.pair_paused();
                self.end_with_notice(
                    &turn,
                    TurnState::Refused,
                    first.then_some(notice.as_str()),
                    "bot-pair limit",
                )
                .await;
                return Ok(());
            }
        }
        // The thread, for a mention in a channel.
        if turn.conversation.is_none() {
            let name: String = turn.text.chars().take(80).collect();
            let name = if name.trim().is_empty() {
                format!("{} and {}", turn.author.name, self.inner.agent)
            } else {
                name
            };
            let thread = port
                .open_thread(&turn.place, &turn.message_id, &name)
                .await
                .map_err(|e| anyhow::anyhow!("cannot open a thread: {e}"))?;
            let c = self
                .inner
                .store
                .open_conversation(&thread, Some(&turn.place.id), &turn.author.id, Utc::now())
                .await?;
            self.inner.store.set_turn_conversation(&turn.id, &c).await?;
            if let Ok(t) = thread.id.parse() {
                self.inner
                    .threads
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(t);
            }
            turn.conversation = Some(c);
        }
        let conversation = turn.conversation.clone().expect("set above");
        let place = self.answer_place(&turn);
        // Context.
        let s = &self.inner.settings;
        let (persona, memory, status) =
            context::read_files(&self.inner.workspace, &self.inner.agent, s.context_chars);
        let sources = Sources {
            agent: self.inner.agent.clone(),
            persona,
            memory,
            memory_log: self.inner.store.memory_log(s.memory_entries).await?,
            status,
            history: self
                .inner
                .store
                .history(&conversation, turn.received_at, s.history_turns)
                .await?,
        };
        // Attached files: read (text) or described, at most half the budget.
        let files = self.inner.store.turn_files(&turn.id).await?;
        let text = if files.is_empty() {
            turn.text.clone()
        } else {
            let reads = incoming::read_all(
                port.as_ref(),
                &files,
                self.inner.incoming,
                s.context_chars / 2,
            )
            .await;
            info!(files = reads.len(), "read the turn's attached files");
            format!("{}{}", turn.text, incoming::render(&reads))
        };
        let prompt = context::build(&sources, &turn.author.name, &text, s.context_chars);
        // Budgets, before anything is called.
        if let Some(notice) = self
            .over_budget(&conversation, estimate_tokens(prompt.chars()))
            .await?
        {
            self.inner.stats.budget_refused();
            self.end_with_notice(
                &turn,
                TurnState::Refused,
                Some(&notice),
                "token budget spent",
            )
            .await;
            return Ok(());
        }
        match &self.answerer() {
            Answerer::Inbox(handoff) => {
                if !self
                    .inner
                    .store
                    .move_turn(id, TurnState::Received, TurnState::WaitingReply, Utc::now())
                    .await?
                {
                    return Ok(());
                }
                if let Err(e) = port.typing(&place).await {
                    warn!(error = %e, "could not show the typing indicator");
                }
                handoff.hand_off(&turn, &prompt)?;
                turn.state = TurnState::WaitingReply;
                self.arm_reply_timeout(turn);
                Ok(())
            }
            Answerer::Stream(responder) => {
                if !self
                    .inner
                    .store
                    .move_turn(id, TurnState::Received, TurnState::Answering, Utc::now())
                    .await?
                {
                    return Ok(());
                }
                self.stream(&turn, &place, port.as_ref(), responder.clone(), prompt)
                    .await;
                Ok(())
            }
        }
    }

    async fn over_budget(
        &self,
        c: &ConversationId,
        estimate: u64,
    ) -> anyhow::Result<Option<String>> {
        let s = &self.inner.settings;
        let since = day_start(Utc::now());
        if s.tokens_per_agent_per_day > 0 {
            let used = self.inner.store.tokens_since(since, None).await?;
            self.inner.stats.set_spent(used);
            if used + estimate > s.tokens_per_agent_per_day {
                return Ok(Some(format!(
                    "🪫 I have spent today's token budget ({used} of {} tokens): ask again after 00:00 UTC.",
                    s.tokens_per_agent_per_day
                )));
            }
        }
        if s.tokens_per_conversation_per_day > 0 {
            let used = self.inner.store.tokens_since(since, Some(c)).await?;
            if used + estimate > s.tokens_per_conversation_per_day {
                return Ok(Some(format!(
                    "🪫 This conversation has spent today's token budget ({used} of {} tokens): ask again after 00:00 UTC.",
                    s.tokens_per_conversation_per_day
                )));
            }
        }
        Ok(None)
    }

    async fn stream(
        &self,
        turn: &Turn,
        place: &Place,
        port: &dyn ChatPort,
        responder: Arc<dyn Responder>,
        prompt: Prompt,
    ) {
        let (tx, mut rx) = mpsc::channel::<String>(64);
        let prompt_chars = prompt.chars();
        let answering = tokio::spawn(responder.respond(prompt, tx));
        let pace = Pace {
            edit_interval: self.inner.settings.edit_interval,
            typing_interval: self.inner.settings.typing_interval,
        };
        let (shown, port_error) =
            stream::stream_answer(port, place, &mut rx, pace, (&self.inner.store, &turn.id)).await;
        drop(rx);
        let outcome = match answering.await {
            Ok(r) => r,
            Err(e) => Err(ResponderError::Broken(format!(
                "the responder stopped: {e}"
            ))),
        };
        let text = shown.text();
        if let Some(e) = port_error {
            self.fail(
                &turn.id,
                &format!("the platform refused the answer ({e})"),
                Some((&shown.messages, &text)),
            )
            .await;
            return;
        }
        match outcome {
            Ok(usage) if !text.trim().is_empty() => {
                let usage = if usage.total() == 0 {
                    Usage {
                        prompt_tokens: estimate_tokens(prompt_chars),
                        completion_tokens: estimate_tokens(text.chars().count()),
                    }
                } else {
                    usage
                };
                let end = TurnEnd {
                    state: TurnState::Answered,
                    answer: &text,
                    messages: &shown.messages,
                    reason: None,
                    usage,
                    at: Utc::now(),
                };
                match self.inner.store.finish_turn(&turn.id, &end).await {
                    Ok(_) => {
                        self.inner.stats.answered(usage, shown.edits);
                        info!(turn = %turn.id, messages = shown.messages.len(), edits = shown.edits, tokens = usage.total(), "a turn is answered");
                    }
                    Err(e) => {
                        warn!(turn = %turn.id, error = format!("{e:#}"), "could not record an answer")
                    }
                }
            }
            Ok(_) => {
                self.inner.stats.responder_error("empty");
                self.fail(&turn.id, "the model sent an empty answer", None)
                    .await;
            }
            Err(e) => {
                self.inner.stats.responder_error(e.kind());
                warn!(turn = %turn.id, error = %e, kind = e.kind(), "the responder failed");
                self.fail(&turn.id, &e.to_string(), Some((&shown.messages, &text)))
                    .await;
            }
        }
    }
}
