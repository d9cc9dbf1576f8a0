//! Spawning a coding session as seed 001 does: a worktree on a new branch
//! (`git worktree add DIR -b BRANCH BASE`), then a detached tmux session in
//! it running the session skill's command; respawning it in the same
//! worktree; and cleaning up the session, the worktree and the branch.
//!
//! The command comes from the configuration (`[skills.NAME]`, kind
//! `session`), never from chat text. The session's environment is cleared:
//! the pane runs `switchyard session-exec --env-file FILE -- COMMAND`, which
//! keeps only the variables the skill names, read from a file only the
//! agent's user can read (and removed once read), so no value is ever on a
//! command line and no bot token, GitHub token or fleet secret reaches it.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::tmux::{Tmux, TmuxError};
use crate::config::{Config, SessionsSettings, SkillSettings};
use crate::github::registry::{TaskRecord, valid_session_name};

/// Why a spawn (or respawn) did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(
        "repository {repo} has no local clone configured: add it under [sessions.repos], e.g. \"{repo}\" = \"/srv/clone\""
    )]
    UnknownRepo { repo: String },
    #[error("a session step needs the task's `repo` and `branch`: add both to the task spec")]
    NoTarget,
    #[error(
        "{0} sessions are running already ([sessions] max_running = {0}); wait for one to finish"
    )]
    AtCapacity(u32),
    #[error("task id {0:?} cannot name a tmux session: use letters, digits, `_`, `-` or `.`")]
    BadName(String),
    #[error("git {what} failed in {dir}: {stderr}")]
    Git {
        what: &'static str,
        dir: PathBuf,
        stderr: String,
    },
    #[error("the worktree {0} is gone: it cannot be respawned in place")]
    NoWorktree(PathBuf),
    #[error(transparent)]
    Tmux(#[from] TmuxError),
    #[error("the task registry: {0}")]
    Registry(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

/// Everything a spawn does, decided before anything is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnPlan {
    pub session: String,
    /// The local clone the worktree is added to.
    pub clone: PathBuf,
    pub worktree: PathBuf,
    pub branch: String,
    pub base: String,
    /// The skill's command, then the step's args.
    pub command: Vec<String>,
    /// The variables the session keeps, by name.
    pub env: Vec<String>,
    /// The process the pane runs while the agent works.
    pub agent_command: String,
}

/// The session name of a task: its id, with `.` (a tmux separator) as `-`.
pub fn session_name(task_id: &str) -> Result<String, SpawnError> {
    let name = task_id.replace('.', "-");
    if valid_session_name(&name) {
        Ok(name)
    } else {
        Err(SpawnError::BadName(task_id.to_string()))
    }
}

/// Plans a spawn; pure.
pub fn plan(
    task_id: &str,
    repo: Option<&str>,
    branch: Option<&str>,
    skill: &SkillSettings,
    args: &[String],
    settings: &SessionsSettings,
) -> Result<SpawnPlan, SpawnError> {
    let (Some(repo), Some(branch)) = (repo, branch) else {
        return Err(SpawnError::NoTarget);
    };
    let clone = settings
        .repos
        .get(repo)
        .cloned()
        .ok_or_else(|| SpawnError::UnknownRepo {
            repo: repo.to_string(),
        })?;
    let session = session_name(task_id)?;
    Ok(SpawnPlan {
        worktree: settings.worktrees.join(&session),
        session,
        clone,
        branch: branch.to_string(),
        base: settings.base.clone(),
        command: skill.command.iter().chain(args).cloned().collect(),
        env: skill.env.clone(),
        agent_command: skill
            .session
            .as_ref()
            .map(|s| s.agent_command.clone())
            .unwrap_or_default(),
    })
}

/// The plan of a task a spawn registered: [`plan`] from its record, with
/// the session and the worktree the record names (a folder name under
/// `[sessions] worktrees`, or an absolute path). `args` are the session
/// step's own (empty when only cleaning up).
pub fn plan_for_record(
    record: &TaskRecord,
    skill: &SkillSettings,
    args: &[String],
    settings: &SessionsSettings,
) -> Result<SpawnPlan, SpawnError> {
    let mut plan = plan(
        &record.id,
        Some(&record.repo),
        Some(&record.branch),
        skill,
        args,
        settings,
    )?;
    if let Some(s) = &record.worker.tmux_session {
        plan.session = s.clone();
    }
    if let Some(dir) = &record.worker.worktree {
        let dir = PathBuf::from(dir);
        plan.worktree = if dir.is_absolute() {
            dir
        } else {
            settings.worktrees.join(dir)
        };
    }
    Ok(plan)
}

async fn git(dir: &Path, what: &'static str, args: &[&str]) -> Result<String, SpawnError> {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| SpawnError::Git {
        what,
        dir: dir.to_path_buf(),
        stderr: "did not finish within 120 s".into(),
    })?
    .map_err(|source| SpawnError::Io {
        context: format!("running git {what}"),
        source,
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(SpawnError::Git {
            what,
            dir: dir.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Runs spawn plans: git and tmux on this host.
#[derive(Debug, Clone)]
pub struct Spawner {
    pub tmux: Tmux,
    /// The `switchyard` binary, whose `session-exec` clears the environment.
    pub exe: PathBuf,
    /// Where the short-lived environment files are written (the agent's own folder).
    pub scratch: PathBuf,
}

impl Spawner {
    /// The spawner of `agent`: this binary's `session-exec`, the env files
    /// in the agent's own folder.
    pub fn for_agent(config: &Config, agent: &str) -> Spawner {
        Spawner {
            tmux: Tmux::default(),
            exe: std::env::current_exe().unwrap_or_else(|_| "switchyard".into()),
            scratch: config.agent_dir(agent),
        }
    }

    /// Makes the worktree (on a new branch from the base, or the branch as it
    /// is when it exists already) and starts the session.
    pub async fn spawn(&self, plan: &SpawnPlan) -> Result<(), SpawnError> {
        if !plan.worktree.exists() {
            if let Some(parent) = plan.worktree.parent() {
                std::fs::create_dir_all(parent).map_err(|source| SpawnError::Io {
                    context: format!("creating {}", parent.display()),
                    source,
                })?;
            }
            let dir = plan.worktree.to_string_lossy().into_owned();
            let exists = git(
                &plan.clone,
                "rev-parse",
                &[
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    &format!("refs/heads/{}", plan.branch),
                ],
            )
            .await
            .is_ok();
            if exists {
                git(
                    &plan.clone,
                    "worktree add",
                    &["worktree", "add", &dir, &plan.branch],
                )
                .await?;
            } else {
                git(
                    &plan.clone,
                    "worktree add",
                    &["worktree", "add", &dir, "-b", &plan.branch, &plan.base],
                )
                .await?;
            }
        }
        self.start(plan).await
    }

    /// Starts the session again in the existing worktree.
    pub async fn respawn(&self, plan: &SpawnPlan) -> Result<(), SpawnError> {
        if !plan.worktree.is_dir() {
            return Err(SpawnError::NoWorktree(plan.worktree.clone()));
        }
        // A pane left with a shell in it goes first.
        self.tmux.kill_session(&plan.session).await?;
        self.start(plan).await
    }

    async fn start(&self, plan: &SpawnPlan) -> Result<(), SpawnError> {
        let file = self.env_file(plan)?;
        let mut argv = vec![
            self.exe.to_string_lossy().into_owned(),
            "session-exec".into(),
            "--env-file".into(),
            file.to_string_lossy().into_owned(),
            "--".into(),
        ];
        argv.extend(plan.command.iter().cloned());
        let started = self
            .tmux
            .new_session(&plan.session, &plan.worktree, &argv)
            .await;
        if started.is_err() {
            let _ = std::fs::remove_file(&file);
        }
        Ok(started?)
    }

    /// The named variables with their values, mode 0600, for `session-exec`.
    fn env_file(&self, plan: &SpawnPlan) -> Result<PathBuf, SpawnError> {
        let io = |context: String| move |source| SpawnError::Io { context, source };
        std::fs::create_dir_all(&self.scratch)
            .map_err(io(format!("creating {}", self.scratch.display())))?;
        let path = self.scratch.join(format!(
            ".session-env-{}-{}",
            plan.session,
            rand::random::<u32>()
        ));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(format!("writing {}", path.display())))?;
        let mut text = String::new();
        for name in &plan.env {
            if let Ok(value) = std::env::var(name) {
                text.push_str(&encode_env_line(name, &value));
            }
        }
        f.write_all(text.as_bytes())
            .map_err(io(format!("writing {}", path.display())))?;
        Ok(path)
    }

    /// Removes what a spawn made: the session, the worktree (with what is
    /// uncommitted in it) and the branch. Returns what was removed; what
    /// could not be is logged and skipped.
    pub async fn cleanup(&self, plan: &SpawnPlan) -> Vec<String> {
        let mut done = Vec::new();
        match self.tmux.kill_session(&plan.session).await {
            Ok(true) => done.push(format!("tmux session {}", plan.session)),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(session = %plan.session, error = %e, "could not end the session")
            }
        }
        if plan.worktree.exists() {
            let dir = plan.worktree.to_string_lossy().into_owned();
            match git(
                &plan.clone,
                "worktree remove",
                &["worktree", "remove", "--force", &dir],
            )
            .await
            {
                Ok(_) => done.push(format!("worktree {dir}")),
                Err(e) => tracing::warn!(error = %e, "could not remove the worktree"),
            }
        }
        match git(
            &plan.clone,
            "branch -D",
            &["branch", "-D", "--", &plan.branch],
        )
        .await
        {
            Ok(_) => done.push(format!("branch {}", plan.branch)),
            Err(e) => tracing::debug!(error = %e, "no local branch to remove"),
        }
        done
    }
}

/// `NAME=VALUE` with the value's backslashes and newlines escaped.
fn encode_env_line(name: &str, value: &str) -> String {
    let v = value.replace('\\', "\\\\").replace('\n', "\\n");
    format!("{name}={v}\n")
}

/// Reads an env file written by [`Spawner`] (and removes it).
pub fn read_env_file(path: &Path) -> std::io::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)?;
    std::fs::remove_file(path)?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let mut out = String::new();
            let mut chars = v.chars();
            while let Some(c) = chars.next() {
                match (c, c == '\\') {
                    (_, true) => match chars.next() {
                        Some('n') => out.push('\n'),
                        Some(o) => out.push(o),
                        None => {}
                    },
                    (c, false) => out.push(c),
                }
            }
            (k.to_string(), out)
        })
        .collect())
}

/// `switchyard session-exec`: replaces this process with `command`, with
/// nothing in its environment but the file's variables.
pub fn session_exec(env_file: &Path, command: &[String]) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt as _;
    let vars = read_env_file(env_file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", env_file.display()))?;
    let Some((program, args)) = command.split_first() else {
        anyhow::bail!("session-exec needs a command after --");
    };
    let err = std::process::Command::new(program)
        .env_clear()
        .envs(vars)
        .args(args)
        .exec();
    Err(anyhow::anyhow!("cannot run {program}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SessionSkill;

    fn skill() -> SkillSettings {
        SkillSettings {
            session: Some(SessionSkill {
                agent_command: "node".into(),
            }),
            image: String::new(),
            command: vec!["/opt/agent/run.sh".into(), "high".into()],
            network: false,
            memory_bytes: 0,
            cpus: 0.0,
            pids: 0,
            timeout: Duration::from_secs(60),
            env: vec!["OPENAI_API_KEY".into()],
            mounts: vec![],
        }
    }

    fn settings() -> SessionsSettings {
        SessionsSettings {
            worktrees: "/srv/wt".into(),
            max_running: 2,
            base: "origin/main".into(),
            repos: [("acme/app".to_string(), PathBuf::from("/srv/app"))].into(),
        }
    }

    #[test]
    fn a_plan_comes_from_the_spec_and_the_configuration_only() {
        let p = plan(
            "feat.templates",
            Some("acme/app"),
            Some("feat/templates"),
            &skill(),
            &["templates".into()],
            &settings(),
        )
        .unwrap();
        assert_eq!(p.session, "feat-templates");
        assert_eq!(p.worktree, PathBuf::from("/srv/wt/feat-templates"));
        assert_eq!(p.clone, PathBuf::from("/srv/app"));
        assert_eq!(p.command, ["/opt/agent/run.sh", "high", "templates"]);
        assert_eq!(p.agent_command, "node");
        assert!(matches!(
            plan(
                "x",
                Some("acme/other"),
                Some("b"),
                &skill(),
                &[],
                &settings()
            ),
            Err(SpawnError::UnknownRepo { .. })
        ));
        assert!(matches!(
            plan("x", None, Some("b"), &skill(), &[], &settings()),
            Err(SpawnError::NoTarget)
        ));
    }

    #[test]
    fn env_files_round_trip_and_vanish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e");
        std::fs::write(
            &path,
            encode_env_line("A", "x=y\nz\\w") + &encode_env_line("B", ""),
        )
        .unwrap();
        let vars = read_env_file(&path).unwrap();
        assert_eq!(
            vars,
            [
                ("A".to_string(), "x=y\nz\\w".to_string()),
                ("B".into(), "".into())
            ]
        );
        assert!(!path.exists());
    }
}
