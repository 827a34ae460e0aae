//! Create, deploy, invoke (sync and async), read back, update, delete.

use std::time::Duration;

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn hello_example_runs_sync_and_async() {
    let s = TestServer::start(&[]).await;
    let dep = s
        .deploy_wasm("hello", hello_module(), json!({}), json!({}))
        .await;
    assert!(dep["artifact_digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(
        dep["build_log"].as_str().unwrap().contains("compiled"),
        "{dep}"
    );

    let e = s.invoke("hello", json!({"name": "Ada"})).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(e["output"], json!({"greeting": "Hello, Ada!"}));
    assert_eq!(e["stderr"], "greeting Ada\n");
    assert_eq!(e["exit_code"], 0);
    assert_eq!(e["backend"], "wasm");
    assert!(e["duration_ms"].is_u64() && e["finished_at"].is_string());

    // Async: 202 with a queued execution that is readable at once, then finishes.
    let (st, q) = s
        .post(
            "/api/v1/functions/hello/invoke",
            &json!({"input": {"name": "Bob"}, "async": true}),
        )
        .await;
    assert_eq!(st, 202, "{q}");
    assert_eq!(q["status"], "queued");
    let id = q["id"].as_str().unwrap();
    let done = s.wait_final(id, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["output"]["greeting"], "Hello, Bob!");

    // The sync execution is readable by id and through logs, too.
    let (st, got) = s
        .get(&format!("/api/v1/executions/{}", e["id"].as_str().unwrap()))
        .await;
    assert_eq!(st, 200);
    assert_eq!(got["output"], e["output"]);
    let (st, logs) = s
        .get(&format!(
            "/api/v1/executions/{}/logs",
            e["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(st, 200);
    assert_eq!(logs["stdout"], "{\"greeting\":\"Hello, Ada!\"}\n");
    assert_eq!(logs["stderr"], "greeting Ada\n");
}

#[tokio::test]
async fn input_env_and_args_reach_the_function() {
    let s = TestServer::start(&[]).await;
    s.deploy_wasm("echo", guest_module(), json!({}), json!({"COLOR": "blue"}))
        .await;
    let input = json!({"mode": "echo", "list": [1, 2.5, "x", null], "nested": {"ok": true}});
    let e = s.invoke("echo", input.clone()).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(
        e["output"]["input"], input,
        "stdin carries the input's JSON text"
    );
    let env = &e["output"]["env"];
    assert_eq!(env["COLOR"], "blue");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(env["SKYBRIDGE_INPUT"].as_str().unwrap())
            .unwrap(),
        input
    );
    assert_eq!(env["SKYBRIDGE_FUNCTION"], "echo");
    assert_eq!(env["SKYBRIDGE_EXECUTION_ID"], e["id"]);
    assert!(
        env.get("PATH").is_none(),
        "host environment must not leak: {env}"
    );
    assert_eq!(e["output"]["args"], json!(["echo"]));
}

#[tokio::test]
async fn text_output_nonzero_exit_and_listing_by_status() {
    let s = TestServer::start(&[]).await;
    s.deploy_wasm("g", guest_module(), json!({}), json!({}))
        .await;
    let e = s.invoke("g", json!({"mode": "sleep", "ms": 1})).await;
    assert_eq!(
        e["output"], "slept",
        "non-JSON stdout is returned as a string"
    );
    let e = s.invoke("g", json!({"mode": "exit", "code": 7})).await;
    assert_eq!(e["status"], "failed");
    assert_eq!(e["exit_code"], 7);
    assert_eq!(e["reason"], "nonzero_exit");
    assert_eq!(e["stderr"], "exiting with 7\n");
    for _ in 0..3 {
        s.invoke("g", json!({"mode": "sleep", "ms": 0})).await;
    }
    let (_, page) = s.get("/api/v1/functions/g/executions?status=failed").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["exit_code"], 7);
    // Pages of 2, newest first, following next_cursor to the end.
    let mut seen = Vec::new();
    let mut path = "/api/v1/functions/g/executions?limit=2".to_string();
    loop {
        let (st, page) = s.get(&path).await;
        assert_eq!(st, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/functions/g/executions?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first");
}

#[tokio::test]
async fn callback_receives_the_finished_execution_after_a_retry() {
    use axum::{extract::State, routing::post, Json, Router};
    use std::sync::{Arc, Mutex};
    type Seen = Arc<Mutex<Vec<serde_json::Value>>>;
    let seen: Seen = Arc::default();
    async fn hook(
        State(seen): State<Seen>,
        Json(body): Json<serde_json::Value>,
    ) -> axum::http::StatusCode {
        let mut v = seen.lock().unwrap();
        v.push(body);
        // Refuse the first delivery to exercise the retry.
        if v.len() == 1 {
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        } else {
            axum::http::StatusCode::NO_CONTENT
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let s = TestServer::start(&[("SKYBRIDGE_EXECUTIONS_CALLBACK_BACKOFF_MS", "50")]).await;
    s.deploy_wasm("hello", hello_module(), json!({}), json!({}))
        .await;
    let (st, q) = s
        .post(
            "/api/v1/functions/hello/invoke",
            &json!({"input": {"name": "Cy"}, "async": true, "callback_url": format!("http://{addr}/hook")}),
        )
        .await;
    assert_eq!(st, 202, "{q}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "callback not retried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = seen.lock().unwrap()[1].clone();
    assert_eq!(got["id"], q["id"]);
    assert_eq!(got["status"], "succeeded");
    assert_eq!(got["output"]["greeting"], "Hello, Cy!");
    assert_eq!(
        s.metric("skybridge_callbacks_total{result=\"delivered\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn update_takes_effect_on_redeploy_and_delete_removes_everything() {
    let s = TestServer::start(&[]).await;
    s.deploy_wasm("f", guest_module(), json!({}), json!({"V": "1"}))
        .await;
    let spec = json!({"backend": "wasm", "source": {"type": "wasm", "module": b64(guest_module())},
                      "env": {"V": "2"}});
    let (st, f) = s
        .send(s.http.put(s.url("/api/v1/functions/f")).json(&spec))
        .await;
    assert_eq!(st, 200, "{f}");
    assert_eq!(f["version"], 2);
    let e = s.invoke("f", json!({"mode": "echo"})).await;
    assert_eq!(
        e["output"]["env"]["V"], "1",
        "the live deployment keeps its snapshot until redeploy"
    );
    let (st, d) = s.post("/api/v1/functions/f/deploy", &json!(null)).await;
    assert_eq!(st, 201);
    assert_eq!(d["function_version"], 2);
    assert!(
        d["build_log"].as_str().unwrap().contains("cache hit"),
        "same module: no rebuild: {d}"
    );
    let e = s.invoke("f", json!({"mode": "echo"})).await;
    assert_eq!(e["output"]["env"]["V"], "2");
    let (_, deps) = s.get("/api/v1/functions/f/deployments").await;
    assert_eq!(deps["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        s.metric("skybridge_builds_total{backend=\"wasm\",result=\"ok\"}")
            .await,
        1.0
    );

    let (st, _) = s.send(s.http.delete(s.url("/api/v1/functions/f"))).await;
    assert_eq!(st, 204);
    let (st, body) = s.get("/api/v1/functions/f").await;
    assert_eq!((st, error_code(&body)), (404, "function_not_found"));
    let (st, body) = s
        .get(&format!("/api/v1/executions/{}", e["id"].as_str().unwrap()))
        .await;
    assert_eq!((st, error_code(&body)), (404, "execution_not_found"));
    let (st, body) = s
        .post("/api/v1/functions/f/invoke", &json!({"input": 1}))
        .await;
    assert_eq!((st, error_code(&body)), (404, "function_not_found"));
    let artifacts = std::fs::read_dir(s.data_dir.path().join("artifacts"))
        .unwrap()
        .count();
    let sources = std::fs::read_dir(s.data_dir.path().join("sources"))
        .unwrap()
        .count();
    assert_eq!(
        (artifacts, sources),
        (0, 0),
        "unused artifacts and sources are removed"
    );
}

#[tokio::test]
async fn functions_list_pages_by_name() {
    let s = TestServer::start(&[]).await;
    let module = b64(&wat_module("(module (func (export \"_start\")))"));
    for name in ["c", "a", "b"] {
        let (st, body) = s
            .post("/api/v1/functions", &json!({"name": name, "backend": "wasm", "source": {"type": "wasm", "module": module}}))
            .await;
        assert_eq!(st, 201, "{body}");
    }
    let (_, p1) = s.get("/api/v1/functions?limit=2").await;
    assert_eq!(
        p1["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    let (_, p2) = s
        .get(&format!(
            "/api/v1/functions?limit=2&cursor={}",
            p1["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(p2["items"][0]["name"], "c");
    assert!(p2["next_cursor"].is_null());
}

#[tokio::test]
async fn sixteen_concurrent_sync_invokes_all_succeed_and_metrics_count_them() {
    let s = TestServer::start(&[]).await;
    s.deploy_wasm("hello", hello_module(), json!({}), json!({}))
        .await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let http = s.http.clone();
        let url = s.url("/api/v1/functions/hello/invoke");
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .json(&json!({"input": {"name": format!("n{i}")}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let e: serde_json::Value = r.json().await.unwrap();
            assert_eq!(e["output"]["greeting"], format!("Hello, n{i}!"));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        s.metric(
            "skybridge_invocations_total{backend=\"wasm\",function=\"hello\",status=\"succeeded\"}"
        )
        .await,
        16.0
    );
    let (_, text) = s.get_text("/metrics").await;
    for name in [
        "skybridge_http_requests_total",
        "skybridge_http_request_duration_seconds_bucket",
        "skybridge_invoke_duration_seconds_bucket",
        "skybridge_async_queue_depth",
    ] {
        assert!(text.contains(name), "missing {name} in /metrics");
    }
    assert!(
        text.contains("route=\"/api/v1/functions/{name}/invoke\""),
        "routes are labelled by template"
    );
}

/// A client that hangs up mid-invoke does not cancel the run: the server keeps
/// running it on its own, and records how it ended.
#[tokio::test]
async fn a_sync_invoke_finishes_after_its_client_hangs_up() {
    let s = TestServer::start(&[]).await;
    s.deploy_wasm("g", guest_module(), json!({}), json!({}))
        .await;
    let hung_up = s
        .http
        .post(s.url("/api/v1/functions/g/invoke"))
        .json(&json!({"input": {"mode": "sleep", "ms": 1500}}))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(
        hung_up.as_ref().is_err_and(|e| e.is_timeout()),
        "{hung_up:?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (st, page) = s.get("/api/v1/functions/g/executions").await;
        assert_eq!(st, 200, "{page}");
        let e = &page["items"][0];
        if e["status"] == "succeeded" {
            assert_eq!(e["output"], "slept", "{e}");
            break;
        }
        assert_eq!(e["status"], "running", "{page}");
        assert!(std::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
