//! The stand-in GitHub API: the part the monitor reads (pulls, compare,
//! check runs, combined status, reviews, files, rate limit) with GitHub's own
//! behaviour where it matters to a poller: `mergeable` computed lazily (the
//! first GET after a change says `null`), ETags and `304 Not Modified` that
//! do not cost rate limit, `x-ratelimit-*` headers, primary and secondary
//! (403/429 + `retry-after`) limits, and outages; and `POST /graphql` for a
//! pull request's review threads.
//!
//! This module owns the state: [`GithubSandbox`] is shared by [`router`] and
//! the Rust control methods tests and `demo` use to move a pull request
//! through its life ([`Stage`]). The routes live in submodules: `rest` (the
//! REST API) with `rest_shapes` (its JSON), `control` (`/_control/...`), `graphql` (`POST /graphql`) with
//! `graphql_syntax`, `graphql_query`, `graphql_validate`, `graphql_resolve`
//! and `graphql_schema` (the SDL extract it validates against). REST shapes
//! follow GitHub's OpenAPI description; the conformance test in the root
//! crate's `tests/it/github.rs` holds them against `../shared/specs/`.

mod control;
mod graphql;
pub mod graphql_query;
mod graphql_resolve;
pub mod graphql_schema;
pub mod graphql_syntax;
mod graphql_validate;
mod rest;
mod rest_shapes;

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

pub use control::router;

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
    /// `None` serves GitHub's `null` (a PR opened without a description).
    body: Option<String>,
    /// `None`: files made up from the commit count, as before files were settable.
    files: Option<Vec<String>>,
    threads: Vec<Thread>,
}

#[derive(Debug, Clone)]
struct Thread {
    id: String,
    resolved: bool,
    path: String,
    line: u64,
    /// The head the thread was left on: a later push makes it outdated
    /// (GitHub's rule is per line; the sandbox has no diff to look at).
    commit: String,
    comments: Vec<ThreadComment>,
}

#[derive(Debug, Clone)]
struct ThreadComment {
    id: u64,
    author: String,
    body: String,
    seq: i64,
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
    /// GraphQL's budget is separate from REST's at GitHub (points, not requests).
    gql: RateLimit,
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
            gql: RateLimit {
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
            body: None,
            files: None,
            threads: Vec::new(),
        });
        number
    }

    /// The head commit of `branch` (empty when there is no such branch).
    fn head_of(&mut self, repo: &str, branch: &str) -> String {
        self.repo(repo)
            .branches
            .get(branch)
            .map(|b| b.sha.clone())
            .unwrap_or_default()
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

    /// Sets CI's verdict on the branch's head with the words its `build`
    /// check run reports (its output summary), e.g. a failure's test names.
    pub fn set_ci_summary(&self, repo: &str, branch: &str, result: CiResult, summary: &str) {
        self.set_ci(repo, branch, result);
        let mut w = self.world();
        let sha = w.head_of(repo, branch);
        if let Some(runs) = w.repo(repo).checks.get_mut(&sha) {
            for run in runs.iter_mut().filter(|r| r.name == "build") {
                run.summary = summary.to_string();
            }
        }
    }

    /// Sets CI's verdict on the branch's head.
    pub fn set_ci(&self, repo: &str, branch: &str, result: CiResult) {
        let mut w = self.world();
        let sha = w.head_of(repo, branch);
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
        let sha = w.head_of(repo, branch);
        let r = w.repo(repo);
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

    /// Leaves a review thread with one comment by `author` on the open PR of
    /// `branch`; returns the thread's node id. Panics when there is no PR.
    pub fn add_review_thread(&self, repo: &str, branch: &str, author: &str, body: &str) -> String {
        self.try_add_review_thread(repo, branch, author, body)
            .unwrap_or_else(|e| panic!("add_review_thread: {e}"))
    }

    /// Marks a thread resolved or unresolved. Panics on an unknown id.
    pub fn resolve_review_thread(&self, id: &str, resolved: bool) {
        self.try_resolve_review_thread(id, resolved)
            .unwrap_or_else(|e| panic!("resolve_review_thread: {e}"))
    }

    /// Sets the description of the open PR of `branch` (the control
    /// endpoint also takes `null`, GitHub's "no description"). Panics when
    /// there is no PR.
    pub fn set_pr_body(&self, repo: &str, branch: &str, body: &str) {
        self.try_set_pr_body(repo, branch, Some(body))
            .unwrap_or_else(|e| panic!("set_pr_body: {e}"))
    }

    /// Sets the files the open PR of `branch` changes, as
    /// `GET .../pulls/{n}/files` lists them (images are binary: no patch).
    /// Panics when there is no PR.
    pub fn set_pr_files(&self, repo: &str, branch: &str, files: &[&str]) {
        let files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
        self.try_set_pr_files(repo, branch, files)
            .unwrap_or_else(|e| panic!("set_pr_files: {e}"))
    }

    /// What a coding agent's fix looks like from GitHub: a new commit on
    /// `branch` (`rebase`: it contains the current base, so the branch is up
    /// to date and no longer conflicts), then optionally CI's verdict on it
    /// and the conflict flag. Returns the new head sha.
    pub fn push_fix(
        &self,
        repo: &str,
        branch: &str,
        rebase: bool,
        ci: Option<CiResult>,
        conflict: Option<bool>,
    ) -> String {
        let sha = self.world().push(repo, branch, rebase);
        if let Some(ci) = ci {
            self.set_ci(repo, branch, ci);
        }
        if let Some(conflict) = conflict {
            self.set_conflict(repo, branch, conflict);
        }
        sha
    }

    /// Sets the GraphQL rate-limit window (points; each query costs 1).
    pub fn set_graphql_rate_limit(&self, limit: u64, remaining: u64, reset_epoch: i64) {
        self.world().gql = RateLimit {
            limit,
            remaining,
            reset: reset_epoch,
        };
    }

    /// Points left in the GraphQL rate-limit window.
    pub fn graphql_rate_remaining(&self) -> u64 {
        self.world().gql.remaining
    }

    fn try_add_review_thread(
        &self,
        repo: &str,
        branch: &str,
        author: &str,
        body: &str,
    ) -> Result<String, String> {
        let mut w = self.world();
        let id = w.id();
        let now = w.tick();
        let head = w.head_of(repo, branch);
        let p = w.open_pull(repo, branch)?;
        let thread = Thread {
            id: format!("PRRT_{id}"),
            resolved: false,
            path: "src/lib.rs".into(),
            line: 10 + p.threads.len() as u64,
            commit: head,
            comments: vec![ThreadComment {
                id,
                author: author.into(),
                body: body.into(),
                seq: now,
            }],
        };
        let tid = thread.id.clone();
        p.threads.push(thread);
        // A review comment bumps the PR's `updated_at` at GitHub.
        p.updated = now;
        Ok(tid)
    }

    fn try_resolve_review_thread(&self, id: &str, resolved: bool) -> Result<(), String> {
        let mut w = self.world();
        let thread = w
            .repos
            .values_mut()
            .flat_map(|r| r.pulls.iter_mut())
            .flat_map(|p| p.threads.iter_mut())
            .find(|t| t.id == id)
            .ok_or_else(|| format!("no review thread with id '{id}'"))?;
        // Resolving leaves `updated_at` alone at GitHub, as far as is known.
        thread.resolved = resolved;
        Ok(())
    }

    fn try_set_pr_body(&self, repo: &str, branch: &str, body: Option<&str>) -> Result<(), String> {
        let mut w = self.world();
        let now = w.tick();
        let p = w.open_pull(repo, branch)?;
        p.body = body.map(str::to_string);
        p.updated = now;
        Ok(())
    }

    fn try_set_pr_files(&self, repo: &str, branch: &str, files: Vec<String>) -> Result<(), String> {
        let mut w = self.world();
        let now = w.tick();
        let p = w.open_pull(repo, branch)?;
        p.files = Some(files);
        p.updated = now;
        Ok(())
    }
}

impl World {
    /// Starts a new GraphQL window once the old one has reset, as REST does.
    fn gql_window(&mut self) {
        let now = chrono::Utc::now().timestamp();
        if self.gql.reset <= now {
            self.gql.remaining = self.gql.limit;
            self.gql.reset = now + 3600;
        }
    }

    /// The open PR of `branch`, or why there is none (the helpers' panic text).
    fn open_pull(&mut self, repo: &str, branch: &str) -> Result<&mut Pull, String> {
        self.repo(repo)
            .pulls
            .iter_mut()
            .find(|p| p.head_ref == branch && p.open)
            .ok_or_else(|| {
                format!("no open pull request for branch '{branch}' in '{repo}' (open_pr or set_stage first)")
            })
    }
}
