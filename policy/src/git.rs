//! git: which subcommand runs once the global options (`-C DIR`, `-c k=v`,
//! `--git-dir=…`) and `-c alias.X=…` are read, and for push whether it
//! forces and what it may overwrite. A force push whose branch the reader
//! cannot name (no refspec, `HEAD`, a glob, `--all`) counts as one to main:
//! the checked-out branch may well be main. Aliases that an earlier
//! `git config alias.X …` in the script defined count like `-c` ones.

use crate::report::{Danger, FindingKind};
use crate::value::Arg;

/// Global options that take the next word as their value.
const GLOBAL_WITH_ARG: &[&str] = &[
    "-C",
    "-c",
    "--git-dir",
    "--work-tree",
    "--namespace",
    "--super-prefix",
    "--config-env",
    "--attr-source",
];

const PUSH_LONG: &[&str] = &[
    "all",
    "branches",
    "mirror",
    "delete",
    "tags",
    "follow-tags",
    "dry-run",
    "porcelain",
    "force",
    "force-with-lease",
    "no-force-with-lease",
    "force-if-includes",
    "no-force-if-includes",
    "repo",
    "set-upstream",
    "thin",
    "no-thin",
    "quiet",
    "verbose",
    "progress",
    "no-progress",
    "prune",
    "recurse-submodules",
    "no-recurse-submodules",
    "verify",
    "no-verify",
    "signed",
    "no-signed",
    "atomic",
    "no-atomic",
    "push-option",
    "receive-pack",
    "exec",
    "ipv4",
    "ipv6",
];

/// Subcommands other than push where `-f` means force.
const FORCE_SUBCOMMANDS: &[&str] = &["clean", "branch", "tag", "checkout", "switch", "worktree"];

/// What a git command leaves for the caller beyond its findings.
#[derive(Debug, Default)]
pub(crate) struct GitOut {
    /// The script of a `!shell` alias, to analyse as shell.
    pub shell: Option<String>,
    /// `git config alias.NAME VALUE`: an alias later commands may use.
    pub alias: Option<(String, String)>,
}

/// Findings for `git ARGS`, given the aliases earlier `git config`
/// commands in the script defined.
pub(crate) fn check(
    args: &[Arg],
    known: &[(String, String)],
    out: &mut Vec<FindingKind>,
) -> GitOut {
    let mut aliases: Vec<(String, String)> = known.to_vec();
    let mut mirror = false;
    let mut i = 0;
    while i < args.len() {
        let Some(v) = args[i].value.as_deref() else {
            out.push(FindingKind::NotUnderstood(format!(
                "the git subcommand comes from `{}`, which the analyzer cannot see",
                args[i].display
            )));
            return GitOut::default();
        };
        if v == "-c" {
            let kv = args
                .get(i + 1)
                .and_then(|a| a.value.as_deref()?.split_once('='));
            if let Some((k, val)) = kv {
                let k = k.to_ascii_lowercase();
                if let Some(name) = k.strip_prefix("alias.") {
                    aliases.push((name.to_string(), val.to_string()));
                }
                // remote.<name>.mirror makes every push to it a mirror push.
                mirror |= k.starts_with("remote.") && k.ends_with(".mirror") && val != "false";
            }
            i += 2;
        } else if GLOBAL_WITH_ARG.contains(&v) {
            i += 2;
        } else if v.starts_with('-') {
            i += 1;
        } else {
            break;
        }
    }
    let Some(mut sub) = args.get(i).and_then(|a| a.value.clone()) else {
        return GitOut::default();
    };
    let mut rest: Vec<Arg> = args[i + 1..].to_vec();
    // git expands an alias at most once per name, so a few rounds suffice.
    for _ in 0..8 {
        let Some((_, val)) = aliases.iter().rev().find(|(n, _)| *n == sub) else {
            break;
        };
        if let Some(shell) = val.strip_prefix('!') {
            let tail: Vec<&str> = rest.iter().map(|a| a.display.as_str()).collect();
            return GitOut {
                shell: Some(format!("{shell} {}", tail.join(" "))),
                alias: None,
            };
        }
        let mut words = val.split_whitespace().map(Arg::lit);
        let Some(first) = words.next().and_then(|a| a.value) else {
            break;
        };
        sub = first;
        rest = words.chain(rest).collect();
    }
    match sub.as_str() {
        "push" => push(&rest, mirror, out),
        "config" => {
            return GitOut {
                shell: None,
                alias: config_alias(&rest),
            };
        }
        s if FORCE_SUBCOMMANDS.contains(&s) && short_force(&rest) => {
            out.push(FindingKind::ForceFlag)
        }
        _ => {}
    }
    GitOut::default()
}

/// `git config [--global …] [set] alias.NAME VALUE`.
fn config_alias(rest: &[Arg]) -> Option<(String, String)> {
    let mut ops = Vec::new();
    let mut i = 0;
    while let Some(a) = rest.get(i) {
        let v = a.value.as_deref()?;
        match v {
            "-f" | "--file" | "--blob" | "--type" | "--comment" => i += 1,
            "--unset" | "--unset-all" | "--get" | "--get-all" | "--list" | "-l" => return None,
            _ if v.starts_with('-') => {}
            "set" if ops.is_empty() => {}
            _ => ops.push(v),
        }
        i += 1;
    }
    let name = ops.first()?.to_ascii_lowercase();
    let name = name.strip_prefix("alias.")?.to_string();
    Some((name, ops.get(1)?.to_string()))
}

fn short_force(rest: &[Arg]) -> bool {
    for v in rest.iter().filter_map(|a| a.value.as_deref()) {
        if v == "--" {
            return false;
        }
        let forced = match v.strip_prefix("--") {
            Some(l) => l == "force" || l.starts_with("force="),
            None => v.starts_with('-') && v[1..].contains('f'),
        };
        if forced {
            return true;
        }
    }
    false
}

enum Long<'a> {
    One(&'a str),
    /// An abbreviation several options share: all those names.
    Many(Vec<&'a str>),
    None,
}

/// git accepts any unambiguous prefix of a long option.
fn long<'a>(name: &str, list: &[&'a str]) -> Long<'a> {
    if let Some(exact) = list.iter().find(|o| **o == name) {
        return Long::One(exact);
    }
    let cands: Vec<&str> = list
        .iter()
        .copied()
        .filter(|o| o.starts_with(name))
        .collect();
    match cands.len() {
        0 => Long::None,
        1 => Long::One(cands[0]),
        _ => Long::Many(cands),
    }
}

fn is_main(dst: &str) -> bool {
    let d = dst.strip_prefix("refs/heads/").unwrap_or(dst);
    d == "main" || d == "master"
}

fn push(rest: &[Arg], mut mirror: bool, out: &mut Vec<FindingKind>) {
    out.push(FindingKind::GitPush);
    let mut force = false;
    let mut all = false;
    let mut tags = false;
    let mut delete = false;
    let mut positional: Vec<&Arg> = Vec::new();
    let mut opts = true;
    let mut i = 0;
    while i < rest.len() {
        let a = &rest[i];
        i += 1;
        let Some(v) = a.value.as_deref() else {
            positional.push(a);
            continue;
        };
        if !opts || v == "-" || !v.starts_with('-') {
            positional.push(a);
            continue;
        }
        if v == "--" {
            opts = false;
            continue;
        }
        if let Some(l) = v.strip_prefix("--") {
            let (name, has_value) = match l.split_once('=') {
                Some((n, _)) => (n, true),
                None => (l, false),
            };
            match long(name, PUSH_LONG) {
                Long::One("force" | "force-with-lease") => force = true,
                Long::One("mirror") => mirror = true,
                Long::One("all" | "branches") => all = true,
                Long::One("tags") => tags = true,
                Long::One("delete") => delete = true,
                Long::One("repo" | "push-option" | "receive-pack" | "exec") if !has_value => i += 1,
                Long::Many(c) if c.iter().all(|o| o.starts_with("force")) => force = true,
                _ => {}
            }
            continue;
        }
        for (k, c) in v.char_indices().skip(1) {
            match c {
                'f' => force = true,
                'd' => delete = true,
                'o' => {
                    if k + 1 == v.len() {
                        i += 1;
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    let refspecs = positional.get(1..).unwrap_or(&[]);
    let plus = refspecs
        .iter()
        .any(|r| r.value.as_deref().is_some_and(|v| v.starts_with('+')));
    if force || mirror || plus {
        out.push(FindingKind::ForceFlag);
    }
    let mut to_main = mirror;
    let mut unnamed: Option<&str> = None;
    for r in refspecs {
        let Some(spec) = r.value.as_deref() else {
            if force {
                unnamed = Some(&r.display);
            }
            continue;
        };
        let (forced, spec) = match spec.strip_prefix('+') {
            Some(s) => (true, s),
            None => (force, spec),
        };
        let dst = match spec.split_once(':') {
            Some(("", dst)) => {
                // `:main` deletes main.
                to_main |= is_main(dst);
                continue;
            }
            Some((_, dst)) => dst,
            None => spec,
        };
        if delete && is_main(dst) {
            to_main = true;
        }
        if forced && (is_main(dst) || matches!(dst, "HEAD" | "@") || dst.contains('*')) {
            to_main = true;
        }
    }
    if force && (all || (refspecs.is_empty() && !tags && !mirror)) {
        to_main = true;
    }
    if to_main {
        out.push(FindingKind::Dangerous(Danger::ForcePushToMain));
    } else if let Some(d) = unnamed {
        out.push(FindingKind::NotUnderstood(format!(
            "force push to a branch named by `{d}`, which the analyzer cannot see"
        )));
    }
}
