//! The Discord adapter: one gateway connection per agent with a Discord
//! token (serenity + poise), the slash commands as thin shells over the
//! neutral commands ([`commands`]), mentions into the inbox ([`mentions`]),
//! the status board in the `system` channel ([`board`]).
//!
//! It connects with the fewest intents that serve (GUILDS, GUILD_MESSAGES:
//! a message that mentions the bot carries its content without the
//! privileged MESSAGE_CONTENT intent), lets serenity reconnect and resume,
//! registers the command set on the configured guild at start-up only when
//! it changed since the last registration (its hash is stored), and shuts
//! down on the agent's stop signal. Before it starts, [`check_token`] asks
//! Discord once whether it knows the token (`GET /users/@me`) and answers in
//! the project's own [`TokenCheck`]. serenity and poise types stop in this
//! module.

pub mod board;
pub mod commands;
pub mod conversation;
pub mod mentions;
pub mod pinned_status;
pub mod threads;

use crate::shutdown::Shutdown;
use anyhow::Context as _;
use chrono::Utc;
use poise::serenity_prelude as serenity;
use serenity::{GatewayIntents, GuildId};
use tracing::{Instrument, info, warn};

use crate::config::{DiscordSettings, Secret};
use crate::error::TokenCheck;
use crate::fleet::AgentFleet;
use commands::{DEFER_AFTER, Data, Error};

/// The intents the adapter asks for: guild events (threads, channels),
/// guild messages (mentions) and their content. `MESSAGE_CONTENT` is
/// privileged (turned on in the Developer Portal, or the gateway refuses
/// the connection with 4014): without it Discord sends an empty text for
/// every message that does not mention the bot, so a conversation going on
/// in a thread the agent owns would be read as blank.
pub fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS | GatewayIntents::GUILD_MESSAGES | GatewayIntents::MESSAGE_CONTENT
}

/// What the adapter needs from the agent.
pub struct DiscordShell {
    pub fleet: AgentFleet,
    pub settings: DiscordSettings,
    pub token: Secret,
    /// The outbox's limiter: the status board's edits share its limits.
    pub limits: Option<crate::delivery::DiscordLimiter>,
    /// The agent's conversations, when it has a responder.
    pub conversations: Option<crate::conversations::Conversations>,
}

/// Connect and serve until `stop` turns true (or the connection fails for
/// good, such as a token Discord refuses).
pub async fn run(shell: DiscordShell, stop: Shutdown) -> anyhow::Result<()> {
    let DiscordShell {
        fleet,
        settings,
        token,
        limits,
        conversations,
    } = shell;
    let http = build_http(&settings, &token)?;
    let guild = settings.guild_id;
    let board = board_channel(&fleet, &settings);
    let board_stop = stop.clone();
    let framework = poise::Framework::builder()
        .options(poise::FrameworkOptions {
            commands: commands::commands(),
            event_handler: |fw, event| Box::pin(mentions::on_event(fw, event)),
            on_error: |e| Box::pin(on_error(e)),
            // A mention is a conversation, not a prefix command.
            prefix_options: poise::PrefixFrameworkOptions {
                mention_as_prefix: false,
                ..Default::default()
            },
            ..Default::default()
        })
        // On the builder: the options field is overwritten by it (INTEGRATION-NOTES §4).
        .initialize_owners(false)
        .setup(move |ctx, ready, fw| {
            Box::pin(async move {
                let app = ready.application.id.get();
                info!(bot = ready.user.id.get(), application = app, "connected to the Discord gateway");
                match guild {
                    Some(guild) => {
                        if let Err(e) = register_if_changed(ctx, fw, &fleet, app, guild).await {
                            warn!(guild, error = format!("{e:#}"), "the slash commands were not registered; they keep working where registered before");
                        }
                    }
                    None => warn!("discord.guild_id is not set: slash commands are not registered"),
                }
                if let Some(channel) = board {
                    let every = fleet.config().fleet.heartbeat_interval;
                    tokio::spawn(
                        board::run(ctx.http.clone(), limits.clone(), fleet.clone(), channel, every, board_stop)
                            .in_current_span(),
                    );
                }
                Ok(Data {
                    fleet,
                    bot_user: ready.user.id.get(),
                    defer_after: DEFER_AFTER,
                    conversations,
                    limits,
                })
            })
        })
        .build();
    let mut client = serenity::ClientBuilder::new_with_http(http, intents())
        .framework(framework)
        .await
        .context("cannot set up the Discord gateway client")?;
    let shards = client.shard_manager.clone();
    let mut stop_watch = stop.clone();
    let stopper = tokio::spawn(
        async move {
            stop_watch.stopped().await;
            info!("closing the Discord gateway connection");
            shards.shutdown_all().await;
        }
        .in_current_span(),
    );
    let result = client.start().await;
    stopper.abort();
    match result {
        Ok(()) => Ok(()),
        // A stop that raced the connection is not a failure.
        Err(_) if stop.is_stopped() => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context("the Discord gateway connection failed")),
    }
}

/// Asks Discord once whether it knows the token (`GET /users/@me`, what a client
/// asks at login), before the gateway client starts. Only a 401 is a refusal;
/// anything else (no connection, a timeout, a 5xx) is no verdict on the token.
pub async fn check_token(settings: &DiscordSettings, token: &Secret) -> TokenCheck {
    let http = match build_http(settings, token) {
        Ok(http) => http,
        Err(e) => {
            return TokenCheck::Unreachable {
                error: format!("{e:#}"),
            };
        }
    };
    match http.get_current_user().await {
        Ok(me) => TokenCheck::Accepted {
            bot: me.id.get().to_string(),
        },
        Err(serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(r)))
            if r.status_code.as_u16() == 401 =>
        {
            TokenCheck::Refused {
                status: 401,
                reason: "401 Unauthorized".into(),
                hint: "check that it is the bot's current token (the Developer Portal's Bot page \
                       resets it; the old one stops working)"
                    .into(),
            }
        }
        Err(serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(r))) => {
            TokenCheck::Unreachable {
                error: format!("Discord answered {}", r.status_code),
            }
        }
        Err(serenity::Error::Http(serenity::HttpError::Request(e))) => TokenCheck::Unreachable {
            error: crate::delivery::http::describe_reqwest(&e),
        },
        Err(e) => TokenCheck::Unreachable {
            error: e.to_string(),
        },
    }
}

/// Whether the bot can see channel `id` (`GET /channels/{id}`): its name,
/// or what to fix. For `switchyard doctor`.
pub async fn check_channel(
    settings: &DiscordSettings,
    token: &Secret,
    id: u64,
) -> Result<String, String> {
    let http = build_http(settings, token).map_err(|e| format!("{e:#}"))?;
    match http.get_channel(serenity::ChannelId::new(id)).await {
        Ok(channel) => Ok(channel
            .guild()
            .map_or_else(|| format!("channel {id}"), |c| format!("#{}", c.name))),
        Err(serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(r))) => {
            Err(match r.status_code.as_u16() {
                404 => format!(
                    "Discord has no channel {id} (404 Unknown Channel): copy the id again (Developer Mode, right-click the channel, Copy Channel ID)"
                ),
                403 => format!(
                    "the bot may not see channel {id} (403 Missing Access): invite it to the server and give it View Channel and Send Messages there"
                ),
                401 => "the token was refused (401)".into(),
                other => format!("Discord answered {other}"),
            })
        }
        Err(serenity::Error::Http(serenity::HttpError::Request(e))) => {
            Err(crate::delivery::http::describe_reqwest(&e))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// What the guild has of this bot's slash commands (doctor): the names the
/// agent registers that Discord lists, and those it does not.
pub enum CommandsCheck {
    /// Every command is registered (their count).
    Registered(usize),
    /// Some or all are missing, by name.
    Missing(Vec<String>),
}

/// Compares the guild's registered commands with the set this build registers.
pub async fn check_commands(
    settings: &DiscordSettings,
    token: &Secret,
    guild: u64,
) -> Result<CommandsCheck, String> {
    let http = build_http(settings, token).map_err(|e| format!("{e:#}"))?;
    let describe = |e: serenity::Error| match e {
        serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(r)) => {
            format!("Discord answered {}: {}", r.status_code, r.error.message)
        }
        serenity::Error::Http(serenity::HttpError::Request(e)) => {
            crate::delivery::http::describe_reqwest(&e)
        }
        e => e.to_string(),
    };
    let app = http
        .get_current_application_info()
        .await
        .map_err(describe)?;
    http.set_application_id(app.id);
    let registered = http
        .get_guild_commands(GuildId::new(guild))
        .await
        .map_err(describe)?;
    let have: std::collections::HashSet<&str> =
        registered.iter().map(|c| c.name.as_str()).collect();
    let want: Vec<String> = commands::commands()
        .into_iter()
        .map(|c| c.name.to_string())
        .collect();
    let missing: Vec<String> = want
        .iter()
        .filter(|n| !have.contains(n.as_str()))
        .cloned()
        .collect();
    Ok(if missing.is_empty() {
        CommandsCheck::Registered(want.len())
    } else {
        CommandsCheck::Missing(missing)
    })
}

/// The `system` channel, when this agent keeps the status board: boards are
/// on (`routing.status_board`), the channel is configured, and this is the
/// fleet's first agent.
fn board_channel(fleet: &AgentFleet, settings: &DiscordSettings) -> Option<u64> {
    let config = fleet.config();
    (config.routing.status_board && config.is_announcer(fleet.agent()))
        .then(|| settings.channels.get("system").copied())
        .flatten()
}

/// serenity's `Http`, through the proxy with its own limiter off when the
/// `api_base` is not Discord's (INTEGRATION-NOTES §3).
fn build_http(settings: &DiscordSettings, token: &Secret) -> anyhow::Result<serenity::Http> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .context("cannot build the HTTP client")?;
    let mut builder = serenity::HttpBuilder::new(token.expose()).client(client);
    if settings.is_proxied() {
        builder = builder
            .proxy(settings.proxy_origin())
            .ratelimiter_disabled(true);
    }
    Ok(builder.build())
}

async fn on_error(error: poise::FrameworkError<'_, Data, Error>) {
    warn!(error = %error, "Discord command framework error");
}

/// A stable 64-bit FNV-1a hash (std's hasher may change between releases,
/// and this one is stored).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Bulk-overwrite the guild's commands when the set differs from the one
/// registered last time (Discord counts every create: 200 per guild per day).
async fn register_if_changed(
    ctx: &serenity::Context,
    fw: &poise::Framework<Data, Error>,
    fleet: &AgentFleet,
    app: u64,
    guild: u64,
) -> anyhow::Result<()> {
    let set = poise::builtins::create_application_commands(&fw.options().commands);
    let json = serde_json::to_vec(&set).context("cannot encode the command set")?;
    let hash = format!("{:016x}", fnv1a(&json));
    let key = format!("commands:{app}:{guild}");
    let stored = fleet.store().discord_state(&key).await?;
    if stored.as_deref() == Some(hash.as_str()) {
        info!(
            guild,
            "slash commands unchanged since the last registration: not registering"
        );
        return Ok(());
    }
    GuildId::new(guild)
        .set_commands(&ctx.http, set)
        .await
        .context("Discord refused the command registration")?;
    fleet
        .store()
        .set_discord_state(&key, &hash, Utc::now())
        .await?;
    info!(
        guild,
        commands = fw.options().commands.len(),
        "slash commands registered"
    );
    Ok(())
}
