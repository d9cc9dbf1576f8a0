//! The Discord adapter end to end: a real `switchyard run` process (with
//! serenity and poise inside) against the sandbox's gateway and REST over 127.0.0.1.
//! The sandbox plays the users; the tests read the recorded interaction
//! answers, the channels, and the agent's own database (audit rows).

use crate::common;

use std::time::Duration;

use common::{DISCORD_CHANNELS, Fleet, event, wait_for};
use serde_json::{Value, json};
use switchyard_sandbox::{DiscordUserCommand, InteractionState};

/// `MTAw` is base64 for `100`: the sandbox reads the bot's user id from the token.
const BOT: u64 = 100;
const OPERATOR: u64 = 200;
const READER_ROLE: u64 = 400;
/// A Discord approver (`discord.access.approvers`).
const APPROVER: u64 = 500;
/// The Telegram approver's number, used by someone in Discord: ids are per
/// platform, so this Discord user is no approver.
const TELEGRAM_APPROVERS_NUMBER: u64 = common::OPERATOR_CHAT as u64;
const STRANGER: u64 = 300;
const GUILD: u64 = 900_000_000_000_000_000;

const ACCESS: &str = "\n[discord.access]\nread = [\"role:400\", \"user:200\", \"user:424242\", \"user:500\"]\n\
                      operate = [\"user:200\"]\nadmin = [\"user:200\"]\napprovers = [\"user:500\"]\n";

async fn fleet_with_manager() -> Fleet {
    let mut fleet = Fleet::new(&["manager"], ACCESS).await;
    fleet.spawn_agent("manager").await;
    connected(&fleet).await;
    fleet
}

/// Wait until the bot is connected and its commands are registered (setup done).
async fn connected(fleet: &Fleet) {
    wait_for(
        Duration::from_secs(30),
        "the bot to connect and register",
        || {
            let g = fleet.state().gateway;
            (!g.connections.is_empty() && !g.registered.is_empty()).then_some(())
        },
    )
    .await;
}

fn channel(alias: &str) -> u64 {
    DISCORD_CHANNELS
        .iter()
        .find(|(a, _)| *a == alias)
        .map(|(_, id)| *id)
        .unwrap()
}

struct Run<'a> {
    user: u64,
    roles: Vec<u64>,
    command: &'a str,
    sub: Option<&'a str>,
    options: Vec<(&'a str, Value)>,
}

fn cmd(user: u64, command: &str) -> Run<'_> {
    Run {
        user,
        roles: Vec::new(),
        command,
        sub: None,
        options: Vec::new(),
    }
}

impl<'a> Run<'a> {
    fn opt(mut self, name: &'a str, value: Value) -> Self {
        self.options.push((name, value));
        self
    }
    fn sub(mut self, sub: &'a str) -> Self {
        self.sub = Some(sub);
        self
    }
    fn roles(mut self, roles: &[u64]) -> Self {
        self.roles = roles.to_vec();
        self
    }
}

/// Play the command and wait for its final answer (a message, not a deferral).
async fn run(fleet: &Fleet, r: Run<'_>) -> InteractionState {
    let id = fleet
        .sandbox
        .discord_run_command(DiscordUserCommand {
            user_id: r.user,
            roles: r.roles,
            command: r.command.into(),
            subcommand: r.sub.map(str::to_string),
            options: r
                .options
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            ..DiscordUserCommand::default()
        })
        .expect("a bot is connected");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        let s = fleet.sandbox.discord_interaction(id).expect("recorded");
        if s.responses
            .iter()
            .any(|x| x.status < 300 && (x.kind != "callback" || x.body["type"].as_u64() != Some(5)))
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "no answer to /{} within 20 s: {:?}",
        r.command,
        fleet.sandbox.discord_interaction(id)
    );
}

fn assert_refused(s: &InteractionState) {
    assert!(
        s.text().contains("Not allowed"),
        "/{} should be refused: {}",
        s.command,
        s.text()
    );
    assert!(s.ephemeral(), "a refusal is ephemeral: {s:?}");
}

fn assert_done(s: &InteractionState) {
    let text = s.text();
    assert!(
        !text.contains("Not allowed") && !text.contains("Something went wrong"),
        "/{} should run: {text}",
        s.command
    );
}

async fn audit_rows(fleet: &Fleet) -> Vec<switchyard::store::AuditEntry> {
    let config = switchyard::config::Config::load(&switchyard::config::ConfigSource::File(
        fleet.config_file.clone(),
    ))
    .expect("config");
    let store = switchyard::store::Store::open_agent(&config.database_url("manager"), "manager")
        .await
        .expect("open the agent's database");
    store.recent_audit(1000).await.expect("audit rows")
}

#[test]
fn every_command_answers_a_permitted_user_and_refuses_a_stranger() {
    common::multi_thread().block_on(async {
        let fleet = fleet_with_manager().await;

        // Read class through a role.
        let s = run(&fleet, cmd(STRANGER, "status").roles(&[READER_ROLE])).await;
        assert_done(&s);
        assert!(s.text().contains("manager"), "{}", s.text());

        let mute = run(
            &fleet,
            cmd(OPERATOR, "mute")
                .opt("target", json!("system"))
                .opt("for", json!("1h"))
                .opt("reason", json!("deploy")),
        )
        .await;
        assert_done(&mute);
        let mute_id = mute
            .text()
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .find(|w| w.starts_with("mute_"))
            .expect("the reply names the mute id")
            .to_string();

        let permitted: Vec<(Run, &str)> = vec![
            (cmd(OPERATOR, "status"), "status"),
            (cmd(OPERATOR, "mutes"), "mutes"),
            (
                cmd(OPERATOR, "route").opt("category", json!("alert")),
                "route",
            ),
            (
                cmd(OPERATOR, "send")
                    .opt("category", json!("chat"))
                    .opt("title", json!("hello from discord")),
                "send",
            ),
            (cmd(OPERATOR, "task").sub("list"), "task"),
            (cmd(OPERATOR, "approvals"), "approvals"),
            (
                cmd(APPROVER, "approve").opt("id", json!("apr_1")),
                "approve",
            ),
            (cmd(APPROVER, "deny").opt("id", json!("apr_1")), "deny"),
            (cmd(OPERATOR, "kill").opt("agent", json!("manager")), "kill"),
            (
                cmd(OPERATOR, "resume").opt("agent", json!("manager")),
                "resume",
            ),
            (
                cmd(OPERATOR, "unmute").opt("id", json!(mute_id.clone())),
                "unmute",
            ),
        ];
        for (r, name) in permitted {
            let s = run(&fleet, r).await;
            assert_done(&s);
            // Tasks and approvals are live; none exist in this fleet yet.
            match name {
                "task" => assert!(s.text().contains("No tasks"), "/{name}: {}", s.text()),
                "approvals" => {
                    assert!(
                        s.text().contains("No pending approvals"),
                        "/{name}: {}",
                        s.text()
                    )
                }
                "approve" | "deny" => assert!(
                    s.text().contains("No approval has the id apr_1"),
                    "/{name}: {}",
                    s.text()
                ),
                _ => {}
            }
        }

        let refused: Vec<Run> = vec![
            cmd(STRANGER, "status"),
            cmd(STRANGER, "mute")
                .opt("target", json!("system"))
                .opt("for", json!("1h")),
            cmd(STRANGER, "unmute").opt("id", json!("mute_1")),
            cmd(STRANGER, "mutes"),
            cmd(STRANGER, "route").opt("category", json!("alert")),
            cmd(STRANGER, "send")
                .opt("category", json!("chat"))
                .opt("title", json!("x")),
            cmd(STRANGER, "task").sub("list"),
            cmd(STRANGER, "approvals"),
            cmd(OPERATOR, "approve").opt("id", json!("apr_1")),
            cmd(TELEGRAM_APPROVERS_NUMBER, "approve").opt("id", json!("apr_1")),
            cmd(STRANGER, "deny").opt("id", json!("apr_1")),
            cmd(STRANGER, "kill"),
            // Read class is not enough for the kill switch.
            cmd(STRANGER, "resume").roles(&[READER_ROLE]),
        ];
        let n_refused = refused.len();
        for r in refused {
            assert_refused(&run(&fleet, r).await);
        }

        let mut rows = audit_rows(&fleet).await;
        for _ in 0..100 {
            if rows.len() >= 13 + n_refused {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            rows = audit_rows(&fleet).await;
        }
        let refusals = rows.iter().filter(|r| r.outcome == "refused").count();
        assert_eq!(refusals, n_refused, "{rows:#?}");
        assert!(rows.iter().any(|r| r.action == "command.mute"
            && r.outcome == "done"
            && r.actor == format!("discord:{OPERATOR}")));
        assert!(rows.iter().any(|r| r.action == "command.kill"
            && r.outcome == "refused"
            && r.actor == format!("discord:{STRANGER}")));
    });
}

#[test]
fn a_discord_mute_holds_system_events_and_unmute_posts_one_digest() {
    common::multi_thread().block_on(async {
        let fleet = fleet_with_manager().await;
        let mute = run(
            &fleet,
            cmd(OPERATOR, "mute")
                .opt("target", json!("system"))
                .opt("for", json!("1h")),
        )
        .await;
        assert_done(&mute);
        let mute_id = mute
            .text()
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .find(|w| w.starts_with("mute_"))
            .expect("mute id")
            .to_string();
        let system = channel("system");
        // The start notice, as for a CLI mute.
        wait_for(Duration::from_secs(15), "the mute start notice", || {
            fleet
                .state()
                .discord_messages(system)
                .iter()
                .any(|m| m.text().contains("Muted: system"))
                .then_some(())
        })
        .await;
        for i in 0..3 {
            fleet.drop(
                "manager",
                &format!("evt_sys_{i}"),
                &event(
                    &format!("evt_sys_{i}"),
                    "system",
                    "info",
                    &format!("held {i}"),
                ),
            );
        }
        for i in 0..3 {
            fleet
                .wait_result("manager", "done", &format!("evt_sys_{i}"))
                .await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let texts: Vec<String> = fleet
            .state()
            .discord_messages(system)
            .iter()
            .map(|m| m.text())
            .collect();
        assert!(
            texts.iter().all(|t| !t.contains("held ")),
            "muted events were posted: {texts:?}"
        );

        let lifted = run(&fleet, cmd(OPERATOR, "unmute").opt("id", json!(mute_id))).await;
        assert_done(&lifted);
        let digest = wait_for(Duration::from_secs(15), "one digest", || {
            fleet
                .state()
                .discord_messages(system)
                .iter()
                .map(|m| m.text())
                .find(|t| t.contains("While muted"))
        })
        .await;
        assert!(digest.contains('3'), "{digest}");
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let texts: Vec<String> = fleet
            .state()
            .discord_messages(system)
            .iter()
            .map(|m| m.text())
            .collect();
        assert_eq!(
            texts.iter().filter(|t| t.contains("While muted")).count(),
            1,
            "{texts:?}"
        );
        assert!(
            texts.iter().any(|t| t.contains("ended")),
            "the end notice: {texts:?}"
        );
    });
}

#[test]
fn muting_alerts_needs_force_and_says_why() {
    common::multi_thread().block_on(async {
        let fleet = fleet_with_manager().await;
        let s = run(
            &fleet,
            cmd(OPERATOR, "mute")
                .opt("target", json!("alert"))
                .opt("for", json!("1h")),
        )
        .await;
        let text = s.text();
        assert!(text.contains("was not done"), "{text}");
        assert!(text.contains("force"), "{text}");
        assert!(s.ephemeral());
        let forced = run(
            &fleet,
            cmd(OPERATOR, "mute")
                .opt("target", json!("alert"))
                .opt("for", json!("1h"))
                .opt("force", json!(true)),
        )
        .await;
        assert_done(&forced);
        assert!(forced.text().contains("Muted alert"), "{}", forced.text());
    });
}

#[test]
fn after_a_dropped_connection_the_agent_resumes_and_answers() {
    common::multi_thread().block_on(async {
        let fleet = fleet_with_manager().await;
        assert_done(&run(&fleet, cmd(OPERATOR, "status")).await);
        assert_eq!(fleet.sandbox.discord_disconnect(), 1);
        let g = wait_for(Duration::from_secs(30), "a resumed session", || {
            let g = fleet.state().gateway;
            (g.resumes >= 1 && !g.connections.is_empty()).then_some(g)
        })
        .await;
        assert_eq!(g.identifies, 1, "resumed, not identified again");
        assert_done(&run(&fleet, cmd(OPERATOR, "status")).await);
    });
}

#[test]
fn a_slow_handler_defers_instead_of_missing_the_3_second_window() {
    common::multi_thread().block_on(async {
        let fleet = fleet_with_manager().await;
        // Hold the status file's lock: /mute must wait for it, as behind a busy peer.
        let lock_path = fleet.workspace().join("status.json.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .unwrap();
        lock.lock().unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(4));
            drop(lock);
        });
        let s = run(
            &fleet,
            cmd(OPERATOR, "mute")
                .opt("target", json!("system"))
                .opt("for", json!("1h")),
        )
        .await;
        release.join().unwrap();
        let first = &s.responses[0];
        assert_eq!(first.kind, "callback", "{s:?}");
        assert_eq!(first.body["type"], 5, "deferred first: {s:?}");
        assert!(
            s.responses.iter().all(|r| r.status < 300),
            "nothing refused (late or twice): {s:?}"
        );
        assert!(
            s.responses
                .iter()
                .any(|r| r.kind == "followup" && s.text().contains("Muted")),
            "{s:?}"
        );
    });
}

#[test]
fn commands_are_registered_once_and_not_again_when_unchanged() {
    common::multi_thread().block_on(async {
        let mut fleet = fleet_with_manager().await;
        let g = fleet.state().gateway;
        let reg = &g.registered[0];
        assert_eq!(reg.guild_id, GUILD);
        assert_eq!(reg.application_id, BOT);
        let names: Vec<&str> = reg
            .commands
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        for spec in switchyard_commands::COMMANDS {
            assert!(
                names.contains(&spec.name),
                "{} missing: {names:?}",
                spec.name
            );
        }
        let creates = g.creates_today[&GUILD.to_string()];
        assert_eq!(creates as usize, switchyard_commands::COMMANDS.len());
        fleet.stop_agent("manager").await;
        fleet.spawn_agent("manager").await;
        wait_for(Duration::from_secs(30), "the bot to reconnect", || {
            let g = fleet.state().gateway;
            (g.identifies >= 2 && !g.connections.is_empty()).then_some(())
        })
        .await;
        assert_done(&run(&fleet, cmd(OPERATOR, "status")).await);
        let puts = fleet
            .state()
            .recent_requests
            .iter()
            .filter(|r| r.route == "guild_commands" && r.method == "PUT")
            .count();
        assert_eq!(puts, 1, "the unchanged set was registered again");
    });
}

#[test]
fn the_status_board_is_one_message_edited_in_place_across_restarts() {
    common::multi_thread().block_on(async {
        let mut fleet = fleet_with_manager().await;
        let system = channel("system");
        let boards = |fleet: &Fleet| {
            fleet
                .state()
                .discord_messages(system)
                .iter()
                .filter(|m| m.text().contains(common::STATUS_BOARD_TITLE))
                .cloned()
                .collect::<Vec<_>>()
        };
        let first = wait_for(Duration::from_secs(20), "the board, edited once", || {
            boards(&fleet).into_iter().find(|m| m.edited)
        })
        .await;
        assert!(first.text().contains("manager"), "{}", first.text());
        assert_eq!(boards(&fleet).len(), 1);
        let edited_before = first.edited_timestamp.clone();

        fleet.stop_agent("manager").await;
        fleet.spawn_agent("manager").await;
        wait_for(
            Duration::from_secs(20),
            "the same board edited after the restart",
            || {
                boards(&fleet)
                    .into_iter()
                    .find(|m| m.id == first.id && m.edited_timestamp != edited_before)
            },
        )
        .await;
        assert_eq!(boards(&fleet).len(), 1, "one board, not one per start");
        // The board's edits go through the outbox's limiter, restart included.
        assert_eq!(
            fleet.state().stats.discord.rate_limited,
            0,
            "no 429 provoked"
        );
        let heartbeat_events = common::discord_texts(&fleet.state(), "system");
        assert!(
            heartbeat_events
                .iter()
                .all(|t| !t.contains(common::STATUS_BOARD_TITLE)),
            "{heartbeat_events:?}"
        );
    });
}

#[test]
fn autocomplete_offers_the_known_values() {
    common::multi_thread().block_on(async {
        let fleet = fleet_with_manager().await;
        let mute = run(
            &fleet,
            cmd(OPERATOR, "mute")
                .opt("target", json!("system"))
                .opt("for", json!("1h")),
        )
        .await;
        assert_done(&mute);
        let complete = |command: &str, option: &str, typed: &str| DiscordUserCommand {
            user_id: OPERATOR,
            command: command.into(),
            options: vec![(option.into(), json!(typed))],
            focused: Some(option.into()),
            ..DiscordUserCommand::default()
        };
        for (command, option, typed, expect) in [
            ("kill", "agent", "man", "manager"),
            ("mute", "target", "sys", "system"),
            ("unmute", "id", "mute_", "mute_"),
            ("route", "category", "al", "alert"),
        ] {
            let id = fleet
                .sandbox
                .discord_run_command(complete(command, option, typed))
                .unwrap();
            let s = wait_for(Duration::from_secs(10), "the choices", || {
                fleet
                    .sandbox
                    .discord_interaction(id)
                    .filter(|s| s.callback().is_some())
            })
            .await;
            assert_eq!(s.callback().unwrap().body["type"], 8, "{s:?}");
            let choices = s.choices();
            assert!(
                choices.iter().any(|c| c.starts_with(expect)),
                "/{command} {option}:{typed} offered {choices:?}"
            );
        }
    });
}

#[test]
fn tasks_are_submitted_listed_shown_and_cancelled_from_discord() {
    common::multi_thread().block_on(async {
        // The task's skill must exist; the policy parks it (risk high + git push),
        // so it waits for a human and no container runs.
        let mut fleet = Fleet::new(
            &["manager"],
            &format!("{ACCESS}\n[skills.sh]\nimage = \"switchyard-worker:latest\"\ncommand = [\"sh\", \"-c\"]\n"),
        )
        .await;
        fleet.spawn_agent("manager").await;
        connected(&fleet).await;
        let spec = json!({"id": "tsk_chat", "title": "Push from chat", "priority": "urgent", "risk": "high",
            "skills": ["sh"], "steps": [{"skill": "sh", "args": ["git push origin feature"]}]});
        let s = run(&fleet, cmd(OPERATOR, "task").sub("submit").opt("spec", json!(spec.to_string()))).await;
        assert_done(&s);
        assert!(s.text().contains("tsk_chat"), "{}", s.text());
        let s = run(&fleet, cmd(STRANGER, "task").sub("submit").opt("spec", json!(spec.to_string()))).await;
        assert!(s.text().contains("Not allowed") || s.text().contains("not allowed"), "{}", s.text());

        // Docker absent: the item is refused with the reason; present: it parks awaiting approval.
        wait_for(Duration::from_secs(60), "the task item to be handled", || {
            let done = fleet.result("manager", "done", "tsk_chat");
            let failed = fleet.result("manager", "failed", "tsk_chat");
            done.or(failed)
        })
        .await;
        if let Some(refused) = fleet.result("manager", "failed", "tsk_chat") {
            let reason = refused.to_string();
            assert!(reason.contains("Docker"), "refused for another reason than Docker: {reason}");
            assert_ne!(std::env::var("SWITCHYARD_REQUIRE_DOCKER").as_deref(), Ok("1"), "{reason}");
            eprintln!("\n!!!!!!!! SKIPPED the rest: no Docker engine, the task was refused: {reason} !!!!!!!!\n");
            return;
        }
        let s = run(&fleet, cmd(OPERATOR, "task").sub("list")).await;
        assert!(s.text().contains("tsk_chat") && s.text().contains("awaiting_approval"), "{}", s.text());
        let s = run(&fleet, cmd(OPERATOR, "task").sub("show").opt("id", json!("tsk_chat"))).await;
        assert!(s.text().contains("git push origin feature"), "{}", s.text());
        let s = run(&fleet, cmd(OPERATOR, "task").sub("cancel").opt("id", json!("tsk_chat"))).await;
        assert_done(&s);
        let s = run(&fleet, cmd(OPERATOR, "task").sub("show").opt("id", json!("tsk_chat"))).await;
        assert!(s.text().contains("cancelled"), "{}", s.text());
        let s = run(&fleet, cmd(OPERATOR, "task").sub("cancel").opt("id", json!("tsk_chat"))).await;
        assert!(s.text().contains("only a queued or waiting task"), "{}", s.text());
    });
}

/// A JSON value checked for objects that name a key twice (serde_json keeps
/// the last one silently; so does nearly every log shipper).
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<UniqueKeys, A::Error> {
        while a.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = m.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "the key {key:?} appears twice"
                )));
            }
            m.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }
}

/// Starts the fleet's manager with `env`, its log (stderr) written to `log`.
fn spawn_logging_to(fleet: &mut Fleet, log: &std::path::Path, env: &[(&str, &str)]) {
    let child = fleet
        .command()
        .envs(env.iter().copied())
        .args(["run", "--agent", "manager"])
        .stdin(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("spawn the agent");
    fleet.agents.push(common::AgentProcess {
        name: "manager".into(),
        child,
    });
}

#[test]
fn text_logs_into_a_file_carry_no_colour_codes() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], ACCESS).await;
        let log_path = fleet.dir.path().join("manager.log");
        spawn_logging_to(&mut fleet, &log_path, &[("SWITCHYARD_LOG", "info")]);
        connected(&fleet).await;
        assert!(fleet.stop_agent("manager").await.success());
        let log = std::fs::read_to_string(&log_path).unwrap();
        assert!(log.lines().count() >= 3, "{log}");
        assert!(
            !log.contains('\u{1b}'),
            "ANSI escapes in a log that is not a terminal: {log:?}"
        );
    });
}

#[test]
fn every_json_log_line_is_one_object_with_unique_keys() {
    common::multi_thread().block_on(async {
        let mut fleet = Fleet::new(&["manager"], ACCESS).await;
        let log_path = fleet.dir.path().join("manager.log.json");
        spawn_logging_to(
            &mut fleet,
            &log_path,
            &[
                ("SWITCHYARD_LOG_FORMAT", "json"),
                ("SWITCHYARD_LOG", "info,switchyard=debug"),
            ],
        );
        connected(&fleet).await;
        // The board is posted and then edited: its lines carry the message's id.
        let system = channel("system");
        wait_for(Duration::from_secs(20), "the board, edited once", || {
            let state = fleet.state();
            state
                .discord_messages(system)
                .iter()
                .find(|m| m.text().contains(common::STATUS_BOARD_TITLE) && m.edited)
                .cloned()
        })
        .await;
        fleet.drop(
            "manager",
            "evt_json_logs",
            &event("evt_json_logs", "alert", "critical", "JSON logs alert"),
        );
        wait_for(Duration::from_secs(20), "the alert posted", || {
            let state = fleet.state();
            DISCORD_CHANNELS
                .iter()
                .flat_map(|(alias, _)| common::discord_texts(&state, alias))
                .find(|t| t.contains("JSON logs alert"))
        })
        .await;
        assert!(fleet.stop_agent("manager").await.success());

        let log = std::fs::read_to_string(&log_path).unwrap();
        let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(lines.len() >= 5, "{log}");
        let mut board_line = None;
        for line in &lines {
            if let Err(e) = serde_json::from_str::<UniqueKeys>(line) {
                panic!("a log line is not one JSON object with unique keys ({e}): {line}");
            }
            let v: Value = serde_json::from_str(line).unwrap();
            assert!(v.is_object(), "{line}");
            let text = v["fields"]["message"].as_str();
            assert!(
                text.is_some_and(|t| !t.is_empty()),
                "every line says what happened: {line}"
            );
            if text == Some("status board running") {
                board_line = Some(v);
            }
        }
        let board = board_line.unwrap_or_else(|| panic!("no \"status board running\" line: {log}"));
        assert!(board["fields"].get("message_id").is_some(), "{board}");
    });
}
