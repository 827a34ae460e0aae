//! `skybridge bench`: sync invoke latency through HTTP, as ratios against a floor
//! measured in the same run.
//!
//! The floor is what no server can beat: the wasm backend instantiating and running
//! the same module in-process, with no HTTP, no store and no queue. The server is
//! then started in-process on 127.0.0.1:0 with a fresh data dir and driven over
//! loopback HTTP (keep-alive) at each concurrency, from a lean client
//! (`http.rs`) so the rows time the server rather than a client library. Client
//! and server share this machine's cores, as they would under any local load
//! generator.

mod docker;
mod http;
mod jail;
mod sdk;
mod snapshot;

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
    /// Also measure Go functions: a `file://` git repository (scripts/bench.sh
    /// makes one from examples/go-functions).
    #[arg(long)]
    pub go_repo: Option<String>,
    /// Handler measured in the Go rows.
    #[arg(long, default_value = "Encode")]
    pub go_handler: String,
    /// Also measure the docker backend with this image (it needs `sh` and
    /// `cat`; `scripts/bench.sh` imports a busybox-static rootfs).
    #[arg(long)]
    pub docker_image: Option<String>,
    /// Measured invocations per docker row.
    #[arg(long, default_value_t = 30)]
    pub docker_requests: usize,
    /// Also measure the SDKs against plain clients: the repository root (for
    /// sdk-node/bench.js and sdk-ruby/bench.rb, whose native parts must be built).
    #[arg(long)]
    pub sdks: Option<PathBuf>,
    /// Measured invocations per jail row (with --go-repo, when the jail
    /// backend runs here).
    #[arg(long, default_value_t = 300)]
    pub jail_requests: usize,
    /// Measured invocations per SDK row.
    #[arg(long, default_value_t = 2000)]
    pub sdk_requests: usize,
    /// Calls (at concurrency 16, with --go-repo) across which the wasm
    /// snapshot rows watch this process's RSS.
    #[arg(long, default_value_t = 100_000)]
    pub rss_calls: usize,
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
    let data_dir = scratch.join("data");
    let mut config = {
        let mut c = Config::default();
        c.server.listen = "127.0.0.1:0".parse()?;
        c.server.data_dir = data_dir.clone();
        c
    };
    let go = match &args.go_repo {
        Some(repo) => Some(GoBench::prepare(repo, &args.go_handler, &scratch, &mut config).await?),
        None => None,
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
        control: Default::default(),
        function: "bench".into(),
        stdin: stdin.clone(),
        env: vec![(
            "SKYBRIDGE_INPUT".into(),
            String::from_utf8_lossy(&stdin).into_owned(),
        )],
        limits: Limits {
            memory_mb: config.limits.default_memory_mb,
            timeout_ms: config.limits.default_timeout_ms,
            cpus: config.limits.default_cpus,
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
    if go.is_some() {
        // The server builds its Go helper tools at start-up; measure nothing while
        // that compile competes for the cores.
        eprintln!("waiting for the server's Go tools...");
        loop {
            let h: Value = client
                .get(format!("{base}/api/v1/health"))
                .send()
                .await?
                .json()
                .await?;
            if h["go"]["tools_ready"] == true {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
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
    let lean = http::LeanClient::new(&base)?;
    let body = serde_json::to_vec(&json!({ "input": input }))?;
    let invoke = http_invoke(&lean, "/api/v1/functions/bench/invoke", &body);
    for &c in &args.concurrency {
        let (lat, wall) = drive(c, args.requests, invoke.clone()).await?;
        rows.push(summarize("HTTP sync invoke", c, lat, wall));
    }
    let sdk_rows = match &args.sdks {
        Some(root) => Some(sdk::run(root, &base, "bench", &input, args.sdk_requests).await?),
        None => None,
    };
    let go_rows = match go {
        Some(g) => Some(
            g.run(&client, &lean, &base, args.requests, args.rss_calls)
                .await?,
        ),
        None => None,
    };
    let mut jail_rows = None;
    if let Some(repo) = &args.go_repo {
        match jail::unavailable(&client, &base).await? {
            Some(reason) => {
                eprintln!("jail rows skipped: the jail backend is unavailable: {reason}")
            }
            None => {
                let input = json!([48.8584, 2.2945]);
                jail_rows = Some(
                    jail::run(
                        &client,
                        &base,
                        &data_dir,
                        repo,
                        &args.go_handler,
                        &input,
                        args.jail_requests,
                    )
                    .await?,
                );
            }
        }
    }
    let mut docker_rows = Vec::new();
    if let Some(image) = &args.docker_image {
        let mut subjects = vec![docker::Subject {
            label: "image (busybox `sh -c cat`)",
            name: "bench-image",
            source: json!({"type": "image", "image": image,
                "command": ["sh", "-c", "cat"], "reads_stdin": true}),
            input: input.clone(),
        }];
        if let Some(repo) = &args.go_repo {
            subjects.push(docker::Subject {
                label: "Go handler in a scratch image",
                name: "bench-go",
                source: json!({"type": "go", "repo": repo, "handler": args.go_handler}),
                input: json!([48.8584, 2.2945]),
            });
        }
        for subject in &subjects {
            docker_rows.push(docker::run(&client, &base, subject, args.docker_requests).await?);
        }
    }
    let _ = stop_tx.send(());
    server.await??;

    print_table(&rows);
    if let Some(s) = sdk_rows {
        sdk::print(&s, args.sdk_requests);
    }
    if let Some(g) = go_rows {
        g.print();
    }
    if let Some(j) = jail_rows {
        j.print();
    }
    for d in docker_rows {
        d.print();
    }
    Ok(())
}

/// The Go pipeline rows: cold deploy against a plain `go build` + precompile,
/// cached redeploy, and Sky Island calls with new literals against the floor.
struct GoBench {
    repo: String,
    handler: String,
    go: crate::gobuild::toolchain::GoToolchain,
    floor_cache: PathBuf,
    work: PathBuf,
}

struct GoRows {
    go_build: Duration,
    precompile: Duration,
    cold_deploy: Duration,
    redeploy: Row,
    call_floor: Row,
    calls: Row,
    snapshot: snapshot::SnapshotRows,
}

fn go_command(
    go: &crate::gobuild::toolchain::GoToolchain,
    cache: &std::path::Path,
    dir: &std::path::Path,
) -> std::process::Command {
    let mut c = std::process::Command::new(&go.path);
    c.current_dir(dir)
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        .env("CGO_ENABLED", "0")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", cache);
    c
}

impl GoBench {
    /// Primes one Go cache with std (as any machine that has built Go before has),
    /// copies it for the floor and for the server, and points the server at its copy.
    async fn prepare(
        repo: &str,
        handler: &str,
        scratch: &std::path::Path,
        config: &mut Config,
    ) -> anyhow::Result<Self> {
        let go = crate::gobuild::toolchain::discover("", std::env::var("SKYBRIDGE_GO").ok())
            .map_err(anyhow::Error::msg)?;
        let work = scratch.join("go-work");
        let primer = work.join("primer");
        std::fs::create_dir_all(&primer)?;
        std::fs::write(primer.join("go.mod"), "module primer\n\ngo 1.21\n")?;
        std::fs::write(
            primer.join("main.go"),
            "package main\n\nimport (\n\t\"bytes\"\n\t\"encoding/json\"\n\t\"errors\"\n\t\"fmt\"\n\t\"io\"\n\t\"math\"\n\t\"os\"\n\t\"reflect\"\n)\n\n\
             func main() {\n\t_, _ = io.ReadAll(os.Stdin)\n\tfmt.Print(bytes.NewBuffer(nil), json.Valid(nil), errors.New(\"\"), math.Pi, reflect.TypeOf(0))\n}\n",
        )?;
        let prime = work.join("cache-prime");
        eprintln!("priming a Go build cache with std for wasip1...");
        let st = go_command(&go, &prime, &primer)
            .args(["build", "-o", "/dev/null", "."])
            .status()?;
        anyhow::ensure!(st.success(), "priming the Go cache failed");
        let floor_cache = work.join("cache-floor");
        let server_cache = work.join("cache-server");
        for dest in [&floor_cache, &server_cache] {
            let st = std::process::Command::new("cp")
                .arg("-a")
                .arg(&prime)
                .arg(dest)
                .status()?;
            anyhow::ensure!(st.success(), "copying the Go cache failed");
        }
        config.go.binary = go.path.display().to_string();
        config.go.cache_dir = server_cache;
        Ok(Self {
            repo: repo.to_string(),
            handler: handler.to_string(),
            go,
            floor_cache,
            work,
        })
    }

    async fn run(
        self,
        client: &reqwest::Client,
        lean: &http::LeanClient,
        base: &str,
        requests: usize,
        rss_calls: usize,
    ) -> anyhow::Result<GoRows> {
        // Floor: what a user would do by hand: the same shim, `go build`, precompile.
        let src = self.work.join("floor-src");
        let st = std::process::Command::new("git")
            .args(["clone", "-q", &self.repo])
            .arg(&src)
            .status()?;
        anyhow::ensure!(st.success(), "cloning {}", self.repo);
        let module = std::fs::read_to_string(src.join("go.mod"))?
            .lines()
            .find_map(|l| l.strip_prefix("module ").map(|m| m.trim().to_string()))
            .context("the bench repository needs a go.mod")?;
        std::fs::create_dir_all(src.join("skybridgeshim"))?;
        std::fs::write(
            src.join("skybridgeshim/main.go"),
            crate::gobuild::shim::handler_shim(
                &module,
                &self.handler,
                crate::gobuild::shim::ShimMode::Command,
            ),
        )?;
        eprintln!("plain go build of {module}...");
        let t = Instant::now();
        let st = go_command(&self.go, &self.floor_cache, &src)
            .args([
                "build",
                "-trimpath",
                "-buildvcs=false",
                "-o",
                "floor.wasm",
                "./skybridgeshim",
            ])
            .status()?;
        let go_build = t.elapsed();
        anyhow::ensure!(st.success(), "plain go build failed");
        let wasm = std::fs::read(src.join("floor.wasm"))?;
        let cfg = Config::default();
        let backend = WasmBackend::new(
            &cfg.wasm,
            &cfg.limits,
            ArtifactCache::open(&self.work.join("floor-cache"))?,
        )?;
        let t = Instant::now();
        let runnable = backend.load_module_bytes(&wasm).await?;
        let precompile = t.elapsed();

        // Cold deploy through the API.
        let spec = json!({"name": "gobench", "backend": "wasm",
            "source": {"type": "go", "repo": self.repo, "handler": self.handler}});
        let r = client
            .post(format!("{base}/api/v1/functions"))
            .json(&spec)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "create: {}", r.text().await?);
        eprintln!("cold deploy through the API...");
        let t = Instant::now();
        let r = client
            .post(format!("{base}/api/v1/functions/gobench/deploy"))
            .send()
            .await?;
        let cold_deploy = t.elapsed();
        anyhow::ensure!(r.status().is_success(), "deploy: {}", r.text().await?);
        let deployed: Value = r.json().await?;
        let build_log = deployed["build_log"]
            .as_str()
            .unwrap_or_default()
            .to_string();

        let mut lat = Vec::new();
        let t = Instant::now();
        for _ in 0..20 {
            let t1 = Instant::now();
            let r = client
                .post(format!("{base}/api/v1/functions/gobench/deploy"))
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "redeploy: {}", r.text().await?);
            lat.push(t1.elapsed());
        }
        let redeploy = summarize("cached redeploy", 1, lat, t.elapsed());

        // Sky Island: new literal arguments on every call.
        let call = |i: usize| {
            format!(
                "{}({}.{:04}, {}.{:04})",
                self.handler,
                i % 80,
                i,
                i % 170,
                i * 7 % 10000
            )
        };
        let first = client
            .post(format!("{base}/api/v1/function"))
            .json(&json!({"url": self.repo, "call": call(0)}))
            .send()
            .await?;
        anyhow::ensure!(
            first.status().is_success(),
            "sky island: {}",
            first.text().await?
        );
        let n = 1000;
        let mut lat = Vec::with_capacity(n);
        let t = Instant::now();
        for i in 1..=n {
            let t1 = Instant::now();
            let r = client
                .post(format!("{base}/api/v1/function"))
                .json(&json!({"url": self.repo, "call": call(i)}))
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "sky island: {}", r.text().await?);
            lat.push(t1.elapsed());
        }
        let calls = summarize("Sky Island call, new literals", 1, lat, t.elapsed());

        let args = crate::gobuild::shim::parse_literal_call(&call(1))
            .expect("literal call")
            .args;
        let stdin = serde_json::to_vec(&args)?;
        let request = RunRequest {
            execution_id: uuid::Uuid::now_v7(),
            control: Default::default(),
            function: "floor".into(),
            stdin,
            env: vec![(crate::gobuild::shim::OUTPUT_ENV.into(), "print".into())],
            limits: Limits {
                memory_mb: cfg.limits.default_memory_mb,
                timeout_ms: cfg.limits.default_timeout_ms,
                cpus: cfg.limits.default_cpus,
            },
            max_output_bytes: cfg.executions.max_output_bytes,
        };
        let floor_request = request.clone();
        let (lat, wall) = drive(1, n, move || {
            let (runnable, request) = (runnable.clone(), request.clone());
            async move {
                let o = runnable.run(request).await?;
                anyhow::ensure!(o.exit_code == Some(0), "floor run failed");
                Ok(())
            }
        })
        .await?;
        let call_floor = summarize("floor: in-process run of the handler", 1, lat, wall);
        let snapshot = snapshot::run(
            &backend,
            snapshot::Subject {
                go: &self.go,
                go_cache: &self.floor_cache,
                src: &src,
                module: &module,
                handler: &self.handler,
                command: wasm,
                request: floor_request,
                function: "gobench",
                build_log: &build_log,
            },
            client,
            lean,
            base,
            requests,
            rss_calls,
        )
        .await?;
        Ok(GoRows {
            snapshot,
            go_build,
            precompile,
            cold_deploy,
            redeploy,
            call_floor,
            calls,
        })
    }
}

impl GoRows {
    fn print(&self) {
        let s = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1000.0);
        // The snapshot is work a plain build does not do; it has its own target.
        let snapshot = Duration::from_millis(self.snapshot.snapshot_ms().unwrap_or(0));
        let budget = self.go_build + self.precompile + Duration::from_secs(1) + snapshot;
        println!("\n| Go pipeline | ms |\n|---|---:|");
        println!(
            "| plain `go build` (wasip1, std cached) | {} |",
            s(self.go_build)
        );
        println!("| precompile of that module | {} |", s(self.precompile));
        println!("| cold deploy through the API | {} |", s(self.cold_deploy));
        println!(
            "| cached redeploy (p50 of 20) | {} |",
            ms(self.redeploy.p50)
        );
        println!(
            "\n| measurement | p50 ms | p99 ms | calls/s | p50 / floor p50 |\n|---|---:|---:|---:|---:|"
        );
        for r in [&self.call_floor, &self.calls] {
            println!(
                "| {} | {} | {} | {:.0} | {:.2}x |",
                r.name,
                ms(r.p50),
                ms(r.p99),
                r.per_sec,
                r.p50.as_secs_f64() / self.call_floor.p50.as_secs_f64()
            );
        }
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!(
            "\ntarget cold deploy <= go build + precompile + 1 s (+ the snapshot): {} ms vs {} ms ({})",
            s(self.cold_deploy),
            s(budget),
            verdict(self.cold_deploy <= budget)
        );
        println!(
            "target cached redeploy <= 50 ms: {} ms ({})",
            ms(self.redeploy.p50),
            verdict(self.redeploy.p50 <= Duration::from_millis(50))
        );
        let ratio = self.calls.p50.as_secs_f64() / self.call_floor.p50.as_secs_f64();
        println!(
            "target Sky Island call p50 <= 3x the wasm invoke floor: {ratio:.2}x ({})",
            verdict(ratio <= 3.0)
        );
        self.snapshot.print();
    }
}

/// A sync invoke through HTTP that must succeed, as [`drive`] runs it, from
/// the lean client (the server's share of a call; see `http.rs`).
fn http_invoke(
    client: &http::LeanClient,
    path: &str,
    body: &[u8],
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>
       + Send
       + Sync
       + Clone
       + 'static {
    #[derive(serde::Deserialize)]
    struct Execution {
        status: String,
    }
    let (client, req) = (
        client.clone(),
        Arc::new(http::Request::post_json(path, body)),
    );
    move || {
        let (client, req) = (client.clone(), req.clone());
        Box::pin(async move {
            let (status, body) = client.send(&req).await?;
            let e: Execution = serde_json::from_slice(&body)
                .with_context(|| format!("invoke: {status} {}", String::from_utf8_lossy(&body)))?;
            if status != 200 || e.status != "succeeded" {
                bail!("invoke failed: {status} {}", String::from_utf8_lossy(&body));
            }
            Ok(())
        })
    }
}

/// The same through reqwest, a client library's whole path.
fn reqwest_invoke(
    client: &reqwest::Client,
    url: &str,
    body: &Arc<Vec<u8>>,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>
       + Send
       + Sync
       + Clone
       + 'static {
    let (client, url, body) = (client.clone(), url.to_string(), body.clone());
    move || {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        Box::pin(async move {
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
        })
    }
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

/// One `GET /healthcheck` from the lean client: what HTTP alone costs.
async fn lean_healthcheck(client: &http::LeanClient, req: &http::Request) -> anyhow::Result<()> {
    let (status, _) = client.send(req).await?;
    anyhow::ensure!(status == 200, "healthcheck: {status}");
    Ok(())
}

/// One `GET /healthcheck` through reqwest, read to the end.
async fn healthcheck(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let r = client.get(format!("{base}/healthcheck")).send().await?;
    anyhow::ensure!(r.status() == 200, "healthcheck: {}", r.status());
    r.bytes().await?;
    Ok(())
}

/// The bench's scratch dir (data dir, Go caches, artifacts: hundreds of MB),
/// removed when dropped, so a run that fails half way leaves nothing behind.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> anyhow::Result<Scratch> {
    let dir = std::env::temp_dir().join(format!("skybridge-bench-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    Ok(Scratch(dir))
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
