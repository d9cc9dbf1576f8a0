//! The tmux adapter: is a session there, what does its pane run, type text
//! into it literally, start and end sessions.
//!
//! Every invocation runs with a cleared environment (only `PATH`, `HOME`,
//! `USER`, `LANG` and `TMUX_TMPDIR` pass): a tmux server the agent starts
//! would otherwise hold the agent's bot tokens in its environment and hand
//! them to every pane.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::github::workers::Liveness;

/// The variables a tmux client needs to find its server, and nothing secret.
const PASSED: &[&str] = &["PATH", "HOME", "USER", "LANG", "TMUX_TMPDIR"];

/// How long one tmux invocation may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

use crate::config::SHELLS;

#[derive(Debug, thiserror::Error)]
pub enum TmuxError {
    #[error("tmux is not installed (install Debian's `tmux` package)")]
    Missing,
    #[error("tmux {what} failed: {stderr}")]
    Failed { what: &'static str, stderr: String },
    #[error("tmux {what} did not answer within {}s", CALL_TIMEOUT.as_secs())]
    Timeout { what: &'static str },
    #[error("cannot run tmux: {0}")]
    Io(#[from] std::io::Error),
}

/// What a session's active pane is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pane {
    /// `pane_current_command`: the foreground process's name.
    pub command: String,
    /// The pane's first process exited (kept by `remain-on-exit`).
    pub dead: bool,
}

/// Alive only when the pane runs the expected program (or, when none is
/// expected, anything but a shell): an agent that exited leaves a shell.
pub fn judge(session: &str, pane: Option<&Pane>, expect: Option<&str>) -> Liveness {
    let Some(pane) = pane else {
        return Liveness::Dead(format!("tmux session {session} does not exist"));
    };
    if pane.dead {
        return Liveness::Dead(format!("the program in tmux session {session} exited"));
    }
    match expect {
        Some(want) if pane.command != want => Liveness::Dead(format!(
            "tmux session {session} runs `{}`, not `{want}`: the agent exited",
            pane.command
        )),
        None if SHELLS.contains(&pane.command.as_str()) => Liveness::Dead(format!(
            "tmux session {session} runs a bare shell (`{}`): the agent exited",
            pane.command
        )),
        _ => Liveness::Alive,
    }
}

/// The tmux client.
#[derive(Debug, Clone)]
pub struct Tmux {
    program: String,
}

impl Default for Tmux {
    fn default() -> Self {
        Tmux {
            program: "tmux".into(),
        }
    }
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Tmux {
    async fn call(&self, what: &'static str, args: &[&str]) -> Result<Output, TmuxError> {
        let mut cmd = Command::new(&self.program);
        cmd.env_clear();
        for k in PASSED {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(TmuxError::Missing),
            Err(e) => return Err(e.into()),
        };
        let out = tokio::time::timeout(CALL_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| TmuxError::Timeout { what })??;
        Ok(Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    async fn must(&self, what: &'static str, args: &[&str]) -> Result<String, TmuxError> {
        let out = self.call(what, args).await?;
        if out.ok {
            Ok(out.stdout)
        } else {
            Err(TmuxError::Failed {
                what,
                stderr: out.stderr,
            })
        }
    }

    /// The session's active pane; `None` when there is no such session (or
    /// no tmux server at all).
    pub async fn pane(&self, session: &str) -> Result<Option<Pane>, TmuxError> {
        // `=` matches the name exactly, not as a prefix.
        let exact = format!("={session}");
        if !self
            .call("has-session", &["has-session", "-t", &exact])
            .await?
            .ok
        {
            return Ok(None);
        }
        let target = format!("={session}:");
        let out = self
            .call(
                "display-message",
                &[
                    "display-message",
                    "-p",
                    "-t",
                    &target,
                    "#{pane_current_command}\t#{pane_dead}",
                ],
            )
            .await?;
        if !out.ok {
            // Gone between the two calls.
            return Ok(None);
        }
        let line = out.stdout.trim_end_matches('\n');
        let (command, dead) = line.split_once('\t').unwrap_or((line, "0"));
        Ok(Some(Pane {
            command: command.to_string(),
            dead: dead == "1",
        }))
    }

    /// Types `text` into the session's active pane as literal keys (`-l`:
    /// no key names, nothing interpreted), then presses Enter.
    pub async fn send_literal(&self, session: &str, text: &str) -> Result<(), TmuxError> {
        let target = format!("={session}:");
        self.must("send-keys", &["send-keys", "-t", &target, "-l", "--", text])
            .await?;
        self.must("send-keys", &["send-keys", "-t", &target, "Enter"])
            .await?;
        Ok(())
    }

    /// Starts a detached session in `dir` running `argv` directly (no
    /// shell reads it).
    pub async fn new_session(
        &self,
        name: &str,
        dir: &Path,
        argv: &[String],
    ) -> Result<(), TmuxError> {
        let dir = dir.to_string_lossy();
        let mut args = vec!["new-session", "-d", "-s", name, "-c", &dir, "--"];
        args.extend(argv.iter().map(String::as_str));
        self.must("new-session", &args).await.map(|_| ())
    }

    /// Ends the session; `false` when there was none.
    pub async fn kill_session(&self, name: &str) -> Result<bool, TmuxError> {
        let exact = format!("={name}");
        Ok(self
            .call("kill-session", &["kill-session", "-t", &exact])
            .await?
            .ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pane(command: &str, dead: bool) -> Pane {
        Pane {
            command: command.into(),
            dead,
        }
    }

    #[test]
    fn a_shell_in_the_pane_is_a_dead_agent() {
        assert_eq!(
            judge("s", Some(&pane("codex", false)), Some("codex")),
            Liveness::Alive
        );
        assert!(
            matches!(judge("s", None, Some("codex")), Liveness::Dead(w) if w.contains("does not exist"))
        );
        assert!(
            matches!(judge("s", Some(&pane("bash", false)), Some("codex")), Liveness::Dead(w) if w.contains("`bash`, not `codex`"))
        );
        assert!(matches!(
            judge("s", Some(&pane("codex", true)), Some("codex")),
            Liveness::Dead(_)
        ));
        assert!(
            matches!(judge("s", Some(&pane("zsh", false)), None), Liveness::Dead(w) if w.contains("bare shell"))
        );
        assert_eq!(
            judge("s", Some(&pane("node", false)), None),
            Liveness::Alive
        );
    }
}
