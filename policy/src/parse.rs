//! Parser: tokens to commands. The grammar is the useful subset of POSIX sh
//! plus the bash forms task steps use: lists and and-or chains, pipelines,
//! subshells and groups, if/while/until/for/select/case, function
//! definitions (both spellings), `[[ ]]`, `(( ))`, arrays in assignments,
//! redirections and here-documents. The tree itself is in `ast`.

use std::collections::VecDeque;
use std::rc::Rc;

use crate::ast::{Assign, Command, Item, Kind, Pipeline, Redir, Script, Target, split_assignment};
use crate::depth::MAX_DEPTH;
use crate::lex::{self, HereDoc, Op, Tok, Token};
use crate::word::Word;

/// Compound commands nested deeper than this are refused: the walker
/// recurses over them and must stay within a small thread stack.
const MAX_NEST: usize = 32;

pub(crate) fn parse(src: &str, depth: usize) -> Result<Script, String> {
    let chars: Vec<char> = src.chars().filter(|&c| c != '\0').collect();
    let lexed = lex::tokenize(&chars, depth)?;
    let mut p = Parser {
        toks: lexed.tokens,
        pos: 0,
        docs: lexed.docs.into_iter().collect(),
        src: &chars,
        nest: 0,
    };
    let script = p.list(&[])?;
    if let Some(t) = p.toks.get(p.pos) {
        return Err(format!("syntax error near `{}`", p.text(t.start, t.end)));
    }
    Ok(script)
}

/// The literal first words of every simple command in a script (how
/// `find -exec sh -c '…'` is asked whether it removes files).
pub(crate) fn command_names(src: &str) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(s) = parse(src, MAX_DEPTH - 1) {
        s.pipelines(false, &mut |p, _| {
            names.extend(p.cmds.iter().filter_map(Command::name));
        });
    }
    names
}
struct Parser<'a> {
    toks: Vec<Token>,
    pos: usize,
    docs: VecDeque<HereDoc>,
    src: &'a [char],
    nest: usize,
}

const CLOSERS: &[&str] = &["then", "elif", "else", "fi", "do", "done", "esac", "}"];

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.pos + k).map(|t| &t.tok)
    }

    fn peek_op(&self) -> Option<Op> {
        match self.peek() {
            Some(Tok::Op(op)) => Some(*op),
            _ => None,
        }
    }

    fn is_word(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.plain() == Some(kw))
    }

    fn expect_word(&mut self, kw: &str) -> Result<(), String> {
        if self.is_word(kw) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("syntax error: missing `{kw}`"))
        }
    }

    fn expect_op(&mut self, op: Op) -> Result<(), String> {
        if self.peek_op() == Some(op) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("syntax error: missing `{}`", op.text()))
        }
    }

    fn skip_newlines(&mut self) {
        while self.peek() == Some(&Tok::Newline) {
            self.pos += 1;
        }
    }

    fn text(&self, start: usize, end: usize) -> String {
        self.src
            .get(start..end.min(self.src.len()))
            .unwrap_or_default()
            .iter()
            .collect()
    }

    /// Source text from the token at `from` to the last one consumed.
    fn span(&self, from: usize) -> String {
        let start = self.toks.get(from).map_or(0, |t| t.start);
        let end = self
            .pos
            .checked_sub(1)
            .and_then(|k| self.toks.get(k))
            .map_or(start, |t| t.end);
        self.text(start, end)
    }

    fn list(&mut self, stops: &[&str]) -> Result<Script, String> {
        let mut items = Vec::new();
        loop {
            while matches!(self.peek(), Some(Tok::Newline | Tok::Op(Op::Semi))) {
                self.pos += 1;
            }
            match self.peek() {
                None | Some(Tok::Op(Op::RParen | Op::DSemi | Op::SemiAnd | Op::DSemiAnd)) => break,
                Some(Tok::Word(w)) if w.plain().is_some_and(|p| stops.contains(&p)) => break,
                _ => {}
            }
            let pipelines = self.and_or()?;
            let background = self.peek_op() == Some(Op::Amp);
            if background {
                self.pos += 1;
            }
            items.push(Item {
                pipelines,
                background,
            });
        }
        Ok(Script { items })
    }

    fn and_or(&mut self) -> Result<Vec<Pipeline>, String> {
        let mut out = vec![self.pipeline()?];
        while matches!(self.peek_op(), Some(Op::AndIf | Op::OrIf)) {
            self.pos += 1;
            self.skip_newlines();
            out.push(self.pipeline()?);
        }
        Ok(out)
    }

    fn pipeline(&mut self) -> Result<Pipeline, String> {
        if self.is_word("!") {
            self.pos += 1;
        }
        let mut cmds = vec![self.command()?];
        while matches!(self.peek_op(), Some(Op::Pipe | Op::PipeAmp)) {
            self.pos += 1;
            self.skip_newlines();
            cmds.push(self.command()?);
        }
        Ok(Pipeline { cmds })
    }

    fn command(&mut self) -> Result<Command, String> {
        self.nest += 1;
        let r = if self.nest > MAX_NEST {
            Err("nesting too deep (compound commands inside each other)".to_string())
        } else {
            self.command_inner()
        };
        self.nest -= 1;
        r
    }

    fn command_inner(&mut self) -> Result<Command, String> {
        let start = self.pos;
        let kind = match self.peek() {
            None => return Err("syntax error: a command is missing at the end".into()),
            Some(Tok::Newline) => return Err("syntax error: a command is missing".into()),
            Some(Tok::Arith(_)) => {
                self.pos += 1;
                Kind::Arith
            }
            Some(Tok::Op(Op::LParen)) => {
                self.pos += 1;
                let body = self.list(&[])?;
                self.expect_op(Op::RParen)?;
                Kind::Subshell(body)
            }
            Some(Tok::IoNum(_)) => return self.simple(),
            Some(Tok::Op(op)) if op.is_redirect() => return self.simple(),
            Some(Tok::Op(op)) => return Err(format!("syntax error near `{}`", op.text())),
            Some(Tok::Word(w)) => {
                let plain = w.plain().map(str::to_string);
                // `a=(1 2)` is an array, not a function named `a=`.
                let fname = match split_assignment(w) {
                    Some(_) => None,
                    None => Some(w.literal().unwrap_or_else(|| w.raw.clone())),
                };
                match self.compound(plain.as_deref(), fname, start)? {
                    Some(k) => k,
                    None => return self.simple(),
                }
            }
        };
        let redirs = self.redirs()?;
        Ok(Command { kind, redirs })
    }

    /// A command starting with a word: a reserved word's compound command,
    /// a function definition, or a simple command.
    fn compound(
        &mut self,
        plain: Option<&str>,
        fname: Option<String>,
        start: usize,
    ) -> Result<Option<Kind>, String> {
        let kind = match plain {
            Some("{") => {
                self.pos += 1;
                let body = self.list(&["}"])?;
                self.expect_word("}")?;
                Kind::Group(body)
            }
            Some("if") => self.if_()?,
            Some(kw @ ("while" | "until")) => {
                let until = kw == "until";
                self.pos += 1;
                let cond = self.list(&["do"])?;
                self.expect_word("do")?;
                let body = self.list(&["done"])?;
                self.expect_word("done")?;
                Kind::Loop {
                    cond,
                    body,
                    until,
                    src: self.span(start),
                }
            }
            Some("for" | "select") => self.for_(start)?,
            Some("case") => self.case()?,
            Some("function") => {
                self.pos += 1;
                let name = match self.peek() {
                    Some(Tok::Word(w)) => w.literal().unwrap_or_else(|| w.raw.clone()),
                    _ => return Err("syntax error: `function` without a name".into()),
                };
                self.pos += 1;
                if self.peek_op() == Some(Op::LParen)
                    && matches!(self.peek_at(1), Some(Tok::Op(Op::RParen)))
                {
                    self.pos += 2;
                }
                self.func(name, start)?
            }
            Some("[[") => self.dbracket()?,
            Some(kw) if CLOSERS.contains(&kw) => {
                return Err(format!("syntax error near unexpected `{kw}`"));
            }
            _ if fname.is_some() && matches!(self.peek_at(1), Some(Tok::Op(Op::LParen))) => {
                if !matches!(self.peek_at(2), Some(Tok::Op(Op::RParen))) {
                    return Err("syntax error near unexpected `(`".into());
                }
                self.pos += 3;
                self.func(fname.unwrap_or_default(), start)?
            }
            _ => return Ok(None),
        };
        Ok(Some(kind))
    }

    fn func(&mut self, name: String, start: usize) -> Result<Kind, String> {
        self.skip_newlines();
        let body = self.command()?;
        Ok(Kind::Func {
            name,
            body: Rc::new(body),
            src: self.span(start),
        })
    }

    fn if_(&mut self) -> Result<Kind, String> {
        self.pos += 1;
        let mut branches = Vec::new();
        let cond = self.list(&["then"])?;
        self.expect_word("then")?;
        branches.push((cond, self.list(&["elif", "else", "fi"])?));
        let mut otherwise = None;
        loop {
            if self.is_word("elif") {
                self.pos += 1;
                let cond = self.list(&["then"])?;
                self.expect_word("then")?;
                branches.push((cond, self.list(&["elif", "else", "fi"])?));
            } else if self.is_word("else") {
                self.pos += 1;
                otherwise = Some(self.list(&["fi"])?);
                self.expect_word("fi")?;
                break;
            } else {
                self.expect_word("fi")?;
                break;
            }
        }
        Ok(Kind::If {
            branches,
            otherwise,
        })
    }

    fn for_(&mut self, start: usize) -> Result<Kind, String> {
        self.pos += 1;
        if let Some(Tok::Arith(inner)) = self.peek() {
            let clauses: Vec<&str> = inner.split(';').collect();
            let infinite = clauses.len() == 3 && clauses[1].trim().is_empty();
            self.pos += 1;
            while matches!(self.peek(), Some(Tok::Newline | Tok::Op(Op::Semi))) {
                self.pos += 1;
            }
            let body = self.loop_body()?;
            return Ok(Kind::ArithFor {
                infinite,
                body,
                src: self.span(start),
            });
        }
        let var = match self.peek() {
            Some(Tok::Word(w)) => w.literal().unwrap_or_default(),
            _ => return Err("syntax error: `for` without a variable name".into()),
        };
        self.pos += 1;
        self.skip_newlines();
        let mut items = None;
        if self.is_word("in") {
            self.pos += 1;
            let mut ws = Vec::new();
            while let Some(Tok::Word(w)) = self.peek() {
                ws.push(w.clone());
                self.pos += 1;
            }
            items = Some(ws);
        }
        if matches!(self.peek(), Some(Tok::Newline | Tok::Op(Op::Semi))) {
            self.pos += 1;
        }
        self.skip_newlines();
        let body = self.loop_body()?;
        Ok(Kind::For { var, items, body })
    }

    fn loop_body(&mut self) -> Result<Script, String> {
        if self.is_word("{") {
            self.pos += 1;
            let body = self.list(&["}"])?;
            self.expect_word("}")?;
            return Ok(body);
        }
        self.expect_word("do")?;
        let body = self.list(&["done"])?;
        self.expect_word("done")?;
        Ok(body)
    }

    fn case(&mut self) -> Result<Kind, String> {
        self.pos += 1;
        let word = match self.peek() {
            Some(Tok::Word(w)) => w.clone(),
            _ => return Err("syntax error: `case` without a word".into()),
        };
        self.pos += 1;
        self.skip_newlines();
        self.expect_word("in")?;
        let mut arms = Vec::new();
        loop {
            self.skip_newlines();
            if self.is_word("esac") {
                self.pos += 1;
                break;
            }
            if self.peek_op() == Some(Op::LParen) {
                self.pos += 1;
            }
            loop {
                match self.peek() {
                    Some(Tok::Word(_)) => self.pos += 1,
                    _ => return Err("syntax error in a case pattern".into()),
                }
                if self.peek_op() == Some(Op::Pipe) {
                    self.pos += 1;
                    continue;
                }
                break;
            }
            self.expect_op(Op::RParen)?;
            arms.push(self.list(&["esac"])?);
            if matches!(self.peek_op(), Some(Op::DSemi | Op::SemiAnd | Op::DSemiAnd)) {
                self.pos += 1;
                continue;
            }
            self.skip_newlines();
            self.expect_word("esac")?;
            break;
        }
        Ok(Kind::Case { word, arms })
    }

    /// `[[ … ]]`: only the words matter (for the substitutions in them);
    /// its operators are not commands.
    fn dbracket(&mut self) -> Result<Kind, String> {
        self.pos += 1;
        let mut words = vec![Word::lit("[[")];
        loop {
            match self.peek() {
                None => return Err("syntax error: missing `]]`".into()),
                Some(Tok::Word(w)) if w.plain() == Some("]]") => {
                    self.pos += 1;
                    break;
                }
                Some(Tok::Word(w)) => words.push(w.clone()),
                Some(_) => {}
            }
            self.pos += 1;
        }
        Ok(Kind::Simple {
            assigns: Vec::new(),
            words,
        })
    }

    fn simple(&mut self) -> Result<Command, String> {
        let mut assigns = Vec::new();
        let mut words = Vec::new();
        let mut redirs = Vec::new();
        loop {
            match self.peek() {
                Some(Tok::IoNum(_)) => redirs.push(self.redir()?),
                Some(Tok::Op(op)) if op.is_redirect() => redirs.push(self.redir()?),
                Some(Tok::Word(w)) => {
                    let w = w.clone();
                    self.pos += 1;
                    if words.is_empty()
                        && let Some((name, value)) = split_assignment(&w)
                    {
                        let array = if value.parts.is_empty() && self.peek_op() == Some(Op::LParen)
                        {
                            Some(self.array()?)
                        } else {
                            None
                        };
                        assigns.push(Assign { name, value, array });
                        continue;
                    }
                    words.push(w);
                }
                _ => break,
            }
        }
        if assigns.is_empty() && words.is_empty() && redirs.is_empty() {
            return Err("syntax error: a command is missing".into());
        }
        Ok(Command {
            kind: Kind::Simple { assigns, words },
            redirs,
        })
    }

    fn array(&mut self) -> Result<Vec<Word>, String> {
        self.pos += 1;
        let mut ws = Vec::new();
        loop {
            match self.peek() {
                Some(Tok::Word(w)) => ws.push(w.clone()),
                Some(Tok::Newline) => {}
                Some(Tok::Op(Op::RParen)) => {
                    self.pos += 1;
                    return Ok(ws);
                }
                _ => return Err("syntax error in an array assignment".into()),
            }
            self.pos += 1;
        }
    }

    fn redirs(&mut self) -> Result<Vec<Redir>, String> {
        let mut out = Vec::new();
        while matches!(self.peek(), Some(Tok::IoNum(_)))
            || self.peek_op().is_some_and(Op::is_redirect)
        {
            out.push(self.redir()?);
        }
        Ok(out)
    }

    fn redir(&mut self) -> Result<Redir, String> {
        let fd = match self.peek() {
            Some(Tok::IoNum(n)) => {
                let n = *n;
                self.pos += 1;
                Some(n)
            }
            _ => None,
        };
        let op = match self.peek_op() {
            Some(op) if op.is_redirect() => op,
            _ => return Err("syntax error: a file descriptor without a redirection".into()),
        };
        self.pos += 1;
        let target = match self.peek() {
            Some(Tok::Word(w)) => {
                let w = w.clone();
                self.pos += 1;
                if matches!(op, Op::DLess | Op::DLessDash) {
                    Target::Doc(self.docs.pop_front().unwrap_or(HereDoc {
                        body: String::new(),
                        quoted: true,
                    }))
                } else {
                    Target::Word(w)
                }
            }
            _ => return Err(format!("syntax error: `{}` without a target", op.text())),
        };
        Ok(Redir { fd, op, target })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(src: &str) -> Script {
        parse(src, 0).unwrap_or_else(|e| panic!("{src:?}: {e}"))
    }

    #[test]
    fn structure() {
        let s = ok("a | b && c & d; e");
        assert_eq!(s.items.len(), 3);
        assert!(s.items[0].background);
        assert_eq!(s.items[0].pipelines.len(), 2);
        assert_eq!(s.items[0].pipelines[0].cmds.len(), 2);
    }

    #[test]
    fn compound_commands_parse() {
        for src in [
            "if a; then b; elif c; then d; else e; fi",
            "while true; do x & done",
            "until false\ndo\n y\ndone",
            "for x in a b c; do echo $x; done",
            "for x; do :; done",
            "for ((;;)); do x & done",
            "case $x in a|b) echo;; (c) d;; *) e; esac",
            "f() { g; }; function h { i; }; function j() ( k )",
            ":(){ :|:& };:",
            "[[ -f x && $y < z ]] && echo",
            "(( i++ )); { a; b; } > out 2>&1",
            "a=(1 2 3) b=2 cmd",
            "cat <<EOF | sh\nrm -rf /\nEOF\n",
        ] {
            ok(src);
        }
    }

    #[test]
    fn syntax_errors() {
        for src in [
            "if a; then b",
            "a; fi",
            "(a",
            "a )",
            "case x in a) b",
            "f( x",
            "a | ",
            "{ a",
        ] {
            assert!(parse(src, 0).is_err(), "{src:?} should not parse");
        }
    }

    #[test]
    fn heredoc_attaches_to_its_redirection() {
        let s = ok("sh <<EOF\nrm -rf /\nEOF\n");
        let c = &s.items[0].pipelines[0].cmds[0];
        assert!(matches!(&c.redirs[0].target, Target::Doc(d) if d.body == "rm -rf /\n"));
    }

    #[test]
    fn function_source_is_kept() {
        let s = ok("bomb(){ bomb|bomb& };bomb");
        match &s.items[0].pipelines[0].cmds[0].kind {
            Kind::Func { name, src, .. } => {
                assert_eq!(name, "bomb");
                assert_eq!(src, "bomb(){ bomb|bomb& }");
            }
            k => panic!("{k:?}"),
        }
    }
}
