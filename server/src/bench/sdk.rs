//! The SDK rows: per-invoke latency of each SDK against a plain keep-alive
//! HTTP client of the same language, on the same deployed function, in the same
//! run. Rust is measured in-process (reqwest vs `skybridge-client`); Node
//! (`fetch` vs the addon) and Ruby (`Net::HTTP` on a persistent connection vs
//! the extension) run their own scripts, `sdk-node/bench.js` and
//! `sdk-ruby/bench.rb`, which alternate the two clients in blocks so that
//! machine noise falls on both.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

/// One language's pair of rows.
pub struct SdkRows {
    language: &'static str,
    plain: &'static str,
    plain_p50: Duration,
    plain_p99: Duration,
    sdk_p50: Duration,
    sdk_p99: Duration,
}

/// What a bench script prints: `{"plain": {"p50_us", "p99_us"}, "sdk": {…}}`.
fn from_script(language: &'static str, plain: &'static str, out: &[u8]) -> anyhow::Result<SdkRows> {
    let v: Value = serde_json::from_slice(out)
        .with_context(|| format!("{language} bench printed {}", String::from_utf8_lossy(out)))?;
    let us = |k: &str, q: &str| -> anyhow::Result<Duration> {
        let n = v[k][q]
            .as_f64()
            .with_context(|| format!("{language} bench: no {k}.{q} in {v}"))?;
        Ok(Duration::from_secs_f64(n / 1e6))
    };
    Ok(SdkRows {
        language,
        plain,
        plain_p50: us("plain", "p50_us")?,
        plain_p99: us("plain", "p99_us")?,
        sdk_p50: us("sdk", "p50_us")?,
        sdk_p99: us("sdk", "p99_us")?,
    })
}

fn quantiles(mut lat: Vec<Duration>) -> (Duration, Duration) {
    lat.sort();
    let pick = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
    (pick(0.5), pick(0.99))
}

/// Rust: reqwest against skybridge-client, alternating blocks of 100.
async fn rust(base: &str, function: &str, input: &Value, n: usize) -> anyhow::Result<SdkRows> {
    let plain = reqwest::Client::new();
    let sdk = skybridge_client::Client::new(base)?;
    let url = format!("{base}/api/v1/functions/{function}/invoke");
    let body = serde_json::to_vec(&json!({ "input": input }))?;
    let (mut a, mut b) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for round in 0..(n / 100 + 2) {
        for _ in 0..100 {
            let t = Instant::now();
            let r = plain
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await?;
            let e: Value = r.json().await?;
            anyhow::ensure!(e["status"] == "succeeded", "plain invoke: {e}");
            let d = t.elapsed();
            let t = Instant::now();
            let e = sdk.invoke(function, input).await?;
            anyhow::ensure!(
                e.status == skybridge_client::models::ExecutionStatus::Succeeded,
                "sdk invoke: {e:?}"
            );
            // The first two rounds warm both clients up.
            if round >= 2 {
                a.push(d);
                b.push(t.elapsed());
            }
        }
    }
    let ((pa, qa), (pb, qb)) = (quantiles(a), quantiles(b));
    Ok(SdkRows {
        language: "Rust",
        plain: "reqwest (keep-alive)",
        plain_p50: pa,
        plain_p99: qa,
        sdk_p50: pb,
        sdk_p99: qb,
    })
}

/// Every language's rows, against the function `function` deployed at `base`.
pub async fn run(
    root: &Path,
    base: &str,
    function: &str,
    input: &Value,
    n: usize,
) -> anyhow::Result<Vec<SdkRows>> {
    eprintln!("SDK rows: Rust...");
    let mut rows = vec![rust(base, function, input, n).await?];
    let input_json = serde_json::to_string(input)?;
    let script = |program: &str, args: Vec<String>, dir: &str| -> anyhow::Result<Vec<u8>> {
        let out = std::process::Command::new(program)
            .args(args)
            .current_dir(root.join(dir))
            .output()
            .with_context(|| format!("running {program}"))?;
        anyhow::ensure!(
            out.status.success(),
            "{program} bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(out.stdout)
    };
    let common = vec![
        base.to_string(),
        function.to_string(),
        input_json,
        n.to_string(),
    ];
    eprintln!("SDK rows: Node...");
    let node = script(
        "node",
        std::iter::once("bench.js".to_string())
            .chain(common.clone())
            .collect(),
        "sdk-node",
    )?;
    rows.push(from_script("Node", "`fetch` (keep-alive)", &node)?);
    eprintln!("SDK rows: Ruby...");
    let ruby = script(
        "ruby",
        ["-Ilib".to_string(), "bench.rb".to_string()]
            .into_iter()
            .chain(common)
            .collect(),
        "sdk-ruby",
    )?;
    rows.push(from_script("Ruby", "`Net::HTTP` (persistent)", &ruby)?);
    Ok(rows)
}

/// The table and the target (SDK p50 ≤ 1.1 × the plain client's).
pub fn print(rows: &[SdkRows], n: usize) {
    println!(
        "\n| SDK overhead, sync invoke of the wasm hello ({n} calls each) | p50 ms | p99 ms | SDK p50 / plain p50 |\n|---|---:|---:|---:|"
    );
    for r in rows {
        println!(
            "| {}: {} | {} | {} | 1.00x |",
            r.language,
            r.plain,
            super::ms(r.plain_p50),
            super::ms(r.plain_p99)
        );
        println!(
            "| {}: SDK | {} | {} | {:.2}x |",
            r.language,
            super::ms(r.sdk_p50),
            super::ms(r.sdk_p99),
            r.sdk_p50.as_secs_f64() / r.plain_p50.as_secs_f64()
        );
    }
    for r in rows {
        let ratio = r.sdk_p50.as_secs_f64() / r.plain_p50.as_secs_f64();
        println!(
            "target {} SDK p50 <= 1.1x the plain client: {ratio:.2}x ({})",
            r.language,
            if ratio <= 1.1 { "met" } else { "MISSED" }
        );
    }
}
