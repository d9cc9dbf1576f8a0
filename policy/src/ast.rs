//! The command tree the parser builds and the walker follows, and the
//! visitors the fork-bomb rules use. It keeps only what the analysis needs:
//! `&&` and `||` are not told apart, because either side may run; case
//! patterns are dropped, since every arm may run. Also how an assignment
//! word (`NAME=value`) is told from a command word.

use std::rc::Rc;

use crate::lex::{HereDoc, Op};
use crate::word::{Part, Word};

#[derive(Debug, Clone, Default)]
pub(crate) struct Script {
    pub items: Vec<Item>,
}

/// An and-or chain, possibly sent to the background with `&`.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub pipelines: Vec<Pipeline>,
    pub background: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub kind: Kind,
    pub redirs: Vec<Redir>,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Simple {
        assigns: Vec<Assign>,
        words: Vec<Word>,
    },
    Group(Script),
    Subshell(Script),
    If {
        branches: Vec<(Script, Script)>,
        otherwise: Option<Script>,
    },
    Loop {
        cond: Script,
        body: Script,
        until: bool,
        src: String,
    },
    For {
        var: String,
        items: Option<Vec<Word>>,
        body: Script,
    },
    ArithFor {
        infinite: bool,
        body: Script,
        src: String,
    },
    Case {
        word: Word,
        arms: Vec<Script>,
    },
    Func {
        name: String,
        body: Rc<Command>,
        src: String,
    },
    Arith,
}

#[derive(Debug, Clone)]
pub(crate) struct Assign {
    pub name: String,
    pub value: Word,
    /// `NAME=(a b c)`: the elements (the value itself is then unknown).
    pub array: Option<Vec<Word>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Redir {
    pub fd: Option<u32>,
    pub op: Op,
    pub target: Target,
}

#[derive(Debug, Clone)]
pub(crate) enum Target {
    Word(Word),
    Doc(HereDoc),
}

impl Script {
    /// Every pipeline, with whether it runs in the background (its own `&`
    /// or an enclosing one). Function bodies are skipped: defining a
    /// function runs nothing.
    pub(crate) fn pipelines(&self, bg: bool, f: &mut dyn FnMut(&Pipeline, bool)) {
        for item in &self.items {
            let bg = bg || item.background;
            for p in &item.pipelines {
                f(p, bg);
                for c in &p.cmds {
                    c.pipelines(bg, f);
                }
            }
        }
    }
}

impl Command {
    pub(crate) fn pipelines(&self, bg: bool, f: &mut dyn FnMut(&Pipeline, bool)) {
        match &self.kind {
            Kind::Group(s) | Kind::Subshell(s) => s.pipelines(bg, f),
            Kind::If {
                branches,
                otherwise,
            } => {
                for (c, b) in branches {
                    c.pipelines(bg, f);
                    b.pipelines(bg, f);
                }
                if let Some(o) = otherwise {
                    o.pipelines(bg, f);
                }
            }
            Kind::Loop { cond, body, .. } => {
                cond.pipelines(bg, f);
                body.pipelines(bg, f);
            }
            Kind::For { body, .. } | Kind::ArithFor { body, .. } => body.pipelines(bg, f),
            Kind::Case { arms, .. } => {
                for a in arms {
                    a.pipelines(bg, f);
                }
            }
            Kind::Simple { .. } | Kind::Func { .. } | Kind::Arith => {}
        }
    }

    /// The literal command name of a simple command.
    pub(crate) fn name(&self) -> Option<String> {
        match &self.kind {
            Kind::Simple { words, .. } => words.first()?.literal(),
            _ => None,
        }
    }
}

fn valid_name(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `NAME=value` (also `NAME+=`, `NAME[i]=`) as a shell reads it before the
/// command name: the name and the value as a word of its own.
pub(crate) fn split_assignment(w: &Word) -> Option<(String, Word)> {
    let Some(Part::Lit {
        text,
        quoted: false,
    }) = w.parts.first()
    else {
        return None;
    };
    let eq = text.find('=')?;
    let lhs = &text[..eq];
    let lhs = lhs.strip_suffix('+').unwrap_or(lhs);
    let base = lhs.split('[').next().unwrap_or("");
    if !valid_name(base) || (lhs != base && !lhs.ends_with(']')) {
        return None;
    }
    let mut parts = Vec::new();
    let rest = &text[eq + 1..];
    match rest.strip_prefix('~') {
        Some(after) if after.is_empty() || after.starts_with('/') => {
            parts.push(Part::Tilde(String::new()));
            if !after.is_empty() {
                parts.push(Part::Lit {
                    text: after.into(),
                    quoted: false,
                });
            }
        }
        _ if !rest.is_empty() => parts.push(Part::Lit {
            text: rest.into(),
            quoted: false,
        }),
        _ => {}
    }
    parts.extend_from_slice(&w.parts[1..]);
    let raw = w.raw.split_once('=').map_or("", |x| x.1).to_string();
    Some((base.to_string(), Word { parts, raw }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_split() {
        let (n, v) = split_assignment(&Word::lit("d=~/x")).unwrap();
        assert_eq!(n, "d");
        assert!(matches!(v.parts[0], Part::Tilde(_)));
        assert!(split_assignment(&Word::lit("=x")).is_none());
        assert!(split_assignment(&Word::lit("a-b=x")).is_none());
    }
}
