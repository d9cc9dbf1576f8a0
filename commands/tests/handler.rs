//! The handler over an in-memory fake fleet: every command from a permitted
//! and a refused caller, the audit records, and the replies built from the
//! fleet's data and errors.

use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use switchyard_commands::fleet::*;
use switchyard_commands::*;
use switchyard_routing::{Destination, Severity};

/// The fake fleet's futures are ready at once: poll them to completion
/// without a runtime (the commands crate has none).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap()
}

fn caller(user_id: u64, roles: &[u64]) -> Caller {
    Caller {
        platform: switchyard_routing::Platform::Telegram,
        user_id,
        display_name: format!("user{user_id}"),
        roles: roles.to_vec(),
    }
}

const STRANGER: u64 = 1;
const READER: u64 = 10;
const OPERATOR: u64 = 20;
const ADMIN: u64 = 30;
const APPROVER: u64 = 40;
const OPERATOR_ROLE: u64 = 200;

fn who(id: u64) -> Caller {
    match id {
        OPERATOR => caller(OPERATOR, &[OPERATOR_ROLE]),
        other => caller(other, &[]),
    }
}

fn access() -> AccessList {
    AccessList {
        read: vec![
            format!("user:{READER}").parse().unwrap(),
            format!("user:{APPROVER}").parse().unwrap(),
        ],
        operate: vec![format!("role:{OPERATOR_ROLE}").parse().unwrap()],
        admin: vec![format!("user:{ADMIN}").parse().unwrap()],
        approvers: vec![],
        chat: None,
    }
}

#[test]
fn who_may_chat_is_the_chat_class_or_else_the_operators() {
    let caller = |user_id: u64, roles: Vec<u64>| Caller {
        platform: switchyard_routing::Platform::Discord,
        user_id,
        display_name: "x".into(),
        roles,
    };
    let mut acl = access();
    // No `chat` class: whoever may operate (and admins), not readers.
    assert!(acl.may_chat(&caller(1, vec![OPERATOR_ROLE])));
    assert!(acl.may_chat(&caller(ADMIN, vec![])));
    assert!(!acl.may_chat(&caller(READER, vec![])));
    // A `chat` class names exactly who may; admins always may.
    acl.chat = Some(vec![format!("user:{READER}").parse().unwrap()]);
    assert!(acl.may_chat(&caller(READER, vec![])));
    assert!(acl.may_chat(&caller(ADMIN, vec![])));
    assert!(!acl.may_chat(&caller(1, vec![OPERATOR_ROLE])));
}

#[derive(Default)]
struct FakeFleet {
    mutes: Mutex<Vec<MuteInfo>>,
    next_id: Mutex<u32>,
    sent: Mutex<Vec<String>>,
    killed: Mutex<bool>,
    decided: Mutex<Option<(String, String)>>,
    approvals: usize,
    fail_status: bool,
    second_approver_needed: bool,
}

fn approval(i: usize) -> ApprovalInfo {
    ApprovalInfo {
        id: ApprovalId::parse(&format!("apr_{i}")).unwrap(),
        summary: format!("Deploy web-{i}"),
        risk: 75,
        reasons: vec!["git push (+20)".into()],
        requested_by: AgentName::parse("tech-lead").unwrap(),
        expires: now() + TimeDelta::minutes(30),
        buttons: Some(ApprovalTokens {
            approve: ButtonToken::new(format!("a{i}:opaque")).unwrap(),
            deny: ButtonToken::new(format!("d{i}:opaque")).unwrap(),
        }),
    }
}

impl Fleet for FakeFleet {
    fn is_approver(&self, caller: &Caller) -> bool {
        caller.user_id == APPROVER
    }
    async fn status(&self, now: DateTime<Utc>) -> Result<StatusSnapshot, FleetError> {
        if self.fail_status {
            return Err(FleetError::Internal {
                error_id: "E7Q2".into(),
            });
        }
        Ok(StatusSnapshot {
            conversations: Some(switchyard_commands::fleet::ConversationSpend {
                tokens_today: 1234,
                daily_budget: Some(200_000),
            }),
            schedules: vec![switchyard_commands::fleet::NextRun {
                name: "morning-briefing".into(),
                agent: "manager".into(),
                next: Some(now + TimeDelta::hours(3)),
            }],
            locks: vec![switchyard_commands::fleet::HeldLock {
                name: "repo:web-1".into(),
                holder: "tech-lead".into(),
                reason: "deploying".into(),
                until: now + TimeDelta::minutes(20),
            }],
            agents: vec![
                AgentStatus {
                    name: AgentName::parse("manager").unwrap(),
                    last_heartbeat: Some(now - TimeDelta::seconds(12)),
                    queue_depth: 3,
                    running_tasks: Some(1),
                    killed: false,
                },
                AgentStatus {
                    name: AgentName::parse("tech-lead").unwrap(),
                    last_heartbeat: Some(now - TimeDelta::minutes(10)),
                    queue_depth: 0,
                    running_tasks: None,
                    killed: false,
                },
            ],
            stale_after: TimeDelta::minutes(2),
            pending_deliveries: 10_000,
            failed_deliveries: 0,
            active_mutes: self.mutes.lock().unwrap().len() as u64,
            fleet_killed: *self.killed.lock().unwrap(),
            pending_approvals: self.approvals as u64,
        })
    }
    async fn create_mute(&self, r: MuteRequest<'_>) -> Result<MuteInfo, FleetError> {
        if r.target.to_string() == "action_required" && !r.force {
            return Err(FleetError::Rejected(
                "action_required messages cannot be muted without force: add `force` if you really mean it.".into(),
            ));
        }
        let mut n = self.next_id.lock().unwrap();
        *n += 1;
        let m = MuteInfo {
            id: format!("mute_{n}").parse::<MuteId>().unwrap(),
            target: r.target.clone(),
            until: r.until,
            reason: r.reason.map(str::to_string),
            created_by: r.by.display_name.clone(),
            force: r.force,
            held: 0,
        };
        self.mutes.lock().unwrap().push(m.clone());
        Ok(m)
    }
    async fn lift_mute(
        &self,
        id: &MuteId,
        _by: &Caller,
        _now: DateTime<Utc>,
    ) -> Result<LiftedMute, FleetError> {
        let mut mutes = self.mutes.lock().unwrap();
        let i = mutes.iter().position(|m| &m.id == id).ok_or_else(|| {
            FleetError::Rejected(format!(
                "No mute has the id {id}; /mutes lists the active ones."
            ))
        })?;
        Ok(LiftedMute {
            mute: mutes.remove(i),
            released: 3,
        })
    }
    async fn list_mutes(&self, _now: DateTime<Utc>) -> Result<Vec<MuteInfo>, FleetError> {
        Ok(self.mutes.lock().unwrap().clone())
    }
    async fn explain_route(&self, q: RouteQuery<'_>) -> Result<RouteExplanation, FleetError> {
        let mut destinations = vec![Destination::discord("alerts")];
        if q.severity == Severity::Critical {
            destinations.push(Destination::telegram("operator"));
        }
        Ok(RouteExplanation {
            destinations,
            decided_by: vec!["#2 \"alerts\"".into()],
            held_by: vec![],
            unmatched: !q.category.is_known(),
        })
    }
    async fn send_event(&self, r: SendRequest<'_>) -> Result<SentEvent, FleetError> {
        self.sent.lock().unwrap().push(r.title.to_string());
        Ok(SentEvent {
            event_id: "evt_20261121_100000_001".into(),
            destinations: vec![Destination::discord("system")],
            held: vec![Destination::discord("system")],
        })
    }
    async fn submit_task(
        &self,
        _: &str,
        _: &Caller,
        _: DateTime<Utc>,
    ) -> Result<TaskInfo, FleetError> {
        Err(FleetError::NotEnabled(
            "Tasks are not enabled on this fleet yet.".into(),
        ))
    }
    async fn list_tasks(&self) -> Result<Vec<TaskInfo>, FleetError> {
        Err(FleetError::NotEnabled(
            "Tasks are not enabled on this fleet yet.".into(),
        ))
    }
    async fn show_task(&self, _: &TaskId) -> Result<TaskDetail, FleetError> {
        Err(FleetError::NotEnabled(
            "Tasks are not enabled on this fleet yet.".into(),
        ))
    }
    async fn cancel_task(
        &self,
        _: &TaskId,
        _: &Caller,
        _: DateTime<Utc>,
    ) -> Result<TaskInfo, FleetError> {
        Err(FleetError::NotEnabled(
            "Tasks are not enabled on this fleet yet.".into(),
        ))
    }
    async fn pending_approvals(
        &self,
        _now: DateTime<Utc>,
    ) -> Result<Vec<ApprovalInfo>, FleetError> {
        Ok((0..self.approvals).map(approval).collect())
    }
    async fn decide_approval(
        &self,
        id: &ApprovalId,
        decision: Decision,
        by: &Caller,
        now: DateTime<Utc>,
    ) -> Result<(ApprovalInfo, DecisionOutcome), FleetError> {
        let info = approval(0);
        if &info.id != id {
            return Err(FleetError::Rejected(format!(
                "No approval request has the id {id}."
            )));
        }
        if self.second_approver_needed {
            return Ok((info, DecisionOutcome::AwaitingSecondApprover));
        }
        let mut decided = self.decided.lock().unwrap();
        if let Some((d, who)) = decided.as_ref() {
            return Ok((
                info,
                DecisionOutcome::AlreadyDecided {
                    decision: d.clone(),
                    by: who.clone(),
                    at: now,
                },
            ));
        }
        *decided = Some((decision.as_str().into(), by.display_name.clone()));
        Ok((info, DecisionOutcome::Decided { decision }))
    }
    async fn kill(
        &self,
        agent: Option<&AgentName>,
        _: &Caller,
        _: DateTime<Utc>,
    ) -> Result<KillState, FleetError> {
        *self.killed.lock().unwrap() = agent.is_none();
        Ok(KillState {
            fleet_killed: agent.is_none(),
            killed_agents: agent.cloned().into_iter().collect(),
            stopped_containers: 2,
        })
    }
    async fn resume(
        &self,
        _: Option<&AgentName>,
        _: &Caller,
        _: DateTime<Utc>,
    ) -> Result<KillState, FleetError> {
        *self.killed.lock().unwrap() = false;
        Ok(KillState {
            fleet_killed: false,
            killed_agents: vec![],
            stopped_containers: 0,
        })
    }
    fn agent_names(&self) -> Vec<AgentName> {
        vec![
            AgentName::parse("manager").unwrap(),
            AgentName::parse("tech-lead").unwrap(),
        ]
    }
    fn channel_destinations(&self) -> Vec<Destination> {
        vec![
            Destination::discord("system"),
            Destination::discord("alerts"),
            Destination::telegram("operator"),
        ]
    }
    fn active_mute_ids(&self) -> Vec<MuteId> {
        self.mutes
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.id.clone())
            .collect()
    }
    async fn pending_approval_ids(&self) -> Vec<ApprovalId> {
        (0..self.approvals).map(|i| approval(i).id).collect()
    }
}

fn run(text: &str, by: u64, fleet: &FakeFleet) -> Handled {
    let cmd = parse_text(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    block_on(handle(&cmd, &who(by), &access(), fleet, now()))
}

/// Every command, who may run it, and who may not.
fn matrix() -> Vec<(&'static str, u64, u64)> {
    vec![
        ("/status", READER, STRANGER),
        ("/mutes", READER, STRANGER),
        ("/route alert critical", READER, STRANGER),
        ("/approvals", READER, STRANGER),
        ("/help mute", READER, STRANGER),
        ("/mute system 2h noisy", OPERATOR, READER),
        ("/unmute mute_1", OPERATOR, READER),
        ("/send system hello", OPERATOR, READER),
        ("/task list", OPERATOR, READER),
        ("/approve apr_0", APPROVER, OPERATOR),
        ("/deny apr_0", APPROVER, ADMIN),
        ("/kill", ADMIN, OPERATOR),
        ("/resume manager", ADMIN, OPERATOR),
    ]
}

#[test]
fn every_command_runs_for_a_permitted_caller_and_is_refused_otherwise() {
    for (text, allowed, refused) in matrix() {
        let fleet = FakeFleet {
            approvals: 1,
            ..Default::default()
        };
        // /unmute needs a mute to lift.
        run("/mute system 1h", OPERATOR, &fleet);

        let ok = run(text, allowed, &fleet);
        assert_ne!(ok.reply.title, "Not allowed", "{text}: {:?}", ok.reply);
        assert!(
            matches!(
                ok.audit.outcome,
                AuditOutcome::Done | AuditOutcome::NotEnabled
            ),
            "{text}: {:?}",
            ok.audit.outcome
        );
        assert_eq!(ok.audit.caller.user_id, allowed);
        assert_eq!(ok.audit.at, now());

        let no = run(text, refused, &fleet);
        assert_eq!(no.reply.title, "Not allowed", "{text}");
        assert!(
            no.reply.ephemeral,
            "{text}: refusals are shown to the caller only"
        );
        assert!(no.reply.lines[0].starts_with(&format!(
            "You may not run /{}",
            text[1..].split(' ').next().unwrap()
        )));
        let AuditOutcome::Refused { reason } = &no.audit.outcome else {
            panic!("{text}: {:?}", no.audit.outcome)
        };
        assert_eq!(reason, &no.reply.lines[0]);
        assert_eq!(no.audit.caller.user_id, refused);
        assert_eq!(
            parse_text(&no.audit.command),
            parse_text(text),
            "the audit names the command"
        );
    }
}

#[test]
fn authorization_matrix_follows_the_classes() {
    let callers = [STRANGER, READER, OPERATOR, ADMIN, APPROVER];
    // read, operate, admin allowed per caller (classes only; approvers are the fleet's check).
    let expect = [
        (STRANGER, [false, false, false]),
        (READER, [true, false, false]),
        (OPERATOR, [true, true, false]),
        (ADMIN, [true, true, true]),
        (APPROVER, [true, false, false]),
    ];
    let samples = ["/status", "/mute system 1h", "/kill"];
    for (id, allowed) in expect {
        assert!(callers.contains(&id));
        for (sample, want) in samples.iter().zip(allowed) {
            let got = authorize(&parse_text(sample).unwrap(), &who(id), &access()).is_ok();
            assert_eq!(got, want, "user {id} running {sample}");
        }
    }
    let refusal = authorize(&parse_text("/kill").unwrap(), &who(OPERATOR), &access()).unwrap_err();
    assert_eq!(refusal.needed, Requirement::Class(PermissionClass::Admin));
    assert!(
        refusal.sentence.contains("admin access list"),
        "{}",
        refusal.sentence
    );
}

#[test]
fn a_reader_who_is_not_an_approver_cannot_decide() {
    let fleet = FakeFleet {
        approvals: 1,
        ..Default::default()
    };
    let h = run("/approve apr_0", READER, &fleet);
    assert_eq!(h.reply.title, "Not allowed");
    assert!(
        h.reply.lines[0].contains("only configured approvers"),
        "{}",
        h.reply.lines[0]
    );
    assert!(
        fleet.decided.lock().unwrap().is_none(),
        "nothing was decided"
    );
}

#[test]
fn mute_list_unmute_round_trip() {
    let fleet = FakeFleet::default();
    let h = run("/mute system 2h too noisy", OPERATOR, &fleet);
    assert_eq!(h.reply.title, "Muted system for 2h");
    assert!(!h.reply.ephemeral);
    assert!(
        h.reply.lines[0].contains("2026-11-21 12:00 UTC"),
        "{:?}",
        h.reply.lines
    );
    assert!(
        h.reply
            .fields
            .iter()
            .any(|f| f.name == "Reason" && f.value == "too noisy")
    );
    assert_eq!(h.audit.command, "/mute system 2h too noisy");

    let list = run("/mutes", READER, &fleet);
    assert_eq!(list.reply.title, "Active mutes (1)");
    assert!(
        list.reply.lines[0].starts_with("mute_1: system until 2026-11-21 12:00 UTC (2h left)"),
        "{:?}",
        list.reply.lines
    );

    let lifted = run("/unmute mute_1", OPERATOR, &fleet);
    assert_eq!(lifted.reply.title, "Lifted mute mute_1 (system)");
    assert!(
        lifted.reply.lines[0].contains("3 messages"),
        "{:?}",
        lifted.reply.lines
    );
    assert_eq!(run("/mutes", READER, &fleet).reply.title, "No active mutes");

    let again = run("/unmute mute_1", OPERATOR, &fleet);
    assert!(again.reply.ephemeral);
    assert!(
        matches!(&again.audit.outcome, AuditOutcome::Rejected { reason } if reason.contains("No mute has the id mute_1"))
    );
}

#[test]
fn fleet_refusals_are_ephemeral_sentences() {
    let fleet = FakeFleet::default();
    let h = run("/mute action_required 1h", OPERATOR, &fleet);
    assert!(h.reply.ephemeral);
    assert!(h.reply.lines[0].contains("without force"), "{:?}", h.reply);
    assert!(matches!(h.audit.outcome, AuditOutcome::Rejected { .. }));
    let forced = run("/mute action_required 1h force", OPERATOR, &fleet);
    assert!(matches!(forced.audit.outcome, AuditOutcome::Done));
    assert!(forced.reply.lines.iter().any(|l| l.starts_with("Forced")));
}

#[test]
fn internal_errors_show_only_the_error_id() {
    let fleet = FakeFleet {
        fail_status: true,
        ..Default::default()
    };
    let h = run("/status", READER, &fleet);
    assert_eq!(h.reply.title, "Something went wrong (error id E7Q2)");
    assert_eq!(h.reply.tone, Tone::Critical);
    assert!(h.reply.ephemeral);
    assert_eq!(
        h.audit.outcome,
        AuditOutcome::Failed {
            error_id: "E7Q2".into()
        }
    );
}

#[test]
fn tasks_say_plainly_when_not_enabled() {
    let fleet = FakeFleet::default();
    for text in [
        "/task list",
        "/task show t1",
        "/task cancel t1",
        "/task submit {\"steps\": []}",
    ] {
        let h = run(text, OPERATOR, &fleet);
        assert_eq!(h.reply.title, "Not enabled", "{text}");
        assert_eq!(
            h.reply.lines,
            vec!["Tasks are not enabled on this fleet yet.".to_string()]
        );
        assert_eq!(h.audit.outcome, AuditOutcome::NotEnabled);
    }
}

#[test]
fn status_shows_heartbeat_ages_and_flags_stale_agents() {
    let fleet = FakeFleet {
        approvals: 2,
        ..Default::default()
    };
    let h = run("/status", READER, &fleet);
    assert_eq!(
        h.reply.lines[0],
        "manager: heartbeat 12s ago, queue 3, 1 running"
    );
    assert_eq!(
        h.reply.lines[1],
        "tech-lead: heartbeat 10m ago (stale), queue 0"
    );
    assert_eq!(
        h.reply.lines[2],
        "lock repo:web-1 held by tech-lead for 20m (deploying)"
    );
    assert!(
        h.reply.lines[3].starts_with("schedule morning-briefing → manager in 3h"),
        "{}",
        h.reply.lines[3]
    );
    assert_eq!(h.reply.tone, Tone::Warning);
    let field = |name: &str| {
        h.reply
            .fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.clone())
    };
    assert_eq!(field("Pending deliveries").as_deref(), Some("10000"));
    assert_eq!(field("Kill switch").as_deref(), Some("off"));
    assert_eq!(
        field("Tokens today (conversations)").as_deref(),
        Some("1234 of 200000")
    );
    assert!(h.reply.fields.len() <= 25, "Discord allows 25 embed fields");

    run("/kill", ADMIN, &fleet);
    let killed = run("/status", READER, &fleet);
    assert_eq!(killed.reply.tone, Tone::Critical);
    assert!(
        killed
            .reply
            .fields
            .iter()
            .any(|f| f.value == "ENGAGED for the whole fleet")
    );
}

#[test]
fn kill_and_resume_report_the_switch() {
    let fleet = FakeFleet::default();
    let k = run("/kill", ADMIN, &fleet);
    assert_eq!(k.reply.title, "Kill switch engaged for the whole fleet");
    assert!(
        k.reply
            .lines
            .iter()
            .any(|l| l == "2 running container(s) stopped.")
    );
    let one = run("/kill manager", ADMIN, &fleet);
    assert_eq!(one.reply.title, "Kill switch engaged for agent manager");
    assert!(
        one.reply
            .fields
            .iter()
            .any(|f| f.value == "engaged for manager")
    );
    let r = run("/resume", ADMIN, &fleet);
    assert_eq!(r.reply.title, "Kill switch released for the whole fleet");
    assert_eq!(r.reply.tone, Tone::Success);
}

#[test]
fn approval_buttons_go_only_to_approvers_in_telegram_within_the_row_limit() {
    let fleet = FakeFleet {
        approvals: 7,
        ..Default::default()
    };
    // An approver in Telegram: buttons for the first five, the rest by id.
    let h = run("/approvals", APPROVER, &fleet);
    assert_eq!(h.reply.title, "Pending approvals (7)");
    assert_eq!(h.reply.buttons.len(), 5, "five rows at most");
    let row = &h.reply.buttons[0];
    assert_eq!(row[0].action, ButtonAction::Approve);
    assert_eq!(row[0].token.as_str(), "a0:opaque");
    assert_eq!(row[1].label, "Deny apr_0");
    assert!(h.reply.lines.iter().any(|l| l.contains("/approve ID")));
    assert!(
        h.reply.lines[0].contains("risk 75 high"),
        "{}",
        h.reply.lines[0]
    );
    assert!(
        !format!("{:?}", h.reply).contains("a0:opaque"),
        "tokens stay out of Debug output"
    );
    // A reader sees the list, never the buttons' secrets.
    let reader = run("/approvals", READER, &fleet);
    assert_eq!(reader.reply.title, "Pending approvals (7)");
    assert!(
        reader.reply.buttons.is_empty(),
        "{:?}",
        reader.reply.buttons
    );
    assert!(reader.reply.lines.iter().any(|l| l.contains("/approve ID")));
    // Nor an approver in Discord, where a component's custom_id is public.
    let mut discord = who(APPROVER);
    discord.platform = switchyard_routing::Platform::Discord;
    let cmd = parse_text("/approvals").unwrap();
    let d = block_on(handle(&cmd, &discord, &access(), &fleet, now()));
    assert!(d.reply.buttons.is_empty(), "{:?}", d.reply.buttons);
}

#[test]
fn the_first_decision_wins() {
    let fleet = FakeFleet {
        approvals: 1,
        ..Default::default()
    };
    let first = run("/approve apr_0", APPROVER, &fleet);
    assert_eq!(first.reply.title, "Approved apr_0: Deploy web-0");
    assert_eq!(first.reply.tone, Tone::Success);
    let second = run("/deny apr_0", APPROVER, &fleet);
    assert_eq!(second.reply.title, "apr_0 is already decided");
    assert!(
        second.reply.lines[0].contains("approved by user40"),
        "{:?}",
        second.reply.lines
    );
    assert!(second.reply.ephemeral);

    let two = FakeFleet {
        approvals: 1,
        second_approver_needed: true,
        ..Default::default()
    };
    assert!(
        run("/approve apr_0", APPROVER, &two).reply.lines[0].contains("second, different approver")
    );
}

#[test]
fn route_and_send_explain_destinations() {
    let fleet = FakeFleet::default();
    let r = run("/route alert critical", READER, &fleet);
    assert_eq!(r.reply.title, "Route for alert (critical)");
    assert_eq!(
        r.reply.lines,
        vec!["→ discord:alerts", "→ telegram:operator"]
    );
    assert_eq!(r.reply.tone, Tone::Critical);
    let unmatched = run("/route weird", READER, &fleet);
    assert!(
        unmatched
            .reply
            .lines
            .iter()
            .any(|l| l.contains("unmatched destination"))
    );

    let s = run(
        "/send system Nightly backup done\nAll 3 volumes.",
        OPERATOR,
        &fleet,
    );
    assert_eq!(s.reply.title, "Sent evt_20261121_100000_001 (system)");
    assert_eq!(s.reply.lines, vec!["→ discord:system (held by a mute)"]);
    assert_eq!(
        fleet.sent.lock().unwrap().as_slice(),
        ["Nightly backup done"]
    );
}

#[test]
fn help_is_generated_from_the_catalog() {
    let fleet = FakeFleet::default();
    let all = run("/help", READER, &fleet);
    assert_eq!(all.reply.lines.len(), COMMANDS.len() + 1);
    assert!(
        all.reply
            .lines
            .iter()
            .any(|l| l.starts_with("/mute <target> <duration> [reason...] [force] — "))
    );
    let one = run("/help mute", READER, &fleet);
    assert!(
        one.reply
            .lines
            .contains(&"Needs the operate permission.".to_string())
    );
    assert!(
        one.reply
            .lines
            .iter()
            .any(|l| l.starts_with("duration: How long"))
    );
    assert!(one.reply.to_telegram_html().contains("&lt;target&gt;"));
}

#[test]
fn usage_errors_are_audited_too() {
    let err = parse_text("/mute system forever").unwrap_err();
    let h = handle_usage_error("/mute system forever", &err, &who(OPERATOR), now());
    assert!(h.reply.ephemeral);
    assert!(h.reply.lines.iter().any(|l| l.starts_with("Usage: /mute")));
    assert!(
        matches!(h.audit.outcome, AuditOutcome::Usage { ref problem } if problem.contains("forever"))
    );
}

#[test]
fn autocomplete_uses_the_fleet() {
    let fleet = FakeFleet {
        approvals: 2,
        ..Default::default()
    };
    run("/mute system 1h", OPERATOR, &fleet);
    assert_eq!(
        block_on(complete(Completion::MuteTarget, "sys", &fleet)),
        vec!["system", "discord:system"]
    );
    assert_eq!(
        block_on(complete(Completion::MuteId, "", &fleet)),
        vec!["mute_1"]
    );
    assert_eq!(
        block_on(complete(Completion::Agent, "lead", &fleet)),
        vec!["tech-lead"]
    );
    assert_eq!(
        block_on(complete(Completion::ApprovalId, "apr", &fleet)),
        vec!["apr_0", "apr_1"]
    );
    assert_eq!(
        block_on(complete(Completion::Category, "AL", &fleet)),
        vec!["alert"]
    );
    assert_eq!(
        block_on(complete(Completion::Severity, "", &fleet)),
        vec!["info", "warning", "critical"]
    );
}

#[test]
fn text_is_parsed_handled_and_audited_in_one_call() {
    let fleet = FakeFleet::default();
    let ok = block_on(handle_text(
        "/mute@switchyard_bot system 30m",
        &who(OPERATOR),
        &access(),
        &fleet,
        now(),
    ));
    assert_eq!(ok.reply.title, "Muted system for 30m");
    let bad = block_on(handle_text(
        "/mute system",
        &who(OPERATOR),
        &access(),
        &fleet,
        now(),
    ));
    assert!(matches!(bad.audit.outcome, AuditOutcome::Usage { .. }));
    assert_eq!(bad.audit.command, "/mute system");
}

#[test]
fn audit_records_serialize_for_the_store() {
    let fleet = FakeFleet::default();
    let h = run("/task show t1", OPERATOR, &fleet);
    let json = serde_json::to_value(&h.audit).unwrap();
    assert_eq!(json["command"], "/task show t1");
    assert_eq!(json["outcome"]["outcome"], "not_enabled");
    assert_eq!(json["caller"]["user_id"], OPERATOR);
    let cmd = serde_json::to_value(parse_text("/task show t1").unwrap()).unwrap();
    assert_eq!(
        cmd,
        serde_json::json!({"name": "task", "action": "show", "id": "t1"})
    );
}
