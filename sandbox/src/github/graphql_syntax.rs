//! GraphQL's lexical layer, shared by the SDL parser (`graphql_schema`) and
//! the query parser (`graphql_query`): tokens with their line and column, a
//! cursor over them, values and type references. Errors carry GitHub's
//! (graphql-ruby's) wording, `Parse error on "}" (RCURLY) at [3, 5]`.

use std::fmt;

/// A 1-based line and column, as GraphQL's `locations` report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// One of `! $ & ( ) : = @ [ ] { | }`.
    Punct(char),
    Spread,
    Name(String),
    Int(String),
    Float(String),
    Str(String),
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: Pos,
    /// The source text, for error messages.
    pub text: String,
}

/// A syntax error: GitHub answers these with HTTP 200 and `errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub pos: Pos,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (line {}, column {})",
            self.message, self.pos.line, self.pos.column
        )
    }
}

impl std::error::Error for SyntaxError {}

/// A value in a query (an argument, a variable's default) or in the SDL (a
/// default). `Var` never appears in the SDL or in a variable's default.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Null,
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Enum(String),
    Var(String),
    List(Vec<Input>),
    Object(Vec<(String, Input)>),
}

/// A type reference: `Int`, `[String!]!`, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeRef {
    Named(String),
    List(Box<TypeRef>),
    NonNull(Box<TypeRef>),
}

impl TypeRef {
    /// The named type under the list and non-null wrappers.
    pub fn base(&self) -> &str {
        match self {
            TypeRef::Named(n) => n,
            TypeRef::List(t) | TypeRef::NonNull(t) => t.base(),
        }
    }

    pub fn is_non_null(&self) -> bool {
        matches!(self, TypeRef::NonNull(_))
    }

    /// The type without its outer `!`.
    pub fn nullable(&self) -> &TypeRef {
        match self {
            TypeRef::NonNull(t) => t,
            t => t,
        }
    }
}

impl fmt::Display for TypeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeRef::Named(n) => f.write_str(n),
            TypeRef::List(t) => write!(f, "[{t}]"),
            TypeRef::NonNull(t) => write!(f, "{t}!"),
        }
    }
}

fn lex(src: &str) -> Result<Vec<Token>, SyntaxError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let bad = |text: String, line, column| SyntaxError {
        message: format!("Parse error on {text:?} (error) at [{line}, {column}]"),
        pos: Pos { line, column },
    };
    while i < chars.len() {
        let c = chars[i];
        let start = Pos { line, column: col };
        let step = |i: &mut usize, line: &mut usize, col: &mut usize, c: char| {
            *i += 1;
            if c == '\n' {
                *line += 1;
                *col = 1;
            } else {
                *col += 1;
            }
        };
        match c {
            ' ' | '\t' | ',' | '\r' | '\n' | '\u{feff}' => step(&mut i, &mut line, &mut col, c),
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    let ch = chars[i];
                    step(&mut i, &mut line, &mut col, ch);
                }
            }
            '!' | '$' | '&' | '(' | ')' | ':' | '=' | '@' | '[' | ']' | '{' | '|' | '}' => {
                step(&mut i, &mut line, &mut col, c);
                out.push(Token {
                    tok: Tok::Punct(c),
                    pos: start,
                    text: c.to_string(),
                });
            }
            '.' => {
                if chars.get(i + 1) == Some(&'.') && chars.get(i + 2) == Some(&'.') {
                    for _ in 0..3 {
                        step(&mut i, &mut line, &mut col, '.');
                    }
                    out.push(Token {
                        tok: Tok::Spread,
                        pos: start,
                        text: "...".into(),
                    });
                } else {
                    return Err(bad(".".into(), line, col));
                }
            }
            '"' => {
                let block = chars.get(i + 1) == Some(&'"') && chars.get(i + 2) == Some(&'"');
                let mut value = String::new();
                if block {
                    for _ in 0..3 {
                        step(&mut i, &mut line, &mut col, '"');
                    }
                    loop {
                        if i >= chars.len() {
                            return Err(bad("\"\"\"".into(), start.line, start.column));
                        }
                        if chars[i] == '"'
                            && chars.get(i + 1) == Some(&'"')
                            && chars.get(i + 2) == Some(&'"')
                        {
                            for _ in 0..3 {
                                step(&mut i, &mut line, &mut col, '"');
                            }
                            break;
                        }
                        let ch = chars[i];
                        value.push(ch);
                        step(&mut i, &mut line, &mut col, ch);
                    }
                    value = value.trim().to_string();
                } else {
                    step(&mut i, &mut line, &mut col, '"');
                    loop {
                        let Some(&ch) = chars.get(i) else {
                            return Err(bad("\"".into(), start.line, start.column));
                        };
                        if ch == '\n' {
                            return Err(bad("\"".into(), start.line, start.column));
                        }
                        step(&mut i, &mut line, &mut col, ch);
                        match ch {
                            '"' => break,
                            '\\' => {
                                let Some(&e) = chars.get(i) else {
                                    return Err(bad("\\".into(), line, col));
                                };
                                step(&mut i, &mut line, &mut col, e);
                                match e {
                                    'n' => value.push('\n'),
                                    't' => value.push('\t'),
                                    'r' => value.push('\r'),
                                    'b' => value.push('\u{8}'),
                                    'f' => value.push('\u{c}'),
                                    'u' => {
                                        let hex: String = chars.iter().skip(i).take(4).collect();
                                        let code = u32::from_str_radix(&hex, 16)
                                            .ok()
                                            .and_then(char::from_u32)
                                            .ok_or_else(|| bad(format!("\\u{hex}"), line, col))?;
                                        for _ in 0..4 {
                                            step(&mut i, &mut line, &mut col, 'x');
                                        }
                                        value.push(code);
                                    }
                                    other => value.push(other),
                                }
                            }
                            _ => value.push(ch),
                        }
                    }
                }
                let text: String = value.chars().take(40).collect();
                out.push(Token {
                    tok: Tok::Str(value),
                    pos: start,
                    text,
                });
            }
            c if c == '-' || c.is_ascii_digit() => {
                let mut text = String::new();
                let mut float = false;
                while let Some(&ch) = chars.get(i) {
                    let more = ch.is_ascii_digit()
                        || (ch == '-' && text.is_empty())
                        || ((ch == '.' || ch == 'e' || ch == 'E') && !text.is_empty())
                        || ((ch == '+' || ch == '-') && text.ends_with(['e', 'E']));
                    if !more {
                        break;
                    }
                    float |= matches!(ch, '.' | 'e' | 'E');
                    text.push(ch);
                    step(&mut i, &mut line, &mut col, ch);
                }
                if text == "-"
                    || chars
                        .get(i)
                        .is_some_and(|ch| ch.is_alphabetic() || *ch == '_')
                {
                    return Err(bad(text, start.line, start.column));
                }
                let tok = if float {
                    Tok::Float(text.clone())
                } else {
                    Tok::Int(text.clone())
                };
                out.push(Token {
                    tok,
                    pos: start,
                    text,
                });
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut name = String::new();
                while let Some(&ch) = chars.get(i) {
                    if !(ch.is_ascii_alphanumeric() || ch == '_') {
                        break;
                    }
                    name.push(ch);
                    step(&mut i, &mut line, &mut col, ch);
                }
                out.push(Token {
                    tok: Tok::Name(name.clone()),
                    pos: start,
                    text: name,
                });
            }
            other => return Err(bad(other.to_string(), line, col)),
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: Pos { line, column: col },
        text: String::new(),
    });
    Ok(out)
}

/// A cursor over the tokens of one document.
pub(crate) struct Cursor {
    tokens: Vec<Token>,
    at: usize,
}

fn kind(t: &Tok) -> &'static str {
    match t {
        Tok::Punct('!') => "BANG",
        Tok::Punct('$') => "VAR_SIGN",
        Tok::Punct('&') => "AMP",
        Tok::Punct('(') => "LPAREN",
        Tok::Punct(')') => "RPAREN",
        Tok::Punct(':') => "COLON",
        Tok::Punct('=') => "EQUALS",
        Tok::Punct('@') => "DIR_SIGN",
        Tok::Punct('[') => "LBRACKET",
        Tok::Punct(']') => "RBRACKET",
        Tok::Punct('{') => "LCURLY",
        Tok::Punct('|') => "PIPE",
        Tok::Punct('}') => "RCURLY",
        Tok::Punct(_) => "PUNCTUATOR",
        Tok::Spread => "ELLIPSIS",
        Tok::Name(_) => "IDENTIFIER",
        Tok::Int(_) => "INT",
        Tok::Float(_) => "FLOAT",
        Tok::Str(_) => "STRING",
        Tok::Eof => "EOF",
    }
}

impl Cursor {
    pub fn new(src: &str) -> Result<Self, SyntaxError> {
        Ok(Cursor {
            tokens: lex(src)?,
            at: 0,
        })
    }

    pub fn peek(&self) -> &Token {
        &self.tokens[self.at]
    }

    pub fn next(&mut self) -> Token {
        let t = self.tokens[self.at].clone();
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
        t
    }

    /// The error for the token under the cursor, in graphql-ruby's words.
    pub fn unexpected(&self) -> SyntaxError {
        let t = self.peek();
        let message = if t.tok == Tok::Eof {
            "Unexpected end of document".to_string()
        } else {
            format!(
                "Parse error on {:?} ({}) at [{}, {}]",
                t.text,
                kind(&t.tok),
                t.pos.line,
                t.pos.column
            )
        };
        SyntaxError {
            message,
            pos: t.pos,
        }
    }

    pub fn is_punct(&self, c: char) -> bool {
        self.peek().tok == Tok::Punct(c)
    }

    pub fn eat_punct(&mut self, c: char) -> bool {
        let hit = self.is_punct(c);
        if hit {
            self.next();
        }
        hit
    }

    pub fn expect_punct(&mut self, c: char) -> Result<Pos, SyntaxError> {
        if self.is_punct(c) {
            Ok(self.next().pos)
        } else {
            Err(self.unexpected())
        }
    }

    pub fn is_name(&self, word: &str) -> bool {
        matches!(&self.peek().tok, Tok::Name(n) if n == word)
    }

    pub fn name(&mut self) -> Result<(String, Pos), SyntaxError> {
        match &self.peek().tok {
            Tok::Name(n) => {
                let n = n.clone();
                Ok((n, self.next().pos))
            }
            _ => Err(self.unexpected()),
        }
    }

    /// `Int`, `[T]`, `T!`, nested.
    pub fn type_ref(&mut self) -> Result<TypeRef, SyntaxError> {
        let inner = if self.eat_punct('[') {
            let t = self.type_ref()?;
            self.expect_punct(']')?;
            TypeRef::List(Box::new(t))
        } else {
            TypeRef::Named(self.name()?.0)
        };
        Ok(if self.eat_punct('!') {
            TypeRef::NonNull(Box::new(inner))
        } else {
            inner
        })
    }

    /// A value; `constant` refuses `$variables` (defaults, the SDL).
    pub fn value(&mut self, constant: bool) -> Result<Input, SyntaxError> {
        let t = self.peek().clone();
        let v = match &t.tok {
            Tok::Punct('$') if !constant => {
                self.next();
                Input::Var(self.name()?.0)
            }
            Tok::Int(s) => {
                let n = s.parse::<i64>().map_err(|_| self.unexpected())?;
                self.next();
                Input::Int(n)
            }
            Tok::Float(s) => {
                let n = s.parse::<f64>().map_err(|_| self.unexpected())?;
                self.next();
                Input::Float(n)
            }
            Tok::Str(s) => {
                let s = s.clone();
                self.next();
                Input::Str(s)
            }
            Tok::Name(n) => {
                let v = match n.as_str() {
                    "true" => Input::Bool(true),
                    "false" => Input::Bool(false),
                    "null" => Input::Null,
                    other => Input::Enum(other.to_string()),
                };
                self.next();
                v
            }
            Tok::Punct('[') => {
                self.next();
                let mut items = Vec::new();
                while !self.eat_punct(']') {
                    items.push(self.value(constant)?);
                }
                Input::List(items)
            }
            Tok::Punct('{') => {
                self.next();
                let mut fields = Vec::new();
                while !self.eat_punct('}') {
                    let (k, _) = self.name()?;
                    self.expect_punct(':')?;
                    fields.push((k, self.value(constant)?));
                }
                Input::Object(fields)
            }
            _ => return Err(self.unexpected()),
        };
        Ok(v)
    }

    /// Skips `@name` and `@name(args)` (the SDL's `@deprecated(...)`).
    pub fn skip_directives(&mut self) -> Result<(), SyntaxError> {
        while self.eat_punct('@') {
            self.name()?;
            if self.eat_punct('(') {
                while !self.eat_punct(')') {
                    self.name()?;
                    self.expect_punct(':')?;
                    self.value(true)?;
                }
            }
        }
        Ok(())
    }

    /// Skips a description (`"..."` or `"""..."""`) if one is next.
    pub fn skip_description(&mut self) {
        if matches!(self.peek().tok, Tok::Str(_)) {
            self.next();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_their_line_and_column() {
        let toks = lex("query {\n  # a comment\n  a(b: -1.5e3, c: \"x\\\"y\")\n}").unwrap();
        let a = toks
            .iter()
            .find(|t| t.tok == Tok::Name("a".into()))
            .unwrap();
        assert_eq!(a.pos, Pos { line: 3, column: 3 });
        assert!(toks.iter().any(|t| t.tok == Tok::Float("-1.5e3".into())));
        assert!(toks.iter().any(|t| t.tok == Tok::Str("x\"y".into())));
        assert_eq!(toks.last().unwrap().tok, Tok::Eof);
    }

    #[test]
    fn block_strings_and_bad_characters() {
        let toks = lex("\"\"\"\n  a \"quoted\" word\n\"\"\" x").unwrap();
        assert_eq!(toks[0].tok, Tok::Str("a \"quoted\" word".into()));
        assert_eq!(toks[1].pos, Pos { line: 3, column: 5 });
        let e = lex("{ a ? }").unwrap_err();
        assert_eq!(e.pos, Pos { line: 1, column: 5 });
        assert!(lex("\"open").is_err());
    }

    #[test]
    fn type_refs_round_trip() {
        let mut c = Cursor::new("[String!]! Int").unwrap();
        let t = c.type_ref().unwrap();
        assert_eq!(t.to_string(), "[String!]!");
        assert_eq!(t.base(), "String");
        assert!(t.is_non_null());
        assert_eq!(c.type_ref().unwrap(), TypeRef::Named("Int".into()));
    }
}
