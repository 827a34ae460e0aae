//! The wasm snapshot rows: one Go handler three ways in-process (today's
//! `_start` floor, `_start` with merged data segments, the deploy-time
//! snapshot), then the snapshot through HTTP at concurrency 1 and 16, the
//! server's RSS across many calls, and what the snapshot adds to a deploy.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{drive, ms, summarize, Row};
use crate::backend::wasm::WasmBackend;
use crate::backend::{RunRequest, Runnable};
use crate::gobuild::shim::{self, ShimMode};

/// What the snapshot rows measured.
pub struct SnapshotRows {
    rows: Vec<Row>,
    /// RSS of this process (server and client) before and after `rss_calls`.
    rss_before: u64,
    rss_after: u64,
    rss_calls: usize,
    /// The snapshot step of the server's cold deploy, from its build log.
    snapshot_ms: Option<u64>,
}

/// Everything the rows need from the Go pipeline rows.
pub struct Subject<'a> {
    pub go: &'a crate::gobuild::toolchain::GoToolchain,
    pub go_cache: &'a Path,
    /// A checkout of the bench repository with the command shim in place.
    pub src: &'a Path,
    pub module: &'a str,
    pub handler: &'a str,
    /// The command module `go build` made of it (today's path).
    pub command: Vec<u8>,
    /// A run of the handler in-process.
    pub request: RunRequest,
    /// The deployed function (deployed from the same repository).
    pub function: &'a str,
    /// Its cold deploy's build log.
    pub build_log: &'a str,
}

pub async fn run(
    backend: &WasmBackend,
    subject: Subject<'_>,
    client: &reqwest::Client,
    lean: &super::http::LeanClient,
    base: &str,
    requests: usize,
    rss_calls: usize,
) -> anyhow::Result<SnapshotRows> {
    std::fs::write(
        subject.src.join("skybridgeshim/main.go"),
        shim::handler_shim(subject.module, subject.handler, ShimMode::Reactor),
    )?;
    eprintln!("go build of the reactor...");
    let st = super::go_command(subject.go, subject.go_cache, subject.src)
        .args([
            "build",
            "-trimpath",
            "-buildvcs=false",
            "-buildmode=c-shared",
        ])
        .args(["-ldflags", shim::REACTOR_LDFLAGS, "-o", "reactor.wasm"])
        .arg("./skybridgeshim")
        .status()?;
    anyhow::ensure!(st.success(), "go build of the reactor failed");
    let reactor = std::fs::read(subject.src.join("reactor.wasm"))?;

    let floor = backend.load_module_bytes(&subject.command).await?;
    let (compacted, _) = backend.load_deployed_bytes(subject.command.clone()).await?;
    let (snapshot, log) = backend.load_deployed_bytes(reactor).await?;
    anyhow::ensure!(
        log.contains("snapshot: ran"),
        "the bench handler was not snapshotted: {log}"
    );

    let mut rows = Vec::new();
    for (name, runnable) in [
        ("floor: today's `_start`, in-process", floor),
        ("`_start`, data segments merged, in-process", compacted),
        ("snapshot, fresh instance per call, in-process", snapshot),
    ] {
        eprintln!("{name}...");
        let request = subject.request.clone();
        let (lat, wall) = drive(1, requests, move || {
            let (runnable, request): (Arc<dyn Runnable>, _) = (runnable.clone(), request.clone());
            async move {
                let o = runnable.run(request).await?;
                anyhow::ensure!(
                    o.exit_code == Some(0),
                    "in-process run failed: {:?} {}",
                    o.message,
                    String::from_utf8_lossy(&o.stderr)
                );
                Ok(())
            }
        })
        .await?;
        rows.push(summarize(name, 1, lat, wall));
    }

    let path = format!("/api/v1/functions/{}/invoke", subject.function);
    let body = serde_json::to_vec(
        &json!({"input": serde_json::from_slice::<Value>(&subject.request.stdin)?}),
    )?;
    let invoke = super::http_invoke(lean, &path, &body);
    for c in [1, 16] {
        eprintln!("snapshot: HTTP sync invokes at concurrency {c}...");
        let (lat, wall) = drive(c, requests, invoke.clone()).await?;
        rows.push(summarize("snapshot, HTTP sync invoke", c, lat, wall));
    }
    // What HTTP alone costs here, back to back like the invoke row: the
    // part of that row no backend work can remove.
    eprintln!("snapshot: HTTP round trips alone...");
    let (health, get) = (
        lean.clone(),
        Arc::new(super::http::Request::get("/healthcheck")),
    );
    let (lat, wall) = drive(1, requests, move || {
        let (client, get) = (health.clone(), get.clone());
        async move { super::lean_healthcheck(&client, &get).await }
    })
    .await?;
    rows.push(summarize(
        "HTTP round trip alone (GET /healthcheck)",
        1,
        lat,
        wall,
    ));
    // The same invoke through a client library, for comparison.
    eprintln!("snapshot: HTTP sync invokes through reqwest...");
    let url = format!("{base}{path}");
    let (lat, wall) = drive(
        1,
        requests,
        super::reqwest_invoke(client, &url, &Arc::new(body)),
    )
    .await?;
    rows.push(summarize(
        "snapshot, HTTP sync invoke, reqwest client",
        1,
        lat,
        wall,
    ));
    eprintln!("{rss_calls} calls at concurrency 16 for RSS...");
    let rss_before = rss_bytes()?;
    drive(16, rss_calls, invoke).await?;
    let rss_after = rss_bytes()?;

    let snapshot_ms = subject
        .build_log
        .lines()
        .find(|l| l.starts_with("snapshot: ran"))
        .and_then(|l| l.split(" in ").nth(1))
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|n| n.trim().parse().ok());
    Ok(SnapshotRows {
        rows,
        rss_before,
        rss_after,
        rss_calls,
        snapshot_ms,
    })
}

fn rss_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/self/status"))?;
    Ok(kb * 1024)
}

impl SnapshotRows {
    /// The snapshot step of the server's cold deploy.
    pub fn snapshot_ms(&self) -> Option<u64> {
        self.snapshot_ms
    }

    pub fn print(&self) {
        let floor = &self.rows[0];
        println!(
            "\n| wasm snapshot | concurrency | p50 ms | p99 ms | calls/s | p50 / floor p50 |\n|---|---:|---:|---:|---:|---:|"
        );
        for r in &self.rows {
            println!(
                "| {} | {} | {} | {} | {:.0} | {:.2}x |",
                r.name,
                r.concurrency,
                ms(r.p50),
                ms(r.p99),
                r.per_sec,
                r.p50.as_secs_f64() / floor.p50.as_secs_f64()
            );
        }
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let snap = &self.rows[2];
        println!(
            "\ntarget snapshot in-process p50 <= 130 us: {:.0} us ({})",
            us(snap.p50),
            verdict(snap.p50 <= Duration::from_micros(130))
        );
        let http1 = &self.rows[3];
        println!(
            "target snapshot HTTP p50 at concurrency 1 <= 250 us: {:.0} us ({}; an HTTP round trip alone: {:.0} us; the same invoke through reqwest: {:.0} us)",
            us(http1.p50),
            verdict(http1.p50 <= Duration::from_micros(250)),
            us(self.rows[5].p50),
            us(self.rows[6].p50)
        );
        let http16 = &self.rows[4];
        println!(
            "target >= 5000 invocations/s at concurrency 16: {:.0}/s ({})",
            http16.per_sec,
            verdict(http16.per_sec >= 5000.0)
        );
        let growth = self.rss_after as i64 - self.rss_before as i64;
        println!(
            "target RSS flat over {} calls (growth <= 16 MiB): {} MiB -> {} MiB, {:+.1} MiB ({})",
            self.rss_calls,
            self.rss_before >> 20,
            self.rss_after >> 20,
            growth as f64 / (1 << 20) as f64,
            verdict(growth <= 16 << 20)
        );
        match self.snapshot_ms {
            Some(ms) => println!(
                "target the snapshot adds <= 5 s to a cold deploy: {ms} ms ({})",
                verdict(ms <= 5000)
            ),
            None => println!("target the snapshot adds <= 5 s to a cold deploy: no snapshot in the build log (MISSED)"),
        }
    }
}
