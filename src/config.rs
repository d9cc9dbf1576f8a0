//! Typed configuration of a fleet (DESIGN.md 3.2).
//!
//! Loading has two phases. The `config` crate layers the TOML file and the
//! `SWITCHYARD__SECTION__KEY` environment into [`RawConfig`], whose shape is
//! the file's; unknown keys are collected (not fatal one by one) through
//! `serde_ignored`. Then [`Config::from_raw`] checks everything and builds
//! the typed [`Config`], reporting every problem at once with its key path.
//! Tokens are never in the file: it names the environment variable that
//! holds each, and [`Secret`] keeps the value out of logs and `Debug`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use switchyard_commands::AccessList;
use switchyard_routing::{Category, Destination, Platform, Router, RuleSpec};

/// The fleet file `switchyard demo` runs when given no `--config`.
pub const DEMO_TOML: &str = include_str!("../config/demo.toml");
/// The documented example fleet, shipped for users to copy.
pub const EXAMPLE_TOML: &str = include_str!("../config/example.toml");

const ENV_PREFIX: &str = "SWITCHYARD";
const DISCORD_PUBLIC_API: &str = "https://discord.com/api/v10";
const TELEGRAM_PUBLIC_API: &str = "https://api.telegram.org";
const GITHUB_PUBLIC_API: &str = "https://api.github.com";

/// A token read from the environment. It prints as `Secret(***)` and has no
/// `Display`, so it cannot end up in a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The only way to the value: call it where the value leaves the process.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One problem in the configuration, with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Everything wrong with a configuration, found in one pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub source_name: String,
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} problem(s) in {}:",
            self.problems.len(),
            self.source_name
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The file's shape.

#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    #[serde(default)]
    pub fleet: RawFleet,
    pub discord: Option<RawDiscord>,
    pub telegram: Option<RawTelegram>,
    pub github: Option<RawGithub>,
    #[serde(default)]
    pub docker: RawDocker,
    #[serde(default)]
    pub routing: RawRouting,
    #[serde(default)]
    pub delivery: RawDelivery,
    #[serde(default)]
    pub agents: Vec<RawAgent>,
    pub routes: Option<Vec<RuleSpec>>,
    #[serde(default)]
    pub policy: RawPolicy,
    #[serde(default)]
    pub approvals: RawApprovals,
    #[serde(default)]
    pub skills: BTreeMap<String, RawSkill>,
    #[serde(default)]
    pub schedules: Vec<crate::schedules::RawSchedule>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawFleet {
    pub workspace: Option<String>,
    pub database: Option<String>,
    pub heartbeat_interval: Option<String>,
    pub stale_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawDiscord {
    pub api_base: Option<String>,
    pub guild_id: Option<String>,
    #[serde(default)]
    pub channels: BTreeMap<String, String>,
    /// alias = name of the environment variable holding the webhook URL
    #[serde(default)]
    pub webhooks: BTreeMap<String, String>,
    #[serde(default)]
    pub access: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTelegram {
    pub api_base: Option<String>,
    /// Webhook mode: the public URL Telegram posts updates to (the agent
    /// serves it on its `listen` address at `/telegram/webhook`).
    pub webhook_url: Option<String>,
    /// The environment variable holding the webhook's `secret_token`.
    pub webhook_secret_env: Option<String>,
    #[serde(default)]
    pub chats: BTreeMap<String, String>,
    #[serde(default)]
    pub access: RawTelegramAccess,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTelegramAccess {
    #[serde(default)]
    pub approvers: Vec<i64>,
    #[serde(default)]
    pub read: Vec<String>,
    #[serde(default)]
    pub operate: Vec<String>,
    #[serde(default)]
    pub admin: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawGithub {
    pub api_base: Option<String>,
    pub token_env: Option<String>,
    pub interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawDocker {
    pub host: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRouting {
    pub unmatched: Option<String>,
    pub repeat_interval: Option<String>,
    /// category = window, for ambient categories batched into one message
    #[serde(default)]
    pub digest: BTreeMap<String, String>,
    pub status_board: Option<bool>,
    pub mute_notice_lead: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawDelivery {
    pub max_attempts: Option<u32>,
    pub backoff_base: Option<String>,
    pub backoff_max: Option<String>,
    pub coalesce_after: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAgent {
    pub name: Option<String>,
    pub discord_token_env: Option<String>,
    pub telegram_token_env: Option<String>,
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawPolicy {
    pub approval_threshold: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawApprovals {
    pub expires: Option<String>,
    pub remind_after: Option<String>,
    pub escalate_after: Option<String>,
    pub escalate_to: Option<String>,
    pub two_approvers_at_risk: Option<i64>,
    pub chat: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawSkill {
    pub image: Option<String>,
    #[serde(default)]
    pub command: Vec<String>,
    pub network: Option<bool>,
    pub memory: Option<String>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
    pub timeout: Option<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub mounts: Vec<String>,
}

// ---------------------------------------------------------------------------
// The typed, validated configuration.

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the configuration came from (a path, or "embedded demo").
    pub source_name: String,
    pub fleet: FleetSettings,
    pub discord: Option<DiscordSettings>,
    pub telegram: Option<TelegramSettings>,
    pub github: Option<GithubSettings>,
    pub docker: DockerSettings,
    pub routing: RoutingSettings,
    pub delivery: DeliverySettings,
    pub agents: Vec<AgentSettings>,
    pub routes: Vec<RuleSpec>,
    pub policy: PolicySettings,
    pub approvals: ApprovalSettings,
    pub skills: BTreeMap<String, SkillSettings>,
    pub schedules: Vec<crate::schedules::Schedule>,
}

#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// Absolute: relative paths in the file are resolved against the file's directory.
    pub workspace: PathBuf,
    /// A template with `{workspace}` and `{agent}`.
    pub database: String,
    pub heartbeat_interval: Duration,
    /// A peer whose last heartbeat is older than this is stale.
    pub stale_after: Duration,
}

#[derive(Debug, Clone)]
pub struct DiscordSettings {
    pub api_base: String,
    pub guild_id: Option<u64>,
    pub channels: BTreeMap<String, u64>,
    pub webhooks: BTreeMap<String, String>,
    pub access: AccessList,
}

impl DiscordSettings {
    /// Any `api_base` other than Discord's own is a stand-in: serenity then
    /// goes through its proxy setting with its own limiter off, and
    /// switchyard's limiter does the work (INTEGRATION-NOTES §3).
    pub fn is_proxied(&self) -> bool {
        self.api_base.trim_end_matches('/') != DISCORD_PUBLIC_API
    }
    /// The origin serenity's `proxy` replaces `https://discord.com` with.
    pub fn proxy_origin(&self) -> String {
        let base = self.api_base.trim_end_matches('/');
        base.strip_suffix("/api/v10").unwrap_or(base).to_string()
    }
}

#[derive(Debug, Clone)]
pub struct TelegramSettings {
    pub api_base: String,
    /// `None`: long polling.
    pub webhook: Option<TelegramWebhook>,
    pub chats: BTreeMap<String, i64>,
    pub approvers: Vec<i64>,
    pub access: AccessList,
}

/// Webhook mode of the Telegram owner.
#[derive(Debug, Clone)]
pub struct TelegramWebhook {
    pub url: String,
    pub secret_env: String,
}

#[derive(Debug, Clone)]
pub struct GithubSettings {
    pub api_base: String,
    pub token_env: String,
    pub interval: Duration,
}

#[derive(Debug, Clone)]
pub struct DockerSettings {
    pub host: String,
}

#[derive(Debug, Clone)]
pub struct RoutingSettings {
    pub unmatched: Destination,
    pub repeat_interval: Duration,
    pub digest: BTreeMap<Category, Duration>,
    pub status_board: bool,
    pub mute_notice_lead: Duration,
}

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Pending ambient messages to one channel beyond this many are coalesced into one.
    pub coalesce_after: usize,
}

#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub name: String,
    pub discord_token_env: Option<String>,
    pub telegram_token_env: Option<String>,
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct PolicySettings {
    pub approval_threshold: u8,
}

/// `[approvals]`: how long a request waits, its escalation ladder, and
/// when two distinct approvers are needed.
#[derive(Debug, Clone)]
pub struct ApprovalSettings {
    /// A request nobody answers in time expires (and counts as denied).
    pub expires: Duration,
    /// A reminder in Telegram after this long, if still pending.
    pub remind_after: Option<Duration>,
    /// A ping to `escalate_to` after this long, if still pending.
    pub escalate_after: Option<Duration>,
    pub escalate_to: Option<Destination>,
    /// At or above this risk score two distinct approvers must approve.
    pub two_approvers_at_risk: Option<u8>,
    /// The `[telegram.chats]` alias prompts go to.
    pub chat: String,
}

impl ApprovalSettings {
    /// How many distinct approvers a request of this risk needs.
    pub fn required_approvers(&self, risk: u8) -> u8 {
        match self.two_approvers_at_risk {
            Some(at) if risk >= at => 2,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SkillSettings {
    pub image: String,
    pub command: Vec<String>,
    pub network: bool,
    pub memory_bytes: i64,
    pub cpus: f64,
    pub pids: i64,
    pub timeout: Duration,
    /// Environment variables passed to the worker, by name only.
    pub env: Vec<String>,
    pub mounts: Vec<String>,
}

// ---------------------------------------------------------------------------
// Loading.

/// Where to read a configuration from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    /// Text with a name for messages and a base directory for relative paths.
    Text {
        name: String,
        text: String,
        base_dir: PathBuf,
    },
}

impl Config {
    /// Load and validate: file, then `SWITCHYARD__SECTION__KEY` environment overrides.
    pub fn load(source: &ConfigSource) -> Result<Config, ConfigError> {
        let (name, base_dir, file) = match source {
            ConfigSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                    source_name: path.display().to_string(),
                    problems: vec![ConfigProblem {
                        key: "(file)".into(),
                        message: format!(
                            "cannot read it: {e}; pass --config PATH or set SWITCHYARD_CONFIG"
                        ),
                    }],
                })?;
                let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
                let base = if base.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    base
                };
                (path.display().to_string(), base, text)
            }
            ConfigSource::Text {
                name,
                text,
                base_dir,
            } => (name.clone(), base_dir.clone(), text.clone()),
        };
        let fail = |key: &str, message: String| ConfigError {
            source_name: name.clone(),
            problems: vec![ConfigProblem {
                key: key.into(),
                message,
            }],
        };
        let layered = config::Config::builder()
            .add_source(config::File::from_str(&file, config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .map_err(|e| fail("(syntax)", e.to_string()))?;
        let mut unknown = Vec::new();
        let raw: RawConfig =
            serde_ignored::deserialize(layered, |path| unknown.push(path.to_string()))
                .map_err(|e| fail("(shape)", e.to_string()))?;
        let base_dir = std::path::absolute(&base_dir).unwrap_or(base_dir);
        let mut problems: Vec<ConfigProblem> = unknown
            .into_iter()
            .map(|key| ConfigProblem {
                key,
                message: "unknown key: remove it or check its spelling".into(),
            })
            .collect();
        match Config::from_raw(raw, &base_dir, &name) {
            Ok(config) if problems.is_empty() => Ok(config),
            Ok(_) => Err(ConfigError {
                source_name: name,
                problems,
            }),
            Err(mut e) => {
                problems.append(&mut e.problems);
                Err(ConfigError {
                    source_name: name,
                    problems,
                })
            }
        }
    }

    /// The embedded demo fleet, with its workspace under `base_dir`.
    pub fn demo(base_dir: &Path) -> Result<Config, ConfigError> {
        Config::load(&ConfigSource::Text {
            name: "embedded demo config".into(),
            text: DEMO_TOML.into(),
            base_dir: base_dir.to_path_buf(),
        })
    }

    pub fn agent(&self, name: &str) -> Option<&AgentSettings> {
        self.agents.iter().find(|a| a.name == name)
    }

    /// The database URL of one agent, from the `fleet.database` template.
    pub fn database_url(&self, agent: &str) -> String {
        self.fleet
            .database
            .replace("{workspace}", &self.fleet.workspace.display().to_string())
            .replace("{agent}", agent)
    }

    pub fn agent_dir(&self, agent: &str) -> PathBuf {
        self.fleet.workspace.join("agents").join(agent)
    }

    /// The compiled routing table. The rules were checked when the
    /// configuration was loaded; the error is kept for callers that build a
    /// `Config` by hand.
    pub fn router(&self) -> anyhow::Result<Router> {
        Router::new(self.routes.clone(), self.routing.unmatched.clone()).map_err(|errs| {
            anyhow::anyhow!(
                "routes: {}",
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
    }

    /// The fleet's first agent posts fleet-wide notices (mutes, stale peers,
    /// the status board), so each goes out once.
    pub fn is_announcer(&self, agent: &str) -> bool {
        self.agents.first().is_some_and(|a| a.name == agent)
    }

    /// The agent that owns the Telegram token (approvals go there).
    pub fn telegram_owner(&self) -> Option<&AgentSettings> {
        self.agents.iter().find(|a| a.telegram_token_env.is_some())
    }

    /// Every problem with the environment this agent will run in (tokens
    /// present), for `run` and `check-config --agent`.
    pub fn check_tokens(&self, agent: &AgentSettings) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        for (key, env) in [
            ("discord_token_env", &agent.discord_token_env),
            ("telegram_token_env", &agent.telegram_token_env),
        ] {
            if let Some(env) = env
                && std::env::var(env)
                    .map(|v| v.trim().is_empty())
                    .unwrap_or(true)
            {
                problems.push(ConfigProblem {
                    key: format!("agents.{}.{key}", agent.name),
                    message: format!(
                        "environment variable {env} is not set: export the bot token there"
                    ),
                });
            }
        }
        problems
    }

    pub fn from_raw(
        raw: RawConfig,
        base_dir: &Path,
        source_name: &str,
    ) -> Result<Config, ConfigError> {
        let mut v = Validator::default();

        let fleet = FleetSettings {
            workspace: {
                let w = raw.fleet.workspace.unwrap_or_else(|| "workspace".into());
                let p = PathBuf::from(&w);
                if p.is_absolute() { p } else { base_dir.join(p) }
            },
            database: {
                let d = raw
                    .fleet
                    .database
                    .unwrap_or_else(|| "sqlite://{workspace}/agents/{agent}/state.db".into());
                if !d.starts_with("sqlite:") {
                    v.problem(
                        "fleet.database",
                        "only sqlite:// URLs are supported by this build",
                    );
                }
                if !d.contains("{agent}") {
                    v.problem(
                        "fleet.database",
                        "must contain {agent}: each agent has its own database",
                    );
                }
                d
            },
            heartbeat_interval: v.duration(
                "fleet.heartbeat_interval",
                raw.fleet.heartbeat_interval,
                "5s",
            ),
            stale_after: v.duration("fleet.stale_after", raw.fleet.stale_after, "30s"),
        };

        let discord = raw.discord.map(|d| DiscordSettings {
            api_base: v.url("discord.api_base", d.api_base, DISCORD_PUBLIC_API),
            guild_id: d.guild_id.as_deref().and_then(|g| v.snowflake("discord.guild_id", g)),
            channels: d
                .channels
                .iter()
                .filter_map(|(alias, id)| {
                    v.alias(&format!("discord.channels.{alias}"), alias);
                    v.snowflake(&format!("discord.channels.{alias}"), id).map(|id| (alias.clone(), id))
                })
                .collect(),
            webhooks: d
                .webhooks
                .into_iter()
                .inspect(|(alias, env)| {
                    v.alias(&format!("discord.webhooks.{alias}"), alias);
                    v.env_name(&format!("discord.webhooks.{alias}"), env);
                    if d.channels.contains_key(alias) {
                        v.problem(
                            &format!("discord.webhooks.{alias}"),
                            "is also a channel alias: a destination is either a bot channel or a webhook",
                        );
                    }
                })
                .collect(),
            access: v.access("discord.access", &d.access),
        });

        let telegram = raw.telegram.map(|t| TelegramSettings {
            api_base: v.url("telegram.api_base", t.api_base, TELEGRAM_PUBLIC_API),
            webhook: t.webhook_url.clone().map(|url| {
                let url = v.url(
                    "telegram.webhook_url",
                    Some(url),
                    "https://example.invalid/telegram/webhook",
                );
                let secret_env = t
                    .webhook_secret_env
                    .clone()
                    .unwrap_or_else(|| "TELEGRAM_WEBHOOK_SECRET".into());
                v.env_name("telegram.webhook_secret_env", &secret_env);
                TelegramWebhook { url, secret_env }
            }),
            chats: t
                .chats
                .iter()
                .filter_map(|(alias, id)| {
                    v.alias(&format!("telegram.chats.{alias}"), alias);
                    match id.trim().parse::<i64>() {
                        Ok(id) if id != 0 => Some((alias.clone(), id)),
                        _ => {
                            v.problem(
                                &format!("telegram.chats.{alias}"),
                                format!("{id:?} is not a numeric chat id"),
                            );
                            None
                        }
                    }
                })
                .collect(),
            approvers: t.access.approvers.clone(),
            access: {
                let mut m = BTreeMap::new();
                m.insert("read".to_string(), t.access.read.clone());
                m.insert("operate".to_string(), t.access.operate.clone());
                m.insert("admin".to_string(), t.access.admin.clone());
                v.access("telegram.access", &m)
            },
        });

        let github = raw.github.map(|g| GithubSettings {
            api_base: v.url("github.api_base", g.api_base, GITHUB_PUBLIC_API),
            token_env: match g.token_env {
                Some(e) => {
                    v.env_name("github.token_env", &e);
                    e
                }
                None => "GITHUB_TOKEN".into(),
            },
            interval: v.duration("github.interval", g.interval, "10m"),
        });

        let docker = DockerSettings {
            host: raw
                .docker
                .host
                .unwrap_or_else(|| "unix:///var/run/docker.sock".into()),
        };

        let known = |dest: &Destination| match dest.platform {
            Platform::Discord => discord.as_ref().is_some_and(|d| {
                d.channels.contains_key(&dest.alias) || d.webhooks.contains_key(&dest.alias)
            }),
            Platform::Telegram => telegram
                .as_ref()
                .is_some_and(|t| t.chats.contains_key(&dest.alias)),
        };
        let check_dest = |v: &mut Validator, key: &str, dest: &Destination| {
            if !known(dest) {
                let section = match dest.platform {
                    Platform::Discord => "[discord.channels] or [discord.webhooks]",
                    Platform::Telegram => "[telegram.chats]",
                };
                v.problem(
                    key,
                    format!(
                        "{dest} names no configured alias: add `{}` to {section}",
                        dest.alias
                    ),
                );
            }
        };

        let unmatched = match raw
            .routing
            .unmatched
            .as_deref()
            .unwrap_or("discord:system")
            .parse::<Destination>()
        {
            Ok(d) => {
                check_dest(&mut v, "routing.unmatched", &d);
                d
            }
            Err(e) => {
                v.problem("routing.unmatched", e.to_string());
                Destination::discord("system")
            }
        };
        let routes = raw.routes.unwrap_or_else(RuleSpec::defaults);
        for (i, rule) in routes.iter().enumerate() {
            for dest in &rule.to {
                check_dest(&mut v, &format!("routes[{i}].to"), dest);
            }
        }
        if let Err(errors) = Router::new(routes.clone(), unmatched.clone()) {
            for e in errors {
                v.problem("routes", e.to_string());
            }
        }
        let digest = raw
            .routing
            .digest
            .iter()
            .map(|(cat, window)| {
                let category: Category = cat.parse().unwrap_or_else(|never| match never {});
                let key = format!("routing.digest.{cat}");
                if !category.is_known() {
                    v.problem(&key, "is not a known category");
                }
                if matches!(category, Category::ActionRequired | Category::Alert) {
                    v.problem(
                        &key,
                        "alerts and action_required are never digested: they go out at once",
                    );
                }
                (category, v.duration(&key, Some(window.clone()), "1m"))
            })
            .collect();
        let routing = RoutingSettings {
            unmatched,
            repeat_interval: v.duration(
                "routing.repeat_interval",
                raw.routing.repeat_interval,
                "10m",
            ),
            digest,
            status_board: raw.routing.status_board.unwrap_or(true),
            mute_notice_lead: v.duration(
                "routing.mute_notice_lead",
                raw.routing.mute_notice_lead,
                "10m",
            ),
        };

        let delivery = DeliverySettings {
            max_attempts: match raw.delivery.max_attempts.unwrap_or(8) {
                0 => {
                    v.problem("delivery.max_attempts", "must be at least 1");
                    1
                }
                n => n,
            },
            backoff_base: v.duration("delivery.backoff_base", raw.delivery.backoff_base, "500ms"),
            backoff_max: v.duration("delivery.backoff_max", raw.delivery.backoff_max, "5m"),
            coalesce_after: raw.delivery.coalesce_after.unwrap_or(20).max(2),
        };

        if raw.agents.is_empty() {
            v.problem(
                "agents",
                "no [[agents]] defined: a fleet needs at least one agent",
            );
        }
        let mut names = BTreeSet::new();
        let mut token_envs: BTreeMap<String, String> = BTreeMap::new();
        let mut listens = BTreeSet::new();
        let mut telegram_owners = Vec::new();
        let agents: Vec<AgentSettings> = raw
            .agents
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                let key = format!("agents[{i}]");
                let name = match a.name {
                    Some(n) if valid_agent_name(&n) => n,
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
                AgentSettings { name, discord_token_env: a.discord_token_env, telegram_token_env: a.telegram_token_env, listen }
            })
            .collect();
        if telegram_owners.len() > 1 && telegram.is_some() {
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
                v.problem("agents", format!("{env} and {other} hold the same token: a token belongs to exactly one agent"));
            }
        }

        let policy = PolicySettings {
            approval_threshold: match raw.policy.approval_threshold.unwrap_or(60) {
                t @ 0..=100 => t as u8,
                t => {
                    v.problem("policy.approval_threshold", format!("{t} is outside 0-100"));
                    60
                }
            },
        };

        let approvals = {
            let a = &raw.approvals;
            let expires = v.duration("approvals.expires", a.expires.clone(), "30m");
            let mut step = |key: &str, value: &Option<String>, default: &str| {
                let d = v.duration(key, value.clone(), default);
                (d < expires).then_some(d)
            };
            let remind_after = step("approvals.remind_after", &a.remind_after, "10m");
            let escalate_after = step("approvals.escalate_after", &a.escalate_after, "20m");
            let escalate_to =
                a.escalate_to
                    .as_deref()
                    .and_then(|d| match d.parse::<Destination>() {
                        Ok(dest) => {
                            check_dest(&mut v, "approvals.escalate_to", &dest);
                            Some(dest)
                        }
                        Err(e) => {
                            v.problem("approvals.escalate_to", e.to_string());
                            None
                        }
                    });
            let two_approvers_at_risk = match a.two_approvers_at_risk {
                None => None,
                Some(t @ 0..=100) => Some(t as u8),
                Some(t) => {
                    v.problem(
                        "approvals.two_approvers_at_risk",
                        format!("{t} is outside 0-100"),
                    );
                    None
                }
            };
            let chats: Vec<&String> = telegram
                .as_ref()
                .map(|t| t.chats.keys().collect())
                .unwrap_or_default();
            let chat = match &a.chat {
                Some(c) => {
                    if telegram.is_some() && !chats.contains(&c) {
                        v.problem(
                            "approvals.chat",
                            format!(
                                "{c:?} is not in [telegram.chats]: prompts go to a configured chat"
                            ),
                        );
                    }
                    c.clone()
                }
                None if chats.iter().any(|c| *c == "operator") => "operator".into(),
                None => chats
                    .first()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "operator".into()),
            };
            ApprovalSettings {
                expires,
                remind_after,
                escalate_after,
                escalate_to,
                two_approvers_at_risk,
                chat,
            }
        };

        let agent_names: Vec<String> = agents.iter().map(|a| a.name.clone()).collect();
        let mut schedule_problems = Vec::new();
        let schedules: Vec<crate::schedules::Schedule> = raw
            .schedules
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| r.validate(i, &agent_names, &mut schedule_problems))
            .collect();
        for (key, message) in schedule_problems {
            v.problem(&key, message);
        }
        let skills = raw
            .skills
            .into_iter()
            .map(|(name, s)| {
                let key = format!("skills.{name}");
                let skill = SkillSettings {
                    image: s.image.unwrap_or_else(|| {
                        v.problem(
                            &format!("{key}.image"),
                            "is missing: name the container image the skill runs in",
                        );
                        String::new()
                    }),
                    command: s.command,
                    network: s.network.unwrap_or(false),
                    memory_bytes: v.bytes(
                        &format!("{key}.memory"),
                        s.memory.as_deref().unwrap_or("256m"),
                    ),
                    cpus: match s.cpus.unwrap_or(0.5) {
                        c if c > 0.0 && c <= 64.0 => c,
                        c => {
                            v.problem(&format!("{key}.cpus"), format!("{c} is not in (0, 64]"));
                            0.5
                        }
                    },
                    pids: match s.pids.unwrap_or(64) {
                        p if p > 0 => p,
                        p => {
                            v.problem(&format!("{key}.pids"), format!("{p} must be positive"));
                            64
                        }
                    },
                    timeout: v.duration(&format!("{key}.timeout"), s.timeout, "2m"),
                    env: s
                        .env
                        .into_iter()
                        .inspect(|e| v.env_name(&format!("{key}.env"), e))
                        .collect(),
                    mounts: s.mounts,
                };
                (name, skill)
            })
            .collect();

        if v.problems.is_empty() {
            Ok(Config {
                source_name: source_name.to_string(),
                fleet,
                discord,
                telegram,
                github,
                docker,
                routing,
                delivery,
                agents,
                routes,
                policy,
                approvals,
                skills,
                schedules,
            })
        } else {
            Err(ConfigError {
                source_name: source_name.to_string(),
                problems: v.problems,
            })
        }
    }
}

pub fn valid_agent_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Parses a duration like `30s`, `10m`, `2h` or `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration ({e}): write it like 30s, 10m or 2h"))
}

#[derive(Default)]
struct Validator {
    problems: Vec<ConfigProblem>,
}

impl Validator {
    fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key: key.into(),
            message: message.into(),
        });
    }

    fn duration(&mut self, key: &str, value: Option<String>, default: &str) -> Duration {
        let text = value.unwrap_or_else(|| default.to_string());
        match parse_duration(&text) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.problem(key, "must be longer than zero");
                parse_duration(default).unwrap_or(Duration::from_secs(1))
            }
            Err(e) => {
                self.problem(key, e);
                parse_duration(default).unwrap_or(Duration::from_secs(1))
            }
        }
    }

    fn url(&mut self, key: &str, value: Option<String>, default: &str) -> String {
        let text = value.unwrap_or_else(|| default.to_string());
        match url::Url::parse(&text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {
                text.trim_end_matches('/').to_string()
            }
            _ => {
                self.problem(key, format!("{text:?} is not an http(s) URL"));
                default.to_string()
            }
        }
    }

    fn snowflake(&mut self, key: &str, text: &str) -> Option<u64> {
        match text.trim().parse::<u64>() {
            Ok(id) if id > 0 => Some(id),
            _ => {
                self.problem(
                    key,
                    format!(
                        "{text:?} is not a Discord id (a number, copied with Developer Mode on)"
                    ),
                );
                None
            }
        }
    }

    fn alias(&mut self, key: &str, alias: &str) {
        if !switchyard_routing::destination::valid_alias(alias) {
            self.problem(key, "aliases use letters, digits, `-` and `_` (at most 64)");
        }
    }

    fn env_name(&mut self, key: &str, env: &str) {
        let ok = !env.is_empty()
            && env
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            && !env.as_bytes()[0].is_ascii_digit();
        if !ok {
            self.problem(
                key,
                format!("{env:?} is not an environment variable name (UPPER_CASE): the file names the variable, never the token itself"),
            );
        }
    }

    fn access(&mut self, key: &str, lists: &BTreeMap<String, Vec<String>>) -> AccessList {
        let mut acl = AccessList::default();
        for (class, entries) in lists {
            let target = match class.as_str() {
                "read" => &mut acl.read,
                "operate" => &mut acl.operate,
                "admin" => &mut acl.admin,
                other => {
                    self.problem(
                        &format!("{key}.{other}"),
                        "unknown class: use read, operate or admin",
                    );
                    continue;
                }
            };
            for entry in entries {
                match entry.parse() {
                    Ok(rule) => target.push(rule),
                    Err(e) => self.problem(&format!("{key}.{class}"), e),
                }
            }
        }
        acl
    }

    fn bytes(&mut self, key: &str, text: &str) -> i64 {
        let t = text.trim().to_ascii_lowercase();
        let (num, mult) = match t.chars().last() {
            Some('k') => (&t[..t.len() - 1], 1i64 << 10),
            Some('m') => (&t[..t.len() - 1], 1 << 20),
            Some('g') => (&t[..t.len() - 1], 1 << 30),
            _ => (t.as_str(), 1),
        };
        match num.parse::<i64>() {
            Ok(n) if n > 0 && n.checked_mul(mult).is_some_and(|b| b >= 6 << 20) => n * mult,
            _ => {
                self.problem(
                    key,
                    format!("{text:?} is not a memory size of at least 6m (like 256m or 1g)"),
                );
                256 << 20
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::load(&ConfigSource::Text {
            name: "test".into(),
            text: text.into(),
            base_dir: "/tmp/x".into(),
        })
    }

    #[test]
    fn shipped_files_parse_and_validate() {
        let demo = Config::demo(Path::new("/tmp/demo")).unwrap();
        assert!(demo.agents.len() >= 3);
        let example = load(EXAMPLE_TOML).unwrap();
        assert_eq!(example.agents.len(), 3);
        assert_eq!(example.fleet.workspace, PathBuf::from("/tmp/x/workspace"));
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let err = load(
            r#"
            [fleet]
            heartbeat_interval = "soon"
            colour = "blue"
            [discord.channels]
            alerts = "not-a-number"
            [routing]
            unmatched = "discord:nowhere"
            [[agents]]
            discord_token_env = "A_TOKEN"
            [[agents]]
            name = "b"
            discord_token_env = "A_TOKEN"
            [[routes]]
            match = { category = "alert" }
            to = ["telegram:operator"]
            "#,
        )
        .unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        for expected in [
            "fleet.colour",
            "fleet.heartbeat_interval",
            "discord.channels.alerts",
            "routing.unmatched",
            "agents[0].name",
            "agents[1].discord_token_env",
            "routes[0].to",
        ] {
            assert!(keys.contains(&expected), "missing {expected} in {err}");
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("abc.def");
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }

    #[test]
    fn proxy_origin_strips_the_api_prefix() {
        let d = DiscordSettings {
            api_base: "http://127.0.0.1:9/api/v10".into(),
            guild_id: None,
            channels: BTreeMap::new(),
            webhooks: BTreeMap::new(),
            access: AccessList::default(),
        };
        assert!(d.is_proxied());
        assert_eq!(d.proxy_origin(), "http://127.0.0.1:9");
    }
}
