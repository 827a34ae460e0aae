//! Domain model: functions, deployments and executions as the API and the store see them.
//!
//! Request shapes (`FunctionSpec`, `SourceSpec`) differ from stored/returned shapes
//! (`Function`, `SourceInfo`): a wasm module arrives inline as base64 but is kept
//! content-addressed on disk, so listing functions never ships megabytes of module.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// The execution backend a function runs on, chosen when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// wasmtime running a WASI preview-1 command module.
    Wasm,
    /// A container on a Docker Engine.
    Docker,
    /// A FreeBSD jail or a Linux namespace sandbox.
    Jail,
}

impl BackendKind {
    /// Every backend the API knows about, built or not.
    pub const ALL: [BackendKind; 3] = [BackendKind::Wasm, BackendKind::Docker, BackendKind::Jail];

    /// The lowercase name used in the API, the store and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Wasm => "wasm",
            BackendKind::Docker => "docker",
            BackendKind::Jail => "jail",
        }
    }

    /// Parses the stored name back; `None` for anything unknown.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A Go function in a git repository (the build pipeline's view of a `go` source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoSource {
    /// `github.com/owner/name` (cloned over https), `https://…`, or `file:///…`.
    pub repo: String,
    /// Branch, tag or commit; default: the repository's HEAD.
    pub git_ref: Option<String>,
    /// Package directory inside the repository; default: its root.
    pub package: Option<String>,
    /// Exported function called with a JSON array of arguments from stdin.
    pub handler: Option<String>,
    /// Sky Island style call, e.g. `Encode(100.1, 80.9)`; output is what `fmt.Print` prints.
    pub call: Option<String>,
}

/// Where a function's code comes from, as submitted. Tagged by `type`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceSpec {
    /// A WASI preview-1 command module (any language), base64 encoded.
    Wasm {
        /// The module bytes, standard base64.
        #[schema(example = "AGFzbQEAAAA=")]
        module: String,
    },
    /// Go source from a git repository, built by the server. Exactly one of
    /// `handler` and `call`.
    Go {
        /// `github.com/owner/name` (cloned over https), `https://…`, or `file:///…`.
        #[schema(example = "github.com/mmcloughlin/geohash")]
        repo: String,
        /// Branch, tag or commit; default: the repository's HEAD.
        #[serde(rename = "ref")]
        git_ref: Option<String>,
        /// Package directory inside the repository; default: its root.
        package: Option<String>,
        /// Exported function: invoke input is a JSON array of its arguments (or one
        /// value for a one-parameter function); output is its result as JSON.
        #[schema(example = "Encode")]
        handler: Option<String>,
        /// Sky Island style call, e.g. `Encode(100.1, 80.9)`: output is what
        /// `fmt.Print` prints; invoke input is ignored.
        call: Option<String>,
    },
    /// A container image on the Docker Engine (docker backend only), pulled at
    /// deploy when missing.
    Image {
        /// Image reference, e.g. `alpine:3.20` or `registry.example.com/team/fn@sha256:…`.
        #[schema(example = "busybox:1.36")]
        image: String,
        /// Command and arguments (exec form); default: the image's own.
        #[schema(example = json!(["sh", "-c", "cat"]))]
        command: Option<Vec<String>>,
        /// User to run as; default: the image's `USER`, or 65534:65534 (nobody)
        /// when the image names none.
        user: Option<String>,
        /// The command reads its input from stdin (rather than only from
        /// `SKYBRIDGE_INPUT`), so it can wait, already started, in a warm container.
        #[serde(default)]
        reads_stdin: bool,
    },
}

impl SourceSpec {
    /// The Go source, for Go functions.
    pub fn go(&self) -> Option<GoSource> {
        match self {
            SourceSpec::Go {
                repo,
                git_ref,
                package,
                handler,
                call,
            } => Some(GoSource {
                repo: repo.clone(),
                git_ref: git_ref.clone(),
                package: package.clone(),
                handler: handler.clone(),
                call: call.clone(),
            }),
            SourceSpec::Wasm { .. } | SourceSpec::Image { .. } => None,
        }
    }
}

impl From<GoSource> for SourceInfo {
    fn from(g: GoSource) -> Self {
        SourceInfo::Go {
            repo: g.repo,
            git_ref: g.git_ref,
            package: g.package,
            handler: g.handler,
            call: g.call,
        }
    }
}

/// Where a function's code comes from, as stored and returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SourceInfo {
    /// A WASI module kept in the content-addressed source store.
    Wasm {
        /// `sha256:<hex>` of the module bytes.
        digest: String,
        /// Size of the module in bytes.
        size_bytes: u64,
    },
    /// Go source from a git repository.
    Go {
        /// Repository.
        repo: String,
        /// Branch, tag or commit (default HEAD).
        #[serde(rename = "ref")]
        git_ref: Option<String>,
        /// Package directory.
        package: Option<String>,
        /// Handler function.
        handler: Option<String>,
        /// Sky Island call.
        call: Option<String>,
    },
    /// A container image (docker backend).
    Image {
        /// Image reference as given.
        image: String,
        /// Command and arguments; `null`: the image's own.
        command: Option<Vec<String>>,
        /// User; `null`: the image's, or nobody.
        user: Option<String>,
        /// Whether the command reads its input from stdin (warm-poolable).
        reads_stdin: bool,
    },
}

impl SourceInfo {
    /// The Go source, for Go functions.
    pub fn go(&self) -> Option<GoSource> {
        match self {
            SourceInfo::Go {
                repo,
                git_ref,
                package,
                handler,
                call,
            } => Some(GoSource {
                repo: repo.clone(),
                git_ref: git_ref.clone(),
                package: package.clone(),
                handler: handler.clone(),
                call: call.clone(),
            }),
            SourceInfo::Wasm { .. } | SourceInfo::Image { .. } => None,
        }
    }

    /// The content digest of an uploaded source (wasm modules).
    pub fn blob_digest(&self) -> Option<&str> {
        match self {
            SourceInfo::Wasm { digest, .. } => Some(digest),
            SourceInfo::Go { .. } | SourceInfo::Image { .. } => None,
        }
    }

    /// What a non-Go build starts from, as a digest: the uploaded blob, or for an
    /// image the reference and run settings (so `cache_bust` re-pulls a tag).
    pub fn input_digest(&self) -> Option<String> {
        match self {
            SourceInfo::Wasm { digest, .. } => Some(digest.clone()),
            SourceInfo::Image { .. } => Some(crate::artifacts::digest(
                serde_json::to_string(self)
                    .expect("sources serialize")
                    .as_bytes(),
            )),
            SourceInfo::Go { .. } => None,
        }
    }
}

/// Resource limits applied to every execution of a function.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Memory cap in MiB (wasm: linear memory; docker: the container, with no
    /// extra swap).
    #[schema(example = 128)]
    pub memory_mb: u32,
    /// Wall-clock limit in milliseconds; past it the execution ends `timed_out`.
    #[schema(example = 5000)]
    pub timeout_ms: u64,
    /// CPU share in cores, e.g. 0.5 (docker: `NanoCpus`; wasm runs on one
    /// thread and ignores it).
    #[serde(default = "default_cpus")]
    #[schema(example = 1.0)]
    pub cpus: f64,
}

fn default_cpus() -> f64 {
    1.0
}

/// Limits as submitted: either may be left out and takes the configured default.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Memory cap in MiB.
    #[serde(default, deserialize_with = "json_integer")]
    pub memory_mb: Option<u32>,
    /// Wall-clock limit in milliseconds.
    #[serde(default, deserialize_with = "json_integer")]
    pub timeout_ms: Option<u64>,
    /// CPU share in cores.
    pub cpus: Option<f64>,
}

/// Reads an optional integer as JSON Schema defines one: any number without a
/// fractional part, so `5.0` and `5e3` are integers too (serde's integer types
/// refuse them, and clients written in languages with one number type send them).
fn json_integer<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < u64::MAX as f64)
            .map(|f| f as u64)
    });
    let value = whole.ok_or_else(|| {
        D::Error::custom(format!(
            "invalid value: {n}, expected a non-negative integer"
        ))
    })?;
    T::try_from(value)
        .map(Some)
        .map_err(|_| D::Error::custom(format!("invalid value: {n} is out of range")))
}

/// A function as submitted to `POST /api/v1/functions` and `PUT /api/v1/functions/{name}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionSpec {
    /// Unique name: 1-63 characters of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
    #[schema(example = "hello")]
    pub name: String,
    /// Backend that runs the function.
    pub backend: BackendKind,
    /// The function's code.
    pub source: SourceSpec,
    /// Environment variables passed to every execution.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Resource limits; omitted fields take the server defaults.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Whether executions may use the network (docker: the default bridge;
    /// jail: an address from `[jail.ip4]`'s pool on its bridge; otherwise no
    /// network at all). wasm has no network and refuses `true`.
    #[serde(default)]
    pub network: bool,
    /// Sandboxes kept started ahead of time for this function (docker
    /// containers, jails; for sources that read stdin); `null`: the server's
    /// `docker.warm_pool_size` or `jail.warm_pool_size`, 0: none.
    #[serde(default, deserialize_with = "json_integer")]
    pub warm_pool_size: Option<u32>,
}

/// A function's new spec, as submitted to `PUT /api/v1/functions/{name}`: the
/// path names the function (functions cannot be renamed), the body is the rest
/// of a [`FunctionSpec`].
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionUpdate {
    /// Backend that runs the function.
    pub backend: BackendKind,
    /// The function's code.
    pub source: SourceSpec,
    /// Environment variables passed to every execution.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Resource limits; omitted fields take the server defaults.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Whether executions may use the network (see [`FunctionSpec::network`]).
    #[serde(default)]
    pub network: bool,
    /// Warm containers kept for this function (see [`FunctionSpec::warm_pool_size`]).
    #[serde(default, deserialize_with = "json_integer")]
    pub warm_pool_size: Option<u32>,
}

impl FunctionUpdate {
    /// The full spec of the function `name`.
    pub fn into_spec(self, name: String) -> FunctionSpec {
        FunctionSpec {
            name,
            backend: self.backend,
            source: self.source,
            env: self.env,
            limits: self.limits,
            network: self.network,
            warm_pool_size: self.warm_pool_size,
        }
    }
}

/// A stored function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Function {
    /// Unique name.
    #[schema(example = "hello")]
    pub name: String,
    /// Backend that runs the function.
    pub backend: BackendKind,
    /// Where the code comes from.
    pub source: SourceInfo,
    /// Environment variables passed to every execution.
    pub env: BTreeMap<String, String>,
    /// Resource limits.
    pub limits: Limits,
    /// Whether executions may use the network.
    #[serde(default)]
    pub network: bool,
    /// Warm containers kept for this function; `null`: the server default.
    #[serde(default)]
    pub warm_pool_size: Option<u32>,
    /// Incremented on every update; a deployment records the version it built.
    pub version: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last update time.
    pub updated_at: DateTime<Utc>,
}

/// Deployment state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentStatus {
    /// The artifact is being built.
    Building,
    /// The artifact is built; invocations use it.
    Ready,
    /// The build failed; see `build_log` and `error`.
    Failed,
}

impl DeploymentStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Building => "building",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }
    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Building, Self::Ready, Self::Failed]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One build of a function into a runnable artifact. Deployments are immutable
/// snapshots: invocations run the newest ready deployment with the env and limits
/// it was built with, so editing a function changes nothing until it is redeployed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Deployment {
    /// Deployment id.
    pub id: Uuid,
    /// Function name.
    pub function: String,
    /// Function version this deployment was built from.
    pub function_version: i64,
    /// Build state.
    pub status: DeploymentStatus,
    /// The artifact's cache key, `sha256:<hex>` of what it was built from
    /// (source digest, artifact kind, engine compatibility), once ready.
    pub artifact_digest: Option<String>,
    /// For Go sources: the commit the ref resolved to.
    pub resolved_commit: Option<String>,
    /// What the build did, including compiler messages.
    pub build_log: String,
    /// Why the build failed, when it did.
    pub error: Option<String>,
    /// When the build started.
    pub created_at: DateTime<Utc>,
    /// When the build ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Execution state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Accepted for async execution, waiting for a worker.
    Queued,
    /// Running now.
    Running,
    /// Exited with code 0.
    Succeeded,
    /// Exited non-zero, trapped, ran out of memory or was interrupted; see `reason`.
    Failed,
    /// Ran past `limits.timeout_ms` and was stopped.
    TimedOut,
}

impl ExecutionStatus {
    /// Every status.
    pub const ALL: [ExecutionStatus; 5] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::TimedOut,
    ];
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
        }
    }
    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// Whether the execution has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::TimedOut)
    }
}

/// One run of a function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Execution {
    /// Execution id (UUIDv7, so ids sort by creation time).
    pub id: Uuid,
    /// Function name.
    pub function: String,
    /// Deployment that ran it.
    pub deployment_id: Uuid,
    /// Backend that ran it.
    pub backend: BackendKind,
    /// Current state.
    pub status: ExecutionStatus,
    /// The input, exactly as given to invoke; the function read its JSON text on stdin.
    pub input: Value,
    /// stdout parsed as JSON when it is valid JSON, otherwise stdout as a string.
    pub output: Option<Value>,
    /// What the function wrote to stderr (its logs), possibly truncated.
    pub stderr: String,
    /// Whether stdout was cut at the configured output cap.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the configured output cap.
    pub stderr_truncated: bool,
    /// Exit code, when the function exited.
    pub exit_code: Option<i32>,
    /// Stable code for why it did not succeed: `nonzero_exit`, `timeout`,
    /// `memory_limit`, `trap`, `interrupted`, `backend_error`.
    pub reason: Option<String>,
    /// Human-readable detail for `reason`.
    pub message: Option<String>,
    /// Wall-clock run time in milliseconds.
    pub duration_ms: Option<u64>,
    /// URL that receives the finished execution by POST.
    pub callback_url: Option<String>,
    /// When the invocation was accepted.
    pub created_at: DateTime<Utc>,
    /// When it started running.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Full captured output of an execution.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExecutionLogs {
    /// Execution id.
    pub id: Uuid,
    /// Raw stdout (lossy UTF-8), possibly truncated.
    pub stdout: String,
    /// Raw stderr (lossy UTF-8), possibly truncated.
    pub stderr: String,
    /// Whether stdout was cut at the output cap.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the output cap.
    pub stderr_truncated: bool,
}

/// An execution as the store keeps it: the API view plus raw stdout for `/logs`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRecord {
    /// Execution id.
    pub id: Uuid,
    /// Function name.
    pub function: String,
    /// Deployment that runs it.
    pub deployment_id: Uuid,
    /// Backend that runs it.
    pub backend: BackendKind,
    /// Current state.
    pub status: ExecutionStatus,
    /// The input as given to invoke.
    pub input: Value,
    /// Captured stdout, at most the output cap.
    pub stdout: Vec<u8>,
    /// Captured stderr, at most the output cap.
    pub stderr: Vec<u8>,
    /// stdout was cut.
    pub stdout_truncated: bool,
    /// stderr was cut.
    pub stderr_truncated: bool,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Stable failure code.
    pub reason: Option<String>,
    /// Failure detail.
    pub message: Option<String>,
    /// Run time.
    pub duration_ms: Option<u64>,
    /// Callback target.
    pub callback_url: Option<String>,
    /// Accepted at.
    pub created_at: DateTime<Utc>,
    /// Started at.
    pub started_at: Option<DateTime<Utc>>,
    /// Ended at.
    pub finished_at: Option<DateTime<Utc>>,
}

impl ExecutionRecord {
    /// A new execution of `deployment`, in state `status`, accepted now.
    pub fn new(
        function: &str,
        deployment_id: Uuid,
        backend: BackendKind,
        status: ExecutionStatus,
        input: Value,
        callback_url: Option<String>,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            function: function.to_string(),
            deployment_id,
            backend,
            status,
            input,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            exit_code: None,
            reason: None,
            message: None,
            duration_ms: None,
            callback_url,
            created_at: now(),
            started_at: None,
            finished_at: None,
        }
    }

    /// The API view.
    pub fn to_api(&self) -> Execution {
        Execution {
            id: self.id,
            function: self.function.clone(),
            deployment_id: self.deployment_id,
            backend: self.backend,
            status: self.status,
            input: self.input.clone(),
            output: output_value(&self.stdout),
            stderr: String::from_utf8_lossy(&self.stderr).into_owned(),
            stdout_truncated: self.stdout_truncated,
            stderr_truncated: self.stderr_truncated,
            exit_code: self.exit_code,
            reason: self.reason.clone(),
            message: self.message.clone(),
            duration_ms: self.duration_ms,
            callback_url: self.callback_url.clone(),
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
        }
    }

    /// The `/logs` view.
    pub fn logs(&self) -> ExecutionLogs {
        ExecutionLogs {
            id: self.id,
            stdout: String::from_utf8_lossy(&self.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&self.stderr).into_owned(),
            stdout_truncated: self.stdout_truncated,
            stderr_truncated: self.stderr_truncated,
        }
    }
}

/// The current time at the store's precision (milliseconds), so records read back
/// equal the records written.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(3)
}

/// Turns captured stdout into the `output` field: JSON when it parses, else text.
pub fn output_value(stdout: &[u8]) -> Option<Value> {
    if stdout.is_empty() {
        return None;
    }
    match serde_json::from_slice::<Value>(stdout) {
        Ok(v) => Some(v),
        Err(_) => Some(Value::String(String::from_utf8_lossy(stdout).into_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_json_when_stdout_parses() {
        assert_eq!(
            output_value(b"{\"a\":1}\n"),
            Some(serde_json::json!({"a": 1}))
        );
        assert_eq!(output_value(b"42"), Some(serde_json::json!(42)));
    }

    #[test]
    fn output_is_text_otherwise_and_none_when_empty() {
        assert_eq!(
            output_value(b"hello world\n"),
            Some(Value::String("hello world\n".into()))
        );
        assert_eq!(output_value(b""), None);
    }

    #[test]
    fn source_spec_rejects_unknown_fields_and_types() {
        let ok: SourceSpec = serde_json::from_str(r#"{"type":"wasm","module":"AA=="}"#).unwrap();
        assert!(matches!(ok, SourceSpec::Wasm { .. }));
        let err = serde_json::from_str::<SourceSpec>(r#"{"type":"wasm","module":"AA==","x":1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `x`"), "{err}");
        let err = serde_json::from_str::<SourceSpec>(r#"{"type":"cobol"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `cobol`"), "{err}");
    }

    #[test]
    fn integers_may_be_written_as_whole_floats() {
        let l: LimitsSpec =
            serde_json::from_str(r#"{"memory_mb": 64.0, "timeout_ms": 1e3}"#).unwrap();
        assert_eq!((l.memory_mb, l.timeout_ms), (Some(64), Some(1000)));
        let l: LimitsSpec = serde_json::from_str(r#"{"memory_mb": null}"#).unwrap();
        assert_eq!(l.memory_mb, None);
        for bad in [
            r#"{"memory_mb": 1.5}"#,
            r#"{"memory_mb": -1}"#,
            r#"{"memory_mb": 5000000000}"#,
            r#"{"memory_mb": "1"}"#,
        ] {
            assert!(serde_json::from_str::<LimitsSpec>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statuses_round_trip_through_their_stored_names() {
        for s in ExecutionStatus::ALL {
            assert_eq!(ExecutionStatus::parse(s.as_str()), Some(s));
        }
        for k in BackendKind::ALL {
            assert_eq!(BackendKind::parse(k.as_str()), Some(k));
        }
    }
}
