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
        #[arg(long)]
        json: bool,
    },
    /// Fleet status from the status file
    Status {
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
    },
    /// The GitHub task registry (seed 001's active-tasks.json)
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Approval requests: `approval request --summary S ...` prints the id
    #[command(subcommand)]
    Approval(ApprovalCommand),
    /// List approvals (the Telegram owner's, or --agent's)
    Approvals {
        #[arg(long)]
        json: bool,
        #[arg(long)]
        agent: Option<String>,
    },
    /// Approve a request from the shell (operator override, audited)
    Approve { id: String },
    /// Deny a request from the shell (operator override, audited)
    Deny { id: String },
    /// Validate the whole fleet configuration
    CheckConfig {
        /// Also check that this agent's token variables are set
        #[arg(long)]
        agent: Option<String>,
    },
    /// Serve the stand-in Discord and Telegram APIs (with --config: that fleet's
    /// channels, chats and the tokens of its agents set in this environment)
    Sandbox {
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
    #[arg(long)]
    pub category: String,
    #[arg(long)]
    pub title: String,
    #[arg(long, default_value = "")]
    pub body: String,
    #[arg(long, default_value = "info")]
    pub severity: String,
    #[arg(long)]
    pub event_id: Option<String>,
    #[arg(long, default_value = "cli")]
    pub source: String,
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
    #[arg(long)]
    pub category: String,
    #[arg(long, default_value = "info")]
    pub severity: String,
    #[arg(long, default_value = "cli")]
    pub source: String,
    #[arg(long)]
    pub event_type: Option<String>,
}

#[derive(Args, Debug)]
pub struct MuteArgs {
    /// A category (`system`), a destination (`discord:system`) or a source (`source:worker:opsclaw`)
    pub target: String,
    /// How long, like 30m or 2h
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: String,
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
        name: String,
        #[arg(long, default_value = "30m")]
        ttl: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long)]
        holder: Option<String>,
    },
    /// Release a lock you hold (`--force` for anyone's)
    Release {
        name: String,
        #[arg(long)]
        holder: Option<String>,
        #[arg(long)]
        force: bool,
    },
    /// List held locks
    List,
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
    /// Validate a task spec (seed 004's format) and drop it into an agent's inbox
    Submit {
        file: PathBuf,
        /// The agent that runs it [default: the first agent]
        #[arg(long)]
        to: Option<String>,
    },
    /// Tasks of an agent, newest first
    List {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One task: its state, policy decision, execution and acceptance records
    Show {
        id: String,
        #[arg(long)]
        agent: Option<String>,
    },
    /// Cancel a task that has not started (queued or awaiting approval)
    Cancel {
        id: String,
        #[arg(long)]
        agent: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// The risk score of a task spec, line by line
    Check { file: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum RegistryCommand {
    /// Track the tasks of an active-tasks.json file; each is monitored by the agent its `agent` names
    Import { file: PathBuf },
    /// Write every agent's tracked tasks to one active-tasks.json file
    Export { file: PathBuf },
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
