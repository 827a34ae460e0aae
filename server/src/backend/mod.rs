//! Execution backends behind one trait, and the registry that picks one per function.
//!
//! A backend turns a function's source into an artifact ([`Backend::build`]), loads
//! an artifact into something runnable ([`Backend::load`]), and runs it under the
//! one I/O contract every backend shares: input on stdin (and in `SKYBRIDGE_INPUT`),
//! result on stdout, logs on stderr, exit code 0 = success. Adding a backend means a
//! new module here and one line in [`Backends::new`], nothing else.

pub mod docker;
pub mod jail;
pub mod output;
pub mod pool;
pub mod wasm;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use utoipa::ToSchema;

use crate::model::{BackendKind, ExecutionStatus, Function, Limits, SourceInfo};
use crate::store::ArtifactRecord;

/// Backend failures. Failures of the *function* (non-zero exit, timeout) are not
/// errors: they are a [`RunOutcome`].
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend is part of the API but not built into this server.
    #[error("backend `{}` is not built into this server", .0.as_str())]
    NotBuilt(BackendKind),
    /// The backend cannot run anything now (daemon down, toolchain missing).
    #[error("backend `{}` is unavailable: {reason}", backend.as_str())]
    Unavailable {
        /// Which backend.
        backend: BackendKind,
        /// Why, with the fix where there is one.
        reason: String,
    },
    /// The source cannot become an artifact; `log` holds what the build said.
    #[error("{message}")]
    Build {
        /// One-line summary.
        message: String,
        /// Full build output.
        log: String,
    },
    /// A stored artifact does not load.
    #[error("artifact {path} does not load: {message}")]
    Artifact {
        /// Its path.
        path: String,
        /// Why.
        message: String,
    },
    /// An execution engine refused a request (the Docker Engine's own message).
    #[error("{0}")]
    Engine(String),
    /// The backend has no network address left to give (its IP pool is
    /// exhausted); the message names the pool.
    #[error("{0}")]
    AddressesExhausted(String),
    /// Local I/O failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Availability of one backend, as `/api/v1/health` reports it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackendHealth {
    /// Backend name.
    pub backend: BackendKind,
    /// Whether functions on it can be deployed and invoked now.
    pub available: bool,
    /// Why not, and how to fix it, when unavailable.
    pub reason: Option<String>,
    /// Versions and settings worth knowing (engine version, limits).
    pub details: BTreeMap<String, String>,
}

/// What a build produced, before the service indexes it.
#[derive(Debug, Clone)]
pub struct BuiltArtifact {
    /// Path relative to the data dir.
    pub rel_path: String,
    /// Artifact kind, e.g. `wasm-cwasm`.
    pub kind: String,
    /// File size.
    pub size_bytes: u64,
    /// What the build did.
    pub log: String,
}

/// One invocation's input and constraints.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Execution id, for labels and logs.
    pub execution_id: uuid::Uuid,
    /// Function name.
    pub function: String,
    /// Bytes for stdin: the JSON text of the invoke `input`.
    pub stdin: Vec<u8>,
    /// Environment: the function's variables plus `SKYBRIDGE_*`.
    pub env: Vec<(String, String)>,
    /// Memory and time limits.
    pub limits: Limits,
    /// Cap for each of stdout and stderr.
    pub max_output_bytes: usize,
    /// The kill switch (the admin API's), and where the backend reports its
    /// sandbox's name and address.
    pub control: crate::sandboxes::RunControl,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// `Succeeded`, `Failed` or `TimedOut`.
    pub status: ExecutionStatus,
    /// Exit code when the program exited.
    pub exit_code: Option<i32>,
    /// Captured stdout.
    pub stdout: Vec<u8>,
    /// Captured stderr.
    pub stderr: Vec<u8>,
    /// stdout hit the cap.
    pub stdout_truncated: bool,
    /// stderr hit the cap.
    pub stderr_truncated: bool,
    /// Stable reason code when not succeeded.
    pub reason: Option<&'static str>,
    /// Detail for the reason.
    pub message: Option<String>,
    /// Wall-clock run time.
    pub duration: Duration,
}

impl RunOutcome {
    /// An outcome for a run stopped at its time limit.
    pub fn timed_out(limit_ms: u64, duration: Duration, detail: &str) -> Self {
        Self {
            status: ExecutionStatus::TimedOut,
            exit_code: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            reason: Some("timeout"),
            message: Some(format!(
                "stopped after the {limit_ms} ms time limit{detail}"
            )),
            duration,
        }
    }
}

/// Variable holding the invocation's input (also on stdin).
pub const ENV_INPUT: &str = "SKYBRIDGE_INPUT";
/// Variable holding the execution id.
pub const ENV_EXECUTION_ID: &str = "SKYBRIDGE_EXECUTION_ID";
/// Variable holding the function name.
pub const ENV_FUNCTION: &str = "SKYBRIDGE_FUNCTION";

/// The environment every execution of `f` gets before its per-invocation
/// variables ([`ENV_INPUT`], [`ENV_EXECUTION_ID`]): the function's own
/// variables, its name, and for `print` the Go shim's `fmt.Print` output mode.
pub fn function_env(f: &Function, print: bool) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> =
        f.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    env.push((ENV_FUNCTION.into(), f.name.clone()));
    if print || prints(f) {
        env.push((crate::gobuild::shim::OUTPUT_ENV.into(), "print".into()));
    }
    env
}

/// Whether `f` always prints like `fmt.Print`: a `call` of literals runs its
/// handler binary in print mode.
pub fn prints(f: &Function) -> bool {
    matches!(
        &f.source,
        crate::model::SourceInfo::Go {
            call: Some(_),
            handler: None,
            ..
        }
    )
}

/// Whether a Go source's binary reads its input from stdin: handlers and
/// literal calls do; a call compiled as written does not.
pub fn go_reads_stdin(f: &Function) -> bool {
    match &f.source {
        SourceInfo::Go {
            handler: Some(_), ..
        } => true,
        SourceInfo::Go {
            call: Some(call), ..
        } => crate::gobuild::shim::parse_literal_call(call).is_some(),
        _ => false,
    }
}

/// "exited with code N", plus the last line the program wrote to stderr, which is
/// where runtimes put the reason (a Go panic, an error returned by a handler).
pub fn exit_message(code: i32, stderr: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(stderr);
    match text.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) if line.len() > MAX => {
            let cut = (0..=MAX)
                .rev()
                .find(|&i| line.is_char_boundary(i))
                .unwrap_or(0);
            format!("exited with code {code}: {}…", &line[..cut])
        }
        Some(line) => format!("exited with code {code}: {line}"),
        None => format!("exited with code {code}"),
    }
}

/// A kind of function source, by its `type` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// An uploaded WASI module.
    Wasm,
    /// Go source from a git repository.
    Go,
    /// A container image.
    Image,
}

impl SourceKind {
    /// The `type` tag in the API.
    pub fn tag(self) -> &'static str {
        match self {
            SourceKind::Wasm => "wasm",
            SourceKind::Go => "go",
            SourceKind::Image => "image",
        }
    }

    /// The kind of a stored source.
    pub fn of(source: &SourceInfo) -> Self {
        match source {
            SourceInfo::Wasm { .. } => SourceKind::Wasm,
            SourceInfo::Go { .. } => SourceKind::Go,
            SourceInfo::Image { .. } => SourceKind::Image,
        }
    }
}

/// What a backend can run, as data: [`Constraints::check`] is every backend's
/// [`Backend::accepts`], and the OpenAPI document publishes the same table, so
/// the spec says what each backend refuses before a request is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Constraints {
    /// The sources it builds.
    pub sources: &'static [SourceKind],
    /// Whether functions may have a network (`network: true`, Sky Island's `ip4`).
    pub network: bool,
    /// Whether it keeps sandboxes started ahead of time (`warm_pool_size` > 0).
    pub warm_pool: bool,
    /// The smallest `limits.memory_mb` it can enforce.
    pub min_memory_mb: u32,
}

/// The constraints of `kind`, whether or not it is built into this server.
pub fn constraints(kind: BackendKind) -> Constraints {
    match kind {
        BackendKind::Wasm => wasm::CONSTRAINTS,
        BackendKind::Docker => docker::CONSTRAINTS,
        BackendKind::Jail => jail::CONSTRAINTS,
    }
}

/// The backends, other than `kind`, for which `pred` holds: for messages that
/// say where to go instead.
fn alternatives(kind: BackendKind, pred: impl Fn(&Constraints) -> bool) -> String {
    let names: Vec<String> = BackendKind::ALL
        .into_iter()
        .filter(|k| *k != kind && pred(&constraints(*k)))
        .map(|k| format!("`{}`", k.as_str()))
        .collect();
    if names.is_empty() {
        "no backend".into()
    } else {
        names.join(" or ")
    }
}

impl Constraints {
    /// Checks that a function on `kind` stays within these constraints; the
    /// error names the field and says which backend to use instead.
    pub fn check(&self, kind: BackendKind, f: &Function) -> Result<(), (&'static str, String)> {
        let name = kind.as_str();
        let source = SourceKind::of(&f.source);
        if !self.sources.contains(&source) {
            let runs: Vec<&str> = self.sources.iter().map(|s| s.tag()).collect();
            return Err((
                "source.type",
                format!(
                    "the {name} backend builds {} sources; `{}` sources need backend {}",
                    runs.join(" and "),
                    source.tag(),
                    alternatives(kind, |c| c.sources.contains(&source))
                ),
            ));
        }
        if f.network && !self.network {
            return Err((
                "network",
                format!(
                    "the {name} backend gives functions no network; use backend {} for functions that need one",
                    alternatives(kind, |c| c.network)
                ),
            ));
        }
        if f.warm_pool_size.is_some_and(|n| n > 0) && !self.warm_pool {
            return Err((
                "warm_pool_size",
                format!(
                    "the {name} backend keeps no warm pool (it starts every run fresh); backend {} does",
                    alternatives(kind, |c| c.warm_pool)
                ),
            ));
        }
        if f.limits.memory_mb < self.min_memory_mb {
            return Err((
                "limits.memory_mb",
                format!(
                    "must be at least {} on the {name} backend (its engine's minimum)",
                    self.min_memory_mb
                ),
            ));
        }
        Ok(())
    }
}

/// A loaded artifact, ready to run many times.
#[async_trait]
pub trait Runnable: Send + Sync {
    /// Runs once, in a fresh sandbox.
    async fn run(&self, req: RunRequest) -> Result<RunOutcome, BackendError>;
}

/// One execution backend.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;
    /// Current availability.
    async fn health(&self) -> BackendHealth;
    /// Checks that this backend can run `f` (its source, network and pool
    /// settings) at create/update time; the error names the field and says why
    /// not. The default checks the backend's published [`Constraints`].
    fn accepts(&self, f: &Function) -> Result<(), (&'static str, String)> {
        constraints(self.kind()).check(self.kind(), f)
    }
    /// Whether functions on this backend may have a network on this server
    /// (its [`Constraints`] allow one, and it is configured to give one).
    fn gives_network(&self) -> bool {
        constraints(self.kind()).network
    }
    /// The cache key of the artifact `source_digest` builds into: builds with the
    /// same key produce interchangeable artifacts.
    fn artifact_key(&self, source_digest: &str) -> String;
    /// What Go sources compile to for this backend; `None` when it takes no Go.
    fn go_target(&self) -> Option<crate::gobuild::GoTarget>;
    /// Builds `function` into the artifact `key` in the artifact cache. `source`
    /// holds the uploaded blob, or for Go sources the binary the Go pipeline
    /// produced for [`Backend::go_target`] (empty for sources that are neither).
    /// `refresh` (a `cache_bust` deploy) asks to fetch again what may have
    /// changed upstream, such as the image behind a tag.
    async fn build(
        &self,
        key: &str,
        function: &Function,
        source: Vec<u8>,
        refresh: bool,
    ) -> Result<BuiltArtifact, BackendError>;
    /// Loads a built artifact (cheap: no recompilation). An artifact that no
    /// longer loads is a [`BackendError::Artifact`], and the caller rebuilds it.
    /// `function` is the deployment's snapshot (env, limits, network).
    async fn load(
        &self,
        rel_path: &str,
        function: &Function,
    ) -> Result<Arc<dyn Runnable>, BackendError>;
    /// Releases what this backend keeps for an artifact outside the artifact
    /// cache (a docker image tag), once garbage collection drops it.
    async fn discard(&self, _artifact: &ArtifactRecord) {}
    /// Releases everything this backend still holds (warm containers) at
    /// server shutdown.
    async fn shutdown(&self) {}
}

/// The backends built into this server.
#[derive(Clone)]
pub struct Backends {
    map: HashMap<BackendKind, Arc<dyn Backend>>,
}

impl Backends {
    /// A registry of the given backends.
    pub fn new(backends: Vec<Arc<dyn Backend>>) -> Self {
        Self {
            map: backends.into_iter().map(|b| (b.kind(), b)).collect(),
        }
    }

    /// The backend for `kind`, or [`BackendError::NotBuilt`].
    pub fn get(&self, kind: BackendKind) -> Result<&Arc<dyn Backend>, BackendError> {
        self.map.get(&kind).ok_or(BackendError::NotBuilt(kind))
    }

    /// Every backend built in.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Backend>> {
        self.map.values()
    }

    /// Health of every backend in the API, built or not.
    pub async fn health(&self) -> Vec<BackendHealth> {
        let mut out = Vec::new();
        for kind in BackendKind::ALL {
            out.push(match self.map.get(&kind) {
                Some(b) => b.health().await,
                None => BackendHealth {
                    backend: kind,
                    available: false,
                    reason: Some(format!(
                        "the {} backend is not built into this version of Skybridge",
                        kind.as_str()
                    )),
                    details: BTreeMap::new(),
                },
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_message_quotes_the_last_stderr_line() {
        assert_eq!(exit_message(3, b""), "exited with code 3");
        assert_eq!(
            exit_message(1, b"log\nerror: boom\n\n"),
            "exited with code 1: error: boom"
        );
        let long = "é".repeat(400);
        let m = exit_message(2, long.as_bytes());
        assert!(m.ends_with('…') && m.len() < 340, "{m}");
    }

    #[test]
    fn only_stdin_reading_go_binaries_are_poolable() {
        let go = |handler: Option<&str>, call: Option<&str>| SourceInfo::Go {
            repo: "file:///r".into(),
            git_ref: None,
            package: None,
            handler: handler.map(str::to_string),
            call: call.map(str::to_string),
        };
        let mut f = Function {
            name: "f".into(),
            backend: BackendKind::Docker,
            source: go(Some("Hello"), None),
            env: Default::default(),
            limits: crate::model::Limits {
                memory_mb: 64,
                timeout_ms: 1000,
                cpus: 1.0,
            },
            network: false,
            warm_pool_size: None,
            version: 1,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        assert!(go_reads_stdin(&f), "handlers read their arguments");
        f.source = go(None, Some("Encode(1.5, 2)"));
        assert!(go_reads_stdin(&f), "literal calls run the handler binary");
        f.source = go(None, Some("Encode(Pi, 2)"));
        assert!(!go_reads_stdin(&f), "compiled calls ignore stdin");
    }
}
