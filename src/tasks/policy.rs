//! The policy gate: a task's risk score 0–100 as seed 004 scores it, the
//! reasons line by line, and whether a human must approve before it runs.
//!
//! Points (seed 004): declared risk low/medium/high +10/+30/+60; any
//! dangerous pattern +70 (once, every match listed); git push +20; force
//! flags +30; priority urgent +15; the sum capped at 100. At or above
//! `approval_threshold` a human approves; a dangerous pattern always needs
//! approval whatever the threshold, so it is refused unless approved.
//!
//! Each step is read as the container would run it (the skill's command,
//! then the args) by `switchyard-policy`, which tokenizes and walks it as a
//! shell would (quotes, `sh -c`, `$(...)`, pipes into shells, wrappers such
//! as `sudo` and `env`): a command it cannot read counts as dangerous, so a
//! human decides.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use switchyard_policy::FindingKind;

use super::spec::{Priority, Risk, TaskSpec};
use crate::config::{PolicySettings, SkillSettings};

pub const DANGEROUS_POINTS: u8 = 70;
pub const GIT_PUSH_POINTS: u8 = 20;
pub const FORCE_FLAG_POINTS: u8 = 30;
pub const URGENT_POINTS: u8 = 15;

pub fn declared_risk_points(risk: Risk) -> u8 {
    match risk {
        Risk::Low => 10,
        Risk::Medium => 30,
        Risk::High => 60,
    }
}

/// One line of the explanation: the points and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyLine {
    pub points: u8,
    pub reason: String,
}

/// The gate's verdict on one spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyReport {
    pub task_id: String,
    /// 0–100, capped.
    pub score: u8,
    pub threshold: u8,
    pub lines: Vec<PolicyLine>,
    pub needs_approval: bool,
    /// A dangerous pattern matched: refused unless a human approves.
    pub dangerous: bool,
}

impl PolicyReport {
    /// The reasons as the approval request carries them: `declared risk high (+60)`.
    pub fn reasons(&self) -> Vec<String> {
        self.lines
            .iter()
            .map(|l| format!("{} (+{})", l.reason, l.points))
            .collect()
    }

    /// `switchyard policy check FILE`: the score, then one line per reason.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let verdict = if self.dangerous {
            "refused unless a human approves (dangerous pattern)"
        } else if self.needs_approval {
            "needs a human approval"
        } else {
            "runs without approval"
        };
        let _ = writeln!(
            out,
            "task {}: risk {}/100 (approval at {}): {verdict}",
            self.task_id, self.score, self.threshold
        );
        for line in &self.lines {
            let _ = writeln!(out, "  +{:<3} {}", line.points, line.reason);
        }
        let raw: u32 = self.lines.iter().map(|l| u32::from(l.points)).sum();
        if raw > 100 {
            let _ = writeln!(out, "  (sum {raw}, capped at 100)");
        }
        out
    }
}

/// What a step runs, as the container would run it: the skill's command
/// followed by the step's args. A skill the scorer does not know (no
/// configuration at hand) is read both ways it could be used, as a program
/// with those args and each arg as a shell script, and the union counts:
/// not knowing errs towards asking.
fn analyze_step(
    skill: &str,
    args: &[String],
    skills: &BTreeMap<String, SkillSettings>,
) -> switchyard_policy::Analysis {
    match skills.get(skill) {
        Some(s) if !s.command.is_empty() => {
            let argv: Vec<String> = s.command.iter().chain(args).cloned().collect();
            switchyard_policy::analyze_argv(&argv)
        }
        _ => {
            let argv: Vec<String> = std::iter::once(skill.to_string())
                .chain(args.iter().cloned())
                .collect();
            let mut all = switchyard_policy::analyze_argv(&argv);
            for arg in args {
                all.findings
                    .extend(switchyard_policy::analyze_script(arg).findings);
            }
            all
        }
    }
}

/// Score one spec. `skills` says what each step's skill runs (the
/// configuration's `[skills]`); see [`analyze_step`] for a skill it lacks.
pub fn score(
    spec: &TaskSpec,
    settings: &PolicySettings,
    skills: &BTreeMap<String, SkillSettings>,
) -> PolicyReport {
    let mut lines = Vec::new();
    lines.push(PolicyLine {
        points: declared_risk_points(spec.risk),
        reason: format!("declared risk {}", spec.risk),
    });

    let analyses: Vec<switchyard_policy::Analysis> = spec
        .steps
        .iter()
        .map(|s| analyze_step(&s.skill, &s.args, skills))
        .collect();

    let mut matched: Vec<String> = Vec::new();
    for (i, a) in analyses.iter().enumerate() {
        let mut seen = std::collections::BTreeSet::new();
        for f in &a.findings {
            let what = match &f.kind {
                FindingKind::Dangerous(d) => d.describe().to_string(),
                FindingKind::NotUnderstood(why) => {
                    format!("a command the gate cannot read ({why}), so a human decides")
                }
                FindingKind::GitPush | FindingKind::ForceFlag => continue,
            };
            if seen.insert(what.clone()) {
                matched.push(format!("{what} in step {}", i + 1));
            }
        }
    }
    let dangerous = !matched.is_empty();
    if dangerous {
        lines.push(PolicyLine {
            points: DANGEROUS_POINTS,
            reason: format!("dangerous pattern: {}", matched.join("; ")),
        });
    }

    let steps_where = |f: fn(&switchyard_policy::Analysis) -> bool| -> Vec<String> {
        analyses
            .iter()
            .enumerate()
            .filter(|(_, a)| f(a))
            .map(|(i, _)| (i + 1).to_string())
            .collect()
    };
    let push_steps = steps_where(|a| a.git_push());
    if !push_steps.is_empty() {
        lines.push(PolicyLine {
            points: GIT_PUSH_POINTS,
            reason: format!("git push (step {})", push_steps.join(", ")),
        });
    }
    let force_steps = steps_where(|a| a.force());
    if !force_steps.is_empty() {
        lines.push(PolicyLine {
            points: FORCE_FLAG_POINTS,
            reason: format!("force flag (step {})", force_steps.join(", ")),
        });
    }
    if spec.priority == Priority::Urgent {
        lines.push(PolicyLine {
            points: URGENT_POINTS,
            reason: "priority urgent".into(),
        });
    }

    let raw: u32 = lines.iter().map(|l| u32::from(l.points)).sum();
    let score = raw.min(100) as u8;
    PolicyReport {
        task_id: spec.id.to_string(),
        score,
        threshold: settings.approval_threshold,
        lines,
        needs_approval: dangerous || score >= settings.approval_threshold,
        dangerous,
    }
}

/// What a human said about a task that needed approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    Approved,
    Denied,
    Expired,
}

/// What the gate lets happen next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateDecision {
    Run,
    AwaitApproval,
    Blocked { reason: String },
}

/// Combine the report with the approval, if one has been decided.
pub fn gate(report: &PolicyReport, approval: Option<ApprovalDecision>) -> GateDecision {
    if !report.needs_approval {
        return GateDecision::Run;
    }
    match approval {
        None => GateDecision::AwaitApproval,
        Some(ApprovalDecision::Approved) => GateDecision::Run,
        Some(ApprovalDecision::Denied) => GateDecision::Blocked {
            reason: "approval denied".into(),
        },
        Some(ApprovalDecision::Expired) => GateDecision::Blocked {
            reason: "approval expired without a decision".into(),
        },
    }
}
