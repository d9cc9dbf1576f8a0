//! What the reader knows of a value, as plain data that the walker, the
//! wrappers and the rules all pass around: one argument as the program
//! would receive it (`Arg`), known or not, with where an unknown one came
//! from (`Origin`), and what a command writes on its standard output
//! (`Flow`), since an argument can be another command's output. The rules
//! treat "a variable" and "the output of curl" very differently, so the
//! difference is kept here rather than reduced to "unknown".

use crate::show::quote;

/// A literal output longer than this is no longer followed.
const MAX_TEXT: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Nothing is written (assignments, cd, output redirected away).
    Empty,
    Literal(String),
    /// From the network: curl, wget, nc …
    Download,
    /// Decoded or unpacked (base64 -d, xxd -r, gunzip, rev, tr …); the text
    /// when it could be decoded here.
    Decoded(Option<String>),
    /// The paths find prints while walking / or ~.
    FindRoot,
    Unknown,
}

impl Flow {
    /// Output of one command followed by another's.
    pub(crate) fn then(self, next: Flow) -> Flow {
        match (self, next) {
            (Flow::Empty, x) | (x, Flow::Empty) => x,
            (Flow::Literal(a), Flow::Literal(b)) if a.len() + b.len() <= MAX_TEXT => {
                Flow::Literal(a + &b)
            }
            (Flow::Download, _) | (_, Flow::Download) => Flow::Download,
            (Flow::Decoded(_), _) | (_, Flow::Decoded(_)) => Flow::Decoded(None),
            _ => Flow::Unknown,
        }
    }

    /// What survives a filter that changes its input in ways not followed
    /// here: where it came from, not what it says.
    pub(crate) fn taint(&self) -> Flow {
        match self {
            Flow::Download => Flow::Download,
            Flow::Decoded(_) => Flow::Decoded(None),
            _ => Flow::Unknown,
        }
    }
}

/// One argument as the program would receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Arg {
    /// The value, when every part of it is known (`~`/`$HOME` as the home
    /// marker).
    pub value: Option<String>,
    /// Re-quoted for display.
    pub display: String,
    /// Why the value is unknown: the most alarming of its unknown parts.
    pub origin: Option<Origin>,
    /// The value if every unknown variable in it were empty, when that is
    /// all that is unknown (`"$DIR"/*` would be `/*`).
    pub if_empty: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    Var(String),
    Subst(Flow),
    ProcSub(Flow),
    Arith,
}

impl Origin {
    pub(crate) fn flow(&self) -> Option<&Flow> {
        match self {
            Origin::Subst(f) | Origin::ProcSub(f) => Some(f),
            _ => None,
        }
    }

    pub(crate) fn rank(&self) -> u8 {
        match (self, self.flow()) {
            (_, Some(Flow::Download)) => 4,
            (_, Some(Flow::Decoded(_))) => 3,
            (_, Some(_)) => 2,
            (Origin::Var(_), _) => 1,
            _ => 0,
        }
    }
}

impl Arg {
    pub(crate) fn lit(v: &str) -> Arg {
        Arg {
            value: Some(v.to_string()),
            display: quote(v),
            origin: None,
            if_empty: None,
        }
    }

    /// An argument whose value nobody can know, shown as `display`.
    pub(crate) fn unknown(display: &str, origin: Origin) -> Arg {
        Arg {
            value: None,
            display: display.to_string(),
            origin: Some(origin),
            if_empty: None,
        }
    }

    /// A command substitution or process substitution the walker could not
    /// evaluate: in a target position, that is what asks for a human.
    pub(crate) fn is_unseen_output(&self) -> bool {
        matches!(self.origin, Some(Origin::Subst(_) | Origin::ProcSub(_)))
    }
}

/// Several arguments as one (`watch 'a' b`, `ssh host cmd args`).
pub(crate) fn join(args: &[Arg]) -> Arg {
    let display = args
        .iter()
        .map(|a| a.display.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let values: Option<Vec<String>> = args.iter().map(|a| a.value.clone()).collect();
    match values {
        Some(v) => Arg {
            value: Some(v.join(" ")),
            display,
            origin: None,
            if_empty: None,
        },
        None => {
            let origin = args
                .iter()
                .filter_map(|a| a.origin.clone())
                .max_by_key(Origin::rank)
                .unwrap_or(Origin::Arith);
            Arg::unknown(&display, origin)
        }
    }
}
