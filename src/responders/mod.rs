//! Responders at the edge: the adapters behind the conversations'
//! [`Responder`](crate::conversations::Responder) port and the hand-off to
//! another inbox, chosen from `[responders.NAME]`.

pub mod command;
pub mod inbox;
pub mod openai;
pub mod sse;

use std::sync::Arc;

use crate::config::{Config, ResponderKind};
use crate::conversations::Answerer;

/// The answerer of `agent`, from its `responder` key (`None`: it does not converse).
pub async fn answerer_for(config: &Config, agent: &str) -> anyhow::Result<Option<Answerer>> {
    let Some(settings) = config.agents.iter().find(|a| a.name.as_str() == agent) else {
        return Ok(None);
    };
    let Some(name) = &settings.responder else {
        return Ok(None);
    };
    let Some(r) = config.responders.get(name) else {
        anyhow::bail!("agent {agent} names responder {name:?}, which is not configured");
    };
    Ok(Some(match &r.kind {
        ResponderKind::OpenAi(s) => {
            Answerer::Stream(Arc::new(openai::OpenAiResponder::new(s.clone())?))
        }
        ResponderKind::Command { skill, timeout } => {
            let runtime =
                crate::workers::DockerRuntime::connect(&config.docker, &config.fleet_id())
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "responder {name:?} runs skill {skill:?} in a container, and {e}"
                        )
                    })?;
            let settings = config.skills.get(skill).cloned().ok_or_else(|| {
                anyhow::anyhow!("responder {name:?} names skill {skill:?}, which is not configured")
            })?;
            Answerer::Stream(Arc::new(command::CommandResponder {
                runtime: Arc::new(runtime),
                agent: agent.to_string(),
                skill_name: skill.clone(),
                skill: settings,
                timeout: *timeout,
                log_dir: config.agent_dir(agent).join("logs"),
            }))
        }
        ResponderKind::Inbox { to, timeout } => Answerer::Inbox(Arc::new(inbox::InboxHandoff {
            workspace: config.fleet.workspace.clone(),
            from: agent.to_string(),
            to: to.clone(),
            timeout: *timeout,
        })),
    }))
}
