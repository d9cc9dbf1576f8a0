//! Overhead of one step through `DockerRuntime` versus `docker run --rm` of
//! the same image and command (median of 20 each), and tasks per minute
//! through one pipeline with 4 concurrent workers.
//!
//! `cargo bench --bench worker_overhead`. Needs a Docker engine.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard::config::{DockerSettings, PolicySettings, SkillSettings};
use switchyard::tasks::runtime::StepRun;
use switchyard::tasks::{BreakerSettings, Pipeline, TaskId, TaskSpec, TaskState};
use switchyard::workers::{DockerRuntime, WORKER_IMAGE, ensure_worker_image};

const RUNS: usize = 20;
const TASKS: usize = 24;
const CONCURRENCY: usize = 4;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn skill() -> SkillSettings {
    SkillSettings {
        session: None,
        image: WORKER_IMAGE.into(),
        command: vec!["sh".into(), "-c".into()],
        network: false,
        memory_bytes: 64 << 20,
        cpus: 0.5,
        pids: 64,
        timeout: Duration::from_secs(60),
        env: Vec::new(),
        mounts: Vec::new(),
    }
}

#[tokio::main]
async fn main() {
    let rt = match DockerRuntime::connect(
        &DockerSettings {
            host: "unix:///var/run/docker.sock".into(),
        },
        "bench",
    )
    .await
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("!!!!!!!! worker_overhead SKIPPED: {e}");
            if std::env::var("SWITCHYARD_REQUIRE_DOCKER").as_deref() == Ok("1") {
                std::process::exit(1);
            }
            return;
        }
    };
    ensure_worker_image(rt.docker(), WORKER_IMAGE)
        .await
        .expect("worker image");
    let logs = std::env::temp_dir().join("switchyard-bench-logs");

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for i in 0..RUNS {
        let run = StepRun {
            agent: "bench".into(),
            task_id: TaskId::parse("bench").unwrap(),
            step_index: 0,
            attempt: i as u32 + 1,
            skill_name: "sh".into(),
            skill: skill(),
            args: vec!["echo hi".into()],
            timeout: Duration::from_secs(60),
            log_dir: logs.clone(),
            stdin: None,
            output_to: None,
            target: None,
        };
        let t = Instant::now();
        let out = rt.run_step(run).await.expect("step");
        ours.push(t.elapsed());
        assert_eq!(out.stdout, "hi\n");

        let t = Instant::now();
        let status = Command::new("docker")
            .args(["run", "--rm", WORKER_IMAGE, "sh", "-c", "echo hi"])
            .output()
            .expect("docker run");
        theirs.push(t.elapsed());
        assert_eq!(String::from_utf8_lossy(&status.stdout), "hi\n");
    }
    let (m_ours, m_theirs) = (median(ours), median(theirs));
    println!(
        "one step, median of {RUNS}: DockerRuntime::run_step {m_ours:?}, docker run --rm {m_theirs:?}"
    );
    println!(
        "ratio run_step / docker run: {:.2}",
        m_ours.as_secs_f64() / m_theirs.as_secs_f64()
    );

    let skills = BTreeMap::from([("sh".to_string(), skill())]);
    let pipeline = Arc::new(Pipeline::new(
        rt.clone(),
        "bench",
        skills,
        PolicySettings {
            approval_threshold: 60,
        },
        BreakerSettings::default(),
        logs.clone(),
    ));
    let sem = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..TASKS {
        let spec = TaskSpec::parse(
            format!(r#"{{"id":"bench_{i}","title":"bench","risk":"low","skills":["sh"],"steps":[{{"skill":"sh","args":["echo {i}"]}}]}}"#)
                .as_bytes(),
        )
        .unwrap();
        let (p, sem) = (pipeline.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await.unwrap();
            p.run(&spec, None).await.unwrap().state
        });
    }
    let mut ok = 0;
    while let Some(state) = set.join_next().await {
        ok += usize::from(state.unwrap() == TaskState::Succeeded);
    }
    let elapsed = t.elapsed();
    println!(
        "{TASKS} one-step tasks, {CONCURRENCY} concurrent workers: {elapsed:?}, {ok} succeeded, {:.1} tasks/minute",
        TASKS as f64 / elapsed.as_secs_f64() * 60.0
    );
}
