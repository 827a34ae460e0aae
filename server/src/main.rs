//! The `skybridge` command: `serve`, `openapi`, `bench`, and the client
//! commands `functions`, `invoke`, `executions` (on the Rust SDK).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use skybridge::cli;
use skybridge::config::Config;

#[derive(Parser)]
#[command(
    name = "skybridge",
    version,
    about = "Skybridge: a polyglot Function-as-a-Service runtime"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server (default 127.0.0.1:3280, data in ./data).
    Serve {
        /// TOML config file; `SKYBRIDGE_<SECTION>_<KEY>` variables override it.
        #[arg(long, short, env = "SKYBRIDGE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print the OpenAPI document (what `openapi/openapi.json` holds).
    Openapi,
    /// Measure invoke latency against the in-process floor.
    Bench(skybridge::bench::BenchArgs),
    /// Manage the functions of a running server.
    Functions {
        #[command(flatten)]
        connection: cli::Connection,
        #[command(subcommand)]
        command: cli::FunctionsCommand,
    },
    /// Invoke a function: `skybridge invoke NAME --input '[1, 2]'`.
    Invoke {
        #[command(flatten)]
        connection: cli::Connection,
        #[command(flatten)]
        args: cli::InvokeArgs,
    },
    /// Read executions.
    Executions {
        #[command(flatten)]
        connection: cli::Connection,
        #[command(subcommand)]
        command: cli::ExecutionsCommand,
    },
}

fn init_tracing(json: bool) {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter =
        EnvFilter::try_from_env("SKYBRIDGE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn main() -> std::process::ExitCode {
    match Cli::parse().command {
        Command::Functions {
            connection,
            command,
        } => cli::run(connection, cli::Command::Functions(command)),
        Command::Invoke { connection, args } => cli::run(connection, cli::Command::Invoke(args)),
        Command::Executions {
            connection,
            command,
        } => cli::run(connection, cli::Command::Executions(command)),
        server => match server_command(server) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("Error: {e:?}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}

fn server_command(command: Command) -> anyhow::Result<()> {
    let env =
        std::env::vars().filter(|(k, _)| !skybridge::config::RESERVED_ENV.contains(&k.as_str()));
    match command {
        Command::Openapi => {
            print!("{}", skybridge::api::openapi::canonical_json());
            Ok(())
        }
        Command::Serve { config } => {
            let config = Config::load(config.as_deref(), env)?;
            init_tracing(config.server.log_format == "json");
            let runtime = tokio::runtime::Runtime::new()?;
            let result = runtime.block_on(skybridge::server::serve(
                config,
                shutdown_signal(),
                |addr| {
                    // Tests and scripts read this line to learn the port.
                    println!("skybridge listening on http://{addr}");
                    tracing::info!(%addr, "listening");
                },
            ));
            // Guests still running past the grace period must not hold the exit.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            result
        }
        Command::Bench(args) => {
            init_tracing(false);
            tokio::runtime::Runtime::new()?.block_on(skybridge::bench::run(args))
        }
        Command::Functions { .. } | Command::Invoke { .. } | Command::Executions { .. } => {
            unreachable!("client commands are run by cli::run")
        }
    }
}
