//! `[skills.NAME]`: the containers task steps run in, with their limits.

use std::collections::BTreeMap;
use std::time::Duration;

use super::raw::RawSkill;
use super::validator::Validator;

#[derive(Debug, Clone)]
pub struct SkillSettings {
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
            let skill = SkillSettings {
                image: s.image.unwrap_or_else(|| {
                    v.problem(
                        &format!("{key}.image"),
                        "is missing: name the container image the skill runs in",
                    );
                    String::new()
                }),
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
