//! Requests per monitor pass for 100 tracked PRs with nothing changed
//! (target: only conditional requests, all answered 304), with the real
//! octocrab client against the sandbox on 127.0.0.1.
//!
//! Run: `cargo bench --bench github_pass`

use std::time::{Duration, Instant};

use switchyard::github::client::GithubClient;
use switchyard::github::failures::Failure;
use switchyard::github::monitor::{Monitor, MonitorOutput, MonitorSettings, PassReport};
use switchyard::github::registry::{TaskRecord, TrackedTask};
use switchyard::github::requirements::PullSnapshot;
use switchyard::github::workers::Delivery;
use switchyard_sandbox::github::{GithubSandbox, Stage, router};

const TASKS: usize = 100;

struct Quiet;

impl MonitorOutput for Quiet {
    async fn upsert_status(&self, _: &TrackedTask, _: &str) -> anyhow::Result<()> {
        Ok(())
    }
    async fn ready_for_merge(&self, _: &TrackedTask, _: &PullSnapshot) -> anyhow::Result<()> {
        Ok(())
    }
    async fn escalate(&self, _: &TrackedTask, _: &Failure) -> anyhow::Result<()> {
        Ok(())
    }
    async fn retry(&self, _: &TrackedTask, _: &Failure, _: &Delivery) -> anyhow::Result<()> {
        Ok(())
    }
}

fn task(i: usize) -> TrackedTask {
    let record: TaskRecord = serde_json::from_value(serde_json::json!({
        "id": format!("task-{i}"), "agent": "codex", "repo": "acme/app", "branch": format!("feat/{i}"),
        "startedAt": chrono::Utc::now().timestamp_millis(), "status": "running", "attempts": 0
    }))
    .expect("valid task");
    TrackedTask::new(record).expect("valid task")
}

fn settings_for_threads() -> MonitorSettings {
    MonitorSettings {
        jitter: 0.0,
        threads_interval: Duration::from_secs(1800),
        ..MonitorSettings::default()
    }
}

fn line(label: &str, r: &PassReport, rate_used: u64, took: Duration) {
    println!(
        "{label:<34} requests {:>4}  304s {:>4}  fresh {:>4}  rate limit used {:>4}  wall {:>7.1} ms",
        r.requests,
        r.not_modified,
        r.requests - r.not_modified,
        rate_used,
        took.as_secs_f64() * 1000.0
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let gh = GithubSandbox::new();
        for i in 0..TASKS {
            gh.set_stage("acme/app", &format!("feat/{i}"), Stage::Fixed);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(axum::serve(listener, router(gh.clone())).into_future());
        let base = format!("http://{addr}");
        let settings = MonitorSettings { jitter: 0.0, ..MonitorSettings::default() };
        let mut monitor = Monitor::new(GithubClient::new(&base, None).expect("client"), Quiet, settings.clone());
        for i in 0..TASKS {
            monitor.track(task(i));
        }
        println!("github_pass: {TASKS} tracked PRs, CI green, awaiting review (nothing changes between passes)");
        let measure = async |label: &str, monitor: &mut Monitor<Quiet>| {
            let rate = gh.rate_remaining();
            let t = Instant::now();
            let r = monitor.pass().await;
            line(label, &r, rate - gh.rate_remaining(), t.elapsed());
            r
        };
        measure("pass 1 (cold: find PRs)", &mut monitor).await;
        measure("pass 2 (mergeable computed)", &mut monitor).await;
        let mut steady = Vec::new();
        for i in 0..5 {
            steady.push(measure(&format!("pass {} (nothing changed)", i + 3), &mut monitor).await);
        }
        // A restarted agent with its persisted ETags (store::load_etags).
        let fresh = GithubClient::new(&base, None).expect("client");
        fresh.load_cache(monitor.client().cache_entries());
        let mut restarted = Monitor::new(fresh, Quiet, settings);
        for t in monitor.tasks() {
            restarted.track(t.clone());
        }
        let after_restart = measure("restart with persisted ETags", &mut restarted).await;

        let r = &steady[steady.len() - 1];
        let per_pr = r.requests as f64 / TASKS as f64;
        println!("steady state: {per_pr:.1} requests per PR per pass, {} of {} answered 304", r.not_modified, r.requests);
        assert!(steady.iter().all(|r| r.not_modified == r.requests), "a steady pass made unconditional requests");
        assert_eq!(after_restart.not_modified, after_restart.requests);

        // With review threads read (a token, critical markers): GraphQL is
        // never conditional, so the budget is in how often it is asked.
        for i in 0..TASKS {
            gh.add_review_thread("acme/app", &format!("feat/{i}"), "ana", "critical: check this");
        }
        let token = switchyard::config::Secret::new("ghp_bench");
        let threads = MonitorSettings {
            critical_markers: vec!["critical".into()],
            ..settings_for_threads()
        };
        let mut with_threads = Monitor::new(GithubClient::new(&base, Some(&token)).expect("client"), Quiet, threads);
        for t in monitor.tasks() {
            with_threads.track(t.clone());
        }
        println!("with review threads ({TASKS} PRs, one critical thread each, threads_interval 30m):");
        let graphql = || gh.requests().iter().filter(|q| q.path == "/graphql").count();
        let mut per_pass = Vec::new();
        for i in 0..5 {
            gh.clear_requests();
            let t = Instant::now();
            let r = with_threads.pass().await;
            let q = graphql();
            per_pass.push(q);
            println!(
                "pass {} {:<24} REST {:>4} (304s {:>4})  GraphQL queries {:>4}  wall {:>7.1} ms",
                i + 1,
                if i == 0 { "(threads read)" } else { "(nothing changed)" },
                r.requests as usize - q,
                r.not_modified,
                q,
                t.elapsed().as_secs_f64() * 1000.0
            );
        }
        let idle: usize = per_pass[1..].iter().sum();
        println!(
            "GraphQL points: {} on the first pass, {idle} over {} idle passes; at a 10-minute interval an idle fleet of {TASKS} PRs spends at most {} points an hour (budget 5,000)",
            per_pass[0],
            per_pass.len() - 1,
            TASKS * 2
        );
        assert_eq!(idle, 0, "idle passes asked GraphQL");
    });
}
