//! The bot tokens, checked once at start-up before the Discord gateway client
//! and the Telegram poller start: each platform is asked whether it knows its
//! token (the adapters' `check_token`). A token the platform refuses stops the
//! agent here with exit status 2, naming the variable (never the token) and
//! what to do, as an unusable workspace or database does; nothing has been
//! opened or written yet. A platform that cannot be asked (no connection, a
//! timeout, a 5xx) is no verdict: the agent starts, and its loops retry as always.

use tracing::{error, info, warn};

use crate::config::{AgentSettings, Config, Secret};
use crate::error::{TokenCheck, TokenRefused};

/// Both platforms asked at once; the first refusal is the error.
pub(super) async fn check_tokens(
    config: &Config,
    agent: &AgentSettings,
    discord: Option<&Secret>,
    telegram: Option<&Secret>,
) -> Result<(), TokenRefused> {
    let discord = async {
        match (&config.discord, discord, &agent.discord_token_env) {
            (Some(settings), Some(token), Some(variable)) => {
                let check = crate::discord::check_token(settings, token).await;
                decide("Discord", variable, check)
            }
            _ => Ok(()),
        }
    };
    let telegram = async {
        match (&config.telegram, telegram, &agent.telegram_token_env) {
            (Some(settings), Some(token), Some(variable)) => {
                let check = crate::telegram::check_token(settings, token).await;
                decide("Telegram", variable, check)
            }
            _ => Ok(()),
        }
    };
    let (discord, telegram) = tokio::join!(discord, telegram);
    discord.and(telegram)
}

/// What the agent does with a platform's answer.
fn decide(platform: &'static str, variable: &str, check: TokenCheck) -> Result<(), TokenRefused> {
    match check {
        TokenCheck::Accepted { bot } => {
            info!(platform, bot = %bot, "bot token accepted");
            Ok(())
        }
        TokenCheck::Refused {
            status,
            reason,
            hint,
        } => {
            error!(
                platform,
                variable, status, "the platform refused the bot token"
            );
            Err(TokenRefused {
                platform,
                variable: variable.to_owned(),
                status,
                reason,
                hint,
            })
        }
        TokenCheck::Unreachable { error } => {
            warn!(
                platform,
                variable,
                error = %error,
                "could not check the bot token at start-up (no verdict, not a refusal); starting, and retrying as usual"
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refusal_stops_the_agent_and_it_names_the_variable() {
        assert!(
            decide(
                "Discord",
                "X_TOKEN",
                TokenCheck::Accepted { bot: "1".into() }
            )
            .is_ok()
        );
        let unreachable = TokenCheck::Unreachable {
            error: "Discord answered 503 Service Unavailable".into(),
        };
        assert!(decide("Discord", "X_TOKEN", unreachable).is_ok());
        let refused = TokenCheck::Refused {
            status: 401,
            reason: "401 Unauthorized".into(),
            hint: "check that it is the bot's current token".into(),
        };
        let err = decide("Discord", "TEST_X_DISCORD_TOKEN", refused).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the Discord token in TEST_X_DISCORD_TOKEN was refused (401 Unauthorized): check that it is the bot's current token"
        );
        assert_eq!(
            crate::error::Exit::of(&anyhow::Error::new(err)),
            crate::error::Exit::BadInput
        );
    }
}
