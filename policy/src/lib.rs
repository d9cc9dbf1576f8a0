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
//! Modules, from the top down; each imports only modules below it, so the
//! layers point one way:
//! - `walk` follows the tree (state, pipes, compound commands). It defines
//!   the `Walker`, which `expand` (what a word becomes) and `exec` (running
//!   one command: shells, builtins, eval) extend with methods: they recurse
//!   into each other through the walker, as a shell's `$( )` runs a script,
//!   not through imports.
//! - `flow` (what a command writes on stdout); `danger`, `git` and `inline`
//!   (the rules); `argv` and `wrap` (wrappers and shells).
//! - `parse` and `ast` (the command tree); `lex` (tokens), `word` (one
//!   word's pieces and their quoting), `skip` (where a substitution ends);
//!   `echo` (echo and printf of literals).
//! - What all of them share, at the bottom: `value` (arguments and output
//!   flows as plain data), `report` (the public findings), `show` (how they
//!   are displayed), `target` (where a path lands), `chars` (the source as
//!   characters), `escape` (`$'…'`) and `depth` (the nesting limit).

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
mod report;
mod show;
mod skip;
mod target;
mod value;
mod walk;
mod word;
mod wrap;

pub use report::{Analysis, Danger, Finding, FindingKind};

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
