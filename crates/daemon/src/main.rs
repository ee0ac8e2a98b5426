//! `tagwire`: push industrial group snapshots as Neuron-compatible JSON to WebSocket
//! servers. This binary is wiring only: the command line, the TOML configuration,
//! signals and logging; the work is done by the library crates.

mod accept;
mod api;
mod cert_report;
mod commands;
mod config;
mod logging;
mod metrics_render;
mod process_metrics;
mod reach;
mod reload;
mod shutdown;
mod sink;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use commands::{bench, check, demo, encode, run};
use logging::LogFormat;
use shutdown::{EXIT_RUNTIME, EXIT_USAGE};
use tagwire_encode::{Format, Style};

#[derive(Parser)]
#[command(
    name = "tagwire",
    version,
    about = "Push industrial group snapshots as Neuron-compatible JSON to WebSocket servers",
    long_about = None,
    after_help = "Exit codes: 0 success; 1 a usage, configuration or data problem (including a \
bad command line); 2 a failure while running.\n\
Environment: TAGWIRE_LOG sets the log filter (default \"info\"; e.g. \"debug\", \
\"tagwire_ws_client=debug\"); TAGWIRE_LOG_FORMAT is the default of --log-format."
)]
struct Cli {
    /// How log lines on stderr are written: "text" for people, "json" (one object per
    /// line) for log collectors.
    #[arg(long, global = true, env = "TAGWIRE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: sources -> uplinks, until SIGINT/SIGTERM (graceful: drain, close).
    Run {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// The embedded demo: simulator -> uplink -> a local receiver; no config, no network.
    Demo {
        /// Stop after this many seconds (Ctrl-C stops earlier).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Validate a configuration without connecting: keys, URLs, certificates and keys.
    Check {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Encode snapshots (NDJSON on stdin) to messages (one per line on stdout).
    Encode {
        /// "values" or "tags" (also Neuron's 0 or 1).
        #[arg(long, default_value = "values")]
        format: Format,
        /// "neuron" (byte-identical to Neuron) or "compact".
        #[arg(long, default_value = "neuron")]
        style: Style,
        /// Send error tags.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        upload_err: bool,
    },
    /// A WebSocket receiver for trying a setup: writes every message as one line.
    Sink(commands::sink::SinkArgs),
    /// A capacity test of this machine: snapshots pushed as fast as possible to an
    /// in-process receiver over loopback (ws:// and wss://).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap exits 2 for a bad command line, which this program keeps for runtime
            // failures: a usage problem is 1, as documented; --help and --version are 0.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // The demo speaks for itself on stdout; its log would only interleave with it.
    logging::init(
        cli.log_format,
        if matches!(cli.command, Command::Demo { .. } | Command::Bench(_)) {
            "warn"
        } else {
            "info"
        },
    );
    // A bad TAGWIRE_WORKERS is a usage problem (exit 1), found before anything starts.
    if let Err(e) = workers_from_env(DAEMON_WORKERS) {
        eprintln!("tagwire: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let result = match cli.command {
        Command::Encode {
            format,
            style,
            upload_err,
        } => {
            return encode::run(
                tagwire_encode::EncodeOptions::new()
                    .with_format(format)
                    .with_style(style)
                    .with_upload_err(upload_err),
            )
        }
        Command::Check { config } => return check::run(&config),
        Command::Run { config } => {
            runtime(DAEMON_WORKERS).and_then(|rt| rt.block_on(run::run(&config)))
        }
        Command::Demo { seconds } => {
            runtime(DAEMON_WORKERS).and_then(|rt| rt.block_on(demo::run(seconds)))
        }
        Command::Sink(args) => {
            runtime(TOOL_WORKERS).and_then(|rt| rt.block_on(commands::sink::run(args)))
        }
        Command::Bench(args) => runtime(TOOL_WORKERS).and_then(|rt| rt.block_on(bench::run(args))),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tagwire: {e:#}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// Worker threads of `run` and `demo` by default: one (tokio's current-thread runtime).
/// Measured at 5,000 messages/s of 100 tags (docs/benchmarks.md): one thread spends
/// less CPU per message and makes about half the syscalls of two workers, which wake
/// each other through futexes; a gateway has one to four cores to share anyway.
const DAEMON_WORKERS: usize = 1;
/// `TAGWIRE_WORKERS` when set, else `default`.
fn workers_from_env(default: usize) -> Result<usize, String> {
    match std::env::var("TAGWIRE_WORKERS") {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= 64)
            .ok_or_else(|| {
                format!(
                    "TAGWIRE_WORKERS: {v:?} is not a number of worker threads from 0 to 64 \
                     (0 or 1: one thread; unset it for the default)"
                )
            }),
        Err(_) => Ok(default),
    }
}

/// Worker threads of `sink` and `bench`, which serve a sender and a receiver at once.
const TOOL_WORKERS: usize = 2;

/// The runtime: `default` worker threads unless `TAGWIRE_WORKERS` says otherwise
/// (0 or 1: tokio's current-thread runtime; more: a multi-thread runtime).
fn runtime(default: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let workers = workers_from_env(default).map_err(anyhow::Error::msg)?;
    let mut builder = if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    Ok(builder.enable_all().build()?)
}
