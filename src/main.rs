//! The `switchyard` command line: parses arguments, sets up logging and
//! hands over to the library (`switchyard::cli`). Exit status: 0 success,
//! 2 bad usage or bad input, 1 failure.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use switchyard::cli;
use switchyard::error::Exit;

#[derive(Parser, Debug)]
#[command(
    name = "switchyard",
    version,
    about = "A self-hosted chat-ops bot fleet",
    propagate_version = true
)]
struct Cli {
    /// Fleet configuration file [default: switchyard.toml in the working directory]
    #[arg(long, global = true, env = "SWITCHYARD_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Log format on stderr
    #[arg(long, global = true, env = "SWITCHYARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the fleet offline against the built-in sandbox (no tokens needed)
    Demo(cli::DemoArgs),
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
    Send(cli::SendArgs),
    /// Explain where an event would go, and which rule says so
    Route(cli::RouteArgs),
    /// Mute a category, a destination or a source for a while
    Mute(cli::MuteArgs),
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
    /// The kill switch: stop new work fleet-wide or for one agent
    Kill(KillArgs),
    /// Lift the kill switch
    Resume(KillArgs),
    /// Named locks in the status file
    #[command(subcommand)]
    Lock(cli::LockCommand),
    /// Tasks: submit a spec to an agent, list, show, cancel
    #[command(subcommand)]
    Task(cli::TaskCommand),
    /// The policy gate
    #[command(subcommand)]
    Policy(cli::PolicyCommand),
    /// Configured schedules and their next runs
    Schedules {
        /// How many next runs to show per schedule
        #[arg(long, default_value_t = 3)]
        next: usize,
    },
    /// The GitHub task registry (seed 001's active-tasks.json)
    #[command(subcommand)]
    Registry(cli::RegistryCommand),
    /// Approval requests: `approval request --summary S ...` prints the id
    #[command(subcommand)]
    Approval(cli::ApprovalCommand),
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
    /// Serve the stand-in Discord and Telegram APIs
    Sandbox {
        #[arg(long, default_value = "127.0.0.1:7700")]
        listen: std::net::SocketAddr,
    },
}

#[derive(Args, Debug)]
struct KillArgs {
    /// One agent; without it, the whole fleet
    #[arg(long)]
    agent: Option<String>,
    /// Why (recorded in the status file and the audit)
    #[arg(long)]
    reason: Option<String>,
}

fn init_logging(format: LogFormat, default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SWITCHYARD_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}

fn main() -> ExitCode {
    let args = Cli::parse();
    // The demo and the one-shot commands print for a person: their logs stay quiet.
    let default_filter = match args.command {
        Command::Run { .. } | Command::Sandbox { .. } => {
            "info,serenity=warn,h2=warn,hyper=warn,reqwest=warn"
        }
        _ => "warn",
    };
    init_logging(args.log_format, default_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let config = args.config;
    let result = runtime.block_on(async move {
        match args.command {
            Command::Demo(demo) => cli::demo(config, demo).await,
            Command::Run { agent, listen } => cli::run(config, &agent, listen).await,
            Command::Healthcheck { url } => cli::healthcheck(&url).await,
            Command::Send(send) => cli::send(config, send).await,
            Command::Route(route) => cli::route(config, route),
            Command::Mute(mute) => cli::mute(config, mute),
            Command::Unmute { id } => cli::unmute(config, &id),
            Command::Mutes { json } => cli::mutes(config, json),
            Command::Status { json } => cli::status(config, json),
            Command::Kill(k) => cli::kill(config, k.agent, k.reason, true),
            Command::Resume(k) => cli::kill(config, k.agent, k.reason, false),
            Command::Lock(lock) => cli::lock(config, lock),
            Command::Task(task) => cli::task(config, task).await,
            Command::Policy(policy) => cli::policy(config, policy),
            Command::Registry(registry) => cli::registry(config, registry).await,
            Command::Schedules { next } => cli::schedules(config, next),
            Command::Approval(cmd) => cli::approval(config, cmd),
            Command::Approvals { json, agent } => cli::approvals(config, json, agent).await,
            Command::Approve { id } => cli::decide(config, &id, true).await,
            Command::Deny { id } => cli::decide(config, &id, false).await,
            Command::CheckConfig { agent } => cli::check_config(config, agent.as_deref()),
            Command::Sandbox { listen } => cli::sandbox(listen).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let exit = Exit::of(&e);
            eprintln!("error: {e:#}");
            ExitCode::from(exit as u8)
        }
    }
}
