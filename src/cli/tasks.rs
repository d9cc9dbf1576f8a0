//! `switchyard task`, `policy` and `registry`: task specs from the shell, the
//! policy gate's score, the GitHub task registry.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Utc;

use super::args::{PolicyCommand, RegistryCommand, TaskCommand};
use super::{agent_names, load_config, shell_actor, target_agent};
use crate::config::Config;
use crate::error::bad_input;

fn read_spec(
    config: &Config,
    file: &Path,
) -> anyhow::Result<(crate::tasks::TaskSpec, serde_json::Value)> {
    let bytes = std::fs::read(file)
        .map_err(|e| bad_input(format!("cannot read {}: {e}", file.display())))?;
    let spec =
        crate::tasks::TaskSpec::parse_checked(&bytes, config.skills.keys().map(String::as_str))
            .map_err(|e| {
                bad_input(format!(
                    "{} is not a valid task spec:\n  - {}",
                    file.display(),
                    e.problems.join("\n  - ")
                ))
            })?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad_input(e.to_string()))?;
    Ok((spec, value))
}

pub fn policy(path: Option<PathBuf>, cmd: PolicyCommand) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let PolicyCommand::Check { file, json } = cmd;
    let (spec, _) = read_spec(&config, &file)?;
    let report = crate::tasks::score(&spec, &config.policy, &config.skills);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.explain());
    }
    Ok(())
}

pub async fn task(path: Option<PathBuf>, cmd: TaskCommand) -> anyhow::Result<()> {
    use crate::store::tasks as task_store;
    let config = load_config(path)?;
    match cmd {
        TaskCommand::Submit { file, to } => {
            let agent = target_agent(&config, to.as_deref())?;
            let (spec, mut value) = read_spec(&config, &file)?;
            if value.get("kind").is_none() {
                value["kind"] = "task".into();
            }
            let report = crate::tasks::score(&spec, &config.policy, &config.skills);
            let dropped =
                crate::coord::queue::hand_in(&config.fleet, agent, spec.id.as_str(), &value)
                    .with_context(|| format!("handing the task to {agent}"))?;
            println!(
                "{} → {} (risk {}{})",
                spec.id,
                dropped,
                report.score,
                if report.needs_approval {
                    ", needs a human approval"
                } else {
                    ""
                }
            );
        }
        TaskCommand::List { agent, json } => {
            let agent = target_agent(&config, agent.as_deref())?;
            let store = crate::store::Store::open_agent(&config.database_url(agent), agent).await?;
            let rows = task_store::list(store.pool(), None, 200).await?;
            if json {
                let out: Vec<_> = rows
                    .iter()
                    .map(|r| serde_json::json!({"id": r.id, "title": r.title, "state": r.state.as_str(),
                        "risk": r.risk_score, "attempts": r.attempts, "reason": r.reason, "updated_at": r.updated_at}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else if rows.is_empty() {
                println!("no tasks on {agent}");
            } else {
                for r in rows {
                    println!(
                        "{:<28} {:<18} risk {:>3}  attempts {}  {}",
                        r.id,
                        r.state.as_str(),
                        r.risk_score,
                        r.attempts,
                        r.title
                    );
                }
            }
        }
        TaskCommand::Show { id, agent } => {
            let agent = target_agent(&config, agent.as_deref())?;
            let store = crate::store::Store::open_agent(&config.database_url(agent), agent).await?;
            let row = task_store::get(store.pool(), &id).await?.ok_or_else(|| {
                bad_input(format!(
                    "no task {id:?} on {agent}: `switchyard task list` shows them"
                ))
            })?;
            println!(
                "{} — {}\nstate: {}  risk: {}  attempts: {}",
                row.id,
                row.title,
                row.state.as_str(),
                row.risk_score,
                row.attempts
            );
            if let Some(reason) = &row.reason {
                println!("reason: {reason}");
            }
            for kind in [
                task_store::RecordKind::Intent,
                task_store::RecordKind::Receipt,
                task_store::RecordKind::Verification,
            ] {
                if let Some(body) = task_store::record(store.pool(), &id, kind).await? {
                    println!(
                        "\n{}:\n{}",
                        kind.as_str(),
                        serde_json::to_string_pretty(&body)?
                    );
                }
            }
        }
        TaskCommand::Cancel { id, agent } => {
            let agent = target_agent(&config, agent.as_deref())?;
            let store = crate::store::Store::open_agent(&config.database_url(agent), agent).await?;
            let row = task_store::get(store.pool(), &id)
                .await?
                .ok_or_else(|| bad_input(format!("no task {id:?} on {agent}")))?;
            if !matches!(
                row.state,
                crate::tasks::TaskState::Queued | crate::tasks::TaskState::AwaitingApproval
            ) {
                return Err(bad_input(format!(
                    "task {id} is {}: only a queued or waiting task can be cancelled; stop running work with `switchyard kill --agent {agent}`",
                    row.state.as_str()
                )));
            }
            let by = shell_actor();
            task_store::transition(
                store.pool(),
                &id,
                crate::tasks::TaskState::Cancelled,
                Some(&format!("cancelled by {by}")),
                Utc::now(),
            )
            .await?;
            println!("{id} cancelled");
        }
    }
    Ok(())
}

pub async fn registry(path: Option<PathBuf>, cmd: RegistryCommand) -> anyhow::Result<()> {
    use crate::github::{registry, store as gh_store};
    let config = load_config(path)?;
    match cmd {
        RegistryCommand::Import { file } => {
            let tasks = registry::import(&file).map_err(|e| bad_input(e.to_string()))?;
            let unknown: Vec<String> = tasks
                .iter()
                .filter(|t| config.agent(&t.record.agent).is_none())
                .map(|t| format!("{} names agent {:?}", t.id(), t.record.agent))
                .collect();
            if !unknown.is_empty() {
                return Err(bad_input(format!(
                    "{}: no such agent in the configuration (agents: {})",
                    unknown.join("; "),
                    agent_names(&config)
                )));
            }
            let now = Utc::now().timestamp_millis();
            for agent in &config.agents {
                let mine: Vec<_> = tasks
                    .iter()
                    .filter(|t| t.record.agent == agent.name)
                    .cloned()
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                let store =
                    crate::store::Store::open_agent(&config.database_url(&agent.name), &agent.name)
                        .await?;
                gh_store::upsert_tasks(store.pool(), &mine, now).await?;
                println!("{}: tracking {} task(s)", agent.name, mine.len());
            }
        }
        RegistryCommand::Export { file } => {
            let mut all = Vec::new();
            for agent in &config.agents {
                let db = config.database_url(&agent.name);
                // An agent that never ran has no SQLite file: nothing to export.
                if let Some(db_path) = db.strip_prefix("sqlite://")
                    && !Path::new(db_path).exists()
                {
                    continue;
                }
                let store = crate::store::Store::open_agent(&db, &agent.name).await?;
                all.extend(gh_store::list_tasks(store.pool(), Some(&agent.name)).await?);
            }
            registry::export(&file, &all)?;
            println!("wrote {} task(s) to {}", all.len(), file.display());
        }
    }
    Ok(())
}
