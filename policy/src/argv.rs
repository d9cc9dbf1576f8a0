//! From an argv to what actually runs. Wrappers (sudo, doas, env, nohup,
//! nice, timeout, time, xargs, busybox, command, exec, builtin, stdbuf,
//! setsid, ionice, chroot, flock, watch, su, runuser, ssh) are looked
//! through with their own options (the longer parsers are in `wrap`, which
//! answers each with a `Step` that is followed here);
//! shells are told apart by how they get their script (-c, stdin, a file);
//! program names are compared by basename. Nothing here knows what is
//! dangerous.

use crate::value::{Arg, Flow};
use crate::wrap::{
    Ctx, Env, MAX_RUNS, Step, doas, env, flock, has_short, skip_opts, ssh, su, sudo, value, watch,
    xargs,
};

#[derive(Debug, Clone)]
pub(crate) enum Exec {
    Run {
        /// The basename.
        name: String,
        /// The program word as written (`./install.sh`).
        path: String,
        args: Vec<Arg>,
        /// A directory the wrapper changes to (None inside: unknown).
        chdir: Option<Option<String>>,
    },
    Shell {
        input: Input,
        /// `$0`, `$1` … for a -c script; `$1` … otherwise.
        params: Vec<Arg>,
        env: Env,
        chdir: Option<Option<String>>,
    },
    /// Lists, looks up or prints something: runs no command.
    Nothing,
    /// The command word is not a literal.
    Opaque { arg: Arg, via_exec: bool },
}

#[derive(Debug, Clone)]
pub(crate) enum Input {
    Script(Arg),
    Stdin,
    File(Arg),
}

const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "pdksh", "lksh", "yash", "posh", "rbash",
    "fish",
];
const INTERPRETERS: &[&str] = &[
    "python", "perl", "ruby", "node", "nodejs", "php", "lua", "tclsh", "pypy",
];

pub(crate) fn program_name(path: &str) -> String {
    path.rsplit('/')
        .next()
        .unwrap_or("")
        .trim_start_matches('\\')
        .to_string()
}

/// `bash`, `bash5.2`, `ksh93`, but not `sha256sum`.
fn in_family(name: &str, family: &[&str]) -> bool {
    family.iter().any(|f| {
        name.strip_prefix(f).is_some_and(|rest| {
            rest.chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
        })
    })
}

pub(crate) fn is_shell(name: &str) -> bool {
    in_family(name, SHELLS)
}

pub(crate) fn is_interpreter(name: &str) -> bool {
    in_family(name, INTERPRETERS)
}

/// An interpreter with no inline code and no script file reads its program
/// from stdin.
pub(crate) fn interp_reads_stdin(args: &[Arg]) -> bool {
    for a in args {
        let Some(v) = a.value.as_deref() else {
            return false;
        };
        if v == "-" {
            return true;
        }
        if let Some(l) = v.strip_prefix("--") {
            if matches!(l, "eval" | "print" | "command") || l.starts_with("eval=") {
                return false;
            }
            continue;
        }
        if let Some(cluster) = v.strip_prefix('-') {
            if cluster.contains(['c', 'e', 'E', 'm', 'r', 'p']) {
                return false;
            }
            continue;
        }
        return false;
    }
    true
}

pub(crate) fn resolve(args: &[Arg], stdin: &Flow) -> Vec<Exec> {
    let mut out = Vec::new();
    resolve_into(args.to_vec(), stdin, Ctx::default(), &mut out);
    out
}

fn resolve_into(mut cur: Vec<Arg>, stdin: &Flow, mut ctx: Ctx, out: &mut Vec<Exec>) {
    // Each round strips at least one word, so this ends; the cap is for
    // env -S, which replaces words.
    for _ in 0..64 {
        let Some(first) = cur.first() else {
            out.push(Exec::Nothing);
            return;
        };
        let Some(path) = first.value.clone() else {
            out.push(Exec::Opaque {
                arg: first.clone(),
                via_exec: ctx.via_exec,
            });
            return;
        };
        let name = program_name(&path);
        let rest = &cur[1..];
        let step = match name.as_str() {
            "sudo" => sudo(rest, &mut ctx),
            "doas" => doas(rest),
            "env" => env(rest, &mut ctx),
            "nohup" | "builtin" => Step::Inner(usize::from(value(rest, 0) == Some("--"))),
            "nice" => Step::Inner(skip_opts(rest, "n", &["adjustment"])),
            "timeout" => Step::Inner(skip_opts(rest, "sk", &["signal", "kill-after"]) + 1),
            "time" => Step::Inner(skip_opts(rest, "fo", &["format", "output"])),
            "stdbuf" => Step::Inner(skip_opts(rest, "ioe", &["input", "output", "error"])),
            "setsid" => Step::Inner(skip_opts(rest, "", &[])),
            "ionice" if has_short(rest, "pPu") => Step::Nothing,
            "ionice" => Step::Inner(skip_opts(rest, "cn", &["class", "classdata"])),
            "chroot" => Step::Inner(skip_opts(rest, "", &["userspec", "groups"]) + 1),
            "command" if has_short(rest, "vV") => Step::Nothing,
            "command" => Step::Inner(skip_opts(rest, "", &[])),
            "exec" => {
                ctx.via_exec = true;
                Step::Inner(skip_opts(rest, "a", &[]))
            }
            "busybox" if rest.is_empty() || value(rest, 0).is_some_and(|v| v.starts_with('-')) => {
                Step::Nothing
            }
            "busybox" => Step::Inner(0),
            "flock" => flock(rest),
            "watch" => watch(rest),
            "su" | "runuser" => su(rest),
            "ssh" => ssh(rest),
            "xargs" => xargs(rest, stdin),
            n if is_shell(n) => {
                out.push(shell(rest, &ctx));
                return;
            }
            _ => {
                out.push(Exec::Run {
                    name,
                    path,
                    args: rest.to_vec(),
                    chdir: ctx.chdir.take(),
                });
                return;
            }
        };
        match step {
            Step::Inner(k) if 1 + k >= cur.len() => {
                out.push(Exec::Nothing);
                return;
            }
            Step::Inner(k) => cur = cur[1 + k..].to_vec(),
            Step::Nothing => {
                out.push(Exec::Nothing);
                return;
            }
            // What the wrappers changed holds for the shell too.
            Step::Script(script, params) => {
                out.push(Exec::Shell {
                    input: Input::Script(script),
                    params,
                    env: ctx.env.clone(),
                    chdir: ctx.chdir.clone(),
                });
                return;
            }
            Step::Many(runs) => {
                for r in runs.into_iter().take(MAX_RUNS) {
                    resolve_into(r, &Flow::Unknown, ctx.clone(), out);
                }
                return;
            }
        }
    }
    out.push(Exec::Nothing);
}

/// How a shell gets its script: `-c SCRIPT` (with combined flags such as
/// `-ec`, `-lc`), `-s` or nothing (stdin), or a file.
fn shell(rest: &[Arg], ctx: &Ctx) -> Exec {
    let mut i = 0;
    let mut c_mode = false;
    let mut s_mode = false;
    while let Some(v) = value(rest, i) {
        if v == "--" || v == "-" {
            i += 1;
            break;
        }
        if let Some(l) = v.strip_prefix("--") {
            i += if matches!(l, "rcfile" | "init-file") {
                2
            } else {
                1
            };
            continue;
        }
        if v.len() > 1 && (v.starts_with('-') || v.starts_with('+')) {
            i += 1;
            for c in v.chars().skip(1) {
                match c {
                    'c' => c_mode = true,
                    's' => s_mode = true,
                    'o' | 'O' => i += 1,
                    _ => {}
                }
            }
            continue;
        }
        break;
    }
    let operands = rest.get(i..).unwrap_or(&[]);
    let (input, params) = if c_mode {
        match operands.split_first() {
            Some((script, params)) => (Input::Script(script.clone()), params.to_vec()),
            None => return Exec::Nothing,
        }
    } else if s_mode
        || operands.is_empty()
        || matches!(
            operands[0].value.as_deref(),
            Some("/dev/stdin" | "/proc/self/fd/0" | "/dev/fd/0")
        )
    {
        (Input::Stdin, operands.to_vec())
    } else {
        (Input::File(operands[0].clone()), operands[1..].to_vec())
    };
    Exec::Shell {
        input,
        params,
        env: ctx.env.clone(),
        chdir: ctx.chdir.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<Arg> {
        v.iter().map(|s| Arg::lit(s)).collect()
    }

    fn run_name(v: &[&str]) -> Option<(String, Vec<String>)> {
        match resolve(&args(v), &Flow::Unknown).into_iter().next()? {
            Exec::Run { name, args, .. } => {
                Some((name, args.into_iter().filter_map(|a| a.value).collect()))
            }
            _ => None,
        }
    }

    #[test]
    fn wrappers_unwrap() {
        for v in [
            &["sudo", "-u", "root", "-E", "rm", "-rf", "/"][..],
            &["sudo", "--user=root", "--", "rm", "-rf", "/"],
            &["env", "-i", "X=1", "rm", "-rf", "/"],
            &["nice", "-n", "10", "rm", "-rf", "/"],
            &["nice", "-10", "rm", "-rf", "/"],
            &["timeout", "-s", "KILL", "5", "rm", "-rf", "/"],
            &["nohup", "/bin/rm", "-rf", "/"],
            &["busybox", "rm", "-rf", "/"],
            &["command", "rm", "-rf", "/"],
            &["exec", "-a", "x", "rm", "-rf", "/"],
            &["time", "-p", "rm", "-rf", "/"],
            &["stdbuf", "-oL", "rm", "-rf", "/"],
            &["doas", "-u", "root", "rm", "-rf", "/"],
            &["env", "-S", "X=1 rm -rf", "/"],
        ] {
            let (name, a) = run_name(v).unwrap_or_else(|| panic!("{v:?}"));
            assert_eq!(
                (name.as_str(), a),
                ("rm", vec!["-rf".to_string(), "/".into()]),
                "{v:?}"
            );
        }
        assert!(matches!(
            resolve(&args(&["command", "-v", "rm"]), &Flow::Unknown)[0],
            Exec::Nothing
        ));
        assert!(matches!(
            resolve(&args(&["sudo", "-l"]), &Flow::Unknown)[0],
            Exec::Nothing
        ));
    }

    #[test]
    fn shells_by_input() {
        let first = |v: &[&str]| resolve(&args(v), &Flow::Unknown).remove(0);
        assert!(matches!(
            first(&["bash", "-lc", "x"]),
            Exec::Shell {
                input: Input::Script(_),
                ..
            }
        ));
        assert!(
            matches!(first(&["sh", "-e", "-c", "x", "a0"]), Exec::Shell { input: Input::Script(_), params, .. } if params.len() == 1)
        );
        assert!(matches!(
            first(&["bash", "-o", "pipefail", "-c", "x"]),
            Exec::Shell {
                input: Input::Script(_),
                ..
            }
        ));
        assert!(matches!(
            first(&["sh", "./deploy.sh"]),
            Exec::Shell {
                input: Input::File(_),
                ..
            }
        ));
        assert!(matches!(
            first(&["sudo", "bash"]),
            Exec::Shell {
                input: Input::Stdin,
                ..
            }
        ));
        assert!(matches!(
            first(&["bash", "-s", "--", "x"]),
            Exec::Shell {
                input: Input::Stdin,
                ..
            }
        ));
        assert!(!is_shell("sha256sum") && is_shell("bash5.2") && is_shell("ksh93"));
    }

    #[test]
    fn xargs_appends_literal_input() {
        let e = resolve(
            &args(&["xargs", "-0", "rm", "-rf"]),
            &Flow::Literal("/\0".into()),
        );
        assert!(matches!(&e[0], Exec::Run { name, args, .. } if name == "rm" && args.len() == 2));
        let e = resolve(
            &args(&["xargs", "-I{}", "rm", "-rf", "{}"]),
            &Flow::Literal("/\n".into()),
        );
        assert!(matches!(&e[0], Exec::Run { args, .. } if args[1].value.as_deref() == Some("/")));
    }
}
