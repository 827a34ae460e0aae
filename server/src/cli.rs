//! The command-line client, `skybridge functions|invoke|executions …`, built
//! on the Rust SDK (`skybridge-client`): tables by default, `--json` for
//! scripts, and a non-zero exit with the API's error code on failure.

use std::io::Read;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::Value;
use skybridge_client::models::{
    Deployment, Execution, ExecutionLogs, Function, FunctionSpec, ListFunctionsQuery, SourceInfo,
};
use skybridge_client::{Client, Error};

/// Where the server is and how to print.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// The server's URL.
    #[arg(long, global = true, env = "SKYBRIDGE_URL", default_value = skybridge_client::DEFAULT_URL)]
    pub url: String,
    /// A bearer token.
    #[arg(long, global = true, env = "SKYBRIDGE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON (the API's own objects) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `skybridge functions …`
#[derive(Subcommand, Debug)]
pub enum FunctionsCommand {
    /// List functions.
    List,
    /// Show one function.
    Get {
        /// Function name.
        name: String,
    },
    /// Create a function from a JSON spec (`-f fn.json`, or `-f -` for stdin).
    Create {
        /// The spec: `{"name", "backend", "source", …}` as in `POST /api/v1/functions`.
        #[arg(short = 'f', long = "file")]
        file: String,
    },
    /// Build the function's current spec into a ready deployment.
    Deploy {
        /// Function name.
        name: String,
        /// Fetch the source again and rebuild even when cached.
        #[arg(long)]
        cache_bust: bool,
    },
    /// Delete a function with its deployments and executions.
    Delete {
        /// Function name.
        name: String,
    },
}

/// `skybridge executions …`
#[derive(Subcommand, Debug)]
pub enum ExecutionsCommand {
    /// Show one execution.
    Get {
        /// Execution id.
        id: String,
    },
    /// Print an execution's full stdout and stderr.
    Logs {
        /// Execution id.
        id: String,
    },
}

/// `skybridge invoke …`
#[derive(Args, Debug)]
pub struct InvokeArgs {
    /// Function name.
    pub name: String,
    /// The input: JSON, `@file` for a file's JSON, `-` for stdin's.
    #[arg(long, short)]
    pub input: Option<String>,
    /// Queue the invocation instead of waiting for it.
    #[arg(long = "async")]
    pub run_async: bool,
    /// With --async: wait for the queued execution to finish.
    #[arg(long, requires = "run_async")]
    pub wait: bool,
    /// How long to wait, seconds (sync calls and --wait).
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

/// A client command.
#[derive(Debug)]
pub enum Command {
    /// `functions …`
    Functions(FunctionsCommand),
    /// `invoke …`
    Invoke(InvokeArgs),
    /// `executions …`
    Executions(ExecutionsCommand),
}

/// Runs `command`; the process's exit code.
pub fn run(connection: Connection, command: Command) -> std::process::ExitCode {
    let json = connection.json;
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Invalid(format!("starting the runtime: {e}")))
        .and_then(|rt| rt.block_on(execute(&connection, command)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            report(&e, json);
            std::process::ExitCode::from(1)
        }
    }
}

/// Prints an error to stderr: `error[code]: message`, or JSON with `--json`.
fn report(e: &Error, json: bool) {
    if json {
        let body = serde_json::json!({"error": {
            "status": e.status(),
            "code": e.code(),
            "message": match e.api() { Some(a) => a.message.clone(), None => e.to_string() },
            "field": e.field(),
            "request_id": e.request_id(),
        }});
        eprintln!("{body}");
    } else {
        let message = match e.api() {
            Some(a) => a.message.clone(),
            None => e.to_string(),
        };
        eprintln!("error[{}]: {message}", e.code());
        if let Some(id) = e.request_id() {
            eprintln!("  request id: {id}");
        }
        if let Error::DeploymentFailed { deployment, .. } = e {
            eprintln!("--- build log ---\n{}", deployment.build_log);
        }
    }
}

async fn execute(c: &Connection, command: Command) -> Result<(), Error> {
    let mut builder =
        Client::builder(&c.url).user_agent(concat!("skybridge-cli/", env!("CARGO_PKG_VERSION")));
    if let Some(t) = &c.token {
        builder = builder.token(t.clone());
    }
    let timeout = match &command {
        Command::Invoke(a) => Duration::from_secs(a.timeout),
        // Deploys wait for builds.
        _ => Duration::from_secs(600),
    };
    let client = builder.timeout(timeout).build()?;
    match command {
        Command::Functions(FunctionsCommand::List) => {
            let stream = client.list_functions_stream(ListFunctionsQuery::default());
            futures::pin_mut!(stream);
            let mut all = Vec::new();
            while let Some(f) = futures::StreamExt::next(&mut stream).await {
                all.push(f?);
            }
            print(c.json, &all, || functions_table(&all));
        }
        Command::Functions(FunctionsCommand::Get { name }) => {
            let f = client.get_function(&name).await?;
            print(c.json, &f, || function_details(&f));
        }
        Command::Functions(FunctionsCommand::Create { file }) => {
            let text = read_input(&file)?;
            let spec: FunctionSpec = serde_json::from_str(&text)
                .map_err(|e| Error::Invalid(format!("{file} is not a function spec: {e}")))?;
            let f = client.create_function(&spec).await?;
            print(c.json, &f, || format!("created {}\n", f.name));
        }
        Command::Functions(FunctionsCommand::Deploy { name, cache_bust }) => {
            let d = client.deploy_and_wait(&name, cache_bust).await?;
            print(c.json, &d, || deployment_details(&d));
        }
        Command::Functions(FunctionsCommand::Delete { name }) => {
            client.delete_function(&name).await?;
            print(c.json, &serde_json::json!({"deleted": name}), || {
                format!("deleted {name}\n")
            });
        }
        Command::Invoke(a) => {
            let input: Value = match &a.input {
                None => Value::Null,
                Some(i) => {
                    let text = if i == "-" || i.starts_with('@') {
                        read_input(i.strip_prefix('@').unwrap_or(i))?
                    } else {
                        i.clone()
                    };
                    serde_json::from_str(&text)
                        .map_err(|e| Error::Invalid(format!("--input is not JSON: {e}")))?
                }
            };
            let mut e = if a.run_async {
                client.invoke_async(&a.name, &input).await?
            } else {
                client.invoke(&a.name, &input).await?
            };
            if a.wait {
                e = client
                    .wait_for(e.id, Duration::from_secs(a.timeout))
                    .await?;
            }
            print(c.json, &e, || execution_details(&e));
            if skybridge_client::is_final(&e)
                && e.status != skybridge_client::models::ExecutionStatus::Succeeded
            {
                return Err(execution_error(&e));
            }
        }
        Command::Executions(ExecutionsCommand::Get { id }) => {
            let e = client.get_execution(parse_id(&id)?).await?;
            print(c.json, &e, || execution_details(&e));
        }
        Command::Executions(ExecutionsCommand::Logs { id }) => {
            let l = client.get_execution_logs(parse_id(&id)?).await?;
            print(c.json, &l, || logs_text(&l));
        }
    }
    Ok(())
}

/// A finished execution that did not succeed, as the CLI's error, with the
/// codes the Sky Island endpoint uses for the same outcome.
fn execution_error(e: &Execution) -> Error {
    use skybridge_client::models::ExecutionStatus;
    let (status, code) = match e.status {
        ExecutionStatus::TimedOut => (504, "execution_timed_out"),
        _ => (422, "execution_failed"),
    };
    Error::Api(Box::new(skybridge_client::ApiError {
        status,
        code: code.into(),
        message: format!(
            "execution {} ended {}{}",
            e.id,
            e.status,
            e.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
        field: None,
        request_id: None,
        deployment_id: None,
        execution_id: Some(e.id),
    }))
}

fn parse_id(id: &str) -> Result<skybridge_client::uuid::Uuid, Error> {
    id.parse()
        .map_err(|_| Error::Invalid(format!("`{id}` is not an execution id")))
}

/// A file's contents, or stdin's for `-`.
fn read_input(path: &str) -> Result<String, Error> {
    if path == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::Invalid(format!("reading stdin: {e}")))?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).map_err(|e| Error::Invalid(format!("reading {path}: {e}")))
    }
}

fn print<T: Serialize>(json: bool, value: &T, table: impl FnOnce() -> String) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("models serialize")
        );
    } else {
        print!("{}", table());
    }
}

/// Rows under a header, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

fn source_text(s: &SourceInfo) -> String {
    match s {
        SourceInfo::Wasm { digest, size_bytes } => {
            format!(
                "wasm {} ({size_bytes} bytes)",
                &digest[..digest.len().min(19)]
            )
        }
        SourceInfo::Go {
            repo,
            handler,
            call,
            ..
        } => format!(
            "go {repo} {}",
            handler.clone().or_else(|| call.clone()).unwrap_or_default()
        ),
        SourceInfo::Image { image, .. } => format!("image {image}"),
    }
}

fn functions_table(fs: &[Function]) -> String {
    let rows: Vec<Vec<String>> = fs
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                f.backend.to_string(),
                f.version.to_string(),
                source_text(&f.source),
                f.updated_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            ]
        })
        .collect();
    table(&["NAME", "BACKEND", "VERSION", "SOURCE", "UPDATED"], &rows)
}

fn pairs(rows: &[(&str, String)]) -> String {
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<w$}  {v}\n"))
        .collect()
}

fn function_details(f: &Function) -> String {
    pairs(&[
        ("name", f.name.clone()),
        ("backend", f.backend.to_string()),
        ("source", source_text(&f.source)),
        ("version", f.version.to_string()),
        (
            "limits",
            format!("{} MiB, {} ms", f.limits.memory_mb, f.limits.timeout_ms),
        ),
        ("env", f.env.keys().cloned().collect::<Vec<_>>().join(", ")),
        ("network", f.network.unwrap_or(false).to_string()),
        ("updated", f.updated_at.to_rfc3339()),
    ])
}

fn deployment_details(d: &Deployment) -> String {
    pairs(&[
        ("deployment", d.id.to_string()),
        ("function", d.function.clone()),
        ("status", d.status.to_string()),
        ("commit", d.resolved_commit.clone().unwrap_or_default()),
        ("artifact", d.artifact_digest.clone().unwrap_or_default()),
    ])
}

fn execution_details(e: &Execution) -> String {
    let mut rows = vec![
        ("execution", e.id.to_string()),
        ("function", e.function.clone()),
        ("status", e.status.to_string()),
    ];
    if let Some(d) = e.duration_ms {
        rows.push(("duration", format!("{d} ms")));
    }
    if let Some(r) = &e.reason {
        rows.push(("reason", r.clone()));
    }
    if let Some(m) = &e.message {
        rows.push(("message", m.clone()));
    }
    if let Some(o) = &e.output {
        rows.push((
            "output",
            match o {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
        ));
    }
    pairs(&rows)
}

fn logs_text(l: &ExecutionLogs) -> String {
    format!(
        "--- stdout{} ---\n{}\n--- stderr{} ---\n{}\n",
        if l.stdout_truncated {
            " (truncated)"
        } else {
            ""
        },
        l.stdout.trim_end(),
        if l.stderr_truncated {
            " (truncated)"
        } else {
            ""
        },
        l.stderr.trim_end()
    )
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["NAME", "BACKEND"],
            &[
                vec!["hello".into(), "wasm".into()],
                vec!["a-longer-name".into(), "docker".into()],
            ],
        );
        assert_eq!(
            t,
            "NAME           BACKEND\nhello          wasm\na-longer-name  docker\n"
        );
    }
}
