//! Responders at the edge: the adapters behind the conversations'
//! [`Responder`](crate::conversations::Responder) port and the hand-off to
//! another inbox, chosen from `[responders.NAME]`.

pub mod inbox;
pub mod openai;
pub mod sse;

use std::sync::Arc;

use crate::config::{Config, ResponderKind};
use crate::conversations::Answerer;

/// The answerer of `agent`, from its `responder` key (`None`: it does not converse).
pub fn answerer_for(config: &Config, agent: &str) -> anyhow::Result<Option<Answerer>> {
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
        ResponderKind::Inbox { to, timeout } => Answerer::Inbox(Arc::new(inbox::InboxHandoff {
            workspace: config.fleet.workspace.clone(),
            from: agent.to_string(),
            to: to.clone(),
            timeout: *timeout,
        })),
    }))
}
