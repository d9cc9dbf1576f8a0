//! Execution of a validated query against the sandbox's state: resolvers
//! per object (the rate limit, repositories, pull requests, review threads
//! and their comments, connections with opaque cursors), GraphQL's null
//! propagation, and the response written in selection order (the crate's
//! `serde_json` maps are sorted).

use serde_json::{Map, Value, json};

use super::graphql_query::Field;
use super::graphql_schema::{Schema, TypeDef};
use super::graphql_syntax::TypeRef;
use super::graphql_validate::{arg_values, loc};
use super::rest::ts;
use super::{HTML, Pull, Repo, Thread, ThreadComment, World};

/// A response value, kept in selection order.
pub(super) enum Out {
    Leaf(Value),
    Obj(Vec<(String, Out)>),
    List(Vec<Out>),
}

impl Out {
    pub(super) fn write(&self, s: &mut String) {
        match self {
            Out::Leaf(v) => s.push_str(&v.to_string()),
            Out::Obj(fields) => {
                s.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str(&Value::String(k.clone()).to_string());
                    s.push(':');
                    v.write(s);
                }
                s.push('}');
            }
            Out::List(items) => {
                s.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    v.write(s);
                }
                s.push(']');
            }
        }
    }
}

/// One page of a connection: indices `start..end` of `total` items.
#[derive(Clone, Copy)]
pub(super) struct Page {
    start: usize,
    end: usize,
    total: usize,
}

#[derive(Clone, Copy)]
pub(super) enum Obj<'a> {
    Query,
    RateLimit,
    Repo(&'a Repo),
    Owner(&'a Repo),
    Pull(&'a Repo, &'a Pull),
    Threads(&'a Repo, &'a Pull, Page),
    ThreadEdge(&'a Repo, &'a Pull, usize),
    Thread(&'a Repo, &'a Pull, &'a Thread),
    Comments(&'a Repo, &'a Pull, &'a Thread, Page),
    CommentEdge(&'a Repo, &'a Pull, &'a Thread, usize),
    Comment(&'a Repo, &'a Pull, &'a ThreadComment),
    Actor(&'a str),
    PageInfo(Page),
}

impl Obj<'_> {
    fn typename(&self) -> &'static str {
        match self {
            Obj::Query => "Query",
            Obj::RateLimit => "RateLimit",
            Obj::Repo(_) => "Repository",
            Obj::Owner(_) => "User",
            Obj::Pull(..) => "PullRequest",
            Obj::Threads(..) => "PullRequestReviewThreadConnection",
            Obj::ThreadEdge(..) => "PullRequestReviewThreadEdge",
            Obj::Thread(..) => "PullRequestReviewThread",
            Obj::Comments(..) => "PullRequestReviewCommentConnection",
            Obj::CommentEdge(..) => "PullRequestReviewCommentEdge",
            Obj::Comment(..) => "PullRequestReviewComment",
            Obj::Actor(login) if login.ends_with("[bot]") => "Bot",
            Obj::Actor(_) => "User",
            Obj::PageInfo(_) => "PageInfo",
        }
    }
}

enum Res<'a> {
    Null,
    Leaf(Value),
    Obj(Obj<'a>),
    List(Vec<Res<'a>>),
}

/// Cursors are opaque to clients; here they are base64 of the item's index.
pub(super) fn cursor(index: usize) -> String {
    base64(format!("cursor:v2:{index}").as_bytes())
}

fn uncursor(c: &str) -> Option<usize> {
    let bytes = unbase64(c)?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("cursor:v2:")?
        .parse()
        .ok()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unbase64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        bits = bits << 6 | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

pub(super) struct Exec<'a> {
    pub(super) w: &'a World,
    pub(super) schema: &'a Schema,
    pub(super) vars: &'a Map<String, Value>,
    pub(super) errors: Vec<Value>,
    pub(super) node_count: i64,
}

fn path_json(path: &[Value]) -> Value {
    Value::Array(path.to_vec())
}

impl<'a> Exec<'a> {
    /// The object's selected fields; `Err` when a non-null field came out
    /// null, so that the nearest nullable parent becomes null (GraphQL's rule).
    pub(super) fn select(
        &mut self,
        obj: &Obj<'a>,
        ty: &TypeDef,
        fields: &[Field],
        path: &mut Vec<Value>,
    ) -> Result<Out, ()> {
        let mut out = Vec::new();
        let mut failed = false;
        for f in fields {
            path.push(json!(f.key()));
            if f.name == "__typename" {
                out.push((f.key().to_string(), Out::Leaf(json!(obj.typename()))));
                path.pop();
                continue;
            }
            let def = ty.field(&f.name).expect("validated");
            let args = arg_values(f, def, self.vars);
            let res = self.resolve(obj, f, &args, path);
            match self.complete(&def.ty, res, f, path) {
                Ok(v) => out.push((f.key().to_string(), v)),
                Err(()) => failed = true,
            }
            path.pop();
        }
        if failed { Err(()) } else { Ok(Out::Obj(out)) }
    }

    fn complete(
        &mut self,
        ty: &TypeRef,
        res: Res<'a>,
        f: &Field,
        path: &mut Vec<Value>,
    ) -> Result<Out, ()> {
        match ty {
            TypeRef::NonNull(inner) => match self.complete(inner, res, f, path)? {
                Out::Leaf(Value::Null) => {
                    if !self.errors.iter().any(|e| e["path"] == path_json(path)) {
                        self.errors.push(json!({
                            "path": path_json(path), "locations": loc(f.pos),
                            "message": format!("Cannot return null for non-nullable field {}", f.name)
                        }));
                    }
                    Err(())
                }
                v => Ok(v),
            },
            TypeRef::List(inner) => match res {
                Res::List(items) => {
                    let mut out = Vec::new();
                    for (i, item) in items.into_iter().enumerate() {
                        path.push(json!(i));
                        let v = self.complete(inner, item, f, path);
                        path.pop();
                        match v {
                            Ok(v) => out.push(v),
                            Err(()) => return Ok(Out::Leaf(Value::Null)),
                        }
                    }
                    Ok(Out::List(out))
                }
                _ => Ok(Out::Leaf(Value::Null)),
            },
            TypeRef::Named(name) => match res {
                Res::Null => Ok(Out::Leaf(Value::Null)),
                Res::Leaf(v) => Ok(Out::Leaf(v)),
                Res::Obj(o) => {
                    let t = self.schema.get(name).expect("validated type");
                    Ok(self
                        .select(&o, t, &f.selection, path)
                        .unwrap_or(Out::Leaf(Value::Null)))
                }
                Res::List(_) => Ok(Out::Leaf(Value::Null)),
            },
        }
    }

    fn not_found(&mut self, f: &Field, path: &[Value], message: String) -> Res<'a> {
        self.errors.push(json!({
            "type": "NOT_FOUND", "path": path_json(path), "locations": loc(f.pos), "message": message
        }));
        Res::Null
    }

    /// Slices `total` items by `after`/`before`/`skip`/`first`/`last`.
    fn page(
        &mut self,
        total: usize,
        args: &Map<String, Value>,
        f: &Field,
        path: &[Value],
    ) -> Option<Page> {
        let mut bound = |name: &str| -> Result<Option<usize>, ()> {
            match args.get(name).and_then(Value::as_str) {
                None => Ok(None),
                Some(c) => match uncursor(c) {
                    Some(i) => Ok(Some(i)),
                    None => {
                        self.errors.push(json!({
                            "type": "INVALID_CURSOR_ARGUMENTS", "path": path_json(path), "locations": loc(f.pos),
                            "message": format!("`{c}` does not appear to be a valid cursor.")
                        }));
                        Err(())
                    }
                },
            }
        };
        let after = bound("after").ok()?;
        let before = bound("before").ok()?;
        let mut start = after.map_or(0, |a| a + 1).min(total);
        let mut end = before.unwrap_or(total).min(total).max(start);
        let num = |k: &str| args.get(k).and_then(Value::as_u64).map(|n| n as usize);
        if let Some(skip) = num("skip") {
            start = (start + skip).min(end);
        }
        if let Some(first) = num("first") {
            end = end.min(start + first);
        }
        if let Some(last) = num("last") {
            start = start.max(end.saturating_sub(last));
        }
        Some(Page { start, end, total })
    }

    fn resolve(
        &mut self,
        obj: &Obj<'a>,
        f: &Field,
        args: &Map<String, Value>,
        path: &[Value],
    ) -> Res<'a> {
        let leaf = |v: Value| Res::Leaf(v);
        let w = self.w;
        let s = |a: &Map<String, Value>, k: &str| {
            a.get(k).and_then(Value::as_str).unwrap_or("").to_string()
        };
        match (*obj, f.name.as_str()) {
            (Obj::Query, "rateLimit") => Res::Obj(Obj::RateLimit),
            (Obj::Query, "repository") => {
                let (owner, name) = (s(args, "owner"), s(args, "name"));
                let full = format!("{owner}/{name}");
                // Names are case-insensitive at GitHub.
                match w.repos.iter().find(|(k, _)| k.eq_ignore_ascii_case(&full)) {
                    Some((_, r)) => Res::Obj(Obj::Repo(r)),
                    None => self.not_found(
                        f,
                        path,
                        format!("Could not resolve to a Repository with the name '{full}'."),
                    ),
                }
            }
            (Obj::RateLimit, field) => {
                let g = &w.gql;
                let reset = chrono::DateTime::from_timestamp(g.reset, 0)
                    .expect("in range")
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                leaf(match field {
                    "cost" => json!(1),
                    "limit" => json!(g.limit),
                    "remaining" => json!(g.remaining),
                    "used" => json!(g.limit - g.remaining),
                    "resetAt" => json!(reset),
                    "nodeCount" => json!(self.node_count),
                    _ => Value::Null,
                })
            }
            (Obj::Repo(r), "name") => leaf(json!(r.name)),
            (Obj::Repo(r), "owner") => Res::Obj(Obj::Owner(r)),
            (Obj::Repo(r), "pullRequest") => {
                let n = args.get("number").and_then(Value::as_u64).unwrap_or(0);
                match r.pulls.iter().find(|p| p.number == n) {
                    Some(p) => Res::Obj(Obj::Pull(r, p)),
                    None => self.not_found(
                        f,
                        path,
                        format!("Could not resolve to a PullRequest with the number of {n}."),
                    ),
                }
            }
            (Obj::Owner(r), "login") => leaf(json!(r.owner)),
            (Obj::Owner(r), "url") => leaf(json!(format!("{HTML}/{}", r.owner))),
            (Obj::Pull(_, p), "number") => leaf(json!(p.number)),
            (Obj::Pull(_, p), "title") => {
                leaf(json!(format!("{}: work from the agent", p.head_ref)))
            }
            (Obj::Pull(r, p), "url") => leaf(json!(format!(
                "{HTML}/{}/{}/pull/{}",
                r.owner, r.name, p.number
            ))),
            (Obj::Pull(r, p), "reviewThreads") => match self.page(p.threads.len(), args, f, path) {
                Some(page) => Res::Obj(Obj::Threads(r, p, page)),
                None => Res::Null,
            },
            (Obj::Threads(_, _, page) | Obj::Comments(_, _, _, page), "totalCount") => {
                leaf(json!(page.total))
            }
            (Obj::Threads(_, _, page) | Obj::Comments(_, _, _, page), "pageInfo") => {
                Res::Obj(Obj::PageInfo(page))
            }
            (Obj::Threads(r, p, page), "nodes") => Res::List(
                (page.start..page.end)
                    .map(|i| Res::Obj(Obj::Thread(r, p, &p.threads[i])))
                    .collect(),
            ),
            (Obj::Threads(r, p, page), "edges") => Res::List(
                (page.start..page.end)
                    .map(|i| Res::Obj(Obj::ThreadEdge(r, p, i)))
                    .collect(),
            ),
            (Obj::ThreadEdge(_, _, i) | Obj::CommentEdge(_, _, _, i), "cursor") => {
                leaf(json!(cursor(i)))
            }
            (Obj::ThreadEdge(r, p, i), "node") => Res::Obj(Obj::Thread(r, p, &p.threads[i])),
            (Obj::PageInfo(page), field) => {
                let (first, last) = if page.start < page.end {
                    (json!(cursor(page.start)), json!(cursor(page.end - 1)))
                } else {
                    (Value::Null, Value::Null)
                };
                leaf(match field {
                    "hasNextPage" => json!(page.end < page.total),
                    "hasPreviousPage" => json!(page.start > 0),
                    "startCursor" => first,
                    "endCursor" => last,
                    _ => Value::Null,
                })
            }
            (Obj::Thread(r, p, t), field) => {
                let head = r.branches.get(&p.head_ref).map(|b| b.sha.as_str());
                let outdated = head != Some(t.commit.as_str());
                match field {
                    "id" => leaf(json!(t.id)),
                    "isResolved" => leaf(json!(t.resolved)),
                    "isCollapsed" => leaf(json!(t.resolved)),
                    "isOutdated" => leaf(json!(outdated)),
                    "path" => leaf(json!(t.path)),
                    // GitHub has no current line for an outdated thread.
                    "line" => leaf(if outdated { Value::Null } else { json!(t.line) }),
                    "comments" => match self.page(t.comments.len(), args, f, path) {
                        Some(page) => Res::Obj(Obj::Comments(r, p, t, page)),
                        None => Res::Null,
                    },
                    _ => Res::Null,
                }
            }
            (Obj::Comments(r, p, t, page), "nodes") => Res::List(
                (page.start..page.end)
                    .map(|i| Res::Obj(Obj::Comment(r, p, &t.comments[i])))
                    .collect(),
            ),
            (Obj::Comments(r, p, t, page), "edges") => Res::List(
                (page.start..page.end)
                    .map(|i| Res::Obj(Obj::CommentEdge(r, p, t, i)))
                    .collect(),
            ),
            (Obj::CommentEdge(r, p, t, i), "node") => Res::Obj(Obj::Comment(r, p, &t.comments[i])),
            (Obj::Comment(r, p, c), field) => match field {
                "id" => leaf(json!(format!("PRRC_{}", c.id))),
                "body" => leaf(json!(c.body)),
                "url" => leaf(json!(format!(
                    "{HTML}/{}/{}/pull/{}#discussion_r{}",
                    r.owner, r.name, p.number, c.id
                ))),
                "createdAt" => leaf(json!(ts(r, c.seq))),
                "author" => Res::Obj(Obj::Actor(&c.author)),
                _ => Res::Null,
            },
            (Obj::Actor(login), "login") => leaf(json!(login)),
            (Obj::Actor(login), "url") => leaf(json!(format!("{HTML}/{login}"))),
            _ => Res::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        for i in [0, 1, 99, 100, 12345] {
            assert_eq!(uncursor(&cursor(i)), Some(i));
        }
        assert_eq!(base64(b"any carnal pleas"), "YW55IGNhcm5hbCBwbGVhcw==");
        assert_eq!(uncursor("not a cursor!"), None);
        assert_eq!(uncursor(&base64(b"other:3")), None);
    }
}
