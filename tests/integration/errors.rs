//! Every error code the API promises, with its status and body shape.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn each_error_has_its_status_and_stable_code() {
    let s = TestServer::start(&[("SKYBRIDGE_SERVER_MAX_BODY_BYTES", "200000")]).await;
    let module = b64(&wat_module("(module (func (export \"_start\")))"));
    let spec = |name: &str| json!({"name": name, "backend": "wasm", "source": {"type": "wasm", "module": module}});
    let raw = |body: &str| {
        s.http
            .post(s.url("/api/v1/functions"))
            .header("content-type", "application/json")
            .body(body.to_string())
    };

    // 400 invalid_json
    let (st, b) = s.send(raw("{\"name\": ")).await;
    assert_eq!((st, error_code(&b)), (400, "invalid_json"));
    // 415 unsupported_media_type
    let (st, b) = s
        .send(s.http.post(s.url("/api/v1/functions")).body("{}"))
        .await;
    assert_eq!((st, error_code(&b)), (415, "unsupported_media_type"));
    // 422 invalid_body: unknown field, wrong type, unknown source type
    let (st, b) = s.send(raw(&json!({"name": "x", "backend": "wasm", "source": {"type": "wasm", "module": module}, "colour": 1}).to_string())).await;
    assert_eq!((st, error_code(&b)), (422, "invalid_body"));
    assert!(
        b["error"]["message"].as_str().unwrap().contains("colour"),
        "{b}"
    );
    let (st, b) = s.send(raw(&json!({"name": "x", "backend": "wasm", "source": {"type": "wasm", "module": module}, "limits": {"memory_mb": "lots"}}).to_string())).await;
    assert_eq!((st, error_code(&b)), (422, "invalid_body"));
    let (st, b) = s
        .send(raw(
            &json!({"name": "x", "backend": "wasm", "source": {"type": "cobol"}}).to_string(),
        ))
        .await;
    assert_eq!((st, error_code(&b)), (422, "invalid_body"));
    // 422 validation_failed naming the field
    let (st, b) = s.post("/api/v1/functions", &json!({"name": "x", "backend": "wasm", "source": {"type": "wasm", "module": "bm90IHdhc20="}})).await;
    assert_eq!((st, error_code(&b)), (422, "validation_failed"));
    assert_eq!(b["error"]["field"], "source.module");
    let mut bad = spec("x");
    bad["limits"] = json!({"timeout_ms": 999999999});
    let (st, b) = s.post("/api/v1/functions", &bad).await;
    assert_eq!(
        (st, error_code(&b), b["error"]["field"].as_str()),
        (422, "validation_failed", Some("limits.timeout_ms"))
    );
    // 422 unsupported_by_backend: jail runs Go sources, not WASI modules
    let mut jail = spec("d");
    jail["backend"] = json!("jail");
    let (st, b) = s.post("/api/v1/functions", &jail).await;
    assert_eq!(
        (st, error_code(&b), b["error"]["field"].as_str()),
        (422, "unsupported_by_backend", Some("source.type"))
    );
    // 413 payload_too_large
    let big = json!({"name": "big", "backend": "wasm", "source": {"type": "wasm", "module": "A".repeat(300_000)}});
    let (st, b) = s.post("/api/v1/functions", &big).await;
    assert_eq!((st, error_code(&b)), (413, "payload_too_large"));
    assert!(b["error"]["message"].as_str().unwrap().contains("200000"));
    // 201, then 409 function_exists
    assert_eq!(s.post("/api/v1/functions", &spec("f")).await.0, 201);
    let (st, b) = s.post("/api/v1/functions", &spec("f")).await;
    assert_eq!((st, error_code(&b)), (409, "function_exists"));
    // 409 function_not_deployed
    let (st, b) = s
        .post("/api/v1/functions/f/invoke", &json!({"input": 1}))
        .await;
    assert_eq!((st, error_code(&b)), (409, "function_not_deployed"));
    // 404 function_not_found (get, deploy, invoke, executions)
    for (st, b) in [
        s.get("/api/v1/functions/nope").await,
        s.post("/api/v1/functions/nope/deploy", &json!(null)).await,
        s.post("/api/v1/functions/nope/invoke", &json!({})).await,
        s.get("/api/v1/functions/nope/executions").await,
    ] {
        assert_eq!((st, error_code(&b)), (404, "function_not_found"));
    }
    // 404 execution_not_found, malformed or unknown id
    for id in ["not-a-uuid", "01a2011b-12cd-73c4-b508-fccce915e64c"] {
        let (st, b) = s.get(&format!("/api/v1/executions/{id}")).await;
        assert_eq!((st, error_code(&b)), (404, "execution_not_found"));
    }
    // 422 on invoke: bad callback URL, unknown invoke field
    s.post("/api/v1/functions/f/deploy", &json!(null)).await;
    let (st, b) = s
        .post(
            "/api/v1/functions/f/invoke",
            &json!({"input": 1, "callback_url": "ftp://x"}),
        )
        .await;
    assert_eq!(
        (st, error_code(&b), b["error"]["field"].as_str()),
        (422, "validation_failed", Some("callback_url"))
    );
    let (st, b) = s
        .post("/api/v1/functions/f/invoke", &json!({"inptu": 1}))
        .await;
    assert_eq!((st, error_code(&b)), (422, "invalid_body"));
    // 400 invalid_parameter
    let (st, b) = s.get("/api/v1/functions?limit=0").await;
    assert_eq!((st, error_code(&b)), (400, "invalid_parameter"));
    let (st, b) = s
        .get("/api/v1/functions/f/executions?status=sleeping")
        .await;
    assert_eq!((st, error_code(&b)), (400, "invalid_parameter"));
    // 404 route_not_found, 405 method_not_allowed
    let (st, b) = s.get("/api/v2/nothing").await;
    assert_eq!((st, error_code(&b)), (404, "route_not_found"));
    let (st, b) = s.send(s.http.patch(s.url("/api/v1/functions/f"))).await;
    assert_eq!((st, error_code(&b)), (405, "method_not_allowed"));
    // 422 on PUT: the path names the function; a name in the body is not a
    // field of the update (functions cannot be renamed).
    let (st, b) = s
        .send(s.http.put(s.url("/api/v1/functions/f")).json(&spec("g")))
        .await;
    assert_eq!((st, error_code(&b)), (422, "invalid_body"), "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("name"),
        "{b}"
    );
    let mut update = spec("f");
    update.as_object_mut().unwrap().remove("name");
    update["env"] = json!({"A": "1"});
    let (st, b) = s
        .send(s.http.put(s.url("/api/v1/functions/f")).json(&update))
        .await;
    assert_eq!(
        (st, &b["env"]["A"], &b["version"]),
        (200, &json!("1"), &json!(2)),
        "{b}"
    );
    // 422 unsupported_by_backend: what the backend cannot do, naming the field
    let mut networked = spec("n");
    networked["network"] = json!(true);
    let (st, b) = s.post("/api/v1/functions", &networked).await;
    assert_eq!(
        (st, error_code(&b), b["error"]["field"].as_str()),
        (422, "unsupported_by_backend", Some("network"))
    );
    assert!(
        b["error"]["message"].as_str().unwrap().contains("docker"),
        "{b}"
    );
    // Integers may be written as whole floats (JSON Schema's integer).
    let mut floaty = spec("floaty");
    floaty["limits"] = json!({"memory_mb": 64.0, "timeout_ms": 2e3});
    let (st, b) = s.post("/api/v1/functions", &floaty).await;
    assert_eq!((st, &b["limits"]["timeout_ms"]), (201, &json!(2000)), "{b}");

    // Nothing above hurt the server; responses carry a request id.
    let r = s.http.get(s.url("/healthcheck")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    let (st, h) = s.get("/api/v1/health").await;
    assert_eq!(st, 200);
    let backends = h["backends"].as_array().unwrap();
    assert_eq!(backends.len(), 3);
    assert_eq!(backends[0]["backend"], "wasm");
    assert_eq!(backends[0]["available"], true);
    assert_eq!(backends[1]["backend"], "docker");
    assert_eq!(
        backends[1]["available"], true,
        "scripts/test.sh starts dockerd"
    );
    assert_eq!(backends[2]["backend"], "jail");
    assert_eq!(
        backends[2]["available"], true,
        "the tests run as root, where jails run: {}",
        backends[2]
    );
    assert_eq!(backends[2]["details"]["driver"], "linux");
    assert_eq!(h["status"], "ok");
}

#[tokio::test]
async fn oversized_input_is_refused_before_running() {
    let s = TestServer::start(&[("SKYBRIDGE_LIMITS_MAX_INPUT_BYTES", "100")]).await;
    s.deploy_wasm(
        "f",
        &wat_module("(module (func (export \"_start\")))"),
        json!({}),
        json!({}),
    )
    .await;
    let (st, b) = s
        .post(
            "/api/v1/functions/f/invoke",
            &json!({"input": "x".repeat(200)}),
        )
        .await;
    assert_eq!(
        (st, error_code(&b), b["error"]["field"].as_str()),
        (413, "payload_too_large", Some("input"))
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_input_bytes"),
        "{b}"
    );
    let (_, page) = s.get("/api/v1/functions/f/executions").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn unknown_configuration_is_an_error_naming_the_key() {
    // Hermetic: whatever SKYBRIDGE_* the test runner's environment has set
    // must not be what the error names.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_skybridge"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SKYBRIDGE_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .arg("serve")
        .env("SKYBRIDGE_SERVER_LISTEN_PORT", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SKYBRIDGE_SERVER_LISTEN_PORT"));

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("skybridge.toml");
    std::fs::write(&cfg, "[wasm]\nmax_instancez = 3\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skybridge"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_instancez"));
}
