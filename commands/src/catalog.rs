//! The one table of commands: name, options, permission class and summary.
//!
//! Everything user-visible about a command is generated from here: the
//! text grammar's positional order, usage lines, `/help`, the Discord command
//! registration (names, descriptions, options, autocomplete) and Telegram's
//! `setMyCommands` list. Adding a command means adding a row here and a
//! variant to [`crate::Command`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// Each command belongs to one class; a class is granted by an access list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PermissionClass {
    Read,
    Operate,
    Admin,
}

impl PermissionClass {
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionClass::Read => "read",
            PermissionClass::Operate => "operate",
            PermissionClass::Admin => "admin",
        }
    }
}

impl fmt::Display for PermissionClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Discord's limit for command and option descriptions.
pub const DISCORD_DESCRIPTION_MAX: usize = 100;
/// Telegram's limit for a `BotCommand` description.
pub const TELEGRAM_DESCRIPTION_MAX: usize = 256;
/// Both platforms limit command names to 32 characters.
pub const COMMAND_NAME_MAX: usize = 32;

/// What a command needs besides the caller's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// The caller's access list must grant this class (or a higher one).
    Class(PermissionClass),
    /// The caller must be a configured approver (checked through
    /// [`crate::Fleet::is_approver`]), and hold at least this class.
    Approver(PermissionClass),
}

impl Requirement {
    pub fn class(self) -> PermissionClass {
        match self {
            Requirement::Class(c) | Requirement::Approver(c) => c,
        }
    }
}

/// The kind of value an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A string (Discord option type 3).
    Text,
    /// A boolean (Discord option type 5); in text, the option's name as the last word.
    Flag,
}

/// How the text grammar takes a text option's value from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// One word, or a "quoted phrase". `-` stands for "not given".
    Word,
    /// The rest of the first line.
    Line,
    /// Everything that remains, newlines included (a reason, a body, a JSON spec).
    Rest,
}

/// Which known values an option can be completed from (Discord autocomplete).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Completion {
    Category,
    Severity,
    MuteTarget,
    MuteId,
    ApprovalId,
    Agent,
    Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    /// The option's name in Discord and in the code.
    pub name: &'static str,
    /// What the usage line shows (`<duration>` for the option `for`).
    pub placeholder: &'static str,
    pub kind: ValueKind,
    pub take: Take,
    pub required: bool,
    pub description: &'static str,
    pub completion: Option<Completion>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubcommandSpec {
    pub name: &'static str,
    pub summary: &'static str,
    pub options: &'static [OptionSpec],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    pub name: &'static str,
    pub requirement: Requirement,
    /// One line, at most 100 characters (Discord's description limit).
    pub summary: &'static str,
    pub options: &'static [OptionSpec],
    /// Non-empty for commands with subcommands (`task`); then `options` is empty.
    pub subcommands: &'static [SubcommandSpec],
}

const fn word(
    name: &'static str,
    required: bool,
    description: &'static str,
    completion: Option<Completion>,
) -> OptionSpec {
    OptionSpec {
        name,
        placeholder: name,
        kind: ValueKind::Text,
        take: Take::Word,
        required,
        description,
        completion,
    }
}

const fn flag(name: &'static str, description: &'static str) -> OptionSpec {
    OptionSpec {
        name,
        placeholder: name,
        kind: ValueKind::Flag,
        take: Take::Word,
        required: false,
        description,
        completion: None,
    }
}

use Completion as C;
use PermissionClass::{Admin, Operate, Read};

const ID_TASK: OptionSpec = word("id", true, "The task id, as /task list shows it", None);

/// Every command, in the order `/help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "status",
        requirement: Requirement::Class(Read),
        summary: "The fleet at a glance: agents, heartbeats, queues, pending deliveries, mutes, kill switch",
        options: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "mute",
        requirement: Requirement::Class(Operate),
        summary: "Hold a category, channel or source for a while; one digest of what was held follows",
        options: &[
            word(
                "target",
                true,
                "A category (system), channel (discord:alerts, #alerts) or source:NAME",
                Some(C::MuteTarget),
            ),
            OptionSpec {
                name: "for",
                placeholder: "duration",
                kind: ValueKind::Text,
                take: Take::Word,
                required: true,
                description: "How long: 30m, 2h, 1h30m (1m to 30d)",
                completion: None,
            },
            OptionSpec {
                name: "reason",
                placeholder: "reason",
                kind: ValueKind::Text,
                take: Take::Rest,
                required: false,
                description: "Why, shown with the mute and in the notices",
                completion: None,
            },
            flag("force", "Also hold critical and action_required messages"),
        ],
        subcommands: &[],
    },
    CommandSpec {
        name: "unmute",
        requirement: Requirement::Class(Operate),
        summary: "Lift a mute now; what it held is posted as one digest",
        options: &[word(
            "id",
            true,
            "The mute id, as /mutes shows it",
            Some(C::MuteId),
        )],
        subcommands: &[],
    },
    CommandSpec {
        name: "mutes",
        requirement: Requirement::Class(Read),
        summary: "List the active mutes: target, until when, who and why, messages held",
        options: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "route",
        requirement: Requirement::Class(Read),
        summary: "Explain where an event would go and which rule decides",
        options: &[
            word(
                "category",
                true,
                "The event's category (alert, system, briefing, ...)",
                Some(C::Category),
            ),
            word(
                "severity",
                false,
                "info, warning or critical (default info)",
                Some(C::Severity),
            ),
            word(
                "source",
                false,
                "The producer, such as worker:opsclaw",
                None,
            ),
        ],
        subcommands: &[],
    },
    CommandSpec {
        name: "send",
        requirement: Requirement::Class(Operate),
        summary: "Post an event through the router, to reach people or to test routes",
        options: &[
            word(
                "category",
                true,
                "The event's category (alert, system, briefing, ...)",
                Some(C::Category),
            ),
            OptionSpec {
                name: "title",
                placeholder: "title",
                kind: ValueKind::Text,
                take: Take::Line,
                required: true,
                description: "A one-line summary (the rest of the first line)",
                completion: None,
            },
            OptionSpec {
                name: "body",
                placeholder: "body",
                kind: ValueKind::Text,
                take: Take::Rest,
                required: false,
                description: "The details (the following lines)",
                completion: None,
            },
        ],
        subcommands: &[],
    },
    CommandSpec {
        name: "task",
        requirement: Requirement::Class(Operate),
        summary: "Submit, list, show or cancel tasks for the container workers",
        options: &[],
        subcommands: &[
            SubcommandSpec {
                name: "submit",
                summary: "Submit a task spec (JSON) to the pipeline",
                options: &[OptionSpec {
                    name: "spec",
                    placeholder: "spec",
                    kind: ValueKind::Text,
                    take: Take::Rest,
                    required: true,
                    description: "The task spec as JSON, as in a task file",
                    completion: None,
                }],
            },
            SubcommandSpec {
                name: "list",
                summary: "List recent tasks and their states",
                options: &[],
            },
            SubcommandSpec {
                name: "show",
                summary: "Show one task: steps, attempts, cost, result",
                options: &[ID_TASK],
            },
            SubcommandSpec {
                name: "cancel",
                summary: "Cancel a task that has not finished",
                options: &[ID_TASK],
            },
        ],
    },
    CommandSpec {
        name: "approvals",
        requirement: Requirement::Class(Read),
        summary: "List pending approval requests, with Approve and Deny buttons",
        options: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "approve",
        requirement: Requirement::Approver(Read),
        summary: "Approve a pending request (approvers only)",
        options: &[word(
            "id",
            true,
            "The approval id, as /approvals shows it",
            Some(C::ApprovalId),
        )],
        subcommands: &[],
    },
    CommandSpec {
        name: "deny",
        requirement: Requirement::Approver(Read),
        summary: "Deny a pending request (approvers only)",
        options: &[word(
            "id",
            true,
            "The approval id, as /approvals shows it",
            Some(C::ApprovalId),
        )],
        subcommands: &[],
    },
    CommandSpec {
        name: "kill",
        requirement: Requirement::Class(Admin),
        summary: "Kill switch: stop new work and running containers, for one agent or the whole fleet",
        options: &[word(
            "agent",
            false,
            "One agent's name; leave out for the whole fleet",
            Some(C::Agent),
        )],
        subcommands: &[],
    },
    CommandSpec {
        name: "resume",
        requirement: Requirement::Class(Admin),
        summary: "Release the kill switch, for one agent or the whole fleet",
        options: &[word(
            "agent",
            false,
            "One agent's name; leave out for the whole fleet",
            Some(C::Agent),
        )],
        subcommands: &[],
    },
    CommandSpec {
        name: "help",
        requirement: Requirement::Class(Read),
        summary: "List the commands, or explain one",
        options: &[word(
            "command",
            false,
            "A command name, such as mute",
            Some(C::Command),
        )],
        subcommands: &[],
    },
];

/// The row for a command name (without the slash).
pub fn spec(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

impl CommandSpec {
    pub fn subcommand(&self, name: &str) -> Option<&'static SubcommandSpec> {
        self.subcommands.iter().find(|s| s.name == name)
    }

    /// The option row for a Discord option name, looking inside subcommands
    /// too (autocomplete names the focused option only).
    pub fn option(&self, subcommand: Option<&str>, name: &str) -> Option<&'static OptionSpec> {
        let options = match subcommand.and_then(|s| self.subcommand(s)) {
            Some(sub) => sub.options,
            None => self.options,
        };
        options.iter().find(|o| o.name == name)
    }

    /// `/mute <target> <duration> [reason...] [force]`; for commands with
    /// subcommands, the alternatives separated by `|`.
    pub fn usage(&self) -> String {
        if self.subcommands.is_empty() {
            return format!("/{}{}", self.name, args_usage(self.options));
        }
        let alternatives: Vec<String> = self
            .subcommands
            .iter()
            .map(|s| format!("{}{}", s.name, args_usage(s.options)))
            .collect();
        format!("/{} {}", self.name, alternatives.join(" | "))
    }

    /// The usage line of one subcommand (`/task show <id>`).
    pub fn subcommand_usage(&self, sub: &SubcommandSpec) -> String {
        format!("/{} {}{}", self.name, sub.name, args_usage(sub.options))
    }

    /// The description Discord shows under the command name (≤ 100 characters).
    pub fn discord_description(&self) -> &'static str {
        self.summary
    }

    /// The description in Telegram's command menu (≤ 256 characters): the
    /// arguments first, since Telegram has no option prompts.
    pub fn telegram_description(&self) -> String {
        let usage = self.usage();
        let args = usage
            .strip_prefix(&format!("/{}", self.name))
            .unwrap_or("")
            .trim();
        if args.is_empty() {
            self.summary.to_string()
        } else {
            format!("{args} — {}", self.summary)
        }
    }
}

fn args_usage(options: &[OptionSpec]) -> String {
    options
        .iter()
        .map(|o| {
            let dots = if matches!(o.take, Take::Line | Take::Rest) && o.kind == ValueKind::Text {
                "..."
            } else {
                ""
            };
            match (o.kind, o.required) {
                (ValueKind::Flag, _) => format!(" [{}]", o.placeholder),
                (ValueKind::Text, true) => format!(" <{}{dots}>", o.placeholder),
                (ValueKind::Text, false) => format!(" [{}{dots}]", o.placeholder),
            }
        })
        .collect()
}

/// One entry for Telegram's `setMyCommands`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TelegramCommand {
    pub command: String,
    pub description: String,
}

/// The list for Telegram's `setMyCommands`, every entry within its limits.
pub fn telegram_commands() -> Vec<TelegramCommand> {
    COMMANDS
        .iter()
        .map(|c| TelegramCommand {
            command: c.name.to_string(),
            description: c.telegram_description(),
        })
        .collect()
}

/// `/help`: every command with its usage and summary.
pub fn help_overview() -> Vec<String> {
    COMMANDS
        .iter()
        .map(|c| format!("{} — {}", c.usage(), c.summary))
        .collect()
}

/// `/help NAME`: usage, who may run it, and each option.
pub fn help_for(spec: &CommandSpec) -> Vec<String> {
    let mut lines = vec![spec.summary.to_string(), format!("Usage: {}", spec.usage())];
    lines.push(match spec.requirement {
        Requirement::Class(c) => format!("Needs the {c} permission."),
        Requirement::Approver(_) => "Only configured approvers may run it.".to_string(),
    });
    let describe = |o: &OptionSpec| format!("{}: {}", o.placeholder, o.description);
    lines.extend(spec.options.iter().map(describe));
    for sub in spec.subcommands {
        lines.push(format!("{} — {}", spec.subcommand_usage(sub), sub.summary));
        lines.extend(sub.options.iter().map(|o| format!("  {}", describe(o))));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_name(name: &str) -> bool {
        (1..=COMMAND_NAME_MAX).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }

    #[test]
    fn discord_limits_hold_for_every_command_and_option() {
        assert!(COMMANDS.len() <= 100);
        for c in COMMANDS {
            assert!(valid_name(c.name), "{}", c.name);
            assert!(
                (1..=DISCORD_DESCRIPTION_MAX).contains(&c.discord_description().chars().count()),
                "{}",
                c.name
            );
            assert!(c.options.len() <= 25 && c.subcommands.len() <= 25);
            assert!(
                c.options.is_empty() || c.subcommands.is_empty(),
                "{}: Discord forbids mixing",
                c.name
            );
            let subs = c.subcommands.iter().map(|s| (s.name, s.summary, s.options));
            for (name, summary, options) in
                std::iter::once((c.name, c.summary, c.options)).chain(subs)
            {
                assert!(valid_name(name), "{name}");
                assert!(
                    (1..=DISCORD_DESCRIPTION_MAX).contains(&summary.chars().count()),
                    "{name}"
                );
                // Discord requires required options before optional ones.
                let first_optional = options
                    .iter()
                    .position(|o| !o.required)
                    .unwrap_or(options.len());
                assert!(
                    options[first_optional..].iter().all(|o| !o.required),
                    "{name}"
                );
                for o in options {
                    assert!(valid_name(o.name), "{name}.{}", o.name);
                    assert!(
                        (1..=DISCORD_DESCRIPTION_MAX).contains(&o.description.chars().count()),
                        "{name}.{}",
                        o.name
                    );
                }
            }
        }
    }

    #[test]
    fn telegram_limits_hold() {
        let list = telegram_commands();
        assert_eq!(list.len(), COMMANDS.len());
        for c in list {
            assert!(valid_name(&c.command), "{}", c.command);
            let n = c.description.chars().count();
            assert!(
                (1..=TELEGRAM_DESCRIPTION_MAX).contains(&n),
                "{}: {n}",
                c.command
            );
        }
    }

    #[test]
    fn usage_lines_come_from_the_table() {
        assert_eq!(
            spec("mute").unwrap().usage(),
            "/mute <target> <duration> [reason...] [force]"
        );
        assert_eq!(
            spec("send").unwrap().usage(),
            "/send <category> <title...> [body...]"
        );
        assert_eq!(
            spec("task").unwrap().usage(),
            "/task submit <spec...> | list | show <id> | cancel <id>"
        );
        assert_eq!(spec("status").unwrap().usage(), "/status");
        assert_eq!(
            spec("mute")
                .unwrap()
                .telegram_description()
                .split(" — ")
                .next(),
            Some("<target> <duration> [reason...] [force]")
        );
    }

    #[test]
    fn text_grammar_is_unambiguous() {
        // Only one Line or Rest option, at the end (a Rest may follow a Line):
        // otherwise the text form could not say where one value stops.
        for c in COMMANDS {
            let lists = std::iter::once(c.options).chain(c.subcommands.iter().map(|s| s.options));
            for options in lists {
                let texts: Vec<&OptionSpec> = options
                    .iter()
                    .filter(|o| o.kind == ValueKind::Text)
                    .collect();
                for (i, o) in texts.iter().enumerate() {
                    let later = &texts[i + 1..];
                    match o.take {
                        Take::Word => {}
                        Take::Line => {
                            assert!(later.iter().all(|l| l.take == Take::Rest), "{}", c.name)
                        }
                        Take::Rest => assert!(later.is_empty(), "{}", c.name),
                    }
                }
            }
        }
    }
}
