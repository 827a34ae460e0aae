//! The jail rows of `skybridge bench`: the floor is a bare `fork+exec` of the
//! very static Go binary the backend runs (input on stdin, output read back),
//! measured in blocks alternating with the jail backend's cold invoke
//! through the HTTP API; then its warm (pooled) invoke, paced so that the
//! pool refills between calls, beside that row's floor: the same binary
//! started ahead of time and given its input after as long a wait. All in
//! one run.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::docker::{create_and_deploy, invoke_once, measure, metric};
use super::{ms, summarize, Row};

/// Results of the jail rows.
pub struct JailRows {
    exec: Row,
    cold: Row,
    warm: Row,
    /// The warm row's floor: the same binary started ahead of time, left
    /// waiting on its stdin for the warm pace, then given its input.
    prestarted: Row,
    /// The same Go handler on the wasm backend (in-process, no sandbox to
    /// start or tear down) at the warm pace: the server's own share.
    paced_wasm: Row,
    /// A `GET /healthcheck` at the warm rows' pace: what a request costs
    /// this machine after an idle gap, with no function at all.
    paced_http: Row,
    /// Calls of the warm row that found a warm jail, of `warm_calls`.
    warm_hits: usize,
    warm_calls: usize,
}

/// Why the jail rows cannot run here, if they cannot.
pub async fn unavailable(client: &reqwest::Client, base: &str) -> anyhow::Result<Option<String>> {
    let h: Value = client
        .get(format!("{base}/api/v1/health"))
        .send()
        .await?
        .json()
        .await?;
    let jail = h["backends"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["backend"] == "jail"))
        .cloned()
        .unwrap_or_default();
    Ok((jail["available"] != true).then(|| jail["reason"].as_str().unwrap_or("?").to_string()))
}

/// Runs the three rows for handler `handler` of `repo`, `n` invocations each.
pub async fn run(
    client: &reqwest::Client,
    base: &str,
    data_dir: &std::path::Path,
    repo: &str,
    handler: &str,
    input: &Value,
    n: usize,
) -> anyhow::Result<JailRows> {
    for (name, pool) in [("bench-jail-cold", 0), ("bench-jail-warm", 1)] {
        let spec = json!({"name": name, "backend": "jail", "warm_pool_size": pool,
            "source": {"type": "go", "repo": repo, "handler": handler}});
        create_and_deploy(client, base, &spec).await?;
    }
    let spec = json!({"name": "bench-jail-wasm", "backend": "wasm",
        "source": {"type": "go", "repo": repo, "handler": handler}});
    create_and_deploy(client, base, &spec).await?;
    // The very binary the backend runs (both functions share it).
    let binary = std::fs::read_dir(data_dir.join("artifacts"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "jail"))
        .context("no jail artifact in the data dir")?;
    let stdin = serde_json::to_vec(input)?;
    let env = [
        ("SKYBRIDGE_FUNCTION", "bench-jail-cold".to_string()),
        (
            "SKYBRIDGE_INPUT",
            String::from_utf8_lossy(&stdin).into_owned(),
        ),
    ];

    // The floor and the cold row run in alternating blocks, so that both
    // see the same host: on a shared machine, minutes apart, either can be
    // 20% slower. Within a block, calls run back to back.
    eprintln!(
        "jail: bare fork+exec of {} and cold invokes, {n} times each...",
        binary.display()
    );
    let bare_exec = || async {
        let t = Instant::now();
        let mut child = tokio::process::Command::new(&binary)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(&stdin).await?;
        drop(pipe);
        let out = child.wait_with_output().await?;
        ensure!(
            out.status.success() && !out.stdout.is_empty(),
            "the bare binary failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        anyhow::Ok(t.elapsed())
    };
    const BLOCK: usize = 20;
    for _ in 0..2 {
        bare_exec().await?;
        invoke_once(client, base, "bench-jail-cold", input).await?;
    }
    let (mut exec, mut cold) = (Vec::new(), Vec::new());
    while cold.len() < n {
        let k = BLOCK.min(n - cold.len());
        for _ in 0..k {
            exec.push(bare_exec().await?);
        }
        for _ in 0..k {
            cold.push(invoke_once(client, base, "bench-jail-cold", input).await?);
        }
    }
    let busy = |lat: &[Duration]| lat.iter().sum::<Duration>();
    let (exec_busy, cold_busy) = (busy(&exec), busy(&cold));
    let exec = summarize("bare fork+exec of the binary", 1, exec, exec_busy);
    let cold = summarize("backend cold invoke (HTTP)", 1, cold, cold_busy);
    eprintln!("jail: warm invokes, {n} times...");
    let hits = r#"skybridge_warm_pool_total{function="bench-jail-warm",result="hit"}"#;
    let before = metric(client, base, hits).await?;
    // A refill sets one sandbox up: a few ms.
    let pace = Duration::from_millis(30);
    let warm = measure(client, base, "bench-jail-warm", input, n, Some(pace)).await?;
    let after = metric(client, base, hits).await?;
    // A refill now and then outlasts the pace (a fresh network namespace
    // can wait milliseconds for the kernel's cleanup of used ones): such a
    // call sets its own jail up, as a cold one does. The row is the warm
    // path only if nearly every call took it.
    let (warm_hits, warm_calls) = ((after - before) as usize, n + 2); // measure's 2 warm-ups too
    ensure!(
        warm_hits * 100 >= warm_calls * 98,
        "only {warm_hits} of {warm_calls} warm invocations found a warm jail"
    );
    eprintln!("jail: pre-started binary at the warm pace, {n} times...");
    let marker = skybridge_jail::marker::new_marker();
    let mut lat = Vec::new();
    let started = Instant::now();
    for _ in 0..n {
        let mut child = tokio::process::Command::new(&binary)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env(crate::gobuild::shim::EXIT_MARKER_ENV, &marker)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        // Started, then idle as long as a warm jail waits between calls.
        tokio::time::sleep(pace).await;
        let t = Instant::now();
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(&stdin).await?;
        drop(pipe);
        let mut out = child.stdout.take().expect("piped stdout");
        let mut buf = Vec::new();
        // Answered once the marker is out, as the backend takes it.
        while !buf.windows(marker.len()).any(|w| w == marker.as_bytes()) {
            ensure!(
                out.read_buf(&mut buf).await? > 0,
                "the pre-started binary ended without its exit marker: {}",
                String::from_utf8_lossy(&buf)
            );
        }
        lat.push(t.elapsed());
        child.wait().await?;
    }
    let prestarted = summarize(
        "pre-started binary given its input at the warm pace",
        1,
        lat,
        started.elapsed(),
    );
    eprintln!("jail: the handler on wasm at the warm pace, {n} times...");
    let mut paced_wasm = measure(client, base, "bench-jail-wasm", input, n, Some(pace)).await?;
    paced_wasm.name = "the same handler on wasm at the warm pace (HTTP)".into();
    eprintln!("jail: paced HTTP round trips, {n} times...");
    let mut lat = Vec::new();
    let started = Instant::now();
    for _ in 0..n {
        tokio::time::sleep(pace).await;
        let t = Instant::now();
        super::healthcheck(client, base).await?;
        lat.push(t.elapsed());
    }
    let paced_http = summarize(
        "HTTP round trip at the warm pace (GET /healthcheck)",
        1,
        lat,
        started.elapsed(),
    );
    Ok(JailRows {
        exec,
        cold,
        warm,
        prestarted,
        paced_wasm,
        paced_http,
        warm_hits,
        warm_calls,
    })
}

impl JailRows {
    /// Prints the table and the verdicts.
    pub fn print(&self) {
        let floor = self.exec.p50.as_secs_f64();
        println!(
            "\n| jail: Go handler | p50 ms | p99 ms | p50 / bare exec p50 |\n|---|---:|---:|---:|"
        );
        for r in [
            &self.exec,
            &self.cold,
            &self.warm,
            &self.prestarted,
            &self.paced_wasm,
            &self.paced_http,
        ] {
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
        let warm_ms = self.warm.p50.as_secs_f64() * 1e3;
        println!(
            "\ntarget jail cold invoke p50 <= 2x bare exec p50: {cold:.2}x ({})",
            verdict(cold <= 2.0)
        );
        println!(
            "target jail warm invoke p50 <= 0.5 ms through HTTP: {warm_ms:.3} ms ({}; at that pace: the pre-started binary alone {:.3} ms, the handler on wasm {:.3} ms, an HTTP round trip alone {:.3} ms)",
            verdict(warm_ms <= 0.5),
            self.prestarted.p50.as_secs_f64() * 1e3,
            self.paced_wasm.p50.as_secs_f64() * 1e3,
            self.paced_http.p50.as_secs_f64() * 1e3
        );
        println!(
            "(the warm row: {} of {} calls found a warm jail)",
            self.warm_hits, self.warm_calls
        );
    }
}
