//! The text grammar (Telegram, and anything else that only has text):
//! `/mute system 2h too noisy force`, `/send alert Disk full on web-1`
//! followed by body lines, `/mute@switchyard_bot system 1h`.
//!
//! Positional order, which option takes one word, the rest of the line or
//! everything that remains, and which words are flags all come from the
//! catalog; values then go through the same builder as Discord's options.

use crate::catalog::{self, OptionSpec, Take, ValueKind};
use crate::command::{Args, Command, UsageError, build};

const OPEN_QUOTES: [char; 3] = ['"', '“', '„'];
const CLOSE_QUOTES: [char; 2] = ['"', '”'];

/// Parses one message. A leading `/` is optional; a `@botname` suffix on
/// the command word is ignored (use [`addressed_to`] to check it).
pub fn parse_text(text: &str) -> Result<Command, UsageError> {
    let text = text.trim();
    let text = text.strip_prefix('/').unwrap_or(text);
    let (head, rest) = split_word(text);
    let name = head.split('@').next().unwrap_or("").to_lowercase();
    if name.is_empty() {
        return Err(UsageError::unknown(""));
    }
    let spec = catalog::spec(&name).ok_or_else(|| UsageError::unknown(&name))?;
    let mut cursor = Cursor { rest };
    let (sub, options) = if spec.subcommands.is_empty() {
        (None, spec.options)
    } else {
        let word = cursor.word().map_err(|p| UsageError::new(spec, p))?;
        let Some(word) = word else {
            return Err(UsageError::new(
                spec,
                format!("/{} needs a subcommand", spec.name),
            ));
        };
        let sub = spec.subcommand(&word.to_lowercase()).ok_or_else(|| {
            UsageError::new(spec, format!("/{} has no subcommand {word:?}", spec.name))
        })?;
        (Some(sub.name), sub.options)
    };
    let args = read_args(&mut cursor, options).map_err(|p| UsageError::new(spec, p))?;
    build(spec, sub, args)
}

/// The `@botname` a command word is addressed to, if any: in a group chat a
/// bot should ignore `/status@other_bot`.
pub fn addressed_to(text: &str) -> Option<&str> {
    let text = text.trim_start();
    let (head, _) = split_word(text.strip_prefix('/').unwrap_or(text));
    head.split_once('@').map(|(_, bot)| bot)
}

fn read_args(cursor: &mut Cursor<'_>, options: &'static [OptionSpec]) -> Result<Args, String> {
    let mut args = Args::default();
    // Flags are trailing words; take them off the end first so a free-text
    // value before them does not swallow them.
    for o in options.iter().filter(|o| o.kind == ValueKind::Flag) {
        if cursor.strip_trailing_word(o.name) {
            args.flags.push(o.name);
        }
    }
    for o in options.iter().filter(|o| o.kind == ValueKind::Text) {
        let value = match o.take {
            Take::Word => cursor.word()?.filter(|w| w != "-"),
            Take::Line => cursor.line(),
            Take::Rest => cursor.rest(),
        };
        match value {
            Some(v) => args.text.push((o.name, v)),
            None if o.required => return Err(format!("the {} is missing", o.placeholder)),
            None => {}
        }
    }
    let left = cursor.rest.trim();
    if !left.is_empty() {
        return Err(format!(
            "there is more than the command takes: {:?}",
            truncate(left, 40)
        ));
    }
    Ok(args)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

fn split_word(s: &str) -> (&str, &str) {
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

fn unquote(s: &str) -> &str {
    let mut chars = s.chars();
    match (chars.next(), chars.next_back()) {
        (Some(a), Some(b))
            if OPEN_QUOTES.contains(&a)
                && CLOSE_QUOTES.contains(&b)
                && !chars.as_str().contains(CLOSE_QUOTES) =>
        {
            chars.as_str()
        }
        _ => s,
    }
}

struct Cursor<'a> {
    rest: &'a str,
}

impl Cursor<'_> {
    /// One word or one quoted phrase.
    fn word(&mut self) -> Result<Option<String>, String> {
        let s = self.rest.trim_start();
        let Some(first) = s.chars().next() else {
            self.rest = s;
            return Ok(None);
        };
        if OPEN_QUOTES.contains(&first) {
            let inner = &s[first.len_utf8()..];
            let end = inner.find(CLOSE_QUOTES).ok_or("a quote is not closed")?;
            let close_len = inner[end..].chars().next().map_or(1, char::len_utf8);
            self.rest = &inner[end + close_len..];
            return Ok(Some(inner[..end].to_string()));
        }
        let (w, rest) = split_word(s);
        self.rest = rest;
        Ok(Some(w.to_string()))
    }

    /// The rest of the current line.
    fn line(&mut self) -> Option<String> {
        let s = self.rest.trim_start_matches([' ', '\t']);
        let (line, rest) = s.split_once('\n').unwrap_or((s, ""));
        self.rest = rest;
        let line = unquote(line.trim());
        (!line.is_empty()).then(|| line.to_string())
    }

    /// Everything left, newlines kept.
    fn rest(&mut self) -> Option<String> {
        let s = unquote(self.rest.trim());
        self.rest = "";
        (!s.is_empty()).then(|| s.to_string())
    }

    /// Removes `name` or `--name` if it is the last word.
    fn strip_trailing_word(&mut self, name: &str) -> bool {
        let s = self.rest.trim_end();
        // After the last whitespace character, whatever its width in bytes
        // (U+2000 is three): a `+ 1` would cut inside it.
        let start = s
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map_or(0, |(i, c)| i + c.len_utf8());
        let last = &s[start..];
        if last.eq_ignore_ascii_case(name)
            || last
                .strip_prefix("--")
                .is_some_and(|l| l.eq_ignore_ascii_case(name))
        {
            self.rest = &s[..start];
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{CommandInput, OptionValue, TaskCommand};
    use crate::ids::*;
    use switchyard_routing::{Category, Severity};

    #[test]
    fn wide_whitespace_before_the_last_word_does_not_split_a_character() {
        // Found by the chat_command fuzz target (U+2000 is three bytes).
        for text in [
            "mute\u{2000}r",
            "/mute \u{2000}resume\u{201d} ",
            "/mute system\u{3000}force",
        ] {
            let _ = parse_text(text);
        }
        assert!(parse_text("/mute system 1h\u{3000}force").is_ok());
    }

    fn mute(target: &str, d: &str, reason: Option<&str>, force: bool) -> Command {
        Command::Mute {
            target: parse_mute_target(target).unwrap(),
            duration: d.parse().unwrap(),
            reason: reason.map(str::to_string),
            force,
        }
    }

    fn valid_cases() -> Vec<(&'static str, Command)> {
        vec![
            ("/status", Command::Status),
            ("/status@switchyard_bot", Command::Status),
            ("status", Command::Status),
            ("/STATUS", Command::Status),
            (
                "/mute system 2h too noisy",
                mute("system", "2h", Some("too noisy"), false),
            ),
            ("/mute@bot system 2h", mute("system", "2h", None, false)),
            (
                "/mute alert 1h30m deploy window force",
                mute("alert", "1h30m", Some("deploy window"), true),
            ),
            (
                "/mute #alerts 30m --force",
                mute("discord:alerts", "30m", None, true),
            ),
            (
                "/mute source:worker:opsclaw 1d \"noisy\"",
                mute("source:worker:opsclaw", "1d", Some("noisy"), false),
            ),
            (
                "/mute system 2h “too much force”",
                mute("system", "2h", Some("too much force"), false),
            ),
            (
                "/unmute mute_42",
                Command::Unmute {
                    id: parse_mute_id("mute_42").unwrap(),
                },
            ),
            ("/mutes", Command::Mutes),
            (
                "/route alert",
                Command::Route {
                    category: Category::Alert,
                    severity: None,
                    source: None,
                },
            ),
            (
                "/route alert critical worker:opsclaw",
                Command::Route {
                    category: Category::Alert,
                    severity: Some(Severity::Critical),
                    source: Some("worker:opsclaw".into()),
                },
            ),
            (
                "/route alert - worker:opsclaw",
                Command::Route {
                    category: Category::Alert,
                    severity: None,
                    source: Some("worker:opsclaw".into()),
                },
            ),
            (
                "/route weird",
                Command::Route {
                    category: Category::Other("weird".into()),
                    severity: None,
                    source: None,
                },
            ),
            (
                "/send alert Disk full on web-1\nThe disk is at 95%.\nSee the runbook.",
                Command::Send {
                    category: Category::Alert,
                    title: "Disk full on web-1".into(),
                    body: Some("The disk is at 95%.\nSee the runbook.".into()),
                },
            ),
            (
                "/send system \"hello\"",
                Command::Send {
                    category: Category::System,
                    title: "hello".into(),
                    body: None,
                },
            ),
            (
                "/task submit {\"task_id\": \"t1\", \"steps\": []}",
                Command::Task(TaskCommand::Submit {
                    spec: "{\"task_id\": \"t1\", \"steps\": []}".into(),
                }),
            ),
            ("/task list", Command::Task(TaskCommand::List)),
            (
                "/task show t_1",
                Command::Task(TaskCommand::Show {
                    id: TaskId::parse("t_1").unwrap(),
                }),
            ),
            (
                "/task cancel t_1",
                Command::Task(TaskCommand::Cancel {
                    id: TaskId::parse("t_1").unwrap(),
                }),
            ),
            ("/approvals", Command::Approvals),
            (
                "/approve apr_1",
                Command::Approve {
                    id: ApprovalId::parse("apr_1").unwrap(),
                },
            ),
            (
                "/deny apr_1",
                Command::Deny {
                    id: ApprovalId::parse("apr_1").unwrap(),
                },
            ),
            ("/kill", Command::Kill { agent: None }),
            (
                "/kill tech-lead",
                Command::Kill {
                    agent: Some(AgentName::parse("tech-lead").unwrap()),
                },
            ),
            ("/resume", Command::Resume { agent: None }),
            ("/help", Command::Help { command: None }),
            (
                "/help /mute",
                Command::Help {
                    command: Some("mute".into()),
                },
            ),
        ]
    }

    #[test]
    fn valid_text_parses() {
        for (text, expect) in valid_cases() {
            assert_eq!(parse_text(text), Ok(expect), "{text}");
        }
    }

    #[test]
    fn text_and_structured_forms_round_trip() {
        for (text, cmd) in valid_cases() {
            let canonical = cmd.to_string();
            assert_eq!(
                parse_text(&canonical).as_ref(),
                Ok(&cmd),
                "{text} -> {canonical}"
            );
            assert_eq!(
                Command::from_input(&cmd.to_input()).as_ref(),
                Ok(&cmd),
                "{text}"
            );
        }
    }

    #[test]
    fn discord_options_build_the_same_command() {
        let input = CommandInput {
            name: "mute".into(),
            subcommand: None,
            options: vec![
                ("target".into(), OptionValue::Text("system".into())),
                ("for".into(), OptionValue::Text("2h".into())),
                ("reason".into(), OptionValue::Text("too noisy".into())),
                ("force".into(), OptionValue::Flag(false)),
            ],
        };
        assert_eq!(
            Command::from_input(&input),
            parse_text("/mute system 2h too noisy")
        );
    }

    #[test]
    fn each_error_says_what_was_wrong_and_shows_usage() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("/frobnicate", "There is no command /frobnicate", None),
            ("/", "There is no command /", None),
            (
                "/mute",
                "The target is missing",
                Some("/mute <target> <duration>"),
            ),
            (
                "/mute system",
                "The duration is missing",
                Some("/mute <target>"),
            ),
            (
                "/mute sytem 2h",
                "is not a category",
                Some("/mute <target>"),
            ),
            ("/mute system 2", "30m, 2h or 1h30m", Some("/mute <target>")),
            ("/mute system 10s", "from 1m to 30d", Some("/mute <target>")),
            ("/mute \"system 2h", "A quote is not closed", Some("/mute")),
            ("/unmute", "The id is missing", Some("/unmute <id>")),
            (
                "/unmute ../etc",
                "is not `mute_` followed by",
                Some("/unmute <id>"),
            ),
            (
                "/route",
                "The category is missing",
                Some("/route <category>"),
            ),
            ("/route alert loud", "Unknown severity", Some("/route")),
            ("/route Alert!", "use one of briefing", Some("/route")),
            ("/send alert", "The title is missing", Some("/send")),
            ("/task", "needs a subcommand", Some("/task submit")),
            ("/task frob", "has no subcommand", Some("/task submit")),
            ("/task show", "The id is missing", Some("/task")),
            ("/task submit", "The spec is missing", Some("/task")),
            ("/approve", "The id is missing", Some("/approve <id>")),
            (
                "/status now please",
                "more than the command takes",
                Some("/status"),
            ),
            (
                "/kill a b",
                "more than the command takes",
                Some("/kill [agent]"),
            ),
            ("/help frob", "There is no command /frob", Some("/help")),
        ];
        for (text, problem, usage) in cases {
            let err = parse_text(text).unwrap_err();
            assert!(err.problem.contains(problem), "{text}: {}", err.problem);
            assert!(err.problem.ends_with('.'), "{text}: {}", err.problem);
            match usage {
                Some(u) => assert!(
                    err.to_string().contains(&format!("Usage: {u}")),
                    "{text}: {err}"
                ),
                None => assert_eq!(err.usage, None, "{text}"),
            }
        }
    }

    #[test]
    fn structured_errors_name_the_option() {
        let bad_option = CommandInput {
            name: "status".into(),
            options: vec![("x".into(), OptionValue::Flag(true))],
            ..Default::default()
        };
        assert!(
            Command::from_input(&bad_option)
                .unwrap_err()
                .problem
                .contains("no option \"x\"")
        );
        let wrong_type = CommandInput {
            name: "mute".into(),
            options: vec![("force".into(), OptionValue::Text("yes".into()))],
            ..Default::default()
        };
        assert!(
            Command::from_input(&wrong_type)
                .unwrap_err()
                .problem
                .contains("wrong type")
        );
        let no_sub = CommandInput {
            name: "task".into(),
            ..Default::default()
        };
        assert!(
            Command::from_input(&no_sub)
                .unwrap_err()
                .problem
                .contains("needs a subcommand")
        );
    }

    #[test]
    fn addressee_is_reported() {
        assert_eq!(addressed_to("/status@other_bot"), Some("other_bot"));
        assert_eq!(addressed_to("/status"), None);
    }
}
