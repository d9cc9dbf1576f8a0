//! `[github]`: the API endpoint, the token's variable, the monitor's pace,
//! what makes a review thread critical and which paths need UI evidence.

use std::time::Duration;

use super::raw::RawGithub;
use super::validator::Validator;

pub(super) const GITHUB_PUBLIC_API: &str = "https://api.github.com";

/// The markers that make a review thread critical when none are configured.
pub const DEFAULT_CRITICAL_MARKERS: &[&str] = &["critical", "blocker", "🚨"];

#[derive(Debug, Clone)]
pub struct GithubSettings {
    pub api_base: String,
    pub token_env: String,
    pub interval: Duration,
    /// A review thread whose first comment has one of these (a word, matched
    /// whole and case-insensitively, or an emoji) is critical; empty: threads
    /// are not read.
    pub critical_markers: Vec<String>,
    /// At most this often, review threads are read again for a PR that did
    /// not change (GraphQL answers are not conditional and cost points).
    pub threads_interval: Duration,
    /// Paths whose change needs a screenshot in the PR description, for
    /// tasks whose record has no `uiPaths`.
    pub ui_paths: Vec<String>,
}

pub(super) fn github(v: &mut Validator, g: RawGithub) -> GithubSettings {
    GithubSettings {
        api_base: v.url("github.api_base", g.api_base, GITHUB_PUBLIC_API),
        token_env: match g.token_env {
            Some(e) => {
                v.env_name("github.token_env", &e);
                e
            }
            None => "GITHUB_TOKEN".into(),
        },
        interval: v.duration("github.interval", g.interval, "10m"),
        critical_markers: {
            let markers = g.critical_markers.unwrap_or_else(|| {
                DEFAULT_CRITICAL_MARKERS
                    .iter()
                    .map(|m| m.to_string())
                    .collect()
            });
            for (i, m) in markers.iter().enumerate() {
                if m.trim().is_empty() || m.chars().count() > 40 {
                    v.problem(
                        &format!("github.critical_markers[{i}]"),
                        "must be a word or an emoji of 1 to 40 characters",
                    );
                }
            }
            markers
        },
        threads_interval: v.duration("github.threads_interval", g.threads_interval, "30m"),
        ui_paths: {
            let paths = g.ui_paths.unwrap_or_default();
            for (i, p) in paths.iter().enumerate() {
                if p.trim().is_empty() || p.trim() == "*" {
                    v.problem(
                        &format!("github.ui_paths[{i}]"),
                        "must be a folder (web/), a file ending (*.css) or a path",
                    );
                }
            }
            paths
        },
    }
}
