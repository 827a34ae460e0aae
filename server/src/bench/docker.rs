//! The docker rows of `skybridge bench`: what a user would otherwise do
//! (`docker run --rm` of the same image and command, through the docker CLI),
//! then the backend's cold invoke and its warm (pooled) invoke through the
//! HTTP API, all in one run against the same engine.
//!
//! Two subjects: a plain image (busybox `cat`, which exits the ordinary way),
//! and a Go function in its `FROM scratch` image (whose shim ends its output
//! with the exit marker, so a run need not wait for the container teardown).
//!
//! Warm invocations are paced: each waits until the pool has refilled (a warm
//! container is what the row measures), and the run checks through
//! `/metrics` that every measured invocation was a pool hit.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::{ms, summarize, Row};

/// One function measured three ways.
pub struct Subject {
    /// Row label.
    pub label: &'static str,
    /// Function name prefix.
    pub name: &'static str,
    /// The function's `source`.
    pub source: Value,
    /// Invoke input.
    pub input: Value,
}

/// Results of the docker rows of one subject.
pub struct DockerRows {
    label: &'static str,
    docker_run: Row,
    cold: Row,
    warm: Row,
}

/// Runs the three rows for `subject` with `n` measured invocations each.
pub async fn run(
    client: &reqwest::Client,
    base: &str,
    subject: &Subject,
    n: usize,
) -> anyhow::Result<DockerRows> {
    let (cold_fn, warm_fn) = (
        format!("{}-cold", subject.name),
        format!("{}-warm", subject.name),
    );
    let mut digest = String::new();
    for (name, pool) in [(&cold_fn, 0), (&warm_fn, 1)] {
        let spec = json!({"name": name, "backend": "docker", "warm_pool_size": pool,
            "source": subject.source});
        let d = create_and_deploy(client, base, &spec).await?;
        digest = d["artifact_digest"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }
    // The very image the backend runs, for `docker run --rm`.
    let health: Value = client
        .get(format!("{base}/api/v1/health"))
        .send()
        .await?
        .json()
        .await?;
    let instance = health["backends"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["backend"] == "docker"))
        .and_then(|b| b["details"]["instance"].as_str())
        .context("health names no docker instance")?;
    let mut argv = vec![crate::backend::docker::image::tag_for(instance, &digest)];
    if let Some(cmd) = subject.source["command"].as_array() {
        argv.extend(cmd.iter().filter_map(|a| a.as_str().map(str::to_string)));
    }
    let stdin = serde_json::to_vec(&subject.input)?;

    eprintln!("{}: docker run --rm, {n} times...", subject.label);
    let mut lat = Vec::new();
    let started = Instant::now();
    for i in 0..n + 2 {
        let t = Instant::now();
        docker_run(&argv, &stdin).await?;
        if i >= 2 {
            lat.push(t.elapsed());
        }
    }
    let docker_run = summarize("`docker run --rm` (CLI)", 1, lat, started.elapsed());
    eprintln!("{}: cold invokes, {n} times...", subject.label);
    let cold = measure(client, base, &cold_fn, &subject.input, n, None).await?;
    eprintln!("{}: warm invokes, {n} times...", subject.label);
    let hits = format!(r#"skybridge_warm_pool_total{{function="{warm_fn}",result="hit"}}"#);
    let before = metric(client, base, &hits).await?;
    // A refill is a container create + start: a few hundred ms.
    let pace = Some(Duration::from_millis(600));
    let warm = measure(client, base, &warm_fn, &subject.input, n, pace).await?;
    let after = metric(client, base, &hits).await?;
    // Two warm-up invocations precede the measured ones.
    ensure!(
        after - before >= (n + 2) as f64,
        "only {} of {} warm invocations found a warm container",
        after - before,
        n + 2
    );
    Ok(DockerRows {
        label: subject.label,
        docker_run,
        cold,
        warm,
    })
}

async fn docker_run(argv: &[String], stdin: &[u8]) -> anyhow::Result<()> {
    let mut child = tokio::process::Command::new("docker")
        .args(["run", "--rm", "-i", "--network", "none"])
        .args(argv)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running the docker CLI")?;
    let mut pipe = child.stdin.take().expect("piped stdin");
    pipe.write_all(stdin).await?;
    drop(pipe);
    let out = child.wait_with_output().await?;
    ensure!(
        out.status.success() && !out.stdout.is_empty(),
        "docker run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Creates and deploys the function `spec`; the deployment.
pub(super) async fn create_and_deploy(
    client: &reqwest::Client,
    base: &str,
    spec: &Value,
) -> anyhow::Result<Value> {
    let name = spec["name"].as_str().unwrap_or_default();
    let r = client
        .post(format!("{base}/api/v1/functions"))
        .json(spec)
        .send()
        .await?;
    ensure!(
        r.status().is_success(),
        "create {name}: {}",
        r.text().await?
    );
    let r = client
        .post(format!("{base}/api/v1/functions/{name}/deploy"))
        .send()
        .await?;
    ensure!(
        r.status().is_success(),
        "deploy {name}: {}",
        r.text().await?
    );
    Ok(r.json().await?)
}

/// `n` sequential invokes (after two warm-ups); `paced` waits that long
/// before each, for the pool to refill.
pub(super) async fn measure(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    input: &Value,
    n: usize,
    paced: Option<Duration>,
) -> anyhow::Result<Row> {
    let mut lat = Vec::new();
    let started = Instant::now();
    for i in 0..n + 2 {
        if let Some(pace) = paced {
            tokio::time::sleep(pace).await;
        }
        let took = invoke_once(client, base, name, input).await?;
        if i >= 2 {
            lat.push(took);
        }
    }
    let label = if paced.is_some() {
        "backend warm invoke (HTTP, pooled)"
    } else {
        "backend cold invoke (HTTP)"
    };
    Ok(summarize(label, 1, lat, started.elapsed()))
}

/// One invoke of `name`, checked: how long it took.
pub(super) async fn invoke_once(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    input: &Value,
) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let r = client
        .post(format!("{base}/api/v1/functions/{name}/invoke"))
        .json(&json!({ "input": input }))
        .send()
        .await?;
    let status = r.status();
    let e: Value = r.json().await?;
    let took = t.elapsed();
    if status != 200 || e["status"] != "succeeded" || e["output"].is_null() {
        bail!("invoke {name} failed: {status} {e}");
    }
    Ok(took)
}

pub(super) async fn metric(
    client: &reqwest::Client,
    base: &str,
    series: &str,
) -> anyhow::Result<f64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0))
}

impl DockerRows {
    /// Prints the table and the verdicts.
    pub fn print(&self) {
        let floor = self.docker_run.p50.as_secs_f64();
        println!(
            "\n| docker: {} | p50 ms | p99 ms | p50 / `docker run --rm` p50 |\n|---|---:|---:|---:|",
            self.label
        );
        for r in [&self.docker_run, &self.cold, &self.warm] {
            println!(
                "| {} | {} | {} | {:.3}x |",
                r.name,
                ms(r.p50),
                ms(r.p99),
                r.p50.as_secs_f64() / floor
            );
        }
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        let cold = self.cold.p50.as_secs_f64() / floor;
        let warm = self.warm.p50.as_secs_f64() / floor;
        println!(
            "\ntarget cold invoke p50 <= docker run --rm p50: {cold:.2}x ({})",
            verdict(cold <= 1.0)
        );
        println!(
            "target warm invoke p50 <= 1/10 of docker run --rm p50: {warm:.3}x ({})",
            verdict(warm <= 0.1)
        );
    }
}
