//! The wrappers' own options, read the way each wrapper reads them, to find
//! where the command it runs begins: sudo (and what it changes: -D, VAR=x),
//! doas, env (-C, -S, -u, assignments), flock, watch, su/runuser, ssh, and
//! xargs, which runs its command with what it reads appended. Shared option
//! skipping (`skip_opts`) serves the simple ones (nice, timeout, time…).
//! Each answers with a `Step`; `argv` follows the steps to what runs, so a
//! wrapper knows nothing of shells or programs.

use crate::value::{Arg, Flow, join};

/// Variables set for the program: (name, value if known).
pub(crate) type Env = Vec<(String, Option<String>)>;

/// What the wrappers so far changed for the command they run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ctx {
    pub env: Env,
    pub chdir: Option<Option<String>>,
    pub via_exec: bool,
}

/// What a wrapper's options say about the command it runs.
pub(crate) enum Step {
    /// The wrapped command starts at this index of the wrapper's arguments.
    Inner(usize),
    /// It runs no command: it lists, prints or edits (`sudo -l`, `doas -C`).
    Nothing,
    /// It hands a script to a shell (`su -c`, `flock -c`, `watch`, `ssh`):
    /// the script, then the shell's `$0` and arguments.
    Script(Arg, Vec<Arg>),
    /// Run these argvs instead (env -S, xargs with its input appended).
    Many(Vec<Vec<Arg>>),
}

/// xargs with one line per run would otherwise multiply without end.
pub(crate) const MAX_RUNS: usize = 16;

pub(crate) fn value(args: &[Arg], i: usize) -> Option<&str> {
    args.get(i).and_then(|a| a.value.as_deref())
}

/// A short option among the wrapper's own options (before the command).
pub(crate) fn has_short(args: &[Arg], letters: &str) -> bool {
    for a in args {
        match a.value.as_deref() {
            Some("--") | None => return false,
            Some(v) if v.starts_with('-') && !v.starts_with("--") => {
                if v[1..].contains(|c| letters.contains(c)) {
                    return true;
                }
            }
            Some(v) if v.starts_with("--") => {}
            Some(_) => return false,
        }
    }
    false
}

/// Skips options the way getopt would: `with_arg` are the short options
/// that take a value (attached or next), `long_arg` the long ones that take
/// one when written without `=`. Returns the index of the first operand.
pub(crate) fn skip_opts(args: &[Arg], with_arg: &str, long_arg: &[&str]) -> usize {
    let mut i = 0;
    while let Some(v) = value(args, i) {
        if v == "--" {
            return i + 1;
        }
        if let Some(l) = v.strip_prefix("--") {
            let takes = !l.contains('=') && long_arg.contains(&l);
            i += if takes { 2 } else { 1 };
            continue;
        }
        if v.len() > 1 && v.starts_with('-') {
            for (k, c) in v.char_indices().skip(1) {
                if with_arg.contains(c) {
                    if k + c.len_utf8() == v.len() {
                        i += 1;
                    }
                    break;
                }
            }
            i += 1;
            continue;
        }
        break;
    }
    i
}

/// `NAME=value` among a wrapper's words (sudo, env): the variable is set
/// for the command. False when the word is not an assignment.
fn assign(v: &str, ctx: &mut Ctx) -> bool {
    let Some((n, val)) = v.split_once('=') else {
        return false;
    };
    let ok = n
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        ctx.env.push((n.to_string(), Some(val.to_string())));
    }
    ok
}

/// A long option's name and the value written after its `=`, if any.
fn long_opt(l: &str) -> (&str, Option<&str>) {
    match l.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (l, None),
    }
}

/// The value of an option that takes one: the text attached to it
/// (`-uroot`, `--user=root`), or else the next word, which `i` then steps
/// onto so that it is not read as the command.
fn opt_value(rest: &[Arg], i: &mut usize, attached: Option<&str>) -> Option<String> {
    match attached {
        Some(a) => Some(a.to_string()),
        None => {
            *i += 1;
            value(rest, *i).map(String::from)
        }
    }
}

/// The text after short option `c` at byte `k` of `v`, unless nothing is.
fn attached(v: &str, k: usize, c: char) -> Option<&str> {
    Some(&v[k + c.len_utf8()..]).filter(|a| !a.is_empty())
}

pub(crate) fn sudo(rest: &[Arg], ctx: &mut Ctx) -> Step {
    const LONG_ARG: &[&str] = &[
        "user",
        "group",
        "host",
        "prompt",
        "role",
        "type",
        "close-from",
        "chdir",
        "command-timeout",
        "other-user",
        "chroot",
    ];
    const NOTHING: &[&str] = &[
        "edit",
        "list",
        "validate",
        "version",
        "help",
        "remove-timestamp",
        "reset-timestamp",
    ];
    let mut i = 0;
    while let Some(v) = value(rest, i) {
        if v == "--" {
            return Step::Inner(i + 1);
        }
        if let Some(l) = v.strip_prefix("--") {
            let (name, val) = long_opt(l);
            if NOTHING.contains(&name) {
                return Step::Nothing;
            }
            let val = if LONG_ARG.contains(&name) {
                opt_value(rest, &mut i, val)
            } else {
                val.map(String::from)
            };
            if name == "chdir" {
                ctx.chdir = Some(val);
            }
            i += 1;
            continue;
        }
        if v.len() > 1 && v.starts_with('-') {
            for (k, c) in v.char_indices().skip(1) {
                if "elvVK".contains(c) {
                    return Step::Nothing;
                }
                if "ughprtCDTUR".contains(c) {
                    let val = opt_value(rest, &mut i, attached(v, k, c));
                    if c == 'D' {
                        ctx.chdir = Some(val);
                    }
                    break;
                }
            }
            i += 1;
            continue;
        }
        if assign(v, ctx) {
            i += 1;
            continue;
        }
        break;
    }
    Step::Inner(i)
}

pub(crate) fn doas(rest: &[Arg]) -> Step {
    if has_short(rest, "C") {
        return Step::Nothing;
    }
    Step::Inner(skip_opts(rest, "uC", &[]))
}

pub(crate) fn env(rest: &[Arg], ctx: &mut Ctx) -> Step {
    let mut i = 0;
    let mut opts = true;
    while i < rest.len() {
        let Some(v) = value(rest, i) else { break };
        if opts && v == "--" {
            opts = false;
            i += 1;
            continue;
        }
        if opts && v == "-" {
            i += 1;
            continue;
        }
        if opts && let Some(l) = v.strip_prefix("--") {
            let (name, val) = long_opt(l);
            let val = if matches!(name, "unset" | "chdir" | "split-string") {
                opt_value(rest, &mut i, val)
            } else {
                val.map(String::from)
            };
            match name {
                "chdir" => ctx.chdir = Some(val),
                "split-string" => return split_string(rest, i, val),
                _ => {}
            }
            i += 1;
            continue;
        }
        if opts && v.len() > 1 && v.starts_with('-') {
            for (k, c) in v.char_indices().skip(1) {
                if "uCSP".contains(c) {
                    let val = opt_value(rest, &mut i, attached(v, k, c));
                    match c {
                        'C' => ctx.chdir = Some(val),
                        'S' => return split_string(rest, i, val),
                        _ => {}
                    }
                    break;
                }
            }
            i += 1;
            continue;
        }
        if assign(v, ctx) {
            i += 1;
            continue;
        }
        break;
    }
    Step::Inner(i)
}

/// `env -S 'A=1 cmd args'` is `env A=1 cmd args`.
fn split_string(rest: &[Arg], i: usize, val: Option<String>) -> Step {
    let mut argv = vec![Arg::lit("env")];
    match val {
        Some(s) => argv.extend(s.split_whitespace().map(Arg::lit)),
        None => argv.push(rest.get(i).cloned().unwrap_or_else(|| Arg::lit(""))),
    }
    argv.extend_from_slice(rest.get(i + 1..).unwrap_or(&[]));
    Step::Many(vec![argv])
}

pub(crate) fn flock(rest: &[Arg]) -> Step {
    for (i, a) in rest.iter().enumerate() {
        match a.value.as_deref() {
            Some("-c" | "--command") => {
                let script = rest.get(i + 1).cloned().unwrap_or_else(|| Arg::lit(""));
                return Step::Script(script, Vec::new());
            }
            Some(v) if v.starts_with("--command=") => {
                return Step::Script(Arg::lit(&v[10..]), Vec::new());
            }
            _ => {}
        }
    }
    let k = skip_opts(rest, "wE", &["timeout", "conflict-exit-code"]);
    Step::Inner(k + 1)
}

pub(crate) fn watch(rest: &[Arg]) -> Step {
    let k = skip_opts(rest, "nq", &["interval"]);
    if has_short(rest, "x")
        || rest[..k.min(rest.len())]
            .iter()
            .any(|a| a.value.as_deref() == Some("--exec"))
    {
        return Step::Inner(k);
    }
    match rest.get(k..) {
        Some(cmd) if !cmd.is_empty() => Step::Script(join(cmd), Vec::new()),
        _ => Step::Nothing,
    }
}

pub(crate) fn su(rest: &[Arg]) -> Step {
    let mut i = 0;
    let mut script = None;
    while let Some(v) = value(rest, i) {
        match v {
            "--" => {
                i += 1;
                break;
            }
            "-c" | "--command" => {
                script = rest.get(i + 1).cloned();
                i += 2;
            }
            "-s"
            | "--shell"
            | "-g"
            | "--group"
            | "-G"
            | "--supp-group"
            | "-w"
            | "--whitelist-environment" => i += 2,
            "-u" | "--user" => {
                // runuser -u USER [--] CMD ARGS runs the command directly.
                let k = i + 2 + usize::from(value(rest, i + 2) == Some("--"));
                return Step::Inner(k);
            }
            _ if v.starts_with("--command=") => {
                script = Some(Arg::lit(&v[10..]));
                i += 1;
            }
            _ if v.starts_with("-c") && v.len() > 2 => {
                script = Some(Arg::lit(&v[2..]));
                i += 1;
            }
            _ if v.starts_with('-') => i += 1,
            _ => break,
        }
    }
    match script {
        Some(s) => {
            // After the user name come the shell's $0 and arguments.
            let params = rest.get(i + 1..).unwrap_or(&[]).to_vec();
            Step::Script(s, params)
        }
        None => Step::Nothing,
    }
}

pub(crate) fn ssh(rest: &[Arg]) -> Step {
    let host = skip_opts(rest, "BbcDEeFIiJLlmOoPpQRSWw", &[]);
    match rest.get(host + 1..) {
        // The remote side runs the words joined, through its shell.
        Some(cmd) if !cmd.is_empty() => Step::Script(join(cmd), Vec::new()),
        _ => Step::Nothing,
    }
}

pub(crate) fn xargs(rest: &[Arg], stdin: &Flow) -> Step {
    let mut i = 0;
    let mut repl: Option<String> = None;
    let mut delim: Option<char> = None;
    let mut from_file = false;
    while let Some(v) = value(rest, i) {
        if v == "--" {
            i += 1;
            break;
        }
        if let Some(l) = v.strip_prefix("--") {
            let (name, val) = long_opt(l);
            let takes = matches!(
                name,
                "arg-file"
                    | "delimiter"
                    | "max-args"
                    | "max-procs"
                    | "max-chars"
                    | "process-slot-var"
            );
            let val = if takes {
                opt_value(rest, &mut i, val)
            } else {
                val.map(String::from)
            };
            match name {
                "arg-file" => from_file = true,
                "null" => delim = Some('\0'),
                "replace" => repl = Some(val.unwrap_or_else(|| "{}".into())),
                "delimiter" => delim = val.and_then(|d| d.chars().next()),
                _ => {}
            }
            i += 1;
            continue;
        }
        if v.len() > 1 && v.starts_with('-') {
            for (k, c) in v.char_indices().skip(1) {
                match c {
                    '0' => delim = Some('\0'),
                    'a' | 'd' | 'E' | 'I' | 'L' | 'n' | 'P' | 's' => {
                        let val = opt_value(rest, &mut i, attached(v, k, c)).unwrap_or_default();
                        match c {
                            'a' => from_file = true,
                            'd' => delim = val.chars().next(),
                            'I' => repl = Some(val),
                            _ => {}
                        }
                        break;
                    }
                    'i' => {
                        repl = Some(attached(v, k, c).unwrap_or("{}").to_string());
                        break;
                    }
                    'e' | 'l' => break,
                    _ => {}
                }
            }
            i += 1;
            continue;
        }
        break;
    }
    let inner: Vec<Arg> = match rest.get(i..) {
        Some(c) if !c.is_empty() => c.to_vec(),
        _ => vec![Arg::lit("echo")],
    };
    let input = if from_file { &Flow::Unknown } else { stdin };
    let items: Vec<String> = match input {
        Flow::Literal(s) => match (delim, &repl) {
            (Some(d), _) => s
                .split(d)
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect(),
            (None, Some(_)) => s
                .lines()
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect(),
            (None, None) => s.split_whitespace().map(String::from).collect(),
        },
        // What find prints while walking / starts with / itself.
        Flow::FindRoot => vec!["/".into()],
        _ => Vec::new(),
    };
    match repl {
        Some(r) if !items.is_empty() => Step::Many(
            items
                .iter()
                .take(MAX_RUNS)
                .map(|it| {
                    inner
                        .iter()
                        .map(|a| match &a.value {
                            Some(v) if v.contains(r.as_str()) => {
                                Arg::lit(&v.replace(r.as_str(), it))
                            }
                            _ => a.clone(),
                        })
                        .collect()
                })
                .collect(),
        ),
        _ => {
            let mut argv = inner;
            argv.extend(items.iter().map(|s| Arg::lit(s)));
            Step::Many(vec![argv])
        }
    }
}
