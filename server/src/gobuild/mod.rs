//! The Go build pipeline: Go functions straight from a git repository.
//!
//! `prepare` fetches the repository into its mirror and resolves the ref to a
//! commit, which fixes the artifact's cache key: (commit, package, entry, target,
//! Go version, shim version). `compile` exports that commit into a private build
//! directory, checks the entry with Go's own parser (`skyinspect`), writes the
//! generated shim beside the package and runs `go build` for the target under a
//! timeout. Nothing is ever written into a shared checkout.

pub mod inspect;
pub mod repo;
pub mod shim;
pub mod toolchain;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::process::Command;
use tokio::sync::{Mutex, Semaphore};
use utoipa::ToSchema;

use crate::backend::BackendError;
use crate::config::GoConfig;
use crate::model::{BackendKind, GoSource};
use inspect::Inspector;
use repo::{RepoCache, RepoUrl};
use toolchain::GoToolchain;

/// What a Go build produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoTarget {
    /// `GOOS=wasip1 GOARCH=wasm`, for the wasm backend.
    Wasm,
    /// A static (`CGO_ENABLED=0`) binary for this machine, for jail and docker.
    Native,
}

impl GoTarget {
    /// `GOOS`.
    pub fn goos(self) -> &'static str {
        match self {
            GoTarget::Wasm => "wasip1",
            GoTarget::Native => "linux",
        }
    }
    /// `GOARCH`.
    pub fn goarch(self) -> &'static str {
        match self {
            GoTarget::Wasm => "wasm",
            GoTarget::Native => match std::env::consts::ARCH {
                "aarch64" => "arm64",
                "x86" => "386",
                _ => "amd64",
            },
        }
    }
}

/// How a Go function is entered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// The reflect shim around a function: serves every argument list.
    Handler(String),
    /// `fmt.Print(<call>)` compiled literally (arguments that are not literals).
    Call(String),
}

impl Entry {
    /// The entry of a Go source: a `call` of literals is its function's handler,
    /// so `Encode(1, 2)` and `Encode(3, 4)` share one build.
    pub fn of(src: &GoSource) -> Entry {
        match (&src.handler, &src.call) {
            (Some(h), _) => Entry::Handler(h.clone()),
            (None, Some(call)) => match shim::parse_literal_call(call) {
                Some(lit) => Entry::Handler(lit.function),
                None => Entry::Call(call.clone()),
            },
            (None, None) => Entry::Handler(String::new()),
        }
    }

    fn key(&self) -> String {
        match self {
            Entry::Handler(f) => format!("handler:{f}"),
            Entry::Call(c) => format!("call:{c}"),
        }
    }
}

/// A source pinned to a commit, ready to compile.
#[derive(Debug, Clone)]
pub struct Prepared {
    url: RepoUrl,
    /// The resolved commit id.
    pub commit: String,
    package: String,
    entry: Entry,
    target: GoTarget,
    /// Digest of everything the build consumes: the artifact cache key's input.
    pub input_digest: String,
    /// What fetching said.
    pub log: String,
}

/// `/api/v1/health` view of the toolchain.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GoHealth {
    /// Whether Go functions can be built.
    pub available: bool,
    /// `go1.27.3`-style version.
    pub version: Option<String>,
    /// The `go` binary used.
    pub path: Option<String>,
    /// Why not, and how to fix it.
    pub reason: Option<String>,
    /// Whether the helper tools (skyinspect) are built; the first deploy after a
    /// start waits for them otherwise.
    pub tools_ready: bool,
}

/// Kills a child's whole process group (it was started with `process_group(0)`)
/// when dropped: on timeout, on error, and when the build's future is dropped.
pub(crate) struct GroupKill(pub(crate) Option<u32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: kill(2) with a negative pid signals that process group only.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        }
    }
}

/// Deletes a build directory on every path out of a build.
struct BuildDir(PathBuf);

impl Drop for BuildDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const MAX_LOG: usize = 64 * 1024;

/// Checks the parts of a Go source that need no toolchain, against the
/// published contract; the error names the field.
pub fn check_source(src: &GoSource) -> Result<(), (&'static str, String)> {
    use crate::contract::{self, fits};
    repo::parse_repo(&src.repo).map_err(|m| ("source.repo", m))?;
    if let Some(r) = &src.git_ref {
        if !fits(&contract::GIT_REF, contract::MAX_REF_CHARS, r) {
            return Err((
                "source.ref",
                format!(
                    "must be a branch, tag or commit: no whitespace, no leading `-`, no `..`, at most {} characters",
                    contract::MAX_REF_CHARS
                ),
            ));
        }
    }
    if let Some(p) = &src.package {
        if !fits(&contract::GO_PACKAGE, contract::MAX_PACKAGE_CHARS, p) {
            return Err((
                "source.package",
                "must be a relative path inside the repository, like `pkg/geo`".into(),
            ));
        }
    }
    match (&src.handler, &src.call) {
        (Some(h), None) if fits(&contract::GO_HANDLER, contract::MAX_HANDLER_CHARS, h) => Ok(()),
        (Some(_), None) => Err((
            "source.handler",
            "must be an exported Go function name, like `Encode`".into(),
        )),
        (None, Some(c)) if fits(&contract::GO_CALL, contract::MAX_CALL_CHARS, c) => Ok(()),
        (None, Some(_)) => Err((
            "source.call",
            format!(
                "must be one Go call of an exported function on one line, like `Encode(100.1, 80.9)`, at most {} characters",
                contract::MAX_CALL_CHARS
            ),
        )),
        _ => Err((
            "source",
            "exactly one of `handler` and `call` is required".into(),
        )),
    }
}

/// Builds Go functions.
pub struct GoBuilder {
    toolchain: Result<GoToolchain, String>,
    cfg: GoConfig,
    repos: RepoCache,
    inspector: Mutex<Option<Arc<Inspector>>>,
    gocache: PathBuf,
    gopath: PathBuf,
    tools: PathBuf,
    tmp: PathBuf,
    slots: Semaphore,
}

impl GoBuilder {
    /// Finds the toolchain (its absence is reported, not fatal) and lays out
    /// `<data>/go` and `<data>/repos`.
    pub fn new(cfg: &GoConfig, data_dir: &Path, env_go: Option<String>) -> std::io::Result<Self> {
        let toolchain = toolchain::discover(&cfg.binary, env_go);
        match &toolchain {
            Ok(tc) => {
                tracing::info!(go = %tc.path.display(), version = %tc.version, "Go toolchain found")
            }
            Err(e) => tracing::warn!("Go functions unavailable: {e}"),
        }
        let go_dir = data_dir.join("go");
        let gocache = if cfg.cache_dir.as_os_str().is_empty() {
            go_dir.join("cache")
        } else {
            cfg.cache_dir.clone()
        };
        let (gopath, tools, tmp) = (
            go_dir.join("path"),
            go_dir.join("tools"),
            data_dir.join("tmp"),
        );
        for d in [&gocache, &gopath, &tools, &tmp] {
            std::fs::create_dir_all(d)?;
        }
        // Build directories a previous run did not finish.
        for (dir, prefix) in [(&tmp, "gobuild-"), (&tools, "build-")] {
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                if path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
                {
                    let _ = std::fs::remove_dir_all(&path);
                }
            }
        }
        Ok(Self {
            toolchain,
            repos: RepoCache::new(
                data_dir.join("repos"),
                Duration::from_millis(cfg.fetch_timeout_ms),
            )?,
            cfg: cfg.clone(),
            inspector: Mutex::new(None),
            gocache,
            gopath,
            tools,
            tmp,
            slots: Semaphore::new(cfg.max_concurrent_builds.max(1)),
        })
    }

    /// Builds `skyinspect` in the background now, so the first deploy does not wait
    /// for it (a no-op without a toolchain).
    pub fn warm_up(self: &Arc<Self>) {
        if self.toolchain.is_ok() {
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.inspector(BackendKind::Wasm).await {
                    tracing::warn!(error = %e, "building skyinspect failed; deploys will retry");
                }
            });
        }
    }

    /// Whether a toolchain was found.
    pub fn available(&self) -> bool {
        self.toolchain.is_ok()
    }

    /// The toolchain's version, or why there is none.
    pub fn health(&self) -> GoHealth {
        let tools_ready = self.inspector.try_lock().is_ok_and(|i| i.is_some());
        match &self.toolchain {
            Ok(tc) => GoHealth {
                available: true,
                version: Some(tc.version.clone()),
                path: Some(tc.path.display().to_string()),
                reason: None,
                tools_ready,
            },
            Err(e) => GoHealth {
                available: false,
                version: None,
                path: None,
                reason: Some(e.clone()),
                tools_ready,
            },
        }
    }

    fn toolchain(&self, backend: BackendKind) -> Result<&GoToolchain, BackendError> {
        self.toolchain
            .as_ref()
            .map_err(|reason| BackendError::Unavailable {
                backend,
                reason: format!("Go functions need a toolchain: {reason}"),
            })
    }

    async fn inspector(&self, backend: BackendKind) -> Result<Arc<Inspector>, BackendError> {
        let tc = self.toolchain(backend)?;
        let mut slot = self.inspector.lock().await;
        if let Some(i) = slot.as_ref() {
            return Ok(i.clone());
        }
        let built = Inspector::ensure(tc, &self.tools, &self.gocache)
            .await
            .map_err(|e| BackendError::Unavailable {
                backend,
                reason: format!(
                    "Go functions need the skyinspect helper, which did not build: {e}"
                ),
            })?;
        let built = Arc::new(built);
        *slot = Some(built.clone());
        Ok(built)
    }

    /// Checks a non-literal call string with Go's parser: exactly one call of an
    /// exported name (so it cannot break out of the generated `fmt.Print(…)`).
    pub async fn check_call(
        &self,
        call: &str,
        backend: BackendKind,
    ) -> Result<Result<String, String>, BackendError> {
        Ok(self.inspector(backend).await?.check_call(call).await)
    }

    /// Fetches the repository (always when `refresh`, else only the first time)
    /// and pins the source to a commit.
    pub async fn prepare(
        &self,
        src: &GoSource,
        target: GoTarget,
        backend: BackendKind,
        refresh: bool,
    ) -> Result<Prepared, BackendError> {
        let tc = self.toolchain(backend)?;
        check_source(src)
            .map_err(|(field, m)| build_error(format!("{field}: {m}"), String::new()))?;
        let url = repo::parse_repo(&src.repo).map_err(|m| build_error(m, String::new()))?;
        let (commit, log) = self
            .repos
            .resolve(&url, src.git_ref.as_deref(), refresh)
            .await
            .map_err(|e| match e {
                repo::RepoError::Io(io) => BackendError::Io(io),
                other => build_error(format!("fetching {}: {other}", src.repo), String::new()),
            })?;
        let package = src.package.clone().unwrap_or_default();
        let entry = Entry::of(src);
        let input_digest = crate::artifacts::digest(
            format!(
                "go-shim-v{}\n{commit}\n{package}\n{}\n{}/{}\n{}\nGOFLAGS={}\nGOPROXY={}",
                shim::SHIM_VERSION,
                entry.key(),
                target.goos(),
                target.goarch(),
                tc.version,
                self.cfg.flags,
                self.cfg.proxy,
            )
            .as_bytes(),
        );
        let log = format!(
            "{log}resolved {} to {commit}\n",
            src.git_ref.as_deref().unwrap_or("HEAD")
        );
        Ok(Prepared {
            url,
            commit,
            package,
            entry,
            target,
            input_digest,
            log,
        })
    }

    /// Builds a prepared source; returns the binary (a wasm module for
    /// [`GoTarget::Wasm`]) and the build log.
    pub async fn compile(
        &self,
        p: &Prepared,
        backend: BackendKind,
    ) -> Result<(Vec<u8>, String), BackendError> {
        let tc = self.toolchain(backend)?.clone();
        let inspector = self.inspector(backend).await?;
        let _slot = self.slots.acquire().await.expect("semaphore never closed");
        let dir = BuildDir(self.tmp.join(format!("gobuild-{}", uuid::Uuid::now_v7())));
        let src = dir.0.join("src");
        std::fs::create_dir_all(&src)?;
        self.repos
            .export(&p.url, &p.commit, &src)
            .await
            .map_err(|e| match e {
                repo::RepoError::Io(io) => BackendError::Io(io),
                other => build_error(format!("exporting {}: {other}", p.commit), String::new()),
            })?;
        let mut log = String::new();
        let go_mod = src.join("go.mod");
        let module = if go_mod.exists() {
            let text = std::fs::read_to_string(&go_mod)?;
            if let Some(line) = local_replace(&text) {
                return Err(build_error(
                    format!("go.mod replaces a module with a path outside the repository (`{line}`); not built"),
                    log,
                ));
            }
            module_path(&text)
                .ok_or_else(|| build_error("go.mod has no `module` line".into(), log.clone()))?
        } else {
            // GOPATH-style repository (as Sky Island builds them): synthesize a module.
            write_new(
                &go_mod,
                format!("module {}\n\ngo 1.21\n", p.url.module_path).as_bytes(),
            )?;
            log.push_str(&format!(
                "no go.mod: building as module {}\n",
                p.url.module_path
            ));
            p.url.module_path.clone()
        };
        let pkg_dir = src.join(&p.package);
        if !pkg_dir.is_dir() {
            return Err(build_error(
                format!(
                    "package `{}` does not exist at commit {}",
                    p.package, p.commit
                ),
                log,
            ));
        }
        let import = if p.package.is_empty() {
            module
        } else {
            format!("{module}/{}", p.package)
        };
        // The wasm target builds a reactor for the deploy-time snapshot when
        // the toolchain has //go:wasmexport (Go 1.24+); otherwise a command.
        let mode = if p.target == GoTarget::Wasm && tc.minor >= 24 {
            shim::ShimMode::Reactor
        } else {
            shim::ShimMode::Command
        };
        let code = match &p.entry {
            Entry::Handler(f) => {
                // Go's messages name files by their path in the private build
                // dir; the user knows them relative to the repository.
                let sig = inspector
                    .signature(&pkg_dir, f, p.target.goos(), p.target.goarch())
                    .await
                    .map_err(|m| {
                        build_error(m.replace(&format!("{}/", src.display()), ""), log.clone())
                    })?;
                log.push_str(&format!(
                    "handler {}.{f}({}{}) ({})\n",
                    sig.package,
                    sig.params.join(", "),
                    if sig.variadic { " variadic" } else { "" },
                    sig.results.join(", ")
                ));
                shim::handler_shim(&import, f, mode)
            }
            Entry::Call(call) => {
                inspector
                    .check_call(call)
                    .await
                    .map_err(|m| build_error(format!("call `{call}`: {m}"), log.clone()))?;
                shim::call_shim(&import, call, mode)
            }
        };
        let shim_dir = src.join("skybridgeshim");
        if std::fs::create_dir(&shim_dir).is_err() {
            return Err(build_error(
                "the repository has a `skybridgeshim` entry at its root; that name is reserved for the generated shim".into(),
                log,
            ));
        }
        write_new(&shim_dir.join("main.go"), code.as_bytes())?;

        let out_file = dir.0.join("out");
        let mut cmd = Command::new(&tc.path);
        cmd.args(["build", "-trimpath", "-buildvcs=false"]);
        if mode == shim::ShimMode::Reactor {
            cmd.args(["-buildmode=c-shared", "-ldflags", shim::REACTOR_LDFLAGS]);
        }
        cmd.arg("-o")
            .arg(&out_file)
            .arg("./skybridgeshim")
            .current_dir(&src)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &dir.0)
            .env("TMPDIR", &dir.0)
            .env("GOOS", p.target.goos())
            .env("GOARCH", p.target.goarch())
            .env("CGO_ENABLED", "0")
            .env("GOTOOLCHAIN", "local")
            .env("GO111MODULE", "on")
            .env("GOWORK", "off")
            .env("GOPROXY", &self.cfg.proxy)
            .env("GOFLAGS", &self.cfg.flags)
            .env("GOCACHE", &self.gocache)
            .env("GOPATH", &self.gopath)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if self.cfg.proxy == "off" {
            cmd.env("GOSUMDB", "off");
        }
        log.push_str(&format!(
            "go build ({} GOOS={} GOARCH={}{}) {import} at {}\n",
            tc.version,
            p.target.goos(),
            p.target.goarch(),
            match mode {
                shim::ShimMode::Reactor => ", a WASI reactor for the snapshot",
                shim::ShimMode::Command if p.target == GoTarget::Wasm => {
                    ", a WASI command: the snapshot needs go1.24+"
                }
                shim::ShimMode::Command => "",
            },
            p.commit
        ));
        let started = Instant::now();
        let child = cmd.spawn()?;
        // The whole group (go's compile and link children too) dies on every path.
        let _group = GroupKill(child.id());
        let limit = Duration::from_millis(self.cfg.build_timeout_ms);
        let output = match tokio::time::timeout(limit, child.wait_with_output()).await {
            Ok(out) => out?,
            Err(_) => {
                return Err(build_error(
                    format!(
                        "go build timed out after {} ms (go.build_timeout_ms)",
                        self.cfg.build_timeout_ms
                    ),
                    log,
                ));
            }
        };
        let mut said = String::from_utf8_lossy(&output.stderr).into_owned();
        said.push_str(&String::from_utf8_lossy(&output.stdout));
        let said = cap(said.replace(&src.display().to_string(), "."));
        log.push_str(&said);
        if !output.status.success() {
            let first = said
                .lines()
                .filter(|l| !l.starts_with('#'))
                .take(5)
                .collect::<Vec<_>>()
                .join("\n");
            return Err(build_error(format!("go build failed:\n{first}"), log));
        }
        let bytes = std::fs::read(&out_file)?;
        log.push_str(&format!(
            "built {} bytes in {} ms\n",
            bytes.len(),
            started.elapsed().as_millis()
        ));
        Ok((bytes, log))
    }
}

fn build_error(message: String, log: String) -> BackendError {
    let log = if log.is_empty() {
        format!("{message}\n")
    } else {
        format!("{log}{message}\n")
    };
    BackendError::Build { message, log }
}

fn cap(mut s: String) -> String {
    if s.len() > MAX_LOG {
        let cut = (0..=MAX_LOG)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        s.truncate(cut);
        s.push_str("\n[build output truncated]\n");
    }
    s
}

/// The module path of a go.mod's `module` line (quotes and comments removed).
fn module_path(go_mod: &str) -> Option<String> {
    go_mod.lines().find_map(|l| {
        let l = l.split("//").next().unwrap_or("").trim();
        let rest = l.strip_prefix("module")?;
        let m = rest.trim().trim_matches('"');
        (!m.is_empty() && rest.starts_with([' ', '\t'])).then(|| m.to_string())
    })
}

/// A `replace` directive pointing at a local path outside the repository.
fn local_replace(go_mod: &str) -> Option<String> {
    go_mod.lines().find_map(|l| {
        let l = l.split("//").next().unwrap_or("").trim();
        let (_, target) = l.split_once("=>")?;
        let t = target.trim();
        (t.starts_with('/') || t.starts_with("..") || t.starts_with('~')).then(|| l.to_string())
    })
}

/// Writes a file that must not exist yet (never through a planted file or link).
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?
        .write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(handler: Option<&str>, call: Option<&str>) -> GoSource {
        GoSource {
            repo: "github.com/mmcloughlin/geohash".into(),
            git_ref: None,
            package: None,
            handler: handler.map(Into::into),
            call: call.map(Into::into),
        }
    }

    #[test]
    fn literal_calls_share_the_handler_entry() {
        let a = Entry::of(&src(None, Some("Encode(1, 2)")));
        let b = Entry::of(&src(None, Some("Encode(3.5, -4)")));
        let h = Entry::of(&src(Some("Encode"), None));
        assert_eq!(a, b);
        assert_eq!(a, h);
        assert_eq!(
            Entry::of(&src(None, Some("Encode(Precision)"))),
            Entry::Call("Encode(Precision)".into())
        );
    }

    #[test]
    fn source_checks_name_the_field() {
        assert!(check_source(&src(Some("Encode"), None)).is_ok());
        assert_eq!(check_source(&src(None, None)).unwrap_err().0, "source");
        assert_eq!(
            check_source(&src(Some("E"), Some("E()"))).unwrap_err().0,
            "source"
        );
        assert_eq!(
            check_source(&src(Some("encode"), None)).unwrap_err().0,
            "source.handler"
        );
        assert_eq!(
            check_source(&src(None, Some("E(1)\nE(2)"))).unwrap_err().0,
            "source.call"
        );
        let mut s = src(Some("E"), None);
        s.package = Some("../etc".into());
        assert_eq!(check_source(&s).unwrap_err().0, "source.package");
        s.package = Some("pkg/geo".into());
        assert!(check_source(&s).is_ok());
        s.repo = "ssh://x/y".into();
        assert_eq!(check_source(&s).unwrap_err().0, "source.repo");
    }

    #[test]
    fn module_lines() {
        assert_eq!(
            module_path("// c\nmodule example.com/geo // the geo lib\n\ngo 1.22\n").as_deref(),
            Some("example.com/geo")
        );
        assert_eq!(
            module_path("module \"example.com/q\"\n").as_deref(),
            Some("example.com/q")
        );
        assert_eq!(module_path("modulex foo\n"), None);
        assert_eq!(module_path("// module x\n"), None);
    }

    #[test]
    fn local_replaces_outside_the_repo_are_found() {
        assert!(local_replace("replace x => /etc\n").is_some());
        assert!(local_replace("replace (\n\tx v1 => ../../secret\n)\n").is_some());
        assert!(local_replace("replace x => ./internal/x\n").is_none());
        assert!(local_replace("replace x => example.com/y v1.0.0\n").is_none());
    }
}
