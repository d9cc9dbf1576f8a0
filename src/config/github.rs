//! `[github]`: the API endpoint, the token's variable and the monitor's pace.

use std::time::Duration;

use super::raw::RawGithub;
use super::validator::Validator;

pub(super) const GITHUB_PUBLIC_API: &str = "https://api.github.com";

#[derive(Debug, Clone)]
pub struct GithubSettings {
    pub api_base: String,
    pub token_env: String,
    pub interval: Duration,
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
    }
}
