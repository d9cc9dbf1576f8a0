//! `[[agents]]`: the fleet's agents, their token variables and listen
//! addresses. A token belongs to exactly one agent, and one agent owns
//! Telegram.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use switchyard_commands::AgentName;

use super::raw::RawAgent;
use super::validator::Validator;

#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub name: AgentName,
    pub discord_token_env: Option<String>,
    pub telegram_token_env: Option<String>,
    pub listen: Option<SocketAddr>,
    /// The responder that answers when this agent is spoken to (`None`: it does not converse).
    pub responder: Option<String>,
}

/// `telegram`: whether `[telegram]` is configured (then only one agent may
/// name a Telegram token). Returns the agents whose name is valid, and every
/// name as written (a missing one as `agent<i>`) for the checks that list them.
pub(super) fn agents(
    v: &mut Validator,
    raw: Vec<RawAgent>,
    telegram: bool,
) -> (Vec<AgentSettings>, Vec<String>) {
    if raw.is_empty() {
        v.problem(
            "agents",
            "no [[agents]] defined: a fleet needs at least one agent",
        );
    }
    let mut names = BTreeSet::new();
    let mut token_envs: BTreeMap<String, String> = BTreeMap::new();
    let mut listens = BTreeSet::new();
    let mut telegram_owners = Vec::new();
    let mut all_names = Vec::new();
    let agents: Vec<AgentSettings> = raw
        .into_iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let key = format!("agents[{i}]");
            let name = match a.name {
                Some(n) if AgentName::is_valid(&n) => n,
                Some(n) => {
                    v.problem(&format!("{key}.name"), format!("{n:?} is not a valid agent name: use 1-32 lowercase letters, digits, `-` or `_`"));
                    n
                }
                None => {
                    v.problem(&format!("{key}.name"), "is missing: every agent needs a name");
                    format!("agent{i}")
                }
            };
            if !names.insert(name.clone()) {
                v.problem(&format!("{key}.name"), format!("agent name {name:?} is used twice"));
            }
            for (field, env) in [("discord_token_env", &a.discord_token_env), ("telegram_token_env", &a.telegram_token_env)] {
                if let Some(env) = env {
                    v.env_name(&format!("{key}.{field}"), env);
                    if let Some(other) = token_envs.insert(env.clone(), name.clone()) {
                        v.problem(
                            &format!("{key}.{field}"),
                            format!("token {env} is also used by agent {other:?}: a token belongs to exactly one agent (one process per token)"),
                        );
                    }
                }
            }
            if a.telegram_token_env.is_some() {
                telegram_owners.push(name.clone());
            }
            let listen = a.listen.as_deref().and_then(|l| match l.parse::<SocketAddr>() {
                Ok(addr) => {
                    if addr.port() != 0 && !listens.insert(addr) {
                        v.problem(&format!("{key}.listen"), format!("{addr} is used by another agent"));
                    }
                    Some(addr)
                }
                Err(_) => {
                    v.problem(&format!("{key}.listen"), format!("{l:?} is not an address like 127.0.0.1:7601"));
                    None
                }
            });
            all_names.push(name.clone());
            // An invalid name was reported above; the configuration is an error then.
            AgentName::parse(&name).ok().map(|name| AgentSettings { name, discord_token_env: a.discord_token_env, telegram_token_env: a.telegram_token_env, listen, responder: a.responder })
        })
        .collect();
    if telegram_owners.len() > 1 && telegram {
        v.problem(
            "agents",
            format!("agents {} all name a Telegram token: one agent owns Telegram (approvals are forwarded to it)", telegram_owners.join(", ")),
        );
    }
    // Two env names holding the same token value is the same token twice.
    let mut values: BTreeMap<String, &String> = BTreeMap::new();
    for env in token_envs.keys() {
        if let Ok(val) = std::env::var(env)
            && !val.is_empty()
            && let Some(other) = values.insert(val, env)
        {
            v.problem(
                "agents",
                format!(
                    "{env} and {other} hold the same token: a token belongs to exactly one agent"
                ),
            );
        }
    }
    (agents, all_names)
}
