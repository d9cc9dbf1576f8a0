//! What a word becomes: quote removal, tilde, `$VAR` with the values the
//! walker knows, `$( )` evaluated through the walker (echo and printf of
//! literals give their text), brace expansion, field splitting. A value the
//! reader cannot know stays unknown, together with where it came from,
//! because the rules treat "a variable" and "the output of curl" very
//! differently. Globs are not expanded: the rules read them as patterns.

use crate::show::quote;
use crate::target::{Cwd, HOME};
use crate::value::{Arg, Flow, Origin, join};
use crate::walk::{MAX_VALUE, State, Walker};
use crate::word::{ParamOp, Part, Word};

/// Brace expansion stops here: `{a,b}{a,b}…` must not multiply without end.
const MAX_BRACE_WORDS: usize = 64;
const MAX_BRACE_STEPS: usize = 256;
const MAX_BRACE_TEXT: usize = 4096;

enum Val {
    Known(String),
    List(Vec<String>),
    /// Holds what a download or a decoder produced.
    Unseen(Flow),
    /// The value if the variable were empty, when that is knowable.
    Unknown(Option<String>),
}

struct Field {
    val: String,
    known: bool,
    origin: Option<Origin>,
    shadow: Option<String>,
    content: bool,
}

impl Field {
    fn new() -> Field {
        Field {
            val: String::new(),
            known: true,
            origin: None,
            shadow: Some(String::new()),
            content: false,
        }
    }

    fn push(&mut self, s: &str, quoted: bool) {
        self.val.push_str(s);
        if let Some(sh) = &mut self.shadow {
            sh.push_str(s);
        }
        self.content |= quoted || !s.is_empty();
    }

    fn unknown(&mut self, origin: Origin, if_empty: Option<String>) {
        self.known = false;
        self.content = true;
        if self
            .origin
            .as_ref()
            .is_none_or(|o| o.rank() < origin.rank())
        {
            self.origin = Some(origin);
        }
        self.shadow = match (self.shadow.take(), if_empty) {
            (Some(s), Some(e)) => Some(s + &e),
            _ => None,
        };
    }
}

struct Fields<'a> {
    out: Vec<Arg>,
    cur: Field,
    raw: &'a str,
    plain: bool,
}

impl Fields<'_> {
    fn finish(&mut self) {
        let f = std::mem::replace(&mut self.cur, Field::new());
        if f.known && !f.content {
            return;
        }
        let known = f.known && f.val.len() <= MAX_VALUE;
        let display = if self.plain || !known {
            self.raw.to_string()
        } else {
            quote(&f.val)
        };
        self.out.push(Arg {
            value: known.then_some(f.val),
            display,
            origin: if known {
                None
            } else {
                f.origin.or(Some(Origin::Var("(too long)".into())))
            },
            if_empty: if known { None } else { f.shadow },
        });
    }

    /// Unquoted expansion results are split on blanks into fields.
    fn split(&mut self, v: &str) {
        let ws = |c: char| matches!(c, ' ' | '\t' | '\n');
        let pieces: Vec<&str> = v.split(ws).filter(|p| !p.is_empty()).collect();
        if v.starts_with(ws) && self.cur.content {
            self.finish();
        }
        for (k, p) in pieces.iter().enumerate() {
            if k > 0 {
                self.finish();
            }
            self.cur.push(p, false);
        }
        if v.ends_with(ws) && !pieces.is_empty() {
            self.finish();
        }
    }

    fn put(&mut self, v: Val, quoted: bool, name: &str) {
        match v {
            Val::Known(s) if quoted => self.cur.push(&s, true),
            Val::Known(s) => self.split(&s),
            Val::List(items) if quoted && name == "@" => {
                if items.is_empty() {
                    return;
                }
                for (k, it) in items.iter().enumerate() {
                    if k > 0 {
                        self.finish();
                    }
                    self.cur.push(it, true);
                }
            }
            Val::List(items) if quoted => self.cur.push(&items.join(" "), true),
            Val::List(items) => self.split(&items.join(" ")),
            Val::Unknown(e) => self.cur.unknown(Origin::Var(name.to_string()), e),
            Val::Unseen(f) => self.cur.unknown(Origin::Subst(f), None),
        }
    }
}

impl Walker {
    /// A word as the fields a command receives.
    pub(crate) fn expand(&mut self, st: &mut State, w: &Word) -> Vec<Arg> {
        let variants = braces(&w.parts);
        let plain = variants.len() == 1 && w.parts.iter().all(|p| matches!(p, Part::Lit { .. }));
        let mut out = Vec::new();
        for parts in &variants {
            out.extend(self.fields(st, parts, &w.raw, plain));
        }
        out
    }

    /// A word where the shell does not split (assignment values, redirection
    /// targets, here-strings): one argument.
    pub(crate) fn expand_one(&mut self, st: &mut State, w: &Word) -> Arg {
        let plain = w.parts.iter().all(|p| matches!(p, Part::Lit { .. }));
        let fields = self.fields(st, &w.parts, &w.raw, plain);
        match fields.len() {
            0 => Arg {
                display: w.raw.clone(),
                ..Arg::lit("")
            },
            1 => fields.into_iter().next().unwrap_or_else(|| Arg::lit("")),
            _ => Arg {
                display: w.raw.clone(),
                ..join(&fields)
            },
        }
    }

    fn fields(&mut self, st: &mut State, parts: &[Part], raw: &str, plain: bool) -> Vec<Arg> {
        let mut f = Fields {
            out: Vec::new(),
            cur: Field::new(),
            raw,
            plain,
        };
        for p in parts {
            match p {
                Part::Lit { text, quoted } => f.cur.push(text, *quoted),
                Part::Tilde(_) => f.cur.push(&HOME.to_string(), true),
                Part::Param { name, op, quoted } => {
                    let v = self.param(st, name, op);
                    f.put(v, *quoted, name);
                }
                Part::Subst { script, quoted } => match self.subst(st, script) {
                    Flow::Literal(s) => f.put(
                        Val::Known(s.trim_end_matches('\n').to_string()),
                        *quoted,
                        "",
                    ),
                    Flow::Empty => f.put(Val::Known(String::new()), *quoted, ""),
                    other => f.cur.unknown(Origin::Subst(other), None),
                },
                Part::Arith => f.cur.unknown(Origin::Arith, None),
                Part::ProcSub { script, input } => {
                    let out = self.subst(st, script);
                    let flow = if *input { out } else { Flow::Unknown };
                    f.cur.unknown(Origin::ProcSub(flow), None);
                }
            }
        }
        f.finish();
        f.out
    }

    /// `$( … )`: run in a subshell (its effects are findings too) and take
    /// what it writes.
    fn subst(&mut self, st: &State, script: &str) -> Flow {
        let mut sub = st.clone();
        self.run_script(&mut sub, script, &Flow::Unknown)
    }

    fn word_val(&mut self, st: &mut State, parts: &[Part]) -> Val {
        let fields = self.fields(st, parts, "", false);
        let values: Option<Vec<String>> = fields.iter().map(|a| a.value.clone()).collect();
        match values {
            Some(v) => Val::Known(v.join(" ")),
            None => Val::Unknown(None),
        }
    }

    fn param(&mut self, st: &mut State, name: &str, op: &ParamOp) -> Val {
        if name == "@" || name == "*" {
            return match (&st.pos, op) {
                (Some(p), ParamOp::Plain) if p.iter().all(Option::is_some) => {
                    Val::List(p.iter().flatten().cloned().collect())
                }
                _ => Val::Unknown(Some(String::new())),
            };
        }
        let base = lookup(st, name);
        let set = |b: &Option<Option<String>>| match b {
            Some(Some(v)) if !v.is_empty() => Some(v.clone()),
            _ => None,
        };
        if let Some(f) = st.unseen.get(name) {
            return Val::Unseen(f.clone());
        }
        match op {
            ParamOp::Plain => match base {
                Some(Some(v)) => Val::Known(v),
                _ => Val::Unknown(Some(String::new())),
            },
            ParamOp::Default(w) | ParamOp::Assign(w) => match (set(&base), base) {
                (Some(v), _) => Val::Known(v),
                (None, Some(Some(_))) => self.word_val(st, w),
                (None, _) => match self.word_val(st, w) {
                    Val::Known(d) => Val::Unknown(Some(d)),
                    _ => Val::Unknown(None),
                },
            },
            ParamOp::Required => match set(&base) {
                Some(v) => Val::Known(v),
                None => Val::Unknown(None),
            },
            ParamOp::Alt(w) => match (set(&base), base) {
                (Some(_), _) => self.word_val(st, w),
                (None, Some(Some(_))) => Val::Known(String::new()),
                (None, _) => Val::Unknown(Some(String::new())),
            },
            ParamOp::Other => Val::Unknown(Some(String::new())),
        }
    }
}

/// None: the script never set it (it may come from the environment);
/// Some(None): set, to something unknown.
fn lookup(st: &State, name: &str) -> Option<Option<String>> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_digit()) {
        let k: usize = name.parse().ok()?;
        if k == 0 {
            return st.arg0.clone().map(Some);
        }
        let pos = st.pos.as_ref()?;
        return Some(pos.get(k - 1).cloned().unwrap_or(Some(String::new())));
    }
    match name {
        "#" => return st.pos.as_ref().map(|p| Some(p.len().to_string())),
        "?" | "$" | "!" | "-" => return Some(None),
        _ => {}
    }
    if let Some(v) = st.vars.get(name) {
        return Some(v.clone());
    }
    match (name, &st.cwd) {
        ("HOME", _) => Some(Some(HOME.to_string())),
        ("PWD", Cwd::Known(p)) => Some(Some(p.clone())),
        _ => None,
    }
}

/// `a{b,c}d` → `abd acd`, on unquoted literal text only, bounded.
fn braces(parts: &[Part]) -> Vec<Vec<Part>> {
    let mut done = Vec::new();
    let mut work = vec![parts.to_vec()];
    let mut steps = 0;
    while let Some(v) = work.pop() {
        steps += 1;
        if done.len() + work.len() >= MAX_BRACE_WORDS || steps > MAX_BRACE_STEPS {
            done.push(v);
            continue;
        }
        let found = v.iter().enumerate().find_map(|(k, p)| match p {
            Part::Lit {
                text,
                quoted: false,
            } if text.len() <= MAX_BRACE_TEXT => brace_group(text).map(|g| (k, g)),
            _ => None,
        });
        match found {
            None => done.push(v),
            Some((k, (pre, alts, post))) => {
                for alt in alts.iter().rev() {
                    let mut n = v[..k].to_vec();
                    n.push(Part::Lit {
                        text: format!("{pre}{alt}{post}"),
                        quoted: false,
                    });
                    n.extend_from_slice(&v[k + 1..]);
                    work.push(n);
                }
            }
        }
    }
    done
}

/// The first `{…,…}` in a text: before, the alternatives, after.
fn brace_group(text: &str) -> Option<(String, Vec<String>, String)> {
    let cs: Vec<char> = text.chars().collect();
    for start in (0..cs.len()).filter(|&k| cs[k] == '{').take(8) {
        let mut depth = 0usize;
        let mut commas = Vec::new();
        for (j, &c) in cs.iter().enumerate().skip(start) {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        if commas.is_empty() {
                            break;
                        }
                        let mut alts: Vec<String> = Vec::new();
                        let mut from = start + 1;
                        for &c in commas
                            .iter()
                            .chain(std::iter::once(&j))
                            .take(MAX_BRACE_WORDS)
                        {
                            alts.push(cs[from..c].iter().collect());
                            from = c + 1;
                        }
                        return Some((
                            cs[..start].iter().collect(),
                            alts,
                            cs[j + 1..].iter().collect(),
                        ));
                    }
                }
                ',' if depth == 1 => commas.push(j),
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brace_expansion() {
        let v = braces(&Word::lit("/{usr,}").parts);
        let words: Vec<String> = v
            .iter()
            .map(|p| {
                Word {
                    parts: p.clone(),
                    raw: String::new(),
                }
                .literal()
                .unwrap()
            })
            .collect();
        assert_eq!(words, ["/usr", "/"]);
        assert_eq!(braces(&Word::lit("{}").parts).len(), 1);
        assert_eq!(braces(&Word::lit("a{b,{c,d}}e").parts).len(), 3);
        assert!(braces(&Word::lit(&"{a,b}".repeat(50)).parts).len() <= MAX_BRACE_WORDS + 1);
    }
}
