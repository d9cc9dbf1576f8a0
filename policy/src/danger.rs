//! The rules. Given the program that would run (a basename, wrappers already
//! looked through), its arguments as the shell would pass them and the
//! working directory if known: what is dangerous and what forces. Options
//! are read the way the program reads them (GNU tools permute, so `rm / -rf`
//! is `rm -rf /`). Also the fork-bomb shapes, which are about structure.

use crate::argv::{self, Exec, Input, program_name};
use crate::ast::{Command, Pipeline, Script};
use crate::parse;
use crate::report::{Danger, FindingKind};
use crate::show::quote;
use crate::target::{self, Cwd, Place, classify};
use crate::value::{Arg, Flow};

const FORMATTERS: &[&str] = &[
    "mkfs",
    "mke2fs",
    "mke4fs",
    "mkswap",
    "wipefs",
    "mkdosfs",
    "mkntfs",
    "mkexfatfs",
    "mkreiserfs",
    "blkdiscard",
];

fn danger(d: Danger) -> FindingKind {
    FindingKind::Dangerous(d)
}

fn not_understood(why: String) -> FindingKind {
    FindingKind::NotUnderstood(why)
}

/// Findings for `name args` (git goes to `git::check`, which needs the
/// script's git aliases).
pub(crate) fn check(name: &str, args: &[Arg], cwd: &Cwd, out: &mut Vec<FindingKind>) {
    match name {
        "rm" => rm(args, cwd, out),
        "cp" | "mv" | "ln" => {
            if short_or_long_force(args) {
                out.push(FindingKind::ForceFlag);
            }
            let ops = operands(args);
            if name == "cp"
                && let Some(last) = ops.last()
            {
                write_to(last, cwd, out);
            }
            // Moving / or /etc away removes it as surely as rm -r.
            let moved = &ops[..ops.len().saturating_sub(1)];
            if name == "mv"
                && moved.iter().any(|a| {
                    a.value
                        .as_deref()
                        .is_some_and(|v| classify(v, cwd).is_system_wide())
                })
            {
                out.push(danger(Danger::RecursiveDeleteOfRoot));
            }
        }
        "find" => find(args, cwd, out),
        "dd" => {
            for p in args
                .iter()
                .filter_map(|a| a.value.as_deref()?.strip_prefix("of="))
            {
                write_path(p, cwd, out);
            }
        }
        "tee" => {
            for a in operands(args) {
                write_to(a, cwd, out);
            }
        }
        "shred"
            if operands(args).iter().any(|a| {
                a.value
                    .as_deref()
                    .is_some_and(|v| target::is_device(v, cwd))
            }) =>
        {
            out.push(danger(Danger::RawDeviceWrite));
        }
        "chmod" | "chown" | "chgrp" => perms(name, args, cwd, out),
        "shutdown" | "reboot" | "poweroff" | "halt" | "killall5" => {
            out.push(danger(Danger::Shutdown));
        }
        "sgdisk" if has_any(args, &["-Z", "-z", "-o", "--zap-all", "--zap", "--clear"]) => {
            out.push(danger(Danger::FilesystemFormat));
        }
        "parted" if has_any(args, &["mklabel", "mktable", "rm"]) => {
            out.push(danger(Danger::FilesystemFormat));
        }
        "init" | "telinit" => {
            if matches!(
                operands(args).first().and_then(|a| a.value.as_deref()),
                Some("0" | "6")
            ) {
                out.push(danger(Danger::Shutdown));
            }
        }
        "systemctl" => systemctl(args, out),
        "loginctl" => {
            if matches!(
                operands(args).first().and_then(|a| a.value.as_deref()),
                Some("poweroff" | "reboot" | "halt")
            ) {
                out.push(danger(Danger::Shutdown));
            }
        }
        "kill" => kill(args, out),
        "rsync" => rsync(args, cwd, out),
        n if is_format(n) => out.push(danger(Danger::FilesystemFormat)),
        _ => {}
    }
    let long_force = args
        .iter()
        .filter_map(|a| a.value.as_deref())
        .any(|v| v == "--force" || v.starts_with("--force=") || v.starts_with("--force-"));
    if long_force && !matches!(name, "rm" | "cp" | "mv" | "ln" | "git") {
        out.push(FindingKind::ForceFlag);
    }
}

fn has_any(args: &[Arg], words: &[&str]) -> bool {
    args.iter()
        .any(|a| a.value.as_deref().is_some_and(|v| words.contains(&v)))
}

fn is_format(n: &str) -> bool {
    FORMATTERS.contains(&n) || n.starts_with("mkfs.") || n.starts_with("mke2fs.")
}

/// Operands: arguments that are not options (everything after `--`).
fn operands(args: &[Arg]) -> Vec<&Arg> {
    let mut out = Vec::new();
    let mut opts = true;
    for a in args {
        match a.value.as_deref() {
            Some("--") if opts => opts = false,
            Some(v) if opts && v.len() > 1 && v.starts_with('-') => {}
            _ => out.push(a),
        }
    }
    out
}

fn short_or_long_force(args: &[Arg]) -> bool {
    for a in args {
        let Some(v) = a.value.as_deref() else {
            continue;
        };
        if v == "--" {
            break;
        }
        if let Some(l) = v.strip_prefix("--") {
            if !l.is_empty() && "force".starts_with(l) {
                return true;
            }
        } else if v.len() > 1
            && v.starts_with('-')
            && v[1..].chars().all(|c| c.is_ascii_alphabetic())
            && v.contains('f')
        {
            return true;
        }
    }
    false
}

fn write_to(a: &Arg, cwd: &Cwd, out: &mut Vec<FindingKind>) {
    if let Some(v) = a.value.as_deref() {
        write_path(v, cwd, out);
    }
}

fn write_path(p: &str, cwd: &Cwd, out: &mut Vec<FindingKind>) {
    if let Some(d) = target::device_write(p, cwd) {
        out.push(danger(d));
    }
}

fn rm(args: &[Arg], cwd: &Cwd, out: &mut Vec<FindingKind>) {
    const LONG: &[&str] = &[
        "force",
        "interactive",
        "one-file-system",
        "no-preserve-root",
        "preserve-root",
        "recursive",
        "dir",
        "verbose",
        "help",
        "version",
    ];
    let (mut recursive, mut no_preserve, mut unknown_opts) = (false, false, false);
    let mut targets = Vec::new();
    let mut opts = true;
    for a in args {
        match a.value.as_deref() {
            None => {
                unknown_opts |= opts;
                targets.push(a);
            }
            Some("--") if opts => opts = false,
            Some(v) if opts && v.starts_with("--") => {
                let l = &v[2..];
                let hits: Vec<&&str> = LONG.iter().filter(|o| o.starts_with(l)).collect();
                match hits.as_slice() {
                    [one] if **one == "recursive" => recursive = true,
                    [one] if **one == "no-preserve-root" => no_preserve = true,
                    _ => {}
                }
            }
            Some(v) if opts && v.len() > 1 && v.starts_with('-') => {
                recursive |= v.contains(['r', 'R']);
            }
            Some(_) => targets.push(a),
        }
    }
    if short_or_long_force(args) {
        out.push(FindingKind::ForceFlag);
    }
    let mut wide = no_preserve;
    let mut unsure = None;
    for t in &targets {
        match t.value.as_deref() {
            Some(v) if classify(v, cwd).is_wide() => {
                if recursive {
                    wide = true;
                } else if unknown_opts {
                    unsure = Some(format!(
                        "rm options come from a variable and a target is `{}`",
                        t.display
                    ));
                }
            }
            Some(_) => {}
            None if !recursive => {}
            None if t.is_unseen_output() => {
                unsure = Some(format!(
                    "rm -r target `{}` is the output of a command the analyzer cannot evaluate",
                    t.display
                ));
            }
            None => {
                if let Some(e) = t.if_empty.as_deref()
                    && !e.is_empty()
                    && classify(e, cwd).is_wide()
                {
                    unsure = Some(format!(
                        "rm -r target `{}` is `{}` when its variable is empty",
                        t.display,
                        quote(e)
                    ));
                }
            }
        }
    }
    if wide {
        out.push(danger(Danger::RecursiveDeleteOfRoot));
    } else if let Some(why) = unsure {
        out.push(not_understood(why));
    }
}

/// find's start paths (before the first expression word) and its expression.
pub(crate) fn find_split(args: &[Arg]) -> (Vec<&Arg>, &[Arg]) {
    let mut i = 0;
    while let Some(v) = args.get(i).and_then(|a| a.value.as_deref()) {
        match v {
            "-H" | "-L" | "-P" => i += 1,
            "-D" => i += 2,
            _ if v.starts_with("-O") => i += 1,
            _ => break,
        }
    }
    let start = i.min(args.len());
    let mut end = start;
    while let Some(a) = args.get(end) {
        match a.value.as_deref() {
            Some(v) if (v.starts_with('-') && v.len() > 1) || matches!(v, "(" | "!" | ",") => break,
            _ => end += 1,
        }
    }
    (args[start..end].iter().collect(), &args[end..])
}

/// -delete, or -exec/-ok with a command that removes files.
pub(crate) fn find_deletes(expr: &[Arg]) -> bool {
    let mut i = 0;
    while i < expr.len() {
        match expr[i].value.as_deref() {
            Some("-delete") => return true,
            Some("-exec" | "-execdir" | "-ok" | "-okdir") => {
                let cmd: Vec<Arg> = expr[i + 1..]
                    .iter()
                    .take_while(|a| !matches!(a.value.as_deref(), Some(";" | "+")))
                    .cloned()
                    .collect();
                if exec_deletes(&cmd) {
                    return true;
                }
                i += cmd.len() + 1;
            }
            _ => {}
        }
        i += 1;
    }
    false
}

fn removes(name: &str) -> bool {
    matches!(name, "rm" | "unlink" | "shred" | "rmdir")
}

fn exec_deletes(cmd: &[Arg]) -> bool {
    argv::resolve(cmd, &Flow::Unknown)
        .into_iter()
        .any(|e| match e {
            Exec::Run { name, .. } => removes(&name),
            Exec::Shell {
                input: Input::Script(s),
                ..
            } => s.value.is_some_and(|t| {
                parse::command_names(&t)
                    .iter()
                    .any(|n| removes(&program_name(n)))
            }),
            _ => false,
        })
}

fn find(args: &[Arg], cwd: &Cwd, out: &mut Vec<FindingKind>) {
    let (paths, expr) = find_split(args);
    if !find_deletes(expr) {
        return;
    }
    let dot = Arg::lit(".");
    let paths = if paths.is_empty() { vec![&dot] } else { paths };
    if paths.iter().any(|p| {
        p.value
            .as_deref()
            .is_some_and(|v| classify(v, cwd).is_system_wide())
    }) {
        out.push(danger(Danger::FindDelete));
    } else if let Some(p) = paths.iter().find(|p| p.is_unseen_output()) {
        out.push(not_understood(format!(
            "find -delete start path `{}` is the output of a command the analyzer cannot evaluate",
            p.display
        )));
    }
}

/// chmod's mode makes files writable by everyone.
fn world_writable(mode: &str) -> bool {
    if !mode.is_empty() && mode.chars().all(|c| c.is_ascii_digit()) {
        return matches!(mode.chars().last(), Some('2' | '3' | '6' | '7'));
    }
    mode.split(',').any(|clause| {
        let Some(op) = clause.find(['+', '=']) else {
            return false;
        };
        let who = &clause[..op];
        clause[op..].contains('w') && (who.is_empty() || who.contains(['a', 'o']))
    })
}

fn is_mode(v: &str) -> bool {
    v.chars().all(|c| "ugoa+-=rwxXst,0123456789".contains(c))
}

fn perms(name: &str, args: &[Arg], cwd: &Cwd, out: &mut Vec<FindingKind>) {
    let mut recursive = false;
    let mut reference = false;
    let mut ops = Vec::new();
    let mut opts = true;
    for a in args {
        match a.value.as_deref() {
            Some("--") if opts => opts = false,
            Some(v) if opts && v.starts_with("--") => {
                let l = &v[2..];
                recursive |= l.len() >= 3 && "recursive".starts_with(l);
                reference |= l.starts_with("reference");
            }
            Some(v)
                if opts
                    && v.len() > 1
                    && v.starts_with('-')
                    && !(name == "chmod" && is_mode(v)) =>
            {
                recursive |= v.contains('R');
            }
            _ => ops.push(a),
        }
    }
    let (mode, targets) = if reference {
        (None, &ops[..])
    } else {
        match ops.split_first() {
            Some((m, t)) => (m.value.as_deref(), t),
            None => return,
        }
    };
    let mut bomb = false;
    let mut unsure = None;
    for t in targets {
        match t.value.as_deref() {
            Some(v) => {
                let place = classify(v, cwd);
                let loose = name != "chmod" || mode.is_some_and(world_writable);
                bomb |= (recursive && place.is_system_wide()) || (place == Place::Root && loose);
            }
            None if recursive && t.is_unseen_output() => {
                unsure = Some(format!(
                    "{name} -R target `{}` is the output of a command the analyzer cannot evaluate",
                    t.display
                ));
            }
            None => {}
        }
    }
    if bomb {
        out.push(danger(Danger::PermissionBomb));
    } else if let Some(why) = unsure {
        out.push(not_understood(why));
    }
}

fn systemctl(args: &[Arg], out: &mut Vec<FindingKind>) {
    const WITH_ARG: &[&str] = &[
        "-H",
        "-M",
        "-t",
        "-p",
        "-P",
        "-s",
        "-n",
        "-o",
        "--host",
        "--machine",
        "--type",
        "--property",
        "--signal",
        "--lines",
        "--output",
        "--root",
        "--job-mode",
        "--kill-whom",
        "--what",
        "--state",
        "--boot-loader-entry",
        "--reboot-argument",
        "--timestamp",
        "--when",
        "--message",
        "--kill-value",
        "--image",
        "--preset-mode",
    ];
    const VERBS: &[&str] = &[
        "poweroff",
        "reboot",
        "halt",
        "kexec",
        "soft-reboot",
        "emergency",
        "rescue",
    ];
    let mut i = 0;
    while let Some(v) = args.get(i).and_then(|a| a.value.as_deref()) {
        if !v.starts_with('-') {
            break;
        }
        i += if WITH_ARG.contains(&v) { 2 } else { 1 };
    }
    let Some(verb) = args.get(i).and_then(|a| a.value.as_deref()) else {
        return;
    };
    let unit_stops = |u: &str| {
        VERBS.contains(&u.strip_suffix(".target").unwrap_or(u)) || u == "ctrl-alt-del.target"
    };
    let stops = VERBS.contains(&verb)
        || (matches!(verb, "start" | "isolate" | "restart" | "reload-or-restart")
            && args[i + 1..]
                .iter()
                .any(|a| a.value.as_deref().is_some_and(unit_stops)));
    if stops {
        out.push(danger(Danger::Shutdown));
    }
}

/// `kill 1` stops init (the container); `kill -9 -1` kills every process.
fn kill(args: &[Arg], out: &mut Vec<FindingKind>) {
    let mut i = 0;
    let mut signal = false;
    while let Some(a) = args.get(i) {
        let Some(v) = a.value.as_deref() else { break };
        match v {
            "--" => {
                i += 1;
                break;
            }
            "-l" | "-L" | "--list" | "--table" => return,
            "-s" | "-n" | "--signal" => {
                i += 2;
                signal = true;
            }
            _ if v.starts_with('-') && v.len() > 1 && !signal => {
                i += 1;
                signal = true;
            }
            _ => break,
        }
    }
    if args
        .get(i..)
        .unwrap_or(&[])
        .iter()
        .any(|a| matches!(a.value.as_deref(), Some("1" | "-1")))
    {
        out.push(danger(Danger::Shutdown));
    }
}

/// rsync --delete onto / or ~ empties it (locally or on the remote side).
fn rsync(args: &[Arg], cwd: &Cwd, out: &mut Vec<FindingKind>) {
    let delete = args
        .iter()
        .any(|a| a.value.as_deref().is_some_and(|v| v.starts_with("--del")));
    let ops: Vec<&str> = operands(args)
        .iter()
        .filter_map(|a| a.value.as_deref())
        .collect();
    if !delete || ops.len() < 2 {
        return;
    }
    let dest = ops[ops.len() - 1];
    let (path, cwd) = match dest.split_once(':') {
        Some((host, p)) if !host.contains('/') => {
            let remote = if p.starts_with('/') {
                p.to_string()
            } else {
                format!("{}/{p}", target::HOME)
            };
            (remote, Cwd::Unknown)
        }
        _ => (dest.to_string(), cwd.clone()),
    };
    if classify(&path, &cwd).is_system_wide() {
        out.push(danger(Danger::RecursiveDeleteOfRoot));
    }
}

/// A function that calls itself twice in one pipeline, or in the
/// background: `:(){ :|:& };:`, `bomb(){ bomb|bomb& }`, `f(){ f & f; }`.
pub(crate) fn fork_bomb_func(name: &str, body: &Command) -> bool {
    let mut found = false;
    body.pipelines(false, &mut |p: &Pipeline, bg: bool| {
        let calls = p
            .cmds
            .iter()
            .filter(|c| c.name().as_deref() == Some(name))
            .count();
        found |= calls >= 2 || (calls >= 1 && bg);
    });
    found
}

/// `while true; do X & done` and its spellings (`while :`, `until false`).
pub(crate) fn fork_bomb_loop(cond: &Script, until: bool, body: &Script) -> bool {
    let endless = match cond.items.as_slice() {
        [item] => match item.pipelines.as_slice() {
            [p] => match p.cmds.as_slice() {
                [c] => c.name().is_some_and(|n| {
                    let n = program_name(&n);
                    if until {
                        n == "false"
                    } else {
                        n == "true" || n == ":"
                    }
                }),
                _ => false,
            },
            _ => false,
        },
        _ => false,
    };
    endless && has_background(body)
}

pub(crate) fn has_background(body: &Script) -> bool {
    let mut found = false;
    body.pipelines(false, &mut |_, bg| found |= bg);
    found
}
