//! Running one simple command once its words are expanded: aliases and
//! functions first (a shell looks them up before programs), then what the
//! wrappers resolve to. Shells read the script they are given (from -c, a
//! pipe, a here-document, a process substitution, a saved download);
//! builtins change the walker's state (`cd`, `export`, `set --`, `alias`)
//! or run code in this shell (`eval`, `source`, `trap`); programs go to the
//! rules, and interpreter one-liners to `inline`.

use std::rc::Rc;

use crate::argv::{self, Exec, Input};
use crate::danger;
use crate::depth::{MAX_DEPTH, too_deep};
use crate::flow;
use crate::git::{self, GitOut};
use crate::inline;
use crate::report::{Danger, Finding, FindingKind};
use crate::target::{self, Cwd, HOME};
use crate::value::{Arg, Flow, Origin};
use crate::walk::{State, Walker, cd_to};

impl Walker {
    /// Run an expanded argv: aliases and functions first (a shell looks
    /// them up before programs), then whatever the wrappers resolve to.
    pub(crate) fn exec(
        &mut self,
        st: &mut State,
        args: Vec<Arg>,
        env: &[(String, Option<String>)],
        stdin: &Flow,
        display: &str,
        upstream: Option<&str>,
    ) -> Flow {
        let piped = match upstream {
            Some(u) => format!("{u} | {display}"),
            None => display.to_string(),
        };
        if let Some(name) = args[0].value.clone() {
            let alias_key = format!("alias {name}");
            if let Some(body) = st.aliases.get(&name).cloned()
                && !self.calls.contains(&alias_key)
            {
                let rest: Vec<&str> = args[1..].iter().map(|a| a.display.as_str()).collect();
                self.calls.push(alias_key);
                let f = self.run_script(st, &format!("{body} {}", rest.join(" ")), stdin);
                self.calls.pop();
                return f;
            }
            if let Some(body) = st.funcs.get(&name).cloned()
                && !self.calls.contains(&name)
            {
                if self.calls.len() >= MAX_DEPTH {
                    self.nu(too_deep(), display);
                } else {
                    self.calls.push(name.clone());
                    let saved = st.pos.take();
                    st.set_pos(&args[1..]);
                    self.walk_command(st, &body, stdin);
                    st.pos = saved;
                    self.calls.pop();
                }
            }
        }
        let mut flow = Flow::Unknown;
        for e in argv::resolve(&args, stdin) {
            flow = self.run(st, e, &args, env, stdin, display, &piped);
        }
        flow
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        st: &mut State,
        e: Exec,
        args: &[Arg],
        env: &[(String, Option<String>)],
        stdin: &Flow,
        display: &str,
        piped: &str,
    ) -> Flow {
        match e {
            Exec::Nothing => flow::lookup(args),
            Exec::Opaque { arg, via_exec } => {
                match arg.origin.as_ref().and_then(Origin::flow) {
                    Some(Flow::Download) => self.danger(Danger::CodeInjection, display),
                    Some(Flow::Decoded(_)) => self.danger(Danger::DecodeIntoShell, display),
                    // exec of a command's output; exec of a variable (`exec "$@"`
                    // in every entrypoint) is as unreadable as `$CMD`, no more.
                    Some(_) if via_exec => self.danger(Danger::CodeInjection, display),
                    _ => self.nu(
                        format!(
                            "the command name comes from `{}`, which the analyzer cannot see",
                            arg.display
                        ),
                        display,
                    ),
                }
                Flow::Unknown
            }
            Exec::Shell {
                input,
                params,
                env: more,
                chdir,
            } => {
                let mut sub = st.clone();
                sub.funcs = Rc::default();
                sub.aliases = Rc::default();
                for (n, v) in env.iter().chain(&more) {
                    sub.set(n, v.clone());
                }
                if let Some(c) = chdir {
                    sub.cwd = cd_to(&sub.cwd, c.as_deref());
                }
                self.shell(&mut sub, input, &params, stdin, display, piped)
            }
            Exec::Run {
                name,
                path,
                args,
                chdir,
                ..
            } => self.program(st, &name, &path, &args, chdir, stdin, display, piped),
        }
    }

    fn shell(
        &mut self,
        sub: &mut State,
        input: Input,
        params: &[Arg],
        stdin: &Flow,
        display: &str,
        piped: &str,
    ) -> Flow {
        match input {
            Input::Script(script) => {
                sub.arg0 = params.first().and_then(|a| a.value.clone());
                sub.set_pos(params.get(1..).unwrap_or(&[]));
                match &script.value {
                    Some(text) => self.run_script(sub, text, stdin),
                    None => {
                        self.unseen(sub, &script, "the shell's script", display);
                        Flow::Unknown
                    }
                }
            }
            Input::Stdin => {
                sub.set_pos(params);
                self.feed(sub, stdin, piped);
                Flow::Unknown
            }
            Input::File(file) => {
                sub.arg0 = file.value.clone();
                sub.set_pos(params);
                let f = self.file_flow(&file, &sub.cwd);
                self.feed(sub, &f, display);
                Flow::Unknown
            }
        }
    }

    /// A shell runs what it reads: judge it by where it came from, and read
    /// it when its text is known.
    fn feed(&mut self, sub: &mut State, code: &Flow, display: &str) {
        match code {
            Flow::Download => self.danger(Danger::CodeInjection, display),
            Flow::Decoded(text) => {
                self.danger(Danger::DecodeIntoShell, display);
                if let Some(t) = text {
                    self.run_script(sub, t, &Flow::Unknown);
                }
            }
            Flow::Literal(t) => {
                self.run_script(sub, t, &Flow::Unknown);
            }
            _ => {}
        }
    }

    /// Code the shell will run but the reader cannot see.
    fn unseen(&mut self, sub: &mut State, code: &Arg, what: &str, display: &str) {
        match code.origin.as_ref().and_then(Origin::flow) {
            Some(f @ (Flow::Download | Flow::Decoded(_))) => self.feed(sub, &f.clone(), display),
            _ => self.nu(
                format!(
                    "{what} comes from `{}`, which the analyzer cannot see",
                    code.display
                ),
                display,
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn program(
        &mut self,
        st: &mut State,
        name: &str,
        path: &str,
        args: &[Arg],
        chdir: Option<Option<String>>,
        stdin: &Flow,
        display: &str,
        piped: &str,
    ) -> Flow {
        if let Some(f) = self.builtin(st, name, args, stdin, display, piped) {
            return f;
        }
        let cwd = match &chdir {
            Some(c) => cd_to(&st.cwd, c.as_deref()),
            None => st.cwd.clone(),
        };
        let mut kinds = Vec::new();
        let git = if name == "git" {
            git::check(args, &self.git_aliases, &mut kinds)
        } else {
            danger::check(name, args, &cwd, &mut kinds);
            GitOut::default()
        };
        for k in kinds {
            self.add(k, display);
        }
        if let Some(a) = git.alias {
            self.git_aliases.push(a);
        }
        if let Some(script) = git.shell {
            self.run_script(&mut st.clone(), &script, &Flow::Unknown);
        }
        if let Some(code) = inline::code_of(name, args) {
            self.inline(st, name, &code);
        }
        if argv::is_interpreter(name) {
            if argv::interp_reads_stdin(args) {
                self.feed_interpreter(stdin, piped);
            } else if let Some(file) = args
                .iter()
                .find(|a| !a.value.as_deref().is_some_and(|v| v.starts_with('-')))
            {
                let f = self.file_flow(file, &cwd);
                self.feed_interpreter(&f, display);
            }
        }
        // A saved download run as a program: `./install.sh`.
        if path.contains('/') {
            let f = self.file_flow(&Arg::lit(path), &cwd);
            self.feed_interpreter(&f, display);
        }
        if let Some(f) = flow::saved_file(name, args) {
            self.files
                .insert(target::file_key(&f, &cwd), Flow::Download);
        }
        flow::output(name, args, stdin, &cwd, &self.files)
    }

    /// Commands a one-liner hands to a shell. Its strings are not always
    /// commands (`exec("x = 1")` is Python), so only what the analysis is
    /// sure of is kept: what it could not read there is not a finding.
    fn inline(&mut self, st: &State, name: &str, code: &str) {
        let before = self.findings.len();
        for call in inline::shell_calls(name, code) {
            let mut sub = st.clone();
            match call {
                inline::Call::Script(s) => {
                    self.run_script(&mut sub, &s, &Flow::Unknown);
                }
                inline::Call::Argv(v) if !v.is_empty() => {
                    let args: Vec<Arg> = v.iter().map(|a| Arg::lit(a)).collect();
                    let display = args
                        .iter()
                        .map(|a| a.display.as_str())
                        .collect::<Vec<_>>()
                        .join(" ");
                    self.exec(&mut sub, args, &[], &Flow::Unknown, &display, None);
                }
                inline::Call::Argv(_) => {}
            }
        }
        let kept: Vec<Finding> = self
            .findings
            .drain(before..)
            .filter(|f| !matches!(f.kind, FindingKind::NotUnderstood(_)))
            .collect();
        self.findings.extend(kept);
    }

    /// Interpreters are not read, only judged by where their code came from.
    fn feed_interpreter(&mut self, code: &Flow, display: &str) {
        match code {
            Flow::Download => self.danger(Danger::CodeInjection, display),
            Flow::Decoded(_) => self.danger(Danger::DecodeIntoShell, display),
            _ => {}
        }
    }

    /// Commands that change or read the shell's own state.
    fn builtin(
        &mut self,
        st: &mut State,
        name: &str,
        args: &[Arg],
        stdin: &Flow,
        display: &str,
        piped: &str,
    ) -> Option<Flow> {
        let operands = || {
            args.iter().filter(|a| {
                !a.value
                    .as_deref()
                    .is_some_and(|v| v.starts_with('-') && v.len() > 1)
            })
        };
        match name {
            "cd" | "pushd" => {
                st.cwd = match operands().next() {
                    None => Cwd::Known(HOME.to_string()),
                    Some(a) => match a.value.as_deref() {
                        Some("-") | None => Cwd::Unknown,
                        Some(v) => cd_to(&st.cwd, Some(v)),
                    },
                };
            }
            "popd" => st.cwd = Cwd::Unknown,
            "export" | "local" | "declare" | "typeset" | "readonly" => {
                for a in operands() {
                    let text = a.value.as_deref().unwrap_or(&a.display);
                    if let Some((n, v)) = text.split_once('=') {
                        let value = Arg {
                            value: a.value.as_ref().map(|_| v.to_string()),
                            ..a.clone()
                        };
                        st.set_arg(n.trim_end_matches('+'), &value);
                    }
                }
            }
            "unset" => {
                for a in operands() {
                    if let Some(v) = a.value.as_deref() {
                        st.set(v, Some(String::new()));
                    }
                }
            }
            "read" => {
                let mut skip = false;
                for a in args {
                    let v = a.value.as_deref().unwrap_or("");
                    if skip {
                        skip = false;
                    } else if matches!(v, "-p" | "-d" | "-n" | "-N" | "-t" | "-u" | "-a" | "-i") {
                        skip = true;
                    } else if !v.starts_with('-') {
                        st.set(v, None);
                    }
                }
            }
            "set" => {
                let k = args.iter().position(|a| a.value.as_deref() == Some("--"));
                match k {
                    Some(k) => st.set_pos(&args[k + 1..]),
                    None if args.first().is_some_and(|a| {
                        !a.value
                            .as_deref()
                            .is_some_and(|v| v.starts_with(['-', '+']))
                    }) =>
                    {
                        st.set_pos(args);
                    }
                    None => {}
                }
            }
            "shift" => {
                let n: usize = args
                    .first()
                    .and_then(|a| a.value.as_deref()?.parse().ok())
                    .unwrap_or(1);
                if let Some(p) = &st.pos {
                    st.pos = Some(Rc::new(p.iter().skip(n).cloned().collect()));
                }
            }
            "eval" => return Some(self.eval(st, args, stdin, display)),
            "source" | "." => {
                self.source(st, args, stdin, display, piped);
                return Some(Flow::Unknown);
            }
            "trap" => match args.first() {
                Some(a)
                    if args.len() >= 2
                        && a.value.as_deref() != Some("-")
                        && !a.value.as_deref().is_some_and(|v| v.starts_with('-')) =>
                {
                    match &a.value {
                        Some(code) => {
                            self.run_script(&mut st.clone(), code, &Flow::Unknown);
                        }
                        None => self.unseen(&mut st.clone(), a, "the trap's code", display),
                    }
                }
                _ => {}
            },
            "alias" => {
                for a in args {
                    if let Some((n, v)) = a.value.as_deref().and_then(|v| v.split_once('=')) {
                        Rc::make_mut(&mut st.aliases).insert(n.to_string(), v.to_string());
                    }
                }
            }
            _ => return None,
        }
        Some(Flow::Empty)
    }

    /// eval runs its words, joined, as script in this same shell.
    fn eval(&mut self, st: &mut State, args: &[Arg], stdin: &Flow, display: &str) -> Flow {
        let values: Option<Vec<String>> = args.iter().map(|a| a.value.clone()).collect();
        if let Some(v) = values {
            return self.run_script(st, &v.join(" "), stdin);
        }
        let worst = args
            .iter()
            .filter(|a| a.value.is_none())
            .max_by_key(|a| a.origin.as_ref().map_or(0, Origin::rank));
        if let Some(w) = worst {
            let w = w.clone();
            self.unseen(st, &w, "eval's code", display);
        }
        Flow::Unknown
    }

    /// `source FILE` runs FILE in this shell. Code from a process
    /// substitution is run unseen (unless it is a literal).
    fn source(&mut self, st: &mut State, args: &[Arg], stdin: &Flow, display: &str, piped: &str) {
        let Some(file) = args.iter().find(|a| a.value.as_deref() != Some("--")) else {
            return;
        };
        if let Some(Origin::ProcSub(f)) = &file.origin {
            match f {
                Flow::Literal(t) => {
                    self.run_script(st, t, stdin);
                }
                Flow::Download | Flow::Decoded(_) => self.feed(st, &f.clone(), display),
                _ => self.danger(Danger::CodeInjection, display),
            }
            return;
        }
        if matches!(
            file.value.as_deref(),
            Some("/dev/stdin" | "/proc/self/fd/0" | "/dev/fd/0")
        ) {
            self.feed(st, stdin, piped);
            return;
        }
        let f = self.file_flow(file, &st.cwd);
        self.feed(st, &f, display);
    }
}
