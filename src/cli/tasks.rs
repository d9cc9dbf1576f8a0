//! `switchyard task`, `policy`, `registry` and `spawn`: task specs from the
//! shell, the policy gate's score, the GitHub task registry, and coding
//! sessions spawned as tasks.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Utc;

use super::args::{PolicyCommand, RegistryCommand, SpawnArgs, TaskCommand};
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
                let mut t =
                    super::table::Table::new(&["task", "state", "risk", "attempts", "title"]);
                for r in rows {
                    t.row(vec![
                        r.id.clone(),
                        r.state.as_str().to_string(),
                        r.risk_score.to_string(),
                        r.attempts.to_string(),
                        r.title.clone(),
                    ]);
                }
                t.print();
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
        RegistryCommand::Abandon { id, reason } => {
            abandon(&config, &id, &reason).await?;
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

/// `switchyard spawn`: a task whose one step is the session skill, handed
/// to the agent's inbox like `task submit`, so the policy gate and the
/// approvals decide as for any task.
pub fn spawn(path: Option<PathBuf>, args: SpawnArgs) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let agent = target_agent(&config, args.to.as_deref())?;
    match config.skills.get(&args.skill) {
        Some(s) if s.session.is_some() => {}
        Some(_) => {
            return Err(bad_input(format!(
                "[skills.{}] is a container skill: spawn runs session skills (kind = \"session\")",
                args.skill
            )));
        }
        None => {
            let sessions: Vec<&str> = config
                .skills
                .iter()
                .filter(|(_, s)| s.session.is_some())
                .map(|(n, _)| n.as_str())
                .collect();
            return Err(bad_input(format!(
                "no skill {:?}; session skills: {}",
                args.skill,
                if sessions.is_empty() {
                    "none (add one with kind = \"session\")".to_string()
                } else {
                    sessions.join(", ")
                }
            )));
        }
    }
    if !config.sessions.repos.contains_key(&args.repo) {
        return Err(bad_input(format!(
            "repository {} has no local clone under [sessions.repos]; add \"{}\" = \"/path/to/clone\"",
            args.repo, args.repo
        )));
    }
    let id = args.id.clone().unwrap_or_else(|| {
        args.branch
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    });
    let value = serde_json::json!({
        "kind": "task",
        "id": id,
        "title": args.title.clone().unwrap_or_else(|| format!("Coding session on {}", args.branch)),
        "risk": args.risk,
        "repo": args.repo,
        "branch": args.branch,
        "skills": [args.skill],
        "steps": [{"skill": args.skill, "args": args.args}],
    });
    let bytes = serde_json::to_vec(&value)?;
    let spec =
        crate::tasks::TaskSpec::parse_checked(&bytes, config.skills.keys().map(String::as_str))
            .map_err(|e| {
                bad_input(format!(
                    "the spawn is not a valid task:\n  - {}",
                    e.problems.join("\n  - ")
                ))
            })?;
    let report = crate::tasks::score(&spec, &config.policy, &config.skills);
    let dropped = crate::coord::queue::hand_in(&config.fleet, agent, spec.id.as_str(), &value)
        .with_context(|| format!("handing the spawn to {agent}"))?;
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
    Ok(())
}

/// Marks a tracked task failed and removes what its spawn made.
async fn abandon(config: &Config, id: &str, reason: &str) -> anyhow::Result<()> {
    use crate::github::{registry::TaskStatus, store as gh_store};
    for agent in &config.agents {
        let store =
            crate::store::Store::open_agent(&config.database_url(&agent.name), &agent.name).await?;
        let Some(mut task) = gh_store::list_tasks(store.pool(), Some(&agent.name))
            .await?
            .into_iter()
            .find(|t| t.id() == id)
        else {
            continue;
        };
        task.record.status = TaskStatus::Failed;
        task.record.note = Some(reason.to_string());
        task.record.completed_at = Some(Utc::now().timestamp_millis());
        gh_store::upsert_tasks(
            store.pool(),
            std::slice::from_ref(&task),
            Utc::now().timestamp_millis(),
        )
        .await?;
        println!(
            "{id}: marked failed ({reason}) in {}'s registry",
            agent.name
        );
        if let Some(template) = &task.record.worker.spawn_template
            && let Some(skill) = config.skills.get(template)
        {
            let plan = crate::execution::spawn::plan_for_record(
                &task.record,
                skill,
                &[],
                &config.sessions,
            )
            .map_err(|e| bad_input(e.to_string()))?;
            let spawner = crate::execution::spawn::Spawner::for_agent(config, &agent.name);
            let removed = spawner.cleanup(&plan).await;
            if removed.is_empty() {
                println!("nothing left to remove");
            } else {
                println!("removed: {}", removed.join(", "));
            }
        }
        return Ok(());
    }
    Err(bad_input(format!(
        "no tracked task {id:?} (see `switchyard registry export -`)"
    )))
}
