//! One word as the shell reads it: its pieces (literal text, with whether
//! it was quoted; tilde; parameters; command, arithmetic and process
//! substitutions) in order. Quoting decides what expands later: `r''m` is
//! the word `rm`, `"$X"` stays one field whatever $X holds, `~` expands only
//! unquoted at the start, `$'\x72m'` is `rm`.

use crate::chars::{find, is_meta, text};
use crate::depth::{MAX_DEPTH, too_deep};
use crate::escape::ansi_c;
use crate::skip::{skip_brace, skip_to_close};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Literal text. `quoted`: it came from quotes or a backslash, so no
    /// tilde, brace expansion or field splitting applies to it.
    Lit { text: String, quoted: bool },
    /// `~` or `~user` at the start of an unquoted word.
    Tilde(String),
    /// `$NAME`, `$1`, `$@`, `${NAME…}`.
    Param {
        name: String,
        op: ParamOp,
        quoted: bool,
    },
    /// `$( … )` or backquotes: the inner script.
    Subst { script: String, quoted: bool },
    /// `$(( … ))`, `$[ … ]`: never evaluated.
    Arith,
    /// `<( … )` (input) or `>( … )`.
    ProcSub { script: String, input: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParamOp {
    Plain,
    /// `:-` or `-`: the word when unset or empty.
    Default(Vec<Part>),
    /// `:=` or `=`.
    Assign(Vec<Part>),
    /// `:?` or `?`: the shell stops when unset or empty, so never empty.
    Required,
    /// `:+` or `+`: the word when set.
    Alt(Vec<Part>),
    /// Lengths, trimming, substrings, indirection, case changes.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    pub parts: Vec<Part>,
    /// The source text, for display and for re-reading (aliases).
    pub raw: String,
}

impl Word {
    pub(crate) fn lit(text: &str) -> Word {
        Word {
            parts: vec![Part::Lit {
                text: text.into(),
                quoted: false,
            }],
            raw: text.into(),
        }
    }

    /// The text when the word is one unquoted literal: how reserved words
    /// (`if`, `{`, `done`) are recognized, since `"if"` is not one.
    pub(crate) fn plain(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [
                Part::Lit {
                    text,
                    quoted: false,
                },
            ] => Some(text),
            _ => None,
        }
    }

    /// The text when nothing in the word expands (quotes removed).
    pub(crate) fn literal(&self) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit { text, .. } => out.push_str(text),
                _ => return None,
            }
        }
        Some(out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Stop at an unquoted blank or operator character.
    Word,
    /// Read everything (the word inside `${X:-word}`).
    Whole,
}

#[derive(Default)]
struct Builder {
    parts: Vec<Part>,
    cur: String,
    cur_quoted: bool,
    has_cur: bool,
}

impl Builder {
    fn ch(&mut self, c: char, quoted: bool) {
        if self.has_cur && self.cur_quoted != quoted {
            self.flush();
        }
        self.has_cur = true;
        self.cur_quoted = quoted;
        self.cur.push(c);
    }

    fn lit(&mut self, s: &str, quoted: bool) {
        if self.has_cur && self.cur_quoted != quoted {
            self.flush();
        }
        self.has_cur = true;
        self.cur_quoted = quoted;
        self.cur.push_str(s);
    }

    fn part(&mut self, p: Part) {
        self.flush();
        self.parts.push(p);
    }

    fn flush(&mut self) {
        if self.has_cur {
            self.parts.push(Part::Lit {
                text: std::mem::take(&mut self.cur),
                quoted: self.cur_quoted,
            });
            self.has_cur = false;
        }
    }

    fn finish(mut self) -> Vec<Part> {
        self.flush();
        self.parts
    }
}

pub(crate) fn read_parts(
    s: &[char],
    i: &mut usize,
    mode: Mode,
    depth: usize,
) -> Result<Vec<Part>, String> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    let mut b = Builder::default();
    let start = *i;
    while *i < s.len() {
        let c = s[*i];
        if mode == Mode::Word && is_meta(c) {
            break;
        }
        match c {
            '\'' => {
                let close = find(s, *i + 1, '\'').ok_or("unterminated single quote")?;
                b.lit(&text(&s[*i + 1..close]), true);
                *i = close + 1;
            }
            '"' => {
                *i += 1;
                read_dquote(s, i, depth, &mut b)?;
            }
            '\\' => match s.get(*i + 1) {
                Some('\n') => *i += 2,
                Some(&n) => {
                    b.ch(n, true);
                    *i += 2;
                }
                None => {
                    b.ch('\\', true);
                    *i += 1;
                }
            },
            '$' => read_dollar(s, i, false, depth, &mut b)?,
            '`' => read_backtick(s, i, false, &mut b)?,
            '~' if *i == start && mode == Mode::Word => {
                let mut j = *i + 1;
                while j < s.len() && (s[j].is_ascii_alphanumeric() || "._-+".contains(s[j])) {
                    j += 1;
                }
                if j == s.len() || s[j] == '/' || is_meta(s[j]) {
                    b.part(Part::Tilde(text(&s[*i + 1..j])));
                    *i = j;
                } else {
                    b.ch('~', false);
                    *i += 1;
                }
            }
            _ => {
                b.ch(c, false);
                *i += 1;
            }
        }
    }
    Ok(b.finish())
}

fn read_dquote(s: &[char], i: &mut usize, depth: usize, b: &mut Builder) -> Result<(), String> {
    // `""` must still make an (empty) argument.
    b.lit("", true);
    loop {
        let Some(&c) = s.get(*i) else {
            return Err("unterminated double quote".into());
        };
        match c {
            '"' => {
                *i += 1;
                return Ok(());
            }
            '\\' => match s.get(*i + 1) {
                Some(&n @ ('$' | '`' | '"' | '\\')) => {
                    b.ch(n, true);
                    *i += 2;
                }
                Some('\n') => *i += 2,
                _ => {
                    b.ch('\\', true);
                    *i += 1;
                }
            },
            '$' => read_dollar(s, i, true, depth, b)?,
            '`' => read_backtick(s, i, true, b)?,
            _ => {
                b.ch(c, true);
                *i += 1;
            }
        }
    }
}

fn read_dollar(
    s: &[char],
    i: &mut usize,
    quoted: bool,
    depth: usize,
    b: &mut Builder,
) -> Result<(), String> {
    match s.get(*i + 1).copied() {
        Some('\'') if !quoted => {
            let (v, next) = ansi_c(s, *i + 2)?;
            b.lit(&v, true);
            *i = next;
        }
        Some('"') if !quoted => {
            *i += 2;
            read_dquote(s, i, depth, b)?;
        }
        Some('(') => {
            let close = skip_to_close(s, *i + 2, depth + 1)?;
            let inner = &s[*i + 2..close];
            if inner.len() >= 2 && inner[0] == '(' && inner[inner.len() - 1] == ')' {
                b.part(Part::Arith);
            } else {
                b.part(Part::Subst {
                    script: text(inner),
                    quoted,
                });
            }
            *i = close + 1;
        }
        Some('{') => {
            let close = skip_brace(s, *i + 2, depth + 1)?;
            let p = param_body(&s[*i + 2..close], quoted, depth + 1)?;
            b.part(p);
            *i = close + 1;
        }
        Some('[') => {
            let close = find(s, *i + 2, ']').ok_or("unterminated `$[`")?;
            b.part(Part::Arith);
            *i = close + 1;
        }
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            let mut j = *i + 1;
            while j < s.len() && (s[j].is_ascii_alphanumeric() || s[j] == '_') {
                j += 1;
            }
            b.part(Part::Param {
                name: text(&s[*i + 1..j]),
                op: ParamOp::Plain,
                quoted,
            });
            *i = j;
        }
        Some(c) if c.is_ascii_digit() || "@*#?-$!".contains(c) => {
            b.part(Part::Param {
                name: c.to_string(),
                op: ParamOp::Plain,
                quoted,
            });
            *i += 2;
        }
        _ => {
            b.ch('$', quoted);
            *i += 1;
        }
    }
    Ok(())
}

fn read_backtick(s: &[char], i: &mut usize, quoted: bool, b: &mut Builder) -> Result<(), String> {
    let mut j = *i + 1;
    let mut inner = String::new();
    loop {
        let Some(&c) = s.get(j) else {
            return Err("unterminated backquote".into());
        };
        match c {
            '`' => break,
            '\\' => match s.get(j + 1) {
                Some(&n @ ('`' | '\\' | '$')) => {
                    inner.push(n);
                    j += 2;
                }
                Some('"') if quoted => {
                    inner.push('"');
                    j += 2;
                }
                _ => {
                    inner.push('\\');
                    j += 1;
                }
            },
            _ => {
                inner.push(c);
                j += 1;
            }
        }
    }
    b.part(Part::Subst {
        script: inner,
        quoted,
    });
    *i = j + 1;
    Ok(())
}

fn param_body(body: &[char], quoted: bool, depth: usize) -> Result<Part, String> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    let other = |name: String| Part::Param {
        name,
        op: ParamOp::Other,
        quoted,
    };
    if body.is_empty() {
        return Ok(other(String::new()));
    }
    if (body[0] == '#' || body[0] == '!') && body.len() > 1 {
        return Ok(other(text(&body[1..])));
    }
    let k = if body[0].is_ascii_alphabetic() || body[0] == '_' {
        body.iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
            .unwrap_or(body.len())
    } else if body[0].is_ascii_digit() {
        body.iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(body.len())
    } else if "@*#?-$!".contains(body[0]) {
        1
    } else {
        return Ok(other(text(body)));
    };
    let name = text(&body[..k]);
    let rest = &body[k..];
    if rest.is_empty() {
        return Ok(Part::Param {
            name,
            op: ParamOp::Plain,
            quoted,
        });
    }
    let r = if rest[0] == ':' { &rest[1..] } else { rest };
    let word = |w: &[char]| -> Result<Vec<Part>, String> {
        let mut j = 0;
        read_parts(w, &mut j, Mode::Whole, depth + 1)
    };
    let op = match r.first() {
        Some('-') => ParamOp::Default(word(&r[1..])?),
        Some('=') => ParamOp::Assign(word(&r[1..])?),
        Some('?') => ParamOp::Required,
        Some('+') => ParamOp::Alt(word(&r[1..])?),
        _ => ParamOp::Other,
    };
    Ok(Part::Param { name, op, quoted })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lex::Tok;
    use crate::lex::tests::{toks, words};

    #[test]
    fn quotes_concatenate_into_one_word() {
        assert_eq!(words("r''m -rf /"), ["rm", "-rf", "/"]);
        assert_eq!(words(r#""r"m "-r"f "/""#), ["rm", "-rf", "/"]);
        assert_eq!(words(r"\rm a\ b"), ["rm", "a b"]);
        assert_eq!(words("''"), [""]);
        assert_eq!(words(r#""a\"b\$c\x""#), [r#"a"b$c\x"#]);
    }

    #[test]
    fn ansi_c_quotes_decode() {
        assert_eq!(
            words(r"$'\x72\x6d' $'a\nb' $'\162m' $'\u00e9'"),
            ["rm", "a\nb", "rm", "é"]
        );
        assert_eq!(words(r"$'it\'s'"), ["it's"]);
    }

    #[test]
    fn substitutions_are_kept_as_source() {
        let t = toks(r#"rm -rf "$(echo /)" `echo x` $((1+2)) ${HOME:-/}"#);
        let Tok::Word(w) = &t[2] else { panic!() };
        assert_eq!(
            w.parts,
            [
                Part::Lit {
                    text: String::new(),
                    quoted: true
                },
                Part::Subst {
                    script: "echo /".into(),
                    quoted: true
                }
            ]
        );
        let Tok::Word(w) = &t[3] else { panic!() };
        assert_eq!(
            w.parts,
            [Part::Subst {
                script: "echo x".into(),
                quoted: false
            }]
        );
        let Tok::Word(w) = &t[4] else { panic!() };
        assert_eq!(w.parts, [Part::Arith]);
        let Tok::Word(w) = &t[5] else { panic!() };
        assert!(
            matches!(&w.parts[0], Part::Param { name, op: ParamOp::Default(_), .. } if name == "HOME")
        );
    }

    #[test]
    fn nested_substitution_with_parens_and_quotes() {
        let t = toks(r#"echo $(echo "a)" $(echo ')') (x))"#);
        let Tok::Word(w) = &t[1] else { panic!() };
        assert_eq!(
            w.parts,
            [Part::Subst {
                script: r#"echo "a)" $(echo ')') (x)"#.into(),
                quoted: false
            }]
        );
    }

    #[test]
    fn tilde_only_at_word_start_unquoted() {
        let t = toks("rm ~ ~/x a~ '~' ~root/y");
        let tilde = |k: usize| match &t[k] {
            Tok::Word(w) => matches!(w.parts.first(), Some(Part::Tilde(_))),
            _ => false,
        };
        assert!(tilde(1) && tilde(2) && !tilde(3) && !tilde(4) && tilde(5));
    }
}
