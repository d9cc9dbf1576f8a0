//! Typed configuration of a fleet (DESIGN.md 3.2).
//!
//! Loading has two phases. The `config` crate layers the TOML file and the
//! `SWITCHYARD__SECTION__KEY` environment into [`RawConfig`], whose shape is
//! the file's; unknown keys are collected (not fatal one by one) through
//! `serde_ignored`. Then [`Config::from_raw`] checks everything and builds
//! the typed [`Config`], reporting every problem at once with its key path:
//! `raw` holds the file's shape, one module per section (`fleet`, `discord`,
//! `telegram`, `github`, `routes`, `agents`, `policy`, `schedules`,
//! `skills`) holds its typed settings and its validator, and every validator
//! reports into the one collector of `validator`.
//! Tokens are never in the file: it names the environment variable that
//! holds each, and [`Secret`] keeps the value out of logs and `Debug`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use switchyard_routing::{Router, RuleSpec};

use crate::error::BadInput;

mod agents;
mod console;
mod cron;
mod discord;
mod files;
mod fleet;
mod github;
pub mod keys;
mod live;
mod policy;
mod raw;
mod responders;
mod routes;
pub(crate) mod schedules;
mod sessions;
mod shape;
mod skills;
mod telegram;
mod validator;

pub use crate::error::{ConfigError, ConfigProblem};
pub use agents::AgentSettings;
pub use console::ConsoleSettings;
pub use discord::DiscordSettings;
pub use files::{DEFAULT_ATTACHABLE, FilesSettings};
pub use fleet::{
    DEFAULT_SECRET_ENV, DeliverySettings, DockerSettings, FleetSettings, MIN_FLEET_SECRET_LEN,
};
pub use github::GithubSettings;
pub use live::{Access, LiveAccess, LiveRouting, Routing};
pub use policy::{ApprovalSettings, PolicySettings};
pub use raw::{
    RawAgent, RawApprovals, RawConfig, RawDelivery, RawDiscord, RawDocker, RawFleet, RawGithub,
    RawPolicy, RawRouting, RawSkill, RawTelegram, RawTelegramAccess,
};
pub use responders::{ConversationSettings, OpenAiSettings, ResponderKind, ResponderSettings};
pub use routes::RoutingSettings;
pub use schedules::{Missed, RawSchedule, Schedule, parse_cron};
pub use sessions::SessionsSettings;
pub use skills::{SHELLS, SessionSkill, SkillSettings};
pub use telegram::{TelegramSettings, TelegramWebhook};
pub use validator::parse_duration;

use validator::Validator;

/// The fleet file `switchyard demo` runs when given no `--config`.
pub const DEMO_TOML: &str = include_str!("../../config/demo.toml");
/// The documented example fleet, shipped for users to copy.
pub const EXAMPLE_TOML: &str = include_str!("../../config/example.toml");

const ENV_PREFIX: &str = "SWITCHYARD";

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
    pub schedules: Vec<Schedule>,
    pub responders: BTreeMap<String, ResponderSettings>,
    pub conversations: ConversationSettings,
    pub files: FilesSettings,
    pub sessions: SessionsSettings,
    pub console: ConsoleSettings,
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
        let first =
            serde_ignored::deserialize(layered.clone(), |path| unknown.push(path.to_string()));
        let base_dir = std::path::absolute(&base_dir).unwrap_or(base_dir);
        let raw: RawConfig = match first {
            Ok(raw) => raw,
            Err(e) => {
                // Values of the wrong type: find every one, then check what is left.
                unknown.clear();
                let (mut problems, rest) = shape::tree_of(layered)
                    .map(|tree| shape::misfits(tree, &mut unknown))
                    .unwrap_or_default();
                if problems.is_empty() {
                    problems.push(ConfigProblem {
                        key: "(shape)".into(),
                        message: e.to_string(),
                    });
                }
                let misfit: Vec<String> = problems.iter().map(|p| p.key.clone()).collect();
                problems.extend(unknown.into_iter().map(|key| ConfigProblem {
                    key: shape::key_path(&key),
                    message: "unknown key: remove it or check its spelling".into(),
                }));
                if let Some(raw) = rest
                    && let Err(more) = Config::from_raw(raw, &base_dir, &name)
                {
                    // A key taken out for its type is not also "missing".
                    problems.extend(
                        more.problems
                            .into_iter()
                            .filter(|p| !misfit.contains(&p.key)),
                    );
                }
                return Err(ConfigError {
                    source_name: name,
                    problems,
                });
            }
        };
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

    /// The agent named `name`, or the user's mistake in one sentence
    /// (exit status 2 from the shell).
    pub fn require_agent(&self, name: &str) -> Result<&AgentSettings, BadInput> {
        self.agent(name)
            .ok_or_else(|| BadInput(format!("no agent named {name:?} in {}", self.source_name)))
    }

    /// What an agent decides by, as one number: its routes, routing,
    /// policy, skills and approvals settings (not paths, addresses or
    /// tokens, which differ between hosts). A standby must have the same.
    pub fn fingerprint(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}",
            self.routes, self.routing, self.policy, self.skills, self.approvals
        )
        .hash(&mut h);
        format!("{:016x}", h.finish())
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
        if self.needs_fleet_secret() {
            let env = &self.fleet.secret_env;
            let len = std::env::var(env).map(|v| v.trim().len()).unwrap_or(0);
            if len < MIN_FLEET_SECRET_LEN {
                problems.push(ConfigProblem {
                    key: "fleet.secret_env".into(),
                    message: format!(
                        "environment variable {env} {}: agents that forward approvals to each other prove who wrote a decision with it, so every agent needs the same value, at least {MIN_FLEET_SECRET_LEN} bytes (make one with `openssl rand -hex 32`)",
                        if len == 0 { "is not set".to_string() } else { format!("holds only {len} bytes") }
                    ),
                });
            }
        }
        if let Err(p) = self.signing_key(&agent.name) {
            problems.push(p);
        }
        problems
    }

    /// Whether `agent` signs the decisions it sends back to requesters: it
    /// prompts the approvers (owns Telegram), others forward to it, and
    /// `[approvals] decision_keys` is set.
    pub fn signs_decisions(&self, agent: &str) -> bool {
        !self.approvals.decision_keys.is_empty()
            && self.needs_fleet_secret()
            && self.telegram_owner().is_some_and(|o| o.name == agent)
    }

    /// The key `agent` signs decisions with, read from its environment;
    /// `Ok(None)` when it signs none. A key that is missing, malformed or not
    /// one of `decision_keys` is a problem: the requesters would refuse
    /// every decision it sent.
    pub fn signing_key(&self, agent: &str) -> Result<Option<keys::SigningKey>, ConfigProblem> {
        if !self.signs_decisions(agent) {
            return Ok(None);
        }
        let env = &self.approvals.signing_key_env;
        let problem = |message: String| ConfigProblem {
            key: "approvals.signing_key_env".into(),
            message,
        };
        match keys::SigningKey::from_env(env) {
            Ok(Some(key)) if self.approvals.decision_keys.contains(&key.public()) => Ok(Some(key)),
            Ok(Some(key)) => Err(problem(format!(
                "the key in {env} is not one of approvals.decision_keys (its public key is {}): add that line there, or set the key that belongs to one of them",
                key.public()
            ))),
            Ok(None) => Err(problem(format!(
                "environment variable {env} is not set: {agent} prompts the approvers and signs every decision it sends back with it, since approvals.decision_keys is set (make a pair with `switchyard approval keygen`; the key stays on this host only)"
            ))),
            Err(e) => Err(problem(format!("environment variable {env} {e}"))),
        }
    }

    /// This fleet's identity on shared infrastructure (the container labels
    /// of its workers): a digest of its workspace's path, so two fleets, a
    /// demo and a test run on one Docker engine never touch each other's work.
    pub fn fleet_id(&self) -> String {
        use sha2::Digest;
        let workspace = std::fs::canonicalize(&self.fleet.workspace)
            .unwrap_or_else(|_| self.fleet.workspace.clone());
        let digest = sha2::Sha256::digest(workspace.as_os_str().as_encoded_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether agents hand approvals to each other (more than one agent, one
    /// of them owning Telegram): then each needs the fleet secret.
    pub fn needs_fleet_secret(&self) -> bool {
        self.agents.len() > 1 && self.telegram_owner().is_some()
    }

    /// Check the file's shape section by section and build the typed
    /// configuration. Every section validator reports into one collector,
    /// so the error lists every problem of the file at once.
    pub fn from_raw(
        raw: RawConfig,
        base_dir: &Path,
        source_name: &str,
    ) -> Result<Config, ConfigError> {
        let mut v = Validator::default();
        let fleet = fleet::fleet(&mut v, raw.fleet, base_dir);
        let discord = raw.discord.map(|d| discord::discord(&mut v, d));
        let telegram = raw.telegram.map(|t| telegram::telegram(&mut v, t));
        let github = raw.github.map(|g| github::github(&mut v, g));
        let docker = fleet::docker(raw.docker);
        let dests = routes::Destinations {
            discord: discord.as_ref(),
            telegram: telegram.as_ref(),
        };
        let (routing, routes) = routes::routing(&mut v, raw.routing, raw.routes, dests);
        let delivery = fleet::delivery(&mut v, raw.delivery);
        let (agents, agent_names) = agents::agents(&mut v, raw.agents, telegram.is_some());
        let policy = policy::policy(&mut v, raw.policy);
        let approvals = policy::approvals(&mut v, &raw.approvals, telegram.as_ref(), dests);
        let schedules = schedules::schedules(&mut v, raw.schedules, &agent_names);
        // Secrets only agent processes hold: no worker or session gets them.
        let mut agent_only: Vec<(&str, &str)> = vec![
            (fleet.secret_env.as_str(), "the fleet secret"),
            (
                approvals.signing_key_env.as_str(),
                "the approvals' signing key",
            ),
        ];
        if let Some(g) = &github {
            agent_only.push((g.token_env.as_str(), "the GitHub monitor's token"));
        }
        for a in &agents {
            for env in [&a.discord_token_env, &a.telegram_token_env]
                .into_iter()
                .flatten()
            {
                agent_only.push((env.as_str(), "a bot token"));
            }
        }
        let skills = skills::skills(&mut v, raw.skills, &agent_only);
        let skill_names: Vec<String> = skills.keys().cloned().collect();
        let responders = responders::responders(&mut v, raw.responders, &skill_names);
        let conversations = responders::conversations(&mut v, raw.conversations);
        let files = files::files(&mut v, raw.files);
        let sessions = sessions::sessions(&mut v, raw.sessions, base_dir, &fleet.workspace);
        let console = console::console(&mut v, raw.console, &agents);
        for (i, a) in agents.iter().enumerate() {
            if let Some(r) = &a.responder
                && !responders.contains_key(r)
            {
                v.problem(
                    &format!("agents[{i}].responder"),
                    format!("{r:?} is not a configured [responders.NAME]"),
                );
            }
        }

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
                responders,
                conversations,
                files,
                sessions,
                console,
            })
        } else {
            Err(ConfigError {
                source_name: source_name.to_string(),
                problems: v.problems,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_commands::AccessList;

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
    fn no_skill_may_pass_the_fleet_secret_or_the_signing_key_to_a_worker() {
        let err = load(
            r#"
            [approvals]
            signing_key_env = "OPS_DECISION_KEY"
            [skills.sh]
            image = "busybox"
            env = ["SWITCHYARD_FLEET_SECRET", "OPS_DECISION_KEY", "HOME_DIR"]
            "#,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("SWITCHYARD_FLEET_SECRET is the fleet secret"),
            "{text}"
        );
        assert!(
            text.contains("OPS_DECISION_KEY is the approvals' signing key"),
            "{text}"
        );
        assert!(!text.contains("HOME_DIR is"), "{text}");
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
