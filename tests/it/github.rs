//! GitHub: the sandbox's API held against GitHub's OpenAPI description, and
//! the monitor driven end to end by the real octocrab client over HTTP.

use crate::common;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;
use switchyard_sandbox::github::{GithubSandbox, Stage, router};

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
    gh.set_pr_files("acme/app", "feat/y", &["src/app.rs", "shots/after.png"]);
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
        // pulls/list-files: PR 1 the sandbox's own list, PR 2 a set one with a binary file.
        for n in [1, 2] {
            cases.push((
                full,
                "/repos/{owner}/{repo}/pulls/{pull_number}/files",
                format!("/repos/acme/app/pulls/{n}/files"),
                "200",
            ));
        }
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

// ---------------------------------------------------------------------------
// The monitor, with the real octocrab client against the sandbox.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use switchyard::github::client::GithubClient;
use switchyard::github::failures::{Failure, FailureClass};
use switchyard::github::monitor::{Clock, Monitor, MonitorOutput, MonitorSettings, PassOutcome};
use switchyard::github::registry::{TaskRecord, TaskStatus, TrackedTask};
use switchyard::github::requirements::PullSnapshot;
use switchyard::github::workers::Delivery;
use switchyard_sandbox::github::CiResult;

#[derive(Debug, Clone, PartialEq)]
enum Out {
    Status(String),
    Ready(u64),
    Retry(FailureClass, String, u32),
    Escalate(FailureClass, String),
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Out>>>);

impl Recorder {
    fn all(&self) -> Vec<Out> {
        self.0.lock().unwrap().clone()
    }
    fn statuses(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter_map(|o| {
                if let Out::Status(s) = o {
                    Some(s)
                } else {
                    None
                }
            })
            .collect()
    }
    fn count(&self, f: impl Fn(&Out) -> bool) -> usize {
        self.all().iter().filter(|o| f(o)).count()
    }
}

impl MonitorOutput for Recorder {
    async fn upsert_status(&self, _task: &TrackedTask, text: &str) -> anyhow::Result<()> {
        self.0.lock().unwrap().push(Out::Status(text.to_string()));
        Ok(())
    }
    async fn ready_for_merge(&self, _task: &TrackedTask, pr: &PullSnapshot) -> anyhow::Result<()> {
        self.0.lock().unwrap().push(Out::Ready(pr.number));
        Ok(())
    }
    async fn escalate(&self, _task: &TrackedTask, failure: &Failure) -> anyhow::Result<()> {
        self.0
            .lock()
            .unwrap()
            .push(Out::Escalate(failure.class, failure.blocker.clone()));
        Ok(())
    }
    async fn retry(
        &self,
        task: &TrackedTask,
        failure: &Failure,
        _delivery: &Delivery,
    ) -> anyhow::Result<()> {
        self.0.lock().unwrap().push(Out::Retry(
            failure.class,
            failure.context(),
            task.attempts(),
        ));
        Ok(())
    }
}

struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn advance(&self, d: Duration) {
        let mut t = self.0.lock().unwrap();
        *t += d;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn task(id: &str, branch: &str, started: DateTime<Utc>) -> TrackedTask {
    let record: TaskRecord = serde_json::from_value(serde_json::json!({
        "id": id, "agent": "codex", "description": "a task", "repo": "acme/app", "branch": branch,
        "startedAt": started.timestamp_millis(), "status": "running", "attempts": 0, "notifyOnComplete": true
    }))
    .unwrap();
    TrackedTask::new(record).unwrap()
}

struct Rig {
    gh: GithubSandbox,
    out: Recorder,
    clock: Arc<TestClock>,
    monitor: Monitor<Recorder>,
}

async fn rig(prefix: &str) -> Rig {
    let gh = GithubSandbox::new();
    let addr = serve(&gh, prefix).await;
    rig_at(gh, &format!("http://{addr}{prefix}")).await
}

async fn rig_at(gh: GithubSandbox, base: &str) -> Rig {
    let out = Recorder::default();
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let token = switchyard::config::Secret::new("ghp_sandbox");
    let client = GithubClient::new(base, Some(&token)).unwrap();
    let settings = MonitorSettings {
        jitter: 0.0,
        ..MonitorSettings::default()
    };
    let mut monitor = Monitor::new(client, out.clone(), settings).with_clock(clock.clone());
    monitor.track(task("t1", "feat/x", clock.now()));
    Rig {
        gh,
        out,
        clock,
        monitor,
    }
}

#[tokio::test]
async fn a_pr_moves_from_missing_to_mergeable_with_one_status_message_and_one_ping() {
    // Under a path prefix, as the lead mounts it: octocrab keeps the prefix.
    let mut r = rig("/github").await;
    let last = std::cell::Cell::new(0);
    let step = |r: &Rig, want: &[&str], not: &[&str]| {
        let statuses = r.out.statuses();
        assert!(
            statuses.len() > last.get(),
            "the status was not edited: {statuses:#?}"
        );
        last.set(statuses.len());
        let text = statuses.last().unwrap();
        for w in want {
            assert!(text.contains(w), "status lacks {w:?}:\n{text}");
        }
        for n in not {
            assert!(!text.contains(n), "status still says {n:?}:\n{text}");
        }
    };

    r.gh.set_stage("acme/app", "feat/x", Stage::Missing);
    assert_eq!(r.monitor.pass().await.outcome, PassOutcome::Completed);
    step(&r, &["no PR yet", "pull request: none open"], &[]);

    r.gh.set_stage("acme/app", "feat/x", Stage::CiPending);
    r.monitor.pass().await;
    step(
        &r,
        &[
            "PR #1",
            "CI: pending build, clippy, ci/lint",
            "mergeable: GitHub is still computing",
            "review: no approval yet",
        ],
        &["none open"],
    );
    // Asked again, GitHub has computed mergeability: the line goes away.
    r.monitor.pass().await;
    step(&r, &["CI: pending"], &["mergeable:"]);
    // Nothing changed: no edit.
    r.monitor.pass().await;
    assert_eq!(
        r.out.statuses().len(),
        last.get(),
        "edited without a change"
    );

    r.gh.set_stage("acme/app", "feat/x", Stage::CiFailed);
    r.monitor.pass().await;
    step(&r, &["CI: failed build"], &["pending"]);

    r.gh.set_stage("acme/app", "feat/x", Stage::Fixed);
    r.monitor.pass().await;
    r.monitor.pass().await;
    step(&r, &["review: no approval yet"], &["CI:", "mergeable:"]);

    r.gh.set_stage("acme/app", "feat/x", Stage::Approved);
    r.monitor.pass().await;
    r.monitor.pass().await;
    step(&r, &["up to date: 1 commit(s) behind"], &["review:", "CI:"]);

    r.gh.set_stage("acme/app", "feat/x", Stage::Mergeable);
    r.monitor.pass().await; // mergeable: null for the new head
    assert_eq!(
        r.out.count(|o| matches!(o, Out::Ready(_))),
        0,
        "ready before GitHub computed mergeability"
    );
    r.monitor.pass().await;
    step(&r, &["Ready for merge"], &["Missing"]);
    r.monitor.pass().await;
    r.monitor.pass().await;

    assert_eq!(
        r.out.count(|o| matches!(o, Out::Ready(1))),
        1,
        "{:#?}",
        r.out.all()
    );
    assert_eq!(r.out.count(|o| matches!(o, Out::Escalate(..))), 0);
    // The CI failure and the behind branch went back to the agent, with only their context.
    let retries: Vec<Out> = r
        .out
        .all()
        .into_iter()
        .filter(|o| matches!(o, Out::Retry(..)))
        .collect();
    assert!(
        matches!(&retries[0], Out::Retry(FailureClass::CiFailed, ctx, 1) if ctx.contains("parser::nested_lists") && !ctx.contains("clippy")),
        "{retries:#?}"
    );
    assert!(
        matches!(&retries[1], Out::Retry(FailureClass::Behind, ctx, 2) if ctx.contains("Rebase on main")),
        "{retries:#?}"
    );
    assert_eq!(retries.len(), 2);
    // The terminal contract of seed 001.
    let t = &r.monitor.tasks()[0];
    assert_eq!(t.record.status, TaskStatus::Done);
    assert_eq!(t.record.pr, Some(1));
    assert!(t.record.completed_at.is_some());
    let checks = t.record.checks.as_ref().unwrap();
    assert_eq!(
        (checks.pr_created, checks.ci_passed, checks.reviews_passed),
        (Some(true), Some(true), Some(true))
    );
    assert_eq!(
        t.record.note.as_deref(),
        Some("All checks passed. Ready to merge.")
    );
    // Every request went under the prefix and was understood.
    assert!(
        r.gh.requests()
            .iter()
            .all(|q| q.status == 200 || q.status == 304),
        "{:#?}",
        r.gh.requests()
    );

    // The human merges: the task is finished and costs no more requests.
    r.gh.merge("acme/app", "feat/x");
    r.monitor.pass().await;
    assert!(r.out.statuses().last().unwrap().contains("merged"));
    assert_eq!(r.monitor.pass().await.requests, 0);
}

#[tokio::test]
async fn ci_failing_three_times_is_retried_twice_then_escalated() {
    let mut r = rig("").await;
    r.gh.set_stage("acme/app", "feat/x", Stage::CiFailed);
    r.monitor.pass().await;
    r.monitor.pass().await; // the same failure again is not a new attempt
    for _ in 0..2 {
        r.gh.push("acme/app", "feat/x");
        r.gh.set_ci("acme/app", "feat/x", CiResult::Failure);
        r.monitor.pass().await;
    }
    let all = r.out.all();
    let retries: Vec<u32> = all
        .iter()
        .filter_map(|o| {
            if let Out::Retry(FailureClass::CiFailed, _, n) = o {
                Some(*n)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(retries, vec![1, 2], "{all:#?}");
    let escalations: Vec<&Out> = all
        .iter()
        .filter(|o| matches!(o, Out::Escalate(..)))
        .collect();
    assert_eq!(escalations.len(), 1, "{all:#?}");
    assert!(
        matches!(escalations[0], Out::Escalate(FailureClass::CiFailed, b) if b.starts_with("CI failed on PR #1") && b.contains("build"))
    );
    assert!(
        r.out
            .statuses()
            .last()
            .unwrap()
            .contains("Escalated to a human: CI failed on PR #1")
    );
    assert_eq!(r.monitor.tasks()[0].record.status, TaskStatus::Escalated);
    // Escalated is terminal: no more requests, no more messages.
    let n = r.out.all().len();
    assert_eq!(r.monitor.pass().await.requests, 0);
    assert_eq!(r.out.all().len(), n);
}

#[tokio::test]
async fn review_threads_are_read_when_the_pr_moves_or_the_interval_passes_not_every_pass() {
    let gh = GithubSandbox::new();
    let addr = serve(&gh, "").await;
    let out = Recorder::default();
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let token = switchyard::config::Secret::new("ghp_sandbox");
    let client = GithubClient::new(&format!("http://{addr}"), Some(&token)).unwrap();
    let settings = MonitorSettings {
        jitter: 0.0,
        critical_markers: vec!["critical".into()],
        threads_interval: Duration::from_secs(1800),
        ..MonitorSettings::default()
    };
    let mut monitor = Monitor::new(client, out.clone(), settings).with_clock(clock.clone());
    monitor.track(task("t1", "feat/x", clock.now()));
    gh.set_stage("acme/app", "feat/x", Stage::Mergeable);
    let id = gh.add_review_thread(
        "acme/app",
        "feat/x",
        "ana",
        "critical: the lease is never renewed",
    );
    let graphql = |gh: &GithubSandbox| {
        gh.requests()
            .iter()
            .filter(|q| q.path == "/graphql")
            .count()
    };
    for _ in 0..5 {
        monitor.pass().await;
    }
    assert_eq!(graphql(&gh), 1, "an unchanged PR's threads are read once");
    let text = out.statuses().last().cloned().unwrap();
    assert!(text.contains("1 unresolved critical thread(s)"), "{text}");
    assert!(out.all().iter().all(|o| !matches!(o, Out::Ready(_))));

    // Resolving a thread does not move the PR: seen once the interval passes.
    gh.resolve_review_thread(&id, true);
    monitor.pass().await;
    assert_eq!(graphql(&gh), 1);
    clock.advance(Duration::from_secs(1800));
    monitor.pass().await;
    assert_eq!(graphql(&gh), 2);
    assert!(
        out.all().iter().any(|o| matches!(o, Out::Ready(_))),
        "{:#?}",
        out.all()
    );

    // A push moves the PR: read again on the next pass.
    gh.push("acme/app", "feat/x");
    monitor.pass().await;
    assert_eq!(graphql(&gh), 3);
}

#[tokio::test]
async fn unchanged_resources_are_304s_and_cost_no_rate_limit() {
    let mut r = rig("").await;
    r.gh.set_stage("acme/app", "feat/x", Stage::Fixed);
    let first = r.monitor.pass().await;
    assert_eq!(
        (first.requests, first.not_modified),
        (6, 0),
        "list, pull, compare, check runs, status, reviews"
    );
    r.monitor.pass().await; // mergeable computed: the pull changes once
    let before = r.gh.rate_remaining();
    r.gh.clear_requests();
    let quiet = r.monitor.pass().await;
    assert_eq!(quiet.requests, 5, "the PR number is known now: no list");
    assert_eq!(quiet.not_modified, quiet.requests, "{:#?}", r.gh.requests());
    assert_eq!(r.gh.rate_remaining(), before, "304s must not count");
    assert!(
        r.gh.requests()
            .iter()
            .all(|q| q.conditional && q.status == 304)
    );
    assert_eq!(r.monitor.client().rate_limit().unwrap().remaining, before);
}

#[tokio::test]
async fn a_secondary_rate_limit_pauses_the_loop() {
    for status in [429u16, 403] {
        let mut r = rig("").await;
        r.gh.set_stage("acme/app", "feat/x", Stage::CiPending);
        r.gh.secondary_limit(1, status, 120);
        let now = r.clock.now();
        let report = r.monitor.pass().await;
        let PassOutcome::Paused { until, .. } = report.outcome.clone() else {
            panic!("{report:?}")
        };
        assert_eq!(until, now + Duration::from_secs(120));
        assert_eq!(report.requests, 1, "stopped at the first limited request");
        assert_eq!(r.monitor.next_delay(&report), Duration::from_secs(121));
        // Before the pause ends: not one request.
        r.clock.advance(Duration::from_secs(119));
        let held = r.monitor.pass().await;
        assert!(matches!(held.outcome, PassOutcome::Paused { .. }));
        assert_eq!(held.requests, 0);
        assert_eq!(r.gh.requests().len(), 1);
        assert!(
            r.out.all().is_empty(),
            "a rate limit is not news: {:#?}",
            r.out.all()
        );
        r.clock.advance(Duration::from_secs(2));
        assert_eq!(r.monitor.pass().await.outcome, PassOutcome::Completed);
        assert_eq!(r.out.statuses().len(), 1);
    }
}

#[tokio::test]
async fn an_exhausted_primary_window_pauses_until_its_reset() {
    let mut r = rig("").await;
    r.gh.set_stage("acme/app", "feat/x", Stage::CiPending);
    let reset = (r.clock.now() + Duration::from_secs(900)).timestamp();
    r.gh.set_rate_limit(5000, 0, reset);
    let report = r.monitor.pass().await;
    assert_eq!(
        report.outcome,
        PassOutcome::Paused {
            until: DateTime::from_timestamp(reset, 0).unwrap(),
            reason: "403 on /repos/acme/app/pulls?head=acme%3Afeat%2Fx&state=open&per_page=5"
                .into()
        }
    );
    // Near the end of a window the loop stops by itself, before GitHub refuses.
    let mut r = rig("").await;
    r.gh.set_stage("acme/app", "feat/x", Stage::CiPending);
    r.monitor.track(task("t2", "feat/y", r.clock.now()));
    r.gh.set_stage("acme/app", "feat/y", Stage::CiPending);
    r.gh.set_rate_limit(5000, 25, reset);
    let report = r.monitor.pass().await;
    assert!(
        matches!(report.outcome, PassOutcome::Paused { .. }),
        "{report:?}"
    );
    assert_eq!(
        report.requests, 6,
        "one task read, then the reserve stops the pass"
    );
    assert!(r.gh.requests().iter().all(|q| q.status == 200));
}

#[tokio::test]
async fn github_unreachable_backs_off_and_recovers_without_false_alarms() {
    let mut r = rig("").await;
    r.gh.set_stage("acme/app", "feat/x", Stage::CiPending);
    r.monitor.pass().await;
    r.monitor.pass().await;
    let said = r.out.all();
    r.gh.set_outage(true);
    let mut delays = Vec::new();
    for _ in 0..4 {
        r.clock.advance(Duration::from_secs(3600 * 3)); // long enough for any deadline
        let report = r.monitor.pass().await;
        assert!(
            matches!(report.outcome, PassOutcome::Unreachable { .. }),
            "{report:?}"
        );
        assert_eq!(report.requests, 1, "one failed request ends the pass");
        delays.push(r.monitor.next_delay(&report).as_secs());
    }
    assert_eq!(delays, vec![30, 60, 120, 240]);
    assert_eq!(r.out.all(), said, "nothing said while GitHub was down");
    r.gh.set_outage(false);
    r.gh.set_ci("acme/app", "feat/x", CiResult::Success);
    let report = r.monitor.pass().await;
    assert_eq!(report.outcome, PassOutcome::Completed);
    assert_eq!(r.monitor.next_delay(&report), Duration::from_secs(600));
    let after: Vec<Out> = r.out.all()[said.len()..].to_vec();
    assert!(
        after.iter().all(|o| matches!(o, Out::Status(_))),
        "no retry, no escalation: {after:#?}"
    );
    assert!(after.iter().any(|o| matches!(o, Out::Status(s) if s.contains("review: no approval yet") && !s.contains("CI:"))));

    // A port nobody listens on: the same, from the transport.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut r = rig_at(GithubSandbox::new(), &format!("http://{dead}")).await;
    let report = r.monitor.pass().await;
    assert!(
        matches!(report.outcome, PassOutcome::Unreachable { .. }),
        "{report:?}"
    );
    assert!(r.out.all().is_empty());
}

#[tokio::test]
async fn the_run_loop_stops_on_shutdown_and_keeps_what_it_learned() {
    let r = rig("").await;
    r.gh.set_stage("acme/app", "feat/x", Stage::CiPending);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let out = r.out.clone();
    let handle = tokio::spawn(r.monitor.run(async move {
        let _ = rx.await;
    }));
    while out.statuses().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tx.send(()).unwrap();
    let monitor = handle.await.unwrap();
    assert_eq!(monitor.tasks()[0].record.pr, Some(1));
}

// ---------------------------------------------------------------------------
// Storage.

crate::on_both_backends!(tasks_state_and_etags_survive_a_restart);

async fn tasks_state_and_etags_survive_a_restart(db: crate::common::TestDb) {
    use switchyard::github::{monitor::TaskState, store};
    let dir = tempfile::tempdir().unwrap();
    let pool = db.open().await.pool().clone();

    let reg = dir.path().join("active-tasks.json");
    std::fs::write(
        &reg,
        r#"[{"id": "a", "tmuxSession": "s", "agent": "codex", "repo": "acme/app", "branch": "feat/a", "startedAt": 1, "status": "running", "attempts": 0},
            {"id": "b", "agent": "claude", "repo": "acme/app", "branch": "feat/b", "status": "done", "pr": 3, "checks": {"prCreated": true, "geminiReviewPassed": true}}]"#,
    )
    .unwrap();
    assert_eq!(store::import_file(&pool, &reg, 5).await.unwrap(), 2);
    assert_eq!(
        store::list_tasks(&pool, Some("codex")).await.unwrap().len(),
        1
    );
    let out = dir.path().join("export.json");
    assert_eq!(store::export_file(&pool, &out).await.unwrap(), 2);
    let a: Value = serde_json::from_str(&std::fs::read_to_string(&reg).unwrap()).unwrap();
    let b: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(a, b, "import then export gives the file back");

    let state = TaskState {
        status_text: Some("x".into()),
        ready_for: Some("abc".into()),
        ..TaskState::default()
    };
    store::save_state(&pool, "a", &state, 6).await.unwrap();
    assert_eq!(store::load_states(&pool).await.unwrap()["a"], state);

    // A monitor restarted with its ETags asks only conditionally.
    let mut r = rig("").await;
    r.gh.set_stage("acme/app", "feat/x", Stage::Fixed);
    r.monitor.pass().await;
    r.monitor.pass().await;
    store::save_etags(&pool, &r.monitor.client().cache_entries(), 7)
        .await
        .unwrap();
    let entries = store::load_etags(&pool).await.unwrap();
    assert_eq!(entries, r.monitor.client().cache_entries());
    assert_eq!(store::prune_etags(&pool, 7).await.unwrap(), 0);
    assert!(store::remove_task(&pool, "b").await.unwrap());
}

// ---------------------------------------------------------------------------
// The monitor inside a real agent process: registry import, the status
// message edited in place in #sub-agent-results, the ready ping on Telegram.

const SUB_AGENT_RESULTS: u64 = 900000000000000003;

/// The task's status message(s) in #sub-agent-results (title "GitHub · <id>").
fn status_messages(
    state: &switchyard_sandbox::SandboxState,
    task: &str,
) -> Vec<switchyard_sandbox::DiscordMessage> {
    let title = format!("GitHub · {task}");
    state
        .discord_messages(SUB_AGENT_RESULTS)
        .iter()
        .filter(|m| {
            m.embeds
                .iter()
                .any(|e| e["title"].as_str() == Some(title.as_str()))
        })
        .cloned()
        .collect()
}

/// Waits until the task's status message says all of `want` and none of `not`; returns its text.
async fn wait_status(
    sandbox: &switchyard_sandbox::SandboxHandle,
    want: &[&str],
    not: &[&str],
) -> String {
    let what = format!("a status with {want:?} and without {not:?}");
    common::wait_for(Duration::from_secs(30), &what, || {
        let state = sandbox.state();
        let m = status_messages(&state, "t1");
        let text = m.last()?.text();
        (want.iter().all(|w| text.contains(w)) && !not.iter().any(|n| text.contains(n)))
            .then_some(text)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_process_keeps_one_status_message_and_pings_once_when_ready() {
    let mut opts = common::sandbox_options();
    common::fast_discord_limits(&mut opts);
    opts.request_log = 4096;
    let mut fleet = common::Fleet::with_sandbox(&["alpha"], "", opts).await;
    // The sandbox's address is known only now: write the config again with it.
    let extra = format!(
        "[github]\napi_base = \"{}\"\ntoken_env = \"TEST_GITHUB_TOKEN\"\ninterval = \"1s\"\n",
        fleet.sandbox.github_api_base()
    );
    std::fs::write(&fleet.config_file, common::fleet_toml(&["alpha"], &extra)).unwrap();
    let gh = fleet.sandbox.github();
    gh.set_stage("acme/app", "feat/x", Stage::Missing);
    fleet.spawn_agent("alpha").await;

    // Imported while the agent runs: the next pass picks it up.
    let registry = fleet.dir.path().join("active-tasks.json");
    std::fs::write(
        &registry,
        serde_json::json!([{
            "id": "t1", "agent": "alpha", "description": "nested lists in the parser",
            "repo": "acme/app", "branch": "feat/x", "startedAt": Utc::now().timestamp_millis(),
            "status": "running", "attempts": 0, "notifyOnComplete": true
        }])
        .to_string(),
    )
    .unwrap();
    let out = fleet
        .command()
        .args(["registry", "import"])
        .arg(&registry)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let limit = Duration::from_secs(30);
    wait_status(
        &fleet.sandbox,
        &["no PR yet", "pull request: none open"],
        &[],
    )
    .await;
    gh.set_stage("acme/app", "feat/x", Stage::CiPending);
    wait_status(&fleet.sandbox, &["PR #1", "CI: pending"], &["none open"]).await;
    gh.set_stage("acme/app", "feat/x", Stage::CiFailed);
    wait_status(&fleet.sandbox, &["CI: failed build"], &["pending"]).await;
    gh.set_stage("acme/app", "feat/x", Stage::Fixed);
    wait_status(
        &fleet.sandbox,
        &["review: no approval yet"],
        &["CI:", "mergeable:"],
    )
    .await;
    gh.set_stage("acme/app", "feat/x", Stage::Approved);
    wait_status(
        &fleet.sandbox,
        &["up to date: 1 commit(s) behind"],
        &["review:", "CI:"],
    )
    .await;
    gh.set_stage("acme/app", "feat/x", Stage::Mergeable);
    let last = wait_status(&fleet.sandbox, &["Ready for merge"], &["Missing"]).await;

    let ready = common::wait_for(limit, "the ready ping on Telegram", || {
        let t: Vec<String> = common::telegram_texts(&fleet.state())
            .into_iter()
            .filter(|t| t.contains("ready for your merge"))
            .collect();
        (!t.is_empty()).then_some(t)
    })
    .await;
    // Some more passes: nothing new is said.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let state = fleet.state();
    let ready_now: Vec<String> = common::telegram_texts(&state)
        .into_iter()
        .filter(|t| t.contains("ready for your merge"))
        .collect();
    assert_eq!(ready_now, ready, "exactly one ready ping");
    assert_eq!(ready.len(), 1, "{ready:#?}");
    assert!(ready[0].contains("PR #1"), "{}", ready[0]);

    // ONE status message, edited through the steps.
    let msgs = status_messages(&state, "t1");
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    let status = &msgs[0];
    assert!(status.edited);
    assert_eq!(status.text(), last);
    let edits = state
        .recent_requests
        .iter()
        .filter(|r| {
            r.method == "PATCH"
                && r.path.ends_with(&format!(
                    "/channels/{SUB_AGENT_RESULTS}/messages/{}",
                    status.id
                ))
                && r.status == 200
        })
        .count();
    // pending, (mergeability computed), failed, fixed, approved, ready: at
    // least five edits; and no edit without a change (the last passes sent none).
    eprintln!("status message: 1 post, {edits} edits");
    assert!((5..=12).contains(&edits), "{edits} edits");
    let posts_of_status = state
        .recent_requests
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.path
                    .ends_with(&format!("/channels/{SUB_AGENT_RESULTS}/messages"))
        })
        .count();
    // The status post plus the two hand-backs (CI failed, behind) routed there.
    let handed_back: Vec<String> = common::discord_texts(&state, "sub-agent-results")
        .into_iter()
        .filter(|t| t.contains("back to work"))
        .collect();
    assert_eq!(handed_back.len(), 2, "{handed_back:#?}");
    assert!(handed_back[0].contains("ci_failed"), "{}", handed_back[0]);
    assert_eq!(posts_of_status, 3);
    assert!(
        gh.requests()
            .iter()
            .all(|q| q.status == 200 || q.status == 304),
        "{:#?}",
        gh.requests()
    );

    // What the monitor learned went back to the registry (seed 001's terminal contract).
    let exported = fleet.dir.path().join("export.json");
    let out = fleet
        .command()
        .args(["registry", "export"])
        .arg(&exported)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&exported).unwrap()).unwrap();
    assert_eq!(v[0]["status"], "done", "{v:#}");
    assert_eq!(v[0]["pr"], 1);
    assert_eq!(v[0]["attempts"], 2);
    assert_eq!(fleet.stop_agent("alpha").await.code(), Some(0));
}
