//! `switchyard approval request`, `approvals`, `approve` and `deny`: asking
//! a human from the shell, and the audited operator override.

use std::path::PathBuf;

use anyhow::Context;
use chrono::Utc;

use super::args::ApprovalCommand;
use super::load_config;
use crate::config::{Config, parse_duration};
use crate::error::bad_input;

/// The agent whose database holds the fleet's approvals: the Telegram owner,
/// or the one named.
fn approvals_store_agent(config: &Config, agent: Option<&str>) -> anyhow::Result<String> {
    match agent {
        Some(a) => Ok(config.require_agent(a)?.name.to_string()),
        None => config.telegram_owner().map(|o| o.name.to_string()).ok_or_else(|| {
            bad_input("no agent has telegram_token_env: approvals need the agent that owns the Telegram bot")
        }),
    }
}

pub fn approval(path: Option<PathBuf>, cmd: ApprovalCommand) -> anyhow::Result<()> {
    let args = match cmd {
        ApprovalCommand::Request(args) => args,
        ApprovalCommand::Keygen => return keygen(path),
    };
    let config = load_config(path)?;
    let owner = approvals_store_agent(&config, None)?;
    if args.summary.trim().is_empty() {
        return Err(bad_input(
            "--summary is empty: say in one line what will run",
        ));
    }
    let expires = match &args.expires {
        Some(t) => parse_duration(t).map_err(bad_input)?,
        None => config.approvals.expires,
    };
    let id = crate::approvals::new_approval_id();
    let item = serde_json::json!({
        "kind": "approval_request", "id": id, "summary": args.summary, "detail": args.detail,
        "risk": args.risk, "reasons": args.reasons, "requested_by": args.requested_by,
        "expires_in": humantime::format_duration(expires).to_string(),
    });
    crate::coord::queue::hand_in(&config.fleet, &owner, &id, &item)
        .with_context(|| format!("cannot hand the request to {owner}"))?;
    println!("{id}");
    Ok(())
}

/// A new signing key: the seed for the environment, the public key for the
/// configuration. Needs no configuration; with one, names its variable.
fn keygen(path: Option<PathBuf>) -> anyhow::Result<()> {
    let env = load_config(path)
        .map(|c| c.approvals.signing_key_env)
        .unwrap_or_else(|_| crate::config::keys::DEFAULT_SIGNING_KEY_ENV.into());
    let (key, seed) = crate::config::keys::SigningKey::generate();
    println!(
        "# The private key. Only in the environment of the agent that owns Telegram,\n\
         # on the operator's host; never in a file of the workspace or on a worker's host.\n\
         {env}={seed}\n\
         \n\
         # The public key, in the fleet's configuration (every host may have it):\n\
         [approvals]\n\
         decision_keys = [\"{}\"]",
        key.public()
    );
    Ok(())
}

pub async fn approvals(
    path: Option<PathBuf>,
    json: bool,
    agent: Option<String>,
) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let agent = approvals_store_agent(&config, agent.as_deref())?;
    let store = crate::store::Store::open_agent(&config.database_url(&agent), &agent).await?;
    let list = store.approvals(None).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        println!("no approvals on {agent}");
        return Ok(());
    }
    let mut t = super::table::Table::new(&["approval", "status", "risk", "when", "summary"]);
    for a in list {
        let when = match (&a.decided_by, a.decided_at) {
            (Some(by), Some(at)) => format!("by {by} at {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
            _ => format!("expires {}", a.expires_at.format("%Y-%m-%d %H:%M:%S UTC")),
        };
        t.row(vec![
            a.id.to_string(),
            a.status.as_str().to_string(),
            a.risk.to_string(),
            when,
            a.summary.clone(),
        ]);
    }
    t.print();
    Ok(())
}

/// `switchyard approve ID` / `deny ID`: the operator's override from the
/// shell, audited as such. The running agent shows the decision in Telegram
/// and tells the requester.
pub async fn decide(path: Option<PathBuf>, id: &str, approve: bool) -> anyhow::Result<()> {
    use crate::approvals::{DecideOutcome, Vote};
    let config = load_config(path)?;
    let agent = approvals_store_agent(&config, None)?;
    let store = crate::store::Store::open_agent(&config.database_url(&agent), &agent).await?;
    let user = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    let voter = crate::store::approvals::Voter {
        id: format!("shell:{user}"),
        name: format!("{user} (shell)"),
    };
    let vote = if approve { Vote::Approve } else { Vote::Deny };
    match store
        .decide_approval(id, &voter, vote, true, Utc::now())
        .await?
    {
        DecideOutcome::Decided { status, .. } => {
            println!("{id} {status}");
            Ok(())
        }
        DecideOutcome::AlreadyDecided { status, by, at } => Err(bad_input(format!(
            "{id} was already {status} by {by} at {}",
            at.format("%Y-%m-%d %H:%M:%S UTC")
        ))),
        DecideOutcome::Expired { at } => Err(bad_input(format!(
            "{id} expired at {} and counts as denied; ask again with `switchyard approval request`",
            at.format("%Y-%m-%d %H:%M:%S UTC")
        ))),
        DecideOutcome::Unknown => Err(bad_input(format!(
            "no approval has the id {id:?}; `switchyard approvals` lists them"
        ))),
        DecideOutcome::Awaiting { .. } | DecideOutcome::AlreadyVoted => {
            unreachable!("a forced decision is never left waiting")
        }
    }
}
