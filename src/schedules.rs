//! Schedules: `[[schedules]]` entries with a cron expression and a time
//! zone, each dropping an event or a task into an agent's inbox (the seeds'
//! morning briefing, weekly review, cron jobs).
//!
//! The schedule types and their validation are configuration
//! ([`crate::config::Schedule`], re-exported here); this module fires them.
//! The agent a schedule names fires it from its housekeeping loop. The last
//! run of each schedule is kept in `<agent dir>/schedules.json`, so runs
//! missed while the agent was down are either skipped or caught up once, as
//! the schedule's `missed` policy says.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::config::{Missed, RawSchedule, Schedule, parse_cron};

/// The last run of each schedule, kept per agent.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    last_run: BTreeMap<String, DateTime<Utc>>,
}

/// Fires one agent's schedules.
pub struct Scheduler {
    schedules: Vec<Schedule>,
    state_path: PathBuf,
    workspace: PathBuf,
    agent: String,
    state: State,
}

/// One firing: what was dropped, or what was skipped.
#[derive(Debug)]
pub enum Fired {
    Dropped {
        schedule: String,
        item_id: String,
        missed: usize,
    },
    Skipped {
        schedule: String,
        missed: usize,
    },
}

impl Scheduler {
    pub fn new(
        all: &[Schedule],
        workspace: &Path,
        agent_dir: &Path,
        agent: &str,
        now: DateTime<Utc>,
    ) -> Scheduler {
        let schedules: Vec<Schedule> = all.iter().filter(|s| s.agent == agent).cloned().collect();
        let state_path = agent_dir.join("schedules.json");
        let mut state: State = std::fs::read(&state_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        // A schedule seen for the first time starts now: nothing is "missed" before it existed.
        for s in &schedules {
            state.last_run.entry(s.name.clone()).or_insert(now);
        }
        Scheduler {
            schedules,
            state_path,
            workspace: workspace.to_path_buf(),
            agent: agent.to_string(),
            state,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.schedules.is_empty()
    }

    /// A reloaded configuration's schedules replace these: a schedule kept
    /// (by name) keeps its last run, a new one starts now, a removed one
    /// stops. Returns the names now scheduled.
    pub fn replace(&mut self, all: &[Schedule], now: DateTime<Utc>) -> Vec<String> {
        self.schedules = all
            .iter()
            .filter(|s| s.agent == self.agent)
            .cloned()
            .collect();
        let names: Vec<String> = self.schedules.iter().map(|s| s.name.clone()).collect();
        self.state.last_run.retain(|name, _| names.contains(name));
        for name in &names {
            self.state.last_run.entry(name.clone()).or_insert(now);
        }
        names
    }

    /// Fire what is due at `now`. `slack` is how late a run may be and still
    /// count as on time (the caller's tick).
    pub fn tick(
        &mut self,
        now: DateTime<Utc>,
        slack: chrono::TimeDelta,
    ) -> anyhow::Result<Vec<Fired>> {
        let mut fired = Vec::new();
        for s in &self.schedules {
            let since = self.state.last_run.get(&s.name).copied().unwrap_or(now);
            let due = s.due_between(since, now, 10_000);
            let Some(latest) = due.last().copied() else {
                continue;
            };
            let missed = due.iter().filter(|t| now - **t > slack).count();
            let on_time = now - latest <= slack;
            if on_time || s.missed == Missed::CatchUp {
                let note = (missed > 0).then(|| {
                    format!("catching up {missed} run(s) missed while the agent was down")
                });
                let (id, item) = s.item_for(latest, note.as_deref());
                crate::coord::drop_item(&self.workspace, &self.agent, &id, &item)?;
                fired.push(Fired::Dropped {
                    schedule: s.name.clone(),
                    item_id: id,
                    missed,
                });
            } else {
                fired.push(Fired::Skipped {
                    schedule: s.name.clone(),
                    missed,
                });
            }
            self.state.last_run.insert(s.name.clone(), now);
        }
        if !fired.is_empty() {
            let bytes = serde_json::to_vec_pretty(&self.state)?;
            let tmp = self.state_path.with_extension("json.tmp");
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &self.state_path)?;
        }
        Ok(fired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schedules::test_schedule as schedule;
    use chrono::TimeZone;

    fn run(missed: &str) -> (Vec<Fired>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        let agent_dir = ws.join("agents/manager");
        std::fs::create_dir_all(&agent_dir).unwrap();
        let s = schedule("0 * * * *", "UTC", missed);
        let start = Utc.with_ymd_and_hms(2026, 11, 21, 8, 30, 0).unwrap();
        Scheduler::new(std::slice::from_ref(&s), &ws, &agent_dir, "manager", start);
        // The agent was down for three hours and comes back at 11:30.
        let back = Utc.with_ymd_and_hms(2026, 11, 21, 11, 30, 0).unwrap();
        let mut sch = Scheduler::new(&[s], &ws, &agent_dir, "manager", back);
        // The first Scheduler never saved; simulate its last run at 08:30.
        sch.state.last_run.insert("brief".into(), start);
        let fired = sch.tick(back, chrono::TimeDelta::seconds(2)).unwrap();
        let inbox: Vec<String> = std::fs::read_dir(ws.join("agents/manager/inbox"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        (fired, inbox)
    }

    #[test]
    fn missed_runs_are_skipped_or_caught_up_once() {
        let (fired, inbox) = run("skip");
        assert!(
            matches!(fired[..], [Fired::Skipped { missed: 3, .. }]),
            "{fired:?}"
        );
        assert!(inbox.is_empty(), "{inbox:?}");
        let (fired, inbox) = run("catch_up");
        assert!(
            matches!(fired[..], [Fired::Dropped { missed: 3, .. }]),
            "{fired:?}"
        );
        assert_eq!(inbox.len(), 1, "{inbox:?}");
    }
}
