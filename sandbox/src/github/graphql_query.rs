//! The query side of GraphQL as the sandbox reads it: operations (`query`,
//! named or not, with variable definitions, or an anonymous `{ ... }`),
//! selection sets, aliases and arguments. Fragments, directives, `mutation`
//! and `subscription` are recognised and refused ([`QueryError::Unsupported`]),
//! since no caller of the sandbox sends them.

use super::graphql_syntax::{Cursor, Input, Pos, SyntaxError, Tok, TypeRef};

#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub operations: Vec<Operation>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub name: Option<String>,
    pub variables: Vec<VariableDef>,
    pub selection: Vec<Field>,
    pub pos: Pos,
}

impl Operation {
    /// How graphql-ruby names the operation at the head of error paths.
    pub fn path_name(&self) -> String {
        match &self.name {
            Some(n) => format!("query {n}"),
            None => "query".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VariableDef {
    pub name: String,
    pub ty: TypeRef,
    pub default: Option<Input>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Argument {
    pub name: String,
    pub value: Input,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub alias: Option<String>,
    pub name: String,
    pub args: Vec<Argument>,
    pub selection: Vec<Field>,
    pub pos: Pos,
}

impl Field {
    /// The key the field's value has in the response: its alias, or its name.
    pub fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }

    pub fn arg(&self, name: &str) -> Option<&Argument> {
        self.args.iter().find(|a| a.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    Syntax(SyntaxError),
    /// Valid GraphQL the sandbox does not serve (`what`: "fragments", ...).
    Unsupported {
        what: String,
        pos: Pos,
    },
}

impl QueryError {
    pub fn message(&self) -> String {
        match self {
            QueryError::Syntax(e) => e.message.clone(),
            QueryError::Unsupported { what, .. } => format!(
                "The GitHub sandbox does not serve {what}; send a plain query (fields, aliases, arguments, variables)"
            ),
        }
    }

    pub fn pos(&self) -> Pos {
        match self {
            QueryError::Syntax(e) => e.pos,
            QueryError::Unsupported { pos, .. } => *pos,
        }
    }
}

impl From<SyntaxError> for QueryError {
    fn from(e: SyntaxError) -> Self {
        QueryError::Syntax(e)
    }
}

fn unsupported(what: &str, pos: Pos) -> QueryError {
    QueryError::Unsupported {
        what: what.into(),
        pos,
    }
}

/// Parses a query document.
pub fn parse(src: &str) -> Result<Document, QueryError> {
    let mut c = Cursor::new(src)?;
    let mut operations = Vec::new();
    loop {
        let t = c.peek().clone();
        match &t.tok {
            Tok::Eof if !operations.is_empty() => break,
            Tok::Punct('{') => operations.push(Operation {
                name: None,
                variables: vec![],
                selection: selection_set(&mut c)?,
                pos: t.pos,
            }),
            Tok::Name(word) if word == "query" => {
                c.next();
                operations.push(operation(&mut c, t.pos)?);
            }
            Tok::Name(word) if word == "mutation" => return Err(unsupported("mutations", t.pos)),
            Tok::Name(word) if word == "subscription" => {
                return Err(unsupported("subscriptions", t.pos));
            }
            Tok::Name(word) if word == "fragment" => return Err(unsupported("fragments", t.pos)),
            _ => return Err(c.unexpected().into()),
        }
    }
    Ok(Document { operations })
}

fn operation(c: &mut Cursor, pos: Pos) -> Result<Operation, QueryError> {
    let name = match c.peek().tok {
        Tok::Name(_) => Some(c.name()?.0),
        _ => None,
    };
    let mut variables = Vec::new();
    if c.eat_punct('(') {
        loop {
            if c.eat_punct(')') {
                break;
            }
            let pos = c.expect_punct('$')?;
            let (name, _) = c.name()?;
            c.expect_punct(':')?;
            let ty = c.type_ref()?;
            let default = if c.eat_punct('=') {
                Some(c.value(true)?)
            } else {
                None
            };
            no_directives(c)?;
            variables.push(VariableDef {
                name,
                ty,
                default,
                pos,
            });
        }
        if variables.is_empty() {
            return Err(c.unexpected().into());
        }
    }
    no_directives(c)?;
    if !c.is_punct('{') {
        return Err(c.unexpected().into());
    }
    Ok(Operation {
        name,
        variables,
        selection: selection_set(c)?,
        pos,
    })
}

fn no_directives(c: &Cursor) -> Result<(), QueryError> {
    if c.is_punct('@') {
        return Err(unsupported("directives", c.peek().pos));
    }
    Ok(())
}

fn selection_set(c: &mut Cursor) -> Result<Vec<Field>, QueryError> {
    c.expect_punct('{')?;
    let mut fields = Vec::new();
    loop {
        if c.is_punct('}') {
            if fields.is_empty() {
                return Err(c.unexpected().into());
            }
            c.next();
            return Ok(fields);
        }
        if c.peek().tok == Tok::Spread {
            return Err(unsupported("fragments", c.peek().pos));
        }
        fields.push(field(c)?);
    }
}

fn field(c: &mut Cursor) -> Result<Field, QueryError> {
    let (first, pos) = c.name()?;
    let (alias, name) = if c.eat_punct(':') {
        (Some(first), c.name()?.0)
    } else {
        (None, first)
    };
    let mut args = Vec::new();
    if c.eat_punct('(') {
        loop {
            if c.eat_punct(')') {
                break;
            }
            let (name, pos) = c.name()?;
            c.expect_punct(':')?;
            let value = c.value(false)?;
            args.push(Argument { name, value, pos });
        }
        if args.is_empty() {
            return Err(c.unexpected().into());
        }
    }
    no_directives(c)?;
    let selection = if c.is_punct('{') {
        selection_set(c)?
    } else {
        vec![]
    };
    Ok(Field {
        alias,
        name,
        args,
        selection,
        pos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "query($owner: String!, $name: String!, $number: Int!, $cursor: String) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      reviewThreads(first: 100, after: $cursor) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes {
          isResolved
          comments(first: 1) { nodes { body author { login } } }
        }
      }
    }
  }
}";

    #[test]
    fn the_client_query_parses() {
        let d = parse(CLIENT).unwrap();
        let op = &d.operations[0];
        assert_eq!(op.name, None);
        let vars: Vec<String> = op
            .variables
            .iter()
            .map(|v| format!("{}:{}", v.name, v.ty))
            .collect();
        assert_eq!(
            vars,
            [
                "owner:String!",
                "name:String!",
                "number:Int!",
                "cursor:String"
            ]
        );
        assert_eq!(op.selection[0].name, "rateLimit");
        assert_eq!(op.selection[0].selection.len(), 3);
        let repo = &op.selection[1];
        assert_eq!(repo.arg("owner").unwrap().value, Input::Var("owner".into()));
        assert_eq!(repo.pos, Pos { line: 3, column: 3 });
        let threads = &repo.selection[0].selection[0];
        assert_eq!(threads.arg("first").unwrap().value, Input::Int(100));
        assert_eq!(threads.selection[2].name, "nodes");
    }

    #[test]
    fn aliases_names_literals_and_several_operations() {
        let d = parse(
            "query Named { a: repository(owner: \"o\", name: \"n\", followRenames: false) { name } x: __typename }
             { rateLimit(dryRun: null) { cost } }",
        )
        .unwrap();
        assert_eq!(d.operations.len(), 2);
        let op = &d.operations[0];
        assert_eq!(op.name.as_deref(), Some("Named"));
        assert_eq!(op.path_name(), "query Named");
        let f = &op.selection[0];
        assert_eq!(
            (f.alias.as_deref(), f.name.as_str(), f.key()),
            (Some("a"), "repository", "a")
        );
        assert_eq!(f.arg("owner").unwrap().value, Input::Str("o".into()));
        assert_eq!(f.arg("followRenames").unwrap().value, Input::Bool(false));
        assert_eq!(op.selection[1].key(), "x");
        assert_eq!(
            d.operations[1].selection[0].arg("dryRun").unwrap().value,
            Input::Null
        );
    }

    #[test]
    fn syntax_errors_name_the_token_and_place() {
        let e = parse("query {\n  repository(owner: ) { name }\n}").unwrap_err();
        assert_eq!(e.message(), "Parse error on \")\" (RPAREN) at [2, 21]");
        assert_eq!(
            e.pos(),
            Pos {
                line: 2,
                column: 21
            }
        );
        let e = parse("{ rateLimit { cost }").unwrap_err();
        assert_eq!(e.message(), "Unexpected end of document");
        assert!(matches!(parse("{ }"), Err(QueryError::Syntax(_))));
        assert!(matches!(parse(""), Err(QueryError::Syntax(_))));
    }

    #[test]
    fn fragments_mutations_and_directives_are_refused_as_unsupported() {
        for (src, what) in [
            (
                "{ ...F } fragment F on Query { rateLimit { cost } }",
                "fragments",
            ),
            ("fragment F on Query { rateLimit { cost } }", "fragments"),
            ("mutation { x }", "mutations"),
            ("subscription { x }", "subscriptions"),
            ("{ rateLimit @include(if: true) { cost } }", "directives"),
        ] {
            match parse(src) {
                Err(QueryError::Unsupported { what: w, .. }) => assert_eq!(w, what, "{src}"),
                other => panic!("{src}: {other:?}"),
            }
        }
    }
}
