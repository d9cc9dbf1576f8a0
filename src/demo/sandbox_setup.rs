//! The sandbox a fleet's configuration needs: its channels and chats exist,
//! and it knows the bot tokens of the configured agents (the sandbox refuses
//! every other token, as Discord and Telegram do). Tokens are read where the
//! agents read them, the environment; the demo falls back to its own fake ones.

use switchyard_sandbox::SandboxOptions;

use crate::config::Config;

/// Fake tokens the sandbox accepts; set for the demo's agent processes only.
pub(super) const DEMO_TOKENS: [(&str, &str); 4] = [
    (
        "DEMO_MANAGER_DISCORD_TOKEN",
        "MTAwMDAwMDAwMDAwMDAwMDAx.demo.manager-token",
    ),
    (
        "DEMO_TECH_LEAD_DISCORD_TOKEN",
        "MTAwMDAwMDAwMDAwMDAwMDAy.demo.tech-lead-token",
    ),
    (
        "DEMO_OPSCLAW_DISCORD_TOKEN",
        "MTAwMDAwMDAwMDAwMDAwMDAz.demo.opsclaw-token",
    ),
    (
        "DEMO_TELEGRAM_BOT_TOKEN",
        "100000001:AAdemo-telegram-token-0000000000000",
    ),
];

/// The sandbox options matching a configuration: its channels and chats exist.
/// It knows no token yet: see [`with_agent_tokens`].
pub fn sandbox_options_for(config: &Config) -> SandboxOptions {
    let mut opts = SandboxOptions::default();
    if let Some(d) = &config.discord {
        opts.discord_channels = d
            .channels
            .iter()
            .map(|(alias, id)| (*id, alias.clone()))
            .collect();
    }
    if let Some(t) = &config.telegram {
        opts.telegram_chats = t
            .chats
            .iter()
            .map(|(alias, id)| (*id, alias.clone()))
            .collect();
        // The web view's buttons press as the first approver, as the operator would.
        opts.telegram_approver = t.approvers.first().copied();
    }
    opts
}

/// The sandbox of the embedded demo fleet (for `switchyard sandbox` without
/// `--config`): it knows the demo agents' tokens, from the environment or the
/// demo's defaults.
pub fn demo_sandbox_options() -> anyhow::Result<SandboxOptions> {
    let config = Config::demo(&std::env::temp_dir())?;
    let (opts, _) = with_agent_tokens(sandbox_options_for(&config), &config, demo_token);
    Ok(opts)
}

/// `opts` knowing the token of every configured agent that `lookup` finds
/// (it is given the variable's name: [`env_token`], [`demo_token`]). Also
/// returns the variables it did not find, so the caller can say which bots
/// the sandbox will refuse (names only: they are not secrets).
pub fn with_agent_tokens(
    mut opts: SandboxOptions,
    config: &Config,
    lookup: impl Fn(&str) -> Option<String>,
) -> (SandboxOptions, Vec<String>) {
    let mut missing = Vec::new();
    for agent in &config.agents {
        for (env, known) in [
            (&agent.discord_token_env, &mut opts.discord_tokens),
            (&agent.telegram_token_env, &mut opts.telegram_tokens),
        ] {
            let Some(env) = env else { continue };
            match lookup(env) {
                Some(token) if !known.contains(&token) => known.push(token),
                Some(_) => {}
                None => missing.push(env.clone()),
            }
        }
    }
    (opts, missing)
}

/// A token as the agents read it: the variable, when set and not blank.
pub fn env_token(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// A demo agent's token: the environment's, else the demo's fake one (what
/// the demo hands its agent processes).
pub fn demo_token(var: &str) -> Option<String> {
    env_token(var).or_else(|| {
        DEMO_TOKENS
            .iter()
            .find(|(name, _)| *name == var)
            .map(|(_, token)| (*token).to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_sandbox_knows_every_demo_agent_token() {
        let config = Config::demo(&std::env::temp_dir()).unwrap();
        let lookup = |var: &str| {
            DEMO_TOKENS
                .iter()
                .find(|(name, _)| *name == var)
                .map(|(_, t)| (*t).to_owned())
        };
        let (opts, missing) = with_agent_tokens(sandbox_options_for(&config), &config, lookup);
        assert!(missing.is_empty(), "{missing:?}");
        assert_eq!(opts.discord_tokens.len(), 3);
        assert_eq!(
            opts.telegram_tokens,
            vec!["100000001:AAdemo-telegram-token-0000000000000".to_owned()]
        );
    }

    #[test]
    fn variables_without_a_value_are_named_not_registered() {
        let config = Config::demo(&std::env::temp_dir()).unwrap();
        let (opts, missing) = with_agent_tokens(SandboxOptions::default(), &config, |var| {
            (var == "DEMO_TELEGRAM_BOT_TOKEN").then(|| "1:x".to_owned())
        });
        assert!(opts.discord_tokens.is_empty());
        assert_eq!(opts.telegram_tokens, vec!["1:x".to_owned()]);
        assert_eq!(missing.len(), 3, "{missing:?}");
        assert!(
            missing.iter().all(|m| m.ends_with("_DISCORD_TOKEN")),
            "{missing:?}"
        );
    }
}
