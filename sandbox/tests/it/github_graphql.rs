//! GitHub's `POST /graphql` stand-in over real HTTP, under `/github` in the
//! full sandbox: the exact query the switchyard client sends (review threads,
//! resolved flags, pagination past 100 with `first: 100` then `after`), each
//! refusal in GitHub's words (unknown field or argument, pagination limits,
//! missing authentication, parse errors, unknown repository), a conformance
//! walk of the responses against the vendored schema extract, and the control
//! endpoints added with it (threads, PR body and files, a fake agent's push).

use serde_json::{Value, json};
use switchyard_sandbox::github::graphql_query::{self, Field};
use switchyard_sandbox::github::graphql_schema::{Kind, Schema, TypeDef};
use switchyard_sandbox::github::graphql_syntax::TypeRef;
use switchyard_sandbox::github::{CiResult, GithubSandbox, Stage};
use switchyard_sandbox::{self as sandbox, SandboxHandle, SandboxOptions};

/// The query the switchyard client sends, verbatim.
const CLIENT_QUERY: &str = r#"query($owner: String!, $name: String!, $number: Int!, $cursor: String) {
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
}"#;

const REPO: &str = "acme/app";
const BRANCH: &str = "feat/review";

async fn start() -> (SandboxHandle, GithubSandbox) {
    let sb = sandbox::start(SandboxOptions::default())
        .await
        .expect("the sandbox starts");
    let gh = sb.github();
    (sb, gh)
}

/// Posts a GraphQL request; returns the status, the raw text and the JSON.
async fn graphql_raw(sb: &SandboxHandle, auth: Option<&str>, body: &str) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/graphql", sb.github_api_base()))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

async fn graphql(sb: &SandboxHandle, query: &str, variables: Value) -> (u16, Value) {
    let body = json!({ "query": query, "variables": variables }).to_string();
    let (status, text) = graphql_raw(sb, Some("bearer ghp_sandbox"), &body).await;
    (status, serde_json::from_str(&text).expect("JSON answer"))
}

fn client_vars(cursor: Value) -> Value {
    json!({ "owner": "acme", "name": "app", "number": 1, "cursor": cursor })
}

async fn control(sb: &SandboxHandle, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/_control/{path}", sb.github_api_base()))
        .json(&body)
        .send()
        .await
        .expect("request");
    (resp.status().as_u16(), resp.json().await.expect("JSON"))
}

async fn get(sb: &SandboxHandle, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", sb.github_api_base()))
        .send()
        .await
        .expect("request")
}

/// A PR with `n` threads; every third one resolved. Returns the resolved flags.
fn pr_with_threads(gh: &GithubSandbox, n: usize) -> Vec<bool> {
    assert_eq!(gh.open_pr(REPO, BRANCH), 1);
    (0..n)
        .map(|i| {
            let author = if i % 2 == 0 { "alice" } else { "bob" };
            let id = gh.add_review_thread(REPO, BRANCH, author, &format!("comment {i}"));
            let resolved = i % 3 == 0;
            if resolved {
                gh.resolve_review_thread(&id, true);
            }
            resolved
        })
        .collect()
}

#[tokio::test]
async fn the_client_query_pages_through_150_threads_with_their_resolved_flags() {
    let (sb, gh) = start().await;
    let expected = pr_with_threads(&gh, 150);

    let (status, first) = graphql(&sb, CLIENT_QUERY, client_vars(Value::Null)).await;
    assert_eq!(status, 200, "{first}");
    assert!(first.get("errors").is_none(), "{first}");
    let threads = &first["data"]["repository"]["pullRequest"]["reviewThreads"];
    assert_eq!(threads["totalCount"], 150);
    assert_eq!(threads["pageInfo"]["hasNextPage"], true);
    let cursor = threads["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_string();
    let nodes = threads["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 100);
    let c = &nodes[1]["comments"]["nodes"][0];
    assert_eq!(c["body"], "comment 1");
    assert_eq!(c["author"]["login"], "bob");
    assert_eq!(first["data"]["rateLimit"]["cost"], 1);
    assert_eq!(first["data"]["rateLimit"]["remaining"], 4999);
    assert!(
        first["data"]["rateLimit"]["resetAt"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    let (_, second) = graphql(&sb, CLIENT_QUERY, client_vars(json!(cursor))).await;
    let threads = &second["data"]["repository"]["pullRequest"]["reviewThreads"];
    assert_eq!(threads["pageInfo"]["hasNextPage"], false);
    let rest = threads["nodes"].as_array().unwrap();
    assert_eq!(rest.len(), 50);
    assert_eq!(rest[0]["comments"]["nodes"][0]["body"], "comment 100");
    assert_eq!(second["data"]["rateLimit"]["remaining"], 4998);

    let got: Vec<bool> = nodes
        .iter()
        .chain(rest)
        .map(|n| n["isResolved"].as_bool().unwrap())
        .collect();
    assert_eq!(got, expected);

    // Each query is in the request log, and the REST rate limit reports the GraphQL budget.
    let logged = gh
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/graphql" && r.status == 200)
        .count();
    assert_eq!(logged, 2);
    let rl: Value = get(&sb, "/rate_limit").await.json().await.unwrap();
    assert_eq!(rl["resources"]["graphql"]["used"], 2);
    assert_eq!(rl["resources"]["graphql"]["remaining"], 4998);
    assert_eq!(gh.graphql_rate_remaining(), 4998);
}

#[tokio::test]
async fn fields_come_in_selection_order_under_their_aliases_and_nothing_else() {
    let (sb, gh) = start().await;
    pr_with_threads(&gh, 3);
    let q = r#"query Threads($n: Int!) {
      repository(owner: "acme", name: "app") {
        __typename
        pr: pullRequest(number: $n) {
          url number
          reviewThreads(first: 2) {
            edges { cursor node { id isResolved isOutdated path line } }
            pageInfo { startCursor endCursor hasPreviousPage hasNextPage }
          }
        }
        owner { login __typename }
      }
      rateLimit { limit used nodeCount }
    }"#;
    let body = json!({ "query": q, "variables": {"n": 1}, "operationName": "Threads" }).to_string();
    let (status, text) = graphql_raw(&sb, Some("token ghp_x"), &body).await;
    assert_eq!(status, 200, "{text}");
    let at = |k: &str| {
        text.find(&format!("\"{k}\""))
            .unwrap_or_else(|| panic!("{k} in {text}"))
    };
    assert!(at("repository") < at("rateLimit"));
    assert!(at("__typename") < at("pr") && at("pr") < at("owner"));
    assert!(at("url") < at("number") && at("edges") < at("pageInfo"));
    assert!(at("startCursor") < at("endCursor") && at("limit") < at("used"));
    assert!(
        !text.contains("\"pullRequest\""),
        "the alias replaces the name: {text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    let repo = &v["data"]["repository"];
    assert_eq!(repo["__typename"], "Repository");
    assert_eq!(
        repo["owner"],
        json!({"login": "acme", "__typename": "User"})
    );
    let pr = &repo["pr"];
    assert_eq!(pr.as_object().unwrap().len(), 3);
    let edges = pr["reviewThreads"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2);
    let node = edges[0]["node"].as_object().unwrap();
    let keys: Vec<&str> = node.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 5, "{keys:?}");
    assert_eq!(node["isResolved"], true);
    assert_eq!(node["isOutdated"], false);
    assert!(node["line"].is_number());
    let info = &pr["reviewThreads"]["pageInfo"];
    assert_eq!(info["startCursor"], edges[0]["cursor"]);
    assert_eq!(info["endCursor"], edges[1]["cursor"]);
    assert_eq!(info["hasPreviousPage"], false);
    assert_eq!(info["hasNextPage"], true);
    assert_eq!(v["data"]["rateLimit"]["nodeCount"], 2);
    assert_eq!(v["data"]["rateLimit"]["used"], 1);

    // A push makes the threads outdated: GitHub then has no line for them.
    gh.push(REPO, BRANCH);
    let (_, v) = graphql(&sb, q, json!({"n": 1})).await;
    let node = &v["data"]["repository"]["pr"]["reviewThreads"]["edges"][0]["node"];
    assert_eq!(node["isOutdated"], true);
    assert!(node["line"].is_null());
}

#[tokio::test]
async fn refusals_use_githubs_words_and_codes() {
    let (sb, gh) = start().await;
    pr_with_threads(&gh, 1);
    let cases: Vec<(&str, Value, &str, Option<&str>)> = vec![
        (
            "{ repository(owner: \"acme\", name: \"app\") { nmae } }",
            json!({}),
            "Field 'nmae' doesn't exist on type 'Repository'",
            Some("undefinedField"),
        ),
        (
            "{ repository(owner: \"acme\", name: \"app\", colour: 1) { name } }",
            json!({}),
            "Field 'repository' doesn't accept argument 'colour'",
            Some("argumentNotAccepted"),
        ),
        (
            "{ repository(owner: \"acme\") { name } }",
            json!({}),
            "Field 'repository' is missing required arguments: name",
            Some("missingRequiredArguments"),
        ),
        (
            "{ repository(owner: \"acme\", name: \"app\") { pullRequest(number: 1) { reviewThreads { totalCount } } } }",
            json!({}),
            "You must provide a `first` or `last` value to properly paginate the `reviewThreads` connection.",
            None,
        ),
        (
            "{ repository(owner: \"acme\", name: \"app\") { pullRequest(number: 1) { reviewThreads(first: 101) { totalCount } } } }",
            json!({}),
            "Requesting 101 records on the `reviewThreads` connection exceeds the `first` limit of 100 records.",
            None,
        ),
        (
            "query($n: Int!) { repository(owner: \"acme\", name: \"app\") { pullRequest(number: $n) { reviewThreads(last: $n) { totalCount } } } }",
            json!({"n": 500}),
            "Requesting 500 records on the `reviewThreads` connection exceeds the `last` limit of 100 records.",
            None,
        ),
        (
            "{ repository(owner: \"acme\", name: \"app\") { pullRequest(number: $n) { number } } }",
            json!({}),
            "Variable $n is used by anonymous query but not declared",
            Some("variableNotDefined"),
        ),
        (
            CLIENT_QUERY,
            json!({"owner": "acme", "number": 1}),
            "Variable $name of type String! was provided invalid value",
            None,
        ),
        (
            CLIENT_QUERY,
            json!({"owner": "acme", "name": "app", "number": "one"}),
            "Variable $number of type Int! was provided invalid value",
            None,
        ),
        (
            "{ repository(owner: \"acme\", name: \"app\") { pullRequest(number: \"1\") { number } } }",
            json!({}),
            "Argument 'number' on Field 'pullRequest' has an invalid value (\"1\"). Expected type 'Int!'.",
            Some("argumentLiteralsIncompatible"),
        ),
        (
            "{ repository(owner: \"acme\", name: \"app\") }",
            json!({}),
            "Field must have selections (field 'repository' returns Repository but has no selections. Did you mean 'repository { ... }'?)",
            Some("selectionMismatch"),
        ),
        (
            "{ rateLimit { cost { x } } }",
            json!({}),
            "Selections can't be made on scalars (field 'cost' returns Int but has selections [x])",
            Some("selectionMismatch"),
        ),
        (
            "query($x: String) { rateLimit { cost } }",
            json!({}),
            "Variable $x is declared by anonymous query but not used",
            Some("variableNotUsed"),
        ),
        (
            "{ repository(owner: \"acme\", name: \"app\") {\n  name\n}",
            json!({}),
            "Unexpected end of document",
            None,
        ),
        (
            "{ repository(owner: \"acme\" name: ) { name } }",
            json!({}),
            "Parse error on \")\" (RPAREN) at [1, 34]",
            None,
        ),
    ];
    let before = gh.graphql_rate_remaining();
    for (q, vars, message, code) in &cases {
        let (status, body) = graphql(&sb, q, vars.clone()).await;
        assert_eq!(status, 200, "{q}: {body}");
        assert!(body.get("data").is_none(), "{q}: {body}");
        let e = &body["errors"][0];
        assert_eq!(e["message"], *message, "{q}: {body}");
        if let Some(code) = code {
            assert_eq!(e["extensions"]["code"], *code, "{q}: {body}");
        }
        assert!(
            e["locations"][0]["line"].as_u64().unwrap() >= 1,
            "{q}: {body}"
        );
    }
    // A refused query costs nothing.
    assert_eq!(gh.graphql_rate_remaining(), before);

    // The unknown field's error in full, as GitHub shapes it.
    let (_, body) = graphql(&sb, "query Q {\n  rateLimit { cots }\n}", json!({})).await;
    assert_eq!(
        body["errors"][0],
        json!({
            "path": ["query Q", "rateLimit", "cots"],
            "extensions": {"code": "undefinedField", "typeName": "RateLimit", "fieldName": "cots"},
            "locations": [{"line": 2, "column": 15}],
            "message": "Field 'cots' doesn't exist on type 'RateLimit'"
        })
    );
    let (_, body) = graphql(&sb, "{ repository(owner: \"acme\", name: \"app\") { pullRequest(number: 1) { reviewThreads(first: 101) { totalCount } } } }", json!({})).await;
    assert_eq!(body["errors"][0]["type"], "EXCESSIVE_PAGINATION");

    // What the sandbox does not serve is said so.
    for q in [
        "mutation { resolveReviewThread(input: {threadId: \"x\"}) { clientMutationId } }",
        "{ ...F } fragment F on Query { rateLimit { cost } }",
    ] {
        let (status, body) = graphql(&sb, q, json!({})).await;
        assert_eq!(status, 200);
        let m = body["errors"][0]["message"].as_str().unwrap();
        assert!(m.contains("does not serve"), "{m}");
    }
}

#[tokio::test]
async fn unknown_repositories_and_pulls_are_null_with_not_found() {
    let (sb, gh) = start().await;
    pr_with_threads(&gh, 1);
    let vars = json!({"owner": "acme", "name": "nope", "number": 1, "cursor": null});
    let (status, body) = graphql(&sb, CLIENT_QUERY, vars).await;
    assert_eq!(status, 200);
    assert!(body["data"]["repository"].is_null(), "{body}");
    assert_eq!(body["data"]["rateLimit"]["cost"], 1);
    let e = &body["errors"][0];
    assert_eq!(e["type"], "NOT_FOUND");
    assert_eq!(e["path"], json!(["repository"]));
    assert_eq!(
        e["message"],
        "Could not resolve to a Repository with the name 'acme/nope'."
    );

    let vars = json!({"owner": "acme", "name": "app", "number": 42});
    let (_, body) = graphql(&sb, CLIENT_QUERY, vars).await;
    assert!(
        body["data"]["repository"]["pullRequest"].is_null(),
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["message"],
        "Could not resolve to a PullRequest with the number of 42."
    );
    assert_eq!(
        body["errors"][0]["path"],
        json!(["repository", "pullRequest"])
    );

    // A bad cursor nulls the non-null connection, and so its nullable parent.
    let (_, body) = graphql(&sb, CLIENT_QUERY, client_vars(json!("junk"))).await;
    assert!(
        body["data"]["repository"]["pullRequest"].is_null(),
        "{body}"
    );
    assert_eq!(body["errors"][0]["type"], "INVALID_CURSOR_ARGUMENTS");
}

#[tokio::test]
async fn authentication_json_outages_and_the_budget_are_githubs() {
    let (sb, gh) = start().await;
    pr_with_threads(&gh, 1);
    let body = json!({"query": CLIENT_QUERY, "variables": client_vars(Value::Null)}).to_string();

    for auth in [None, Some("bearer "), Some("Basic dXNlcg==")] {
        let (status, text) = graphql_raw(&sb, auth, &body).await;
        assert_eq!(status, 401, "{auth:?}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            json!({
                "message": "This endpoint requires you to be authenticated.",
                "documentation_url": "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql"
            })
        );
    }
    for bad in ["{not json", "[1]", "{\"variables\": {}}", "{\"query\": 7}"] {
        let (status, text) = graphql_raw(&sb, Some("bearer t"), bad).await;
        assert_eq!(status, 400, "{bad}");
        assert!(text.contains("Problems parsing JSON"), "{text}");
    }
    gh.set_outage(true);
    let (status, _) = graphql_raw(&sb, Some("bearer t"), &body).await;
    assert_eq!(status, 503);
    gh.set_outage(false);

    gh.set_graphql_rate_limit(5000, 1, chrono_free_reset());
    let (status, text) = graphql_raw(&sb, Some("bearer t"), &body).await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = graphql_raw(&sb, Some("bearer t"), &body).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["errors"][0]["type"], "RATE_LIMITED", "{v}");

    let statuses: Vec<u16> = gh
        .requests()
        .iter()
        .filter(|r| r.path == "/graphql")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [401, 401, 401, 400, 400, 400, 400, 503, 200, 200]);
}

/// An hour from now, without a clock crate in the tests.
fn chrono_free_reset() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    now + 3600
}

// ---------------------------------------------------------------------------
// Conformance: each value in a response has the JSON type its schema field
// declares (non-null never null, lists are arrays, scalars map to JSON).

fn conform(
    schema: &Schema,
    parent: &TypeDef,
    selection: &[Field],
    value: &Value,
    path: &str,
    errors: &mut Vec<String>,
) {
    let Some(obj) = value.as_object() else {
        errors.push(format!("{path}: not an object: {value}"));
        return;
    };
    if obj.len() != selection.len() {
        errors.push(format!(
            "{path}: {} keys for {} selected fields",
            obj.len(),
            selection.len()
        ));
    }
    for f in selection {
        let here = format!("{path}.{}", f.key());
        let Some(v) = obj.get(f.key()) else {
            errors.push(format!("{here}: missing"));
            continue;
        };
        if f.name == "__typename" {
            if !v.is_string() {
                errors.push(format!("{here}: __typename is not a string"));
            }
            continue;
        }
        let Some(def) = parent.field(&f.name) else {
            errors.push(format!("{here}: no field {} on {}", f.name, parent.name));
            continue;
        };
        conform_value(schema, &def.ty, f, v, &here, errors);
    }
}

fn conform_value(
    schema: &Schema,
    ty: &TypeRef,
    f: &Field,
    v: &Value,
    path: &str,
    errors: &mut Vec<String>,
) {
    match ty {
        TypeRef::NonNull(inner) => {
            if v.is_null() {
                errors.push(format!("{path}: null for non-null {ty}"));
            } else {
                conform_value(schema, inner, f, v, path, errors);
            }
        }
        _ if v.is_null() => {}
        TypeRef::List(inner) => match v.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    conform_value(schema, inner, f, item, &format!("{path}[{i}]"), errors);
                }
            }
            None => errors.push(format!("{path}: not an array for {ty}")),
        },
        TypeRef::Named(name) => {
            let Some(t) = schema.get(name) else {
                errors.push(format!("{path}: unknown type {name}"));
                return;
            };
            let ok = match (t.kind, name.as_str()) {
                (Kind::Scalar, "Int") => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                (Kind::Scalar, "Float") => v.is_number(),
                (Kind::Scalar, "Boolean") => v.is_boolean(),
                // ID, String and GitHub's own scalars (DateTime, URI, GitObjectID...).
                (Kind::Scalar | Kind::Enum, _) => v.is_string(),
                (Kind::Object | Kind::Interface, _) => {
                    conform(schema, t, &f.selection, v, path, errors);
                    true
                }
                _ => false,
            };
            if !ok {
                errors.push(format!("{path}: {v} is not a {name}"));
            }
        }
    }
}

fn conform_response(query: &str, data: &Value) -> Vec<String> {
    let schema = Schema::github();
    let doc = graphql_query::parse(query).expect("query parses");
    let mut errors = Vec::new();
    conform(
        schema,
        schema.get("Query").unwrap(),
        &doc.operations[0].selection,
        data,
        "data",
        &mut errors,
    );
    errors
}

const WIDE_QUERY: &str = r#"query($cursor: String) {
  rateLimit { cost limit remaining resetAt used nodeCount }
  repository(owner: "acme", name: "app") {
    name
    owner { login url }
    pullRequest(number: 1) {
      number title url
      reviewThreads(first: 3, after: $cursor) {
        totalCount
        pageInfo { hasNextPage endCursor startCursor hasPreviousPage }
        edges { cursor node { id } }
        nodes {
          id isResolved isCollapsed isOutdated path line
          comments(first: 5) {
            totalCount
            pageInfo { hasNextPage endCursor }
            nodes { id body url createdAt author { login url __typename } }
            edges { cursor node { body } }
          }
        }
      }
    }
  }
}"#;

#[tokio::test]
async fn responses_conform_to_the_schema_extract() {
    let (sb, gh) = start().await;
    pr_with_threads(&gh, 4);
    gh.push(REPO, BRANCH); // outdated threads: `line` is null, which Int allows
    gh.add_review_thread(REPO, BRANCH, "carol", "after the push");
    let mut checked = 0;
    for (query, vars) in [
        (CLIENT_QUERY, client_vars(Value::Null)),
        (WIDE_QUERY, json!({"cursor": null})),
        (WIDE_QUERY, json!({"cursor": switchyard_cursor(&sb).await})),
    ] {
        let (status, body) = graphql(&sb, query, vars).await;
        assert_eq!(status, 200);
        assert!(body.get("errors").is_none(), "{body}");
        let errors = conform_response(query, &body["data"]);
        assert!(errors.is_empty(), "{}", errors.join("\n"));
        checked += 1;
    }
    assert_eq!(checked, 3);
}

/// The end cursor of the first page of WIDE_QUERY.
async fn switchyard_cursor(sb: &SandboxHandle) -> Value {
    let (_, body) = graphql(sb, WIDE_QUERY, json!({"cursor": null})).await;
    let c =
        body["data"]["repository"]["pullRequest"]["reviewThreads"]["pageInfo"]["endCursor"].clone();
    assert!(c.is_string(), "{body}");
    c
}

#[test]
fn the_conformance_walk_catches_nulls_wrong_types_and_extra_keys() {
    let q = "{ rateLimit { cost resetAt } repository(owner: \"a\", name: \"b\") { name } }";
    let good =
        json!({"rateLimit": {"cost": 1, "resetAt": "2026-01-01T00:00:00Z"}, "repository": null});
    assert!(conform_response(q, &good).is_empty());
    let bad = json!({"rateLimit": {"cost": "1", "resetAt": null, "extra": 1}, "repository": {"name": []}});
    let errors = conform_response(q, &bad);
    assert_eq!(errors.len(), 4, "{errors:?}");
}

// ---------------------------------------------------------------------------
// Control endpoints and the REST side of screenshot evidence.

#[tokio::test]
async fn control_endpoints_add_and_resolve_threads_and_refuse_without_a_pr() {
    let (sb, gh) = start().await;
    let (status, body) = control(
        &sb,
        "review_thread",
        json!({"repo": REPO, "branch": BRANCH, "author": "alice", "body": "why?"}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no open pull request")
    );

    gh.set_stage(REPO, BRANCH, Stage::CiPending);
    let updated = |v: &Value| v["updated_at"].as_str().unwrap().to_string();
    let before: Value = get(&sb, "/repos/acme/app/pulls/1")
        .await
        .json()
        .await
        .unwrap();
    let (status, body) = control(
        &sb,
        "review_thread",
        json!({"repo": REPO, "branch": BRANCH, "author": "alice", "body": "why?"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let added: Value = get(&sb, "/repos/acme/app/pulls/1")
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(
        updated(&before),
        updated(&added),
        "a review comment bumps updated_at"
    );
    assert_eq!(added["review_comments"], 1);

    let (status, _) = control(&sb, "resolve_thread", json!({"id": id, "resolved": true})).await;
    assert_eq!(status, 200);
    let resolved: Value = get(&sb, "/repos/acme/app/pulls/1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        updated(&added),
        updated(&resolved),
        "resolving leaves updated_at"
    );
    let (_, v) = graphql(&sb, CLIENT_QUERY, client_vars(Value::Null)).await;
    let node = &v["data"]["repository"]["pullRequest"]["reviewThreads"]["nodes"][0];
    assert_eq!(node["isResolved"], true);
    assert_eq!(node["comments"]["nodes"][0]["body"], "why?");

    let (status, _) = control(
        &sb,
        "resolve_thread",
        json!({"id": "PRRT_nope", "resolved": true}),
    )
    .await;
    assert_eq!(status, 404);
}

#[test]
#[should_panic(expected = "no open pull request for branch 'nope'")]
fn the_rust_helpers_panic_without_a_pr() {
    GithubSandbox::new().add_review_thread(REPO, "nope", "alice", "x");
}

#[tokio::test]
async fn the_pr_body_and_files_are_settable_and_files_page_with_etags() {
    let (sb, gh) = start().await;
    gh.set_stage(REPO, BRANCH, Stage::CiPending);
    let pr: Value = get(&sb, "/repos/acme/app/pulls/1")
        .await
        .json()
        .await
        .unwrap();
    assert!(pr["body"].is_null());
    let (status, _) = control(
        &sb,
        "pr_body",
        json!({"repo": REPO, "branch": BRANCH, "body": "Fixes it.\n\n![after](shots/after.png)"}),
    )
    .await;
    assert_eq!(status, 200);
    let pr: Value = get(&sb, "/repos/acme/app/pulls/1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pr["body"], "Fixes it.\n\n![after](shots/after.png)");
    gh.set_pr_body(REPO, BRANCH, "Rust-side body");
    let pr: Value = get(&sb, "/repos/acme/app/pulls/1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pr["body"], "Rust-side body");
    let (status, _) = control(
        &sb,
        "pr_body",
        json!({"repo": REPO, "branch": BRANCH, "body": null}),
    )
    .await;
    assert_eq!(status, 200);
    let pr: Value = get(&sb, "/repos/acme/app/pulls/1")
        .await
        .json()
        .await
        .unwrap();
    assert!(pr["body"].is_null());

    let files = ["src/app.rs", "shots/before.png", "shots/after.png"];
    let (status, _) = control(
        &sb,
        "pr_files",
        json!({"repo": REPO, "branch": BRANCH, "files": files}),
    )
    .await;
    assert_eq!(status, 200);
    let resp = get(&sb, "/repos/acme/app/pulls/1/files").await;
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    let list: Value = resp.json().await.unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, files);
    assert!(list[0]["patch"].is_string());
    assert!(list[1].get("patch").is_none(), "a binary file has no patch");
    for key in [
        "sha",
        "status",
        "additions",
        "deletions",
        "changes",
        "blob_url",
        "raw_url",
        "contents_url",
    ] {
        assert!(list[2].get(key).is_some(), "{key}");
    }
    let pr: Value = get(&sb, "/repos/acme/app/pulls/1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pr["changed_files"], 3);

    let resp = get(&sb, "/repos/acme/app/pulls/1/files?per_page=2&page=2").await;
    let link = resp.headers()["link"].to_str().unwrap().to_string();
    assert!(
        link.contains("rel=\"first\"") && !link.contains("rel=\"next\""),
        "{link}"
    );
    let page: Value = resp.json().await.unwrap();
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["filename"], "shots/after.png");

    let remaining = gh.rate_remaining();
    let cached = reqwest::Client::new()
        .get(format!(
            "{}/repos/acme/app/pulls/1/files",
            sb.github_api_base()
        ))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status().as_u16(), 304);
    assert_eq!(gh.rate_remaining(), remaining, "a 304 is free");
    let (status, _) = control(
        &sb,
        "pr_files",
        json!({"repo": REPO, "branch": "nope", "files": []}),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_fake_agent_pushes_a_fix_and_a_pr_can_be_green_approved_current_but_conflicting() {
    let (sb, gh) = start().await;
    gh.set_stage(REPO, BRANCH, Stage::Approved); // approved, green, and behind the base
    let (status, body) = control(
        &sb,
        "push",
        json!({"repo": REPO, "branch": BRANCH, "rebase": true, "ci": "success", "conflict": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sha = body["sha"].as_str().unwrap().to_string();

    // `mergeable` is computed on the first GET after a change.
    let _: Value = get(&sb, "/repos/acme/app/pulls/1")
        .await
        .json()
        .await
        .unwrap();
    let pr: Value = get(&sb, "/repos/acme/app/pulls/1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pr["head"]["sha"], sha.as_str());
    assert_eq!(pr["mergeable"], false);
    assert_eq!(pr["mergeable_state"], "dirty");
    let cmp: Value = get(&sb, &format!("/repos/acme/app/compare/main...{sha}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cmp["behind_by"], 0, "rebased: up to date");
    let status: Value = get(&sb, &format!("/repos/acme/app/commits/{sha}/status"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "success");
    let reviews: Value = get(&sb, "/repos/acme/app/pulls/1/reviews")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        reviews
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["state"] == "APPROVED")
    );

    // The same through Rust: Stage::Mergeable, then the conflict flag.
    gh.set_stage(REPO, "feat/other", Stage::Mergeable);
    gh.set_conflict(REPO, "feat/other", true);
    for _ in 0..2 {
        let _ = get(&sb, "/repos/acme/app/pulls/2").await;
    }
    let pr: Value = get(&sb, "/repos/acme/app/pulls/2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pr["mergeable_state"], "dirty");

    // A fix without a rebase stays behind; failing CI is on the new head.
    gh.advance_base(REPO);
    let sha = gh.push_fix(REPO, BRANCH, false, Some(CiResult::Failure), None);
    let cmp: Value = get(&sb, &format!("/repos/acme/app/compare/main...{sha}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cmp["behind_by"], 1);
    let status: Value = get(&sb, &format!("/repos/acme/app/commits/{sha}/check-runs"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["check_runs"][0]["conclusion"], "failure");
}
