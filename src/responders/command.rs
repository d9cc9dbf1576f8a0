//! The `command` responder: a skill (the container runtime, with every
//! limit the skill sets) answers. The turn goes in as JSON on standard
//! input — `{"agent": ..., "messages": [{"role", "content"}, ...]}`, the same
//! messages a model would get — and the answer is what the command writes
//! on standard output, streamed line by line as it writes. A
//! `SWITCHYARD_USAGE {"tokens": N}` line reports what it spent and is not
//! shown. A non-zero exit, a kill or the time box ends the answer as failed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::SkillSettings;
use crate::conversations::{BoxFuture, Prompt, Responder, ResponderError, Usage};
use crate::tasks::TaskId;
use crate::tasks::runtime::{StepRun, StepStatus, USAGE_PREFIX};
use crate::workers::DockerRuntime;

pub struct CommandResponder {
    pub runtime: Arc<DockerRuntime>,
    pub agent: String,
    pub skill_name: String,
    pub skill: SkillSettings,
    pub timeout: Duration,
    pub log_dir: PathBuf,
}

#[derive(Serialize)]
struct TurnJson<'a> {
    agent: &'a str,
    messages: Vec<Line<'a>>,
}

#[derive(Serialize)]
struct Line<'a> {
    role: &'static str,
    content: &'a str,
}

impl Responder for CommandResponder {
    fn respond(
        &self,
        prompt: Prompt,
        out: mpsc::Sender<String>,
    ) -> BoxFuture<'static, Result<Usage, ResponderError>> {
        let turn = TurnJson {
            agent: &self.agent,
            messages: prompt
                .messages
                .iter()
                .map(|m| Line {
                    role: m.role.as_str(),
                    content: &m.content,
                })
                .collect(),
        };
        let stdin = serde_json::to_vec(&turn).unwrap_or_default();
        let stamp = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let task_id = TaskId::parse(&format!("answer-{stamp}")).expect("a valid id");
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let run = StepRun {
            agent: self.agent.clone(),
            task_id,
            step_index: 0,
            attempt: 1,
            skill_name: self.skill_name.clone(),
            skill: self.skill.clone(),
            args: Vec::new(),
            timeout: self.timeout.min(self.skill.timeout),
            log_dir: self.log_dir.clone(),
            stdin: Some(stdin),
            output_to: Some(tx),
            target: None,
        };
        let runtime = self.runtime.clone();
        Box::pin(async move {
            let running = tokio::spawn(async move { runtime.run_step(run).await });
            while let Some(line) = rx.recv().await {
                if line.trim_start().starts_with(USAGE_PREFIX.trim_end()) {
                    continue;
                }
                if out.send(line).await.is_err() {
                    break;
                }
            }
            let outcome = running
                .await
                .map_err(|e| ResponderError::Broken(format!("the command's runner stopped: {e}")))?
                .map_err(|e| ResponderError::Unreachable(e.to_string()))?;
            match outcome.status {
                StepStatus::Succeeded => Ok(Usage {
                    prompt_tokens: 0,
                    completion_tokens: outcome.usage.map_or(0, |u| u.tokens),
                }),
                StepStatus::TimedOut => Err(ResponderError::TimedOut(Duration::from_millis(
                    outcome.duration_ms,
                ))),
                other => Err(ResponderError::CommandFailed(format!(
                    "{}{}",
                    other.as_str(),
                    outcome
                        .exit_code
                        .map(|c| format!(" with code {c}"))
                        .unwrap_or_default()
                ))),
            }
        })
    }
}
