//! Autocomplete: the known values for an option, filtered by what the user
//! has typed so far, within Discord's limits (25 choices of ≤ 100 characters).

use switchyard_routing::{Category, Severity};

use crate::catalog::{self, COMMANDS, Completion};
use crate::fleet::Fleet;

/// Discord shows at most 25 autocomplete choices.
pub const MAX_CHOICES: usize = 25;
/// Discord's limit for a choice's name and value.
pub const MAX_CHOICE_CHARS: usize = 100;

/// Which completion a Discord option has, from the catalog.
pub fn completion_for(command: &str, subcommand: Option<&str>, option: &str) -> Option<Completion> {
    catalog::spec(command)?
        .option(subcommand, option)?
        .completion
}

/// The values for `option` that match `partial`: those starting with it
/// first, then those containing it, case-insensitively, without duplicates.
pub async fn complete(option: Completion, partial: &str, fleet: &impl Fleet) -> Vec<String> {
    let candidates: Vec<String> = match option {
        Completion::Category => categories(),
        Completion::Severity => Severity::ALL.iter().map(|s| s.to_string()).collect(),
        Completion::Command => COMMANDS.iter().map(|c| c.name.to_string()).collect(),
        Completion::MuteTarget => {
            let mut v = categories();
            v.extend(fleet.channel_destinations().iter().map(ToString::to_string));
            v
        }
        Completion::MuteId => fleet
            .active_mute_ids()
            .iter()
            .map(ToString::to_string)
            .collect(),
        Completion::ApprovalId => fleet
            .pending_approval_ids()
            .await
            .iter()
            .map(ToString::to_string)
            .collect(),
        Completion::Agent => fleet
            .agent_names()
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    filter(candidates, partial)
}

fn categories() -> Vec<String> {
    Category::KNOWN.iter().map(ToString::to_string).collect()
}

fn filter(candidates: Vec<String>, partial: &str) -> Vec<String> {
    let needle = partial.trim().to_lowercase();
    let mut prefix = Vec::new();
    let mut inner = Vec::new();
    for c in candidates {
        if c.is_empty()
            || c.chars().count() > MAX_CHOICE_CHARS
            || prefix.contains(&c)
            || inner.contains(&c)
        {
            continue;
        }
        let lower = c.to_lowercase();
        if lower.starts_with(&needle) {
            prefix.push(c);
        } else if lower.contains(&needle) {
            inner.push(c);
        }
    }
    prefix.extend(inner);
    prefix.truncate(MAX_CHOICES);
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_matches_come_first_and_limits_hold() {
        let candidates = vec![
            "system".into(),
            "discord:system".into(),
            "subagent_result".into(),
            "system".into(),
        ];
        assert_eq!(filter(candidates, "sy"), vec!["system", "discord:system"]);
        let many: Vec<String> = (0..100)
            .map(|i| format!("mute_{i}"))
            .chain(["x".repeat(101)])
            .collect();
        let got = filter(many, "");
        assert_eq!(got.len(), MAX_CHOICES);
        assert!(got.iter().all(|c| c.len() <= MAX_CHOICE_CHARS));
    }

    #[test]
    fn options_map_to_their_completion() {
        assert_eq!(
            completion_for("mute", None, "target"),
            Some(Completion::MuteTarget)
        );
        assert_eq!(
            completion_for("unmute", None, "id"),
            Some(Completion::MuteId)
        );
        assert_eq!(
            completion_for("route", None, "severity"),
            Some(Completion::Severity)
        );
        assert_eq!(
            completion_for("kill", None, "agent"),
            Some(Completion::Agent)
        );
        assert_eq!(completion_for("mute", None, "for"), None);
        assert_eq!(completion_for("task", Some("show"), "id"), None);
        assert_eq!(completion_for("nope", None, "id"), None);
    }
}
