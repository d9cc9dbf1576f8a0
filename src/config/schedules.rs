//! `[[schedules]]`: a cron expression in a time zone, the agent that fires
//! it, what to do with missed runs, and the inbox item each run drops. The
//! types and their checks live here; the scheduler that fires them is
//! `crate::schedules`.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_commands::AgentName;

use super::validator::Validator;

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
    pub agent: AgentName,
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
    let full = match text.split_whitespace().count() {
        // The usual five fields, checked in the user's own terms.
        5 => super::cron::to_crate_form(text)?,
        // With seconds (and a year): the `cron` crate's own form, as it is.
        6 | 7 => text.to_string(),
        _ => super::cron::to_crate_form(text)?,
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
            // A listed name that is not valid was reported under `agents`.
            agent: AgentName::parse(&agent).ok()?,
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
    pub(crate) fn due_between(
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

/// `[[schedules]]`, checked against the fleet's agent names; each problem
/// goes to the same collector as the rest of the file.
pub(super) fn schedules(
    v: &mut Validator,
    raw: Vec<RawSchedule>,
    agent_names: &[String],
) -> Vec<Schedule> {
    let mut problems = Vec::new();
    let schedules = raw
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| r.validate(i, agent_names, &mut problems))
        .collect();
    for (key, message) in problems {
        v.problem(&key, message);
    }
    schedules
}

/// A valid schedule for tests: a morning briefing for `manager`.
#[cfg(test)]
pub(crate) fn test_schedule(cron: &str, tz: &str, missed: &str) -> Schedule {
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    use super::test_schedule as schedule;

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
}
