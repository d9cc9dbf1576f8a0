//! The bollard adapter: one container per task step, with the sandbox of
//! DESIGN.md 4.5 (limits, no network unless allowed, read-only root with a
//! small `/tmp`, all capabilities dropped, no new privileges, not root,
//! labels), a time box then SIGKILL, OOM detection, output streamed while
//! the step runs into a bounded capture (`capture.rs`),
//! orphan reaping and the kill switch. bollard's types stop in this module.

mod capture;
pub mod image;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StartContainerOptions, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;
use tracing::{debug, info, warn};

use crate::config::DockerSettings;
use crate::tasks::runtime::{StepOutcome, StepRun, StepStatus, Usage, WorkerError, WorkerRuntime};
use capture::{Capture, Stream};

pub use image::{WORKER_IMAGE, ensure_worker_image};

pub const LABEL_AGENT: &str = "switchyard.agent";
/// Which fleet a container belongs to: two fleets (or a demo, or a test run)
/// on one engine may both have an agent called `tech-lead`.
pub const LABEL_FLEET: &str = "switchyard.fleet";
pub const LABEL_TASK: &str = "switchyard.task";
pub const LABEL_STEP: &str = "switchyard.step";
pub const LABEL_ATTEMPT: &str = "switchyard.attempt";
/// Output kept in memory per stream; the whole output goes to a log file past it.
pub const OUTPUT_KEEP_BYTES: usize = 64 << 10;
/// Size of the writable `/tmp` tmpfs.
pub const TMP_SIZE: &str = "16m";
pub const WORKER_USER: &str = "65534:65534";

/// Runs steps in containers on one Docker engine.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    host: String,
    /// Containers the kill switch killed, so their exit reads `killed`, not `failed`.
    killed: Arc<Mutex<HashSet<String>>>,
    output_keep: usize,
    /// This fleet's identity ([`crate::config::Config::fleet_id`]): only its
    /// own containers are reaped or killed.
    fleet: String,
}

impl DockerRuntime {
    /// Connect and check the engine answers. `fleet` labels every container
    /// this runtime makes and scopes what it reaps and kills.
    pub async fn connect(
        settings: &DockerSettings,
        fleet: &str,
    ) -> Result<DockerRuntime, WorkerError> {
        let unavailable = |reason: String| WorkerError::Unavailable {
            host: settings.host.clone(),
            reason,
        };
        let docker =
            Docker::connect_with_host(&settings.host).map_err(|e| unavailable(e.to_string()))?;
        let docker = docker.with_timeout(Duration::from_secs(120));
        docker
            .ping()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        Ok(DockerRuntime {
            docker,
            host: settings.host.clone(),
            killed: Arc::default(),
            output_keep: OUTPUT_KEEP_BYTES,
            fleet: fleet.to_string(),
        })
    }

    /// Keep at most `bytes` of each stream in memory (tests use a small bound).
    pub fn with_output_keep(mut self, bytes: usize) -> Self {
        self.output_keep = bytes;
        self
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    async fn containers_of(&self, agent: &str, all: bool) -> Result<Vec<String>, WorkerError> {
        // Both labels must match: another fleet's agent of the same name is not ours.
        let filters = HashMap::from([(
            "label",
            vec![
                format!("{LABEL_AGENT}={agent}"),
                format!("{LABEL_FLEET}={}", self.fleet),
            ],
        )]);
        let list = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(all)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(|e| engine("list containers", e))?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    /// Remove every container this agent's label marks: at start-up nothing
    /// of ours can legitimately be running, so anything found was left by a crash.
    pub async fn reap_orphans(&self, agent: &str) -> Result<Vec<String>, WorkerError> {
        let ids = self.containers_of(agent, true).await?;
        let mut reaped = Vec::new();
        for id in ids {
            match self.remove(&id).await {
                Ok(()) => reaped.push(id),
                Err(e) => warn!(container = %id, error = %e, "could not reap an orphan container"),
            }
        }
        if !reaped.is_empty() {
            info!(
                agent,
                count = reaped.len(),
                "reaped orphan worker containers"
            );
        }
        Ok(reaped)
    }

    /// SIGKILL every running container of this agent (the kill switch).
    pub async fn kill_running(&self, agent: &str) -> Result<Vec<String>, WorkerError> {
        let ids = self.containers_of(agent, false).await?;
        let mut killed = Vec::new();
        for id in ids {
            self.killed
                .lock()
                .expect("killed set lock")
                .insert(id.clone());
            match self
                .docker
                .kill_container(
                    &id,
                    Some(
                        KillContainerOptionsBuilder::default()
                            .signal("SIGKILL")
                            .build(),
                    ),
                )
                .await
            {
                Ok(()) => killed.push(id),
                // Already gone or already stopped: nothing left to kill.
                Err(BollardError::DockerResponseServerError {
                    status_code: 404 | 409,
                    ..
                }) => {}
                Err(e) => warn!(container = %id, error = %e, "could not kill a worker container"),
            }
        }
        if !killed.is_empty() {
            info!(
                agent,
                count = killed.len(),
                "kill switch: killed running worker containers"
            );
        }
        Ok(killed)
    }

    /// Removes a container, trying again a few times: under load the engine
    /// can refuse a forced removal while the container's processes are still
    /// being reaped (a fork bomb's thousands), and a container left behind
    /// would hold its name and its label until the next start's reaping.
    async fn remove(&self, id: &str) -> Result<(), WorkerError> {
        let mut attempt = 1;
        loop {
            match self.remove_once(id).await {
                Err(e) if attempt < 4 => {
                    warn!(container = %id, error = %e, attempt, "could not remove a worker container; trying again");
                    tokio::time::sleep(Duration::from_millis(250 * attempt)).await;
                    attempt += 1;
                }
                done => return done,
            }
        }
    }

    async fn remove_once(&self, id: &str) -> Result<(), WorkerError> {
        match self
            .docker
            .remove_container(
                id,
                Some(
                    RemoveContainerOptionsBuilder::default()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await
        {
            Ok(())
            | Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(engine("remove container", e)),
        }
    }

    /// Run one step in its own container and report how it ended.
    pub async fn run_step(&self, run: StepRun) -> Result<StepOutcome, WorkerError> {
        let body = container_body(&run, &self.fleet, &std::env::vars().collect())?;
        let name = container_name(&run);
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                body,
            )
            .await
            .map_err(|e| match e {
                BollardError::DockerResponseServerError {
                    status_code: 404, ..
                } => WorkerError::ImageMissing {
                    image: run.skill.image.clone(),
                },
                e => engine("create container", e),
            })?;
        let id = created.id;
        let result = self.run_created(&id, &name, &run).await;
        if let Err(e) = self.remove(&id).await {
            warn!(container = %id, error = %e, "could not remove a finished worker container");
        }
        self.killed.lock().expect("killed set lock").remove(&id);
        result
    }

    async fn run_created(
        &self,
        id: &str,
        name: &str,
        run: &StepRun,
    ) -> Result<StepOutcome, WorkerError> {
        let started = Instant::now();
        // Standard input is attached before the start, so nothing is missed;
        // writing it waits for the start (the pipe is read only then).
        let stdin = match &run.stdin {
            Some(bytes) => {
                let attached = self
                    .docker
                    .attach_container(
                        id,
                        Some(
                            AttachContainerOptionsBuilder::default()
                                .stdin(true)
                                .stream(true)
                                .build(),
                        ),
                    )
                    .await
                    .map_err(|e| engine("attach standard input", e))?;
                Some((attached.input, bytes.clone()))
            }
            None => None,
        };
        self.docker
            .start_container(id, None::<StartContainerOptions>)
            .await
            .map_err(|e| engine("start container", e))?;
        if let Some((mut input, bytes)) = stdin {
            use tokio::io::AsyncWriteExt as _;
            let written = async {
                input.write_all(&bytes).await?;
                input.shutdown().await
            };
            if let Err(e) = written.await {
                warn!(container = %name, error = %e, "could not write the step's standard input");
            }
        }
        debug!(container = %name, task = %run.task_id, step = run.step_index, "worker container started");

        let log_path = run.log_dir.join(format!("{name}.log"));
        let mut capture = Capture::new(self.output_keep, log_path);
        // Output is read while the step runs (the engine's own log rotation
        // can drop what is read only afterwards), with timestamps so that the
        // catch-up read below takes exactly what the follow missed.
        let follow = async {
            let mut last = None;
            let mut logs = self.docker.logs(id, Some(log_options(true, None)));
            while let Some(chunk) = logs.next().await {
                match chunk {
                    Ok(out) => {
                        take_frame(&mut capture, out, &mut last, None, run.output_to.as_ref())
                    }
                    Err(e) => {
                        debug!(error = %e, "the log stream ended early; catching up after exit");
                        break;
                    }
                }
            }
            last
        };
        let (last, timed_out) = tokio::join!(follow, self.wait_or_kill(id, run.timeout));
        // A following stream can end before the last lines of a container that
        // exits quickly: read again from the last line seen, skipping it and
        // everything before it.
        let mut caught = last;
        let mut logs = self.docker.logs(
            id,
            Some(log_options(
                false,
                last.map(|t: chrono::DateTime<chrono::Utc>| t.timestamp()),
            )),
        );
        while let Some(chunk) = logs.next().await {
            match chunk {
                Ok(out) => take_frame(&mut capture, out, &mut caught, last, run.output_to.as_ref()),
                Err(e) => {
                    warn!(error = %e, "could not read all of a step's output");
                    break;
                }
            }
        }
        let duration_ms = started.elapsed().as_millis() as u64;
        let state = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| engine("inspect container", e))?
            .state
            .unwrap_or_default();
        let exit_code = state.exit_code;
        let killed = self.killed.lock().expect("killed set lock").contains(id);
        let status = if killed {
            StepStatus::Killed
        } else if timed_out {
            StepStatus::TimedOut
        } else if state.oom_killed == Some(true) {
            StepStatus::Oom
        } else if exit_code == Some(0) {
            StepStatus::Succeeded
        } else {
            StepStatus::Failed
        };
        let captured = capture.finish();
        if let Some(e) = &captured.io_error {
            warn!(error = %e, "could not write the step's full output to its log file");
        }
        let (stdout, stderr, log_file) = (captured.stdout, captured.stderr, captured.log_file);
        let output_truncated = captured.cut_bytes > 0;
        let output_cut_bytes = captured.cut_bytes;
        let usage = Usage::from_output(&stdout);
        info!(task = %run.task_id, step = run.step_index, attempt = run.attempt, status = status.as_str(),
              exit_code, duration_ms, "worker step finished");
        Ok(StepOutcome {
            status,
            exit_code,
            stdout,
            stderr,
            output_truncated,
            output_cut_bytes,
            log_file,
            duration_ms,
            usage,
        })
    }

    /// Wait for the container to stop; past `timeout`, SIGKILL it and wait
    /// for the kill to land. Returns whether the time box ran out.
    async fn wait_or_kill(&self, id: &str, timeout: Duration) -> bool {
        let not_running = || {
            Some(
                WaitContainerOptionsBuilder::default()
                    .condition("not-running")
                    .build(),
            )
        };
        let mut wait = self.docker.wait_container(id, not_running());
        if tokio::time::timeout(timeout, wait.next()).await.is_ok() {
            return false;
        }
        let kill = KillContainerOptionsBuilder::default()
            .signal("SIGKILL")
            .build();
        if let Err(e) = self.docker.kill_container(id, Some(kill)).await {
            debug!(error = %e, "kill after time box");
        }
        // So that the state and logs read afterwards are final.
        let mut again = self.docker.wait_container(id, not_running());
        let _ = tokio::time::timeout(Duration::from_secs(10), again.next()).await;
        true
    }
}

fn log_options(follow: bool, since: Option<i64>) -> bollard::query_parameters::LogsOptions {
    let mut b = LogsOptionsBuilder::default()
        .follow(follow)
        .stdout(true)
        .stderr(true)
        .timestamps(true);
    if let Some(since) = since {
        b = b.since(i32::try_from(since).unwrap_or(0));
    }
    b.build()
}

/// One log frame into the capture, its timestamp stripped. Frames at or
/// before `skip_until` were taken already (the catch-up read overlaps the
/// follow by up to a second); `last` is the newest timestamp taken.
fn take_frame(
    capture: &mut Capture,
    out: LogOutput,
    last: &mut Option<chrono::DateTime<chrono::Utc>>,
    skip_until: Option<chrono::DateTime<chrono::Utc>>,
    output_to: Option<&tokio::sync::mpsc::UnboundedSender<String>>,
) {
    let (stream, message) = match out {
        LogOutput::StdOut { message } => (Stream::Out, message),
        LogOutput::StdErr { message } => (Stream::Err, message),
        _ => return,
    };
    let (at, text) = split_timestamp(&message);
    if let (Some(at), Some(until)) = (at, skip_until)
        && at <= until
    {
        return;
    }
    if at.is_some() {
        *last = at;
    }
    if let (Some(to), Stream::Out) = (output_to, stream) {
        // A receiver that is gone stopped listening; the outcome still has it all.
        let _ = to.send(String::from_utf8_lossy(text).into_owned());
    }
    capture.push(stream, text);
}

/// `2026-12-02T01:20:00.123456789Z line` → the time and `line`.
fn split_timestamp(frame: &[u8]) -> (Option<chrono::DateTime<chrono::Utc>>, &[u8]) {
    let Some(space) = frame.iter().take(40).position(|&b| b == b' ') else {
        return (None, frame);
    };
    let at = std::str::from_utf8(&frame[..space])
        .ok()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    match at {
        Some(at) => (Some(at), &frame[space + 1..]),
        None => (None, frame),
    }
}

impl WorkerRuntime for DockerRuntime {
    async fn run_step(&self, run: StepRun) -> Result<StepOutcome, WorkerError> {
        DockerRuntime::run_step(self, run).await
    }
    async fn kill_running(&self, agent: &str) -> Result<Vec<String>, WorkerError> {
        DockerRuntime::kill_running(self, agent).await
    }
}

fn engine(operation: &'static str, e: BollardError) -> WorkerError {
    WorkerError::Engine {
        operation,
        message: e.to_string(),
    }
}

/// `switchyard-<agent>-<task>-s<step>-a<attempt>-<random>`: readable in
/// `docker ps`, unique even when one step is retried quickly.
fn container_name(run: &StepRun) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .take(48)
            .collect()
    };
    format!(
        "switchyard-{}-{}-s{}-a{}-{:08x}",
        clean(&run.agent),
        clean(run.task_id.as_str()),
        run.step_index,
        run.attempt,
        rand::random::<u32>()
    )
}

/// A skill's `mounts` entry: `HOST_PATH:CONTAINER_PATH[:ro|rw]`, read-only
/// unless it says `rw`.
pub fn parse_mount(entry: &str) -> Result<String, String> {
    let parts: Vec<&str> = entry.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, "ro"),
        [s, d, m @ ("ro" | "rw")] => (*s, *d, *m),
        _ => {
            return Err(format!(
                "mount {entry:?} is not HOST_PATH:CONTAINER_PATH[:ro|rw]"
            ));
        }
    };
    if !Path::new(src).is_absolute() || !Path::new(dst).is_absolute() {
        return Err(format!("mount {entry:?}: both paths must be absolute"));
    }
    if dst == "/" || dst == "/tmp" {
        return Err(format!("mount {entry:?}: {dst} cannot be replaced"));
    }
    Ok(format!("{src}:{dst}:{mode}"))
}

/// The container a step runs in. `env` is the agent's environment: only the
/// variables the skill names are passed, and only when they are set.
pub fn container_body(
    run: &StepRun,
    fleet: &str,
    env: &HashMap<String, String>,
) -> Result<ContainerCreateBody, WorkerError> {
    let skill = &run.skill;
    let binds = skill
        .mounts
        .iter()
        .map(|m| parse_mount(m))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|message| WorkerError::Skill {
            skill: run.skill_name.clone(),
            message,
        })?;
    let passed: Vec<String> = skill
        .env
        .iter()
        .filter_map(|name| match env.get(name) {
            Some(value) => Some(format!("{name}={value}")),
            None => {
                warn!(skill = %run.skill_name, variable = %name, "environment variable named by the skill is not set");
                None
            }
        })
        .collect();
    let labels = HashMap::from([
        (LABEL_AGENT.to_string(), run.agent.clone()),
        (LABEL_FLEET.to_string(), fleet.to_string()),
        (LABEL_TASK.to_string(), run.task_id.to_string()),
        (LABEL_STEP.to_string(), run.step_index.to_string()),
        (LABEL_ATTEMPT.to_string(), run.attempt.to_string()),
    ]);
    Ok(ContainerCreateBody {
        image: Some(skill.image.clone()),
        cmd: Some(run.command()),
        // An empty entrypoint: the skill's command is the whole command line.
        entrypoint: Some(Vec::new()),
        env: Some(passed),
        user: Some(WORKER_USER.into()),
        working_dir: Some("/tmp".into()),
        labels: Some(labels),
        network_disabled: Some(!skill.network),
        attach_stdin: Some(run.stdin.is_some()),
        open_stdin: Some(run.stdin.is_some()),
        // Standard input closes when the one writer (this runtime) is done.
        stdin_once: Some(run.stdin.is_some()),
        tty: Some(false),
        host_config: Some(HostConfig {
            memory: Some(skill.memory_bytes),
            // Equal to memory: no swap, so a step over its limit is OOM-killed, not slowed.
            memory_swap: Some(skill.memory_bytes),
            nano_cpus: Some((skill.cpus * 1e9) as i64),
            pids_limit: Some(skill.pids),
            network_mode: Some(if skill.network { "bridge" } else { "none" }.into()),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_string(),
                format!("rw,nosuid,nodev,size={TMP_SIZE}"),
            )])),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            binds: if binds.is_empty() { None } else { Some(binds) },
            init: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    })
}
