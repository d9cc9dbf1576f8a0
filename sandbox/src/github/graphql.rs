//! `POST /graphql`: GitHub's GraphQL endpoint for what switchyard reads with
//! it (a pull request's review threads, and the rate limit). This module owns
//! the request's path through GitHub's gates in GitHub's order (outage,
//! authentication, secondary limit, JSON body, the GraphQL budget) and the
//! request log; the query is then parsed (`graphql_query`), validated against
//! the vendored schema extract (`graphql_validate`, `graphql_schema`) and
//! resolved against the sandbox's state (`graphql_resolve`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::graphql_query::{self, QueryError};
use super::graphql_resolve::{Exec, Obj};
use super::graphql_schema::Schema;
use super::graphql_validate::{arg_values, coerce_variables, loc, paginate, validate};
use super::rest::{error, json_response, rate_headers};
use super::{GithubSandbox, RequestRecord, World};

const GQL_DOCS: &str = "https://docs.github.com/graphql";
const AUTH_DOCS: &str =
    "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql";

pub(super) async fn handle(
    State(s): State<GithubSandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut w = s.world();
    let response = answer(&mut w, &headers, &body);
    w.log.push(RequestRecord {
        method: "POST".into(),
        path: "/graphql".into(),
        status: response.status().as_u16(),
        conditional: headers.contains_key(header::IF_NONE_MATCH),
    });
    response
}

/// Like the REST side, any non-empty token is accepted: the sandbox has no
/// users to check it against, only the header's presence and form.
fn authenticated(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return false;
    };
    matches!(scheme.to_ascii_lowercase().as_str(), "bearer" | "token") && !token.trim().is_empty()
}

/// The parts of a GraphQL POST body, once it is known to be one.
struct Request {
    query: String,
    variables: Map<String, Value>,
    operation_name: Option<String>,
}

fn request(body: &[u8]) -> Option<Request> {
    let Value::Object(mut o) = serde_json::from_slice::<Value>(body).ok()? else {
        return None;
    };
    let Some(Value::String(query)) = o.remove("query") else {
        return None;
    };
    let variables = match o.remove("variables") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        // Some clients send the variables as a JSON string; GitHub reads those too.
        Some(Value::String(s)) => match serde_json::from_str(&s).ok()? {
            Value::Object(m) => m,
            _ => return None,
        },
        Some(_) => return None,
    };
    let operation_name = match o.remove("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return None,
    };
    Some(Request {
        query,
        variables,
        operation_name,
    })
}

fn errors_only(errors: Vec<Value>, h: HeaderMap) -> Response {
    json_response(StatusCode::OK, &json!({ "errors": errors }), h)
}

fn answer(w: &mut World, headers: &HeaderMap, body: &[u8]) -> Response {
    if w.outage {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"message": "Service Unavailable"}),
            HeaderMap::new(),
        );
    }
    if !authenticated(headers) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({
                "message": "This endpoint requires you to be authenticated.",
                "documentation_url": AUTH_DOCS
            }),
            HeaderMap::new(),
        );
    }
    w.gql_window();
    let mut h = HeaderMap::new();
    rate_headers(&mut h, &w.gql, "graphql");
    if let Some(mut sec) = w.secondary.filter(|s| s.requests > 0) {
        sec.requests -= 1;
        w.secondary = Some(sec);
        h.insert(header::RETRY_AFTER, HeaderValue::from(sec.retry_after));
        let status = StatusCode::from_u16(sec.status).unwrap_or(StatusCode::FORBIDDEN);
        let (_, body) = error(
            status,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        );
        return json_response(status, &body, h);
    }
    let Some(req) = request(body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"message": "Problems parsing JSON", "documentation_url": GQL_DOCS}),
            h,
        );
    };
    if w.gql.remaining == 0 {
        return errors_only(
            vec![json!({
                "type": "RATE_LIMITED",
                "message": "API rate limit already exceeded for user ID 1."
            })],
            h,
        );
    }
    let doc = match graphql_query::parse(&req.query) {
        Ok(d) => d,
        Err(e) => {
            let mut err = json!({ "message": e.message(), "locations": loc(e.pos()) });
            if let QueryError::Unsupported { what, .. } = &e {
                err["extensions"] = json!({ "code": "sandboxUnsupported", "feature": what });
            }
            return errors_only(vec![err], h);
        }
    };
    let op = match &req.operation_name {
        Some(name) => doc
            .operations
            .iter()
            .find(|o| o.name.as_deref() == Some(name)),
        None if doc.operations.len() == 1 => doc.operations.first(),
        None => {
            return errors_only(vec![json!({"message": "An operation name is required"})], h);
        }
    };
    let Some(op) = op else {
        let name = req.operation_name.unwrap_or_default();
        return errors_only(
            vec![json!({"message": format!("No operation named \"{name}\"")})],
            h,
        );
    };
    let schema = Schema::github();
    let errors = validate(schema, op);
    if !errors.is_empty() {
        return errors_only(errors, h);
    }
    let vars = match coerce_variables(op, &req.variables) {
        Ok(v) => v,
        Err(errors) => return errors_only(errors, h),
    };
    let mut nodes = 0;
    let mut errors = Vec::new();
    let root = schema.get("Query").expect("the schema has Query");
    paginate(
        schema,
        root,
        &op.selection,
        &vars,
        1,
        &mut nodes,
        &mut errors,
        &mut vec![op.path_name()],
    );
    if !errors.is_empty() {
        return errors_only(errors, h);
    }
    // `rateLimit(dryRun: true)` prices the query without charging for it.
    let dry = op.selection.iter().any(|f| {
        f.name == "rateLimit"
            && arg_values(f, root.field("rateLimit").expect("schema"), &vars)["dryRun"]
                == json!(true)
    });
    if !dry {
        w.gql.remaining -= 1;
    }
    h = HeaderMap::new();
    rate_headers(&mut h, &w.gql, "graphql");
    let mut exec = Exec {
        w: &*w,
        schema,
        vars: &vars,
        errors: Vec::new(),
        node_count: nodes,
    };
    let mut path = Vec::new();
    let data = exec.select(&Obj::Query, root, &op.selection, &mut path);
    let mut text = String::from("{\"data\":");
    match data {
        Ok(d) => d.write(&mut text),
        Err(()) => text.push_str("null"),
    }
    if !exec.errors.is_empty() {
        text.push_str(",\"errors\":");
        text.push_str(&Value::Array(exec.errors).to_string());
    }
    text.push('}');
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        text,
    )
        .into_response();
    resp.headers_mut().extend(h);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bearer_or_token_and_not_empty() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            authenticated(&h)
        };
        assert!(with("bearer ghp_x") && with("Bearer ghp_x") && with("token ghp_x"));
        assert!(!with("bearer ") && !with("Basic abc") && !with("ghp_x"));
        assert!(!authenticated(&HeaderMap::new()));
    }
}
