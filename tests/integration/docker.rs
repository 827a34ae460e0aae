//! The docker backend against the real Docker Engine (`scripts/test.sh` installs
//! Debian's docker.io and starts dockerd). Nothing here is mocked: if the
//! engine is not there, these tests fail.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;
use crate::gofunctions::GitRepo;

/// A test image holding only Debian's static busybox (every applet linked),
/// imported once per test run: no registry is reachable here.
pub fn busybox_image() -> &'static str {
    static IMAGE: OnceLock<&'static str> = OnceLock::new();
    IMAGE.get_or_init(|| {
        const TAG: &str = "skybridge-test/busybox:2";
        if docker(&["image", "inspect", TAG]).is_ok() {
            return TAG;
        }
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.exists(),
            "/bin/busybox is missing: install busybox-static (scripts/test.sh does)"
        );
        let root = tempfile::tempdir().unwrap();
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        // /tmp's mode carries over to the tmpfs mounted there.
        let tmp = root.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o1777))
            .unwrap();
        std::fs::copy(busybox, bin.join("busybox")).unwrap();
        let list = Command::new(busybox).arg("--list").output().unwrap();
        for applet in String::from_utf8(list.stdout).unwrap().lines() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
            }
        }
        let status = Command::new("bash")
            .arg("-c")
            .arg(r#"set -o pipefail; tar -C "$1" -c . | docker import -c "ENV PATH=/bin" - "$2""#)
            .args(["bash", root.path().to_str().unwrap(), TAG])
            .stdout(Stdio::null())
            .status()
            .expect("running tar | docker import");
        assert!(status.success(), "importing the busybox rootfs failed");
        TAG
    })
}

/// Runs the docker CLI; its stdout, or stderr as the error.
fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI (docker.io) is installed");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Ids of containers (running or not) carrying `label=value`.
fn containers(label: &str, value: &str) -> Vec<String> {
    labelled_containers(label, value).expect("docker ps")
}

/// Waits until no container carries `label=value` (removal runs in the background).
async fn assert_gone(label: &str, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = containers(label, value);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "containers with {label}={value} were not removed: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `n` warm containers of `function` are ready in its pool.
pub async fn wait_warm(s: &TestServer, function: &str, n: usize) {
    let series = format!(r#"skybridge_warm_pool_ready{{function="{function}"}}"#);
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.metric(&series).await < n as f64 {
        assert!(
            Instant::now() < deadline,
            "{function}: {n} warm sandboxes not ready in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// This server's instance id, as health reports it.
async fn instance(s: &TestServer) -> String {
    let (_, h) = s.get("/api/v1/health").await;
    let docker = h["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backend"] == "docker")
        .unwrap()
        .clone();
    docker["details"]["instance"].as_str().unwrap().to_string()
}

fn image_fn(name: &str, script: &str, extra: Value) -> Value {
    let mut spec = json!({
        "name": name,
        "backend": "docker",
        "source": {"type": "image", "image": busybox_image(), "command": ["sh", "-c", script]},
    });
    for (k, v) in extra.as_object().unwrap() {
        if k == "source" {
            for (sk, sv) in v.as_object().unwrap() {
                spec["source"][sk] = sv.clone();
            }
        } else {
            spec[k] = v.clone();
        }
    }
    spec
}

pub async fn create_and_deploy(s: &TestServer, spec: Value) -> Value {
    let (st, body) = s.post("/api/v1/functions", &spec).await;
    assert_eq!(st, 201, "create: {body}");
    let name = spec["name"].as_str().unwrap();
    let (st, body) = s
        .post(&format!("/api/v1/functions/{name}/deploy"), &json!(null))
        .await;
    assert_eq!(st, 201, "deploy {name}: {body}");
    body
}

fn lines(e: &Value) -> Vec<String> {
    e["output"]
        .as_str()
        .unwrap_or_else(|| panic!("text output expected: {e}"))
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn image_function_gets_input_env_limits_and_a_locked_down_container() {
    let s = TestServer::start(&[]).await;
    let script = r#"
        echo "stdin=$(cat)"
        echo "env=$SKYBRIDGE_INPUT"
        echo "greeting=$GREETING"
        echo "uid=$(id -u)"
        grep CapEff /proc/self/status | tr -d '\t'
        grep NoNewPrivs /proc/self/status | tr -d '\t'
        echo "ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ,)"
        touch /rootfs-write 2>/dev/null && echo "rootfs=writable" || echo "rootfs=read-only"
        echo x > /tmp/t && echo "tmp=writable"
        echo "memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
        echo "swap=$(cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || echo n/a)"
        echo "pids=$(cat /sys/fs/cgroup/pids/pids.max)"
        echo "cpu=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)/$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"
        echo "a log line" >&2
    "#;
    create_and_deploy(
        &s,
        image_fn(
            "probe",
            script,
            json!({"env": {"GREETING": "hi"}, "limits": {"memory_mb": 48, "cpus": 0.5}, "warm_pool_size": 0}),
        ),
    )
    .await;
    let e = s.invoke("probe", json!({"n": 1})).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(e["exit_code"], 0);
    assert_eq!(e["stderr"], "a log line\n");
    let out = lines(&e);
    let expect = [
        r#"stdin={"n":1}"#,
        r#"env={"n":1}"#,
        "greeting=hi",
        "uid=65534",
        "CapEff:0000000000000000",
        "NoNewPrivs:1",
        "ifaces=lo,",
        "rootfs=read-only",
        "tmp=writable",
        &format!("memory={}", 48 << 20),
        "pids=128",
        "cpu=50000/100000",
    ];
    for line in expect {
        assert!(
            out.iter().any(|l| l == line),
            "missing `{line}` in {out:#?}"
        );
    }
    let swap = out.iter().find(|l| l.starts_with("swap=")).unwrap();
    assert!(
        swap == &format!("swap={}", 48 << 20) || swap == "swap=n/a",
        "no swap beyond the memory limit: {swap}"
    );
    assert_gone("skybridge.execution", e["id"].as_str().unwrap()).await;

    // Asked for, the function gets a network.
    create_and_deploy(
        &s,
        image_fn(
            "networked",
            "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ,",
            json!({"network": true, "warm_pool_size": 0}),
        ),
    )
    .await;
    let e = s.invoke("networked", json!(null)).await;
    assert_eq!(e["output"], "eth0,lo,", "{e}");
}

#[tokio::test]
async fn failures_out_of_memory_and_timeouts_are_reported_and_cleaned_up() {
    let s = TestServer::start(&[]).await;
    create_and_deploy(
        &s,
        image_fn(
            "fails",
            "echo partial; echo 'bad thing happened' >&2; exit 3",
            json!({"warm_pool_size": 0}),
        ),
    )
    .await;
    let e = s.invoke("fails", json!(null)).await;
    assert_eq!(e["status"], "failed", "{e}");
    assert_eq!(e["exit_code"], 3);
    assert_eq!(e["reason"], "nonzero_exit");
    assert_eq!(e["output"], "partial\n");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("bad thing happened"),
        "{e}"
    );
    assert_gone("skybridge.execution", e["id"].as_str().unwrap()).await;

    // dd's 64 MiB buffer cannot fit in 16 MiB: the kernel kills it. (The
    // pause: containerd watches for OOM kills only once the task is up, and
    // on a busy engine misses one in the first milliseconds.)
    create_and_deploy(
        &s,
        image_fn(
            "hog",
            "sleep 1; dd if=/dev/zero of=/dev/null bs=64M count=1",
            json!({"limits": {"memory_mb": 16}, "warm_pool_size": 0}),
        ),
    )
    .await;
    let e = s.invoke("hog", json!(null)).await;
    assert_eq!(e["status"], "failed", "{e}");
    assert_eq!(e["reason"], "memory_limit", "{e}");
    assert_eq!(e["exit_code"], 137);
    assert!(e["message"].as_str().unwrap().contains("16 MiB"), "{e}");
    assert_gone("skybridge.execution", e["id"].as_str().unwrap()).await;

    create_and_deploy(
        &s,
        image_fn(
            "sleepy",
            "echo started; sleep 30",
            json!({"limits": {"timeout_ms": 1500}, "warm_pool_size": 0}),
        ),
    )
    .await;
    let started = Instant::now();
    let rec = s.invoke("sleepy", json!(null)).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(rec["status"], "timed_out", "{rec}");
    assert_eq!(rec["reason"], "timeout");
    assert_eq!(rec["output"], "started\n", "output before the kill is kept");
    assert_gone("skybridge.execution", rec["id"].as_str().unwrap()).await;
}

#[tokio::test]
async fn deploy_errors_are_clear() {
    let s = TestServer::start(&[]).await;
    // Not on the engine and no registry reachable: the engine's pull error.
    let (st, _) = s
        .post(
            "/api/v1/functions",
            &json!({"name": "ghost", "backend": "docker",
                    "source": {"type": "image", "image": "skybridge-test/does-not-exist:1"}}),
        )
        .await;
    assert_eq!(st, 201);
    let (st, body) = s.post("/api/v1/functions/ghost/deploy", &json!(null)).await;
    assert_eq!(st, 422, "{body}");
    assert_eq!(error_code(&body), "deployment_failed");
    let m = body["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("pulling skybridge-test/does-not-exist:1 failed"),
        "{m}"
    );

    // The imported image has no CMD: a command is needed.
    let (st, _) = s
        .post(
            "/api/v1/functions",
            &json!({"name": "nocmd", "backend": "docker",
                    "source": {"type": "image", "image": busybox_image()}}),
        )
        .await;
    assert_eq!(st, 201);
    let (st, body) = s.post("/api/v1/functions/nocmd/deploy", &json!(null)).await;
    assert_eq!(st, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("set source.command"),
        "{body}"
    );

    // cache_bust pulls again; with no registry reachable the local image stays.
    create_and_deploy(&s, image_fn("local", "cat", json!({"warm_pool_size": 0}))).await;
    let (st, d) = s
        .post(
            "/api/v1/functions/local/deploy?cache_bust=true",
            &json!(null),
        )
        .await;
    assert_eq!(st, 201, "{d}");
    let log = d["build_log"].as_str().unwrap();
    assert!(
        log.contains("failed") && log.contains("keeping the local image"),
        "{log}"
    );
    let e = s.invoke("local", json!("still here")).await;
    assert_eq!(e["output"], "still here");

    // What a backend cannot do: `unsupported_by_backend`, naming the field and
    // the backend to use instead.
    for (spec, field, instead) in [
        (
            json!({"name": "w", "backend": "docker", "source": {"type": "wasm", "module": b64(hello_module())}}),
            "source.type",
            "wasm",
        ),
        (
            json!({"name": "w", "backend": "wasm", "source": {"type": "image", "image": "busybox"}}),
            "source.type",
            "docker",
        ),
        (
            json!({"name": "w", "backend": "wasm", "network": true, "source": {"type": "wasm", "module": b64(hello_module())}}),
            "network",
            "docker",
        ),
        (
            json!({"name": "w", "backend": "wasm", "warm_pool_size": 2, "source": {"type": "wasm", "module": b64(hello_module())}}),
            "warm_pool_size",
            "docker",
        ),
        (
            json!({"name": "w", "backend": "docker", "limits": {"memory_mb": 4}, "source": {"type": "image", "image": "busybox"}}),
            "limits.memory_mb",
            "6",
        ),
    ] {
        let (st, body) = s.post("/api/v1/functions", &spec).await;
        assert_eq!(
            (st, error_code(&body), body["error"]["field"].as_str()),
            (422, "unsupported_by_backend", Some(field)),
            "{spec}: {body}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().contains(instead),
            "{body}"
        );
    }
    for (spec, field) in [
        (
            json!({"name": "w", "backend": "docker", "source": {"type": "image", "image": "busybox", "command": []}}),
            "source.command",
        ),
        (
            json!({"name": "w", "backend": "docker", "source": {"type": "image", "image": "-rf /"}}),
            "source.image",
        ),
        (
            json!({"name": "w", "backend": "docker", "warm_pool_size": 1000, "source": {"type": "image", "image": "busybox"}}),
            "warm_pool_size",
        ),
        (
            json!({"name": "w", "backend": "docker", "limits": {"cpus": 0}, "source": {"type": "image", "image": "busybox"}}),
            "limits.cpus",
        ),
    ] {
        let (st, body) = s.post("/api/v1/functions", &spec).await;
        assert_eq!(st, 422, "{spec}: {body}");
        assert_eq!(error_code(&body), "validation_failed", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{field}: {body}"
        );
    }
}

#[tokio::test]
async fn go_source_runs_from_a_scratch_image_with_a_warm_pool() {
    let repo = GitRepo::from_fixture("gofuncs");
    let s = TestServer::start(&[]).await;
    let d = create_and_deploy(
        &s,
        json!({"name": "add", "backend": "docker", "warm_pool_size": 2,
               "source": {"type": "go", "repo": repo.url(), "handler": "Add"}}),
    )
    .await;
    let log = d["build_log"].as_str().unwrap();
    assert!(log.contains("FROM scratch"), "{log}");
    let digest = d["artifact_digest"].as_str().unwrap();
    let tag = format!(
        "skybridge-{}/fn:{}",
        instance(&s).await,
        digest.strip_prefix("sha256:").unwrap()
    );
    let user = docker(&["image", "inspect", "-f", "{{.Config.User}}", &tag]).unwrap();
    assert_eq!(user.trim(), "65534:65534", "the image runs as nobody");

    wait_warm(&s, "add", 2).await;
    let hits = r#"skybridge_warm_pool_total{function="add",result="hit"}"#;
    let misses = r#"skybridge_warm_pool_total{function="add",result="miss"}"#;
    let e = s.invoke("add", json!([2, 3])).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(e["output"], 5);
    assert_eq!(s.metric(hits).await, 1.0);
    // The container served one invocation and is gone; the pool refills.
    wait_warm(&s, "add", 2).await;
    let e = s.invoke("add", json!([40, 2])).await;
    assert_eq!(e["output"], 42);
    assert_eq!(s.metric(hits).await, 2.0);
    assert_eq!(s.metric(misses).await, 0.0);

    // Errors from the handler are failures on the warm path too.
    let e = s.invoke("add", json!(["x", 1])).await;
    assert_eq!(e["status"], "failed", "{e}");
    assert_eq!(e["exit_code"], 3);

    // Five at once against a pool of two: the rest run cold, all succeed.
    wait_warm(&s, "add", 2).await;
    let (hits_before, misses_before) = (s.metric(hits).await, s.metric(misses).await);
    let runs = (0..5).map(|i| s.invoke("add", json!([i, 1])));
    for (i, e) in futures::future::join_all(runs).await.iter().enumerate() {
        assert_eq!(e["output"], i as i64 + 1, "{e}");
    }
    let (hit, missed) = (
        s.metric(hits).await - hits_before,
        s.metric(misses).await - misses_before,
    );
    assert_eq!(hit + missed, 5.0);
    assert!(hit >= 2.0 && missed >= 1.0, "hits {hit}, misses {missed}");

    // Deleting the function removes its warm containers and its image tag.
    let (st, _) = s.send(s.http.delete(s.url("/api/v1/functions/add"))).await;
    assert_eq!(st, 204);
    assert_gone("skybridge.instance", &instance(&s).await).await;
    assert!(docker(&["image", "inspect", &tag]).is_err(), "tag removed");
}

#[tokio::test]
async fn warm_containers_serve_one_invocation_each_and_expire_when_idle() {
    let s = TestServer::start(&[("SKYBRIDGE_DOCKER_POOL_IDLE_TTL_MS", "8000")]).await;
    create_and_deploy(
        &s,
        image_fn(
            "marker",
            "cat >/dev/null; ls /tmp/mark 2>/dev/null || echo clean; touch /tmp/mark; hostname",
            json!({"source": {"reads_stdin": true}, "warm_pool_size": 1}),
        ),
    )
    .await;
    let mut hosts = Vec::new();
    for _ in 0..3 {
        wait_warm(&s, "marker", 1).await;
        let e = s.invoke("marker", json!(null)).await;
        let out = lines(&e);
        assert_eq!(
            out[0], "clean",
            "nothing left by an earlier invocation: {e}"
        );
        hosts.push(out[1].clone());
    }
    hosts.dedup();
    assert_eq!(hosts.len(), 3, "a new container per invocation: {hosts:?}");
    assert_eq!(
        s.metric(r#"skybridge_warm_pool_total{function="marker",result="hit"}"#)
            .await,
        3.0
    );
    // Idle past the TTL, the pool empties itself.
    wait_warm(&s, "marker", 1).await;
    assert_gone("skybridge.instance", &instance(&s).await).await;
}

#[tokio::test]
async fn a_killed_server_leaves_nothing_behind_after_restart() {
    let mut s = TestServer::start(&[]).await;
    create_and_deploy(
        &s,
        image_fn(
            "stuck",
            "cat; sleep 60",
            json!({"limits": {"timeout_ms": 120000}, "source": {"reads_stdin": true}, "warm_pool_size": 1}),
        ),
    )
    .await;
    let instance = instance(&s).await;
    let (st, e) = s
        .post(
            "/api/v1/functions/stuck/invoke",
            &json!({"input": 1, "async": true}),
        )
        .await;
    assert_eq!(st, 202, "{e}");
    let id = e["id"].as_str().unwrap().to_string();
    // Running: its container (warm or cold) exists, plus the refilled pool.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, e) = s.get(&format!("/api/v1/executions/{id}")).await;
        if e["status"] == "running" && containers("skybridge.instance", &instance).len() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "never running: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.kill();
    assert!(
        !containers("skybridge.instance", &instance).is_empty(),
        "a crash leaves containers behind"
    );
    s.restart();
    // Start-up reaps them without any request touching docker.
    assert_gone("skybridge.instance", &instance).await;
    let e = s.wait_final(&id, Duration::from_secs(10)).await;
    assert_eq!(e["status"], "failed");
    assert_eq!(e["reason"], "interrupted");
}

/// A unix-socket proxy to the real engine that the test can take away, as if
/// the daemon died.
struct EngineProxy {
    path: std::path::PathBuf,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl EngineProxy {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut engine) =
                        tokio::net::UnixStream::connect("/var/run/docker.sock").await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
                    }
                });
            }
        });
        Self {
            path,
            task,
            _dir: dir,
        }
    }

    fn stop(&self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

#[tokio::test]
async fn without_an_engine_docker_answers_503_fast_and_wasm_keeps_working() {
    // No engine at all: the server starts, health says why, deploy is 503.
    let s = TestServer::start(&[("SKYBRIDGE_DOCKER_SOCKET", "/nonexistent/docker.sock")]).await;
    let (st, h) = s.get("/api/v1/health").await;
    assert_eq!(st, 200);
    let d = h["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backend"] == "docker")
        .unwrap()
        .clone();
    assert_eq!(d["available"], false, "{d}");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/docker.sock"),
        "{d}"
    );
    let (st, _) = s
        .post("/api/v1/functions", &image_fn("later", "cat", json!({})))
        .await;
    assert_eq!(st, 201, "functions can be defined while Docker is down");
    let (st, body) = s.post("/api/v1/functions/later/deploy", &json!(null)).await;
    assert_eq!(st, 503, "{body}");
    assert_eq!(error_code(&body), "backend_unavailable");
    s.deploy_wasm("hello", hello_module(), json!({}), json!({}))
        .await;
    let e = s.invoke("hello", json!({"name": "Ada"})).await;
    assert_eq!(e["status"], "succeeded");

    // The engine goes away after a deploy: invokes fail fast with 503.
    let proxy = EngineProxy::start();
    let s = TestServer::start(&[("SKYBRIDGE_DOCKER_SOCKET", proxy.path.to_str().unwrap())]).await;
    create_and_deploy(&s, image_fn("echo", "cat", json!({"warm_pool_size": 0}))).await;
    let e = s.invoke("echo", json!("up")).await;
    assert_eq!(e["output"], "up");
    proxy.stop();
    let started = Instant::now();
    let (st, body) = s
        .post("/api/v1/functions/echo/invoke", &json!({"input": "down"}))
        .await;
    assert_eq!(st, 503, "{body}");
    assert_eq!(error_code(&body), "backend_unavailable");
    assert!(started.elapsed() < Duration::from_secs(2), "fails fast");
    let (_, h) = s.get("/api/v1/health").await;
    assert!(
        h["backends"][1]["available"] == false,
        "health follows: {h}"
    );
}
