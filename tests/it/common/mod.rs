//! Test harness shared by the integration tests and the benchmarks: a
//! temporary fleet directory, the in-process sandbox, and real `switchyard
//! run` agent processes pointed at it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use switchyard_sandbox::{Fault, Platform, SandboxHandle, SandboxOptions, SandboxState};

mod postgres;
// The benches include this harness too and use neither.
#[allow(unused_imports)]
pub use postgres::{OwnCluster, TestDb, fresh_database};

pub const DISCORD_CHANNELS: [(&str, u64); 6] = [
    ("briefings", 900000000000000001),
    ("alerts", 900000000000000002),
    ("sub-agent-results", 900000000000000003),
    ("system", 900000000000000004),
    ("memory-updates", 900000000000000005),
    ("chat", 900000000000000006),
];
pub const OPERATOR_CHAT: i64 = 424242;

/// A fleet under test: its directory, config file and sandbox.
pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub config_file: PathBuf,
    pub sandbox: SandboxHandle,
    pub agents: Vec<AgentProcess>,
    /// Last, so it is released after the agents are gone.
    _alone: ModuleGate,
}

pub struct AgentProcess {
    pub name: String,
    pub child: Child,
}

impl AgentProcess {
    pub fn pid(&self) -> u64 {
        u64::from(self.child.id())
    }

    /// `kill -9`, and waits for the process to be gone.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill -9 the agent");
        self.child.wait().expect("wait for the killed agent");
    }

    /// Waits for a process expected to exit by itself: its exit code and
    /// the stderr it printed (when it was spawned capturing it).
    pub fn finish(mut self) -> (Option<i32>, String) {
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut pipe, &mut stderr).expect("read the agent's stderr");
        }
        let code = self.child.wait().expect("wait for the agent").code();
        (code, stderr)
    }
}

/// A test that fails part-way must not leave its agents running (they
/// would go on polling and logging into the next tests' output).
impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An agent about to run against a coordination database ([`Fleet::shared`]).
pub struct SharedAgent {
    name: String,
    cmd: Command,
}

impl SharedAgent {
    /// The name it gives its host (`SWITCHYARD_HOST`): two names on this
    /// machine are two hosts to the leases, which then cannot tell a dead
    /// holder from a live one but by its lease lapsing.
    pub fn host(mut self, host: &str) -> Self {
        self.cmd.env("SWITCHYARD_HOST", host);
        self.name = format!("{} on {host}", self.name);
        self
    }

    /// Its Discord and Telegram are those of `fleet`'s sandbox.
    pub fn platforms(mut self, fleet: &Fleet) -> Self {
        self.cmd
            .env(
                "SWITCHYARD__DISCORD__API_BASE",
                fleet.sandbox.discord_api_base(),
            )
            .env(
                "SWITCHYARD__TELEGRAM__API_BASE",
                fleet.sandbox.telegram_api_base(),
            );
        self
    }

    /// Its state in `url` too (`fleet.database`).
    pub fn database(mut self, url: &str) -> Self {
        self.cmd.env("SWITCHYARD__FLEET__DATABASE", url);
        self
    }

    /// A configuration override or any other variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// More arguments to `run`.
    pub fn arg(mut self, arg: &str) -> Self {
        self.cmd.arg(arg);
        self
    }

    /// Captures its stderr, for a process expected to exit at once (an
    /// unread pipe would block a long-lived one once full).
    pub fn capturing_stderr(mut self) -> Self {
        self.cmd.stderr(std::process::Stdio::piped());
        self
    }

    pub fn spawn(mut self) -> AgentProcess {
        AgentProcess {
            child: self.cmd.spawn().expect("spawn the agent"),
            name: self.name,
        }
    }
}

/// Keeps the agent fleets of different test modules from running at the same
/// time, as when each file was its own test binary (cargo runs those one after
/// another). The agents share the one Docker engine: an agent reaps, at
/// start-up, the containers labelled with its name, and the kill switch kills
/// them, so a `manager` started by one module can remove a container that a
/// `manager` of another module is running (the demo's agents too). Tests of one
/// module still run in parallel with each other, as before; tests without
/// agents (coord, delivery, workers) are not held.
///
/// The module is the first part of the test's name, which libtest gives the
/// thread running it. Outside a test thread (the benches, a spawned task) it
/// holds nothing.
pub struct ModuleGate(Option<String>);

static GATE: Mutex<(Option<String>, usize)> = Mutex::new((None, 0));
static GATE_FREE: Condvar = Condvar::new();

impl ModuleGate {
    /// Waits until no other module holds the gate; blocks the thread.
    pub fn enter() -> ModuleGate {
        let module = std::thread::current()
            .name()
            .and_then(|name| name.split_once("::"))
            .map(|(module, _)| module.to_owned());
        let Some(module) = module else {
            return ModuleGate(None);
        };
        let mut held = GATE.lock().unwrap_or_else(|e| e.into_inner());
        while held.0.as_ref().is_some_and(|m| *m != module) {
            held = GATE_FREE.wait(held).unwrap_or_else(|e| e.into_inner());
        }
        held.0 = Some(module.clone());
        held.1 += 1;
        ModuleGate(Some(module))
    }
}

impl Drop for ModuleGate {
    fn drop(&mut self) {
        if self.0.is_none() {
            return;
        }
        let mut held = GATE.lock().unwrap_or_else(|e| e.into_inner());
        held.1 -= 1;
        if held.1 == 0 {
            held.0 = None;
            GATE_FREE.notify_all();
        }
    }
}

/// The test fleets' shared secret (what seals forwarded approvals).
pub const FLEET_SECRET: &str = "test-fleet-secret-0123456789abcdef0123456789";

/// The runtime the tests that talk to agent processes run on: two
/// workers, like the machine.
pub fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_switchyard"))
}

/// The config of a test fleet; `extra` is appended (more agents, routes...).
pub fn fleet_toml(agents: &[&str], extra: &str) -> String {
    let mut t = String::from(
        "[fleet]\nworkspace = \"workspace\"\nheartbeat_interval = \"1s\"\nstale_after = \"5s\"\n\n\
         [discord]\napi_base = \"http://127.0.0.1:1/api/v10\"\nguild_id = \"900000000000000000\"\n\n[discord.channels]\n",
    );
    for (alias, id) in DISCORD_CHANNELS {
        t.push_str(&format!("{alias} = \"{id}\"\n"));
    }
    t.push_str(&format!(
        "\n[telegram]\napi_base = \"http://127.0.0.1:1/telegram\"\n[telegram.chats]\noperator = \"{OPERATOR_CHAT}\"\n\
         [telegram.access]\napprovers = [{OPERATOR_CHAT}]\nchat = [\"user:{OPERATOR_CHAT}\"]\n\n\
         [delivery]\nmax_attempts = 50\nbackoff_base = \"100ms\"\nbackoff_max = \"1s\"\n\n"
    ));
    for (i, a) in agents.iter().enumerate() {
        let up = a.to_uppercase().replace('-', "_");
        t.push_str(&format!("[[agents]]\nname = \"{a}\"\ndiscord_token_env = \"TEST_{up}_DISCORD_TOKEN\"\nlisten = \"127.0.0.1:0\"\n"));
        if i == 0 {
            t.push_str("telegram_token_env = \"TEST_TELEGRAM_BOT_TOKEN\"\n");
        }
        t.push('\n');
    }
    t.push_str(extra);
    t
}

/// The agents the test fleets name; each gets a Discord token the sandbox knows.
pub const AGENT_NAMES: [&str; 6] = ["manager", "tech-lead", "opsclaw", "alpha", "beta", "gamma"];
/// The first agent's Telegram token (`TEST_TELEGRAM_BOT_TOKEN`).
pub const TELEGRAM_TOKEN: &str = "100000001:AAtest-telegram-token-000000000000000";

/// The variable holding an agent's Discord token (`TEST_{AGENT}_DISCORD_TOKEN`).
pub fn discord_token_env(agent: &str) -> String {
    format!(
        "TEST_{}_DISCORD_TOKEN",
        agent.to_uppercase().replace('-', "_")
    )
}

/// The Discord token the fleets give `agent` (every test bot is user 100: "MTAw").
pub fn discord_token(agent: &str) -> String {
    format!("MTAw.test.{agent}-token")
}

/// The sandbox knows the fleet's tokens, as Discord and Telegram know the real ones.
pub fn register_fleet_tokens(opts: &mut SandboxOptions) {
    opts.discord_tokens
        .extend(AGENT_NAMES.iter().map(|a| discord_token(a)));
    opts.telegram_tokens.push(TELEGRAM_TOKEN.to_owned());
}

pub fn sandbox_options() -> SandboxOptions {
    SandboxOptions {
        discord_channels: DISCORD_CHANNELS
            .iter()
            .map(|(a, id)| (*id, a.to_string()))
            .collect(),
        telegram_chats: vec![(OPERATOR_CHAT, "operator".into())],
        ..SandboxOptions::default()
    }
}

impl Fleet {
    pub async fn new(agents: &[&str], extra: &str) -> Fleet {
        Self::with_sandbox(agents, extra, sandbox_options()).await
    }

    /// A fleet against a sandbox made from `opts`, which learns the fleet's tokens.
    pub async fn with_sandbox(agents: &[&str], extra: &str, mut opts: SandboxOptions) -> Fleet {
        register_fleet_tokens(&mut opts);
        let gate = ModuleGate::enter();
        let dir = tempfile::tempdir().expect("tempdir");
        let config_file = dir.path().join("switchyard.toml");
        std::fs::write(&config_file, fleet_toml(agents, extra)).expect("write config");
        let sandbox = switchyard_sandbox::start(opts).await.expect("sandbox");
        Fleet {
            dir,
            config_file,
            sandbox,
            agents: Vec::new(),
            _alone: gate,
        }
    }

    pub fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    pub fn agent_dir(&self, agent: &str) -> PathBuf {
        self.workspace().join("agents").join(agent)
    }

    /// A `switchyard` command with this fleet's config and sandbox.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(exe());
        cmd.env("SWITCHYARD_CONFIG", &self.config_file)
            .env(
                "SWITCHYARD__DISCORD__API_BASE",
                self.sandbox.discord_api_base(),
            )
            .env(
                "SWITCHYARD__TELEGRAM__API_BASE",
                self.sandbox.telegram_api_base(),
            )
            .env("TEST_TELEGRAM_BOT_TOKEN", TELEGRAM_TOKEN)
            .env("SWITCHYARD_FLEET_SECRET", FLEET_SECRET)
            .env(
                "SWITCHYARD_LOG",
                std::env::var("SWITCHYARD_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            );
        for name in AGENT_NAMES {
            cmd.env(discord_token_env(name), discord_token(name));
        }
        cmd
    }

    pub async fn spawn_agent(&mut self, name: &str) {
        self.spawn_agent_with(name, &[]).await
    }

    /// [`Fleet::spawn_agent`] with more variables in its environment (what
    /// only its host holds).
    pub async fn spawn_agent_with(&mut self, name: &str, env: &[(&str, &str)]) {
        let child = self
            .command()
            .envs(env.iter().copied())
            .args(["run", "--agent", name])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn agent");
        self.agents.push(AgentProcess {
            name: name.into(),
            child,
        });
        let status = self.workspace().join("status.json");
        let pid = self.agents.last().map(|a| a.child.id()).unwrap_or_default();
        wait_for(
            Duration::from_secs(30),
            &format!("agent {name} to start"),
            || {
                let text = std::fs::read_to_string(&status).ok()?;
                let v: serde_json::Value = serde_json::from_str(&text).ok()?;
                (v["agents"][name]["pid"].as_u64() == Some(pid as u64)).then_some(())
            },
        )
        .await;
    }

    /// SIGTERM, and the exit status.
    pub async fn stop_agent(&mut self, name: &str) -> std::process::ExitStatus {
        let idx = self
            .agents
            .iter()
            .position(|a| a.name == name)
            .expect("agent");
        let mut a = self.agents.remove(idx);
        let pid = nix::unistd::Pid::from_raw(a.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("sigterm");
        let status = wait_for(Duration::from_secs(20), "the agent to exit", || {
            a.child.try_wait().ok().flatten()
        })
        .await;
        std::mem::forget(a);
        status
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill_agent(&mut self, name: &str) {
        let idx = self
            .agents
            .iter()
            .position(|a| a.name == name)
            .expect("agent");
        let mut a = self.agents.remove(idx);
        a.child.kill().expect("kill -9");
        a.child.wait().expect("reap");
        std::mem::forget(a);
    }

    /// Drop an item into an inbox with the atomic write-then-rename protocol.
    pub fn drop(&self, agent: &str, id: &str, item: &serde_json::Value) -> PathBuf {
        switchyard::coord::inbox::drop_item(&self.workspace(), agent, id, item).expect("drop item")
    }

    /// The agent's own database, opened as the agent opens it.
    pub async fn store(&self, agent: &str) -> switchyard::store::Store {
        let url = format!(
            "sqlite://{}",
            self.agent_dir(agent).join("state.db").display()
        );
        switchyard::store::Store::open(&url)
            .await
            .expect("open the agent's database")
    }

    /// `agent` of this fleet coordinating through `url`, as on a host of
    /// its own, set up step by step and started with [`SharedAgent::spawn`].
    pub fn shared(&self, agent: &str, url: &str) -> SharedAgent {
        let mut cmd = self.command();
        cmd.env("SWITCHYARD__FLEET__COORDINATION", url)
            .args(["run", "--agent", agent])
            .stdin(std::process::Stdio::null());
        SharedAgent {
            name: agent.to_owned(),
            cmd,
        }
    }

    /// Run `switchyard ARGS` against this fleet; panics unless it succeeds.
    pub fn shell(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().expect("run switchyard");
        assert!(
            out.status.success(),
            "switchyard {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn state(&self) -> SandboxState {
        self.sandbox.state()
    }

    pub fn result(&self, agent: &str, outcome: &str, id: &str) -> Option<serde_json::Value> {
        let p = self
            .agent_dir(agent)
            .join(outcome)
            .join(format!("{id}.result.json"));
        serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
    }

    pub async fn wait_result(&self, agent: &str, outcome: &str, id: &str) -> serde_json::Value {
        wait_for(
            Duration::from_secs(30),
            &format!("{outcome}/{id}.result.json"),
            || self.result(agent, outcome, id),
        )
        .await
    }

    pub fn count(&self, agent: &str, outcome: &str) -> usize {
        std::fs::read_dir(self.agent_dir(agent).join(outcome))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".result.json"))
                    .count()
            })
            .unwrap_or(0)
    }
}

pub fn event(id: &str, category: &str, severity: &str, title: &str) -> serde_json::Value {
    serde_json::json!({
        "kind": "event", "event_id": id, "event_type": format!("test.{category}"), "category": category,
        "severity": severity, "source": "test", "title": title, "body": format!("body of {title}"),
    })
}

/// Poll until `probe` gives a value; panic with `what` after `limit`.
pub async fn wait_for<T>(limit: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

/// The status board's title: the board is one message edited in place, not
/// an event, so the helpers below leave it out.
pub const STATUS_BOARD_TITLE: &str = switchyard::discord::board::BOARD_TITLE;

fn is_board(m: &switchyard_sandbox::DiscordMessage) -> bool {
    m.has_embed_title(STATUS_BOARD_TITLE)
}

/// Messages posted everywhere, the status board left out.
pub fn total_messages(state: &SandboxState) -> usize {
    let boards = state
        .discord
        .channels
        .iter()
        .flat_map(|c| &c.messages)
        .filter(|m| is_board(m))
        .count();
    state.total_messages() - boards
}

/// What readers of a Discord channel (by alias) see, one string per message
/// (the status board left out).
pub fn discord_texts(state: &SandboxState, alias: &str) -> Vec<String> {
    let id = DISCORD_CHANNELS
        .iter()
        .find(|(a, _)| *a == alias)
        .map(|(_, id)| *id)
        .expect("known alias");
    state
        .discord_messages(id)
        .iter()
        .filter(|m| !is_board(m))
        .map(|m| m.text())
        .collect()
}

/// The operator chat's messages as the user sees them.
pub fn telegram_texts(state: &SandboxState) -> Vec<String> {
    state
        .telegram_messages(OPERATOR_CHAT)
        .iter()
        .map(|m| m.text.clone())
        .collect()
}

/// Channel buckets of 50 per second instead of Discord's 5 per 5 s, for
/// tests that count messages rather than measure pacing.
pub fn fast_discord_limits(opts: &mut SandboxOptions) {
    opts.discord_rate.channel_messages = switchyard_sandbox::Rate::new(50, Duration::from_secs(1));
}

/// Make every Discord message post fail with 503 (on) or serve normally (off).
pub fn fail_discord(sandbox: &SandboxHandle, on: bool) {
    if on {
        sandbox.inject(Fault::ServerErrors {
            platform: Platform::Discord,
            count: 1_000_000,
            status: 503,
        });
    } else {
        sandbox.clear_faults();
    }
}
