//! The REST routes: `GET /repos/...` (pulls, a pull's reviews and files,
//! compare, check runs, combined status) and `GET /rate_limit`, with the
//! rate-limit headers, ETags and `304`s, secondary limits and outages every
//! route shares, and the JSON shapes of GitHub's OpenAPI description.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub(super) use super::rest_shapes::ts;
use super::rest_shapes::{
    check_run_json, combined_status_json, compare_json, encode_path, pr_files, pull_json,
    rate_limit_json, review_json,
};
use super::{API, DOCS, GithubSandbox, HTML, Pull, RateLimit, Repo, RequestRecord, World};

pub(super) fn error(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({ "message": message, "documentation_url": DOCS }),
    )
}

pub(super) async fn api(
    State(s): State<GithubSandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut w = s.world();
    let path = uri.path().to_string();
    let conditional = headers.contains_key(header::IF_NONE_MATCH);
    let response = answer(&mut w, &method, &uri, &headers);
    w.log.push(RequestRecord {
        method: method.to_string(),
        path,
        status: response.status().as_u16(),
        conditional,
    });
    response
}

pub(super) fn rate_headers(h: &mut HeaderMap, rate: &RateLimit, resource: &str) {
    let mut put = |name: &'static str, v: String| {
        h.insert(name, HeaderValue::from_str(&v).expect("ascii digits"));
    };
    put("x-ratelimit-limit", rate.limit.to_string());
    put("x-ratelimit-remaining", rate.remaining.to_string());
    put(
        "x-ratelimit-used",
        (rate.limit - rate.remaining).to_string(),
    );
    put("x-ratelimit-reset", rate.reset.to_string());
    put("x-ratelimit-resource", resource.to_string());
}

pub(super) fn json_response(status: StatusCode, body: &Value, extra: HeaderMap) -> Response {
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut().extend(extra);
    resp
}

fn answer(w: &mut World, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
    if w.outage {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"message": "Service Unavailable"}),
            HeaderMap::new(),
        );
    }
    let mut h = HeaderMap::new();
    if uri.path() == "/rate_limit" {
        // GitHub does not count this endpoint against the limit.
        w.gql_window();
        rate_headers(&mut h, &w.rate, "core");
        return json_response(StatusCode::OK, &rate_limit_json(&w.rate, &w.gql), h);
    }
    if let Some(mut sec) = w.secondary.filter(|s| s.requests > 0) {
        sec.requests -= 1;
        w.secondary = Some(sec);
        rate_headers(&mut h, &w.rate, "core");
        h.insert(header::RETRY_AFTER, HeaderValue::from(sec.retry_after));
        let status = StatusCode::from_u16(sec.status).unwrap_or(StatusCode::FORBIDDEN);
        let (_, body) = error(
            status,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        );
        return json_response(status, &body, h);
    }
    let now = chrono::Utc::now().timestamp();
    if w.rate.reset <= now {
        w.rate.remaining = w.rate.limit;
        w.rate.reset = now + 3600;
    }
    if w.rate.remaining == 0 {
        rate_headers(&mut h, &w.rate, "core");
        let (status, body) = error(
            StatusCode::FORBIDDEN,
            "API rate limit exceeded for user ID 1.",
        );
        return json_response(status, &body, h);
    }
    let (status, body) = if method == Method::GET {
        route(w, uri, &mut h)
    } else {
        error(StatusCode::NOT_FOUND, "Not Found")
    };
    if status == StatusCode::OK {
        let text = serde_json::to_string(&body).expect("values serialize");
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut hasher);
        let etag = format!("W/\"{:016x}\"", hasher.finish());
        h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
        let matches = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
        if matches {
            // A conditional hit is free at GitHub: the window is not touched.
            rate_headers(&mut h, &w.rate, "core");
            let mut resp = StatusCode::NOT_MODIFIED.into_response();
            resp.headers_mut().extend(h);
            return resp;
        }
    }
    w.rate.remaining -= 1;
    rate_headers(&mut h, &w.rate, "core");
    json_response(status, &body, h)
}

fn query(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Answers a GET; `h` takes the response headers beyond the shared ones (`Link`).
fn route(w: &mut World, uri: &Uri, h: &mut HeaderMap) -> (StatusCode, Value) {
    let not_found = || error(StatusCode::NOT_FOUND, "Not Found");
    let segs: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let ["repos", owner, name, rest @ ..] = segs.as_slice() else {
        return not_found();
    };
    let full = format!("{owner}/{name}");
    if !w.repos.contains_key(&full) {
        return not_found();
    }
    let q = query(uri);
    match rest {
        ["pulls"] => {
            let state = q.get("state").map(String::as_str).unwrap_or("open");
            let head = q.get("head").cloned();
            let r = &w.repos[&full];
            let list: Vec<Value> = r
                .pulls
                .iter()
                .rev()
                .filter(|p| match state {
                    "open" => p.open,
                    "closed" => !p.open,
                    _ => true,
                })
                .filter(|p| {
                    head.as_ref()
                        .is_none_or(|h| *h == format!("{}:{}", r.owner, p.head_ref))
                })
                .map(|p| pull_json(r, p, false))
                .collect();
            (StatusCode::OK, Value::Array(list))
        }
        ["pulls", number] => {
            let Ok(n) = number.parse::<u64>() else {
                return not_found();
            };
            let r = w.repos.get_mut(&full).expect("checked");
            let Some(idx) = r.pulls.iter().position(|p| p.number == n) else {
                return not_found();
            };
            // GitHub computes mergeability in the background: the first
            // request after a change answers null and starts the job.
            let head = r.branches[&r.pulls[idx].head_ref].clone();
            let key = format!("{}:{}", head.sha, r.base_sha);
            let p = &mut r.pulls[idx];
            if p.open {
                if p.mergeable_for.as_deref() != Some(&key) {
                    p.mergeable_for = Some(key);
                    p.mergeable = None;
                } else if p.mergeable.is_none() {
                    p.mergeable = Some(!head.conflict);
                }
            }
            (StatusCode::OK, pull_json(r, &r.pulls[idx], true))
        }
        ["pulls", number, "reviews"] => {
            let Ok(n) = number.parse::<u64>() else {
                return not_found();
            };
            let r = &w.repos[&full];
            let Some(p) = r.pulls.iter().find(|p| p.number == n) else {
                return not_found();
            };
            (
                StatusCode::OK,
                Value::Array(p.reviews.iter().map(|rv| review_json(r, p, rv)).collect()),
            )
        }
        ["pulls", number, "files"] => {
            let Ok(n) = number.parse::<u64>() else {
                return not_found();
            };
            let r = &w.repos[&full];
            let Some(p) = r.pulls.iter().find(|p| p.number == n) else {
                return not_found();
            };
            list_files(r, p, uri, &q, h)
        }
        ["compare", basehead @ ..] => {
            let basehead = basehead.join("/");
            let Some((base, head)) = basehead.split_once("...") else {
                return not_found();
            };
            let r = &w.repos[&full];
            let (Some(base_sha), Some(head_sha)) = (resolve(r, base), resolve(r, head)) else {
                return not_found();
            };
            let (b, hd) = (&r.commits[&base_sha], &r.commits[&head_sha]);
            let behind = b.base_version.saturating_sub(hd.base_version);
            let ahead = hd.ahead;
            (
                StatusCode::OK,
                compare_json(r, &base_sha, &head_sha, &basehead, ahead, behind),
            )
        }
        ["commits", reference @ .., "check-runs"] => {
            let r = &w.repos[&full];
            let Some(sha) = resolve(r, &reference.join("/")) else {
                return not_found();
            };
            let runs: Vec<Value> = r
                .checks
                .get(&sha)
                .map(|v| v.iter().map(|c| check_run_json(r, &sha, c)).collect())
                .unwrap_or_default();
            (
                StatusCode::OK,
                json!({ "total_count": runs.len(), "check_runs": runs }),
            )
        }
        ["commits", reference @ .., "status"] => {
            let r = &w.repos[&full];
            let Some(sha) = resolve(r, &reference.join("/")) else {
                return not_found();
            };
            (StatusCode::OK, combined_status_json(r, &sha))
        }
        _ => not_found(),
    }
}

/// A branch name, `heads/<branch>` or a sha, to a sha.
fn resolve(r: &Repo, reference: &str) -> Option<String> {
    let name = reference.strip_prefix("heads/").unwrap_or(reference);
    if name == r.default_branch {
        return Some(r.base_sha.clone());
    }
    if let Some(b) = r.branches.get(name) {
        return Some(b.sha.clone());
    }
    r.commits
        .contains_key(reference)
        .then(|| reference.to_string())
}

fn list_files(
    r: &Repo,
    p: &Pull,
    uri: &Uri,
    q: &HashMap<String, String>,
    h: &mut HeaderMap,
) -> (StatusCode, Value) {
    // GitHub clamps `per_page` to 100 and treats junk as the default.
    let per_page = q
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(30)
        .min(100);
    let page = q
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    let repo = format!("{}/{}", r.owner, r.name);
    let head = r
        .branches
        .get(&p.head_ref)
        .map(|b| b.sha.clone())
        .unwrap_or_default();
    let files = pr_files(r, p);
    let list: Vec<Value> = files
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|f| {
            let path = encode_path(&f.filename);
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (&f.filename, &head).hash(&mut h);
            let sha = format!("{:016x}{:016x}{:08x}", h.finish(), h.finish().rotate_left(17), 0);
            let mut v = json!({
                "sha": sha, "filename": f.filename,
                "status": "added",
                "additions": f.additions, "deletions": f.deletions, "changes": f.additions + f.deletions,
                "blob_url": format!("{HTML}/{repo}/blob/{head}/{path}"),
                "raw_url": format!("{HTML}/{repo}/raw/{head}/{path}"),
                "contents_url": format!("{API}/repos/{repo}/contents/{path}?ref={head}"),
            });
            if let Some(patch) = &f.patch {
                v["patch"] = json!(patch);
            }
            if p.files.is_none() {
                v["status"] = json!("modified");
            }
            v
        })
        .collect();
    let last = files.len().div_ceil(per_page).max(1);
    let link = |n: usize, rel: &str| {
        format!(
            "<{API}{}?per_page={per_page}&page={n}>; rel=\"{rel}\"",
            uri.path()
        )
    };
    let mut links = Vec::new();
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
        links.push(link((page - 1).min(last), "prev"));
    }
    if !links.is_empty() {
        h.insert(
            header::LINK,
            HeaderValue::from_str(&links.join(", ")).expect("ascii link"),
        );
    }
    (StatusCode::OK, Value::Array(list))
}
