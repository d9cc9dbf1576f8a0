//! Schedules: `[[schedules]]` entries with a cron expression and a time
//! zone, each dropping an event or a task into an agent's inbox (the seeds'
//! morning briefing, weekly review, cron jobs).
//!
//! The agent a schedule names fires it from its housekeeping loop. The last
//! run of each schedule is kept in `<agent dir>/schedules.json`, so runs
//! missed while the agent was down are either skipped or caught up once, as
//! the schedule's `missed` policy says.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What to do with runs missed while the agent was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missed {
    /// Forget them; run at the next time due.
    Skip,
    /// Run once now, however many were missed.
    CatchUp,
}

/// A validated schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub cron_text: String,
    pub cron: cron::Schedule,
    pub timezone: Tz,
    pub agent: String,
    pub missed: Missed,
    /// The inbox item to drop (an event or a task).
    pub item: Value,
}

/// The file's shape of one `[[schedules]]` table.
#[derive(Debug, Default, Deserialize)]
pub struct RawSchedule {
    pub name: Option<String>,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    pub agent: Option<String>,
    pub missed: Option<String>,
    pub item: Option<Value>,
}

/// Parse a cron expression: the usual five fields (minute hour day month
/// weekday), or six/seven with seconds (and years) first.
pub fn parse_cron(text: &str) -> Result<cron::Schedule, String> {
    let fields = text.split_whitespace().count();
    let full = match fields {
        5 => format!("0 {text}"),
        6 | 7 => text.to_string(),
        _ => {
            return Err(format!(
                "{text:?} is not a cron expression: write five fields, minute hour day month weekday (e.g. \"0 7 * * Mon-Fri\")"
            ));
        }
    };
    cron::Schedule::from_str(&full).map_err(|e| format!("{text:?} is not a cron expression ({e})"))
}

impl RawSchedule {
    /// Check one schedule; every problem goes to `problems` with its key.
    pub fn validate(
        self,
        index: usize,
        agents: &[String],
        problems: &mut Vec<(String, String)>,
    ) -> Option<Schedule> {
        let key = |k: &str| format!("schedules[{index}].{k}");
        let before = problems.len();
        let name = self.name.unwrap_or_else(|| {
            problems.push((
                key("name"),
                "is missing: name the schedule (e.g. \"morning-briefing\")".into(),
            ));
            String::new()
        });
        let cron_text = self.cron.unwrap_or_default();
        let cron = parse_cron(&cron_text)
            .map_err(|e| problems.push((key("cron"), e)))
            .ok();
        let timezone = match self.timezone.as_deref().unwrap_or("UTC").parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                problems.push((
                    key("timezone"),
                    "is not an IANA time zone (e.g. \"Europe/Berlin\" or \"UTC\")".into(),
                ));
                None
            }
        };
        let agent = self.agent.unwrap_or_default();
        if !agents.contains(&agent) {
            problems.push((
                key("agent"),
                format!(
                    "{agent:?} is not an agent of this fleet ({})",
                    agents.join(", ")
                ),
            ));
        }
        let missed = match self.missed.as_deref().unwrap_or("skip") {
            "skip" => Missed::Skip,
            "catch_up" => Missed::CatchUp,
            other => {
                problems.push((
                    key("missed"),
                    format!("{other:?}: use \"skip\" or \"catch_up\""),
                ));
                Missed::Skip
            }
        };
        let item = match self.item {
            Some(Value::Object(m))
                if matches!(
                    m.get("kind").and_then(Value::as_str),
                    Some("event" | "task")
                ) =>
            {
                Some(Value::Object(m))
            }
            _ => {
                problems.push((
                    key("item"),
                    "must be a table with kind = \"event\" or kind = \"task\"".into(),
                ));
                None
            }
        };
        if problems.len() > before {
            return None;
        }
        Some(Schedule {
            name,
            cron_text,
            cron: cron?,
            timezone: timezone?,
            agent,
            missed,
            item: item?,
        })
    }
}

impl Schedule {
    /// The next `n` runs after `now`, in UTC.
    pub fn next_runs(&self, now: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        self.cron
            .after(&now.with_timezone(&self.timezone))
            .take(n)
            .map(|t| t.with_timezone(&Utc))
            .collect()
    }

    /// Runs due in `(since, now]`, at most `cap`.
    fn due_between(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        cap: usize,
    ) -> Vec<DateTime<Utc>> {
        self.cron
            .after(&since.with_timezone(&self.timezone))
            .map(|t| t.with_timezone(&Utc))
            .take_while(|t| *t <= now)
            .take(cap)
            .collect()
    }

    /// The inbox item for a run at `at`: its id names the schedule and the time.
    pub fn item_for(&self, at: DateTime<Utc>, note: Option<&str>) -> (String, Value) {
        let stamp = at.format("%Y%m%d_%H%M%S");
        let id = format!("sch_{}_{stamp}", self.name);
        let mut item = self.item.clone();
        if let Some(obj) = item.as_object_mut() {
            match obj.get("kind").and_then(Value::as_str) {
                Some("task") => {
                    let base = obj
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or(&self.name)
                        .to_string();
                    obj.insert("id".into(), format!("{base}_{stamp}").into());
                }
                _ => {
                    obj.insert(
                        "event_id".into(),
                        format!("evt_{}_{stamp}", self.name).into(),
                    );
                    obj.entry("source")
                        .or_insert_with(|| format!("schedule:{}", self.name).into());
                    if let Some(note) = note {
                        let body = obj
                            .get("body")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        obj.insert(
                            "body".into(),
                            format!("{body}\n({note})").trim().to_string().into(),
                        );
                    }
                }
            }
        }
        (id, item)
    }
}

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
    use chrono::TimeZone;

    fn schedule(cron: &str, tz: &str, missed: &str) -> Schedule {
        let raw = RawSchedule {
            name: Some("brief".into()),
            cron: Some(cron.into()),
            timezone: Some(tz.into()),
            agent: Some("manager".into()),
            missed: Some(missed.into()),
            item: Some(
                serde_json::json!({"kind": "event", "category": "briefing", "title": "Morning"}),
            ),
        };
        let mut problems = Vec::new();
        raw.validate(0, &["manager".into()], &mut problems)
            .unwrap_or_else(|| panic!("{problems:?}"))
    }

    #[test]
    fn five_field_cron_in_a_time_zone() {
        let s = schedule("0 7 * * Mon-Fri", "Europe/Berlin", "skip");
        // Friday 2026-11-20 12:00 UTC → next is Monday 07:00 Berlin = 06:00 UTC.
        let now = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
        assert_eq!(
            s.next_runs(now, 1),
            vec![Utc.with_ymd_and_hms(2026, 11, 23, 6, 0, 0).unwrap()]
        );
    }

    #[test]
    fn bad_schedules_report_every_problem() {
        let raw = RawSchedule {
            cron: Some("every morning".into()),
            timezone: Some("Mars/Olympus".into()),
            agent: Some("ghost".into()),
            missed: Some("maybe".into()),
            ..Default::default()
        };
        let mut problems = Vec::new();
        assert!(
            raw.validate(3, &["manager".into()], &mut problems)
                .is_none()
        );
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "schedules[3].name",
                "schedules[3].cron",
                "schedules[3].timezone",
                "schedules[3].agent",
                "schedules[3].missed",
                "schedules[3].item"
            ]
        );
    }

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
