//! `skybridge bench`: sync invoke latency through HTTP, as ratios against a floor
//! measured in the same run.
//!
//! The floor is what no server can beat: the wasm backend instantiating and running
//! the same module in-process, with no HTTP, no store and no queue. The server is
//! then started in-process on 127.0.0.1:0 with a fresh data dir and driven over
//! loopback HTTP (keep-alive) at each concurrency. Client and server share this
//! machine's cores, as they would under any local load generator.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::artifacts::ArtifactCache;
use crate::backend::wasm::WasmBackend;
use crate::backend::RunRequest;
use crate::config::Config;
use crate::model::Limits;

/// Arguments of `skybridge bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// WASI command module to measure (`scripts/bench.sh` builds examples/hello-go).
    #[arg(long)]
    pub module: PathBuf,
    /// JSON input for every invocation.
    #[arg(long, default_value = r#"{"name":"bench"}"#)]
    pub input: String,
    /// Measured invocations per row (after warm-up).
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// Concurrency levels for the HTTP rows.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub concurrency: Vec<usize>,
}

/// Latency summary of one row.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub name: String,
    /// Concurrent callers.
    pub concurrency: usize,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Completed invocations per second of wall time.
    pub per_sec: f64,
}

fn summarize(name: &str, concurrency: usize, mut lat: Vec<Duration>, wall: Duration) -> Row {
    lat.sort();
    let pick = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
    Row {
        name: name.into(),
        concurrency,
        p50: pick(0.50),
        p99: pick(0.99),
        per_sec: lat.len() as f64 / wall.as_secs_f64(),
    }
}

/// Runs the benchmark and prints a Markdown table with ratios and targets.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let module = std::fs::read(&args.module)
        .with_context(|| format!("reading {}", args.module.display()))?;
    let input: Value = serde_json::from_str(&args.input).context("--input is not JSON")?;
    let scratch = tempfile_dir()?;
    let config = {
        let mut c = Config::default();
        c.server.listen = "127.0.0.1:0".parse()?;
        c.server.data_dir = scratch.join("data");
        c
    };
    let mut rows = Vec::new();

    // Floor: the backend alone.
    let cache = ArtifactCache::open(&scratch.join("floor"))?;
    let backend = WasmBackend::new(&config.wasm, &config.limits, cache)?;
    eprintln!(
        "compiling {} ({} bytes) for the floor...",
        args.module.display(),
        module.len()
    );
    let runnable = backend.load_module_bytes(&module).await?;
    let stdin = serde_json::to_vec(&input)?;
    let request = RunRequest {
        execution_id: uuid::Uuid::now_v7(),
        function: "bench".into(),
        stdin: stdin.clone(),
        env: vec![(
            "SKYBRIDGE_INPUT".into(),
            String::from_utf8_lossy(&stdin).into_owned(),
        )],
        limits: Limits {
            memory_mb: config.limits.default_memory_mb,
            timeout_ms: config.limits.default_timeout_ms,
        },
        max_output_bytes: config.executions.max_output_bytes,
    };
    for &c in &args.concurrency {
        let runnable = runnable.clone();
        let request = request.clone();
        let (lat, wall) = drive(c, args.requests, move || {
            let runnable = runnable.clone();
            let request = request.clone();
            async move {
                let o = runnable.run(request).await?;
                if o.exit_code != Some(0) {
                    bail!(
                        "floor run failed: {:?} {}",
                        o.reason,
                        String::from_utf8_lossy(&o.stderr)
                    );
                }
                Ok(())
            }
        })
        .await?;
        rows.push(summarize(
            "floor: in-process instantiate + run",
            c,
            lat,
            wall,
        ));
    }
    drop(runnable);
    drop(backend);

    // The server, over HTTP.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(crate::server::serve(
        config,
        async {
            let _ = stop_rx.await;
        },
        move |addr| {
            let _ = addr_tx.send(addr);
        },
    ));
    let base = format!("http://{}", addr_rx.await.context("server did not start")?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    use base64::Engine as _;
    let spec = json!({"name": "bench", "backend": "wasm",
        "source": {"type": "wasm", "module": base64::engine::general_purpose::STANDARD.encode(&module)}});
    let r = client
        .post(format!("{base}/api/v1/functions"))
        .json(&spec)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("create failed: {}", r.text().await?);
    }
    eprintln!("deploying through the API...");
    let r = client
        .post(format!("{base}/api/v1/functions/bench/deploy"))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("deploy failed: {}", r.text().await?);
    }
    let url = format!("{base}/api/v1/functions/bench/invoke");
    let body = Arc::new(serde_json::to_vec(&json!({ "input": input }))?);
    for &c in &args.concurrency {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        let (lat, wall) = drive(c, args.requests, move || {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            async move {
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.as_ref().clone())
                    .send()
                    .await?;
                let status = r.status();
                let e: Value = r.json().await?;
                if status != 200 || e["status"] != "succeeded" {
                    bail!("invoke failed: {status} {e}");
                }
                Ok(())
            }
        })
        .await?;
        rows.push(summarize("HTTP sync invoke", c, lat, wall));
    }
    let _ = stop_tx.send(());
    server.await??;
    let _ = std::fs::remove_dir_all(&scratch);

    print_table(&rows);
    Ok(())
}

/// Runs `op` `n` times (plus a warm-up of n/10) from `concurrency` tasks; returns
/// each measured latency and the measured wall time.
async fn drive<F, Fut>(
    concurrency: usize,
    n: usize,
    op: F,
) -> anyhow::Result<(Vec<Duration>, Duration)>
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    for _ in 0..(n / 10).max(10) {
        op().await?;
    }
    let per_task = n.div_ceil(concurrency);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_task);
            for _ in 0..per_task {
                let t = Instant::now();
                op().await?;
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok((all, started.elapsed()))
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("skybridge-bench-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn print_table(rows: &[Row]) {
    let floor = |c: usize| {
        rows.iter()
            .find(|r| r.name.starts_with("floor") && r.concurrency == c)
    };
    println!("| measurement | concurrency | p50 ms | p99 ms | invocations/s | p50 / floor p50 |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in rows {
        let ratio = floor(r.concurrency)
            .map(|f| format!("{:.2}x", r.p50.as_secs_f64() / f.p50.as_secs_f64()))
            .unwrap_or_else(|| "-".into());
        println!(
            "| {} | {} | {} | {} | {:.0} | {} |",
            r.name,
            r.concurrency,
            ms(r.p50),
            ms(r.p99),
            r.per_sec,
            ratio
        );
    }
    let http = |c: usize| {
        rows.iter()
            .find(|r| r.name.starts_with("HTTP") && r.concurrency == c)
    };
    if let (Some(f), Some(h)) = (floor(1), http(1)) {
        let ratio = h.p50.as_secs_f64() / f.p50.as_secs_f64();
        let verdict = if ratio <= 1.5 { "met" } else { "MISSED" };
        println!("\ntarget HTTP p50 at concurrency 1 <= 1.5x floor p50: {ratio:.2}x ({verdict})");
    }
    if let Some(h) = http(16) {
        let verdict = if h.per_sec >= 1000.0 { "met" } else { "MISSED" };
        println!(
            "target >= 1000 invocations/s at concurrency 16: {:.0}/s ({verdict})",
            h.per_sec
        );
    }
}
