//! The `switchyard` command line: parses arguments, sets up logging and
//! hands over to the library (`switchyard::cli`). Exit status: 0 success,
//! 2 bad usage or bad input, 1 failure.

use std::process::ExitCode;

use clap::Parser;
use switchyard::cli;
use switchyard::cli::args::{Cli, Command, LogFormat};
use switchyard::error::Exit;

fn init_logging(format: LogFormat, default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SWITCHYARD_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal, and never under NO_COLOR (no-color.org).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
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

/// A one-shot command piped into `head` ends when the reader goes away, as
/// other command-line tools do, instead of panicking in `println!`. Only for
/// those: an agent, the sandbox and the demo (which must stop its children on
/// the way out) keep Rust's default, where a closed pipe is an error to handle.
fn end_quietly_on_a_closed_pipe() {
    // SAFETY: called once at start-up, before any thread is spawned; SIG_DFL
    // is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    let args = Cli::parse();
    if let Command::SessionExec { env_file, command } = &args.command {
        // Replaces this process: no runtime, no logging, nothing inherited.
        let e = switchyard::execution::spawn::session_exec(env_file, command).unwrap_err();
        eprintln!("error: {e:#}");
        return ExitCode::from(1);
    }
    // The demo and the one-shot commands print for a person: their logs stay quiet.
    let default_filter = match args.command {
        Command::Run { .. } | Command::Sandbox { .. } => {
            "info,serenity=warn,h2=warn,hyper=warn,reqwest=warn"
        }
        _ => "warn",
    };
    init_logging(args.log_format, default_filter);
    if !matches!(
        args.command,
        Command::Run { .. } | Command::Sandbox { .. } | Command::Demo(_)
    ) {
        end_quietly_on_a_closed_pipe();
    }
    // An agent is I/O-bound: two workers are plenty, whatever the core count
    // (tokio's default is one per core). SWITCHYARD_WORKER_THREADS overrides.
    let workers = match std::env::var("SWITCHYARD_WORKER_THREADS") {
        Err(_) => 2,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=64).contains(&n) => n,
            _ => {
                eprintln!(
                    "error: SWITCHYARD_WORKER_THREADS is {v:?}: set a whole number from 1 to 64, or unset it (default 2)"
                );
                return ExitCode::from(2);
            }
        },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
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
            Command::Reload { agent, timeout } => cli::reload(config, &agent, &timeout),
            Command::Kill(k) => cli::kill(config, k.agent, k.reason, true),
            Command::Resume(k) => cli::kill(config, k.agent, k.reason, false),
            Command::Lock(lock) => cli::lock(config, lock),
            Command::Task(task) => cli::task(config, task).await,
            Command::Policy(policy) => cli::policy(config, policy),
            Command::Registry(registry) => cli::registry(config, registry).await,
            Command::Spawn(spawn) => cli::spawn(config, spawn),
            Command::SessionExec { .. } => unreachable!("handled before the runtime starts"),
            Command::Schedules { next, json } => cli::schedules(config, next, json),
            Command::Approval(cmd) => cli::approval(config, cmd),
            Command::Approvals { json, agent } => cli::approvals(config, json, agent).await,
            Command::Approve { id } => cli::decide(config, &id, true).await,
            Command::Deny { id } => cli::decide(config, &id, false).await,
            Command::CheckConfig { agent, json } => {
                cli::check_config(config, agent.as_deref(), json)
            }
            Command::Doctor { agent } => cli::doctor(config, agent.as_deref()).await,
            Command::Completions { shell } => cli::completions(shell),
            Command::Man => cli::man(),
            Command::Sandbox { listen } => cli::sandbox(config, listen).await,
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
