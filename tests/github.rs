//! GitHub: the sandbox's API held against GitHub's OpenAPI description, and
//! the monitor driven end to end by the real octocrab client over HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;
use switchyard::sandbox::github::{GithubSandbox, Stage, router};

/// Serves the sandbox on an ephemeral port, under `prefix` ("" for the root).
async fn serve(sandbox: &GithubSandbox, prefix: &str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = if prefix.is_empty() {
        router(sandbox.clone())
    } else {
        axum::Router::new().nest(prefix, router(sandbox.clone()))
    };
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

// ---------------------------------------------------------------------------
// Conformance: every response shape the sandbox serves has the schema's
// required fields with the right JSON types.

fn specs_dir() -> PathBuf {
    match std::env::var_os("SWITCHYARD_SPECS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/specs"),
    }
}

fn load_spec(name: &str) -> Option<Value> {
    let path = specs_dir().join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(serde_json::from_str(&text).expect("spec is JSON")),
        Err(_) => {
            eprintln!(
                "\n!!!!!!!! CONFORMANCE SKIPPED: {} not found (set SWITCHYARD_SPECS_DIR) !!!!!!!!\n",
                path.display()
            );
            assert!(
                std::env::var("SWITCHYARD_REQUIRE_SPECS").as_deref() != Ok("1"),
                "SWITCHYARD_REQUIRE_SPECS=1 but {} is missing",
                path.display()
            );
            None
        }
    }
}

fn resolve<'a>(spec: &'a Value, mut schema: &'a Value) -> &'a Value {
    while let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let mut node = spec;
        for part in r.trim_start_matches("#/").split('/') {
            node = &node[part];
        }
        schema = node;
    }
    schema
}

fn type_ok(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    }
}

/// Checks `v` against an OpenAPI 3.0 schema: types (with `nullable`),
/// `required`, `enum`, nested properties and items, `allOf`/`anyOf`/`oneOf`.
fn conform(spec: &Value, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let s = resolve(spec, schema);
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for sub in all {
            conform(spec, sub, v, path, errors);
        }
        return;
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            if v.is_null() && s.get("nullable") == Some(&Value::Bool(true)) {
                return;
            }
            let tries: Vec<Vec<String>> = alts
                .iter()
                .map(|alt| {
                    let mut e = Vec::new();
                    conform(spec, alt, v, path, &mut e);
                    e
                })
                .collect();
            if !tries.iter().any(Vec::is_empty) {
                errors.push(format!(
                    "{path}: matches none of {key}: {:?}",
                    tries.first()
                ));
            }
            return;
        }
    }
    if v.is_null() {
        if s.get("nullable") != Some(&Value::Bool(true)) && s.get("type").is_some() {
            errors.push(format!("{path}: null but not nullable"));
        }
        return;
    }
    if let Some(ty) = s.get("type").and_then(Value::as_str)
        && !type_ok(ty, v)
    {
        errors.push(format!("{path}: expected {ty}, got {v}"));
        return;
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array)
        && !options.contains(v)
    {
        errors.push(format!("{path}: {v} is not one of {options:?}"));
    }
    if let Some(obj) = v.as_object() {
        for req in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = req.as_str().unwrap();
            if !obj.contains_key(key) {
                errors.push(format!("{path}.{key}: required, missing"));
            }
        }
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (k, sub) in props {
                if let Some(val) = obj.get(k) {
                    conform(spec, sub, val, &format!("{path}.{k}"), errors);
                }
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            conform(spec, items, item, &format!("{path}[{i}]"), errors);
        }
    }
}

fn response_schema<'a>(spec: &'a Value, path: &str, status: &str) -> &'a Value {
    let resp = resolve(spec, &spec["paths"][path]["get"]["responses"][status]);
    let schema = &resp["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "no {status} schema for {path} in the spec"
    );
    schema
}

#[tokio::test]
async fn sandbox_responses_conform_to_the_github_spec() {
    let Some(extract) = load_spec("github-extract-checks-status-pulls-ratelimit-2022-07-18.json")
    else {
        return;
    };
    // The extract has no compare, pull list or reviews; the full description does.
    let full = load_spec("github-api.github.com-octokit-2022-07-18.json");

    let gh = GithubSandbox::new();
    gh.set_stage("acme/app", "feat/x", Stage::Approved); // PR, green CI, a review, behind the base
    gh.review(
        "acme/app",
        "feat/x",
        "bo",
        "CHANGES_REQUESTED",
        "Please add a test.",
    );
    gh.set_stage("acme/app", "feat/y", Stage::CiFailed);
    gh.set_stage("acme/app", "feat/z", Stage::CiPending);
    let addr = serve(&gh, "").await;
    let http = reqwest::Client::new();
    let get = |p: String| {
        let http = http.clone();
        async move {
            let r = http.get(format!("http://{addr}{p}")).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (_, pr) = get("/repos/acme/app/pulls/1".into()).await;
    let sha = pr["head"]["sha"].as_str().unwrap().to_string();

    let mut cases: Vec<(&Value, &str, String, &str)> = vec![
        (&extract, "/rate_limit", "/rate_limit".into(), "200"),
        (
            &extract,
            "/repos/{owner}/{repo}/pulls/{pull_number}",
            "/repos/acme/app/pulls/1".into(),
            "200",
        ),
        (
            &extract,
            "/repos/{owner}/{repo}/pulls/{pull_number}",
            "/repos/acme/app/pulls/1".into(),
            "200",
        ),
        (
            &extract,
            "/repos/{owner}/{repo}/pulls/{pull_number}",
            "/repos/acme/app/pulls/99".into(),
            "404",
        ),
    ];
    for branch in ["feat/x", "feat/y", "feat/z"] {
        cases.push((
            &extract,
            "/repos/{owner}/{repo}/commits/{ref}/check-runs",
            format!("/repos/acme/app/commits/{branch}/check-runs"),
            "200",
        ));
        cases.push((
            &extract,
            "/repos/{owner}/{repo}/commits/{ref}/status",
            format!("/repos/acme/app/commits/{branch}/status"),
            "200",
        ));
    }
    if let Some(full) = &full {
        cases.push((
            full,
            "/repos/{owner}/{repo}/pulls",
            "/repos/acme/app/pulls?head=acme:feat/x&state=open".into(),
            "200",
        ));
        cases.push((
            full,
            "/repos/{owner}/{repo}/pulls",
            "/repos/acme/app/pulls?state=all".into(),
            "200",
        ));
        cases.push((
            full,
            "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
            "/repos/acme/app/pulls/1/reviews".into(),
            "200",
        ));
        cases.push((
            full,
            "/repos/{owner}/{repo}/compare/{basehead}",
            format!("/repos/acme/app/compare/main...{sha}"),
            "200",
        ));
    }
    let mut errors = Vec::new();
    for (spec, template, url, status) in &cases {
        let (got, body) = get(url.clone()).await;
        assert_eq!(got.to_string(), *status, "{url}");
        let before = errors.len();
        conform(
            spec,
            response_schema(spec, template, status),
            &body,
            url,
            &mut errors,
        );
        // An empty list would check nothing.
        assert!(
            body.as_array().is_none_or(|a| !a.is_empty()),
            "{url} served an empty list"
        );
        if errors.len() > before {
            eprintln!("{url}: {} problem(s)", errors.len() - before);
        }
    }
    assert!(
        errors.is_empty(),
        "{} conformance problem(s):\n{}",
        errors.len(),
        errors.join("\n")
    );
    assert!(cases.len() >= 10);
}

#[test]
fn the_conformance_checker_catches_missing_and_mistyped_fields() {
    let Some(extract) = load_spec("github-extract-checks-status-pulls-ratelimit-2022-07-18.json")
    else {
        return;
    };
    let schema = response_schema(&extract, "/rate_limit", "200");
    let good = serde_json::json!({
        "resources": {"core": {"limit": 1, "remaining": 1, "reset": 1, "used": 0},
                      "search": {"limit": 1, "remaining": 1, "reset": 1, "used": 0}},
        "rate": {"limit": 1, "remaining": 1, "reset": 1, "used": 0}
    });
    let mut errors = Vec::new();
    conform(&extract, schema, &good, "rl", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let mut bad = good.clone();
    bad["rate"]["remaining"] = Value::String("1".into());
    bad["resources"].as_object_mut().unwrap().remove("search");
    conform(&extract, schema, &bad, "rl", &mut errors);
    assert_eq!(errors.len(), 2, "{errors:?}");
}
