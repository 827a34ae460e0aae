//! Durability: what survives a restart or a crash, and what is pruned.

use std::time::Duration;

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn restart_keeps_functions_artifacts_and_executions_without_recompiling() {
    let mut s = TestServer::start(&[]).await;
    s.deploy_wasm("hello", hello_module(), json!({}), json!({}))
        .await;
    let before = s.invoke("hello", json!({"name": "A"})).await;
    let artifacts: Vec<_> = std::fs::read_dir(s.data_dir.path().join("artifacts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(artifacts.len(), 1);
    let mtime = std::fs::metadata(&artifacts[0])
        .unwrap()
        .modified()
        .unwrap();

    s.restart();
    let after = s.invoke("hello", json!({"name": "B"})).await;
    assert_eq!(after["output"]["greeting"], "Hello, B!");
    assert_eq!(after["deployment_id"], before["deployment_id"]);
    assert_eq!(
        s.metric("skybridge_builds_total{backend=\"wasm\",result=\"ok\"}")
            .await,
        0.0,
        "no recompile after restart"
    );
    assert_eq!(
        std::fs::metadata(&artifacts[0])
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );
    let (st, old) = s
        .get(&format!(
            "/api/v1/executions/{}",
            before["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(st, 200);
    assert_eq!(old["output"]["greeting"], "Hello, A!");
    // Redeploying the unchanged function is a cache hit, also across restarts.
    let (_, d) = s.post("/api/v1/functions/hello/deploy", &json!(null)).await;
    assert!(
        d["build_log"].as_str().unwrap().contains("cache hit"),
        "{d}"
    );
}

/// Queues a `sleep_ms` sleep and three echoes on a single-worker server and waits
/// until the sleep is running, so the echoes are queued behind it. Returns the
/// sleep's id and the echoes' ids in order.
async fn busy_worker_with_backlog(s: &TestServer, sleep_ms: u64) -> (String, Vec<String>) {
    let invoke_async = |input: serde_json::Value| async move {
        let (st, e) = s
            .post(
                "/api/v1/functions/g/invoke",
                &json!({"input": input, "async": true}),
            )
            .await;
        assert_eq!(st, 202, "{e}");
        e["id"].as_str().unwrap().to_string()
    };
    let long = invoke_async(json!({"mode": "sleep", "ms": sleep_ms})).await;
    let mut queued = Vec::new();
    for i in 0..3 {
        queued.push(invoke_async(json!({"mode": "echo", "i": i})).await);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, e) = s.get(&format!("/api/v1/executions/{long}")).await;
        if e["status"] == "running" {
            return (long, queued);
        }
        assert!(std::time::Instant::now() < deadline, "never started: {e}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_crash_interrupts_running_work_and_queued_work_resumes() {
    let mut s = TestServer::start(&[("SKYBRIDGE_EXECUTIONS_WORKERS", "1")]).await;
    s.deploy_wasm("g", guest_module(), json!({"timeout_ms": 60000}), json!({}))
        .await;
    let (long_id, queued) = busy_worker_with_backlog(&s, 50_000).await;
    assert_eq!(s.metric("skybridge_async_queue_depth").await, 3.0);
    s.kill();
    s.restart();

    let e = s.wait_final(&long_id, Duration::from_secs(5)).await;
    assert_eq!(e["status"], "failed");
    assert_eq!(e["reason"], "interrupted");
    for (i, id) in queued.iter().enumerate() {
        let e = s.wait_final(id, Duration::from_secs(20)).await;
        assert_eq!(e["status"], "succeeded", "{e}");
        assert_eq!(e["output"]["input"]["i"], i);
    }
}

#[tokio::test]
async fn sigterm_commits_pending_records_before_exiting() {
    let mut s = TestServer::start(&[]).await;
    s.deploy_wasm("g", guest_module(), json!({}), json!({}))
        .await;
    let ids: Vec<String> = {
        let mut ids = Vec::new();
        for i in 0..20 {
            let e = s.invoke("g", json!({"mode": "echo", "i": i})).await;
            ids.push(e["id"].as_str().unwrap().to_string());
        }
        ids
    };
    s.restart(); // SIGTERM, then start again
    for id in ids {
        let (st, e) = s.get(&format!("/api/v1/executions/{id}")).await;
        assert_eq!(st, 200, "{id} lost");
        assert_eq!(e["status"], "succeeded");
    }
}

#[tokio::test]
async fn old_executions_are_pruned_by_count() {
    let s = TestServer::start(&[
        ("SKYBRIDGE_EXECUTIONS_RETENTION_MAX_COUNT", "2"),
        ("SKYBRIDGE_EXECUTIONS_PRUNE_INTERVAL_MS", "100"),
    ])
    .await;
    s.deploy_wasm(
        "f",
        &wat_module("(module (func (export \"_start\")))"),
        json!({}),
        json!({}),
    )
    .await;
    let mut last = Vec::new();
    for _ in 0..5 {
        last.push(
            s.invoke("f", json!(null)).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, page) = s.get("/api/v1/functions/f/executions").await;
        let ids: Vec<_> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        if ids.len() == 2 {
            assert_eq!(
                ids,
                vec![last[4].clone(), last[3].clone()],
                "the newest are kept"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not pruned: {} left",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sigterm_lets_running_work_finish_and_leaves_queued_work_queued() {
    let mut s = TestServer::start(&[("SKYBRIDGE_EXECUTIONS_WORKERS", "1")]).await;
    s.deploy_wasm("g", guest_module(), json!({}), json!({}))
        .await;
    let (running, queued) = busy_worker_with_backlog(&s, 1500).await;
    let stopped = std::time::Instant::now();
    s.terminate();
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "shutdown waited for queued work"
    );

    // Restart with no workers able to pick anything up yet: look at the store as left.
    s.restart();
    let e = s.wait_final(&running, Duration::from_secs(5)).await;
    assert_eq!(
        e["status"], "succeeded",
        "the running execution was allowed to finish: {e}"
    );
    for id in &queued {
        let e = s.wait_final(id, Duration::from_secs(20)).await;
        assert_eq!(
            e["status"], "succeeded",
            "queued work ran after the restart: {e}"
        );
    }
}
