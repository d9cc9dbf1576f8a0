//! `[console]`: the fleet console, a read-only page on each agent's listen
//! address. Off by default; on an address other than loopback it needs a
//! token, so the fleet's state is never open to the network by accident.

use super::agents::AgentSettings;
use super::raw::RawConsole;
use super::validator::Validator;

/// `[console]`, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleSettings {
    pub enabled: bool,
    /// The variable holding the token the page's requests must carry.
    pub token_env: Option<String>,
}

pub(super) fn console(
    v: &mut Validator,
    raw: RawConsole,
    agents: &[AgentSettings],
) -> ConsoleSettings {
    let enabled = raw.enabled.unwrap_or(false);
    if let Some(env) = &raw.token_env {
        v.env_name("console.token_env", env);
    }
    if enabled && raw.token_env.is_none() {
        for a in agents {
            if let Some(listen) = a.listen
                && !listen.ip().is_loopback()
            {
                v.problem(
                    "console.token_env",
                    format!(
                        "agent {} listens on {listen}, which other machines can reach: set token_env to a variable holding a token, or bind `listen` to 127.0.0.1",
                        a.name
                    ),
                );
            }
        }
    }
    ConsoleSettings {
        enabled,
        token_env: raw.token_env,
    }
}
