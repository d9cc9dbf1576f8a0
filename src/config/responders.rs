//! `[responders.NAME]` (who answers when an agent is spoken to) and
//! `[conversations]` (the budgets and pacing every conversation keeps).
//! An agent converses only when its `[[agents]] responder` names one.

use std::collections::BTreeMap;
use std::time::Duration;

use super::raw::{RawConversations, RawResponder};
use super::validator::Validator;

/// One configured responder.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponderSettings {
    pub name: String,
    pub kind: ResponderKind,
}

/// How a responder answers.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponderKind {
    /// Any OpenAI-compatible Chat Completions endpoint, streamed.
    OpenAi(OpenAiSettings),
    /// The turn is handed to another inbox (an agent or a program), which
    /// answers with a `reply` item within `timeout`.
    Inbox { to: String, timeout: Duration },
    /// A skill answers: the turn as JSON on standard input, the answer on
    /// standard output, in a container with the skill's limits.
    Command { skill: String, timeout: Duration },
}

impl ResponderKind {
    /// The name used in the file, in logs and in metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            ResponderKind::OpenAi(_) => "openai",
            ResponderKind::Inbox { .. } => "inbox",
            ResponderKind::Command { .. } => "command",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiSettings {
    /// Up to the version, e.g. `http://127.0.0.1:11434/v1`; the client
    /// appends `/chat/completions`.
    pub base_url: String,
    pub model: String,
    /// The environment variable holding the API key (never the key).
    pub api_key_env: Option<String>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    /// The whole answer's time box.
    pub timeout: Duration,
    /// How long the endpoint may take to send its first text.
    pub first_token_timeout: Duration,
}

/// `[conversations]`, with the defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationSettings {
    /// The most the responder is given (persona, memory, status, history), in characters.
    pub context_chars: usize,
    /// How many earlier turns of the conversation it sees at most.
    pub history_turns: usize,
    /// How many of the fleet memory log's last entries it sees.
    pub memory_entries: usize,
    /// Turns of different conversations answered at once.
    pub max_concurrent: usize,
    /// Tokens (prompt and completion) an agent may spend per UTC day; 0: no limit.
    pub tokens_per_agent_per_day: u64,
    /// Tokens one conversation may spend per UTC day; 0: no limit.
    pub tokens_per_conversation_per_day: u64,
    /// Turns two of the fleet's bots may exchange within `bot_pair_window`.
    pub bot_pair_turns: u32,
    pub bot_pair_window: Duration,
    /// The least time between two edits of a streamed message.
    pub edit_interval: Duration,
    /// How often the typing indicator is renewed while waiting.
    pub typing_interval: Duration,
}

impl Default for ConversationSettings {
    fn default() -> Self {
        ConversationSettings {
            context_chars: 24_000,
            history_turns: 20,
            memory_entries: 10,
            max_concurrent: 8,
            tokens_per_agent_per_day: 0,
            tokens_per_conversation_per_day: 0,
            bot_pair_turns: 20,
            bot_pair_window: Duration::from_secs(60),
            edit_interval: Duration::from_secs(1),
            typing_interval: Duration::from_secs(8),
        }
    }
}

pub(super) fn responders(
    v: &mut Validator,
    raw: BTreeMap<String, RawResponder>,
    skills: &[String],
) -> BTreeMap<String, ResponderSettings> {
    let mut out = BTreeMap::new();
    for (name, r) in raw {
        let key = format!("responders.{name}");
        v.alias(&key, &name);
        let kind = match r.kind.as_deref() {
            Some("openai") => {
                let base_url = match r.base_url {
                    Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                        u.trim_end_matches('/').to_string()
                    }
                    Some(u) => {
                        v.problem(
                            &format!("{key}.base_url"),
                            format!("{u:?} is not an http(s) URL like http://127.0.0.1:11434/v1"),
                        );
                        continue;
                    }
                    None => {
                        v.problem(
                            &format!("{key}.base_url"),
                            "is missing: the endpoint up to its version, e.g. http://127.0.0.1:11434/v1",
                        );
                        continue;
                    }
                };
                let model = match r.model {
                    Some(m) if !m.trim().is_empty() => m,
                    _ => {
                        v.problem(
                            &format!("{key}.model"),
                            "is missing: the model to ask, e.g. \"llama3.2\"",
                        );
                        continue;
                    }
                };
                if let Some(env) = &r.api_key_env {
                    v.env_name(&format!("{key}.api_key_env"), env);
                }
                if let Some(t) = r.temperature
                    && !(0.0..=2.0).contains(&t)
                {
                    v.problem(
                        &format!("{key}.temperature"),
                        format!("{t} is out of range: use 0 to 2"),
                    );
                }
                if r.max_tokens == Some(0) {
                    v.problem(&format!("{key}.max_tokens"), "must be at least 1");
                }
                for (field, set) in [("skill", r.skill.is_some()), ("to", r.to.is_some())] {
                    if set {
                        v.problem(
                            &format!("{key}.{field}"),
                            "is not a key of an openai responder",
                        );
                    }
                }
                ResponderKind::OpenAi(OpenAiSettings {
                    base_url,
                    model,
                    api_key_env: r.api_key_env,
                    max_tokens: r.max_tokens,
                    temperature: r.temperature,
                    timeout: v.duration(&format!("{key}.timeout"), r.timeout, "2m"),
                    first_token_timeout: v.duration(
                        &format!("{key}.first_token_timeout"),
                        r.first_token_timeout,
                        "60s",
                    ),
                })
            }
            Some("inbox") => {
                let Some(to) = r.to else {
                    v.problem(
                        &format!("{key}.to"),
                        "is missing: the inbox (an agent or a program's name) the turn is handed to",
                    );
                    continue;
                };
                if !switchyard_commands::AgentName::is_valid(&to) {
                    v.problem(
                        &format!("{key}.to"),
                        format!("{to:?} is not an inbox name: use 1-32 lowercase letters, digits, `-` or `_`"),
                    );
                }
                ResponderKind::Inbox {
                    to,
                    timeout: v.duration(&format!("{key}.timeout"), r.timeout, "10m"),
                }
            }
            Some("command") => {
                let Some(skill) = r.skill else {
                    v.problem(
                        &format!("{key}.skill"),
                        "is missing: the [skills.NAME] whose command answers",
                    );
                    continue;
                };
                if !skills.contains(&skill) {
                    v.problem(
                        &format!("{key}.skill"),
                        format!("{skill:?} is not a configured [skills.NAME]"),
                    );
                }
                ResponderKind::Command {
                    skill,
                    timeout: v.duration(&format!("{key}.timeout"), r.timeout, "2m"),
                }
            }
            Some(other) => {
                v.problem(
                    &format!("{key}.kind"),
                    format!("{other:?} is not a responder kind: use \"openai\", \"command\" or \"inbox\""),
                );
                continue;
            }
            None => {
                v.problem(
                    &format!("{key}.kind"),
                    "is missing: \"openai\", \"command\" or \"inbox\"",
                );
                continue;
            }
        };
        out.insert(name.clone(), ResponderSettings { name, kind });
    }
    out
}

pub(super) fn conversations(v: &mut Validator, raw: RawConversations) -> ConversationSettings {
    let d = ConversationSettings::default();
    let positive = |v: &mut Validator, key: &str, value: Option<usize>, default: usize| match value
    {
        Some(0) => {
            v.problem(&format!("conversations.{key}"), "must be at least 1");
            default
        }
        Some(n) => n,
        None => default,
    };
    let s = ConversationSettings {
        context_chars: positive(v, "context_chars", raw.context_chars, d.context_chars),
        history_turns: raw.history_turns.unwrap_or(d.history_turns),
        memory_entries: raw.memory_entries.unwrap_or(d.memory_entries),
        max_concurrent: positive(v, "max_concurrent", raw.max_concurrent, d.max_concurrent),
        tokens_per_agent_per_day: raw
            .tokens_per_agent_per_day
            .unwrap_or(d.tokens_per_agent_per_day),
        tokens_per_conversation_per_day: raw
            .tokens_per_conversation_per_day
            .unwrap_or(d.tokens_per_conversation_per_day),
        bot_pair_turns: raw.bot_pair_turns.unwrap_or(d.bot_pair_turns),
        bot_pair_window: v.duration("conversations.bot_pair_window", raw.bot_pair_window, "60s"),
        edit_interval: v.duration("conversations.edit_interval", raw.edit_interval, "1s"),
        typing_interval: v.duration("conversations.typing_interval", raw.typing_interval, "8s"),
    };
    if s.context_chars < 1_000 {
        v.problem(
            "conversations.context_chars",
            format!(
                "{} is too small to hold a persona and a question: use at least 1000",
                s.context_chars
            ),
        );
    }
    if s.edit_interval < Duration::from_millis(200) {
        v.problem(
            "conversations.edit_interval",
            "must be at least 200ms: the platforms refuse faster edits",
        );
    }
    s
}
