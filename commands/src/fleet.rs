//! The port the handler works through: `Fleet`, implemented by the runtime
//! over its stores (status file, mute store, router, outbox, task store,
//! approvals). Its methods return `Send` futures (`fn ... -> impl Future`),
//! which needs no runtime: the shells await the handler on theirs, and this
//! crate stays free of any async runtime (its tests poll the fake's
//! ready futures by hand).
//!
//! The data types here are what the replies are built from; they carry no
//! platform or database type.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use switchyard_routing::{Category, Destination, Severity};

use crate::access::Caller;
use crate::duration::MuteDuration;
use crate::ids::{AgentName, ApprovalId, MuteId, MuteTarget, TaskId};
use crate::reply::ButtonToken;

/// Why a fleet operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    /// Something the user can fix, as a sentence for them ("No mute has the
    /// id mute_9; /mutes lists the active ones.").
    #[error("{0}")]
    Rejected(String),
    /// The feature is not running on this fleet ("Tasks are not enabled on
    /// this fleet yet.").
    #[error("{0}")]
    NotEnabled(String),
    /// A fault the user cannot fix. The runtime logged it with this id; the
    /// user sees only the id.
    #[error("internal error {error_id}")]
    Internal { error_id: String },
}

/// One agent in `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentStatus {
    pub name: AgentName,
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// Items waiting in its inbox.
    pub queue_depth: u64,
    /// Running tasks, if the task pipeline is enabled.
    pub running_tasks: Option<u64>,
    /// Stopped by the kill switch (its own or the fleet's).
    pub killed: bool,
}

/// The fleet at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusSnapshot {
    pub agents: Vec<AgentStatus>,
    /// A heartbeat older than this is shown as stale.
    pub stale_after: TimeDelta,
    pub pending_deliveries: u64,
    pub failed_deliveries: u64,
    pub active_mutes: u64,
    pub fleet_killed: bool,
    pub pending_approvals: u64,
    /// Named locks held now (the fleet's "read before you act").
    pub locks: Vec<HeldLock>,
    /// Configured schedules and when each runs next.
    pub schedules: Vec<NextRun>,
    /// What this agent's conversations spent today, when it converses.
    pub conversations: Option<ConversationSpend>,
}

/// Tokens an agent's conversations spent since 00:00 UTC, and its daily budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConversationSpend {
    pub tokens_today: u64,
    /// `None`: no daily limit.
    pub daily_budget: Option<u64>,
}

/// A schedule as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextRun {
    pub name: String,
    pub agent: String,
    pub next: Option<DateTime<Utc>>,
}

/// A named lock as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldLock {
    pub name: String,
    pub holder: String,
    pub reason: String,
    pub until: DateTime<Utc>,
}

/// A request to create a mute, made by `/mute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuteRequest<'a> {
    pub target: &'a MuteTarget,
    pub duration: MuteDuration,
    pub until: DateTime<Utc>,
    pub reason: Option<&'a str>,
    pub force: bool,
    pub by: &'a Caller,
    pub now: DateTime<Utc>,
}

/// A mute as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MuteInfo {
    pub id: MuteId,
    pub target: MuteTarget,
    pub until: DateTime<Utc>,
    pub reason: Option<String>,
    pub created_by: String,
    pub force: bool,
    /// Messages held so far.
    pub held: u64,
}

/// What lifting a mute released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiftedMute {
    pub mute: MuteInfo,
    /// Messages that go out now as one "while muted" digest.
    pub released: u64,
}

/// `/route`'s question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteQuery<'a> {
    pub category: &'a Category,
    pub severity: Severity,
    pub source: Option<&'a str>,
}

/// Where such an event would go and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteExplanation {
    pub destinations: Vec<Destination>,
    /// The rules that decided, in order (`#3 "critical alerts" (continue)`),
    /// or the unmatched fallback.
    pub decided_by: Vec<String>,
    /// Active mutes that would hold it, by destination.
    pub held_by: Vec<(Destination, MuteId)>,
    pub unmatched: bool,
}

/// `/send`'s event, as typed; the runtime validates it as an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRequest<'a> {
    pub category: &'a Category,
    pub title: &'a str,
    pub body: Option<&'a str>,
    pub by: &'a Caller,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentEvent {
    pub event_id: String,
    pub destinations: Vec<Destination>,
    /// Destinations where a mute holds it.
    pub held: Vec<Destination>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskInfo {
    pub id: TaskId,
    pub summary: String,
    /// queued, awaiting_approval, running, succeeded, failed, cancelled, ...
    pub state: String,
    pub agent: Option<AgentName>,
    pub updated: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskDetail {
    pub info: TaskInfo,
    /// Lines such as `step 1 build: succeeded after 2 attempts (14s)`.
    pub steps: Vec<String>,
    pub attempts: u32,
    pub cost_usd: Option<f64>,
}

/// A pending approval request, with the tokens its buttons carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalInfo {
    pub id: ApprovalId,
    pub summary: String,
    pub risk: u8,
    pub reasons: Vec<String>,
    pub requested_by: AgentName,
    pub expires: DateTime<Utc>,
    /// Present when this platform can show buttons for it.
    pub buttons: Option<ApprovalTokens>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalTokens {
    pub approve: ButtonToken,
    pub deny: ButtonToken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approved,
    Denied,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Denied => "denied",
        }
    }
}

/// What a decision did. The first valid decision wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DecisionOutcome {
    Decided {
        decision: Decision,
    },
    /// The policy needs another, distinct approver.
    AwaitingSecondApprover,
    AlreadyDecided {
        decision: String,
        by: String,
        at: DateTime<Utc>,
    },
    Expired {
        at: DateTime<Utc>,
    },
}

/// The kill switch after a `/kill` or `/resume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KillState {
    pub fleet_killed: bool,
    pub killed_agents: Vec<AgentName>,
    /// Running containers stopped by this change.
    pub stopped_containers: u64,
}

/// Everything the commands need from the running fleet.
pub trait Fleet: Sync {
    /// Whether the caller may decide approvals (Telegram `approvers`).
    fn is_approver(&self, caller: &Caller) -> bool;

    fn status(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<StatusSnapshot, FleetError>> + Send;

    /// Refuses (`Rejected`) a mute that would hold `critical` or
    /// `action_required` messages without `force`, an unknown alias, ...
    fn create_mute(
        &self,
        request: MuteRequest<'_>,
    ) -> impl Future<Output = Result<MuteInfo, FleetError>> + Send;
    fn lift_mute(
        &self,
        id: &MuteId,
        by: &Caller,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<LiftedMute, FleetError>> + Send;
    fn list_mutes(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<MuteInfo>, FleetError>> + Send;

    fn explain_route(
        &self,
        query: RouteQuery<'_>,
    ) -> impl Future<Output = Result<RouteExplanation, FleetError>> + Send;
    fn send_event(
        &self,
        request: SendRequest<'_>,
    ) -> impl Future<Output = Result<SentEvent, FleetError>> + Send;

    /// Until the task pipeline exists, these return `NotEnabled`.
    fn submit_task(
        &self,
        spec: &str,
        by: &Caller,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<TaskInfo, FleetError>> + Send;
    fn list_tasks(&self) -> impl Future<Output = Result<Vec<TaskInfo>, FleetError>> + Send;
    fn show_task(&self, id: &TaskId)
    -> impl Future<Output = Result<TaskDetail, FleetError>> + Send;
    fn cancel_task(
        &self,
        id: &TaskId,
        by: &Caller,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<TaskInfo, FleetError>> + Send;

    fn pending_approvals(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<ApprovalInfo>, FleetError>> + Send;
    fn decide_approval(
        &self,
        id: &ApprovalId,
        decision: Decision,
        by: &Caller,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(ApprovalInfo, DecisionOutcome), FleetError>> + Send;

    /// `None` is the whole fleet.
    fn kill(
        &self,
        agent: Option<&AgentName>,
        by: &Caller,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<KillState, FleetError>> + Send;
    fn resume(
        &self,
        agent: Option<&AgentName>,
        by: &Caller,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<KillState, FleetError>> + Send;

    /// Autocomplete sources; best effort, so no errors: an empty list is fine.
    fn agent_names(&self) -> Vec<AgentName>;
    fn channel_destinations(&self) -> Vec<Destination>;
    fn active_mute_ids(&self) -> Vec<MuteId>;
    fn pending_approval_ids(&self) -> impl Future<Output = Vec<ApprovalId>> + Send;
}
