//! The stand-in GitHub REST API: the part the monitor reads (pulls, compare,
//! check runs, combined status, reviews, rate limit) with GitHub's own
//! behaviour where it matters to a poller: `mergeable` computed lazily (the
//! first GET after a change says `null`), ETags and `304 Not Modified` that
//! do not cost rate limit, `x-ratelimit-*` headers, primary and secondary
//! (403/429 + `retry-after`) limits, and outages.
//!
//! [`router`] serves it; [`GithubSandbox`] is the shared state with the
//! control API tests and `demo` use to move a pull request through its life
//! ([`Stage`]). Response shapes follow GitHub's OpenAPI description; the
//! conformance test in the root crate's `tests/it/github.rs` holds them against
//! `../shared/specs/`.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Where the URLs inside response bodies point. Clients never follow them
/// here; they only have to be well-formed.
const API: &str = "https://github.sandbox.invalid/api/v3";
const HTML: &str = "https://github.sandbox.invalid";
const DOCS: &str = "https://docs.github.com/rest";

/// Where a pull request is in its life, for the control API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The branch is pushed; no pull request.
    Missing,
    /// PR open, CI running on the head.
    CiPending,
    /// CI finished red on the head.
    CiFailed,
    /// A new commit is pushed and CI is green on it.
    Fixed,
    /// A reviewer approved, and meanwhile the base moved: the branch is behind.
    Approved,
    /// The branch is updated with the base, CI green, mergeable.
    Mergeable,
}

/// How CI reports on a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CiResult {
    Pending,
    Success,
    Failure,
}

/// One request the sandbox answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// The request carried `If-None-Match`.
    pub conditional: bool,
}

#[derive(Debug, Clone)]
struct Commit {
    /// How many base commits this commit contains.
    base_version: u64,
    /// Commits on the branch since it left the base.
    ahead: u64,
}

#[derive(Debug, Clone)]
struct CheckRun {
    id: u64,
    name: String,
    result: CiResult,
    summary: String,
    seq: i64,
}

#[derive(Debug, Clone)]
struct Review {
    id: u64,
    user: String,
    state: &'static str,
    body: String,
    commit_id: String,
    seq: i64,
}

#[derive(Debug, Clone)]
struct Pull {
    number: u64,
    id: u64,
    head_ref: String,
    base_ref: String,
    open: bool,
    merged: bool,
    created: i64,
    updated: i64,
    reviews: Vec<Review>,
    /// `(head sha, base sha)` GitHub was asked about, and the answer once computed.
    mergeable_for: Option<String>,
    mergeable: Option<bool>,
}

#[derive(Debug, Clone)]
struct Branch {
    sha: String,
    conflict: bool,
}

#[derive(Debug)]
struct Repo {
    id: u64,
    owner: String,
    name: String,
    default_branch: String,
    base_version: u64,
    base_sha: String,
    branches: BTreeMap<String, Branch>,
    commits: HashMap<String, Commit>,
    pulls: Vec<Pull>,
    checks: HashMap<String, Vec<CheckRun>>,
    statuses: HashMap<String, Vec<(u64, String, CiResult, i64)>>,
    created: i64,
    /// Timestamps in bodies are this wall-clock origin plus a logical
    /// counter, so that an unchanged resource keeps a byte-identical body
    /// (and ETag) while dates stay near the real now.
    origin: i64,
}

#[derive(Debug)]
struct RateLimit {
    limit: u64,
    remaining: u64,
    reset: i64,
}

#[derive(Debug, Clone, Copy)]
struct SecondaryLimit {
    requests: u32,
    status: u16,
    retry_after: u64,
}

#[derive(Debug)]
struct World {
    seq: i64,
    next_id: u64,
    repos: BTreeMap<String, Repo>,
    rate: RateLimit,
    secondary: Option<SecondaryLimit>,
    outage: bool,
    log: Vec<RequestRecord>,
}

impl Default for World {
    fn default() -> Self {
        World {
            seq: 0,
            next_id: 1000,
            repos: BTreeMap::new(),
            rate: RateLimit {
                limit: 5000,
                remaining: 5000,
                reset: chrono::Utc::now().timestamp() + 3600,
            },
            secondary: None,
            outage: false,
            log: Vec::new(),
        }
    }
}

/// The sandbox's state, shared by the router and the control API.
#[derive(Clone, Default)]
pub struct GithubSandbox {
    world: Arc<Mutex<World>>,
}

impl World {
    fn tick(&mut self) -> i64 {
        self.seq += 1;
        self.seq
    }
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
    fn new_sha(&mut self, salt: &str) -> String {
        let n = self.tick();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (salt, n).hash(&mut h);
        let a = h.finish();
        (a, n).hash(&mut h);
        format!("{:016x}{:016x}{:08x}", a, h.finish(), n as u32)
    }
    fn repo(&mut self, full: &str) -> &mut Repo {
        if !self.repos.contains_key(full) {
            let (owner, name) = full.split_once('/').unwrap_or(("sandbox", full));
            let id = self.id();
            let base_sha = self.new_sha(full);
            let created = self.tick();
            let mut commits = HashMap::new();
            commits.insert(
                base_sha.clone(),
                Commit {
                    base_version: 1,
                    ahead: 0,
                },
            );
            self.repos.insert(
                full.to_string(),
                Repo {
                    id,
                    owner: owner.into(),
                    name: name.into(),
                    default_branch: "main".into(),
                    base_version: 1,
                    base_sha,
                    branches: BTreeMap::new(),
                    commits,
                    pulls: Vec::new(),
                    checks: HashMap::new(),
                    statuses: HashMap::new(),
                    created,
                    origin: chrono::Utc::now().timestamp() - 3600,
                },
            );
        }
        self.repos.get_mut(full).expect("inserted above")
    }

    fn push(&mut self, repo: &str, branch: &str, rebase: bool) -> String {
        let sha = self.new_sha(branch);
        let now = self.tick();
        let r = self.repo(repo);
        let (base_version, ahead) = match r.branches.get(branch).and_then(|b| r.commits.get(&b.sha))
        {
            Some(c) if !rebase => (c.base_version, c.ahead + 1),
            Some(c) => (r.base_version, c.ahead + 1),
            None => (r.base_version, 1),
        };
        r.commits.insert(
            sha.clone(),
            Commit {
                base_version,
                ahead,
            },
        );
        let b = r.branches.entry(branch.to_string()).or_insert(Branch {
            sha: String::new(),
            conflict: false,
        });
        b.sha = sha.clone();
        if rebase {
            b.conflict = false;
        }
        for p in r
            .pulls
            .iter_mut()
            .filter(|p| p.head_ref == branch && p.open)
        {
            p.updated = now;
        }
        sha
    }

    fn open_pr(&mut self, repo: &str, branch: &str) -> u64 {
        if !self.repo(repo).branches.contains_key(branch) {
            self.push(repo, branch, false);
        }
        if let Some(p) = self
            .repo(repo)
            .pulls
            .iter()
            .find(|p| p.head_ref == branch && p.open)
        {
            return p.number;
        }
        let id = self.id();
        let now = self.tick();
        let r = self.repo(repo);
        let number = r.pulls.len() as u64 + 1;
        let base_ref = r.default_branch.clone();
        r.pulls.push(Pull {
            number,
            id,
            head_ref: branch.into(),
            base_ref,
            open: true,
            merged: false,
            created: now,
            updated: now,
            reviews: Vec::new(),
            mergeable_for: None,
            mergeable: None,
        });
        number
    }

    fn set_ci(&mut self, repo: &str, sha: &str, result: CiResult) {
        let now = self.tick();
        let ids = [self.id(), self.id(), self.id()];
        let r = self.repo(repo);
        let failing = "2 tests failed: parser::empty_input, parser::nested_lists";
        let build = match result {
            CiResult::Failure => failing.to_string(),
            CiResult::Success => "all 214 tests passed".to_string(),
            CiResult::Pending => "running".to_string(),
        };
        r.checks.insert(
            sha.to_string(),
            vec![
                CheckRun {
                    id: ids[0],
                    name: "build".into(),
                    result,
                    summary: build,
                    seq: now,
                },
                CheckRun {
                    id: ids[1],
                    name: "clippy".into(),
                    result: if result == CiResult::Pending {
                        CiResult::Pending
                    } else {
                        CiResult::Success
                    },
                    summary: "no warnings".into(),
                    seq: now,
                },
            ],
        );
        r.statuses.insert(
            sha.to_string(),
            vec![(
                ids[2],
                "ci/lint".into(),
                if result == CiResult::Pending {
                    CiResult::Pending
                } else {
                    CiResult::Success
                },
                now,
            )],
        );
    }
}

impl GithubSandbox {
    pub fn new() -> Self {
        Self::default()
    }

    fn world(&self) -> MutexGuard<'_, World> {
        // A panicking test thread must not wedge every later request.
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the PR of `branch` in `repo` (`owner/name`) to `stage`, creating
    /// what is needed. Returns the head sha after the move.
    pub fn set_stage(&self, repo: &str, branch: &str, stage: Stage) -> String {
        let mut w = self.world();
        match stage {
            Stage::Missing => {
                if !w.repo(repo).branches.contains_key(branch) {
                    w.push(repo, branch, false);
                }
                for p in w
                    .repo(repo)
                    .pulls
                    .iter_mut()
                    .filter(|p| p.head_ref == branch)
                {
                    p.open = false;
                }
            }
            Stage::CiPending | Stage::CiFailed => {
                w.open_pr(repo, branch);
                let sha = w.repo(repo).branches[branch].sha.clone();
                let result = if stage == Stage::CiPending {
                    CiResult::Pending
                } else {
                    CiResult::Failure
                };
                w.set_ci(repo, &sha, result);
            }
            Stage::Fixed => {
                w.open_pr(repo, branch);
                let sha = w.push(repo, branch, false);
                w.set_ci(repo, &sha, CiResult::Success);
            }
            Stage::Approved => {
                w.open_pr(repo, branch);
                let sha = w.repo(repo).branches[branch].sha.clone();
                if !w.repo(repo).checks.contains_key(&sha) {
                    w.set_ci(repo, &sha, CiResult::Success);
                }
                drop(w);
                self.review(repo, branch, "reviewer", "APPROVED", "Looks good.");
                self.advance_base(repo);
                w = self.world();
            }
            Stage::Mergeable => {
                w.open_pr(repo, branch);
                let sha = w.push(repo, branch, true);
                w.set_ci(repo, &sha, CiResult::Success);
                let approved = w.repo(repo).pulls.iter().any(|p| {
                    p.head_ref == branch
                        && p.open
                        && p.reviews.iter().any(|r| r.state == "APPROVED")
                });
                if !approved {
                    drop(w);
                    self.review(repo, branch, "reviewer", "APPROVED", "Looks good.");
                    w = self.world();
                }
            }
        }
        w.repo(repo).branches[branch].sha.clone()
    }

    /// Pushes a new commit to `branch` (CI has not reported on it yet).
    pub fn push(&self, repo: &str, branch: &str) -> String {
        self.world().push(repo, branch, false)
    }

    /// Sets CI's verdict on the branch's head.
    pub fn set_ci(&self, repo: &str, branch: &str, result: CiResult) {
        let mut w = self.world();
        let sha = w
            .repo(repo)
            .branches
            .get(branch)
            .map(|b| b.sha.clone())
            .unwrap_or_default();
        w.set_ci(repo, &sha, result);
    }

    /// Opens (or finds) the PR for `branch`; returns its number.
    pub fn open_pr(&self, repo: &str, branch: &str) -> u64 {
        self.world().open_pr(repo, branch)
    }

    /// Merges the PR of `branch`.
    pub fn merge(&self, repo: &str, branch: &str) {
        let mut w = self.world();
        let now = w.tick();
        for p in w
            .repo(repo)
            .pulls
            .iter_mut()
            .filter(|p| p.head_ref == branch && p.open)
        {
            p.open = false;
            p.merged = true;
            p.updated = now;
        }
    }

    /// Adds a review (`APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`) on the head.
    pub fn review(&self, repo: &str, branch: &str, user: &str, state: &str, body: &str) {
        let mut w = self.world();
        let id = w.id();
        let now = w.tick();
        let state: &'static str = match state {
            "APPROVED" => "APPROVED",
            "CHANGES_REQUESTED" => "CHANGES_REQUESTED",
            "DISMISSED" => "DISMISSED",
            _ => "COMMENTED",
        };
        let r = w.repo(repo);
        let sha = r
            .branches
            .get(branch)
            .map(|b| b.sha.clone())
            .unwrap_or_default();
        if let Some(p) = r.pulls.iter_mut().find(|p| p.head_ref == branch && p.open) {
            p.reviews.push(Review {
                id,
                user: user.into(),
                state,
                body: body.into(),
                commit_id: sha,
                seq: now,
            });
            p.updated = now;
        }
    }

    /// Lands a commit on the default branch: every branch falls one behind.
    pub fn advance_base(&self, repo: &str) {
        let mut w = self.world();
        let sha = w.new_sha("base");
        let r = w.repo(repo);
        r.base_version += 1;
        r.base_sha = sha.clone();
        let v = r.base_version;
        r.commits.insert(
            sha,
            Commit {
                base_version: v,
                ahead: 0,
            },
        );
    }

    /// Makes `branch` conflict with the base (until it is rebased).
    pub fn set_conflict(&self, repo: &str, branch: &str, conflict: bool) {
        let mut w = self.world();
        if let Some(b) = w.repo(repo).branches.get_mut(branch) {
            b.conflict = conflict;
        }
    }

    /// While on, every API request gets `503 Service Unavailable`.
    pub fn set_outage(&self, on: bool) {
        self.world().outage = on;
    }

    /// The next `requests` API requests get a secondary rate limit
    /// (`status` 403 or 429) with `retry-after: retry_after`.
    pub fn secondary_limit(&self, requests: u32, status: u16, retry_after: u64) {
        self.world().secondary = Some(SecondaryLimit {
            requests,
            status,
            retry_after,
        });
    }

    /// Sets the primary rate limit window.
    pub fn set_rate_limit(&self, limit: u64, remaining: u64, reset_epoch: i64) {
        self.world().rate = RateLimit {
            limit,
            remaining,
            reset: reset_epoch,
        };
    }

    /// Requests left in the primary rate-limit window.
    pub fn rate_remaining(&self) -> u64 {
        self.world().rate.remaining
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.world().log.clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.world().log.clear();
    }
}

/// The GitHub API plus its control endpoints under `/_control/`. Mount it at
/// the root or under a prefix (octocrab keeps a `base_uri` path prefix).
pub fn router(state: GithubSandbox) -> Router {
    Router::new()
        .route("/_control/stage", post(control_stage))
        .route("/_control/outage", post(control_outage))
        .route("/_control/secondary_limit", post(control_secondary))
        .route("/_control/requests", get(control_requests))
        .fallback(api)
        .with_state(state)
}

#[derive(Deserialize)]
struct StageBody {
    repo: String,
    branch: String,
    stage: Stage,
}

async fn control_stage(State(s): State<GithubSandbox>, Json(b): Json<StageBody>) -> Json<Value> {
    let sha = s.set_stage(&b.repo, &b.branch, b.stage);
    Json(json!({ "ok": true, "head_sha": sha }))
}

#[derive(Deserialize)]
struct OutageBody {
    down: bool,
}

async fn control_outage(State(s): State<GithubSandbox>, Json(b): Json<OutageBody>) -> Json<Value> {
    s.set_outage(b.down);
    Json(json!({ "ok": true }))
}

#[derive(Deserialize)]
struct SecondaryBody {
    requests: u32,
    #[serde(default = "default_secondary_status")]
    status: u16,
    #[serde(default = "default_retry_after")]
    retry_after: u64,
}
fn default_secondary_status() -> u16 {
    403
}
fn default_retry_after() -> u64 {
    60
}

async fn control_secondary(
    State(s): State<GithubSandbox>,
    Json(b): Json<SecondaryBody>,
) -> Json<Value> {
    s.secondary_limit(b.requests, b.status, b.retry_after);
    Json(json!({ "ok": true }))
}

async fn control_requests(State(s): State<GithubSandbox>) -> Json<Vec<RequestRecord>> {
    Json(s.requests())
}

fn error(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({ "message": message, "documentation_url": DOCS }),
    )
}

async fn api(
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

fn rate_headers(h: &mut HeaderMap, rate: &RateLimit) {
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
    put("x-ratelimit-resource", "core".to_string());
}

fn json_response(status: StatusCode, body: &Value, extra: HeaderMap) -> Response {
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
        rate_headers(&mut h, &w.rate);
        return json_response(StatusCode::OK, &rate_limit_json(&w.rate), h);
    }
    if let Some(mut sec) = w.secondary.filter(|s| s.requests > 0) {
        sec.requests -= 1;
        w.secondary = Some(sec);
        rate_headers(&mut h, &w.rate);
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
        rate_headers(&mut h, &w.rate);
        let (status, body) = error(
            StatusCode::FORBIDDEN,
            "API rate limit exceeded for user ID 1.",
        );
        return json_response(status, &body, h);
    }
    let (status, body) = if method == Method::GET {
        route(w, uri)
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
            rate_headers(&mut h, &w.rate);
            let mut resp = StatusCode::NOT_MODIFIED.into_response();
            resp.headers_mut().extend(h);
            return resp;
        }
    }
    w.rate.remaining -= 1;
    rate_headers(&mut h, &w.rate);
    json_response(status, &body, h)
}

fn query(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn route(w: &mut World, uri: &Uri) -> (StatusCode, Value) {
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

fn ts(r: &Repo, seq: i64) -> String {
    chrono::DateTime::from_timestamp(r.origin + seq, 0)
        .expect("in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn user_json(login: &str) -> Value {
    let id = login
        .bytes()
        .fold(7u64, |a, b| a.wrapping_mul(31).wrapping_add(b as u64))
        % 1_000_000;
    let u = format!("{API}/users/{login}");
    json!({
        "login": login, "id": id, "node_id": format!("U_{id}"),
        "avatar_url": format!("{HTML}/avatars/{login}"), "gravatar_id": "",
        "url": u, "html_url": format!("{HTML}/{login}"),
        "followers_url": format!("{u}/followers"), "following_url": format!("{u}/following{{/other_user}}"),
        "gists_url": format!("{u}/gists{{/gist_id}}"), "starred_url": format!("{u}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{u}/subscriptions"), "organizations_url": format!("{u}/orgs"),
        "repos_url": format!("{u}/repos"), "events_url": format!("{u}/events{{/privacy}}"),
        "received_events_url": format!("{u}/received_events"), "type": "User", "site_admin": false
    })
}

fn repo_json(r: &Repo) -> Value {
    let full = format!("{}/{}", r.owner, r.name);
    let u = format!("{API}/repos/{full}");
    let mut v = json!({
        "id": r.id, "node_id": format!("R_{}", r.id), "name": r.name, "full_name": full,
        "owner": user_json(&r.owner), "private": false, "html_url": format!("{HTML}/{full}"),
        "description": null, "fork": false, "url": u,
        "clone_url": format!("{HTML}/{full}.git"), "git_url": format!("git://github.sandbox.invalid/{full}.git"),
        "ssh_url": format!("git@github.sandbox.invalid:{full}.git"), "svn_url": format!("{HTML}/{full}"),
        "mirror_url": null, "homepage": null, "language": "Rust", "default_branch": r.default_branch,
        "forks": 0, "forks_count": 0, "stargazers_count": 0, "watchers": 0, "watchers_count": 0,
        "size": 1, "open_issues": 0, "open_issues_count": 0,
        "has_issues": true, "has_projects": false, "has_wiki": false, "has_pages": false, "has_downloads": true,
        "archived": false, "disabled": false, "license": null,
        "pushed_at": ts(r, r.created), "created_at": ts(r, r.created), "updated_at": ts(r, r.created)
    });
    let templated = [
        ("archive_url", "/{archive_format}{/ref}"),
        ("assignees_url", "/assignees{/user}"),
        ("blobs_url", "/git/blobs{/sha}"),
        ("branches_url", "/branches{/branch}"),
        ("collaborators_url", "/collaborators{/collaborator}"),
        ("comments_url", "/comments{/number}"),
        ("commits_url", "/commits{/sha}"),
        ("compare_url", "/compare/{base}...{head}"),
        ("contents_url", "/contents/{+path}"),
        ("contributors_url", "/contributors"),
        ("deployments_url", "/deployments"),
        ("downloads_url", "/downloads"),
        ("events_url", "/events"),
        ("forks_url", "/forks"),
        ("git_commits_url", "/git/commits{/sha}"),
        ("git_refs_url", "/git/refs{/sha}"),
        ("git_tags_url", "/git/tags{/sha}"),
        ("hooks_url", "/hooks"),
        ("issue_comment_url", "/issues/comments{/number}"),
        ("issue_events_url", "/issues/events{/number}"),
        ("issues_url", "/issues{/number}"),
        ("keys_url", "/keys{/key_id}"),
        ("labels_url", "/labels{/name}"),
        ("languages_url", "/languages"),
        ("merges_url", "/merges"),
        ("milestones_url", "/milestones{/number}"),
        (
            "notifications_url",
            "/notifications{?since,all,participating}",
        ),
        ("pulls_url", "/pulls{/number}"),
        ("releases_url", "/releases{/id}"),
        ("stargazers_url", "/stargazers"),
        ("statuses_url", "/statuses/{sha}"),
        ("subscribers_url", "/subscribers"),
        ("subscription_url", "/subscription"),
        ("tags_url", "/tags"),
        ("teams_url", "/teams"),
        ("trees_url", "/git/trees{/sha}"),
    ];
    let obj = v.as_object_mut().expect("object literal");
    for (key, suffix) in templated {
        obj.insert(key.into(), Value::String(format!("{u}{suffix}")));
    }
    v
}

fn pull_json(r: &Repo, p: &Pull, full: bool) -> Value {
    let repo = format!("{}/{}", r.owner, r.name);
    let u = format!("{API}/repos/{repo}/pulls/{}", p.number);
    let issue = format!("{API}/repos/{repo}/issues/{}", p.number);
    let html = format!("{HTML}/{repo}/pull/{}", p.number);
    let head_sha = r
        .branches
        .get(&p.head_ref)
        .map(|b| b.sha.clone())
        .unwrap_or_default();
    let statuses = format!("{API}/repos/{repo}/statuses/{head_sha}");
    let end = |ref_: &str, sha: &str| json!({ "label": format!("{}:{ref_}", r.owner), "ref": ref_, "sha": sha, "user": user_json(&r.owner), "repo": repo_json(r) });
    let links = json!({
            "self": {"href": u}, "html": {"href": html}, "issue": {"href": issue},
            "comments": {"href": format!("{issue}/comments")}, "review_comments": {"href": format!("{u}/comments")},
            "review_comment": {"href": format!("{API}/repos/{repo}/pulls/comments{{/number}}")},
            "commits": {"href": format!("{u}/commits")}, "statuses": {"href": statuses}
    });
    let merged_at = p.merged.then(|| ts(r, p.updated));
    let closed_at = (!p.open).then(|| ts(r, p.updated));
    let mut v = json!({
        "url": u, "id": p.id, "node_id": format!("PR_{}", p.id), "html_url": html,
        "diff_url": format!("{html}.diff"), "patch_url": format!("{html}.patch"), "issue_url": issue,
        "commits_url": format!("{u}/commits"), "review_comments_url": format!("{u}/comments"),
        "review_comment_url": format!("{API}/repos/{repo}/pulls/comments{{/number}}"),
        "comments_url": format!("{issue}/comments"), "statuses_url": statuses,
        "number": p.number, "state": if p.open { "open" } else { "closed" }, "locked": false,
        "title": format!("{}: work from the agent", p.head_ref), "user": user_json("agent-bot"),
        "body": null, "labels": [], "milestone": null, "active_lock_reason": null,
        "created_at": ts(r, p.created), "updated_at": ts(r, p.updated), "closed_at": closed_at, "merged_at": merged_at,
        "merge_commit_sha": null, "assignee": null, "assignees": [], "requested_reviewers": [], "requested_teams": [],
        "head": end(&p.head_ref, &head_sha), "base": end(&p.base_ref, &r.base_sha),
        "author_association": "CONTRIBUTOR", "auto_merge": null, "draft": false,
        "_links": links
    });
    if full {
        let (ahead, behind) = r
            .branches
            .get(&p.head_ref)
            .and_then(|b| r.commits.get(&b.sha))
            .map(|c| (c.ahead, r.base_version - c.base_version))
            .unwrap_or((0, 0));
        let conflict = r.branches.get(&p.head_ref).is_some_and(|b| b.conflict);
        let mergeable_state = match p.mergeable {
            None => "unknown",
            Some(_) if conflict => "dirty",
            Some(_) if behind > 0 => "behind",
            Some(_) => "clean",
        };
        let obj = v.as_object_mut().expect("object literal");
        for (k, val) in [
            ("merged", json!(p.merged)),
            ("mergeable", json!(p.mergeable)),
            ("rebaseable", json!(p.mergeable)),
            ("mergeable_state", json!(mergeable_state)),
            ("merged_by", Value::Null),
            ("comments", json!(0)),
            ("review_comments", json!(0)),
            ("maintainer_can_modify", json!(false)),
            ("commits", json!(ahead)),
            ("additions", json!(ahead * 10)),
            ("deletions", json!(ahead * 2)),
            ("changed_files", json!(ahead.min(3))),
        ] {
            obj.insert(k.into(), val);
        }
    }
    v
}

fn review_json(r: &Repo, p: &Pull, rv: &Review) -> Value {
    let repo = format!("{}/{}", r.owner, r.name);
    let html = format!(
        "{HTML}/{repo}/pull/{}#pullrequestreview-{}",
        p.number, rv.id
    );
    let pr_url = format!("{API}/repos/{repo}/pulls/{}", p.number);
    json!({
        "id": rv.id, "node_id": format!("PRR_{}", rv.id), "user": user_json(&rv.user), "body": rv.body,
        "state": rv.state, "html_url": html, "pull_request_url": pr_url,
        "_links": { "html": {"href": html}, "pull_request": {"href": pr_url} },
        "submitted_at": ts(r, rv.seq), "commit_id": rv.commit_id, "author_association": "MEMBER"
    })
}

fn commit_json(r: &Repo, sha: &str, message: &str) -> Value {
    let repo = format!("{}/{}", r.owner, r.name);
    let u = format!("{API}/repos/{repo}/commits/{sha}");
    json!({
        "url": u, "sha": sha, "node_id": format!("C_{sha}"), "html_url": format!("{HTML}/{repo}/commit/{sha}"),
        "comments_url": format!("{u}/comments"),
        "commit": {
            "url": format!("{API}/repos/{repo}/git/commits/{sha}"), "message": message, "comment_count": 0,
            "author": {"name": "agent", "email": "agent@sandbox.invalid", "date": ts(r, r.created)},
            "committer": {"name": "agent", "email": "agent@sandbox.invalid", "date": ts(r, r.created)},
            "tree": {"sha": sha, "url": format!("{API}/repos/{repo}/git/trees/{sha}")}
        },
        "author": user_json("agent-bot"), "committer": user_json("agent-bot"), "parents": []
    })
}

fn compare_json(
    r: &Repo,
    base: &str,
    head: &str,
    basehead: &str,
    ahead: u64,
    behind: u64,
) -> Value {
    let repo = format!("{}/{}", r.owner, r.name);
    let status = match (ahead, behind) {
        (0, 0) => "identical",
        (_, 0) => "ahead",
        (0, _) => "behind",
        _ => "diverged",
    };
    let commits: Vec<Value> = if ahead > 0 {
        vec![commit_json(r, head, "agent work")]
    } else {
        vec![]
    };
    json!({
        "url": format!("{API}/repos/{repo}/compare/{basehead}"),
        "html_url": format!("{HTML}/{repo}/compare/{basehead}"),
        "permalink_url": format!("{HTML}/{repo}/compare/{}:{base}...{}:{head}", r.owner, r.owner),
        "diff_url": format!("{HTML}/{repo}/compare/{basehead}.diff"),
        "patch_url": format!("{HTML}/{repo}/compare/{basehead}.patch"),
        "base_commit": commit_json(r, base, "base"), "merge_base_commit": commit_json(r, base, "merge base"),
        "status": status, "ahead_by": ahead, "behind_by": behind, "total_commits": ahead,
        "commits": commits, "files": []
    })
}

fn check_run_json(r: &Repo, sha: &str, c: &CheckRun) -> Value {
    let repo = format!("{}/{}", r.owner, r.name);
    let u = format!("{API}/repos/{repo}/check-runs/{}", c.id);
    let (status, conclusion, completed) = match c.result {
        CiResult::Pending => ("in_progress", Value::Null, Value::Null),
        CiResult::Success => ("completed", json!("success"), json!(ts(r, c.seq))),
        CiResult::Failure => ("completed", json!("failure"), json!(ts(r, c.seq))),
    };
    let title = match c.result {
        CiResult::Failure => Some(format!("{} failed", c.name)),
        CiResult::Success => Some(format!("{} passed", c.name)),
        CiResult::Pending => None,
    };
    let pulls: Vec<Value> = r
        .pulls
        .iter()
        .filter(|p| p.open && r.branches.get(&p.head_ref).is_some_and(|b| b.sha == sha))
        .map(|p| {
            let rr = json!({"id": r.id, "url": format!("{API}/repos/{repo}"), "name": r.name});
            json!({
                "id": p.id, "number": p.number, "url": format!("{API}/repos/{repo}/pulls/{}", p.number),
                "head": {"ref": p.head_ref, "sha": sha, "repo": rr},
                "base": {"ref": p.base_ref, "sha": r.base_sha, "repo": rr}
            })
        })
        .collect();
    json!({
        "id": c.id, "node_id": format!("CR_{}", c.id), "head_sha": sha, "external_id": format!("ext-{}", c.id),
        "url": u, "html_url": format!("{HTML}/{repo}/runs/{}", c.id), "details_url": format!("{HTML}/{repo}/runs/{}", c.id),
        "status": status, "conclusion": conclusion, "started_at": ts(r, c.seq), "completed_at": completed,
        "output": {
            "title": title, "summary": c.summary, "text": null, "annotations_count": 0,
            "annotations_url": format!("{u}/annotations")
        },
        "name": c.name, "check_suite": {"id": c.id + 1}, "app": null, "pull_requests": pulls
    })
}

fn combined_status_json(r: &Repo, sha: &str) -> Value {
    let repo = format!("{}/{}", r.owner, r.name);
    let list = r.statuses.get(sha).cloned().unwrap_or_default();
    let word = |s: CiResult| match s {
        CiResult::Pending => "pending",
        CiResult::Success => "success",
        CiResult::Failure => "failure",
    };
    let state = if list.iter().any(|s| s.2 == CiResult::Failure) {
        "failure"
    } else if list.is_empty() || list.iter().any(|s| s.2 == CiResult::Pending) {
        "pending"
    } else {
        "success"
    };
    let statuses: Vec<Value> = list
        .iter()
        .map(|(id, context, st, seq)| {
            json!({
                "url": format!("{API}/repos/{repo}/statuses/{sha}"), "avatar_url": null, "id": id,
                "node_id": format!("S_{id}"), "state": word(*st), "description": format!("{context}: {}", word(*st)),
                "target_url": format!("{HTML}/{repo}/ci/{id}"), "context": context,
                "created_at": ts(r, *seq), "updated_at": ts(r, *seq)
            })
        })
        .collect();
    json!({
        "state": state, "statuses": statuses, "sha": sha, "total_count": list.len(),
        "repository": repo_json(r), "commit_url": format!("{API}/repos/{repo}/commits/{sha}"),
        "url": format!("{API}/repos/{repo}/commits/{sha}/status")
    })
}

fn rate_limit_json(rate: &RateLimit) -> Value {
    let core = json!({"limit": rate.limit, "remaining": rate.remaining, "reset": rate.reset, "used": rate.limit - rate.remaining});
    json!({
        "resources": {
            "core": core,
            "search": {"limit": 30, "remaining": 30, "reset": rate.reset, "used": 0},
            "graphql": {"limit": 5000, "remaining": 5000, "reset": rate.reset, "used": 0}
        },
        "rate": core
    })
}
