//! The octocrab adapter: conditional GETs with a kept ETag cache, rate-limit
//! bookkeeping from the response headers, and GitHub's JSON turned into the
//! project's [`Snapshot`]. Octocrab and its types stop here.
//!
//! Requests go through octocrab's raw `_get_with_headers`, because the
//! monitor needs what octocrab's typed calls hide: the status (304), the
//! `ETag` and the `x-ratelimit-*` / `retry-after` headers. octocrab's own
//! retry layer is off: the monitor decides when to ask again, so that a rate
//! limit or an outage pauses the loop instead of being hammered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
// octocrab speaks the `http` 1.x types; axum re-exports the same crate.
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::registry::TrackedTask;
use super::requirements::{
    CheckSnapshot, CheckState, CompareSnapshot, PullSnapshot, PullState, ReviewSnapshot,
    ReviewState, Snapshot,
};
use crate::config::Secret;

/// A kept response: sent back as `If-None-Match`, reused on `304`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedBody {
    pub url: String,
    pub etag: String,
    pub body: String,
}

/// The primary rate-limit window, as the last response reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitInfo {
    pub limit: u64,
    pub remaining: u64,
    pub reset: DateTime<Utc>,
}

/// Requests made since the client was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestStats {
    pub requests: u64,
    /// Answered `304 Not Modified` (free at GitHub).
    pub not_modified: u64,
}

/// Why a read failed; the monitor branches on the kind.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("GitHub has no {path} (404): check the task's repo and branch")]
    NotFound { path: String },
    #[error("GitHub rate limit hit on {path} ({status})")]
    RateLimited {
        path: String,
        status: u16,
        /// `retry-after`, when given (secondary limits).
        retry_after: Option<Duration>,
        /// `x-ratelimit-reset` when the primary window is exhausted.
        reset: Option<DateTime<Utc>>,
    },
    /// Transport failure or a 5xx: GitHub is down or unreachable from here.
    #[error("GitHub is unreachable ({path}): {message}")]
    Unreachable { path: String, message: String },
    #[error("GitHub answered {status} for {path}: {message}")]
    Http {
        path: String,
        status: u16,
        message: String,
    },
    #[error("GitHub sent JSON switchyard cannot read for {path}: {message}")]
    Decode { path: String, message: String },
}

/// A GitHub REST client for the monitor.
pub struct GithubClient {
    octo: octocrab::Octocrab,
    cache: Mutex<HashMap<String, CachedBody>>,
    rate: Mutex<Option<RateLimitInfo>>,
    requests: AtomicU64,
    not_modified: AtomicU64,
    authenticated: bool,
}

impl std::fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubClient")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl GithubClient {
    /// `api_base` is `https://api.github.com`, a GitHub Enterprise
    /// `https://HOST/api/v3`, or the sandbox (a path prefix is kept).
    pub fn new(api_base: &str, token: Option<&Secret>) -> anyhow::Result<Self> {
        let mut builder = octocrab::Octocrab::builder()
            .base_uri(api_base)
            .with_context(|| format!("github.api_base {api_base:?} is not a URL"))?
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
            .set_connect_timeout(Some(Duration::from_secs(5)))
            .set_read_timeout(Some(Duration::from_secs(30)));
        if let Some(t) = token {
            builder = builder.personal_token(t.expose().to_string());
        }
        let octo = builder.build().context("building the GitHub client")?;
        Ok(GithubClient {
            octo,
            cache: Mutex::new(HashMap::new()),
            rate: Mutex::new(None),
            requests: AtomicU64::new(0),
            not_modified: AtomicU64::new(0),
            authenticated: token.is_some(),
        })
    }

    /// Built with a token: GraphQL (review threads) answers only then.
    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    pub fn stats(&self) -> RequestStats {
        RequestStats {
            requests: self.requests.load(Ordering::Relaxed),
            not_modified: self.not_modified.load(Ordering::Relaxed),
        }
    }

    pub fn rate_limit(&self) -> Option<RateLimitInfo> {
        *self.rate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The ETag cache, to persist between runs (`store::save_etags`).
    pub fn cache_entries(&self) -> Vec<CachedBody> {
        let mut v: Vec<CachedBody> = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.url.cmp(&b.url));
        v
    }

    pub fn load_cache(&self, entries: impl IntoIterator<Item = CachedBody>) {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        for e in entries {
            c.insert(e.url.clone(), e);
        }
    }

    fn note_rate(&self, h: &HeaderMap) {
        if let (Some(limit), Some(remaining), Some(reset)) = (
            header_u64(h, "x-ratelimit-limit"),
            header_u64(h, "x-ratelimit-remaining"),
            header_u64(h, "x-ratelimit-reset"),
        ) && let Some(reset) = DateTime::from_timestamp(reset as i64, 0)
        {
            *self.rate.lock().unwrap_or_else(|e| e.into_inner()) = Some(RateLimitInfo {
                limit,
                remaining,
                reset,
            });
        }
    }

    /// A conditional GET of `path` (relative to the API base). Returns the
    /// body, fresh or from the cache on `304`.
    pub async fn get_text(&self, path: &str) -> Result<String, FetchError> {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .cloned();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static("2022-11-28"),
        );
        if let Some(c) = &cached
            && let Ok(v) = HeaderValue::from_str(&c.etag)
        {
            headers.insert(header::IF_NONE_MATCH, v);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let unreachable = |message: String| FetchError::Unreachable {
            path: path.to_string(),
            message,
        };
        let response = self
            .octo
            ._get_with_headers(path, Some(headers))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        let h = response.headers().clone();
        self.note_rate(&h);
        if status == StatusCode::NOT_MODIFIED {
            self.not_modified.fetch_add(1, Ordering::Relaxed);
            return match cached {
                Some(c) => Ok(c.body),
                None => Err(FetchError::Http {
                    path: path.into(),
                    status: 304,
                    message: "304 without a cached body".into(),
                }),
            };
        }
        let body = self
            .octo
            .body_to_string(response)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if status.is_success() {
            if let Some(etag) = h.get(header::ETAG).and_then(|v| v.to_str().ok()) {
                let entry = CachedBody {
                    url: path.to_string(),
                    etag: etag.to_string(),
                    body: body.clone(),
                };
                self.cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(path.to_string(), entry);
            }
            return Ok(body);
        }
        Err(failure(path, status, &h, &body))
    }

    /// A GraphQL query (`POST /graphql`): never conditional, so every call
    /// costs points of GraphQL's own budget. Returns the body of a 200.
    pub(super) async fn post_graphql(
        &self,
        payload: &serde_json::Value,
    ) -> Result<String, FetchError> {
        let path = "/graphql";
        self.requests.fetch_add(1, Ordering::Relaxed);
        let unreachable = |message: String| FetchError::Unreachable {
            path: path.to_string(),
            message,
        };
        let response = self
            .octo
            ._post(path, Some(payload))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        let h = response.headers().clone();
        let body = self
            .octo
            .body_to_string(response)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(failure(path, status, &h, &body))
        }
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T, FetchError> {
        let text = self.get_text(path).await?;
        serde_json::from_str(&text).map_err(|e| FetchError::Decode {
            path: path.into(),
            message: e.to_string(),
        })
    }

    /// Reads everything the definition of done needs for one task: the PR
    /// (found by branch until its number is known), and for an open PR the
    /// comparison with its base, check runs, combined status and reviews,
    /// and the changed files when there are `ui_paths` to check them against.
    pub async fn snapshot(
        &self,
        task: &TrackedTask,
        ui_paths: &[String],
    ) -> Result<Snapshot, FetchError> {
        let repo = format!("/repos/{}/{}", task.repo.owner, task.repo.name);
        let number = match task.record.pr {
            Some(n) => Some(n),
            None => {
                let head: String = url::form_urlencoded::byte_serialize(
                    format!("{}:{}", task.repo.owner, task.record.branch).as_bytes(),
                )
                .collect();
                let list: Vec<PullJson> = self
                    .get_json(&format!("{repo}/pulls?head={head}&state=open&per_page=5"))
                    .await?;
                match list.iter().map(|p| p.number).min() {
                    Some(n) => Some(n),
                    // A PR opened and merged between two passes is no longer
                    // open: without this the task would wait for one forever.
                    None => {
                        let closed: Vec<PullJson> = self
                            .get_json(&format!("{repo}/pulls?head={head}&state=closed&per_page=5"))
                            .await?;
                        closed
                            .into_iter()
                            .filter(|p| p.merged_at.is_some())
                            .map(|p| p.number)
                            .max()
                    }
                }
            }
        };
        let Some(number) = number else {
            return Ok(Snapshot::default());
        };
        let pr: PullJson = match self.get_json(&format!("{repo}/pulls/{number}")).await {
            Ok(p) => p,
            // A PR number that does not exist (deleted, or a wrong number in the registry): no PR.
            Err(FetchError::NotFound { .. }) => return Ok(Snapshot::default()),
            Err(e) => return Err(e),
        };
        let pr = pr.into_snapshot();
        if pr.state != PullState::Open {
            return Ok(Snapshot {
                pr: Some(pr),
                ..Snapshot::default()
            });
        }
        let sha = pr.head_sha.clone();
        let base = task
            .record
            .base
            .clone()
            .unwrap_or_else(|| pr.base_ref.clone());
        let compare: CompareJson = self
            .get_json(&format!("{repo}/compare/{base}...{sha}"))
            .await?;
        let runs: CheckRunsJson = self
            .get_json(&format!("{repo}/commits/{sha}/check-runs?per_page=100"))
            .await?;
        let status: CombinedJson = self
            .get_json(&format!("{repo}/commits/{sha}/status?per_page=100"))
            .await?;
        let reviews: Vec<ReviewJson> = self
            .get_json(&format!("{repo}/pulls/{number}/reviews?per_page=100"))
            .await?;
        let mut snapshot = snapshot_of(pr, compare, runs, status, reviews);
        if !ui_paths.is_empty() {
            snapshot.files = Some(self.changed_files(&repo, number).await?);
        }
        Ok(snapshot)
    }

    /// The paths a PR changes (`pulls/list-files`, 100 a page, GitHub lists
    /// at most 3000).
    async fn changed_files(&self, repo: &str, number: u64) -> Result<Vec<String>, FetchError> {
        let mut files = Vec::new();
        for page in 1..=30 {
            let batch: Vec<FileJson> = self
                .get_json(&format!(
                    "{repo}/pulls/{number}/files?per_page=100&page={page}"
                ))
                .await?;
            let last = batch.len() < 100;
            files.extend(batch.into_iter().map(|f| f.filename));
            if last {
                break;
            }
        }
        Ok(files)
    }
}

/// The snapshot an open PR's responses amount to: its check runs (the first
/// of each name: re-runs list newest first), its commit statuses and its
/// reviews. Pure, so it can be fed any response (the fuzz target does).
pub fn snapshot_of(
    pr: PullSnapshot,
    compare: CompareJson,
    runs: CheckRunsJson,
    status: CombinedJson,
    reviews: Vec<ReviewJson>,
) -> Snapshot {
    let mut checks: Vec<CheckSnapshot> = Vec::new();
    for run in runs.check_runs {
        // Re-runs list the same name again, newest first: the first one counts.
        if checks.iter().any(|c| c.name == run.name) {
            continue;
        }
        let state = match (run.status.as_str(), run.conclusion.as_deref()) {
            ("completed", Some("success" | "neutral" | "skipped")) => CheckState::Success,
            ("completed", _) => CheckState::Failure,
            _ => CheckState::Pending,
        };
        let summary = run.output.and_then(|o| match (o.title, o.summary) {
            (Some(t), Some(s)) if !s.is_empty() => Some(format!("{t}: {s}")),
            (t, s) => t.or(s),
        });
        checks.push(CheckSnapshot {
            name: run.name,
            state,
            summary,
            url: run.details_url.or(run.html_url),
        });
    }
    for s in status.statuses {
        let state = match s.state.as_str() {
            "success" => CheckState::Success,
            "pending" => CheckState::Pending,
            _ => CheckState::Failure,
        };
        checks.push(CheckSnapshot {
            name: s.context,
            state,
            summary: s.description,
            url: s.target_url,
        });
    }
    let reviews = reviews
        .into_iter()
        .map(|r| ReviewSnapshot {
            user: r.user.map(|u| u.login).unwrap_or_else(|| "ghost".into()),
            state: match r.state.as_str() {
                "APPROVED" => ReviewState::Approved,
                "CHANGES_REQUESTED" => ReviewState::ChangesRequested,
                "DISMISSED" => ReviewState::Dismissed,
                "PENDING" => ReviewState::Pending,
                _ => ReviewState::Commented,
            },
            body: r.body.unwrap_or_default(),
        })
        .collect();
    Snapshot {
        pr: Some(pr),
        compare: Some(CompareSnapshot {
            ahead_by: compare.ahead_by,
            behind_by: compare.behind_by,
        }),
        checks,
        reviews,
        // Threads come from GraphQL (`threads.rs`), on their own budget.
        critical_threads: None,
        files: None,
    }
}

/// What a non-success answer means to the monitor: rate limited (primary
/// or secondary), not found, GitHub down (5xx), or another HTTP error.
fn failure(path: &str, status: StatusCode, h: &HeaderMap, body: &str) -> FetchError {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.chars().take(200).collect());
    let retry_after = header_u64(h, "retry-after").map(Duration::from_secs);
    let exhausted = header_u64(h, "x-ratelimit-remaining") == Some(0);
    let reset =
        header_u64(h, "x-ratelimit-reset").and_then(|r| DateTime::from_timestamp(r as i64, 0));
    let secondary_words = message.to_ascii_lowercase().contains("rate limit");
    match status.as_u16() {
        s @ (429 | 403) if s == 429 || retry_after.is_some() || exhausted || secondary_words => {
            FetchError::RateLimited {
                path: path.into(),
                status: s,
                retry_after,
                reset: exhausted.then_some(reset).flatten(),
            }
        }
        404 => FetchError::NotFound { path: path.into() },
        s if s >= 500 => FetchError::Unreachable {
            path: path.to_string(),
            message: format!("{status}: {message}"),
        },
        s => FetchError::Http {
            path: path.into(),
            status: s,
            message,
        },
    }
}

// The least of GitHub's JSON the monitor reads (public for the fuzz
// target, which feeds these the same way).

#[derive(Deserialize)]
pub struct RefJson {
    #[serde(rename = "ref")]
    name: String,
    sha: String,
}

#[derive(Deserialize)]
pub struct PullJson {
    number: u64,
    state: String,
    #[serde(default)]
    merged: Option<bool>,
    #[serde(default)]
    merged_at: Option<String>,
    #[serde(default)]
    draft: Option<bool>,
    #[serde(default)]
    mergeable: Option<bool>,
    head: RefJson,
    base: RefJson,
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    body: Option<String>,
}

/// One entry of `pulls/list-files`.
#[derive(Deserialize)]
pub struct FileJson {
    filename: String,
}

impl PullJson {
    pub fn into_snapshot(self) -> PullSnapshot {
        let state = if self.merged == Some(true) || self.merged_at.is_some() {
            PullState::Merged
        } else if self.state == "open" {
            PullState::Open
        } else {
            PullState::Closed
        };
        PullSnapshot {
            number: self.number,
            state,
            head_sha: self.head.sha,
            base_ref: self.base.name,
            mergeable: self.mergeable,
            draft: self.draft.unwrap_or(false),
            updated_at: self.updated_at,
            html_url: self.html_url,
            body: self.body,
        }
    }
}

#[derive(Deserialize)]
pub struct CompareJson {
    ahead_by: u64,
    behind_by: u64,
}

#[derive(Deserialize)]
pub struct CheckRunsJson {
    check_runs: Vec<CheckRunJson>,
}

#[derive(Deserialize)]
pub struct CheckRunJson {
    name: String,
    status: String,
    conclusion: Option<String>,
    #[serde(default)]
    details_url: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    output: Option<CheckOutputJson>,
}

#[derive(Deserialize)]
pub struct CheckOutputJson {
    title: Option<String>,
    summary: Option<String>,
}

#[derive(Deserialize)]
pub struct CombinedJson {
    statuses: Vec<StatusJson>,
}

#[derive(Deserialize)]
pub struct StatusJson {
    context: String,
    state: String,
    description: Option<String>,
    target_url: Option<String>,
}

#[derive(Deserialize)]
pub struct ReviewJson {
    user: Option<UserJson>,
    state: String,
    body: Option<String>,
}

#[derive(Deserialize)]
pub struct UserJson {
    login: String,
}
