//! GitHub's GraphQL schema as far as the sandbox serves it: the SDL extract
//! vendored in `sandbox/specs/github-graphql-review-threads.graphql` (copied
//! from octokit/graphql-schema, see its header), embedded and parsed once,
//! and the small SDL parser that reads it. `POST /graphql` validates every
//! selected field and argument against it, so the sandbox cannot accept a
//! query GitHub would refuse.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::graphql_syntax::{Cursor, Input, SyntaxError, Tok, TypeRef};

/// The vendored extract of GitHub's official schema.
pub const GITHUB_SDL: &str = include_str!("../../specs/github-graphql-review-threads.graphql");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Interface,
    Scalar,
    Enum,
    Union,
    Input,
}

#[derive(Debug, Clone)]
pub struct ArgDef {
    pub name: String,
    pub ty: TypeRef,
    pub default: Option<Input>,
}

impl ArgDef {
    /// Non-null without a default: the caller has to pass it.
    pub fn required(&self) -> bool {
        self.ty.is_non_null() && self.default.is_none()
    }
}

#[derive(Debug, Clone)]
pub struct FieldDef {
    pub name: String,
    pub args: Vec<ArgDef>,
    pub ty: TypeRef,
}

impl FieldDef {
    pub fn arg(&self, name: &str) -> Option<&ArgDef> {
        self.args.iter().find(|a| a.name == name)
    }

    /// GitHub's pagination rules apply to every `...Connection` field.
    pub fn is_connection(&self) -> bool {
        self.ty.base().ends_with("Connection")
    }
}

#[derive(Debug, Clone)]
pub struct TypeDef {
    pub name: String,
    pub kind: Kind,
    pub implements: Vec<String>,
    pub fields: Vec<FieldDef>,
}

impl TypeDef {
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Schema {
    types: BTreeMap<String, TypeDef>,
}

const BUILTIN_SCALARS: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];

impl Schema {
    /// GitHub's schema extract, parsed on first use.
    pub fn github() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| Schema::parse(GITHUB_SDL).expect("the vendored SDL parses"))
    }

    pub fn get(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    pub fn types(&self) -> impl Iterator<Item = &TypeDef> {
        self.types.values()
    }

    /// Whether values of `name` are leaves (scalars and enums): they take no
    /// selection set.
    pub fn is_leaf(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|t| matches!(t.kind, Kind::Scalar | Kind::Enum))
    }

    /// Parses SDL: `type`, `interface`, `scalar`, `enum`, `union`, `input`,
    /// `directive` and `schema` definitions (the last two are read and
    /// dropped), skipping descriptions, directives and comments.
    pub fn parse(sdl: &str) -> Result<Schema, SyntaxError> {
        let mut c = Cursor::new(sdl)?;
        let mut types = BTreeMap::new();
        for s in BUILTIN_SCALARS {
            types.insert(
                s.to_string(),
                TypeDef {
                    name: s.into(),
                    kind: Kind::Scalar,
                    implements: vec![],
                    fields: vec![],
                },
            );
        }
        loop {
            c.skip_description();
            if c.peek().tok == Tok::Eof {
                break;
            }
            let (word, _) = c.name()?;
            let def = match word.as_str() {
                "type" | "interface" => {
                    let (name, _) = c.name()?;
                    let mut implements = Vec::new();
                    if c.is_name("implements") {
                        c.next();
                        c.eat_punct('&');
                        implements.push(c.name()?.0);
                        while c.eat_punct('&') {
                            implements.push(c.name()?.0);
                        }
                    }
                    c.skip_directives()?;
                    let mut fields = Vec::new();
                    if c.eat_punct('{') {
                        while !c.eat_punct('}') {
                            fields.push(field_def(&mut c)?);
                        }
                    }
                    let kind = if word == "type" {
                        Kind::Object
                    } else {
                        Kind::Interface
                    };
                    TypeDef {
                        name,
                        kind,
                        implements,
                        fields,
                    }
                }
                "scalar" => {
                    let (name, _) = c.name()?;
                    c.skip_directives()?;
                    leaf(name, Kind::Scalar)
                }
                "enum" => {
                    let (name, _) = c.name()?;
                    c.skip_directives()?;
                    c.expect_punct('{')?;
                    while !c.eat_punct('}') {
                        c.skip_description();
                        c.name()?;
                        c.skip_directives()?;
                    }
                    leaf(name, Kind::Enum)
                }
                "union" => {
                    let (name, _) = c.name()?;
                    c.skip_directives()?;
                    c.expect_punct('=')?;
                    c.eat_punct('|');
                    c.name()?;
                    while c.eat_punct('|') {
                        c.name()?;
                    }
                    leaf(name, Kind::Union)
                }
                "input" => {
                    let (name, _) = c.name()?;
                    c.skip_directives()?;
                    let mut fields = Vec::new();
                    c.expect_punct('{')?;
                    while !c.eat_punct('}') {
                        let a = arg_def(&mut c)?;
                        fields.push(FieldDef {
                            name: a.name,
                            args: vec![],
                            ty: a.ty,
                        });
                    }
                    TypeDef {
                        name,
                        kind: Kind::Input,
                        implements: vec![],
                        fields,
                    }
                }
                "directive" => {
                    c.expect_punct('@')?;
                    c.name()?;
                    if c.eat_punct('(') {
                        while !c.eat_punct(')') {
                            arg_def(&mut c)?;
                        }
                    }
                    if c.is_name("repeatable") {
                        c.next();
                    }
                    if !c.is_name("on") {
                        return Err(c.unexpected());
                    }
                    c.next();
                    c.eat_punct('|');
                    c.name()?;
                    while c.eat_punct('|') {
                        c.name()?;
                    }
                    continue;
                }
                "schema" => {
                    c.skip_directives()?;
                    c.expect_punct('{')?;
                    while !c.eat_punct('}') {
                        c.name()?;
                        c.expect_punct(':')?;
                        c.name()?;
                    }
                    continue;
                }
                _ => return Err(c.unexpected()),
            };
            types.insert(def.name.clone(), def);
        }
        Ok(Schema { types })
    }
}

fn leaf(name: String, kind: Kind) -> TypeDef {
    TypeDef {
        name,
        kind,
        implements: vec![],
        fields: vec![],
    }
}

fn arg_def(c: &mut Cursor) -> Result<ArgDef, SyntaxError> {
    c.skip_description();
    let (name, _) = c.name()?;
    c.expect_punct(':')?;
    let ty = c.type_ref()?;
    let default = if c.eat_punct('=') {
        Some(c.value(true)?)
    } else {
        None
    };
    c.skip_directives()?;
    Ok(ArgDef { name, ty, default })
}

fn field_def(c: &mut Cursor) -> Result<FieldDef, SyntaxError> {
    c.skip_description();
    let (name, _) = c.name()?;
    let mut args = Vec::new();
    if c.eat_punct('(') {
        while !c.eat_punct(')') {
            args.push(arg_def(c)?);
        }
    }
    c.expect_punct(':')?;
    let ty = c.type_ref()?;
    c.skip_directives()?;
    Ok(FieldDef { name, args, ty })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_extract_has_the_review_thread_types() {
        let s = Schema::github();
        let q = s.get("Query").unwrap();
        let repo = q.field("repository").unwrap();
        assert_eq!(repo.ty.to_string(), "Repository");
        assert!(repo.arg("owner").unwrap().required());
        assert!(!repo.arg("followRenames").unwrap().required());
        assert_eq!(
            repo.arg("followRenames").unwrap().default,
            Some(Input::Bool(true))
        );
        let threads = s
            .get("PullRequest")
            .unwrap()
            .field("reviewThreads")
            .unwrap();
        assert_eq!(threads.ty.to_string(), "PullRequestReviewThreadConnection!");
        assert!(threads.is_connection());
        let nodes = s
            .get("PullRequestReviewThreadConnection")
            .unwrap()
            .field("nodes")
            .unwrap();
        assert_eq!(nodes.ty.to_string(), "[PullRequestReviewThread]");
        assert_eq!(s.get("Actor").unwrap().kind, Kind::Interface);
        assert!(s.is_leaf("DateTime") && s.is_leaf("Int") && !s.is_leaf("PageInfo"));
        assert_eq!(q.implements, vec!["Node".to_string()]);
    }

    #[test]
    fn sdl_descriptions_directives_and_other_definitions_are_read() {
        let sdl = r#"
            # a comment
            directive @requiredCapabilities(requiredCapabilities: [String!]) on ARGUMENT_DEFINITION | ENUM
            """
            A block description.
            """
            type A implements B & C @x {
              "a short description"
              f(
                """arg doc"""
                n: Int = 3 @deprecated(reason: "no")
                m: [ID!]! = ["a"]
              ): [A!]! @deprecated(reason: "Use `g`.")
              g: E
            }
            enum E { ONE @deprecated TWO }
            union U = | A | D
            input I { x: Int! = 1 }
            schema { query: A }
        "#;
        let s = Schema::parse(sdl).unwrap();
        let a = s.get("A").unwrap();
        assert_eq!(a.implements, vec!["B".to_string(), "C".to_string()]);
        let f = a.field("f").unwrap();
        assert_eq!(f.ty.to_string(), "[A!]!");
        assert_eq!(f.args.len(), 2);
        assert_eq!(f.arg("n").unwrap().default, Some(Input::Int(3)));
        assert!(!f.arg("m").unwrap().required());
        assert_eq!(s.get("E").unwrap().kind, Kind::Enum);
        assert_eq!(s.get("U").unwrap().kind, Kind::Union);
        assert_eq!(s.get("I").unwrap().fields[0].name, "x");
        assert!(s.is_leaf("E"));
    }

    #[test]
    fn sdl_errors_say_where() {
        let e = Schema::parse("type A {\n  f(: Int\n}").unwrap_err();
        assert_eq!((e.pos.line, e.pos.column), (2, 5));
        assert!(Schema::parse("blob X").is_err());
    }
}
