//! The fleet's shared state: `<workspace>/status.json` (schema 1) and its
//! rendering for people, `STATUS.md`.
//!
//! It holds each agent's heartbeat, the named locks, the fleet-wide mutes,
//! the kill switch and a short audit history of kills and resumes. Every
//! change goes through [`StatusFile::update`]: an exclusive lock on
//! `status.json.lock` (`File::lock`, blocking), read, modify, write a
//! temporary file, fsync, rename. Readers take no lock: the rename means
//! they see the previous or the next whole file, never half of one. The
//! directory is not fsynced after the rename: after a power loss the file is
//! whole but may be one update old, which heartbeats repair within seconds
//! (and it halves the cost of an update).
//! Expired locks are swept on every update. The handle that reads and
//! changes it, on either home (the workspace directory or PostgreSQL), is
//! [`StatusFile`] (`status_file.rs`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::host_name;
pub use super::status_file::StatusFile;

/// The schema this build writes and understands.
pub const STATUS_SCHEMA: u32 = 1;
/// Kill/resume records kept for audit in the file (the agents' databases keep the full trail).
const HISTORY_LEN: usize = 100;
pub(super) const MAX_LOCK_NAME: usize = 128;

/// What an agent is doing, as its heartbeat says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    #[default]
    Idle,
    Busy,
    Paused,
    Killed,
    /// Shut down cleanly (the last heartbeat of a process).
    Stopped,
}

impl AgentState {
    pub const ALL: [AgentState; 5] = [
        AgentState::Idle,
        AgentState::Busy,
        AgentState::Paused,
        AgentState::Killed,
        AgentState::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Idle => "idle",
            AgentState::Busy => "busy",
            AgentState::Paused => "paused",
            AgentState::Killed => "killed",
            AgentState::Stopped => "stopped",
        }
    }
}

/// One agent's heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub pid: u32,
    pub host: String,
    pub version: String,
    pub state: AgentState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_task: Option<String>,
    #[serde(default)]
    pub queue_depth: u64,
    /// Temporary (dot-named) files in the inbox untouched for
    /// `fleet.stale_temp_after`: never taken, never moved, reported here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale_temp_files: Vec<String>,
    pub started_at: DateTime<Utc>,
    pub last_beat: DateTime<Utc>,
    /// Where the agent serves /healthz and /metrics, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// How the last reload of the configuration (SIGHUP) ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reload: Option<ReloadRecord>,
}

/// What a reload of the configuration did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadRecord {
    pub at: DateTime<Utc>,
    /// `applied`, `unchanged` or `refused` (the file has problems; nothing changed).
    pub outcome: String,
    /// What took effect at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied: Vec<String>,
    /// What changed in the file but takes a restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs_restart: Vec<String>,
    /// Why the file was refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl Heartbeat {
    /// A heartbeat of this process, idle, started and beating at `now`.
    pub fn current(now: DateTime<Utc>) -> Heartbeat {
        Heartbeat {
            pid: std::process::id(),
            host: host_name().to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            state: AgentState::Idle,
            current_task: None,
            queue_depth: 0,
            stale_temp_files: Vec::new(),
            started_at: now,
            last_beat: now,
            health: None,
            last_reload: None,
        }
    }
}

/// A named lock: who holds it, why, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub holder: String,
    pub reason: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Who pulled the kill switch, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillInfo {
    pub by: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// The kill switch: fleet-wide and per agent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KillSwitch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<KillInfo>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub agents: BTreeMap<String, KillInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KillAction {
    Kill,
    Resume,
}

/// One kill or resume, for audit. `agent: None` is the whole fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillRecord {
    pub action: KillAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub by: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// An agent whose last heartbeat is too old.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StalePeer {
    pub agent: String,
    pub last_beat: DateTime<Utc>,
    pub age: Duration,
    pub pid: u32,
    pub host: String,
}

/// The content of `status.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub schema: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub agents: BTreeMap<String, Heartbeat>,
    #[serde(default)]
    pub locks: BTreeMap<String, LockInfo>,
    /// Fleet-wide mutes (expired ones are swept by the next change).
    #[serde(default)]
    pub mutes: Vec<switchyard_routing::Mute>,
    /// Which notices have been posted for each mute, so exactly one of each goes out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mute_notices: BTreeMap<String, NoticesPosted>,
    #[serde(default)]
    pub kill: KillSwitch,
    #[serde(default)]
    pub history: Vec<KillRecord>,
    /// Fields written by a newer build of the same schema, kept as they were.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            schema: STATUS_SCHEMA,
            updated_at: None,
            agents: BTreeMap::new(),
            locks: BTreeMap::new(),
            mutes: Vec::new(),
            mute_notices: BTreeMap::new(),
            kill: KillSwitch::default(),
            history: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }
}

fn to_std(d: chrono::TimeDelta) -> Duration {
    d.to_std().unwrap_or_default()
}

impl Status {
    /// The kill that applies to `agent` (fleet-wide first), if any.
    pub fn is_killed(&self, agent: &str) -> Option<&KillInfo> {
        self.kill
            .fleet
            .as_ref()
            .or_else(|| self.kill.agents.get(agent))
    }

    /// Agents whose last beat is older than `stale_after` at `now`, except those
    /// that said they were killed (a killed agent may stop beating on purpose).
    pub fn stale_peers(&self, now: DateTime<Utc>, stale_after: Duration) -> Vec<StalePeer> {
        self.agents
            .iter()
            // A killed agent beats no more by design; a stopped one shut down cleanly.
            .filter(|(_, hb)| !matches!(hb.state, AgentState::Killed | AgentState::Stopped))
            .filter_map(|(name, hb)| {
                let age = to_std(now - hb.last_beat);
                (age > stale_after).then(|| StalePeer {
                    agent: name.clone(),
                    last_beat: hb.last_beat,
                    age,
                    pid: hb.pid,
                    host: hb.host.clone(),
                })
            })
            .collect()
    }

    /// Whether `agent` is up: it has a heartbeat that is neither stale nor
    /// a clean stop or a kill.
    pub fn is_live(&self, agent: &str, now: DateTime<Utc>, stale_after: Duration) -> bool {
        self.agents.get(agent).is_some_and(|hb| {
            !matches!(hb.state, AgentState::Stopped | AgentState::Killed)
                && to_std(now - hb.last_beat) <= stale_after
        })
    }

    /// The agent that speaks for the fleet now (stale peers, mute notices):
    /// the first of `order` that is live, `me` counting as live (it is the
    /// one asking). When the first is down the next live one takes over,
    /// until the first is back.
    pub fn acting_announcer<'a>(
        &self,
        order: impl IntoIterator<Item = &'a str>,
        me: &str,
        now: DateTime<Utc>,
        stale_after: Duration,
    ) -> Option<&'a str> {
        order
            .into_iter()
            .find(|a| *a == me || self.is_live(a, now, stale_after))
    }

    /// Locks that have not expired at `now`.
    pub fn active_locks(&self, now: DateTime<Utc>) -> impl Iterator<Item = (&String, &LockInfo)> {
        self.locks.iter().filter(move |(_, l)| l.expires_at > now)
    }

    pub(super) fn sweep(&mut self, now: DateTime<Utc>) {
        self.locks.retain(|_, l| l.expires_at > now);
    }

    pub(super) fn record(&mut self, record: KillRecord) {
        self.history.push(record);
        if self.history.len() > HISTORY_LEN {
            let extra = self.history.len() - HISTORY_LEN;
            self.history.drain(..extra);
        }
    }

    /// STATUS.md: the same data for people.
    pub fn render_markdown(&self, now: DateTime<Utc>, stale_after: Duration) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# Fleet status\n");
        let _ = writeln!(
            md,
            "Generated from `status.json` (schema {}) at {}. Do not edit: changes are overwritten.\n",
            self.schema,
            now.format("%Y-%m-%d %H:%M:%S UTC")
        );
        let _ = writeln!(md, "## Kill switch\n");
        match &self.kill.fleet {
            Some(k) => {
                let _ = writeln!(
                    md,
                    "**FLEET KILLED** by {} at {}: {}\n",
                    cell(&k.by),
                    k.at.format("%Y-%m-%d %H:%M:%S"),
                    cell(&k.reason)
                );
            }
            None => md.push_str("Fleet: running.\n\n"),
        }
        for (agent, k) in &self.kill.agents {
            let _ = writeln!(
                md,
                "- `{agent}` killed by {} at {}: {}",
                cell(&k.by),
                k.at.format("%Y-%m-%d %H:%M:%S"),
                cell(&k.reason)
            );
        }
        if !self.kill.agents.is_empty() {
            md.push('\n');
        }
        let _ = writeln!(md, "## Agents\n");
        if self.agents.is_empty() {
            md.push_str("No heartbeats yet.\n\n");
        } else {
            md.push_str("| agent | state | task | queue | last beat | pid@host | version |\n|---|---|---|---|---|---|---|\n");
            let stale: Vec<String> = self
                .stale_peers(now, stale_after)
                .into_iter()
                .map(|p| p.agent)
                .collect();
            for (name, hb) in &self.agents {
                let age = to_std(now - hb.last_beat).as_secs();
                let flag = if stale.contains(name) {
                    " **STALE**"
                } else {
                    ""
                };
                let _ = writeln!(
                    md,
                    "| {name} | {}{flag} | {} | {} | {age}s ago | {}@{} | {} |",
                    hb.state.as_str(),
                    cell(hb.current_task.as_deref().unwrap_or("-")),
                    hb.queue_depth,
                    hb.pid,
                    cell(&hb.host),
                    cell(&hb.version)
                );
            }
            md.push('\n');
        }
        let _ = writeln!(md, "## Locks\n");
        let mut any = false;
        for (name, l) in self.active_locks(now) {
            if !any {
                md.push_str("| lock | holder | until | reason |\n|---|---|---|---|\n");
                any = true;
            }
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                cell(name),
                cell(&l.holder),
                l.expires_at.format("%Y-%m-%d %H:%M:%S"),
                cell(&l.reason)
            );
        }
        if !any {
            md.push_str("No locks held.\n");
        }
        // Ended and lifted mutes stay in the document until their notices and
        // digests went out; only the active ones are counted and shown.
        let active: Vec<&switchyard_routing::Mute> =
            self.mutes.iter().filter(|m| m.is_active(now)).collect();
        let _ = writeln!(md, "\n## Mutes\n");
        if active.is_empty() {
            md.push_str("No active mutes.\n");
        } else {
            let _ = writeln!(
                md,
                "{} active mute(s); `switchyard mutes` lists them.\n\n| mute | target | until | by | reason |\n|---|---|---|---|---|",
                active.len()
            );
            for m in active {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    m.id,
                    cell(&m.target.to_string()),
                    m.expires_at.format("%Y-%m-%d %H:%M:%S"),
                    cell(&m.created_by),
                    cell(&m.reason)
                );
            }
        }
        if !self.history.is_empty() {
            let _ = writeln!(md, "\n## Kill switch history (latest last)\n");
            for r in self.history.iter().rev().take(10).rev() {
                let _ = writeln!(
                    md,
                    "- {} {:?} {} by {}: {}",
                    r.at.format("%Y-%m-%d %H:%M:%S"),
                    r.action,
                    r.agent.as_deref().unwrap_or("fleet"),
                    cell(&r.by),
                    cell(&r.reason)
                );
            }
        }
        md
    }
}

/// Keeps a table cell on one line and its pipes from breaking the table.
fn cell(s: &str) -> String {
    s.replace(['\n', '\r'], " ").replace('|', "\\|")
}

/// The notices already posted for one mute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticesPosted {
    #[serde(default)]
    pub started: bool,
    #[serde(default)]
    pub ending: bool,
    #[serde(default)]
    pub ended: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(at: DateTime<Utc>, state: AgentState) -> Heartbeat {
        Heartbeat {
            state,
            ..Heartbeat::current(at)
        }
    }

    #[test]
    fn stale_peers_respects_the_threshold_and_killed_agents() {
        let now = Utc::now();
        let mut s = Status::default();
        s.agents.insert(
            "fresh".into(),
            hb(now - chrono::Duration::seconds(5), AgentState::Busy),
        );
        s.agents.insert(
            "old".into(),
            hb(now - chrono::Duration::seconds(31), AgentState::Idle),
        );
        s.agents.insert(
            "off".into(),
            hb(now - chrono::Duration::seconds(300), AgentState::Killed),
        );
        let stale = s.stale_peers(now, Duration::from_secs(30));
        assert_eq!(
            stale.iter().map(|p| p.agent.as_str()).collect::<Vec<_>>(),
            ["old"]
        );
        assert!(stale[0].age >= Duration::from_secs(31));
    }

    #[test]
    fn markdown_marks_stale_agents_and_escapes_cells() {
        let now = Utc::now();
        let mut s = Status::default();
        s.agents.insert(
            "old".into(),
            hb(now - chrono::Duration::seconds(90), AgentState::Idle),
        );
        s.locks.insert(
            "deploy".into(),
            LockInfo {
                holder: "ops".into(),
                reason: "a | b\nc".into(),
                acquired_at: now,
                expires_at: now + chrono::Duration::seconds(60),
            },
        );
        let md = s.render_markdown(now, Duration::from_secs(30));
        assert!(md.contains("**STALE**"), "{md}");
        assert!(md.contains("a \\| b c"), "{md}");
    }

    #[test]
    fn markdown_counts_only_active_mutes() {
        let now = Utc::now();
        let mut s = Status::default();
        let mute = |id: &str, ends: i64| switchyard_routing::Mute {
            id: id.parse().unwrap(),
            target: switchyard_routing::MuteTarget::Category(switchyard_routing::Category::System),
            created_at: now - chrono::Duration::seconds(600),
            expires_at: now + chrono::Duration::seconds(ends),
            created_by: "ana".into(),
            reason: "maintenance".into(),
            force: false,
        };
        // Two ended (one expired, one lifted: its end set to the lift), one active.
        s.mutes = vec![
            mute("mute_20261203100000_0001", -300),
            mute("mute_20261203100000_0002", 0),
            mute("mute_20261203100000_0003", 600),
        ];
        let md = s.render_markdown(now, Duration::from_secs(30));
        assert!(md.contains("1 active mute(s)"), "{md}");
        assert!(md.contains("| mute_20261203100000_0003 | system |"), "{md}");
        assert!(!md.contains("mute_20261203100000_0001"), "{md}");
        s.mutes.truncate(2);
        assert!(
            s.render_markdown(now, Duration::from_secs(30))
                .contains("No active mutes.")
        );
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let text = r#"{"schema":1,"agents":{},"future_field":{"x":1}}"#;
        let s: Status = serde_json::from_str(text).unwrap();
        let back = serde_json::to_value(&s).unwrap();
        assert_eq!(back["future_field"]["x"], 1);
    }
}
