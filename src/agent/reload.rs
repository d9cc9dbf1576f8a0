//! Reloading the configuration while the agent runs: on SIGHUP (which
//! `switchyard reload` sends) the file is read and validated again. A file
//! with problems changes nothing, and the log and the heartbeat say why.
//! A valid one applies what can change live: the routes and the routing
//! settings (digest windows, the unmatched destination, repeats, mute
//! notices), who may do what (the Discord and Telegram access lists,
//! Telegram's approvers), the schedules (a kept one keeps its last run),
//! and this agent's responder when it converses (the next turn takes the
//! new one; a turn being answered finishes with the one it started with). Every other section that changed is named as
//! needing a restart, and the running agent keeps it as it was.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use tracing::{error, info, warn};

use super::Shared;
use crate::config::{Config, ConfigSource};
use crate::coord::ReloadRecord;
use crate::shutdown::Shutdown;

/// Wait for SIGHUP and reload, until the agent stops.
pub(super) async fn reload_loop(shared: Arc<Shared>, mut stop: Shutdown) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                let record = reload(&shared).await;
                *shared.last_reload.lock().unwrap_or_else(|e| e.into_inner()) = Some(record);
                // Written now, not at the next beat: `switchyard reload` waits for it.
                let beat = {
                    let shared = shared.clone();
                    tokio::task::spawn_blocking(move || shared.beat_now()).await
                };
                if let Ok(Err(e)) | Err(e) = beat.map_err(anyhow::Error::from) {
                    warn!(error = format!("{e:#}"), "the reload's outcome was not written to the status");
                }
            }
            _ = stop.stopped() => return Ok(()),
        }
    }
}

/// Read the file again and apply what can be applied.
async fn reload(shared: &Shared) -> ReloadRecord {
    let at = Utc::now();
    let refused = |problems: Vec<String>| ReloadRecord {
        at,
        outcome: "refused".into(),
        applied: Vec::new(),
        needs_restart: Vec::new(),
        problems,
    };
    let path = PathBuf::from(&shared.config.source_name);
    if !path.is_file() {
        warn!(source = %shared.config.source_name, "SIGHUP: the configuration is not a file; nothing to reload");
        return refused(vec![format!(
            "the configuration ({}) is not a file: nothing to reload",
            shared.config.source_name
        )]);
    }
    let mut new = match Config::load(&ConfigSource::File(path)) {
        Ok(c) => c,
        Err(e) => {
            let problems: Vec<String> = e
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.key, p.message))
                .collect();
            error!(problems = problems.len(), first = %problems.first().cloned().unwrap_or_default(),
                   "SIGHUP: the configuration has problems; the running one is kept (`switchyard check-config` lists them)");
            return refused(problems);
        }
    };
    // The listen address may have come from the command line.
    if let Some(a) = new.agents.iter_mut().find(|a| a.name == shared.agent.name) {
        a.listen = shared.agent.listen;
    }
    let router = match new.router() {
        Ok(r) => r,
        Err(e) => return refused(vec![e.to_string()]),
    };
    let me = shared.agent.name.as_str();
    let (applied, needs_restart) =
        compare(&shared.config, &new, me, shared.conversations.is_some());
    if applied.iter().any(|a| a == RESPONDER)
        && let Some(conversations) = &shared.conversations
    {
        match crate::responders::answerer_for(&new, me).await {
            Ok(Some(answerer)) => conversations.set_answerer(answerer),
            Ok(None) => {}
            Err(e) => {
                return refused(vec![format!("the new responder cannot be built: {e:#}")]);
            }
        }
    }
    if applied.iter().any(|a| a == "routes" || a == "[routing]") {
        shared.routing.set(router, new.routing.clone());
    }
    let access = crate::config::Access::of(&new);
    if *shared.fleet.access().get() != access {
        shared.fleet.access().set(access);
    }
    if applied.iter().any(|a| a == "[[schedules]]") {
        *shared
            .reloaded_schedules
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(new.schedules.clone());
    }
    let outcome = if applied.is_empty() && needs_restart.is_empty() {
        "unchanged"
    } else {
        "applied"
    };
    info!(outcome, applied = ?applied, needs_restart = ?needs_restart, "SIGHUP: configuration reloaded");
    ReloadRecord {
        at,
        outcome: outcome.into(),
        applied,
        needs_restart,
        problems: Vec::new(),
    }
}

/// The name under which a swapped responder is reported as applied.
const RESPONDER: &str = "this agent's responder";

/// The responder agent `me` answers with in `c`, as text to compare.
fn responder_of(c: &Config, me: &str) -> Option<String> {
    let name = c
        .agents
        .iter()
        .find(|a| a.name.as_str() == me)?
        .responder
        .clone()?;
    c.responders.get(&name).map(|r| format!("{name}: {r:?}"))
}

/// What differs between the running configuration and the new one: the
/// sections applied live, and those that take a restart. `converses`: agent
/// `me` has conversations, so a change of its responder is swapped live.
fn compare(old: &Config, new: &Config, me: &str, converses: bool) -> (Vec<String>, Vec<String>) {
    let differs =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
    let mut live = Vec::new();
    if differs(&old.routes, &new.routes) {
        live.push("routes".to_string());
    }
    if differs(&old.routing, &new.routing) {
        live.push("[routing]".to_string());
    }
    if differs(&old.schedules, &new.schedules) {
        live.push("[[schedules]]".to_string());
    }
    // The access lists and Telegram's approvers apply live; the rest of
    // [discord] and [telegram] (ids, endpoints, tokens) takes a restart.
    let (old_access, new_access) = (
        crate::config::Access::of(old),
        crate::config::Access::of(new),
    );
    if old_access.discord != new_access.discord {
        live.push("[discord.access]".to_string());
    }
    if old_access.telegram != new_access.telegram {
        live.push("[telegram.access]".to_string());
    }
    if old_access.telegram_approvers != new_access.telegram_approvers {
        live.push("[telegram] approvers".to_string());
    }
    let (old_r, new_r) = (responder_of(old, me), responder_of(new, me));
    let swap_responder = converses && old_r.is_some() && new_r.is_some() && old_r != new_r;
    if swap_responder {
        live.push(RESPONDER.to_string());
    }
    // What applies live is left out of what takes a restart.
    let without_live = |c: &Config| {
        let mut c = c.clone();
        if swap_responder {
            c.responders.clear();
            for a in &mut c.agents {
                a.responder = None;
            }
        }
        if let Some(d) = &mut c.discord {
            d.access = Default::default();
        }
        if let Some(t) = &mut c.telegram {
            t.access = Default::default();
            t.approvers.clear();
        }
        c
    };
    let (old, new) = (&without_live(old), &without_live(new));
    let sections: [(&str, bool); 15] = [
        ("[fleet]", differs(&old.fleet, &new.fleet)),
        ("[discord]", differs(&old.discord, &new.discord)),
        ("[telegram]", differs(&old.telegram, &new.telegram)),
        ("[github]", differs(&old.github, &new.github)),
        ("[docker]", differs(&old.docker, &new.docker)),
        ("[delivery]", differs(&old.delivery, &new.delivery)),
        ("[[agents]]", differs(&old.agents, &new.agents)),
        ("[policy]", differs(&old.policy, &new.policy)),
        ("[approvals]", differs(&old.approvals, &new.approvals)),
        ("[skills]", differs(&old.skills, &new.skills)),
        ("[responders]", differs(&old.responders, &new.responders)),
        (
            "[conversations]",
            differs(&old.conversations, &new.conversations),
        ),
        ("[files]", differs(&old.files, &new.files)),
        ("[sessions]", differs(&old.sessions, &new.sessions)),
        ("[console]", differs(&old.console, &new.console)),
    ];
    let restart = sections
        .iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| name.to_string())
        .collect();
    (live, restart)
}
