//! Go on the wasm backend runs from a deploy-time snapshot: isolation per call,
//! the call's own randomness, clock, env and args, and the fallbacks.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::common::*;
use crate::gofunctions::{create, deploy, go_fn, GitRepo};

#[tokio::test]
async fn every_call_starts_from_the_snapshot_with_its_own_randomness_clock_and_env() {
    let repo = GitRepo::from_fixture("gosnapshot");
    let s = TestServer::start(&[]).await;
    let mut spec = go_fn("state", &repo.url(), json!({"handler": "State"}));
    spec["env"] = json!({"GREETING": "hi"});
    create(&s, spec).await;
    let (st, d) = deploy(&s, "state").await;
    assert_eq!(st, 201, "{d}");
    let log = d["build_log"].as_str().unwrap();
    eprintln!("{log}");
    assert!(log.contains("a WASI reactor for the snapshot"), "{log}");
    assert!(log.contains("snapshot: ran the Go runtime's init"), "{log}");
    assert!(
        log.contains("data segments:") && log.contains("merged into"),
        "{log}"
    );
    let deployed_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;

    let mut seen: Vec<Value> = Vec::new();
    for _ in 0..6 {
        let e = s.invoke("state", json!([5])).await;
        assert_eq!(e["status"], "succeeded", "{e}");
        seen.push(e["output"].clone());
    }
    for o in &seen {
        // Nothing of an earlier call survives: package state, memory, timers.
        assert_eq!(o["counter"], 1, "{o}");
        assert_eq!(o["leftover"], 0, "{o}");
        assert_eq!(o["fired"], 0, "{o}");
        assert_eq!(
            o["goroutines"], seen[0]["goroutines"],
            "no goroutine survives: {o}"
        );
        // The call's own env and args, not the build's.
        assert_eq!(o["env"], "hi", "{o}");
        assert_eq!(o["args"], json!(["state"]), "{o}");
        // The clock: init happened at deploy, in the past; now is now; a sleep lasts.
        let since_init = o["since_init_ms"].as_i64().unwrap();
        assert!(
            (0..120_000).contains(&since_init),
            "time.Since(init) = {since_init} ms: {o}"
        );
        let now = o["now_unix_ms"].as_i64().unwrap();
        assert!(
            (now - deployed_ms).abs() < 120_000,
            "time.Now() = {now}: {o}"
        );
        let slept = o["slept_ms"].as_i64().unwrap();
        assert!(
            (5..2000).contains(&slept),
            "a 5 ms sleep measured {slept} ms: {o}"
        );
    }
    // Fresh randomness on every call: crypto, math/rand, math/rand/v2, map order.
    for field in ["crypto", "math_rand", "rand_v2"] {
        let distinct: HashSet<String> = seen.iter().map(|o| o[field].to_string()).collect();
        assert_eq!(
            distinct.len(),
            seen.len(),
            "{field} repeats across calls: {seen:?}"
        );
    }
    let orders: HashSet<&str> = seen
        .iter()
        .map(|o| o["map_order"].as_str().unwrap())
        .collect();
    assert!(
        orders.len() > 1,
        "map iteration order is the same in every call: {seen:?}"
    );
}

#[tokio::test]
async fn an_init_that_needs_the_functions_env_runs_per_call_and_the_log_says_why() {
    let repo = GitRepo::from_fixture("gosnapenv");
    let s = TestServer::start(&[]).await;
    let mut spec = go_fn("env", &repo.url(), json!({"handler": "Endpoint"}));
    spec["env"] = json!({"ENDPOINT": "https://example.test/api"});
    create(&s, spec).await;
    let (st, d) = deploy(&s, "env").await;
    assert_eq!(st, 201, "{d}");
    let log = d["build_log"].as_str().unwrap();
    assert!(log.contains("snapshot: not taken"), "{log}");
    assert!(
        log.contains("ENDPOINT is not set"),
        "the init's own words: {log}"
    );
    assert!(
        log.contains("every call initializes the Go runtime"),
        "{log}"
    );
    for _ in 0..2 {
        let e = s.invoke("env", json!(null)).await;
        assert_eq!(e["status"], "succeeded", "{e}");
        assert_eq!(e["output"], "https://example.test/api");
    }
}

#[tokio::test]
async fn uploaded_commands_run_as_before_with_merged_data_segments() {
    let s = TestServer::start(&[]).await;
    let d = s
        .deploy_wasm("hello", hello_module(), json!({}), json!({}))
        .await;
    let log = d["build_log"].as_str().unwrap();
    assert!(
        log.contains("a WASI command: every call runs `_start`"),
        "{log}"
    );
    assert!(log.contains("data segments:"), "{log}");
    let e = s.invoke("hello", json!(null)).await;
    assert_eq!(e["status"], "succeeded", "{e}");
}

#[tokio::test]
async fn a_snapshot_larger_than_the_memory_cap_fails_as_memory_limit() {
    let repo = GitRepo::from_fixture("gosnapshot");
    let s = TestServer::start(&[]).await;
    let mut spec = go_fn("small", &repo.url(), json!({"handler": "State"}));
    spec["limits"] = json!({"timeout_ms": 3000, "memory_mb": 2});
    create(&s, spec).await;
    let (st, d) = deploy(&s, "small").await;
    assert_eq!(st, 201, "{d}");
    let log = d["build_log"].as_str().unwrap();
    assert!(log.contains("snapshot: ran"), "{log}");
    let e = s.invoke("small", json!([0])).await;
    assert_eq!(e["status"], "failed", "{e}");
    assert_eq!(e["reason"], "memory_limit", "{e}");
    assert!(e["message"].as_str().unwrap().contains("2 MiB"), "{e}");
    // The server is fine, and a function with room runs.
    let mut spec = go_fn("roomy", &repo.url(), json!({"handler": "State"}));
    spec["limits"] = json!({"timeout_ms": 3000, "memory_mb": 64});
    create(&s, spec).await;
    assert_eq!(deploy(&s, "roomy").await.0, 201);
    assert_eq!(s.invoke("roomy", json!([0])).await["status"], "succeeded");
}
