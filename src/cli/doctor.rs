//! `switchyard doctor`: the configuration checked against the world, one
//! line per check with the fix. For each agent: its bot tokens work
//! (Discord `GET /users/@me`, Telegram `getMe`), every configured channel
//! and chat exists and the bot reaches it, its workspace folder is
//! writable, its listen address is free (or held by the running agent);
//! for the fleet: Docker answers and each skill's image exists, GitHub
//! answers with the token's scopes and rate limit. Exit 2 when a check fails.

use std::path::PathBuf;

use crate::config::{AgentSettings, Config, Secret};
use crate::error::{TokenCheck, bad_input};

/// One check's verdict.
enum Verdict {
    Ok(String),
    Warn(String),
    Fail(String),
}

struct Report {
    failed: usize,
}

impl Report {
    fn say(&mut self, what: &str, v: Verdict) {
        match v {
            Verdict::Ok(s) => println!("ok    {what}: {s}"),
            Verdict::Warn(s) => println!("warn  {what}: {s}"),
            Verdict::Fail(s) => {
                self.failed += 1;
                println!("FAIL  {what}: {s}");
            }
        }
    }
}

fn secret(env: &str) -> Option<Secret> {
    std::env::var(env)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(Secret::new)
}

fn token_verdict(env: &str, check: TokenCheck) -> Verdict {
    match check {
        TokenCheck::Accepted { bot } => Verdict::Ok(format!("{env} is accepted: bot {bot}")),
        TokenCheck::Refused { reason, hint, .. } => {
            Verdict::Fail(format!("{env} was refused ({reason}): {hint}"))
        }
        TokenCheck::Unreachable { error } => Verdict::Fail(format!(
            "no answer about {env} ({error}): check the network and the api_base"
        )),
    }
}

pub async fn doctor(path: Option<PathBuf>, only: Option<&str>) -> anyhow::Result<()> {
    let config = super::load_config(path)?;
    let agents: Vec<&AgentSettings> = match only {
        Some(name) => vec![config.require_agent(name)?],
        None => config.agents.iter().collect(),
    };
    let mut r = Report { failed: 0 };
    for agent in agents {
        check_agent(&config, agent, &mut r).await;
    }
    check_fleet(&config, &mut r).await;
    if r.failed > 0 {
        return Err(bad_input(format!(
            "{} check(s) failed: fix what the FAIL lines say, then run `switchyard doctor` again",
            r.failed
        )));
    }
    println!("every check passed");
    Ok(())
}

/// The slash commands on the guild: registered by the agent at start-up,
/// so missing ones before its first run are a warning, not a failure.
async fn check_commands(
    d: &crate::config::DiscordSettings,
    token: &Secret,
    name: &str,
    r: &mut Report,
) {
    use crate::discord::CommandsCheck;
    let what = format!("{name} discord commands");
    let Some(guild) = d.guild_id else {
        r.say(&what, Verdict::Warn("discord.guild_id is not set: slash commands are not registered anywhere; set it to the server's id".into()));
        return;
    };
    let v = match crate::discord::check_commands(d, token, guild).await {
        Ok(CommandsCheck::Registered(n)) => {
            Verdict::Ok(format!("{n} slash commands registered on guild {guild}"))
        }
        Ok(CommandsCheck::Missing(names)) => Verdict::Warn(format!(
            "not registered on guild {guild}: /{}; the agent registers them when it starts (it needs the bot invited with the applications.commands scope)",
            names.join(", /")
        )),
        Err(why) => Verdict::Fail(format!("cannot list the guild's commands: {why}")),
    };
    r.say(&what, v);
}

async fn check_agent(config: &Config, agent: &AgentSettings, r: &mut Report) {
    let name = agent.name.as_str();
    if let (Some(d), Some(env)) = (&config.discord, &agent.discord_token_env) {
        match secret(env) {
            None => r.say(
                &format!("{name} discord token"),
                Verdict::Fail(format!("{env} is not set: export the bot's token in it")),
            ),
            Some(token) => {
                let check = crate::discord::check_token(d, &token).await;
                let accepted = matches!(check, TokenCheck::Accepted { .. });
                r.say(&format!("{name} discord token"), token_verdict(env, check));
                if accepted {
                    for (alias, id) in &d.channels {
                        let v = match crate::discord::check_channel(d, &token, *id).await {
                            Ok(title) => Verdict::Ok(format!("{title} ({id}) is reachable")),
                            Err(why) => Verdict::Fail(why),
                        };
                        r.say(&format!("{name} discord:{alias}"), v);
                    }
                    check_commands(d, &token, name, r).await;
                }
            }
        }
    }
    if let (Some(t), Some(env)) = (&config.telegram, &agent.telegram_token_env) {
        match secret(env) {
            None => r.say(
                &format!("{name} telegram token"),
                Verdict::Fail(format!("{env} is not set: export the bot's token in it")),
            ),
            Some(token) => {
                let check = crate::telegram::check_token(t, &token).await;
                let accepted = matches!(check, TokenCheck::Accepted { .. });
                r.say(&format!("{name} telegram token"), token_verdict(env, check));
                if accepted {
                    for (alias, id) in &t.chats {
                        let v = match crate::telegram::check_chat(t, &token, *id).await {
                            Ok(title) => Verdict::Ok(format!("{title} ({id}) is reachable")),
                            Err(why) => Verdict::Fail(why),
                        };
                        r.say(&format!("{name} telegram:{alias}"), v);
                    }
                }
            }
        }
    }
    let dir = config.agent_dir(name);
    let writable = std::fs::create_dir_all(&dir).and_then(|()| {
        let probe = dir.join(format!(".switchyard-doctor-{}", std::process::id()));
        std::fs::write(&probe, b"")?;
        std::fs::remove_file(&probe)
    });
    r.say(
        &format!("{name} workspace"),
        match writable {
            Ok(()) => Verdict::Ok(format!("{} is writable", dir.display())),
            Err(e) => Verdict::Fail(format!(
                "{} cannot be written ({e}): fix its owner or mount, or set [fleet] workspace",
                dir.display()
            )),
        },
    );
    if let Some(listen) = agent.listen {
        let v = match std::net::TcpListener::bind(listen) {
            Ok(_) => Verdict::Ok(format!("{listen} is free")),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Verdict::Warn(format!(
                "{listen} is in use: fine if {name} is running; otherwise another program holds it (change `listen`)"
            )),
            Err(e) => Verdict::Fail(format!("{listen} cannot be bound ({e}): change `listen`")),
        };
        r.say(&format!("{name} listen"), v);
    }
}

/// Session skills: tmux answers, each skill's program exists, each
/// configured clone is a git repository, the worktrees folder is writable.
async fn check_sessions(config: &Config, r: &mut Report) {
    let sessions: Vec<(&String, &crate::config::SkillSettings)> = config
        .skills
        .iter()
        .filter(|(_, s)| s.session.is_some())
        .collect();
    if sessions.is_empty() {
        return;
    }
    let tmux = std::process::Command::new("tmux").arg("-V").output();
    r.say(
        "tmux",
        match tmux {
            Ok(o) if o.status.success() => {
                Verdict::Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
            }
            _ => Verdict::Fail("not installed: session skills need it (apt install tmux)".into()),
        },
    );
    for (name, skill) in sessions {
        let program = skill.command.first().map(String::as_str).unwrap_or("");
        let found = if program.contains('/') {
            std::path::Path::new(program).is_file()
        } else {
            std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        };
        r.say(
            &format!("session skill {name}"),
            if found {
                Verdict::Ok(format!("{program} exists"))
            } else {
                Verdict::Fail(format!(
                    "{program} is not found: fix [skills.{name}] command"
                ))
            },
        );
    }
    for (repo, clone) in &config.sessions.repos {
        let git = std::process::Command::new("git")
            .arg("-C")
            .arg(clone)
            .args(["rev-parse", "--git-dir"])
            .output();
        r.say(
            &format!("clone of {repo}"),
            match git {
                Ok(o) if o.status.success() => {
                    Verdict::Ok(format!("{} is a git repository", clone.display()))
                }
                _ => Verdict::Fail(format!(
                    "{} is not a git repository: clone {repo} there or fix [sessions.repos]",
                    clone.display()
                )),
            },
        );
    }
    let wt = &config.sessions.worktrees;
    let probe = wt.join(".switchyard-doctor-probe");
    let writable = std::fs::create_dir_all(wt).is_ok() && std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    r.say(
        "worktrees",
        if writable {
            Verdict::Ok(format!("{} is writable", wt.display()))
        } else {
            Verdict::Fail(format!(
                "{} is not writable: fix [sessions] worktrees",
                wt.display()
            ))
        },
    );
}

async fn check_fleet(config: &Config, r: &mut Report) {
    if !config.skills.is_empty() {
        match crate::workers::DockerRuntime::connect(&config.docker, "doctor").await {
            Err(e) => r.say(
                "docker",
                Verdict::Fail(format!(
                    "no engine at {} ({e}): start Docker, or fix [docker] host; tasks cannot run without it",
                    config.docker.host
                )),
            ),
            Ok(rt) => {
                r.say("docker", Verdict::Ok(format!("the engine at {} answers", config.docker.host)));
                let mut images: Vec<&str> = config
                    .skills
                    .values()
                    .filter(|s| s.session.is_none())
                    .map(|s| s.image.as_str())
                    .collect();
                images.sort_unstable();
                images.dedup();
                for image in images {
                    let v = match rt.docker().inspect_image(image).await {
                        Ok(_) => Verdict::Ok("present".into()),
                        Err(_) if image == crate::workers::WORKER_IMAGE => Verdict::Warn(
                            "not built yet: an agent builds it at its first task (from busybox-static)".into(),
                        ),
                        Err(_) => Verdict::Fail(format!(
                            "the engine has no image {image} and no registry may be reachable: build or load it (`docker build -t {image} .`)"
                        )),
                    };
                    r.say(&format!("image {image}"), v);
                }
            }
        }
    }
    check_sessions(config, r).await;
    if let Some(g) = &config.github {
        let Some(token) = secret(&g.token_env) else {
            r.say(
                "github",
                Verdict::Fail(format!(
                    "{} is not set: export a token that may read the repositories",
                    g.token_env
                )),
            );
            return;
        };
        let answer = reqwest::Client::new()
            .get(format!("{}/rate_limit", g.api_base.trim_end_matches('/')))
            .header("Authorization", format!("Bearer {}", token.expose()))
            .header("User-Agent", "switchyard-doctor")
            .timeout(std::time::Duration::from_secs(15))
            .send()
            .await;
        let v = match answer {
            Ok(resp) if resp.status().is_success() => {
                let scopes = resp
                    .headers()
                    .get("x-oauth-scopes")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("(not reported: a fine-grained token)")
                    .to_string();
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                let core = &body["resources"]["core"];
                Verdict::Ok(format!(
                    "answers; scopes {scopes}; {} of {} requests left this hour",
                    core["remaining"], core["limit"]
                ))
            }
            Ok(resp) if resp.status().as_u16() == 401 => Verdict::Fail(format!(
                "{} was refused (401): make a new token",
                g.token_env
            )),
            Ok(resp) => Verdict::Fail(format!("GitHub answered {}", resp.status())),
            Err(e) => Verdict::Fail(format!(
                "no answer from {} ({}): check the network and [github] api_base",
                g.api_base,
                crate::delivery::http::describe_reqwest(&e)
            )),
        };
        r.say("github", v);
    }
}
