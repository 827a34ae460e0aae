//! The Rust SDK (`skybridge-client`) against the real server: every
//! operation, the error mapping, retries across a restart, pagination, async
//! invoke + wait, timeouts and the build log of a failed deploy.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use skybridge_client::models::*;
use skybridge_client::{Client, Error, RequestOptions};

use crate::common::*;
use crate::gofunctions::GitRepo;

fn wasm_spec(name: &str, module: &[u8]) -> FunctionSpec {
    FunctionSpec {
        name: name.into(),
        backend: BackendKind::Wasm,
        source: SourceSpec::Wasm {
            module: b64(module),
        },
        env: None,
        limits: None,
        network: None,
        warm_pool_size: None,
    }
}

fn go_spec(name: &str, repo: &str, handler: &str) -> FunctionSpec {
    FunctionSpec {
        name: name.into(),
        backend: BackendKind::Wasm,
        source: SourceSpec::Go {
            repo: repo.into(),
            r#ref: None,
            package: None,
            handler: Some(handler.into()),
            call: None,
        },
        env: None,
        limits: Some(LimitsSpec {
            timeout_ms: Some(3000),
            ..Default::default()
        }),
        network: None,
        warm_pool_size: None,
    }
}

fn api(e: &Error) -> (u16, &str) {
    (e.status().unwrap_or(0), e.code())
}

#[tokio::test]
async fn every_operation_through_the_rust_sdk() {
    let s = TestServer::start(&[]).await;
    let c = Client::new(&s.base).unwrap();
    let repo = GitRepo::from_fixture("gofuncs");

    assert_eq!(c.get_liveness().await.unwrap().status, "ok");
    let health = c.get_health().await.unwrap();
    assert_eq!(health.backends.len(), 3);
    assert!(health.go.available);

    let f = c
        .create_function(&wasm_spec("echo", guest_module()))
        .await
        .unwrap();
    assert_eq!((f.name.as_str(), f.version), ("echo", 1));
    assert_eq!(c.get_function("echo").await.unwrap(), f);
    let updated = c
        .update_function(
            "echo",
            &FunctionUpdate {
                backend: BackendKind::Wasm,
                source: SourceSpec::Wasm {
                    module: b64(guest_module()),
                },
                env: Some([("GREETING".to_string(), "hi".to_string())].into()),
                limits: None,
                network: None,
                warm_pool_size: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    let d = c
        .deploy_function("echo", &DeployFunctionQuery::default())
        .await
        .unwrap();
    assert_eq!(d.status, DeploymentStatus::Ready);
    let page = c
        .list_deployments("echo", &ListDeploymentsQuery::default())
        .await
        .unwrap();
    assert_eq!(page.items[0].id, d.id);

    let e = c
        .invoke_function(
            "echo",
            &InvokeRequest {
                input: Some(json!({"mode": "echo", "x": 1})),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(e.status, ExecutionStatus::Succeeded);
    assert_eq!(e.output.as_ref().unwrap()["input"]["x"], 1);
    assert_eq!(e.output.as_ref().unwrap()["env"]["GREETING"], "hi");
    assert_eq!(c.get_execution(e.id).await.unwrap().id, e.id);
    let logs = c.get_execution_logs(e.id).await.unwrap();
    assert!(logs.stdout.contains("\"x\":1"), "{logs:?}");
    let list = c
        .list_executions(
            "echo",
            &ListExecutionsQuery {
                status: Some(ExecutionStatus::Succeeded),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(c
        .get_metrics()
        .await
        .unwrap()
        .contains("skybridge_invocations_total"));

    // Sky Island and a Go deploy through the helper.
    let r = c
        .run_sky_island(&SkyIslandRequest {
            url: repo.url(),
            call: "Add(2, 40)".into(),
            cache_bust: None,
            ip4: None,
            version: None,
        })
        .await
        .unwrap();
    assert_eq!(r.data, "42");
    c.create_function(&go_spec("add", &repo.url(), "Add"))
        .await
        .unwrap();
    let d = c.deploy_and_wait("add", false).await.unwrap();
    assert!(skybridge_client::is_ready(&d) && d.resolved_commit.is_some());
    assert_eq!(
        c.invoke("add", [20, 22]).await.unwrap().output,
        Some(json!(42))
    );

    // Async invoke, then wait for it.
    let queued = c.invoke_async("add", (1, 2)).await.unwrap();
    assert_eq!(queued.status, ExecutionStatus::Queued);
    let done = c
        .wait_for(queued.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        (done.status, done.output),
        (ExecutionStatus::Succeeded, Some(json!(3)))
    );

    c.delete_function("echo").await.unwrap();
    assert_eq!(
        api(&c.get_function("echo").await.unwrap_err()),
        (404, "function_not_found")
    );
}

#[tokio::test]
async fn errors_carry_status_code_field_and_request_id() {
    let s = TestServer::start(&[("SKYBRIDGE_LIMITS_MAX_INPUT_BYTES", "100")]).await;
    let c = Client::new(&s.base).unwrap();
    // 400
    let e = c
        .list_functions(&ListFunctionsQuery {
            limit: Some(0),
            cursor: None,
        })
        .await
        .unwrap_err();
    assert_eq!(api(&e), (400, "invalid_parameter"));
    assert!(e.request_id().is_some_and(|id| !id.is_empty()));
    // 404
    let e = c.get_function("nope").await.unwrap_err();
    assert_eq!(api(&e), (404, "function_not_found"));
    assert!(matches!(&e, Error::Api(a) if a.message.contains("nope")));
    // 409, twice over
    c.create_function(&wasm_spec("f", guest_module()))
        .await
        .unwrap();
    let e = c
        .create_function(&wasm_spec("f", guest_module()))
        .await
        .unwrap_err();
    assert_eq!(api(&e), (409, "function_exists"));
    let e = c.invoke("f", json!(null)).await.unwrap_err();
    assert_eq!(api(&e), (409, "function_not_deployed"));
    // 422 with the field
    let e = c
        .create_function(&wasm_spec("Bad Name", guest_module()))
        .await
        .unwrap_err();
    assert_eq!(
        (api(&e), e.field()),
        ((422, "validation_failed"), Some("name"))
    );
    // 413 with the field
    c.deploy_and_wait("f", false).await.unwrap();
    let e = c.invoke("f", "x".repeat(200)).await.unwrap_err();
    assert_eq!(
        (api(&e), e.field()),
        ((413, "payload_too_large"), Some("input"))
    );
    // Not retried: a POST the server answered.
    let posts = r#"skybridge_http_requests_total{method="POST",route="/api/v1/functions/{name}/invoke",status="413"}"#;
    assert_eq!(s.metric(posts).await, 1.0);

    // A deploy that fails carries the build log.
    let repo = GitRepo::from_files(&[
        ("go.mod", "module example.com/broken\n\ngo 1.21\n"),
        (
            "broken.go",
            "package broken\n\nfunc Add(a, b int) int { return a + }\n",
        ),
    ]);
    c.create_function(&go_spec("broken", &repo.url(), "Add"))
        .await
        .unwrap();
    match c.deploy_and_wait("broken", false).await.unwrap_err() {
        Error::DeploymentFailed {
            deployment,
            message,
            request_id,
        } => {
            assert_eq!(deployment.status, DeploymentStatus::Failed);
            assert!(
                deployment.build_log.contains("broken.go:3"),
                "{}",
                deployment.build_log
            );
            assert!(
                !deployment.build_log.contains("gobuild-"),
                "paths are the repository's, not the build dir's: {}",
                deployment.build_log
            );
            assert_eq!(
                deployment.resolved_commit.as_ref().map(String::len),
                Some(40)
            );
            assert!(message.contains("expected operand"), "{message}");
            assert!(request_id.is_some());
        }
        other => panic!("expected DeploymentFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_stopped_backend_is_503_and_invoke_is_not_repeated() {
    let mut s = TestServer::start(&[]).await;
    let c = Client::new(&s.base).unwrap();
    let spec = FunctionSpec {
        name: "cat".into(),
        backend: BackendKind::Docker,
        source: SourceSpec::Image {
            image: crate::docker::busybox_image().into(),
            command: Some(vec!["cat".into()]),
            user: None,
            reads_stdin: Some(true),
        },
        env: None,
        limits: None,
        network: None,
        warm_pool_size: Some(0),
    };
    c.create_function(&spec).await.unwrap();
    c.deploy_and_wait("cat", false).await.unwrap();
    // The same server with no engine behind it.
    s.restart_with("SKYBRIDGE_DOCKER_SOCKET", "/nonexistent/docker.sock");
    let c = Client::builder(&s.base).max_retries(3).build().unwrap();
    let e = c.invoke("cat", "hi").await.unwrap_err();
    assert_eq!(api(&e), (503, "backend_unavailable"), "{e}");
    let series = r#"skybridge_http_requests_total{method="POST",route="/api/v1/functions/{name}/invoke",status="503"}"#;
    assert_eq!(
        s.metric(series).await,
        1.0,
        "invoke is not retried once sent"
    );
}

#[tokio::test]
async fn calls_are_retried_across_a_server_restart() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut s = TestServer::start(&[("SKYBRIDGE_SERVER_LISTEN", listen.as_str())]).await;
    let c = Client::builder(&s.base)
        .max_retries(20)
        .backoff(Duration::from_millis(200), Duration::from_millis(800))
        .build()
        .unwrap();
    c.create_function(&wasm_spec("g", guest_module()))
        .await
        .unwrap();
    c.deploy_and_wait("g", false).await.unwrap();

    // Down, and back a moment later: a read and an invoke made while it is
    // down both succeed, because nothing was sent until it answered.
    s.kill();
    let restart = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(700));
        s.restart();
        s
    });
    let started = Instant::now();
    let (got, ran) = tokio::join!(c.get_function("g"), c.invoke("g", json!({"mode": "echo"})));
    let s = restart.await.unwrap();
    assert_eq!(got.unwrap().name, "g");
    assert_eq!(ran.unwrap().status, ExecutionStatus::Succeeded);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "they waited for the server"
    );

    // Without retries the same outage is a connection error (a new client:
    // one with a pooled connection may first see it close mid-request).
    drop(s);
    let once = Client::builder(c.base_url())
        .max_retries(0)
        .build()
        .unwrap();
    let e = once.get_function("g").await.unwrap_err();
    assert_eq!(e.code(), "connect_failed", "{e}");
    let pooled = c.with_options(RequestOptions::retries(0));
    let e = pooled.get_function("g").await.unwrap_err();
    assert!(
        matches!(e.code(), "connect_failed" | "transport_failed"),
        "{e}"
    );
}

#[tokio::test]
async fn lists_stream_across_pages_and_timeouts_fire() {
    let s = TestServer::start(&[]).await;
    let c = Client::new(&s.base).unwrap();
    for i in 0..7 {
        c.create_function(&wasm_spec(&format!("f{i}"), guest_module()))
            .await
            .unwrap();
    }
    let page = c
        .list_functions(&ListFunctionsQuery {
            limit: Some(3),
            cursor: None,
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    assert!(page.next_cursor.is_some());
    let names: Vec<String> = c
        .list_functions_stream(ListFunctionsQuery {
            limit: Some(3),
            cursor: None,
        })
        .map(|f| f.unwrap().name)
        .collect()
        .await;
    assert_eq!(names, (0..7).map(|i| format!("f{i}")).collect::<Vec<_>>());

    // A per-call timeout shorter than the function.
    c.deploy_and_wait("f0", false).await.unwrap();
    let slow = c.with_options(RequestOptions {
        timeout: Some(Duration::from_millis(300)),
        max_retries: Some(0),
    });
    let started = Instant::now();
    let e = slow
        .invoke("f0", json!({"mode": "sleep", "ms": 3000}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "timeout", "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // wait_for with a deadline it cannot meet.
    let queued = c
        .invoke_async("f0", json!({"mode": "sleep", "ms": 2000}))
        .await
        .unwrap();
    match c.wait_for(queued.id, Duration::from_millis(200)).await {
        Err(Error::WaitTimeout { last, .. }) => assert_eq!(last.id, queued.id),
        other => panic!("expected WaitTimeout, got {other:?}"),
    }
}
