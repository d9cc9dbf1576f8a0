//! Every command-line type in one place: the `switchyard` parser, its
//! subcommands and their arguments (clap). `main.rs` parses with [`Cli`];
//! the functions in [`crate::cli`] take these types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "switchyard",
    version = crate::metrics::VERSION,
    about = "A self-hosted chat-ops bot fleet",
    propagate_version = true
)]
pub struct Cli {
    /// Fleet configuration file [default: switchyard.toml in the working directory]
    #[arg(long, global = true, env = "SWITCHYARD_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log format on stderr
    #[arg(long, global = true, env = "SWITCHYARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the fleet offline against the built-in sandbox (no tokens needed)
    Demo(DemoArgs),
    /// Run one agent (one process per bot token)
    Run {
        /// The agent's name in the configuration
        #[arg(long)]
        agent: String,
        /// Serve /healthz, /readyz and /metrics here instead of the configured `listen`
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Exit 0 when an agent's /healthz answers (for container healthchecks)
    Healthcheck {
        /// For example http://127.0.0.1:7601/healthz
        url: String,
    },
    /// Drop an event into an agent's inbox
    Send(SendArgs),
    /// Explain where an event would go, and which rule says so
    Route(RouteArgs),
    /// Mute a category, a destination or a source for a while
    Mute(MuteArgs),
    /// Lift a mute
    Unmute {
        /// The mute's id (see `switchyard mutes`)
        id: String,
    },
    /// List active mutes
    Mutes {
        /// Print JSON (one array of mutes) instead of lines
        #[arg(long)]
        json: bool,
    },
    /// Fleet status from the status file
    Status {
        /// Print the status document as JSON
        #[arg(long)]
        json: bool,
    },
    /// Reload a running agent's configuration (SIGHUP): routes apply at once, the rest is named
    Reload {
        /// The agent to reload, e.g. manager
        #[arg(long)]
        agent: String,
        /// How long to wait for the agent's answer, e.g. 10s
        #[arg(long, default_value = "10s")]
        timeout: String,
    },
    /// The kill switch: stop new work fleet-wide or for one agent
    Kill(KillArgs),
    /// Lift the kill switch
    Resume(KillArgs),
    /// Named locks in the status file
    #[command(subcommand)]
    Lock(LockCommand),
    /// Tasks: submit a spec to an agent, list, show, cancel
    #[command(subcommand)]
    Task(TaskCommand),
    /// The policy gate
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Configured schedules and their next runs
    Schedules {
        /// How many next runs to show per schedule
        #[arg(long, default_value_t = 3)]
        next: usize,
        /// Print JSON: each schedule with its next runs
        #[arg(long)]
        json: bool,
    },
    /// The GitHub task registry: an active-tasks.json list of pull requests to watch
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Spawn a coding session (a git worktree and a tmux session) from a session skill; a task like any other, through the policy gate
    Spawn(SpawnArgs),
    /// Run a command with only the variables of an env file (how spawned sessions start; not for people)
    #[command(hide = true)]
    SessionExec {
        /// The file of NAME=VALUE lines (removed once read)
        #[arg(long)]
        env_file: PathBuf,
        /// The command and its arguments, after `--`
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Approval requests: `approval request --summary S ...` prints the id
    #[command(subcommand)]
    Approval(ApprovalCommand),
    /// List approvals (the Telegram owner's, or --agent's)
    Approvals {
        /// Print JSON instead of lines
        #[arg(long)]
        json: bool,
        /// Whose approvals [default: the agent that owns Telegram]
        #[arg(long)]
        agent: Option<String>,
    },
    /// Approve a request from the shell (operator override, audited)
    Approve {
        /// The approval's id, e.g. apr_mx7kg87v5isx32vimc8 (see `switchyard approvals`)
        id: String,
    },
    /// Deny a request from the shell (operator override, audited)
    Deny {
        /// The approval's id, e.g. apr_mx7kg87v5isx32vimc8 (see `switchyard approvals`)
        id: String,
    },
    /// Print a shell completion script: `switchyard completions bash > /etc/bash_completion.d/switchyard`
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `switchyard man | man -l -`
    Man,
    /// Check the configuration against the world: tokens, channels, chats, Docker, GitHub, the workspace, listen ports
    Doctor {
        /// Only this agent [default: every agent]
        #[arg(long)]
        agent: Option<String>,
    },
    /// Validate the whole fleet configuration
    CheckConfig {
        /// Also check that this agent's token variables are set
        #[arg(long)]
        agent: Option<String>,
        /// Print JSON: `ok`, the counts, the notes, or every problem with its key
        #[arg(long)]
        json: bool,
    },
    /// Serve the stand-in Discord and Telegram APIs (with --config: that fleet's
    /// channels, chats and the tokens of its agents set in this environment)
    Sandbox {
        /// Address to serve on, e.g. 127.0.0.1:7700 (port 0 picks a free one)
        #[arg(long, default_value = "127.0.0.1:7700")]
        listen: std::net::SocketAddr,
    },
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// One agent; without it, the whole fleet
    #[arg(long)]
    pub agent: Option<String>,
    /// Why (recorded in the status file and the audit)
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Args, Debug)]
pub struct SendArgs {
    /// The event's category: briefing, alert, subagent_result, system, memory_update, chat or action_required (others land as unmatched)
    #[arg(long)]
    pub category: String,
    /// A one-line summary, e.g. "Disk 85% on web-1"
    #[arg(long)]
    pub title: String,
    /// The details, shown under the title
    #[arg(long, default_value = "")]
    pub body: String,
    /// info, warning or critical
    #[arg(long, default_value = "info")]
    pub severity: String,
    /// The event's id, e.g. evt_20261121_101500_001 [default: a new one]
    #[arg(long)]
    pub event_id: Option<String>,
    /// Who reports it, e.g. worker:opsclaw (routes can match it)
    #[arg(long, default_value = "cli")]
    pub source: String,
    /// A dotted type, e.g. ops.disk_usage [default: <category>.event]
    #[arg(long)]
    pub event_type: Option<String>,
    /// The agent whose inbox receives it [default: the first agent]
    #[arg(long)]
    pub to: Option<String>,
    /// Wait until the agent handled the event and print where it went
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, e.g. 30s or 2m
    #[arg(long, default_value = "30s", requires = "wait")]
    pub timeout: String,
}

#[derive(Args, Debug)]
pub struct RouteArgs {
    /// briefing, alert, subagent_result, system, memory_update, chat or action_required
    #[arg(long)]
    pub category: String,
    /// info, warning or critical
    #[arg(long, default_value = "info")]
    pub severity: String,
    /// The source to route as, e.g. worker:opsclaw
    #[arg(long, default_value = "cli")]
    pub source: String,
    /// The event type to route as, e.g. ops.disk_usage
    #[arg(long)]
    pub event_type: Option<String>,
    /// Print JSON: the destinations, the rule of each, and the mute that would hold it
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct MuteArgs {
    /// A category (`system`), a destination (`discord:system`) or a source (`source:worker:opsclaw`)
    pub target: String,
    /// How long, like 30m or 2h
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: String,
    /// Why, shown in the mute notices and `switchyard mutes`
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Allow muting what reaches the human (action_required, alerts, Telegram)
    #[arg(long)]
    pub force: bool,
    /// Who is muting [default: $USER]
    #[arg(long)]
    pub by: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum LockCommand {
    /// Take a named lock (refused while someone else holds it)
    Acquire {
        /// The lock's name, e.g. deploy-web-1
        name: String,
        /// How long it holds unless released, e.g. 30m
        #[arg(long, default_value = "30m")]
        ttl: String,
        /// Why, shown to whoever finds it held
        #[arg(long, default_value = "")]
        reason: String,
        /// Who holds it [default: shell:$USER]
        #[arg(long)]
        holder: Option<String>,
    },
    /// Release a lock you hold (`--force` for anyone's)
    Release {
        /// The lock's name
        name: String,
        /// Who releases it [default: shell:$USER]
        #[arg(long)]
        holder: Option<String>,
        /// Release it whoever holds it
        #[arg(long)]
        force: bool,
    },
    /// List held locks
    List {
        /// Print JSON: each lock with its holder, expiry and reason
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep the sandbox and agent running after the tour (Ctrl-C stops)
    #[arg(long)]
    pub keep: bool,
    /// Where to put the demo workspace [default: a fresh temporary directory]
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum TaskCommand {
    /// Validate a task spec (a JSON file like examples/task.json) and drop it into an agent's inbox
    Submit {
        /// The task spec, a JSON file (see README "Tasks and container workers")
        file: PathBuf,
        /// The agent that runs it [default: the first agent]
        #[arg(long)]
        to: Option<String>,
    },
    /// Tasks of an agent, newest first
    List {
        /// Whose tasks [default: the first agent]
        #[arg(long)]
        agent: Option<String>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// One task: its state, policy decision, execution and acceptance records
    Show {
        /// The task's id, e.g. tsk_hello
        id: String,
        /// Whose task [default: the first agent]
        #[arg(long)]
        agent: Option<String>,
    },
    /// Cancel a task that has not started (queued or awaiting approval)
    Cancel {
        /// The task's id, e.g. tsk_hello
        id: String,
        /// Whose task [default: the first agent]
        #[arg(long)]
        agent: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// The risk score of a task spec, line by line
    Check {
        /// The task spec, a JSON file
        file: PathBuf,
        /// Print JSON: the score, the threshold and every line
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum RegistryCommand {
    /// Track the tasks of an active-tasks.json file; each is monitored by the agent its `agent` names
    Import {
        /// The active-tasks.json file to read
        file: PathBuf,
    },
    /// Write every agent's tracked tasks to one active-tasks.json file
    Export {
        /// Where to write it
        file: PathBuf,
    },
    /// Give a task up: it is marked failed, and what a spawn made (tmux session, worktree, branch) is removed
    Abandon {
        /// The task's id in the registry, e.g. feat-custom-templates
        id: String,
        /// Why, for the record (its `note`)
        #[arg(long, default_value = "abandoned by the operator")]
        reason: String,
    },
}

/// `switchyard spawn`.
#[derive(Args, Debug)]
pub struct SpawnArgs {
    /// The session skill to run, a `[skills.NAME]` with kind = "session", e.g. codex
    #[arg(long)]
    pub skill: String,
    /// The repository, owner/name, with a local clone under [sessions.repos], e.g. acme/app
    #[arg(long)]
    pub repo: String,
    /// The new branch the session works on, e.g. feat/custom-templates
    #[arg(long)]
    pub branch: String,
    /// The task id, which also names the tmux session and the worktree [default: from the branch, e.g. feat-custom-templates]
    #[arg(long)]
    pub id: Option<String>,
    /// One line: what the session is to do
    #[arg(long)]
    pub title: Option<String>,
    /// The declared risk: low, medium or high (the policy gate adds its own points)
    #[arg(long, default_value = "medium")]
    pub risk: String,
    /// The agent that spawns and monitors it [default: the first agent]
    #[arg(long)]
    pub to: Option<String>,
    /// Arguments appended to the skill's command, after `--`, e.g. -- templates high
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// `switchyard approval request`.
#[derive(Args, Debug)]
pub struct ApprovalRequestArgs {
    /// One line: what will happen
    #[arg(long)]
    pub summary: String,
    /// What will run (the command); long previews are cut in the prompt
    #[arg(long, default_value = "")]
    pub detail: String,
    /// Risk score 0-100
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub risk: u8,
    /// A reason for the score (repeat for several)
    #[arg(long = "reason")]
    pub reasons: Vec<String>,
    /// How long a human has to answer [default: `[approvals] expires`]
    #[arg(long)]
    pub expires: Option<String>,
    /// Who asks (shown in the prompt)
    #[arg(long, default_value = "shell")]
    pub requested_by: String,
}

#[derive(Subcommand, Debug)]
pub enum ApprovalCommand {
    /// Ask a human in Telegram; prints the approval id
    Request(ApprovalRequestArgs),
    /// Make a key pair that signs approval decisions: the private key for the
    /// Telegram owner's environment, the public key for `[approvals] decision_keys`
    Keygen,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every argument of every command says what it is (`--help` teaches).
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (the command)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "switchyard", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:#?}");
    }
}
