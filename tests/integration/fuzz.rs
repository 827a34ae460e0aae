//! A property-based test generated from the spec: schemathesis (from PyPI, put
//! in `.tools/schemathesis` by scripts/test.sh) reads the live server's
//! `/api/openapi.json` and sends what it derives from it: schema examples,
//! boundary values, random valid and invalid requests, and link-driven
//! sequences (create → deploy → invoke → execution).
//!
//! It fails on any 5xx, any response that breaks its documented schema, status
//! or headers, any schema-invalid request that is accepted, and any schema-valid
//! request refused as malformed (`tests/fuzz/skybridge_checks.py`).

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;

use crate::common::*;

/// The schemathesis CLI: `TEST_SCHEMATHESIS_BIN`, or the project's venv.
fn schemathesis() -> PathBuf {
    if let Ok(st) = std::env::var("TEST_SCHEMATHESIS_BIN") {
        return PathBuf::from(st);
    }
    let local = repo_root().join(".tools/schemathesis/bin/st");
    assert!(
        local.exists(),
        "schemathesis is not installed: scripts/test.sh puts it in .tools/schemathesis \
         (or set TEST_SCHEMATHESIS_BIN to an `st` binary)"
    );
    local
}

/// A WASI command that writes `ok` and exits 0: small enough for a fuzzer to
/// create and deploy hundreds of times.
fn tiny_module() -> Vec<u8> {
    wat_module(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 16) "ok")
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 16))
            (i32.store (i32.const 4) (i32.const 2))
            (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
    )
}

#[tokio::test]
async fn the_spec_holds_against_a_schema_driven_fuzzer() {
    let st = schemathesis();
    // The admin routes too: the fuzzer sends the token (and its `ignored_auth`
    // check sends none and a wrong one, expecting 401 and 403).
    const TOKEN: &str = "fuzz-admin-token";
    let s = TestServer::start(&[("SKYBRIDGE_ADMIN_API_TOKEN", TOKEN)]).await;
    let (_, spec) = s.get("/api/openapi.json").await;
    let operations: usize = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    // A live function, so that generated invokes reach a real run and their
    // links reach real executions.
    s.deploy_wasm("fuzz-live", &tiny_module(), json!({}), json!({}))
        .await;

    let dir = tempfile::tempdir().unwrap();
    let template =
        std::fs::read_to_string(repo_root().join("tests/fuzz/schemathesis.toml")).unwrap();
    let config = format!(
        "{template}\n\
         # Written by tests/integration/fuzz.rs: real data for some of the values.\n\
         [dictionaries.live]\nvalues = [\"fuzz-live\"]\n\
         [dictionaries.modules]\nvalues = [\"{}\"]\n\
         [parameters]\n\
         \"path.name\" = {{ dictionary = \"live\", probability = 0.3 }}\n\
         \"body.source.module\" = {{ dictionary = \"modules\", probability = 0.7 }}\n",
        b64(&tiny_module())
    );
    let config_path = dir.path().join("schemathesis.toml");
    std::fs::write(&config_path, config).unwrap();

    let seed = std::env::var("SKYBRIDGE_FUZZ_SEED").unwrap_or_else(|_| "20261123".into());
    let examples = std::env::var("SKYBRIDGE_FUZZ_EXAMPLES").unwrap_or_else(|_| "100".into());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(st)
            .arg("--config-file")
            .arg(&config_path)
            .args(["run", &s.url("/api/openapi.json")])
            .args([
                "--checks",
                "all",
                "--max-examples",
                &examples,
                "--seed",
                &seed,
            ])
            // One worker: CPython 3.11's `ast` is not thread-safe (gh-106905),
            // and hypothesis uses it while generating.
            .args(["--workers", "1", "--no-color"])
            .args(["--header", &format!("X-Sky-Island-Token: {TOKEN}")])
            .env("PYTHONPATH", repo_root().join("tests/fuzz"))
            .env("SCHEMATHESIS_HOOKS", "skybridge_checks")
            .current_dir(dir.path())
            .output()
            .expect("running schemathesis")
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It really ran: every operation, every phase, and the links were followed.
    assert!(
        report.contains(&format!("Tested: {operations}")),
        "{operations} operations: {report}"
    );
    for phase in ["Examples", "Coverage", "Fuzzing", "Stateful"] {
        assert!(report.contains(&format!("✅ {phase}")), "{phase}: {report}");
    }
    assert!(
        !report.contains(" 0 covered"),
        "no link was followed: {report}"
    );
}
