//! Limits and isolation: time, memory, output, host files. The server stays healthy.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

async fn assert_healthy(s: &TestServer, function: &str) {
    let (st, h) = s.get("/api/v1/health").await;
    assert_eq!(st, 200);
    assert_eq!(h["status"], "ok", "{h}");
    let e = s.invoke(function, json!({"mode": "sleep", "ms": 0})).await;
    assert_eq!(e["status"], "succeeded", "server still runs functions: {e}");
}

#[tokio::test]
async fn infinite_loop_times_out_within_its_limit_plus_a_second() {
    let s = TestServer::start(&[]).await;
    s.deploy_wasm("g", guest_module(), json!({"timeout_ms": 1000}), json!({}))
        .await;
    let started = Instant::now();
    let e = s.invoke("g", json!({"mode": "loop"})).await;
    let took = started.elapsed();
    assert_eq!(e["status"], "timed_out", "{e}");
    assert_eq!(e["reason"], "timeout");
    assert!(e["exit_code"].is_null());
    assert!(
        took < Duration::from_millis(2000),
        "took {took:?} for a 1000 ms limit"
    );
    assert!(e["duration_ms"].as_u64().unwrap() >= 1000);
    assert_healthy(&s, "g").await;
}

#[tokio::test]
async fn a_guest_blocked_in_a_host_sleep_still_times_out() {
    let s = TestServer::start(&[]).await;
    s.deploy_wasm("g", guest_module(), json!({"timeout_ms": 500}), json!({}))
        .await;
    let started = Instant::now();
    let e = s.invoke("g", json!({"mode": "sleep", "ms": 60000})).await;
    assert_eq!(e["status"], "timed_out", "{e}");
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn allocating_past_the_memory_cap_fails_and_the_server_stays_healthy() {
    let s = TestServer::start(&[]).await;
    s.deploy_wasm("g", guest_module(), json!({"memory_mb": 64}), json!({}))
        .await;
    let ok = s.invoke("g", json!({"mode": "alloc", "mb": 8})).await;
    assert_eq!(ok["status"], "succeeded", "{ok}");
    let e = s.invoke("g", json!({"mode": "alloc", "mb": 512})).await;
    assert_eq!(e["status"], "failed", "{e}");
    assert_eq!(e["reason"], "memory_limit");
    assert!(e["message"].as_str().unwrap().contains("64 MiB"), "{e}");
    assert!(
        e["stderr"].as_str().unwrap().contains("out of memory"),
        "Go's own report is kept: {e}"
    );
    assert_healthy(&s, "g").await;
}

#[tokio::test]
async fn output_is_capped_with_a_visible_flag() {
    let s = TestServer::start(&[("SKYBRIDGE_EXECUTIONS_MAX_OUTPUT_BYTES", "10000")]).await;
    s.deploy_wasm("g", guest_module(), json!({}), json!({}))
        .await;
    let e = s
        .invoke("g", json!({"mode": "spew", "bytes": 200000}))
        .await;
    assert_eq!(
        e["status"], "succeeded",
        "a chatty function is not a failed one: {e}"
    );
    assert_eq!(e["stdout_truncated"], true);
    assert_eq!(e["stderr_truncated"], true);
    assert_eq!(e["output"].as_str().unwrap().len(), 10000);
    assert_eq!(e["stderr"].as_str().unwrap().len(), 10000);
    let (_, logs) = s
        .get(&format!(
            "/api/v1/executions/{}/logs",
            e["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(logs["stdout"].as_str().unwrap().len(), 10000);
    assert_eq!(logs["stdout_truncated"], true);
    let small = s.invoke("g", json!({"mode": "spew", "bytes": 1000})).await;
    assert_eq!(small["stdout_truncated"], false);
}

#[tokio::test]
async fn host_files_are_invisible() {
    let s = TestServer::start(&[]).await;
    s.deploy_wasm("g", guest_module(), json!({}), json!({}))
        .await;
    let e = s.invoke("g", json!({"mode": "files"})).await;
    let out = e["output"].as_str().unwrap();
    assert!(!out.contains("root:"), "{out}");
    let (a, b) = out.split_once(" | ").unwrap();
    assert_ne!(a, "<nil>", "reading /etc/passwd must fail");
    assert_ne!(b, "<nil>", "listing / must fail");
}

#[tokio::test]
async fn traps_and_modules_that_are_not_commands() {
    let s = TestServer::start(&[]).await;
    let trap = wat_module(r#"(module (func (export "_start") unreachable))"#);
    s.deploy_wasm("trap", &trap, json!({}), json!({})).await;
    let e = s.invoke("trap", json!(null)).await;
    assert_eq!(e["status"], "failed");
    assert_eq!(e["reason"], "trap");
    assert!(
        e["message"].as_str().unwrap().contains("unreachable"),
        "{e}"
    );

    let lib = wat_module(
        r#"(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"#,
    );
    let (st, body) = s
        .post("/api/v1/functions", &json!({"name": "lib", "backend": "wasm", "source": {"type": "wasm", "module": b64(&lib)}}))
        .await;
    assert_eq!(st, 201, "{body}");
    let (st, body) = s.post("/api/v1/functions/lib/deploy", &json!(null)).await;
    assert_eq!((st, error_code(&body)), (422, "deployment_failed"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("_start"),
        "{body}"
    );
    let (_, deps) = s.get("/api/v1/functions/lib/deployments").await;
    assert_eq!(deps["items"][0]["status"], "failed");
    assert!(deps["items"][0]["error"]
        .as_str()
        .unwrap()
        .contains("_start"));

    let sockets = wat_module(
        r#"(module (import "wasi_snapshot_preview1" "sock_open" (func (param i32) (result i32))) (func (export "_start")))"#,
    );
    s.post("/api/v1/functions", &json!({"name": "net", "backend": "wasm", "source": {"type": "wasm", "module": b64(&sockets)}})).await;
    let (st, body) = s.post("/api/v1/functions/net/deploy", &json!(null)).await;
    assert_eq!(
        (st, error_code(&body)),
        (422, "deployment_failed"),
        "imports outside WASI p1 are refused at deploy"
    );
}
