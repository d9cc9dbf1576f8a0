//! The commands themselves, as values: what the user asked for, validated.
//!
//! A [`Command`] comes from Telegram text ([`crate::parse_text`]) or from
//! Discord's slash options ([`Command::from_input`]); both go through the
//! same builder, so the two platforms cannot disagree about what a command
//! means.

use std::fmt;

use serde::Serialize;
use switchyard_routing::{Category, Severity};

use crate::catalog::{self, CommandSpec, Requirement, Take, ValueKind};
use crate::duration::MuteDuration;
use crate::ids::{
    AgentName, ApprovalId, MuteId, MuteTarget, TaskId, parse_mute_id, parse_mute_target,
};

/// Longest mute reason kept (it is repeated in every notice).
pub const MAX_REASON_CHARS: usize = 512;
/// Longest task spec accepted from chat.
pub const MAX_SPEC_CHARS: usize = 16_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Command {
    Status,
    Mute {
        target: MuteTarget,
        duration: MuteDuration,
        reason: Option<String>,
        force: bool,
    },
    Unmute {
        id: MuteId,
    },
    Mutes,
    Route {
        category: Category,
        severity: Option<Severity>,
        source: Option<String>,
    },
    Send {
        category: Category,
        title: String,
        body: Option<String>,
    },
    Task(TaskCommand),
    Approvals,
    Approve {
        id: ApprovalId,
    },
    Deny {
        id: ApprovalId,
    },
    Kill {
        agent: Option<AgentName>,
    },
    Resume {
        agent: Option<AgentName>,
    },
    Help {
        command: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum TaskCommand {
    /// The spec as the user wrote it (JSON); the task store validates it.
    Submit {
        spec: String,
    },
    List,
    Show {
        id: TaskId,
    },
    Cancel {
        id: TaskId,
    },
}

/// A value given for one option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionValue {
    Text(String),
    Flag(bool),
}

/// A command as a structured platform (Discord slash options) delivers it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandInput {
    pub name: String,
    pub subcommand: Option<String>,
    pub options: Vec<(String, OptionValue)>,
}

/// What was wrong with what the user typed, and the usage line to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}{}", .usage.as_ref().map(|u| format!("\nUsage: {u}")).unwrap_or_default())]
pub struct UsageError {
    /// The command, when it was recognised.
    pub command: Option<&'static str>,
    /// A sentence saying what was wrong.
    pub problem: String,
    pub usage: Option<String>,
}

impl UsageError {
    pub(crate) fn unknown(name: &str) -> Self {
        UsageError {
            command: None,
            problem: format!("There is no command /{name}. Send /help to see the commands."),
            usage: None,
        }
    }
    pub(crate) fn new(spec: &CommandSpec, problem: impl Into<String>) -> Self {
        let mut problem = problem.into();
        if let Some(first) = problem.get(..1) {
            problem.replace_range(..1, &first.to_uppercase());
        }
        if !problem.ends_with(['.', '?', '!']) {
            problem.push('.');
        }
        UsageError {
            command: Some(spec.name),
            problem,
            usage: Some(spec.usage()),
        }
    }
}

impl Command {
    /// The command's name, as in `/help` and the catalog.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Status => "status",
            Command::Mute { .. } => "mute",
            Command::Unmute { .. } => "unmute",
            Command::Mutes => "mutes",
            Command::Route { .. } => "route",
            Command::Send { .. } => "send",
            Command::Task(_) => "task",
            Command::Approvals => "approvals",
            Command::Approve { .. } => "approve",
            Command::Deny { .. } => "deny",
            Command::Kill { .. } => "kill",
            Command::Resume { .. } => "resume",
            Command::Help { .. } => "help",
        }
    }

    pub fn spec(&self) -> &'static CommandSpec {
        catalog::spec(self.name()).expect("every command has a catalog row")
    }

    pub fn requirement(&self) -> Requirement {
        self.spec().requirement
    }

    fn subcommand(&self) -> Option<&'static str> {
        match self {
            Command::Task(TaskCommand::Submit { .. }) => Some("submit"),
            Command::Task(TaskCommand::List) => Some("list"),
            Command::Task(TaskCommand::Show { .. }) => Some("show"),
            Command::Task(TaskCommand::Cancel { .. }) => Some("cancel"),
            _ => None,
        }
    }

    /// The values by option name, the inverse of the builder.
    fn values(&self) -> Vec<(&'static str, OptionValue)> {
        let text =
            |name: &'static str, v: &dyn fmt::Display| (name, OptionValue::Text(v.to_string()));
        let mut out = Vec::new();
        match self {
            Command::Status | Command::Mutes | Command::Approvals => {}
            Command::Task(TaskCommand::List) => {}
            Command::Mute {
                target,
                duration,
                reason,
                force,
            } => {
                out.push(text("target", target));
                out.push(text("for", duration));
                out.extend(reason.as_ref().map(|r| text("reason", r)));
                if *force {
                    out.push(("force", OptionValue::Flag(true)));
                }
            }
            Command::Unmute { id } => out.push(text("id", id)),
            Command::Route {
                category,
                severity,
                source,
            } => {
                out.push(text("category", category));
                out.extend(severity.as_ref().map(|s| text("severity", s)));
                out.extend(source.as_ref().map(|s| text("source", s)));
            }
            Command::Send {
                category,
                title,
                body,
            } => {
                out.push(text("category", category));
                out.push(text("title", title));
                out.extend(body.as_ref().map(|b| text("body", b)));
            }
            Command::Task(TaskCommand::Submit { spec }) => out.push(text("spec", spec)),
            Command::Task(TaskCommand::Show { id } | TaskCommand::Cancel { id }) => {
                out.push(text("id", id))
            }
            Command::Approve { id } | Command::Deny { id } => out.push(text("id", id)),
            Command::Kill { agent } | Command::Resume { agent } => {
                out.extend(agent.as_ref().map(|a| text("agent", a)));
            }
            Command::Help { command } => out.extend(command.as_ref().map(|c| text("command", c))),
        }
        out
    }

    /// The structured form, as Discord would deliver it.
    pub fn to_input(&self) -> CommandInput {
        CommandInput {
            name: self.name().to_string(),
            subcommand: self.subcommand().map(str::to_string),
            options: self
                .values()
                .into_iter()
                .map(|(n, v)| (n.to_string(), v))
                .collect(),
        }
    }

    /// Builds a command from Discord-style named options.
    pub fn from_input(input: &CommandInput) -> Result<Command, UsageError> {
        let spec = catalog::spec(&input.name).ok_or_else(|| UsageError::unknown(&input.name))?;
        let options = match (&input.subcommand, spec.subcommands.is_empty()) {
            (None, true) => spec.options,
            (Some(sub), false) => {
                spec.subcommand(sub)
                    .ok_or_else(|| {
                        UsageError::new(spec, format!("/{} has no subcommand {sub:?}", spec.name))
                    })?
                    .options
            }
            (Some(sub), true) => {
                return Err(UsageError::new(
                    spec,
                    format!("/{} takes no subcommand, but got {sub:?}", spec.name),
                ));
            }
            (None, false) => {
                return Err(UsageError::new(
                    spec,
                    format!("/{} needs a subcommand", spec.name),
                ));
            }
        };
        let mut args = Args::default();
        for (name, value) in &input.options {
            let Some(option) = options.iter().find(|o| o.name == name) else {
                return Err(UsageError::new(
                    spec,
                    format!("/{} has no option {name:?}", spec.name),
                ));
            };
            match (option.kind, value) {
                (ValueKind::Text, OptionValue::Text(t)) => {
                    let t = t.trim();
                    if !t.is_empty() {
                        args.text.push((option.name, t.to_string()));
                    }
                }
                (ValueKind::Flag, OptionValue::Flag(b)) => {
                    if *b {
                        args.flags.push(option.name);
                    }
                }
                _ => {
                    return Err(UsageError::new(
                        spec,
                        format!("option {name:?} has the wrong type of value"),
                    ));
                }
            }
        }
        build(spec, input.subcommand.as_deref(), args)
    }
}

/// Named values collected by either front end.
#[derive(Debug, Default)]
pub(crate) struct Args {
    pub text: Vec<(&'static str, String)>,
    pub flags: Vec<&'static str>,
}

impl Args {
    fn take(&mut self, name: &str) -> Option<String> {
        let i = self.text.iter().position(|(n, _)| *n == name)?;
        Some(self.text.remove(i).1)
    }
    fn flag(&self, name: &str) -> bool {
        self.flags.contains(&name)
    }
}

/// The one place option values become a [`Command`].
pub(crate) fn build(
    spec: &'static CommandSpec,
    sub: Option<&str>,
    mut args: Args,
) -> Result<Command, UsageError> {
    let usage = |problem: String| UsageError::new(spec, problem);
    let mut required = |name: &str, placeholder: &str| {
        args.take(name)
            .ok_or_else(|| UsageError::new(spec, format!("the {placeholder} is missing")))
    };
    let cmd = match spec.name {
        "status" => Command::Status,
        "mutes" => Command::Mutes,
        "approvals" => Command::Approvals,
        "mute" => {
            let target = parse_mute_target(&required("target", "target")?).map_err(usage)?;
            let duration = required("for", "duration")?
                .parse::<MuteDuration>()
                .map_err(usage)?;
            let reason = args.take("reason");
            if let Some(r) = &reason
                && r.chars().count() > MAX_REASON_CHARS
            {
                return Err(usage(format!(
                    "the reason is longer than {MAX_REASON_CHARS} characters: shorten it"
                )));
            }
            Command::Mute {
                target,
                duration,
                reason,
                force: args.flag("force"),
            }
        }
        "unmute" => Command::Unmute {
            id: parse_mute_id(&required("id", "mute id")?).map_err(usage)?,
        },
        "route" => {
            let category = parse_category(&required("category", "category")?).map_err(usage)?;
            let severity = args
                .take("severity")
                .map(|s| s.parse::<Severity>())
                .transpose()
                .map_err(usage)?;
            let source = args.take("source");
            if let Some(s) = &source
                && (s.chars().count() > 128 || s.chars().any(char::is_whitespace))
            {
                return Err(usage(format!(
                    "source {s:?} must be one word of at most 128 characters"
                )));
            }
            Command::Route {
                category,
                severity,
                source,
            }
        }
        "send" => {
            let category = parse_category(&required("category", "category")?).map_err(usage)?;
            let title = required("title", "title")?;
            Command::Send {
                category,
                title,
                body: args.take("body"),
            }
        }
        "task" => Command::Task(match sub {
            Some("submit") => {
                let spec_text = required("spec", "task spec")?;
                if spec_text.chars().count() > MAX_SPEC_CHARS {
                    return Err(usage(format!(
                        "the task spec is longer than {MAX_SPEC_CHARS} characters: submit it as a file"
                    )));
                }
                TaskCommand::Submit { spec: spec_text }
            }
            Some("list") => TaskCommand::List,
            Some("show") => TaskCommand::Show {
                id: TaskId::parse(&required("id", "task id")?).map_err(usage)?,
            },
            Some("cancel") => TaskCommand::Cancel {
                id: TaskId::parse(&required("id", "task id")?).map_err(usage)?,
            },
            _ => {
                return Err(usage(
                    "/task needs a subcommand: submit, list, show or cancel".into(),
                ));
            }
        }),
        "approve" => Command::Approve {
            id: ApprovalId::parse(&required("id", "approval id")?).map_err(usage)?,
        },
        "deny" => Command::Deny {
            id: ApprovalId::parse(&required("id", "approval id")?).map_err(usage)?,
        },
        "kill" => Command::Kill {
            agent: args
                .take("agent")
                .map(|a| AgentName::parse(&a))
                .transpose()
                .map_err(usage)?,
        },
        "resume" => Command::Resume {
            agent: args
                .take("agent")
                .map(|a| AgentName::parse(&a))
                .transpose()
                .map_err(usage)?,
        },
        "help" => {
            let command = args
                .take("command")
                .map(|c| c.trim_start_matches('/').to_lowercase());
            if let Some(c) = &command
                && catalog::spec(c).is_none()
            {
                return Err(usage(format!("there is no command /{c}")));
            }
            Command::Help { command }
        }
        other => unreachable!("catalog row {other} without a builder"),
    };
    Ok(cmd)
}

/// Any category is accepted (an unknown one shows or tests the `unmatched`
/// route), but it must look like one.
fn parse_category(s: &str) -> Result<Category, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        let known: Vec<&str> = Category::KNOWN.iter().map(Category::as_str).collect();
        return Err(format!(
            "category {s:?} is not valid: use one of {}",
            known.join(", ")
        ));
    }
    Ok(s.parse().unwrap_or_else(|never| match never {}))
}

/// The canonical text form: what [`crate::parse_text`] reads back into the
/// same command. Used in audit records.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spec = self.spec();
        write!(f, "/{}", spec.name)?;
        let options = match self.subcommand() {
            Some(sub) => {
                write!(f, " {sub}")?;
                spec.subcommand(sub).map(|s| s.options).unwrap_or(&[])
            }
            None => spec.options,
        };
        let values = self.values();
        let value = |name: &str| values.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
        // Skipped optional words are written `-` only when a later word follows.
        let mut pending_skips = 0;
        let mut after_line = false;
        for o in options.iter().filter(|o| o.kind == ValueKind::Text) {
            match (value(o.name), o.take) {
                (None, Take::Word) => pending_skips += 1,
                (None, _) => {}
                (Some(OptionValue::Text(v)), take) => {
                    for _ in 0..pending_skips {
                        f.write_str(" -")?;
                    }
                    pending_skips = 0;
                    match take {
                        Take::Word => write!(f, " {}", quote_word(v))?,
                        Take::Line => {
                            write!(f, " {v}")?;
                            after_line = true;
                        }
                        Take::Rest if after_line => write!(f, "\n{v}")?,
                        Take::Rest => write!(f, " {}", quote_rest(v, options))?,
                    }
                }
                (Some(OptionValue::Flag(_)), _) => {}
            }
        }
        for o in options.iter().filter(|o| o.kind == ValueKind::Flag) {
            if value(o.name) == Some(&OptionValue::Flag(true)) {
                write!(f, " {}", o.name)?;
            }
        }
        Ok(())
    }
}

fn quote_word(v: &str) -> String {
    if v.is_empty() || v == "-" || v.contains(char::is_whitespace) || v.starts_with(['"', '“']) {
        format!("\"{v}\"")
    } else {
        v.to_string()
    }
}

/// A rest value ending in a flag's name would be read back as the flag.
fn quote_rest(v: &str, options: &[catalog::OptionSpec]) -> String {
    let last = v.split_whitespace().last().unwrap_or("");
    let clashes = options
        .iter()
        .any(|o| o.kind == ValueKind::Flag && (last == o.name || last == format!("--{}", o.name)));
    if clashes {
        format!("\"{v}\"")
    } else {
        v.to_string()
    }
}
