//! `AgentFleet`: the runtime's implementation of the neutral commands' `Fleet`
//! port, over the fleet's shared state (the status file: agents, heartbeats,
//! kill switch, mutes), the router, the agent's inbox and its store
//! (delivery counts, held messages, audit). Both chat shells (Discord and
//! Telegram) call this one implementation.
//!
//! The port is async (its methods return `Send` futures, so the commands
//! crate needs no runtime of its own): store reads are awaited where they
//! happen, on whatever runtime the shell runs on.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use switchyard_commands::fleet::{
    AgentStatus, ApprovalInfo, ApprovalTokens, Decision, DecisionOutcome, KillState, LiftedMute,
    MuteInfo, MuteRequest, RouteExplanation, RouteQuery, SendRequest, SentEvent, StatusSnapshot,
    TaskDetail, TaskInfo,
};
use switchyard_commands::{
    AgentName, ApprovalId, AuditOutcome, AuditRecord, ButtonToken, Caller, Fleet, FleetError,
    MuteId, TaskId,
};
use switchyard_routing::{
    Destination, EventDraft, Mute, Platform, RouteInput, Severity, holding_mute,
};
use tracing::error;

use crate::approvals::buttons::callback_data;
use crate::approvals::{Approval, ApprovalStatus, DecideOutcome, Vote};
use crate::config::Config;
use crate::coord::mutes::MuteCreateError;
use crate::coord::{StatusFile, drop_item};
use crate::store::approvals::Voter;
use crate::store::{AuditEntry, DeliveryState, Store};

/// The fleet as one agent sees it. Cheap to clone.
#[derive(Clone)]
pub struct AgentFleet {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    agent: String,
    store: Store,
    status: StatusFile,
    routing: crate::config::LiveRouting,
    access: crate::config::LiveAccess,
}

impl AgentFleet {
    pub fn new(
        config: Config,
        agent: impl Into<String>,
        store: Store,
        status: StatusFile,
        routing: crate::config::LiveRouting,
        access: crate::config::LiveAccess,
    ) -> AgentFleet {
        AgentFleet {
            inner: Arc::new(Inner {
                config,
                agent: agent.into(),
                store,
                status,
                routing,
                access,
            }),
        }
    }

    /// Who may do what now (a reload replaces it).
    pub fn access(&self) -> &crate::config::LiveAccess {
        &self.inner.access
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn agent(&self) -> &str {
        &self.inner.agent
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Log a fault under a fresh error id and hand the user only the id.
    /// What this agent's conversations spent today (`None`: it does not converse).
    async fn conversation_spend(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<switchyard_commands::fleet::ConversationSpend>, FleetError> {
        let config = &self.inner.config;
        let converses = config
            .agents
            .iter()
            .any(|a| a.name == self.inner.agent && a.responder.is_some());
        if !converses {
            return Ok(None);
        }
        let tokens_today = self
            .inner
            .store
            .tokens_since(crate::conversations::day_start(now), None)
            .await
            .map_err(|e| self.internal("cannot sum the conversations' tokens", format!("{e:#}")))?;
        let budget = config.conversations.tokens_per_agent_per_day;
        Ok(Some(switchyard_commands::fleet::ConversationSpend {
            tokens_today,
            daily_budget: (budget > 0).then_some(budget),
        }))
    }

    fn internal(&self, what: &str, e: impl std::fmt::Display) -> FleetError {
        let error_id = crate::error::error_id();
        error!(error_id = %error_id, agent = %self.inner.agent, error = %e, "{what}");
        FleetError::Internal { error_id }
    }

    fn task_info(&self, r: &crate::store::tasks::TaskRow) -> Result<TaskInfo, FleetError> {
        Ok(TaskInfo {
            id: TaskId::parse(&r.id)
                .map_err(|e| self.internal("a stored task id is invalid", e))?,
            summary: r.title.clone(),
            state: r.state.as_str().to_string(),
            agent: AgentName::parse(&self.inner.agent).ok(),
            updated: r.updated_at,
        })
    }

    /// An approval as the commands show it, with its buttons' tokens.
    async fn approval_info(&self, a: &Approval) -> Result<ApprovalInfo, FleetError> {
        let token = self
            .inner
            .store
            .approval_token(&a.id)
            .await
            .map_err(|e| self.internal("cannot read an approval token", format!("{e:#}")))?;
        let buttons = token.and_then(|t| {
            Some(ApprovalTokens {
                approve: ButtonToken::new(callback_data(Vote::Approve, &t)).ok()?,
                deny: ButtonToken::new(callback_data(Vote::Deny, &t)).ok()?,
            })
        });
        Ok(ApprovalInfo {
            id: ApprovalId::parse(&a.id)
                .map_err(|e| self.internal("a stored approval id is invalid", e))?,
            summary: a.summary.clone(),
            risk: a.risk,
            reasons: a.reasons.clone(),
            requested_by: AgentName::parse(&a.requested_by)
                .or_else(|_| AgentName::parse("unknown"))
                .map_err(|e| self.internal("an agent name is invalid", e))?,
            expires: a.expires_at,
            buttons,
        })
    }

    fn read_status(&self) -> Result<crate::coord::Status, FleetError> {
        self.inner
            .status
            .read()
            .map_err(|e| self.internal("cannot read the status file", e))
    }

    fn known_agent(&self, agent: &AgentName) -> Result<(), FleetError> {
        if self.inner.config.agent(agent.as_str()).is_some() {
            Ok(())
        } else {
            Err(FleetError::Rejected(format!(
                "There is no agent named {agent}; the fleet has {}.",
                self.agent_list()
            )))
        }
    }

    fn agent_list(&self) -> String {
        self.inner
            .config
            .agents
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    async fn held_count(&self, mute: &str) -> u64 {
        match self.inner.store.held_for_mute(mute).await {
            Ok(v) => v.len() as u64,
            Err(e) => {
                tracing::warn!(mute, error = format!("{e:#}"), "cannot count held messages");
                0
            }
        }
    }

    async fn mute_info(&self, m: &Mute) -> MuteInfo {
        MuteInfo {
            id: m.id.clone(),
            target: m.target.clone(),
            until: m.expires_at,
            reason: (!m.reason.is_empty()).then(|| m.reason.clone()),
            created_by: m.created_by.clone(),
            force: m.force,
            held: self.held_count(m.id.as_str()).await,
        }
    }

    fn kill_state(&self) -> Result<KillState, FleetError> {
        let s = self.read_status()?;
        Ok(KillState {
            fleet_killed: s.kill.fleet.is_some(),
            killed_agents: s
                .kill
                .agents
                .keys()
                .filter_map(|a| AgentName::parse(a).ok())
                .collect(),
            stopped_containers: 0,
        })
    }
}

/// The store's audit row for a handled command.
pub fn audit_entry(record: &AuditRecord, platform: &str) -> AuditEntry {
    let (outcome, detail) = match &record.outcome {
        AuditOutcome::Done => ("done", String::new()),
        AuditOutcome::Refused { reason } => ("refused", reason.clone()),
        AuditOutcome::Usage { problem } => ("usage", problem.clone()),
        AuditOutcome::Rejected { reason } => ("rejected", reason.clone()),
        AuditOutcome::NotEnabled => ("not_enabled", String::new()),
        AuditOutcome::Failed { error_id } => ("failed", format!("error id {error_id}")),
    };
    let name = record
        .command
        .trim_start_matches('/')
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    AuditEntry {
        actor: format!("{platform}:{}", record.caller.user_id),
        action: format!("command.{name}"),
        target: record.command.clone(),
        outcome: outcome.to_string(),
        detail,
        at: record.at,
    }
}

impl Fleet for AgentFleet {
    fn is_approver(&self, caller: &Caller) -> bool {
        let access = self.inner.access.get();
        match caller.platform {
            Platform::Telegram => i64::try_from(caller.user_id)
                .is_ok_and(|id| access.telegram_approvers.contains(&id)),
            Platform::Discord => access
                .discord
                .as_ref()
                .is_some_and(|d| d.is_approver(caller)),
        }
    }

    async fn status(&self, now: DateTime<Utc>) -> Result<StatusSnapshot, FleetError> {
        let s = self.read_status()?;
        let counts = self
            .inner
            .store
            .delivery_counts()
            .await
            .map_err(|e| self.internal("cannot count deliveries", format!("{e:#}")))?;
        let count = |st: DeliveryState| counts.get(&st).copied().unwrap_or(0);
        let agents = self
            .inner
            .config
            .agents
            .iter()
            .map(|a| {
                let hb = s.agents.get(a.name.as_str());
                AgentStatus {
                    name: a.name.clone(),
                    last_heartbeat: hb.map(|h| h.last_beat),
                    queue_depth: hb.map_or(0, |h| h.queue_depth),
                    running_tasks: None,
                    killed: s.is_killed(&a.name).is_some(),
                }
            })
            .collect();
        Ok(StatusSnapshot {
            agents,
            stale_after: TimeDelta::from_std(self.inner.config.fleet.stale_after)
                .unwrap_or(TimeDelta::seconds(30)),
            pending_deliveries: count(DeliveryState::Pending) + count(DeliveryState::Sending),
            failed_deliveries: count(DeliveryState::Failed),
            active_mutes: s.mutes.iter().filter(|m| m.is_active(now)).count() as u64,
            fleet_killed: s.kill.fleet.is_some(),
            pending_approvals: self
                .inner
                .store
                .approvals(Some(ApprovalStatus::Pending))
                .await
                .map_err(|e| self.internal("cannot count approvals", format!("{e:#}")))?
                .iter()
                .filter(|a| a.expires_at > now)
                .count() as u64,
            conversations: self.conversation_spend(now).await?,
            schedules: self
                .inner
                .config
                .schedules
                .iter()
                .map(|sch| switchyard_commands::fleet::NextRun {
                    name: sch.name.clone(),
                    agent: sch.agent.to_string(),
                    next: sch.next_runs(now, 1).into_iter().next(),
                })
                .collect(),
            locks: s
                .active_locks(now)
                .map(|(name, l)| switchyard_commands::fleet::HeldLock {
                    name: name.clone(),
                    holder: l.holder.clone(),
                    reason: l.reason.clone(),
                    until: l.expires_at,
                })
                .collect(),
        })
    }

    async fn create_mute(&self, r: MuteRequest<'_>) -> Result<MuteInfo, FleetError> {
        let duration = std::time::Duration::from_secs(r.duration.as_secs().max(0) as u64);
        // The status file's lock may be held by a busy peer: wait for it off
        // this worker, so the shell's other tasks (the 3-second defer) run.
        let created = crate::coord::off_worker(|| {
            crate::coord::mutes::create(
                &self.inner.config,
                r.target.clone(),
                duration,
                &r.by.display_name,
                r.reason.unwrap_or(""),
                r.force,
                r.now,
            )
        });
        match created {
            Ok(m) => Ok(self.mute_info(&m).await),
            Err(MuteCreateError::Refused(why)) => Err(FleetError::Rejected(sentence(why))),
            Err(MuteCreateError::Io(e)) => {
                Err(self.internal("cannot store the mute", format!("{e:#}")))
            }
        }
    }

    async fn lift_mute(
        &self,
        id: &MuteId,
        _by: &Caller,
        now: DateTime<Utc>,
    ) -> Result<LiftedMute, FleetError> {
        let lifted = crate::coord::off_worker(|| {
            crate::coord::mutes::lift(&self.inner.config, id.as_str(), now)
        })
        .map_err(|e| self.internal("cannot lift the mute", format!("{e:#}")))?;
        match lifted {
            Some(m) => {
                let mute = self.mute_info(&m).await;
                Ok(LiftedMute {
                    released: mute.held,
                    mute,
                })
            }
            None => Err(FleetError::Rejected(format!(
                "No active mute has the id {id}; /mutes lists the active ones."
            ))),
        }
    }

    async fn list_mutes(&self, now: DateTime<Utc>) -> Result<Vec<MuteInfo>, FleetError> {
        let s = self.read_status()?;
        let mut out = Vec::new();
        for m in s.mutes.iter().filter(|m| m.is_active(now)) {
            out.push(self.mute_info(m).await);
        }
        Ok(out)
    }

    async fn explain_route(&self, q: RouteQuery<'_>) -> Result<RouteExplanation, FleetError> {
        let source = q.source.unwrap_or("chat");
        let input = RouteInput::new(q.category, q.severity, source, "chat.route");
        let decision = self.inner.routing.get().router.route(&input);
        let mutes = self.read_status()?.mutes;
        let now = Utc::now();
        Ok(RouteExplanation {
            destinations: decision
                .targets
                .iter()
                .map(|t| t.destination.clone())
                .collect(),
            decided_by: decision.explain(),
            held_by: decision
                .targets
                .iter()
                .filter_map(|t| {
                    holding_mute(&mutes, &input, &t.destination, now)
                        .map(|m| (t.destination.clone(), m.id.clone()))
                })
                .collect(),
            unmatched: decision.unmatched,
        })
    }

    async fn send_event(&self, r: SendRequest<'_>) -> Result<SentEvent, FleetError> {
        let draft = EventDraft {
            kind: Some("event".into()),
            event_type: Some("chat.send".into()),
            category: Some(r.category.to_string()),
            severity: Some(Severity::Info.to_string()),
            source: Some(format!("chat:{}", r.by.user_id)),
            timestamp: Some(r.now.to_rfc3339()),
            title: Some(r.title.to_string()),
            body: r.body.map(str::to_string),
            ..EventDraft::default()
        };
        let event = draft
            .clone()
            .validate(
                r.now,
                switchyard_routing::EventId::generate(r.now, rand::random()),
            )
            .map_err(|e| FleetError::Rejected(sentence(e.to_string())))?;
        let mut item = serde_json::to_value(&draft)
            .map_err(|e| self.internal("cannot encode the event", e))?;
        item["event_id"] = json!(event.event_id.to_string());
        drop_item(
            &self.inner.config.fleet.workspace,
            &self.inner.agent,
            &format!("send-{}", event.event_id),
            &item,
        )
        .map_err(|e| self.internal("cannot drop the event into the inbox", e))?;
        let input = RouteInput::from(&event);
        let decision = self.inner.routing.get().router.route(&input);
        let mutes = self.read_status()?.mutes;
        Ok(SentEvent {
            event_id: event.event_id.to_string(),
            destinations: decision
                .targets
                .iter()
                .map(|t| t.destination.clone())
                .collect(),
            held: decision
                .targets
                .iter()
                .filter(|t| holding_mute(&mutes, &input, &t.destination, r.now).is_some())
                .map(|t| t.destination.clone())
                .collect(),
        })
    }

    /// Who submitted it is in the handler's audit record; the spec itself stays as written.
    async fn submit_task(
        &self,
        spec: &str,
        _by: &Caller,
        now: DateTime<Utc>,
    ) -> Result<TaskInfo, FleetError> {
        let config = &self.inner.config;
        let parsed = crate::tasks::TaskSpec::parse_checked(
            spec.as_bytes(),
            config.skills.keys().map(String::as_str),
        )
        .map_err(|e| {
            FleetError::Rejected(format!(
                "That task spec is not valid: {}.",
                e.problems.join("; ")
            ))
        })?;
        let mut item: serde_json::Value = serde_json::from_str(spec)
            .map_err(|e| FleetError::Rejected(format!("The task spec is not JSON: {e}.")))?;
        item["kind"] = "task".into();
        drop_item(
            &config.fleet.workspace,
            &self.inner.agent,
            parsed.id.as_str(),
            &item,
        )
        .map_err(|e| self.internal("cannot drop a task into the inbox", e))?;
        Ok(TaskInfo {
            id: TaskId::parse(parsed.id.as_str())
                .map_err(|e| self.internal("a task id is invalid", e))?,
            summary: parsed.title.clone(),
            state: "submitted".into(),
            agent: AgentName::parse(&self.inner.agent).ok(),
            updated: now,
        })
    }
    async fn list_tasks(&self) -> Result<Vec<TaskInfo>, FleetError> {
        let rows = crate::store::tasks::list(self.inner.store.pool(), None, 25)
            .await
            .map_err(|e| self.internal("cannot list tasks", e))?;
        rows.iter().map(|r| self.task_info(r)).collect()
    }
    async fn show_task(&self, id: &TaskId) -> Result<TaskDetail, FleetError> {
        let pool = self.inner.store.pool();
        let row = crate::store::tasks::get(pool, id.as_str())
            .await
            .map_err(|e| self.internal("cannot read a task", e))?
            .ok_or_else(|| {
                FleetError::Rejected(format!("No task has the id {id}; /task list shows them."))
            })?;
        let receipt = crate::store::tasks::record(
            pool,
            id.as_str(),
            crate::store::tasks::RecordKind::Receipt,
        )
        .await
        .map_err(|e| self.internal("cannot read a task receipt", e))?;
        let mut steps: Vec<String> = row
            .spec
            .steps
            .iter()
            .enumerate()
            .map(|(i, st)| format!("step {} {}: {}", i + 1, st.skill, st.args.join(" ")))
            .collect();
        if let Some(reason) = &row.reason {
            steps.push(format!("reason: {reason}"));
        }
        let cost_usd = receipt
            .as_ref()
            .and_then(|r| r.pointer("/usage/cost_usd"))
            .and_then(serde_json::Value::as_f64);
        Ok(TaskDetail {
            info: self.task_info(&row)?,
            steps,
            attempts: row.attempts,
            cost_usd,
        })
    }
    async fn cancel_task(
        &self,
        id: &TaskId,
        by: &Caller,
        now: DateTime<Utc>,
    ) -> Result<TaskInfo, FleetError> {
        use crate::tasks::TaskState;
        let pool = self.inner.store.pool();
        let row = crate::store::tasks::get(pool, id.as_str())
            .await
            .map_err(|e| self.internal("cannot read a task", e))?
            .ok_or_else(|| {
                FleetError::Rejected(format!("No task has the id {id}; /task list shows them."))
            })?;
        if !matches!(row.state, TaskState::Queued | TaskState::AwaitingApproval) {
            return Err(FleetError::Rejected(format!(
                "Task {id} is {}: only a queued or waiting task can be cancelled; /kill stops running work.",
                row.state.as_str()
            )));
        }
        let reason = format!("cancelled by {} ({})", by.display_name, by.user_id);
        crate::store::tasks::transition(
            pool,
            id.as_str(),
            TaskState::Cancelled,
            Some(&reason),
            now,
        )
        .await
        .map_err(|e| self.internal("cannot cancel a task", e))?;
        let row = crate::store::tasks::get(pool, id.as_str())
            .await
            .map_err(|e| self.internal("cannot read a task", e))?
            .ok_or_else(|| FleetError::Rejected(format!("No task has the id {id}.")))?;
        self.task_info(&row)
    }

    async fn pending_approvals(&self, now: DateTime<Utc>) -> Result<Vec<ApprovalInfo>, FleetError> {
        let pending = self
            .inner
            .store
            .approvals(Some(ApprovalStatus::Pending))
            .await
            .map_err(|e| self.internal("cannot list approvals", format!("{e:#}")))?;
        let mut out = Vec::new();
        for a in pending.iter().filter(|a| a.expires_at > now) {
            out.push(self.approval_info(a).await?);
        }
        Ok(out)
    }

    async fn decide_approval(
        &self,
        id: &ApprovalId,
        decision: Decision,
        by: &Caller,
        now: DateTime<Utc>,
    ) -> Result<(ApprovalInfo, DecisionOutcome), FleetError> {
        let vote = match decision {
            Decision::Approved => Vote::Approve,
            Decision::Denied => Vote::Deny,
        };
        // Audited as who they are, where they are.
        let voter = Voter {
            id: format!("{}:{}", by.platform, by.user_id),
            name: by.display_name.clone(),
        };
        let unknown = || {
            FleetError::Rejected(format!(
                "No approval has the id {id}; /approvals lists the pending ones."
            ))
        };
        let outcome = self
            .inner
            .store
            .decide_approval(id.as_str(), &voter, vote, false, now)
            .await
            .map_err(|e| self.internal("cannot decide an approval", format!("{e:#}")))?;
        let a = self
            .inner
            .store
            .approval(id.as_str())
            .await
            .map_err(|e| self.internal("cannot read an approval", format!("{e:#}")))?
            .ok_or_else(unknown)?;
        let outcome = match outcome {
            DecideOutcome::Decided { status, .. } => DecisionOutcome::Decided {
                decision: if status == ApprovalStatus::Approved {
                    Decision::Approved
                } else {
                    Decision::Denied
                },
            },
            DecideOutcome::Awaiting { .. } | DecideOutcome::AlreadyVoted => {
                DecisionOutcome::AwaitingSecondApprover
            }
            DecideOutcome::AlreadyDecided { status, by, at } => DecisionOutcome::AlreadyDecided {
                decision: status.to_string(),
                by,
                at,
            },
            DecideOutcome::Expired { at } => DecisionOutcome::Expired { at },
            DecideOutcome::Unknown => return Err(unknown()),
        };
        Ok((self.approval_info(&a).await?, outcome))
    }

    async fn kill(
        &self,
        agent: Option<&AgentName>,
        by: &Caller,
        _now: DateTime<Utc>,
    ) -> Result<KillState, FleetError> {
        if let Some(a) = agent {
            self.known_agent(a)?;
        }
        crate::coord::off_worker(|| {
            self.inner.status.kill(
                agent.map(AgentName::as_str),
                &by.display_name,
                "chat command /kill",
            )
        })
        .map_err(|e| self.internal("cannot set the kill switch", e))?;
        self.kill_state()
    }

    async fn resume(
        &self,
        agent: Option<&AgentName>,
        by: &Caller,
        _now: DateTime<Utc>,
    ) -> Result<KillState, FleetError> {
        if let Some(a) = agent {
            self.known_agent(a)?;
        }
        crate::coord::off_worker(|| {
            self.inner.status.resume(
                agent.map(AgentName::as_str),
                &by.display_name,
                "chat command /resume",
            )
        })
        .map_err(|e| self.internal("cannot clear the kill switch", e))?;
        self.kill_state()
    }

    fn agent_names(&self) -> Vec<AgentName> {
        self.inner
            .config
            .agents
            .iter()
            .map(|a| a.name.clone())
            .collect()
    }

    fn channel_destinations(&self) -> Vec<Destination> {
        let c = &self.inner.config;
        let mut out = Vec::new();
        if let Some(d) = &c.discord {
            out.extend(
                d.channels
                    .keys()
                    .chain(d.webhooks.keys())
                    .map(|a| Destination::new(Platform::Discord, a)),
            );
        }
        if let Some(t) = &c.telegram {
            out.extend(
                t.chats
                    .keys()
                    .map(|a| Destination::new(Platform::Telegram, a)),
            );
        }
        out
    }

    fn active_mute_ids(&self) -> Vec<MuteId> {
        let now = Utc::now();
        self.inner
            .status
            .read()
            .map(|s| {
                s.mutes
                    .into_iter()
                    .filter(|m| m.is_active(now))
                    .map(|m| m.id)
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn pending_approval_ids(&self) -> Vec<ApprovalId> {
        self.pending_approvals(Utc::now())
            .await
            .map(|a| a.into_iter().map(|a| a.id).collect())
            .unwrap_or_default()
    }
}

/// The lower crates' messages are clauses; chat replies are sentences.
fn sentence(s: String) -> String {
    let mut s = s.trim().to_string();
    if let Some(first) = s.get(..1) {
        let upper = first.to_uppercase();
        s.replace_range(..1, &upper);
    }
    if !s.ends_with(['.', '!', '?']) {
        s.push('.');
    }
    s
}
