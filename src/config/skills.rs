//! `[skills.NAME]`: what task steps run in. A container skill (the default)
//! names an image and its limits; a session skill (`kind = "session"`) is a
//! command template for a coding agent in a tmux session on the host
//! (`[sessions]` says where its worktrees go).

use std::collections::BTreeMap;
use std::time::Duration;

use super::raw::RawSkill;
use super::validator::Validator;

/// Process names that are a bare shell: text typed there would be run, so
/// no session skill may expect one, and a pane running one is a dead agent.
pub const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "fish", "dash", "ksh", "mksh", "tcsh", "csh", "ash", "busybox", "login",
];

/// A session skill's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSkill {
    /// The process name the pane runs while the agent works: corrections
    /// are typed only then, and anything else is a dead session.
    pub agent_command: String,
}

#[derive(Debug, Clone)]
pub struct SkillSettings {
    /// `Some`: a tmux session template, not a container.
    pub session: Option<SessionSkill>,
    pub image: String,
    pub command: Vec<String>,
    pub network: bool,
    pub memory_bytes: i64,
    pub cpus: f64,
    pub pids: i64,
    pub timeout: Duration,
    /// Environment variables passed to the worker, by name only.
    pub env: Vec<String>,
    pub mounts: Vec<String>,
}

pub(super) fn skills(
    v: &mut Validator,
    raw: BTreeMap<String, RawSkill>,
    // Variables only agent processes hold, with what each is.
    agent_only: &[(&str, &str)],
) -> BTreeMap<String, SkillSettings> {
    raw.into_iter()
        .map(|(name, s)| {
            let key = format!("skills.{name}");
            let session = match s.kind.as_deref() {
                None | Some("container") => {
                    if s.agent_command.is_some() {
                        v.problem(
                            &format!("{key}.agent_command"),
                            "is for session skills (kind = \"session\")",
                        );
                    }
                    None
                }
                Some("session") => Some(session_skill(v, &key, &s)),
                Some(other) => {
                    v.problem(
                        &format!("{key}.kind"),
                        format!("{other:?} is not a skill kind: use \"container\" or \"session\""),
                    );
                    None
                }
            };
            let image = if session.is_some() {
                s.image.clone().unwrap_or_default()
            } else {
                s.image.clone().unwrap_or_else(|| {
                    v.problem(
                        &format!("{key}.image"),
                        "is missing: name the container image the skill runs in",
                    );
                    String::new()
                })
            };
            let skill = SkillSettings {
                session,
                image,
                command: s.command,
                network: s.network.unwrap_or(false),
                memory_bytes: v.bytes(
                    &format!("{key}.memory"),
                    s.memory.as_deref().unwrap_or("256m"),
                ),
                cpus: match s.cpus.unwrap_or(0.5) {
                    c if c > 0.0 && c <= 64.0 => c,
                    c => {
                        v.problem(&format!("{key}.cpus"), format!("{c} is not in (0, 64]"));
                        0.5
                    }
                },
                pids: match s.pids.unwrap_or(64) {
                    p if p > 0 => p,
                    p => {
                        v.problem(&format!("{key}.pids"), format!("{p} must be positive"));
                        64
                    }
                },
                timeout: v.duration(&format!("{key}.timeout"), s.timeout, "2m"),
                env: s
                    .env
                    .into_iter()
                    .inspect(|e| {
                        v.env_name(&format!("{key}.env"), e);
                        if let Some((_, what)) = agent_only.iter().find(|(name, _)| name == e) {
                            v.problem(
                                &format!("{key}.env"),
                                format!("{e} is {what}: it never leaves the agent processes, so no worker can be given it; remove it from the list"),
                            );
                        }
                    })
                    .collect(),
                mounts: s.mounts,
            };
            (name, skill)
        })
        .collect()
}

/// A session skill: a command (run directly, never through a shell), the
/// program to expect in the pane, and none of the container's settings.
fn session_skill(v: &mut Validator, key: &str, s: &RawSkill) -> SessionSkill {
    for (field, set) in [
        ("image", s.image.is_some()),
        ("network", s.network.is_some()),
        ("memory", s.memory.is_some()),
        ("cpus", s.cpus.is_some()),
        ("pids", s.pids.is_some()),
        ("mounts", !s.mounts.is_empty()),
    ] {
        if set {
            v.problem(
                &format!("{key}.{field}"),
                "is a container setting: a session skill runs in tmux on the host; remove it",
            );
        }
    }
    if s.command.is_empty() || s.command[0].trim().is_empty() {
        v.problem(
            &format!("{key}.command"),
            "is missing: a session skill runs this program in its tmux session, e.g. [\"/home/me/bin/run-agent.sh\", \"high\"]",
        );
    }
    let default = s
        .command
        .first()
        .and_then(|c| c.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    let agent_command = s.agent_command.clone().unwrap_or(default);
    if agent_command.is_empty()
        || agent_command.contains('/')
        || agent_command.contains(char::is_whitespace)
    {
        v.problem(
            &format!("{key}.agent_command"),
            format!(
                "{agent_command:?} must be a process name such as \"node\" (no path, no arguments)"
            ),
        );
    }
    if SHELLS.contains(&agent_command.as_str()) {
        v.problem(
            &format!("{key}.agent_command"),
            format!("{agent_command:?} is a shell: corrections are never typed into a shell; name the agent's own program"),
        );
    }
    SessionSkill { agent_command }
}
