//! The policy gate: a task's risk score 0–100 as seed 004 scores it, the
//! reasons line by line, and whether a human must approve before it runs.
//!
//! Points (seed 004): declared risk low/medium/high +10/+30/+60; any
//! dangerous pattern +70 (once, every match listed); git push +20; force
//! flags +30; priority urgent +15; the sum capped at 100. At or above
//! `approval_threshold` a human approves; a dangerous pattern always needs
//! approval whatever the threshold, so it is refused unless approved.
//!
//! The patterns look at each step as the shell would see it: the skill name
//! followed by its args, joined by spaces (`git push --force origin main`).

use std::fmt::Write as _;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::spec::{Priority, Risk, TaskSpec};
use crate::config::PolicySettings;

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

/// A dangerous pattern: a name for the explanation and what it matches.
struct Pattern {
    name: &'static str,
    regex: Regex,
}

fn re(s: &str) -> Regex {
    Regex::new(s).expect("policy patterns are valid regexes")
}

/// Compiled once; the regexes are fixed at build time.
static DANGEROUS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let p = |name, regex: &str| Pattern {
        name,
        regex: re(regex),
    };
    vec![
        // rm with a recursive flag aimed at /, /*, ~, $HOME or *; and the explicit override.
        p(
            "destructive file operation (rm -r on / or ~)",
            r#"\brm\s+(?:-[^\s]*\s+)*-[a-zA-Z]*[rR][a-zA-Z]*\s+(?:-[^\s]*\s+)*["']?(?:/\*?|~/?\*?|\$HOME/?\*?|\*)["']?(?:\s|;|&|\||$)|--no-preserve-root|\brm\s+(?:-[^\s]*\s+)*--recursive\s+(?:-[^\s]*\s+)*(?:/\*?|~/?)(?:\s|$)"#,
        ),
        p(
            "filesystem format (mkfs)",
            r"\bmkfs(?:\.[a-z0-9]+)?\b|\bmke2fs\b|\bwipefs\b",
        ),
        p(
            "raw write to a device (dd of=/dev/...)",
            r"\bdd\b[^;&|]*\bof=/dev/(?:[sh]d|nvme|xvd|vd|mmcblk|disk|mapper|md|loop)",
        ),
        p(
            "write redirected to a disk device",
            r">\s*/dev/(?:[sh]d[a-z]|nvme\d|xvd[a-z]|vd[a-z]|mmcblk\d)",
        ),
        p(
            "shutdown or reboot",
            r"\b(?:shutdown|reboot|poweroff|halt)\b|\binit\s+[06]\b|\bsystemctl\s+(?:poweroff|reboot|halt)\b",
        ),
        p(
            "permission bomb (chmod 777 /)",
            r"\bchmod\s+(?:-[^\s]+\s+)*(?:0?777|a\+rwx|ugo\+rwx)\s+/(?:\s|$|\*)",
        ),
        p(
            "fork bomb",
            r":\s*\(\s*\)\s*\{[^}]*:\s*\|\s*:\s*&|:\|:&|\bwhile\s+true\s*;\s*do\s+[^;]*&\s*done",
        ),
        p(
            "code injection (eval/exec)",
            r"\beval\b|\bexec\b|\b(?:curl|wget)\b[^|;&]*\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b",
        ),
    ]
});

static GIT_PUSH: LazyLock<Regex> = LazyLock::new(|| re(r"\bgit\s+(?:-[^\s]+\s+)*push\b"));
static FORCE_FLAG: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:^|\s)(?:--force(?:-with-lease)?(?:=\S*)?|-f|-[rR]f|-f[rR])(?:\s|$)"));
/// A force push names main or master, or pushes `+main`/`+master`.
static FORCE_PUSH_MAIN: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\bgit\s+(?:-[^\s]+\s+)*push\b.*(?:(?:--force\S*|\s-f)\b.*\b(?:main|master)\b|\b(?:main|master)\b.*(?:--force|\s-f\b)|\s\+(?:refs/heads/)?(?:main|master)\b)",
    )
});

/// Score one spec.
pub fn score(spec: &TaskSpec, settings: &PolicySettings) -> PolicyReport {
    let mut lines = Vec::new();
    lines.push(PolicyLine {
        points: declared_risk_points(spec.risk),
        reason: format!("declared risk {}", spec.risk),
    });

    let commands: Vec<String> = spec
        .steps
        .iter()
        .map(|s| {
            std::iter::once(s.skill.as_str())
                .chain(s.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();

    let mut matched: Vec<String> = Vec::new();
    for (i, cmd) in commands.iter().enumerate() {
        for p in DANGEROUS.iter() {
            if p.regex.is_match(cmd) {
                matched.push(format!("{} in step {}", p.name, i + 1));
            }
        }
        if FORCE_PUSH_MAIN.is_match(cmd) {
            matched.push(format!("force-push to main/master in step {}", i + 1));
        }
    }
    let dangerous = !matched.is_empty();
    if dangerous {
        lines.push(PolicyLine {
            points: DANGEROUS_POINTS,
            reason: format!("dangerous pattern: {}", matched.join("; ")),
        });
    }

    let push_steps: Vec<String> = commands
        .iter()
        .enumerate()
        .filter(|(_, c)| GIT_PUSH.is_match(c))
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    if !push_steps.is_empty() {
        lines.push(PolicyLine {
            points: GIT_PUSH_POINTS,
            reason: format!("git push (step {})", push_steps.join(", ")),
        });
    }
    let force_steps: Vec<String> = commands
        .iter()
        .enumerate()
        .filter(|(_, c)| FORCE_FLAG.is_match(c))
        .map(|(i, _)| (i + 1).to_string())
        .collect();
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
