//! Walks a parsed script the way a shell would run it, without running
//! anything. It keeps what a reader can know: literal variables, positional
//! parameters, the working directory after `cd`, functions and aliases, and
//! files a download or a decoder was saved to. It follows pipes (what each
//! command feeds the next), compound commands, loops and function
//! definitions, and hands each simple command, once its words are expanded
//! (`expand`), to `exec`, which reads nested scripts recursively.
//!
//! Work is bounded three ways: nesting depth, a budget of commands walked
//! (functions calling functions, loops over lists), and a cap on findings.

use std::collections::HashMap;
use std::rc::Rc;

use crate::ast::{Assign, Command, Kind, Pipeline, Redir, Script, Target};
use crate::danger;
use crate::depth::{MAX_DEPTH, too_deep};
use crate::lex::Op;
use crate::parse;
use crate::report::{Analysis, Danger, Finding, FindingKind};
use crate::show::cut;
use crate::target::{self, Cwd, HOME};
use crate::value::{Arg, Flow, Origin};
use crate::word::Word;

pub(crate) const MAX_INPUT: usize = 64 * 1024;
/// Longer values are treated as unknown (`a=$a$a` doubling must not grow
/// without end).
pub(crate) const MAX_VALUE: usize = 64 * 1024;
const FUEL: usize = 20_000;
const MAX_FINDINGS: usize = 256;
/// Compound commands plus nested scripts, together: keeps recursion well
/// inside a 2 MiB thread stack.
const MAX_NEST: usize = 48;
/// A `for` over more values than this is walked once with the variable
/// unknown.
const MAX_LOOP_VALUES: usize = 8;

#[derive(Clone, Default)]
pub(crate) struct State {
    pub vars: Rc<HashMap<String, Option<String>>>,
    /// None: unknown (the script's own arguments).
    pub pos: Option<Rc<Vec<Option<String>>>>,
    pub arg0: Option<String>,
    pub cwd: Cwd,
    pub(crate) funcs: Rc<HashMap<String, Rc<Command>>>,
    pub(crate) aliases: Rc<HashMap<String, String>>,
    /// Variables holding a download or a decoded payload (`x=$(curl …)`):
    /// what runs `$x` later runs that.
    pub(crate) unseen: Rc<HashMap<String, Flow>>,
}

impl State {
    pub(crate) fn set(&mut self, name: &str, value: Option<String>) {
        let value = value.filter(|v| v.len() <= MAX_VALUE);
        Rc::make_mut(&mut self.vars).insert(name.to_string(), value);
        if self.unseen.contains_key(name) {
            Rc::make_mut(&mut self.unseen).remove(name);
        }
    }

    /// Sets a variable from an argument, keeping where an unknown value
    /// came from when that is a download or a decoded payload.
    pub(crate) fn set_arg(&mut self, name: &str, a: &Arg) {
        self.set(name, a.value.clone());
        if let Some(f @ (Flow::Download | Flow::Decoded(_))) =
            a.origin.as_ref().and_then(Origin::flow)
        {
            Rc::make_mut(&mut self.unseen).insert(name.to_string(), f.clone());
        }
    }

    pub(crate) fn set_pos(&mut self, params: &[Arg]) {
        self.pos = Some(Rc::new(params.iter().map(|a| a.value.clone()).collect()));
    }
}

pub(crate) struct Walker {
    pub(crate) findings: Vec<Finding>,
    levels: usize,
    nest: usize,
    fuel: usize,
    out_of_fuel: bool,
    /// Functions and aliases being expanded: never re-entered.
    pub(crate) calls: Vec<String>,
    /// Files written by a download or a decoder (they live in the file
    /// system, so subshells share them).
    pub(crate) files: HashMap<String, Flow>,
    /// `git config alias.X …` seen so far (git's config is shared too).
    pub(crate) git_aliases: Vec<(String, String)>,
    /// The display of the command piping into the one being walked.
    pipe_prev: Option<String>,
    last_display: String,
}

pub(crate) fn script(text: &str) -> Analysis {
    let mut w = Walker::new();
    w.run_script(&mut State::default(), text, &Flow::Unknown);
    w.finish()
}

pub(crate) fn argv(argv: &[String]) -> Analysis {
    let mut w = Walker::new();
    let size: usize = argv.iter().map(|a| a.len() + 1).sum();
    if size > MAX_INPUT {
        w.nu("the command is larger than 64 KiB", &argv.join(" "));
        return w.finish();
    }
    let args: Vec<Arg> = argv
        .iter()
        .map(|a| Arg::lit(&a.replace(HOME, "")))
        .collect();
    if args.is_empty() {
        return w.finish();
    }
    let display = args
        .iter()
        .map(|a| a.display.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    w.exec(
        &mut State::default(),
        args,
        &[],
        &Flow::Unknown,
        &display,
        None,
    );
    w.finish()
}

impl Walker {
    fn new() -> Walker {
        Walker {
            findings: Vec::new(),
            levels: 0,
            nest: 0,
            fuel: FUEL,
            out_of_fuel: false,
            calls: Vec::new(),
            files: HashMap::new(),
            git_aliases: Vec::new(),
            pipe_prev: None,
            last_display: String::new(),
        }
    }

    fn finish(mut self) -> Analysis {
        if self.out_of_fuel {
            self.findings.truncate(MAX_FINDINGS - 1);
            self.nu(
                "too much to analyse: the script expands into more commands than are followed",
                "…",
            );
        }
        Analysis {
            findings: self.findings,
        }
    }

    pub(crate) fn add(&mut self, kind: FindingKind, command: &str) {
        if self.findings.len() >= MAX_FINDINGS {
            return;
        }
        let f = Finding {
            kind,
            command: cut(command),
        };
        if !self.findings.contains(&f) {
            self.findings.push(f);
        }
    }

    pub(crate) fn nu(&mut self, why: impl Into<String>, command: &str) {
        self.add(FindingKind::NotUnderstood(why.into()), command);
    }

    pub(crate) fn danger(&mut self, d: Danger, command: &str) {
        self.add(FindingKind::Dangerous(d), command);
    }

    fn spend(&mut self) -> bool {
        if self.fuel == 0 {
            self.out_of_fuel = true;
            return false;
        }
        self.fuel -= 1;
        true
    }

    /// Parse and walk a (nested) script; returns what it writes on stdout.
    pub(crate) fn run_script(&mut self, st: &mut State, text: &str, stdin: &Flow) -> Flow {
        if text.len() > MAX_INPUT {
            self.nu("the script is larger than 64 KiB", text);
            return Flow::Unknown;
        }
        if self.levels >= MAX_DEPTH || self.nest >= MAX_NEST {
            self.nu(too_deep(), text);
            return Flow::Unknown;
        }
        if self.out_of_fuel {
            return Flow::Unknown;
        }
        self.levels += 1;
        let flow = match parse::parse(text, self.levels) {
            Ok(s) => self.walk_script(st, &s, stdin),
            Err(why) => {
                self.nu(why, text);
                Flow::Unknown
            }
        };
        self.levels -= 1;
        flow
    }

    fn walk_script(&mut self, st: &mut State, s: &Script, stdin: &Flow) -> Flow {
        let mut out = Flow::Empty;
        for item in &s.items {
            if self.out_of_fuel {
                return Flow::Unknown;
            }
            for p in &item.pipelines {
                let f = self.walk_pipeline(st, p, stdin);
                out = out.then(f);
            }
        }
        out
    }

    fn walk_pipeline(&mut self, st: &mut State, p: &Pipeline, stdin: &Flow) -> Flow {
        if let [only] = p.cmds.as_slice() {
            return self.walk_command(st, only, stdin);
        }
        // Each part of a pipeline runs in a subshell.
        let mut flow = stdin.clone();
        let mut prev: Option<String> = None;
        for c in &p.cmds {
            self.pipe_prev.clone_from(&prev);
            let mut sub = st.clone();
            self.last_display.clear();
            flow = self.walk_command(&mut sub, c, &flow);
            self.pipe_prev = None;
            let shown = std::mem::take(&mut self.last_display);
            prev = match prev {
                _ if shown.is_empty() => None,
                // Only the near end of a long pipeline is worth showing.
                Some(up) if up.len() < 240 => Some(format!("{up} | {shown}")),
                Some(_) => Some(format!("… | {shown}")),
                None => Some(shown),
            };
        }
        flow
    }

    pub(crate) fn walk_command(&mut self, st: &mut State, cmd: &Command, stdin: &Flow) -> Flow {
        if !self.spend() {
            return Flow::Unknown;
        }
        if self.nest >= MAX_NEST {
            self.nu(too_deep(), "…");
            return Flow::Unknown;
        }
        self.nest += 1;
        let flow = self.command(st, cmd, stdin);
        self.nest -= 1;
        flow
    }

    fn command(&mut self, st: &mut State, cmd: &Command, stdin: &Flow) -> Flow {
        if let Kind::Simple { assigns, words } = &cmd.kind {
            return self.simple(st, assigns, words, &cmd.redirs, stdin);
        }
        let io = self.io(st, &cmd.redirs, stdin);
        let display = format!("{}{}", label(&cmd.kind), io.display);
        self.check_writes(&io, &display, &st.cwd);
        let input = &io.stdin;
        let flow = match &cmd.kind {
            Kind::Group(b) => self.walk_script(st, b, input),
            Kind::Subshell(b) => self.walk_script(&mut st.clone(), b, input),
            Kind::If {
                branches,
                otherwise,
            } => {
                for (c, b) in branches {
                    self.walk_script(st, c, input);
                    self.walk_script(st, b, input);
                }
                if let Some(o) = otherwise {
                    self.walk_script(st, o, input);
                }
                Flow::Unknown
            }
            Kind::Loop {
                cond,
                body,
                until,
                src,
            } => {
                if danger::fork_bomb_loop(cond, *until, body) {
                    self.danger(Danger::ForkBomb, src);
                }
                self.walk_script(st, cond, input);
                self.walk_script(st, body, input);
                Flow::Unknown
            }
            Kind::For { var, items, body } => {
                self.for_loop(st, var, items.as_deref(), body, input);
                Flow::Unknown
            }
            Kind::ArithFor {
                infinite,
                body,
                src,
            } => {
                if *infinite && danger::has_background(body) {
                    self.danger(Danger::ForkBomb, src);
                }
                self.walk_script(st, body, input);
                Flow::Unknown
            }
            Kind::Case { word, arms } => {
                self.expand(st, word);
                for a in arms {
                    self.walk_script(st, a, input);
                }
                Flow::Unknown
            }
            Kind::Func { name, body, src } => {
                self.define(st, name, body, src);
                Flow::Empty
            }
            Kind::Arith | Kind::Simple { .. } => Flow::Empty,
        };
        if io.stdout_redirected {
            Flow::Empty
        } else {
            flow
        }
    }

    fn for_loop(
        &mut self,
        st: &mut State,
        var: &str,
        items: Option<&[Word]>,
        body: &Script,
        stdin: &Flow,
    ) {
        let values = items.map(|ws| {
            let mut v = Vec::new();
            for w in ws {
                v.extend(self.expand(st, w));
            }
            v
        });
        match values {
            Some(v) if v.is_empty() => {}
            Some(v) if v.len() <= MAX_LOOP_VALUES => {
                for a in v {
                    st.set(var, a.value);
                    self.walk_script(st, body, stdin);
                }
            }
            _ => {
                st.set(var, None);
                self.walk_script(st, body, stdin);
            }
        }
    }

    fn define(&mut self, st: &mut State, name: &str, body: &Rc<Command>, src: &str) {
        if danger::fork_bomb_func(name, body) {
            self.danger(Danger::ForkBomb, src);
        }
        // The body is judged now too, in case the call hides where a reader
        // cannot see it. Only dangers are kept: its arguments are unknown
        // here, and the call, walked with them, reports the rest properly.
        let before = self.findings.len();
        let mut sub = st.clone();
        sub.pos = None;
        self.calls.push(name.to_string());
        self.walk_command(&mut sub, body, &Flow::Unknown);
        self.calls.pop();
        let kept: Vec<Finding> = self
            .findings
            .drain(before..)
            .filter(|f| matches!(f.kind, FindingKind::Dangerous(_)))
            .collect();
        self.findings.extend(kept);
        Rc::make_mut(&mut st.funcs).insert(name.to_string(), body.clone());
    }

    fn io(&mut self, st: &mut State, redirs: &[Redir], stdin: &Flow) -> Io {
        let mut io = Io {
            stdin: stdin.clone(),
            stdout_redirected: false,
            stdout_file: None,
            writes: Vec::new(),
            display: String::new(),
        };
        for r in redirs {
            let on_stdin = matches!(r.fd, None | Some(0));
            let on_stdout = matches!(r.fd, None | Some(1));
            let fd = r.fd.map(|n| n.to_string()).unwrap_or_default();
            let a = match &r.target {
                Target::Doc(d) => {
                    if on_stdin {
                        io.stdin = Flow::Literal(d.body.clone());
                    }
                    io.display.push_str(&format!(" {fd}{}…", r.op.text()));
                    continue;
                }
                Target::Word(w) => self.expand_one(st, w),
            };
            // `< <(…)` must not read as `<<(…)`.
            let gap = if a.display.starts_with(['<', '>']) || r.op == Op::TLess {
                " "
            } else {
                ""
            };
            io.display
                .push_str(&format!(" {fd}{}{gap}{}", r.op.text(), a.display));
            match r.op {
                Op::Less if on_stdin => io.stdin = self.file_flow(&a, &st.cwd),
                Op::TLess if on_stdin => {
                    io.stdin = match &a.value {
                        Some(v) => Flow::Literal(format!("{v}\n")),
                        None => a
                            .origin
                            .as_ref()
                            .and_then(Origin::flow)
                            .cloned()
                            .unwrap_or(Flow::Unknown),
                    }
                }
                Op::LessAnd if on_stdin => io.stdin = Flow::Unknown,
                Op::LessGreat => io.writes.push(a),
                Op::Great | Op::DGreat | Op::Clobber => {
                    if on_stdout {
                        io.stdout_redirected = true;
                        io.stdout_file = Some(a.clone());
                    }
                    io.writes.push(a);
                }
                Op::AndGreat | Op::AndDGreat => {
                    io.stdout_redirected = true;
                    io.stdout_file = Some(a.clone());
                    io.writes.push(a);
                }
                Op::GreatAnd => {
                    let dup = a
                        .value
                        .as_deref()
                        .is_some_and(|v| v == "-" || v.chars().all(|c| c.is_ascii_digit()));
                    if on_stdout {
                        io.stdout_redirected = true;
                        io.stdout_file = (!dup).then(|| a.clone());
                    }
                    if !dup {
                        io.writes.push(a);
                    }
                }
                _ => {}
            }
        }
        io
    }

    fn check_writes(&mut self, io: &Io, display: &str, cwd: &Cwd) {
        for a in &io.writes {
            if let Some(d) = a
                .value
                .as_deref()
                .and_then(|v| target::device_write(v, cwd))
            {
                self.danger(d, display);
            }
        }
    }

    /// What reading this file gives: a process substitution's output, or a
    /// file this script saved a download or a decoded payload into.
    pub(crate) fn file_flow(&self, a: &Arg, cwd: &Cwd) -> Flow {
        if let Some(f) = a.origin.as_ref().and_then(Origin::flow) {
            return f.clone();
        }
        a.value
            .as_deref()
            .and_then(|v| self.files.get(&target::file_key(v, cwd)))
            .cloned()
            .unwrap_or(Flow::Unknown)
    }

    fn simple(
        &mut self,
        st: &mut State,
        assigns: &[Assign],
        words: &[Word],
        redirs: &[Redir],
        stdin: &Flow,
    ) -> Flow {
        let upstream = self.pipe_prev.take();
        let mut args = Vec::new();
        for w in words {
            args.extend(self.expand(st, w));
        }
        let mut values: Vec<(String, Arg)> = Vec::new();
        for a in assigns {
            let v = match &a.array {
                Some(ws) => {
                    for w in ws {
                        self.expand(st, w);
                    }
                    Arg::unknown(&a.value.raw, Origin::Var(a.name.clone()))
                }
                None => self.expand_one(st, &a.value),
            };
            values.push((a.name.clone(), v));
        }
        let env: Vec<(String, Option<String>)> = values
            .iter()
            .map(|(n, a)| (n.clone(), a.value.clone()))
            .collect();
        let io = self.io(st, redirs, stdin);
        let mut display: Vec<String> = assigns
            .iter()
            .map(|a| format!("{}={}", a.name, a.value.raw))
            .collect();
        display.extend(args.iter().map(|a| a.display.clone()));
        let display = format!("{}{}", display.join(" "), io.display)
            .trim()
            .to_string();
        self.check_writes(&io, &display, &st.cwd);
        let flow = if args.is_empty() {
            for (n, a) in &values {
                st.set_arg(n, a);
            }
            Flow::Empty
        } else {
            self.exec(st, args, &env, &io.stdin, &display, upstream.as_deref())
        };
        self.last_display = display;
        if !io.stdout_redirected {
            return flow;
        }
        if matches!(flow, Flow::Download | Flow::Decoded(_))
            && let Some(v) = io.stdout_file.as_ref().and_then(|f| f.value.as_deref())
        {
            self.files.insert(target::file_key(v, &st.cwd), flow);
        }
        Flow::Empty
    }
}

struct Io {
    stdin: Flow,
    stdout_redirected: bool,
    stdout_file: Option<Arg>,
    writes: Vec<Arg>,
    display: String,
}

/// How a compound command is shown when its redirection is the finding.
fn label(kind: &Kind) -> &str {
    match kind {
        Kind::Group(_) => "{ … }",
        Kind::Subshell(_) => "( … )",
        Kind::If { .. } => "if … fi",
        Kind::Loop { src, .. } | Kind::ArithFor { src, .. } => src,
        Kind::For { .. } => "for … done",
        Kind::Case { .. } => "case … esac",
        Kind::Func { src, .. } => src,
        Kind::Simple { .. } | Kind::Arith => "(( … ))",
    }
}

pub(crate) fn cd_to(cwd: &Cwd, dir: Option<&str>) -> Cwd {
    match dir.and_then(|d| target::absolute(d, cwd)) {
        Some(p) => Cwd::Known(p),
        None => Cwd::Unknown,
    }
}
