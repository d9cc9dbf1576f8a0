//! The file's shape: what serde reads from the TOML file and the
//! environment, before anything is checked. Every field is optional here;
//! the section validators supply defaults and report what is wrong.

use std::collections::BTreeMap;

use serde::Deserialize;
use switchyard_routing::RuleSpec;

use super::schedules::RawSchedule;

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
    pub schedules: Vec<RawSchedule>,
    #[serde(default)]
    pub responders: BTreeMap<String, RawResponder>,
    #[serde(default)]
    pub conversations: RawConversations,
    #[serde(default)]
    pub files: super::files::RawFiles,
    #[serde(default)]
    pub sessions: super::sessions::RawSessions,
    #[serde(default)]
    pub console: RawConsole,
}

/// `[console]` as written.
#[derive(Debug, Default, Deserialize)]
pub struct RawConsole {
    pub enabled: Option<bool>,
    pub token_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawFleet {
    pub workspace: Option<String>,
    pub database: Option<String>,
    pub coordination: Option<String>,
    pub lease_ttl: Option<String>,
    pub heartbeat_interval: Option<String>,
    pub stale_after: Option<String>,
    pub secret_env: Option<String>,
    pub stale_temp_after: Option<String>,
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
    /// Who may talk to the agents (absent: the `operate` class).
    pub chat: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawGithub {
    pub api_base: Option<String>,
    pub token_env: Option<String>,
    pub interval: Option<String>,
    pub critical_markers: Option<Vec<String>>,
    pub threads_interval: Option<String>,
    pub ui_paths: Option<Vec<String>>,
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
    pub coalesce_backlog: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAgent {
    pub name: Option<String>,
    pub discord_token_env: Option<String>,
    pub telegram_token_env: Option<String>,
    pub listen: Option<String>,
    /// The `[responders.NAME]` that answers when this agent is spoken to.
    pub responder: Option<String>,
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
    pub decision_keys: Option<Vec<String>>,
    pub signing_key_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawSkill {
    /// `container` (the default) or `session`: a tmux session on the host.
    pub kind: Option<String>,
    /// For a session skill: the program its pane runs while the agent works.
    pub agent_command: Option<String>,
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

/// `[responders.NAME]`: who answers when an agent is spoken to.
#[derive(Debug, Default, Deserialize)]
pub struct RawResponder {
    pub kind: Option<String>,
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub api_key_env: Option<String>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    /// `openai`: how long the whole answer may take; `inbox`: how long a reply may take.
    pub timeout: Option<String>,
    /// `openai`: how long until the first text.
    pub first_token_timeout: Option<String>,
    /// `command`: the skill that answers.
    pub skill: Option<String>,
    /// `inbox`: the inbox the turn is handed to (an agent or a program).
    pub to: Option<String>,
}

/// `[conversations]`: budgets and pacing of every agent's conversations.
#[derive(Debug, Default, Deserialize)]
pub struct RawConversations {
    pub context_chars: Option<usize>,
    pub history_turns: Option<usize>,
    pub memory_entries: Option<usize>,
    pub max_concurrent: Option<usize>,
    pub tokens_per_agent_per_day: Option<u64>,
    pub tokens_per_conversation_per_day: Option<u64>,
    pub bot_pair_turns: Option<u32>,
    pub bot_pair_window: Option<String>,
    pub edit_interval: Option<String>,
    pub typing_interval: Option<String>,
}
