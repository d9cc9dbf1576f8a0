//! What a task step would really run, read as a shell reads it, and what in
//! it is dangerous. Pure: no I/O, no runtime, std only.
//!
//! The task risk scorer used to join a step's words with spaces and match
//! regexes, which missed every spelling a shell treats as the same command
//! (`git -C d push -f`, `r''m -rf /`, `rm -rf $(echo /)`, `curl … | sh`).
//! Here a step is tokenized, parsed and walked the way a shell would run it,
//! through wrappers (`sudo`, `env`, `xargs`, `sh -c` …), and the rules look
//! at the program that would actually run with the arguments it would get.
//! When the reader cannot tell (a command name from a variable, a script it
//! cannot parse), it says so ([`FindingKind::NotUnderstood`]) rather than
//! guess that all is well.
//!
//! Modules, in the order a step goes through them: `lex` (tokens), `word`
//! (one word's pieces and their quoting), `skip` (where a substitution
//! ends), the three standing on `chars` (the source as characters),
//! `escape` (`$'…'`) and `depth` (the nesting limit); `parse` and `ast`
//! (the command tree), `walk` (following the tree:
//! state, pipes, compound commands), `expand` (what a word becomes), `echo`
//! (echo and printf of literals), `exec` (running one command: shells,
//! builtins, eval), `argv` and `wrap` (wrappers and shells), `flow` (what a
//! command writes on stdout), `danger`, `git` and `inline` (the rules),
//! `target` (where a path lands).

mod argv;
mod ast;
mod chars;
mod danger;
mod depth;
mod echo;
mod escape;
mod exec;
mod expand;
mod flow;
mod git;
mod inline;
mod lex;
mod parse;
mod skip;
mod target;
mod value;
mod walk;
mod word;
mod wrap;

use std::fmt;

/// What analysis found in one argv (or script). Findings are in order of
/// appearance; within one command: git push, force, dangers, then what was
/// not understood. The same finding on the same command is listed once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    /// The simple command it was found in, re-quoted for display, cut to
    /// ~120 chars. For a pipe into a shell, the pipe (`curl … | sh`).
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingKind {
    Dangerous(Danger),
    /// Any `git push`, whatever global options precede `push`.
    GitPush,
    /// `--force…` on any program; `-f` and clusters holding `f` on rm, cp,
    /// mv, ln and git push/clean/branch/tag/checkout/switch; `+refspec` and
    /// `--mirror` on push.
    ForceFlag,
    /// The analyzer could not read the command; the reason in words.
    NotUnderstood(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Danger {
    /// rm -r on /, /*, ~, ~/*, $HOME, a top-level system directory, `*`
    /// where the directory is unknown or is / or ~; --no-preserve-root;
    /// rsync --delete onto those; mv of those.
    RecursiveDeleteOfRoot,
    /// find on / or ~ (or a system directory) with -delete or -exec rm.
    FindDelete,
    /// mkfs*, mke2fs, mkswap, wipefs, blkdiscard, sgdisk --zap-all,
    /// parted mklabel.
    FilesystemFormat,
    /// dd of=/dev/sdX, any output redirection or tee/cp onto a device,
    /// shred of a device.
    RawDeviceWrite,
    /// shutdown, reboot, poweroff, halt, init 0/6, systemctl
    /// poweroff/reboot/halt (or start/isolate of their targets), loginctl,
    /// kill 1 / kill -1, killall5, writes to /proc/sysrq-trigger.
    Shutdown,
    /// chmod/chown/chgrp -R on / or ~ or a system directory; chmod 777 /.
    PermissionBomb,
    /// A function that calls itself in a pipe or in the background; an
    /// endless loop that starts background jobs.
    ForkBomb,
    /// Code nobody can read run by a shell or an interpreter: a download
    /// piped, substituted, saved or stored in a variable and then run;
    /// `source <(…)`; exec of a command's output.
    CodeInjection,
    /// A decoded or unpacked payload (base64 -d, xxd -r, openssl enc -d,
    /// gunzip, rev…) run by a shell or an interpreter.
    DecodeIntoShell,
    /// git push with force (or +refspec) naming main/master, or a branch
    /// that may be main (no refspec, HEAD, a glob, --all); --mirror;
    /// deleting main/master.
    ForcePushToMain,
}

impl Danger {
    /// A human name for the explanation lines.
    pub fn describe(self) -> &'static str {
        match self {
            Danger::RecursiveDeleteOfRoot => "destructive file operation (rm -r on / or ~)",
            Danger::FindDelete => "destructive file operation (find / -delete)",
            Danger::FilesystemFormat => "filesystem format (mkfs)",
            Danger::RawDeviceWrite => "raw write to a disk device (dd of=/dev/..., > /dev/sdX)",
            Danger::Shutdown => "shutdown or reboot",
            Danger::PermissionBomb => "permission bomb (chmod -R 777 /, chown -R /)",
            Danger::ForkBomb => "fork bomb",
            Danger::CodeInjection => "code injection (eval/exec, curl | sh)",
            Danger::DecodeIntoShell => "decoded payload run by a shell (base64 -d | sh)",
            Danger::ForcePushToMain => "force-push to main/master",
        }
    }
}

impl fmt::Display for Danger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

impl Analysis {
    pub fn dangerous(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| matches!(f.kind, FindingKind::Dangerous(_)))
    }

    pub fn git_push(&self) -> bool {
        self.findings.iter().any(|f| f.kind == FindingKind::GitPush)
    }

    pub fn force(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.kind == FindingKind::ForceFlag)
    }

    /// The first reason the analyzer gave for not understanding something.
    pub fn not_understood(&self) -> Option<&str> {
        self.findings.iter().find_map(|f| match &f.kind {
            FindingKind::NotUnderstood(why) => Some(why.as_str()),
            _ => None,
        })
    }
}

/// Analyse an argv exactly as exec would run it (no shell): argv[0] is the
/// program. Wrappers (sudo, doas, env, nohup, nice, timeout, time, xargs,
/// busybox, command, exec, stdbuf, setsid, ionice, chroot, flock, watch, su,
/// ssh) are looked through; a shell with `-c SCRIPT` has SCRIPT analysed as
/// shell. Program names are compared by basename (`/usr/bin/rm`, `\rm`).
pub fn analyze_argv(argv: &[String]) -> Analysis {
    walk::argv(argv)
}

/// Analyse a shell script (POSIX sh grammar, the useful subset, plus the
/// common bash forms). Scripts over 64 KiB are not read (NotUnderstood).
pub fn analyze_script(script: &str) -> Analysis {
    walk::script(script)
}

/// Shell-quotes a value for display. The home marker (see `target`) shows
/// as `~`.
pub(crate) fn quote(v: &str) -> String {
    let (home, rest) = match v.strip_prefix(target::HOME) {
        Some(r) => ("~", r),
        None => ("", v),
    };
    let rest = rest.replace(target::HOME, "~");
    if rest.is_empty() {
        return if home.is_empty() {
            "''".into()
        } else {
            "~".into()
        };
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if rest.chars().all(safe) {
        return format!("{home}{rest}");
    }
    if rest.chars().any(char::is_control) {
        let mut out = format!("{home}$'");
        for c in rest.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32 & 0xff)),
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    format!("{home}'{}'", rest.replace('\'', "'\\''"))
}

/// Display text is cut so one hostile step cannot flood an approval request.
pub(crate) fn cut(s: &str) -> String {
    const MAX: usize = 120;
    let s = s.trim();
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX - 1).collect();
    out.push('…');
    out
}
