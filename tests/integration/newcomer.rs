//! The path a newcomer takes, on the README's own defaults: `bash
//! scripts/serve.sh` from the repository (no config file, the relative `data`
//! dir, the Go toolchain the script installs), then the README's walkthroughs.
//!
//! Every other test gives the server an absolute temporary data dir; a
//! relative one once broke every Go deploy (`GOCACHE is not an absolute path`)
//! while the whole suite passed.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use serde_json::json;

use crate::common::*;
use crate::docker::create_and_deploy;

/// `cmd` in `dir` must succeed.
fn run(dir: &std::path::Path, cmd: &mut Command) {
    let out = cmd.current_dir(dir).output().expect("running a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn serve_sh_on_its_defaults_runs_the_readme_walkthroughs() {
    // A scratch copy of the repository's layout: what the script and the
    // walkthroughs touch.
    let scratch = Arc::new(tempfile::tempdir().unwrap());
    let root = scratch.path().to_path_buf();
    copy_dir(&repo_root().join("scripts"), &root.join("scripts"));
    copy_dir(&repo_root().join("examples"), &root.join("examples"));
    // The toolchain `install_go` would download is the one scripts/test.sh
    // installed: same version, so the script keeps it.
    std::fs::create_dir_all(root.join(".tools/go/bin")).unwrap();
    std::os::unix::fs::symlink(
        std::fs::canonicalize(go_binary()).unwrap_or_else(|_| go_binary()),
        root.join(".tools/go/bin/go"),
    )
    .unwrap();
    // The data dir's Go build cache starts as a hard-linked copy of the suite's,
    // so std is not compiled again; where it lives is what this test is about.
    let shared_cache = repo_root().join("target/go-cache");
    if shared_cache.is_dir() {
        std::fs::create_dir_all(root.join("data/go")).unwrap();
        let _ = Command::new("cp")
            .arg("-al")
            .arg(&shared_cache)
            .arg(root.join("data/go/cache"))
            .status();
    }

    // Exactly the README's first command, with the port left to the kernel and
    // the binary this test run built (instead of a second, release build).
    let mut serve = Command::new("bash");
    serve
        .arg("scripts/serve.sh")
        .current_dir(&root)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "HOME",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
        )
        .env("SKYBRIDGE_BIN", env!("CARGO_BIN_EXE_skybridge"))
        .env("SKYBRIDGE_SERVER_LISTEN", "127.0.0.1:0")
        .env("SKYBRIDGE_LOG", "warn");
    let mut s = TestServer::launch(
        serve,
        scratch.clone(),
        root.join("data/instance-id"),
        Vec::new(),
    );

    // "Walkthrough with curl": build examples/hello-go to WASI with the
    // README's command, create, deploy, invoke.
    run(
        &root.join("examples/hello-go"),
        Command::new("bash")
            .args([
                "-c",
                "GOOS=wasip1 GOARCH=wasm ../../.tools/go/bin/go build -o hello.wasm .",
            ])
            .env("GOCACHE", &shared_cache)
            .env("GOTOOLCHAIN", "local"),
    );
    let module = std::fs::read(root.join("examples/hello-go/hello.wasm")).unwrap();
    let (st, b) = s
        .post(
            "/api/v1/functions",
            &json!({"name": "hello", "backend": "wasm",
                    "source": {"type": "wasm", "module": b64(&module)},
                    "env": {"LANG": "en"}, "limits": {"memory_mb": 64, "timeout_ms": 2000}}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let (st, b) = s.post("/api/v1/functions/hello/deploy", &json!(null)).await;
    assert_eq!((st, &b["status"]), (201, &json!("ready")), "{b}");
    let e = s.invoke("hello", json!({"name": "Ada"})).await;
    assert_eq!(e["output"], json!({"greeting": "Hello, Ada!"}), "{e}");

    // "Go functions from git": the example functions in a git repository.
    let repo = tempfile::tempdir().unwrap();
    copy_dir(&root.join("examples/go-functions"), repo.path());
    for args in [
        vec!["init", "-q", "-b", "main"],
        vec!["add", "-A"],
        vec![
            "-c",
            "user.name=me",
            "-c",
            "user.email=me@x",
            "commit",
            "-qm",
            "init",
        ],
    ] {
        run(repo.path(), Command::new("git").args(&args));
    }
    let url = format!("file://{}", repo.path().display());
    // The README's Go deploy, on the default data dir.
    let b = create_and_deploy(
        &s,
        json!({"name": "geo", "backend": "wasm",
               "source": {"type": "go", "repo": url, "handler": "Encode"}}),
    )
    .await;
    assert_eq!(b["resolved_commit"].as_str().map(str::len), Some(40), "{b}");
    let e = s.invoke("geo", json!([57.64911, 10.40744])).await;
    assert_eq!(e["output"], "u4pruydqqvj8", "{e}");

    // "Sky Island endpoint": a literal call and a call compiled as written.
    for (call, data) in [
        ("Hello(\"Ada\")", "Hello, Ada!"),
        ("Distance(Point{1, 2}, Point{3, 4})", "314.4 <nil>"),
    ] {
        let (st, b) = s
            .post("/api/v1/function", &json!({"url": url, "call": call}))
            .await;
        assert_eq!(st, 200, "{call}: {b}");
        assert_eq!(b["data"], data, "{call}: {b}");
    }

    // "Jail functions": the same handler in a sandbox (CI runs as root).
    create_and_deploy(
        &s,
        json!({"name": "geo-jail", "backend": "jail",
               "source": {"type": "go", "repo": url, "handler": "Encode"}}),
    )
    .await;
    let e = s.invoke("geo-jail", json!([57.64911, 10.40744])).await;
    assert_eq!(e["output"], "u4pruydqqvj8", "{e}");

    // Everything landed under ./data, the default, resolved against the
    // directory the server started in.
    let data: PathBuf = root.join("data");
    assert!(data.join("skybridge.db").is_file());
    assert!(std::fs::read_dir(data.join("artifacts")).unwrap().count() >= 3);
    assert!(std::fs::read_dir(data.join("repos")).unwrap().count() >= 1);
    assert!(data.join("go/cache").is_dir());
    s.terminate();
}
