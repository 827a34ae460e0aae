//! The jail backend on the real kernel (these tests run as root, as CI does),
//! the hostile-function suite on all three backends, the IPv4 pool and Sky
//! Island's admin API.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;
use crate::docker::{create_and_deploy, wait_warm};
use crate::gofunctions::GitRepo;

const TOKEN: &str = "test-admin-token-7f3a";

fn go_fn(name: &str, backend: &str, repo: &GitRepo, handler: &str, extra: Value) -> Value {
    let mut spec = json!({"name": name, "backend": backend,
        "source": {"type": "go", "repo": repo.url(), "handler": handler}});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec
}

/// Processes on the host whose `argv[0]` is `name` (a jail runs its function
/// under the function's name).
fn processes_named(name: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            if cmd.split(|b| *b == 0).next() == Some(name.as_bytes()) {
                out.push(pid);
            }
        }
    }
    out
}

async fn assert_no_process(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_named(name);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes of {name} outlived their execution: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn jail_details(s: &TestServer) -> Value {
    let (_, h) = s.get("/api/v1/health").await;
    h["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backend"] == "jail")
        .unwrap()
        .clone()
}

async fn wait_no_live_sandboxes(s: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = jail_details(s).await;
        if d["details"]["live_sandboxes"] == "0" {
            return;
        }
        assert!(Instant::now() < deadline, "sandboxes left: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `path?state=available` lists `n` addresses (an address comes
/// back as its sandbox is torn down, just after the execution's answer).
async fn available(s: &TestServer, path: &str, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (st, b) = s
            .send(admin(
                s,
                s.http.get(s.url(&format!("{path}?state=available"))),
            ))
            .await;
        assert_eq!(st, 200, "{b}");
        if b["items"].as_array().unwrap().len() == n {
            return b;
        }
        assert!(
            Instant::now() < deadline,
            "{n} addresses never available: {b}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn admin(s: &TestServer, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    let _ = s;
    req.header("X-Sky-Island-Token", TOKEN)
}

#[tokio::test]
async fn a_go_function_runs_in_a_locked_down_jail_cold_and_warm() {
    let repo = GitRepo::from_fixture("gohostile");
    let mut s = TestServer::start(&[]).await;
    let d = jail_details(&s).await;
    assert_eq!(d["available"], true, "jails run here (as root): {d}");
    let env = json!({"GREETING": "hi"});
    create_and_deploy(
        &s,
        go_fn(
            "who",
            "jail",
            &repo,
            "Whoami",
            json!({"warm_pool_size": 1, "env": env}),
        ),
    )
    .await;
    create_and_deploy(
        &s,
        go_fn(
            "who-cold",
            "jail",
            &repo,
            "Whoami",
            json!({"warm_pool_size": 0, "env": env}),
        ),
    )
    .await;
    wait_warm(&s, "who", 1).await;
    let hits = r#"skybridge_warm_pool_total{function="who",result="hit"}"#;
    for name in ["who", "who-cold"] {
        let e = s.invoke(name, json!([])).await;
        assert_eq!(e["status"], "succeeded", "{name}: {e}");
        let w = &e["output"];
        assert_eq!(
            w["pid"], 2,
            "{name}: its own pid namespace, under init: {w}"
        );
        assert_eq!(
            (w["uid"].as_i64(), w["gid"].as_i64()),
            (Some(65534), Some(65534))
        );
        assert_eq!(w["hostname"], name);
        assert_eq!(
            w["root"],
            json!(["dev", "etc", "function", "proc", "tmp"]),
            "{w}"
        );
        assert_eq!(
            w["status"], "CapEff: 0000000000000000;NoNewPrivs: 1;Seccomp: 2;",
            "{name}: {w}"
        );
        assert_eq!(w["fds"], 3, "only stdin, stdout and stderr: {w}");
        let env: Vec<&str> = w["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            env.contains(&"GREETING") && env.contains(&"SKYBRIDGE_FUNCTION"),
            "{env:?}"
        );
        assert!(
            env.iter()
                .all(|k| *k == "GREETING" || k.starts_with("SKYBRIDGE_")),
            "nothing of the server's environment: {env:?}"
        );
        if name == "who" {
            assert_eq!(s.metric(hits).await, 1.0, "it ran warm");
            // The pool refills after use.
            wait_warm(&s, "who", 1).await;
        } else {
            assert!(
                env.contains(&"SKYBRIDGE_INPUT"),
                "a cold run has its input in the env"
            );
        }
    }
    for name in ["who", "who-cold"] {
        let (st, _) = s
            .send(s.http.delete(s.url(&format!("/api/v1/functions/{name}"))))
            .await;
        assert_eq!(st, 204);
    }
    wait_no_live_sandboxes(&s).await;

    // A clean shutdown with a warm jail waiting releases it and removes
    // this instance's cgroups: nothing of the server is left.
    create_and_deploy(
        &s,
        go_fn("who", "jail", &repo, "Whoami", json!({"warm_pool_size": 1})),
    )
    .await;
    wait_warm(&s, "who", 1).await;
    let instance = std::fs::read_to_string(s.data_dir.path().join("instance-id")).unwrap();
    s.terminate();
    let left: Vec<_> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|h| h.path().join(format!("skybridge-{}", instance.trim())))
        .chain([format!("/sys/fs/cgroup/skybridge-{}", instance.trim()).into()])
        .filter(|p| p.exists())
        .collect();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
    assert_no_process("who").await;
}

/// What one hostile function must end as, on one backend.
struct Expect {
    status: &'static str,
    reason: Option<&'static str>,
}

#[tokio::test]
async fn hostile_functions_end_cleanly_on_every_backend() {
    let repo = GitRepo::from_fixture("gohostile");
    let s = TestServer::start(&[
        ("SKYBRIDGE_JAIL_WARM_POOL_SIZE", "0"),
        ("SKYBRIDGE_DOCKER_WARM_POOL_SIZE", "0"),
    ])
    .await;
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let data_dir = s.data_dir.path().display().to_string();
    // Room for a busy machine: an engine reporting an OOM kill, 200 MB
    // through two pipes.
    let limits = json!({"limits": {"memory_mb": 64, "timeout_ms": 4000}});
    for backend in ["jail", "docker", "wasm"] {
        let name = |h: &str| format!("{backend}-{}", h.to_lowercase());
        let handlers = [
            "ForkBomb",
            "MemoryBomb",
            "Loop",
            "Flood",
            "FillTmp",
            "Secrets",
            "WriteRoot",
            "Escapes",
            "Dial",
            "KillAll",
            "Daemon",
            "HoldChild",
        ];
        for h in handlers {
            create_and_deploy(&s, go_fn(&name(h), backend, &repo, h, limits.clone())).await;
        }
        let run = |h: &'static str, input: Value| {
            let (s, n) = (&s, name(h));
            async move {
                let started = Instant::now();
                let e = s.invoke(&n, input).await;
                assert!(
                    started.elapsed() < Duration::from_secs(15),
                    "{n} took {:?}",
                    started.elapsed()
                );
                e
            }
        };
        let check = |h: &str, e: &Value, x: Expect| {
            assert_eq!(e["status"], x.status, "{backend} {h}: {e}");
            if let Some(r) = x.reason {
                assert_eq!(e["reason"], r, "{backend} {h}: {e}");
            }
        };
        let all_refused = |h: &str, e: &Value| {
            check(
                h,
                e,
                Expect {
                    status: "succeeded",
                    reason: None,
                },
            );
            let m: BTreeMap<String, String> = serde_json::from_value(e["output"].clone()).unwrap();
            assert!(!m.is_empty());
            for (k, v) in &m {
                assert!(
                    v.starts_with("refused"),
                    "{backend} {h}: {k} was allowed: {e}"
                );
            }
        };

        let e = run("ForkBomb", json!([])).await;
        check(
            "ForkBomb",
            &e,
            Expect {
                status: "failed",
                reason: Some("nonzero_exit"),
            },
        );
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("fork refused")
                || e["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("fork refused"),
            "{e}"
        );

        let e = run("MemoryBomb", json!([])).await;
        assert_eq!(e["status"], "failed", "{backend}: {e}");
        if backend == "docker" {
            // containerd may miss an OOM kill right at start (see the docker
            // backend); it is a SIGKILL either way.
            assert!(
                e["reason"] == "memory_limit" || e["exit_code"] == 137,
                "{e}"
            );
        } else {
            assert_eq!(e["reason"], "memory_limit", "{backend}: {e}");
        }

        let e = run("Loop", json!([])).await;
        check(
            "Loop",
            &e,
            Expect {
                status: "timed_out",
                reason: Some("timeout"),
            },
        );

        // 200 MB through two pipes may outlast the limit on a loaded
        // machine: any clean end will do, as long as the output was capped.
        let e = run("Flood", json!([])).await;
        assert!(
            matches!(
                (e["status"].as_str(), e["reason"].as_str()),
                (Some("succeeded"), _)
                    | (Some("failed"), Some("nonzero_exit" | "memory_limit"))
                    | (Some("timed_out"), Some("timeout"))
            ),
            "{backend}: {e}"
        );
        assert_eq!(
            (
                e["stdout_truncated"].as_bool(),
                e["stderr_truncated"].as_bool()
            ),
            (Some(true), Some(true)),
            "{backend}: {e}"
        );

        let e = run("FillTmp", json!([])).await;
        if backend == "docker" && e["reason"] == "memory_limit" {
            // Docker sizes /tmp by docker.tmpfs_mb alone; its pages count
            // against the memory limit, which may end the run first.
        } else {
            check(
                "FillTmp",
                &e,
                Expect {
                    status: "succeeded",
                    reason: None,
                },
            );
            let out = e["output"].as_str().unwrap();
            assert!(
                out.starts_with("refused"),
                "{backend}: /tmp is capped: {out}"
            );
        }

        all_refused(
            "Secrets",
            &run(
                "Secrets",
                json!([[data_dir.clone(), format!("{data_dir}/skybridge.db")]]),
            )
            .await,
        );
        all_refused("WriteRoot", &run("WriteRoot", json!([])).await);
        all_refused("Escapes", &run("Escapes", json!([])).await);

        let e = run("Dial", json!([format!("127.0.0.1:{port}")])).await;
        check(
            "Dial",
            &e,
            Expect {
                status: "succeeded",
                reason: None,
            },
        );
        assert!(
            e["output"].as_str().unwrap().starts_with("refused"),
            "{backend}: reached the server: {e}"
        );

        let e = run("KillAll", json!([])).await;
        assert!(
            matches!(e["status"].as_str(), Some("succeeded" | "failed")),
            "{e}"
        );
        let (st, _) = s.get("/healthcheck").await;
        assert_eq!(st, 200, "{backend}: kill(-1) left the server alone");

        let e = run("Daemon", json!([])).await;
        check(
            "Daemon",
            &e,
            Expect {
                status: "succeeded",
                reason: None,
            },
        );

        let e = run("HoldChild", json!([])).await;
        if backend == "wasm" {
            // WASI has no processes: nothing to hold.
            assert!(e["output"].as_str().unwrap().starts_with("refused"), "{e}");
        } else {
            check(
                "HoldChild",
                &e,
                Expect {
                    status: "timed_out",
                    reason: Some("timeout"),
                },
            );
        }

        if backend == "jail" {
            for h in handlers {
                assert_no_process(&name(h)).await;
            }
            wait_no_live_sandboxes(&s).await;
        }
    }
    let (st, h) = s.get("/api/v1/health").await;
    assert_eq!((st, &h["status"]), (200, &json!("ok")), "{h}");
}

#[tokio::test]
async fn the_ip_pool_gives_addresses_that_reach_the_gateway_and_come_back() {
    let n = std::process::id() % 200 + 20;
    let bridge = format!("sbt{n}");
    let gateway = format!("10.214.{n}.1");
    let repo = GitRepo::from_fixture("gohostile");
    let net_repo = GitRepo::from_fixture("gonet");
    let mut s = TestServer::start(&[
        ("FAAS_DEFAULT_RUNTIME", "jail"),
        ("SKYBRIDGE_JAIL_WARM_POOL_SIZE", "0"),
        ("SKYBRIDGE_JAIL_IP4_BRIDGE", &bridge),
        ("SKYBRIDGE_JAIL_IP4_FIRST", &format!("10.214.{n}.10")),
        ("SKYBRIDGE_JAIL_IP4_COUNT", "2"),
        ("SKYBRIDGE_JAIL_IP4_PREFIX_LEN", "24"),
        ("SKYBRIDGE_JAIL_IP4_GATEWAY", &gateway),
        ("SKYBRIDGE_ADMIN_API_TOKEN", TOKEN),
    ])
    .await;
    // The server created the bridge; a TCP server listens on its gateway.
    let listener = tokio::net::TcpListener::bind(format!("{gateway}:0"))
        .await
        .unwrap();
    let target = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((c, _)) = listener.accept().await {
            drop(c);
        }
    });

    // Sky Island's ip4: an address from the pool; without it, none.
    let call = |ip4: bool| json!({"url": net_repo.url(), "call": "Addresses()", "ip4": ip4});
    let (st, b) = s.post("/api/v1/function", &call(true)).await;
    assert_eq!(st, 200, "{b}");
    let addr = b["data"].as_str().unwrap().to_string();
    assert!(
        addr == format!("10.214.{n}.10") || addr == format!("10.214.{n}.11"),
        "{b}"
    );
    let (st, b) = s.post("/api/v1/function", &call(false)).await;
    assert_eq!((st, &b["data"]), (200, &json!("none")), "{b}");

    create_and_deploy(
        &s,
        go_fn("dial-net", "jail", &repo, "Dial", json!({"network": true})),
    )
    .await;
    create_and_deploy(&s, go_fn("dial-none", "jail", &repo, "Dial", json!({}))).await;
    let e = s.invoke("dial-net", json!([target])).await;
    assert_eq!(e["output"], "connected", "{e}");
    let e = s.invoke("dial-none", json!([target])).await;
    assert!(e["output"].as_str().unwrap().starts_with("refused"), "{e}");

    // The pool is whole again.
    let ips = |q: &'static str| {
        let s = &s;
        async move {
            s.send(admin(
                s,
                s.http.get(s.url(&format!("/api/v1/admin/ips{q}"))),
            ))
            .await
        }
    };
    let b = available(&s, "/api/v1/admin/ips", 2).await;
    assert_eq!(b["bridge"], bridge.as_str());

    // Exhausted: both addresses taken out → 503 ip_pool_exhausted.
    for ip in [format!("10.214.{n}.10"), format!("10.214.{n}.11")] {
        let (st, b) = s
            .send(
                admin(&s, s.http.put(s.url("/api/v1/admin/ips")))
                    .json(&json!({"ip": ip, "state": "unavailable"})),
            )
            .await;
        assert_eq!((st, &b["state"]), (200, &json!("unavailable")), "{b}");
    }
    let (st, b) = s
        .post(
            "/api/v1/functions/dial-net/invoke",
            &json!({"input": [target]}),
        )
        .await;
    assert_eq!((st, error_code(&b)), (503, "ip_pool_exhausted"), "{b}");
    let (st, b) = s.post("/api/v1/function", &call(true)).await;
    assert_eq!((st, error_code(&b)), (503, "ip_pool_exhausted"), "{b}");
    // Sky Island's own path for the same thing puts one back.
    let (st, b) = s
        .send(
            admin(&s, s.http.put(s.url("/api/v1/admin/network/ip")))
                .json(&json!({"ip": format!("10.214.{n}.11"), "state": "available"})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let e = s.invoke("dial-net", json!([target])).await;
    assert_eq!(e["output"], "connected", "{e}");
    available(&s, "/api/v1/admin/network/ips", 1).await;
    let (st, b) = s
        .send(
            admin(&s, s.http.put(s.url("/api/v1/admin/ips")))
                .json(&json!({"ip": "10.9.9.9", "state": "available"})),
        )
        .await;
    assert_eq!((st, error_code(&b)), (422, "validation_failed"), "{b}");
    let (st, b) = ips("?state=maybe").await;
    assert_eq!((st, error_code(&b)), (400, "invalid_parameter"), "{b}");

    // A clean shutdown removes the bridge it created.
    s.terminate();
    assert!(
        !std::path::Path::new(&format!("/sys/class/net/{bridge}")).exists(),
        "bridge {bridge} left behind"
    );
}

#[tokio::test]
async fn the_admin_api_needs_its_token_and_kills_sandboxes_of_every_backend() {
    let repo = GitRepo::from_fixture("gohostile");
    let off = TestServer::start(&[]).await;
    let (st, b) = off.get("/api/v1/admin/jails").await;
    assert_eq!((st, error_code(&b)), (403, "admin_disabled"), "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("SKYBRIDGE_ADMIN_API_TOKEN"));
    drop(off);

    let s = TestServer::start(&[
        ("SKYBRIDGE_ADMIN_API_TOKEN", TOKEN),
        ("SKYBRIDGE_JAIL_WARM_POOL_SIZE", "0"),
    ])
    .await;
    let (st, b) = s.get("/api/v1/admin/api-stats").await;
    assert_eq!((st, error_code(&b)), (401, "admin_token_required"), "{b}");
    let (st, b) = s
        .send(
            s.http
                .get(s.url("/api/v1/admin/api-stats"))
                .header("X-Sky-Island-Token", "wrong"),
        )
        .await;
    assert_eq!((st, error_code(&b)), (403, "admin_token_invalid"), "{b}");
    let (st, b) = s
        .send(
            s.http
                .get(s.url("/api/v1/admin/api-stats"))
                .bearer_auth(TOKEN),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let routes = b["routes"].as_array().unwrap();
    assert!(
        routes
            .iter()
            .any(|r| r["route"] == "/api/v1/admin/api-stats" && r["client_errors"] == 2),
        "{b}"
    );
    let (st, b) = s
        .send(admin(&s, s.http.get(s.url("/api/v1/admin/ips"))))
        .await;
    assert_eq!((st, error_code(&b)), (409, "ip_pool_not_configured"), "{b}");

    for backend in ["jail", "wasm", "docker"] {
        let name = format!("hold-{backend}");
        let handler = if backend == "wasm" {
            "Loop"
        } else {
            "HoldChild"
        };
        create_and_deploy(
            &s,
            go_fn(
                &name,
                backend,
                &repo,
                handler,
                json!({"limits": {"timeout_ms": 60000}, "warm_pool_size": 0}),
            ),
        )
        .await;
        let (st, e) = s
            .post(
                &format!("/api/v1/functions/{name}/invoke"),
                &json!({"input": [], "async": true}),
            )
            .await;
        assert_eq!(st, 202, "{e}");
        let id = e["id"].as_str().unwrap().to_string();
        let deadline = Instant::now() + Duration::from_secs(20);
        let listed = loop {
            let (st, b) = s
                .send(admin(&s, s.http.get(s.url("/api/v1/admin/jails"))))
                .await;
            assert_eq!(st, 200, "{b}");
            let found = b["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["id"] == id.as_str())
                .cloned();
            match found {
                Some(i) if backend == "wasm" || i.get("name").is_some() => break i,
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "{backend}: execution never listed: {b}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(
            (listed["backend"].as_str(), listed["function"].as_str()),
            (Some(backend), Some(name.as_str()))
        );
        assert_eq!(listed["execution_id"], id.as_str());
        let (st, b) = s
            .send(admin(
                &s,
                s.http.get(s.url(&format!("/api/v1/admin/jail/{id}"))),
            ))
            .await;
        assert_eq!(st, 200, "{b}");
        let (st, b) = s
            .send(admin(
                &s,
                s.http.delete(s.url(&format!("/api/v1/admin/jail/{id}"))),
            ))
            .await;
        assert_eq!(st, 200, "{b}");
        let e = s.wait_final(&id, Duration::from_secs(10)).await;
        assert_eq!(
            (e["status"].as_str(), e["reason"].as_str()),
            (Some("failed"), Some("killed")),
            "{backend}: {e}"
        );
        if backend == "jail" {
            assert_no_process(&name).await;
        }
    }
    wait_no_live_sandboxes(&s).await;
    let (st, b) = s
        .send(admin(&s, s.http.delete(s.url("/api/v1/admin/jails"))))
        .await;
    assert_eq!((st, b["items"].as_array().unwrap().len()), (200, 0), "{b}");
    let ghost = "0190f1d2-0000-7000-8000-000000000000";
    let (st, b) = s
        .send(admin(
            &s,
            s.http.delete(s.url(&format!("/api/v1/admin/jail/{ghost}"))),
        ))
        .await;
    assert_eq!((st, error_code(&b)), (404, "sandbox_not_found"), "{b}");
}

#[tokio::test]
async fn a_crashed_server_leaves_no_sandbox_after_restart() {
    let repo = GitRepo::from_fixture("gohostile");
    let mut s = TestServer::start(&[("SKYBRIDGE_JAIL_WARM_POOL_SIZE", "0")]).await;
    create_and_deploy(
        &s,
        go_fn(
            "crash-hold",
            "jail",
            &repo,
            "HoldChild",
            json!({"limits": {"timeout_ms": 60000}}),
        ),
    )
    .await;
    let (st, e) = s
        .post(
            "/api/v1/functions/crash-hold/invoke",
            &json!({"input": [], "async": true}),
        )
        .await;
    assert_eq!(st, 202, "{e}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_named("crash-hold").len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the function and its child never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Reading the execution commits its pending `running` record; killed
    // before that (the writer's flush window), the restart would find it
    // still queued and run it again.
    let id = e["id"].as_str().unwrap().to_string();
    let (st, running) = s.get(&format!("/api/v1/executions/{id}")).await;
    assert_eq!(
        (st, &running["status"]),
        (200, &json!("running")),
        "{running}"
    );
    s.kill();
    // Its init dies with the server, and with it everything in the sandbox.
    assert_no_process("crash-hold").await;
    let instance = std::fs::read_to_string(s.data_dir.path().join("instance-id")).unwrap();
    let sandbox_cgroups = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .flat_map(|h| {
                std::fs::read_dir(h.path().join(format!("skybridge-{}", instance.trim())))
                    .into_iter()
                    .flatten()
            })
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.path())
            .collect()
    };
    let crashed = sandbox_cgroups();
    assert!(!crashed.is_empty(), "the crash left the sandbox's cgroups");
    s.restart();
    // The new process has cgroups of its own (its spare sandboxes).
    let leftovers: Vec<_> = sandbox_cgroups()
        .into_iter()
        .filter(|p| crashed.contains(p))
        .collect();
    assert!(
        leftovers.is_empty(),
        "the restart removed the old sandbox cgroups: {leftovers:?}"
    );
    let e = s.wait_final(&id, Duration::from_secs(10)).await;
    assert_eq!(e["reason"], "interrupted", "{e}");
}
