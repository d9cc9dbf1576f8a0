//! A minimal runtime implementation of the commands' `Fleet` port for the
//! Telegram commands, until the shared `src/fleet.rs` (the Discord work)
//! lands: status, mutes and approvals are real (status file, store); the
//! rest answers "not enabled here". The port is synchronous; this type is
//! only used inside `spawn_blocking`, where it reaches the async store
//! through the runtime handle.

use chrono::{DateTime, Utc};
use switchyard_commands::fleet::{
    AgentStatus, ApprovalInfo, ApprovalTokens, Decision, DecisionOutcome, KillState, LiftedMute,
    MuteInfo, MuteRequest, RouteExplanation, RouteQuery, SendRequest, SentEvent, StatusSnapshot,
    TaskDetail, TaskInfo,
};
use switchyard_commands::{AgentName, ApprovalId, ButtonToken, Caller, Fleet, FleetError, MuteId};
use switchyard_routing::Destination;
use tokio::runtime::Handle;
use tracing::warn;

use super::approvals::callback_data;
use crate::approvals::{Approval, ApprovalStatus, ApprovalsContext, DecideOutcome, Vote};
use crate::coord::StatusFile;
use crate::store::DeliveryState;
use crate::store::approvals::Voter;

pub struct TelegramFleet {
    pub(crate) ctx: ApprovalsContext,
    pub(crate) approvers: Vec<i64>,
    pub(crate) rt: Handle,
}

fn internal(e: impl std::fmt::Display) -> FleetError {
    let error_id = crate::app::error_id();
    warn!(error_id = %error_id, error = %e, "a Telegram command failed");
    FleetError::Internal { error_id }
}

fn not_here(what: &str) -> FleetError {
    FleetError::NotEnabled(format!(
        "{what} is not available in Telegram yet; use the `switchyard` command line or Discord."
    ))
}

impl TelegramFleet {
    fn status_file(&self) -> Result<StatusFile, FleetError> {
        StatusFile::open(&self.ctx.config.fleet.workspace).map_err(internal)
    }

    fn info(&self, a: &Approval) -> Result<ApprovalInfo, FleetError> {
        let token = self
            .rt
            .block_on(self.ctx.store.approval_token(&a.id))
            .map_err(internal)?;
        let buttons = token.and_then(|t| {
            Some(ApprovalTokens {
                approve: ButtonToken::new(callback_data(Vote::Approve, &t)).ok()?,
                deny: ButtonToken::new(callback_data(Vote::Deny, &t)).ok()?,
            })
        });
        Ok(ApprovalInfo {
            id: ApprovalId::parse(&a.id).map_err(internal)?,
            summary: a.summary.clone(),
            risk: a.risk,
            reasons: a.reasons.clone(),
            requested_by: AgentName::parse(&a.requested_by)
                .or_else(|_| AgentName::parse("unknown"))
                .map_err(internal)?,
            expires: a.expires_at,
            buttons,
        })
    }

    fn mute_info(m: &switchyard_routing::Mute) -> Result<MuteInfo, FleetError> {
        Ok(MuteInfo {
            id: MuteId::parse(m.id.as_str()).map_err(internal)?,
            target: switchyard_commands::MuteTarget::parse(&m.target.to_string())
                .map_err(internal)?,
            until: m.expires_at,
            reason: (!m.reason.is_empty()).then(|| m.reason.clone()),
            created_by: m.created_by.clone(),
            force: m.force,
            held: 0,
        })
    }
}

impl Fleet for TelegramFleet {
    fn is_approver(&self, caller: &Caller) -> bool {
        i64::try_from(caller.user_id).is_ok_and(|id| self.approvers.contains(&id))
    }

    fn status(&self, now: DateTime<Utc>) -> Result<StatusSnapshot, FleetError> {
        let status = self.status_file()?.read().map_err(internal)?;
        let counts = self
            .rt
            .block_on(self.ctx.store.delivery_counts())
            .map_err(internal)?;
        let pending = self
            .rt
            .block_on(self.ctx.store.approvals(Some(ApprovalStatus::Pending)))
            .map_err(internal)?;
        let agents = self
            .ctx
            .config
            .agents
            .iter()
            .filter_map(|a| {
                let hb = status.agents.get(&a.name);
                Some(AgentStatus {
                    name: AgentName::parse(&a.name).ok()?,
                    last_heartbeat: hb.map(|h| h.last_beat),
                    queue_depth: hb.map_or(0, |h| h.queue_depth),
                    running_tasks: None,
                    killed: status.is_killed(&a.name).is_some(),
                })
            })
            .collect();
        Ok(StatusSnapshot {
            agents,
            stale_after: chrono::TimeDelta::from_std(self.ctx.config.fleet.stale_after)
                .unwrap_or_default(),
            pending_deliveries: counts.get(&DeliveryState::Pending).copied().unwrap_or(0),
            failed_deliveries: counts.get(&DeliveryState::Failed).copied().unwrap_or(0),
            active_mutes: status.mutes.iter().filter(|m| m.expires_at > now).count() as u64,
            fleet_killed: status.kill.fleet.is_some(),
            pending_approvals: pending.len() as u64,
        })
    }

    fn create_mute(&self, r: MuteRequest<'_>) -> Result<MuteInfo, FleetError> {
        let target: switchyard_routing::MuteTarget = r
            .target
            .as_str()
            .parse()
            .map_err(|e: switchyard_routing::MuteError| FleetError::Rejected(e.to_string()))?;
        let duration = r
            .duration
            .as_delta()
            .to_std()
            .map_err(|e| FleetError::Rejected(e.to_string()))?;
        let by = format!("telegram:{} ({})", r.by.user_id, r.by.display_name);
        let mute = crate::coord::mutes::create(
            &self.ctx.config,
            target,
            duration,
            &by,
            r.reason.unwrap_or(""),
            r.force,
            r.now,
        )
        .map_err(|e| match e {
            crate::coord::mutes::MuteCreateError::Refused(m) => FleetError::Rejected(m),
            crate::coord::mutes::MuteCreateError::Io(e) => internal(format!("{e:#}")),
        })?;
        Self::mute_info(&mute)
    }

    fn lift_mute(
        &self,
        id: &MuteId,
        _by: &Caller,
        now: DateTime<Utc>,
    ) -> Result<LiftedMute, FleetError> {
        match crate::coord::mutes::lift(&self.ctx.config, id.as_str(), now)
            .map_err(|e| internal(format!("{e:#}")))?
        {
            Some(m) => Ok(LiftedMute {
                mute: Self::mute_info(&m)?,
                released: 0,
            }),
            None => Err(FleetError::Rejected(format!(
                "No active mute has the id {id}; /mutes lists the active ones."
            ))),
        }
    }

    fn list_mutes(&self, now: DateTime<Utc>) -> Result<Vec<MuteInfo>, FleetError> {
        let status = self.status_file()?.read().map_err(internal)?;
        status
            .mutes
            .iter()
            .filter(|m| m.expires_at > now)
            .map(Self::mute_info)
            .collect()
    }

    fn explain_route(&self, _q: RouteQuery<'_>) -> Result<RouteExplanation, FleetError> {
        Err(not_here("/route"))
    }

    fn send_event(&self, _r: SendRequest<'_>) -> Result<SentEvent, FleetError> {
        Err(not_here("/send"))
    }

    fn submit_task(
        &self,
        _spec: &str,
        _by: &Caller,
        _now: DateTime<Utc>,
    ) -> Result<TaskInfo, FleetError> {
        Err(not_here("/task"))
    }

    fn list_tasks(&self) -> Result<Vec<TaskInfo>, FleetError> {
        Err(not_here("/task"))
    }

    fn show_task(&self, _id: &switchyard_commands::TaskId) -> Result<TaskDetail, FleetError> {
        Err(not_here("/task"))
    }

    fn cancel_task(
        &self,
        _id: &switchyard_commands::TaskId,
        _by: &Caller,
        _now: DateTime<Utc>,
    ) -> Result<TaskInfo, FleetError> {
        Err(not_here("/task"))
    }

    fn pending_approvals(&self, now: DateTime<Utc>) -> Result<Vec<ApprovalInfo>, FleetError> {
        let pending = self
            .rt
            .block_on(self.ctx.store.approvals(Some(ApprovalStatus::Pending)))
            .map_err(internal)?;
        pending
            .iter()
            .filter(|a| a.expires_at > now)
            .map(|a| self.info(a))
            .collect()
    }

    fn decide_approval(
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
        let voter = Voter {
            id: format!("telegram:{}", by.user_id),
            name: by.display_name.clone(),
        };
        let outcome = self
            .rt
            .block_on(
                self.ctx
                    .store
                    .decide_approval(id.as_str(), &voter, vote, false, now),
            )
            .map_err(internal)?;
        let a = self
            .rt
            .block_on(self.ctx.store.approval(id.as_str()))
            .map_err(internal)?
            .ok_or_else(|| {
                FleetError::Rejected(format!(
                    "No approval has the id {id}; /approvals lists the pending ones."
                ))
            })?;
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
            DecideOutcome::Unknown => {
                return Err(FleetError::Rejected(format!(
                    "No approval has the id {id}; /approvals lists the pending ones."
                )));
            }
        };
        Ok((self.info(&a)?, outcome))
    }

    fn kill(
        &self,
        _agent: Option<&AgentName>,
        _by: &Caller,
        _now: DateTime<Utc>,
    ) -> Result<KillState, FleetError> {
        Err(not_here("/kill"))
    }

    fn resume(
        &self,
        _agent: Option<&AgentName>,
        _by: &Caller,
        _now: DateTime<Utc>,
    ) -> Result<KillState, FleetError> {
        Err(not_here("/resume"))
    }

    fn agent_names(&self) -> Vec<AgentName> {
        self.ctx
            .config
            .agents
            .iter()
            .filter_map(|a| AgentName::parse(&a.name).ok())
            .collect()
    }

    fn channel_destinations(&self) -> Vec<Destination> {
        Vec::new()
    }

    fn active_mute_ids(&self) -> Vec<MuteId> {
        self.list_mutes(Utc::now())
            .map(|m| m.into_iter().map(|m| m.id).collect())
            .unwrap_or_default()
    }

    fn pending_approval_ids(&self) -> Vec<ApprovalId> {
        self.pending_approvals(Utc::now())
            .map(|a| a.into_iter().map(|a| a.id).collect())
            .unwrap_or_default()
    }
}
