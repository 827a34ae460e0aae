//! The OpenAPI document: committed file = generated = served; Swagger UI renders it.

use std::process::Command;
use std::time::Duration;

use crate::common::*;

/// `openapi/openapi.json` must equal what the code generates. `UPDATE=1` rewrites it.
#[test]
fn committed_spec_matches_the_code() {
    let generated = skybridge::api::openapi::canonical_json();
    let path = repo_root().join("openapi/openapi.json");
    if std::env::var("UPDATE").as_deref() == Ok("1") {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: regenerate it with `UPDATE=1 cargo test --test integration committed_spec` \
         or `cargo run -q -- openapi > openapi/openapi.json`"
    );
}

#[tokio::test]
async fn served_spec_is_the_committed_one_with_this_servers_bounds_and_lists_every_error_code() {
    let s = TestServer::start(&[]).await;
    let (st, served) = s.get_text("/api/openapi.json").await;
    assert_eq!(st, 200);
    let served_json: serde_json::Value = serde_json::from_str(&served).unwrap();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("openapi/openapi.json")).unwrap(),
    )
    .unwrap();
    // The same operations as the committed file …
    assert_eq!(
        served_json["paths"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        committed["paths"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>()
    );
    // … with the bounds of this server: its CPU count, the backends it has
    // (all three), and Sky Island's `ip4` closed because its calls run on wasm.
    let config = skybridge::config::Config::load(None, Vec::<(String, String)>::new()).unwrap();
    let bounds = skybridge::contract::Bounds {
        built_backends: Some(skybridge::model::BackendKind::ALL.to_vec()),
        // jail gives a network only with an IPv4 pool, which this one lacks.
        networked_backends: Some(vec![skybridge::model::BackendKind::Docker]),
        ..skybridge::contract::Bounds::of(&config)
    };
    assert_eq!(served_json, skybridge::api::openapi::document(&bounds));
    let cpus = &served_json["components"]["schemas"]["LimitsSpec"]["properties"]["cpus"];
    assert_eq!(
        cpus["maximum"].as_f64(),
        Some(std::thread::available_parallelism().unwrap().get() as f64)
    );
    assert_eq!(
        served_json["components"]["schemas"]["FunctionSpec"]["properties"]["backend"]["enum"],
        serde_json::json!(["wasm", "docker", "jail"])
    );
    assert_eq!(
        served_json["components"]["schemas"]["SkyIslandRequest"]["properties"]["ip4"]["enum"],
        serde_json::json!([false, null])
    );
    for code in [
        "invalid_json",
        "invalid_body",
        "validation_failed",
        "payload_too_large",
        "unsupported_media_type",
        "function_not_found",
        "execution_not_found",
        "function_exists",
        "function_not_deployed",
        "deployment_failed",
        "unsupported_backend",
        "backend_unavailable",
        "invalid_parameter",
        "unsupported_by_backend",
        "invalid_call",
        "execution_failed",
        "execution_timed_out",
        "bad_request",
        "internal",
        "ip_pool_exhausted",
        "ip_pool_not_configured",
        "ip_in_use",
        "sandbox_not_found",
        "admin_token_required",
        "admin_token_invalid",
        "admin_disabled",
    ] {
        assert!(
            served.contains(code),
            "error code {code} is not documented in the spec"
        );
    }
}

fn chromium() -> String {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(c)
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
        {
            return c.to_string();
        }
    }
    panic!("no headless Chromium: scripts/test.sh installs Debian's `chromium`; this test needs a real browser");
}

#[tokio::test]
async fn swagger_ui_loads_and_lists_the_operations_in_a_real_browser() {
    let s = TestServer::start(&[]).await;
    let profile = tempfile::tempdir().unwrap();
    let url = s.url("/api/docs/");
    let browser = chromium();
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
                "--virtual-time-budget=15000",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(&url)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("chromium timed out")
    .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("swagger-ui"),
        "Swagger UI did not load: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for op in [
        "/api/v1/functions/{name}/invoke",
        "/api/v1/functions/{name}/deploy",
        "/api/v1/executions/{id}/logs",
        "/healthcheck",
    ] {
        assert!(dom.contains(op), "Swagger UI does not list {op}");
    }
    assert!(dom.contains("opblock"), "no operation blocks rendered");
}
