//! The one handler both platforms call: authorize, ask the [`Fleet`],
//! build the neutral [`Reply`], and the [`AuditRecord`] the runtime stores.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::access::{AccessList, Caller, Refusal, authorize};
use crate::catalog::{self, Requirement};
use crate::command::{Command, TaskCommand, UsageError};
use crate::duration::format_age;
use crate::fleet::{
    ApprovalInfo, Decision, DecisionOutcome, Fleet, FleetError, KillState, MuteInfo, MuteRequest,
    RouteQuery, SendRequest, StatusSnapshot, TaskInfo,
};
use crate::reply::{Button, ButtonAction, Reply, Tone};

/// Discord allows five rows of buttons per message; one row per request.
pub const MAX_APPROVAL_BUTTON_ROWS: usize = 5;

/// How a command ended, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AuditOutcome {
    Done,
    /// The caller lacked the permission.
    Refused {
        reason: String,
    },
    /// The input did not parse.
    Usage {
        problem: String,
    },
    /// The fleet turned it down for a reason the user can fix.
    Rejected {
        reason: String,
    },
    NotEnabled,
    Failed {
        error_id: String,
    },
}

/// One row of the audit trail: who ran what, when, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    pub caller: Caller,
    /// The canonical text form of the command (or the raw text for a usage error).
    pub command: String,
    pub outcome: AuditOutcome,
}

/// A reply and its audit record: the runtime sends one and stores the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handled {
    pub reply: Reply,
    pub audit: AuditRecord,
}

/// Runs one command for one caller.
pub async fn handle(
    command: &Command,
    caller: &Caller,
    access: &AccessList,
    fleet: &impl Fleet,
    now: DateTime<Utc>,
) -> Handled {
    let audit = |outcome| AuditRecord {
        at: now,
        caller: caller.clone(),
        command: command.to_string(),
        outcome,
    };
    let refused = |r: Refusal| Handled {
        reply: Reply::new("Not allowed")
            .line(r.sentence.clone())
            .tone(Tone::Warning)
            .ephemeral(),
        audit: audit(AuditOutcome::Refused { reason: r.sentence }),
    };
    if let Err(r) = authorize(command, caller, access) {
        return refused(r);
    }
    if matches!(command.requirement(), Requirement::Approver(_)) && !fleet.is_approver(caller) {
        return refused(Refusal::not_approver(command.name(), caller));
    }
    match run(command, caller, fleet, now).await {
        Ok(reply) => Handled {
            reply,
            audit: audit(AuditOutcome::Done),
        },
        Err(FleetError::Rejected(reason)) => Handled {
            reply: Reply::new(format!("/{} was not done", command.name()))
                .line(reason.clone())
                .tone(Tone::Warning)
                .ephemeral(),
            audit: audit(AuditOutcome::Rejected { reason }),
        },
        Err(FleetError::NotEnabled(reason)) => Handled {
            reply: Reply::new("Not enabled")
                .line(reason)
                .tone(Tone::Info)
                .ephemeral(),
            audit: audit(AuditOutcome::NotEnabled),
        },
        Err(FleetError::Internal { error_id }) => Handled {
            reply: Reply::new(format!("Something went wrong (error id {error_id})"))
                .line("The error is logged under that id; tell whoever runs the fleet.")
                .tone(Tone::Critical)
                .ephemeral(),
            audit: audit(AuditOutcome::Failed { error_id }),
        },
    }
}

/// Parses a text message (Telegram) and handles it; input that does not
/// parse gets the usage reply, audited like any other command.
pub async fn handle_text(
    text: &str,
    caller: &Caller,
    access: &AccessList,
    fleet: &impl Fleet,
    now: DateTime<Utc>,
) -> Handled {
    match crate::parse::parse_text(text) {
        Ok(command) => handle(&command, caller, access, fleet, now).await,
        Err(error) => handle_usage_error(text, &error, caller, now),
    }
}

/// The reply and audit record for input that did not parse.
pub fn handle_usage_error(
    raw: &str,
    error: &UsageError,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Handled {
    Handled {
        reply: Reply::new("That command is not quite right")
            .lines(
                std::iter::once(error.problem.clone())
                    .chain(error.usage.iter().map(|u| format!("Usage: {u}"))),
            )
            .tone(Tone::Warning)
            .ephemeral(),
        audit: AuditRecord {
            at: now,
            caller: caller.clone(),
            command: raw.chars().take(200).collect(),
            outcome: AuditOutcome::Usage {
                problem: error.problem.clone(),
            },
        },
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

async fn run(
    command: &Command,
    caller: &Caller,
    fleet: &impl Fleet,
    now: DateTime<Utc>,
) -> Result<Reply, FleetError> {
    Ok(match command {
        Command::Status => status_reply(&fleet.status(now).await?, now),
        Command::Mute {
            target,
            duration,
            reason,
            force,
        } => {
            let until = now + duration.as_delta();
            let request = MuteRequest {
                target,
                duration: *duration,
                until,
                reason: reason.as_deref(),
                force: *force,
                by: caller,
                now,
            };
            let mute = fleet.create_mute(request).await?;
            let mut reply = Reply::new(format!("Muted {} for {duration}", mute.target))
                .line(format!(
                    "Until {}. What it holds is posted as one digest when it ends.",
                    when(mute.until)
                ))
                .field("Mute id", mute.id.to_string(), true)
                .field("By", mute.created_by.clone(), true)
                .tone(Tone::Success);
            if let Some(r) = &mute.reason {
                reply = reply.field("Reason", r.clone(), false);
            }
            if mute.force {
                reply = reply.line("Forced: critical and action_required messages are held too.");
            }
            reply
        }
        Command::Unmute { id } => {
            let lifted = fleet.lift_mute(id, caller, now).await?;
            Reply::new(format!(
                "Lifted mute {} ({})",
                lifted.mute.id, lifted.mute.target
            ))
            .line(match lifted.released {
                0 => "It held no messages.".to_string(),
                1 => "The one message it held goes out now.".to_string(),
                n => format!("The {n} messages it held go out now as one digest."),
            })
            .tone(Tone::Success)
        }
        Command::Mutes => {
            let mutes = fleet.list_mutes(now).await?;
            if mutes.is_empty() {
                Reply::new("No active mutes")
            } else {
                Reply::new(format!("Active mutes ({})", mutes.len()))
                    .lines(mutes.iter().map(|m| mute_line(m, now)))
            }
        }
        Command::Route {
            category,
            severity,
            source,
        } => {
            let severity = severity.unwrap_or_default();
            let explanation = fleet
                .explain_route(RouteQuery {
                    category,
                    severity,
                    source: source.as_deref(),
                })
                .await?;
            let mut title = format!("Route for {category} ({severity})");
            if let Some(s) = source {
                title.push_str(&format!(" from {s}"));
            }
            let mut reply = Reply::new(title)
                .lines(explanation.destinations.iter().map(|d| format!("→ {d}")))
                .tone(Tone::from(severity))
                .ephemeral();
            if explanation.destinations.is_empty() {
                reply = reply.line("It goes nowhere.");
            }
            if explanation.unmatched {
                reply = reply
                    .line("No rule matches: it goes to the unmatched destination and is counted.");
            }
            reply = reply.lines(
                explanation
                    .held_by
                    .iter()
                    .map(|(d, id)| format!("Held at {d} by mute {id}.")),
            );
            if !explanation.decided_by.is_empty() {
                reply = reply.field("Decided by", explanation.decided_by.join("; "), false);
            }
            reply
        }
        Command::Send {
            category,
            title,
            body,
        } => {
            let sent = fleet
                .send_event(SendRequest {
                    category,
                    title,
                    body: body.as_deref(),
                    by: caller,
                    now,
                })
                .await?;
            Reply::new(format!("Sent {} ({category})", sent.event_id))
                .lines(sent.destinations.iter().map(|d| {
                    if sent.held.contains(d) {
                        format!("→ {d} (held by a mute)")
                    } else {
                        format!("→ {d}")
                    }
                }))
                .tone(Tone::Success)
        }
        Command::Task(task) => task_reply(task, caller, fleet, now).await?,
        Command::Approvals => {
            // The buttons carry the prompts' secrets: only an approver sees
            // them, and only in Telegram, whose callback data no reader of the
            // chat can see (a Discord component's custom_id is public).
            let buttons = caller.platform == switchyard_routing::Platform::Telegram
                && fleet.is_approver(caller);
            approvals_reply(&fleet.pending_approvals(now).await?, buttons, now)
        }
        Command::Approve { id } | Command::Deny { id } => {
            let decision = if matches!(command, Command::Approve { .. }) {
                Decision::Approved
            } else {
                Decision::Denied
            };
            let (approval, outcome) = fleet.decide_approval(id, decision, caller, now).await?;
            match outcome {
                DecisionOutcome::Decided { decision } => Reply::new(format!(
                    "{} {}: {}",
                    capitalised(decision.as_str()),
                    approval.id,
                    approval.summary
                ))
                .line(format!(
                    "Decided by {} at {}.",
                    caller.display_name,
                    when(now)
                ))
                .tone(if decision == Decision::Approved {
                    Tone::Success
                } else {
                    Tone::Warning
                }),
                DecisionOutcome::AwaitingSecondApprover => {
                    Reply::new(format!("Your approval of {} is recorded", approval.id))
                        .line("Its risk needs a second, different approver before it runs.")
                        .tone(Tone::Info)
                }
                DecisionOutcome::AlreadyDecided { decision, by, at } => {
                    Reply::new(format!("{} is already decided", approval.id))
                        .line(format!("It was {decision} by {by} at {}.", when(at)))
                        .tone(Tone::Info)
                        .ephemeral()
                }
                DecisionOutcome::Expired { at } => {
                    Reply::new(format!("{} has expired", approval.id))
                        .line(format!("It expired at {} and counts as denied.", when(at)))
                        .tone(Tone::Info)
                        .ephemeral()
                }
            }
        }
        Command::Kill { agent } => {
            let state = fleet.kill(agent.as_ref(), caller, now).await?;
            let scope = agent
                .as_ref()
                .map_or("the whole fleet".to_string(), |a| format!("agent {a}"));
            kill_lines(
                Reply::new(format!("Kill switch engaged for {scope}")),
                &state,
            )
            .line("No new work starts until /resume.")
            .tone(Tone::Critical)
        }
        Command::Resume { agent } => {
            let state = fleet.resume(agent.as_ref(), caller, now).await?;
            let scope = agent
                .as_ref()
                .map_or("the whole fleet".to_string(), |a| format!("agent {a}"));
            kill_lines(
                Reply::new(format!("Kill switch released for {scope}")),
                &state,
            )
            .tone(Tone::Success)
        }
        Command::Help { command } => match command.as_deref().and_then(catalog::spec) {
            Some(spec) => Reply::new(format!("/{}", spec.name))
                .lines(catalog::help_for(spec))
                .ephemeral(),
            None => Reply::new("Commands")
                .lines(catalog::help_overview())
                .line("Send /help NAME for one command's options.")
                .ephemeral(),
        },
    })
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The `/status` reply; the Discord status board shows the same.
pub fn status_reply(s: &StatusSnapshot, now: DateTime<Utc>) -> Reply {
    let mut worst = Tone::Success;
    let mut lines = Vec::with_capacity(s.agents.len());
    for a in &s.agents {
        let heartbeat = match a.last_heartbeat {
            None => {
                worst = louder(worst, Tone::Warning);
                "no heartbeat yet".to_string()
            }
            Some(t) if now - t > s.stale_after => {
                worst = louder(worst, Tone::Warning);
                format!("heartbeat {} ago (stale)", format_age(now - t))
            }
            Some(t) => format!("heartbeat {} ago", format_age(now - t)),
        };
        let mut line = format!("{}: {heartbeat}, queue {}", a.name, a.queue_depth);
        if let Some(n) = a.running_tasks {
            line.push_str(&format!(", {n} running"));
        }
        if a.killed {
            worst = louder(worst, Tone::Warning);
            line.push_str(", KILLED");
        }
        lines.push(line);
    }
    if s.agents.is_empty() {
        lines.push("No agent has reported yet.".to_string());
    }
    if s.failed_deliveries > 0 {
        worst = louder(worst, Tone::Warning);
    }
    let kill = if s.fleet_killed {
        worst = Tone::Critical;
        "ENGAGED for the whole fleet".to_string()
    } else {
        match s.agents.iter().filter(|a| a.killed).count() {
            0 => "off".to_string(),
            n => format!("engaged for {n} agent(s)"),
        }
    };
    for l in &s.locks {
        let why = if l.reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", l.reason)
        };
        lines.push(format!(
            "lock {} held by {} for {}{why}",
            l.name,
            l.holder,
            format_age(l.until - now)
        ));
    }
    for r in &s.schedules {
        match r.next {
            Some(t) => lines.push(format!(
                "schedule {} → {} in {} ({})",
                r.name,
                r.agent,
                format_age(t - now),
                t.format("%a %H:%M UTC")
            )),
            None => lines.push(format!("schedule {} → {}: no next run", r.name, r.agent)),
        }
    }
    let mut reply = Reply::new("Fleet status")
        .lines(lines)
        .field("Pending deliveries", s.pending_deliveries.to_string(), true)
        .field("Failed deliveries", s.failed_deliveries.to_string(), true)
        .field("Active mutes", s.active_mutes.to_string(), true)
        .field("Pending approvals", s.pending_approvals.to_string(), true)
        .field("Kill switch", kill, true);
    if let Some(c) = s.conversations {
        let spent = match c.daily_budget {
            Some(b) => format!("{} of {b}", c.tokens_today),
            None => c.tokens_today.to_string(),
        };
        reply = reply.field("Tokens today (conversations)", spent, true);
    }
    reply.tone(worst)
}

/// The more alarming of two tones.
fn louder(a: Tone, b: Tone) -> Tone {
    let rank = |t: Tone| match t {
        Tone::Success => 0,
        Tone::Info => 1,
        Tone::Warning => 2,
        Tone::Critical => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

fn mute_line(m: &MuteInfo, now: DateTime<Utc>) -> String {
    let mut line = format!(
        "{}: {} until {} ({} left), by {}",
        m.id,
        m.target,
        when(m.until),
        format_age(m.until - now),
        m.created_by
    );
    if m.force {
        line.push_str(", forced");
    }
    if let Some(r) = &m.reason {
        line.push_str(&format!(", \"{r}\""));
    }
    line.push_str(&format!(", {} held", m.held));
    line
}

fn task_line(t: &TaskInfo) -> String {
    let agent = t
        .agent
        .as_ref()
        .map(|a| format!(" on {a}"))
        .unwrap_or_default();
    format!(
        "{}: {} ({}{agent}, updated {})",
        t.id,
        t.summary,
        t.state,
        when(t.updated)
    )
}

async fn task_reply(
    task: &TaskCommand,
    caller: &Caller,
    fleet: &impl Fleet,
    now: DateTime<Utc>,
) -> Result<Reply, FleetError> {
    Ok(match task {
        TaskCommand::Submit { spec } => {
            let t = fleet.submit_task(spec, caller, now).await?;
            Reply::new(format!("Task {} submitted", t.id))
                .line(task_line(&t))
                .tone(Tone::Success)
        }
        TaskCommand::List => {
            let tasks = fleet.list_tasks().await?;
            if tasks.is_empty() {
                Reply::new("No tasks")
            } else {
                Reply::new(format!("Tasks ({})", tasks.len())).lines(tasks.iter().map(task_line))
            }
        }
        TaskCommand::Show { id } => {
            let d = fleet.show_task(id).await?;
            let mut reply = Reply::new(format!("Task {}", d.info.id))
                .line(task_line(&d.info))
                .lines(d.steps.iter().cloned())
                .field("Attempts", d.attempts.to_string(), true);
            if let Some(c) = d.cost_usd {
                reply = reply.field("Cost", format!("${c:.2}"), true);
            }
            reply
        }
        TaskCommand::Cancel { id } => {
            let t = fleet.cancel_task(id, caller, now).await?;
            Reply::new(format!("Task {} cancelled", t.id))
                .line(task_line(&t))
                .tone(Tone::Warning)
        }
    })
}

fn approvals_reply(pending: &[ApprovalInfo], buttons: bool, now: DateTime<Utc>) -> Reply {
    if pending.is_empty() {
        return Reply::new("No pending approvals");
    }
    let mut reply =
        Reply::new(format!("Pending approvals ({})", pending.len())).tone(Tone::Warning);
    for a in pending {
        let risk = risk_word(a.risk);
        reply = reply.line(format!(
            "{}: {} (risk {} {risk}, from {}, expires in {})",
            a.id,
            a.summary,
            a.risk,
            a.requested_by,
            format_age(a.expires - now)
        ));
        reply = reply.lines(a.reasons.iter().map(|r| format!("  · {r}")));
        if let Some(tokens) = a.buttons.as_ref().filter(|_| buttons)
            && reply.buttons.len() < MAX_APPROVAL_BUTTON_ROWS
        {
            reply.buttons.push(vec![
                Button {
                    label: format!("Approve {}", a.id),
                    action: ButtonAction::Approve,
                    token: tokens.approve.clone(),
                },
                Button {
                    label: format!("Deny {}", a.id),
                    action: ButtonAction::Deny,
                    token: tokens.deny.clone(),
                },
            ]);
        }
    }
    let with_buttons = pending.iter().filter(|a| a.buttons.is_some()).count();
    if !buttons {
        reply = reply.line(
            "Approvers decide with /approve ID or /deny ID, or with the buttons in Telegram.",
        );
    } else if with_buttons > MAX_APPROVAL_BUTTON_ROWS {
        reply = reply.line(format!(
            "Buttons are shown for the first {MAX_APPROVAL_BUTTON_ROWS}; use /approve ID or /deny ID for the rest."
        ));
    }
    reply
}

/// A risk score as a word, only for display (the policy gate owns the thresholds).
fn risk_word(risk: u8) -> &'static str {
    match risk {
        0..=39 => "low",
        40..=69 => "medium",
        _ => "high",
    }
}

fn kill_lines(reply: Reply, state: &KillState) -> Reply {
    let mut reply = reply;
    if state.stopped_containers > 0 {
        reply = reply.line(format!(
            "{} running container(s) stopped.",
            state.stopped_containers
        ));
    }
    let killed: Vec<String> = state
        .killed_agents
        .iter()
        .map(ToString::to_string)
        .collect();
    reply.field(
        "Kill switch now",
        match (state.fleet_killed, killed.is_empty()) {
            (true, _) => "engaged for the whole fleet".to_string(),
            (false, true) => "off".to_string(),
            (false, false) => format!("engaged for {}", killed.join(", ")),
        },
        false,
    )
}
