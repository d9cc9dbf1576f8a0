//! What switchyard reads from Discord and GitHub, chosen by the first byte
//! (the rest is the body). Only what the public API reaches without a network:
//!
//! 0: a Discord message object (the body of `POST /channels/{id}/messages`,
//!    read by delivery/discord.rs as `serenity::model::channel::Message`, and
//!    a gateway MESSAGE_CREATE): deserialised, then `discord::mentions::addressed_to`.
//! 1: a Discord INTERACTION_CREATE for a slash command
//!    (`serenity::model::application::Interaction::Command`):
//!    `discord::commands::command_input`, `caller_of`, then
//!    `switchyard_commands::Command::from_input` as discord/commands.rs runs it.
//! 2: a Discord error body (`serenity::http::DiscordJsonError`, what
//!    serenity hands to delivery/discord.rs's `classify_serenity`), then
//!    `delivery::render::truncate` as `classify_status` cuts it.
//! 3: the GitHub task registry (`active-tasks.json`): `github::registry::parse`.
//! 4: the GitHub REST bodies of one monitor pass (pull, compare, check-runs,
//!    combined status, reviews) beside a registry record, read as the client's
//!    own wire types (`github::client::PullJson`, ...) and turned into a
//!    `Snapshot` by `PullJson::into_snapshot` and `client::snapshot_of`, the
//!    pure half of `GithubClient::snapshot`; then
//!    `github::requirements::evaluate` and `classify`, as the monitor does.
#![no_main]

use std::path::Path;

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use switchyard::github::registry::{self, TaskRecord, TrackedTask};
use switchyard::github::failures::{Deadlines, classify};
use switchyard::github::requirements::{PullState, RequiredChecks, Snapshot, evaluate};

/// `FUZZ_DEBUG=1`: say on stderr which body parsed (to check seeds).
static DEBUG: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var_os("FUZZ_DEBUG").is_some());

macro_rules! debug {
    ($($t:tt)*) => { if *DEBUG { eprintln!($($t)*); } };
}

const BOT: u64 = 1_150_000_000_000_000_001;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => discord_message(body),
        1 => discord_interaction(body),
        2 => discord_error(body),
        3 => github_registry(body),
        _ => github_pass(body),
    }
});

fn discord_message(body: &[u8]) {
    let msg = match serde_json::from_slice::<serenity::model::channel::Message>(body) {
        Ok(m) => m,
        Err(e) => {
            debug!("discord message not parsed: {e}");
            return;
        }
    };
    debug!("discord message {} parsed", msg.id);
    let _ = switchyard::discord::mentions::addressed_to(&msg, BOT, None);
    let _ = switchyard::discord::mentions::addressed_to(&msg, BOT, Some(BOT));
}

fn discord_interaction(body: &[u8]) {
    // The gateway parses the `Interaction` enum (which also hands the guild
    // id to the member); a slash command is its `Command` variant.
    let i = match serde_json::from_slice::<serenity::model::application::Interaction>(body) {
        Ok(serenity::model::application::Interaction::Command(i)) => i,
        Ok(_) => return,
        Err(e) => {
            debug!("discord interaction not parsed: {e}");
            return;
        }
    };
    let input = switchyard::discord::commands::command_input(&i);
    debug!("discord interaction parsed: {input:?}");
    let _ = switchyard::discord::commands::caller_of(&i);
    match switchyard_commands::Command::from_input(&input) {
        Ok(c) => {
            let _ = c.to_input();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fn discord_error(body: &[u8]) {
    let Ok(e) = serde_json::from_slice::<serenity::http::DiscordJsonError>(body) else {
        return;
    };
    debug!("discord error parsed: {e:?}");
    let _ = switchyard::delivery::render::truncate(e.message.trim(), 300);
    for single in &e.errors {
        let _ = switchyard::delivery::render::truncate(&single.message, 300);
    }
}

fn github_registry(body: &[u8]) {
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    match registry::parse(text, Path::new("active-tasks.json")) {
        Ok(tasks) => {
            debug!("registry parsed: {} tasks", tasks.len());
            let _ = registry::render(&tasks);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

// ---------------------------------------------------------------------------
// The client's own wire types and its pure `snapshot_of`: the real code, fed
// what a pass of GETs could return.

use switchyard::github::client::{
    CheckRunsJson, CombinedJson, CompareJson, PullJson, ReviewJson, snapshot_of,
};

/// One pass's worth of responses, as the fuzzer writes them.
#[derive(Deserialize)]
struct Pass {
    task: TaskRecord,
    pull: Option<PullJson>,
    compare: Option<CompareJson>,
    check_runs: Option<CheckRunsJson>,
    status: Option<CombinedJson>,
    #[serde(default)]
    reviews: Vec<ReviewJson>,
    /// Milliseconds since the epoch; the clock of `classify`.
    #[serde(default)]
    now_ms: Option<i64>,
}

/// client.rs `GithubClient::snapshot`, after the GETs.
fn snapshot(pass: Pass) -> Snapshot {
    let Some(pr) = pass.pull.map(PullJson::into_snapshot) else {
        return Snapshot::default();
    };
    match (pass.compare, pass.check_runs, pass.status) {
        (Some(compare), Some(runs), Some(status)) if pr.state == PullState::Open => {
            snapshot_of(pr, compare, runs, status, pass.reviews)
        }
        _ => Snapshot {
            pr: Some(pr),
            ..Snapshot::default()
        },
    }
}
// ---------------------------------------------------------------------------

fn github_pass(body: &[u8]) {
    let pass = match serde_json::from_slice::<Pass>(body) {
        Ok(p) => p,
        Err(e) => {
            debug!("github pass not parsed: {e}");
            return;
        }
    };
    let now = pass
        .now_ms
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .unwrap_or_else(|| Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap());
    let Ok(task) = TrackedTask::new(pass.task.clone()) else {
        return;
    };
    let required = match &task.record.required_checks {
        Some(names) => RequiredChecks::Named(names.clone()),
        None => RequiredChecks::All,
    };
    let snap = snapshot(pass);
    let reqs = evaluate(&snap, &required, &[]);
    debug!("github pass parsed: {} missing", reqs.missing.len());
    for m in &reqs.missing {
        let _ = m.to_string();
    }
    if let Some(f) = classify(&task, &snap, &reqs, &Deadlines::default(), now) {
        let _ = f.class.to_string();
    }
}
