//! Tokenizer: shell source to words and operators, `(( … ))`, process
//! substitutions, descriptor numbers, and here-document bodies (read at the
//! newline after their operator). Every failure is a reason in words, which
//! the caller reports as NotUnderstood.

use crate::chars::text;
use crate::depth::{MAX_DEPTH, too_deep};
use crate::skip::{read_doc, skip_to_close};
use crate::word::{Mode, Part, Word, read_parts};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Semi,
    DSemi,
    SemiAnd,
    DSemiAnd,
    Amp,
    AndIf,
    OrIf,
    Pipe,
    PipeAmp,
    LParen,
    RParen,
    Less,
    Great,
    DGreat,
    Clobber,
    LessGreat,
    LessAnd,
    GreatAnd,
    AndGreat,
    AndDGreat,
    DLess,
    DLessDash,
    TLess,
}

impl Op {
    pub(crate) fn text(self) -> &'static str {
        match self {
            Op::Semi => ";",
            Op::DSemi => ";;",
            Op::SemiAnd => ";&",
            Op::DSemiAnd => ";;&",
            Op::Amp => "&",
            Op::AndIf => "&&",
            Op::OrIf => "||",
            Op::Pipe => "|",
            Op::PipeAmp => "|&",
            Op::LParen => "(",
            Op::RParen => ")",
            Op::Less => "<",
            Op::Great => ">",
            Op::DGreat => ">>",
            Op::Clobber => ">|",
            Op::LessGreat => "<>",
            Op::LessAnd => "<&",
            Op::GreatAnd => ">&",
            Op::AndGreat => "&>",
            Op::AndDGreat => "&>>",
            Op::DLess => "<<",
            Op::DLessDash => "<<-",
            Op::TLess => "<<<",
        }
    }

    pub(crate) fn is_redirect(self) -> bool {
        matches!(
            self,
            Op::Less
                | Op::Great
                | Op::DGreat
                | Op::Clobber
                | Op::LessGreat
                | Op::LessAnd
                | Op::GreatAnd
                | Op::AndGreat
                | Op::AndDGreat
                | Op::DLess
                | Op::DLessDash
                | Op::TLess
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Word(Word),
    Op(Op),
    /// The digits of `2>` / `0<`.
    IoNum(u32),
    Newline,
    /// `(( … ))`: the text between the double parentheses.
    Arith(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HereDoc {
    pub body: String,
    pub quoted: bool,
}

pub(crate) struct Lexed {
    pub tokens: Vec<Token>,
    /// In the order of their `<<` operators.
    pub docs: Vec<HereDoc>,
}

pub(crate) fn tokenize(s: &[char], depth: usize) -> Result<Lexed, String> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    let mut lx = Lexer {
        s,
        i: 0,
        depth,
        tokens: Vec::new(),
        docs: Vec::new(),
        pending: Vec::new(),
        want_delim: None,
    };
    lx.run()?;
    if lx.want_delim.is_some() {
        return Err("`<<` without a delimiter word".into());
    }
    if let Some((d, ..)) = lx.pending.first() {
        return Err(format!("here-document without its end marker `{d}`"));
    }
    Ok(Lexed {
        tokens: lx.tokens,
        docs: lx.docs,
    })
}

struct Lexer<'a> {
    s: &'a [char],
    i: usize,
    depth: usize,
    tokens: Vec<Token>,
    docs: Vec<HereDoc>,
    /// Delimiter, quoted, strip leading tabs.
    pending: Vec<(String, bool, bool)>,
    want_delim: Option<bool>,
}

impl Lexer<'_> {
    fn at(&self, k: usize) -> Option<char> {
        self.s.get(self.i + k).copied()
    }

    fn run(&mut self) -> Result<(), String> {
        while self.i < self.s.len() {
            let c = self.s[self.i];
            let start = self.i;
            match c {
                ' ' | '\t' | '\r' => self.i += 1,
                '\\' if self.at(1) == Some('\n') => self.i += 2,
                '#' => {
                    while self.i < self.s.len() && self.s[self.i] != '\n' {
                        self.i += 1;
                    }
                }
                '\n' => {
                    self.i += 1;
                    self.push(Tok::Newline, start)?;
                    self.read_docs()?;
                }
                ';' | '&' | '|' | ')' => {
                    let op = self.op();
                    self.push(Tok::Op(op), start)?;
                }
                '(' => {
                    if self.at(1) == Some('(')
                        && let Some(end) = self.arith_end()
                    {
                        let inner = text(&self.s[self.i + 2..end - 2]);
                        self.i = end;
                        self.push(Tok::Arith(inner), start)?;
                    } else {
                        self.i += 1;
                        self.push(Tok::Op(Op::LParen), start)?;
                    }
                }
                '<' | '>' if self.at(1) == Some('(') => {
                    let input = c == '<';
                    let close = skip_to_close(self.s, self.i + 2, self.depth + 1)?;
                    let script = text(&self.s[self.i + 2..close]);
                    self.i = close + 1;
                    let w = Word {
                        parts: vec![Part::ProcSub { script, input }],
                        raw: text(&self.s[start..self.i]),
                    };
                    self.push(Tok::Word(w), start)?;
                }
                '<' | '>' => {
                    let op = self.redir_op();
                    self.push(Tok::Op(op), start)?;
                    if matches!(op, Op::DLess | Op::DLessDash) {
                        self.want_delim = Some(op == Op::DLessDash);
                    }
                }
                '0'..='9' if self.io_number().is_some() => {
                    let (n, len) = self.io_number().unwrap_or((0, 1));
                    self.i += len;
                    self.push(Tok::IoNum(n), start)?;
                }
                _ => {
                    let parts = read_parts(self.s, &mut self.i, Mode::Word, self.depth)?;
                    if self.i == start {
                        // Never stall on a character the word reader refuses.
                        self.i += 1;
                    }
                    let w = Word {
                        parts,
                        raw: text(&self.s[start..self.i]),
                    };
                    self.push(Tok::Word(w), start)?;
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, tok: Tok, start: usize) -> Result<(), String> {
        if let Some(strip) = self.want_delim.take() {
            let Tok::Word(w) = &tok else {
                return Err("`<<` without a delimiter word".into());
            };
            let quoted = w
                .parts
                .iter()
                .any(|p| matches!(p, Part::Lit { quoted: true, .. }));
            let delim = w.literal().unwrap_or_else(|| w.raw.clone());
            self.pending.push((delim, quoted, strip));
        }
        self.tokens.push(Token {
            tok,
            start,
            end: self.i,
        });
        Ok(())
    }

    fn op(&mut self) -> Op {
        let (op, len) = match (self.at(0), self.at(1), self.at(2)) {
            (Some(';'), Some(';'), Some('&')) => (Op::DSemiAnd, 3),
            (Some(';'), Some(';'), _) => (Op::DSemi, 2),
            (Some(';'), Some('&'), _) => (Op::SemiAnd, 2),
            (Some(';'), ..) => (Op::Semi, 1),
            (Some('&'), Some('&'), _) => (Op::AndIf, 2),
            (Some('&'), Some('>'), Some('>')) => (Op::AndDGreat, 3),
            (Some('&'), Some('>'), _) => (Op::AndGreat, 2),
            (Some('&'), ..) => (Op::Amp, 1),
            (Some('|'), Some('|'), _) => (Op::OrIf, 2),
            (Some('|'), Some('&'), _) => (Op::PipeAmp, 2),
            (Some('|'), ..) => (Op::Pipe, 1),
            _ => (Op::RParen, 1),
        };
        self.i += len;
        op
    }

    fn redir_op(&mut self) -> Op {
        let (op, len) = match (self.at(0), self.at(1), self.at(2)) {
            (Some('<'), Some('<'), Some('<')) => (Op::TLess, 3),
            (Some('<'), Some('<'), Some('-')) => (Op::DLessDash, 3),
            (Some('<'), Some('<'), _) => (Op::DLess, 2),
            (Some('<'), Some('&'), _) => (Op::LessAnd, 2),
            (Some('<'), Some('>'), _) => (Op::LessGreat, 2),
            (Some('<'), ..) => (Op::Less, 1),
            (Some('>'), Some('>'), _) => (Op::DGreat, 2),
            (Some('>'), Some('&'), _) => (Op::GreatAnd, 2),
            (Some('>'), Some('|'), _) => (Op::Clobber, 2),
            _ => (Op::Great, 1),
        };
        self.i += len;
        op
    }

    /// Digits directly followed by `<` or `>`: a file descriptor number.
    fn io_number(&self) -> Option<(u32, usize)> {
        let mut k = 0;
        while self.at(k).is_some_and(|c| c.is_ascii_digit()) {
            k += 1;
        }
        if !matches!(self.at(k), Some('<' | '>')) {
            return None;
        }
        let n: u32 = text(&self.s[self.i..self.i + k]).parse().ok()?;
        Some((n, k))
    }

    /// `((` … `))`: the index after the closing pair, if this is one. The
    /// look-ahead is bounded: `((((…` must not rescan the input each time.
    fn arith_end(&self) -> Option<usize> {
        let window = &self.s[..self.s.len().min(self.i + 1024)];
        let close = skip_to_close(window, self.i + 2, self.depth + 1).ok()?;
        (self.s.get(close + 1) == Some(&')')).then_some(close + 2)
    }

    fn read_docs(&mut self) -> Result<(), String> {
        for (delim, quoted, strip) in std::mem::take(&mut self.pending) {
            let (body, next) = read_doc(self.s, self.i, &delim, strip)
                .ok_or_else(|| format!("here-document without its end marker `{delim}`"))?;
            self.i = next;
            self.docs.push(HereDoc { body, quoted });
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn toks(src: &str) -> Vec<Tok> {
        let chars: Vec<char> = src.chars().collect();
        tokenize(&chars, 0)
            .expect("lexes")
            .tokens
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    pub(crate) fn words(src: &str) -> Vec<String> {
        toks(src)
            .into_iter()
            .filter_map(|t| match t {
                Tok::Word(w) => Some(w.literal().unwrap_or_else(|| format!("<{}>", w.raw))),
                _ => None,
            })
            .collect()
    }

    fn err(src: &str) -> String {
        let chars: Vec<char> = src.chars().collect();
        match tokenize(&chars, 0) {
            Ok(_) => panic!("{src:?} should not lex"),
            Err(e) => e,
        }
    }

    #[test]
    fn operators_split_words() {
        let t = toks("a&&b||c|d;e&f |& g ;; h");
        let ops: Vec<Op> = t
            .iter()
            .filter_map(|t| match t {
                Tok::Op(o) => Some(*o),
                _ => None,
            })
            .collect();
        assert_eq!(
            ops,
            [
                Op::AndIf,
                Op::OrIf,
                Op::Pipe,
                Op::Semi,
                Op::Amp,
                Op::PipeAmp,
                Op::DSemi
            ]
        );
        assert_eq!(words("a&&b||c|d;e&f"), ["a", "b", "c", "d", "e", "f"]);
    }

    #[test]
    fn redirections_and_fd_numbers() {
        let t = toks("cmd 2>&1 >/dev/null &>x <y >>z >|w");
        assert!(t.contains(&Tok::IoNum(2)));
        for op in [
            Op::GreatAnd,
            Op::Great,
            Op::AndGreat,
            Op::Less,
            Op::DGreat,
            Op::Clobber,
        ] {
            assert!(t.contains(&Tok::Op(op)), "{op:?}");
        }
        // Digits inside a word are not a descriptor.
        assert_eq!(words("echo a2>x"), ["echo", "a2", "x"]);
    }

    #[test]
    fn process_substitution_and_arith_command() {
        let t = toks("sh <(curl x) ; (( i++ ))");
        assert!(
            matches!(&t[1], Tok::Word(w) if matches!(&w.parts[0], Part::ProcSub { input: true, script } if script == "curl x"))
        );
        assert!(t.contains(&Tok::Arith(" i++ ".into())));
        assert!(toks("( (echo a) )").contains(&Tok::Op(Op::LParen)));
    }

    #[test]
    fn here_documents_are_read_at_the_newline() {
        let chars: Vec<char> =
            "sh <<EOF; echo after\nrm -rf /\nEOF\necho x <<-'E'\n\tbody $x\n\tE\n"
                .chars()
                .collect();
        let lx = tokenize(&chars, 0).unwrap();
        assert_eq!(
            lx.docs,
            [
                HereDoc {
                    body: "rm -rf /\n".into(),
                    quoted: false
                },
                HereDoc {
                    body: "body $x\n".into(),
                    quoted: true
                }
            ]
        );
        let w: Vec<String> = lx
            .tokens
            .iter()
            .filter_map(|t| match &t.tok {
                Tok::Word(w) => w.literal(),
                _ => None,
            })
            .collect();
        assert_eq!(w, ["sh", "EOF", "echo", "after", "echo", "x", "E"]);
    }

    #[test]
    fn comments_and_continuations() {
        assert_eq!(words("echo a # rm -rf /\nb#c"), ["echo", "a", "b#c"]);
        assert_eq!(words("r\\\nm -rf \\\n /"), ["rm", "-rf", "/"]);
    }

    #[test]
    fn errors_are_reasons() {
        assert!(err("echo 'abc").contains("single quote"));
        assert!(err("echo \"abc").contains("double quote"));
        assert!(err("echo $(abc").contains("parenthesis"));
        assert!(err("echo `abc").contains("backquote"));
        assert!(err("echo ${abc").contains("${"));
        assert!(err("cat <<EOF\nbody\n").contains("end marker"));
        assert!(err("cat <<").contains("delimiter"));
        let deep = format!("{}x{}", "$(".repeat(40), ")".repeat(40));
        assert!(err(&deep).contains("nesting too deep"));
    }

    #[test]
    fn heredoc_inside_substitution_is_skipped() {
        let t = toks("x=$(cat <<EOF\nit's (\nEOF\n)\necho ok");
        assert!(
            matches!(&t[0], Tok::Word(w) if matches!(&w.parts[..], [Part::Lit{..}, Part::Subst{..}]))
        );
    }
}
