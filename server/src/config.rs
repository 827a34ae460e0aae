//! Configuration: one TOML file, then `SKYBRIDGE_<SECTION>_<KEY>` environment overrides.
//!
//! Every key has a documented default (see README "Configuration reference"), so the
//! server runs with no file at all. Unknown keys, in the file or the environment, are
//! an error that names the key: a typo must not silently fall back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "SKYBRIDGE_";

/// `SKYBRIDGE_*` variables that are not config keys: the config file path, the
/// log filter and the Go toolchain path are read by the CLI and the build
/// pipeline; `SKYBRIDGE_BIN` by `scripts/serve.sh`; `SKYBRIDGE_URL` and
/// `SKYBRIDGE_TOKEN` by the clients (the SDKs and `skybridge functions …`).
pub const RESERVED_ENV: [&str; 6] = [
    "SKYBRIDGE_CONFIG",
    "SKYBRIDGE_LOG",
    "SKYBRIDGE_GO",
    "SKYBRIDGE_BIN",
    "SKYBRIDGE_URL",
    "SKYBRIDGE_TOKEN",
];

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File path.
        path: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },
    /// The TOML or an override does not fit the schema (names the key).
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// An environment variable names no known setting.
    #[error("unknown setting in environment variable {0}: expected SKYBRIDGE_<SECTION>_<KEY>, e.g. SKYBRIDGE_SERVER_LISTEN")]
    UnknownEnv(String),
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP server.
    pub server: ServerConfig,
    /// Function limits: defaults and ceilings.
    pub limits: LimitsConfig,
    /// Execution handling: workers, output caps, retention, callbacks.
    pub executions: ExecutionsConfig,
    /// The wasm backend.
    pub wasm: WasmConfig,
    /// The Go build pipeline.
    pub go: GoConfig,
    /// The Sky Island compatible endpoint.
    pub skyisland: SkyIslandConfig,
    /// The docker backend.
    pub docker: DockerConfig,
    /// The jail backend.
    pub jail: JailConfig,
    /// The admin API.
    pub admin: AdminConfig,
}

/// `[admin]`
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The token the admin API (`/api/v1/admin/…`) requires; empty (the
    /// default): the admin API answers 403 saying how to enable it.
    pub api_token: String,
    /// The header carrying the token (`Authorization: Bearer` works too).
    pub token_header: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            api_token: String::new(),
            token_header: "X-Sky-Island-Token".into(),
        }
    }
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field(
                "api_token",
                &if self.api_token.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("token_header", &self.token_header)
            .finish()
    }
}

/// `[jail]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JailConfig {
    /// The `skybridge-jail-init` binary (pid 1 of every sandbox); empty: the
    /// one next to the server's own executable.
    pub init: PathBuf,
    /// The user id functions run as.
    pub uid: u32,
    /// The group id functions run as.
    pub gid: u32,
    /// Most processes and threads in one sandbox.
    pub pids_limit: u32,
    /// Size of the writable tmpfs at `/tmp`, MiB (the rest is read-only); at
    /// most half the function's memory limit, which its pages count against.
    pub tmpfs_mb: u32,
    /// Most open files per process (`RLIMIT_NOFILE`).
    pub nofile: u32,
    /// Sandbox set-up taking longer fails the execution, ms.
    pub setup_timeout_ms: u64,
    /// Sandboxes started ahead of time (init in its namespaces and cgroup,
    /// pid 2 unprivileged and waiting), holding nothing of any function
    /// (each serves one sandbox): a cold start then skips starting one. 0
    /// turns them off.
    pub spare_inits: u32,
    /// Warm sandboxes per function, for functions that do not set
    /// `warm_pool_size`.
    pub warm_pool_size: u32,
    /// Highest `warm_pool_size` a function may ask for.
    pub max_warm_pool_size: u32,
    /// A function's warm sandboxes go after this long without an invocation, ms.
    pub pool_idle_ttl_ms: u64,
    /// The IPv4 pool of functions with a network.
    pub ip4: JailIp4Config,
}

impl Default for JailConfig {
    fn default() -> Self {
        Self {
            init: PathBuf::new(),
            uid: 65534,
            gid: 65534,
            pids_limit: 128,
            tmpfs_mb: 64,
            nofile: 1024,
            setup_timeout_ms: 10_000,
            spare_inits: 4,
            warm_pool_size: 2,
            max_warm_pool_size: 16,
            pool_idle_ttl_ms: 300_000,
            ip4: JailIp4Config::default(),
        }
    }
}

/// `[jail.ip4]`: addresses for sandboxes with a network, on a host bridge.
/// Environment overrides are `SKYBRIDGE_JAIL_IP4_<KEY>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JailIp4Config {
    /// The host bridge; empty (the default): jails get no network, and
    /// functions asking for one are refused.
    pub bridge: String,
    /// Create the bridge (with `gateway`/`prefix_len` on it) when it does not
    /// exist, and remove it at shutdown.
    pub create_bridge: bool,
    /// The first address of the pool.
    pub first: String,
    /// How many consecutive addresses from `first` the pool holds.
    pub count: u32,
    /// The prefix length of the bridge's subnet.
    pub prefix_len: u8,
    /// The gateway (the bridge's own address), the sandboxes' default route.
    pub gateway: String,
    /// Name servers written to a sandbox's `/etc/resolv.conf`.
    pub nameservers: Vec<String>,
}

impl Default for JailIp4Config {
    fn default() -> Self {
        Self {
            bridge: String::new(),
            create_bridge: true,
            first: "10.213.0.10".into(),
            count: 240,
            prefix_len: 24,
            gateway: "10.213.0.1".into(),
            nameservers: Vec::new(),
        }
    }
}

/// `[docker]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerConfig {
    /// The Docker Engine's unix socket.
    pub socket: PathBuf,
    /// Timeout of one Engine API request (a pull or an image build may take
    /// this long), seconds.
    pub api_timeout_secs: u64,
    /// Most processes and threads in one container.
    pub pids_limit: i64,
    /// Size of the writable tmpfs at `/tmp`, MiB (the rest of the filesystem is
    /// read-only).
    pub tmpfs_mb: u32,
    /// Warm containers per function, for functions that do not set
    /// `warm_pool_size`.
    pub warm_pool_size: u32,
    /// Highest `warm_pool_size` a function may ask for.
    pub max_warm_pool_size: u32,
    /// A function's warm containers are removed after this long without an
    /// invocation, ms (the next invocation starts cold and refills the pool).
    pub pool_idle_ttl_ms: u64,
    /// Registry credentials for pulls, by registry host (`docker.io` for Docker
    /// Hub): `[docker.registries."ghcr.io"] username = "…" password = "…"`.
    pub registries: std::collections::BTreeMap<String, RegistryAuth>,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from("/var/run/docker.sock"),
            api_timeout_secs: 300,
            pids_limit: 128,
            tmpfs_mb: 64,
            warm_pool_size: 2,
            max_warm_pool_size: 16,
            pool_idle_ttl_ms: 300_000,
            registries: Default::default(),
        }
    }
}

impl JailIp4Config {
    /// The pool this describes, and its name servers; the error names the key.
    pub fn pool_config(
        &self,
    ) -> Result<(skybridge_jail::ip_pool::Ip4Config, Vec<std::net::Ipv4Addr>), String> {
        let ip = |key: &str, v: &str| {
            v.parse::<std::net::Ipv4Addr>()
                .map_err(|_| format!("jail.ip4.{key} must be an IPv4 address, got `{v}`"))
        };
        if self.bridge.is_empty() || self.bridge.len() > 15 || self.bridge.contains(['/', ' ']) {
            return Err("jail.ip4.bridge must be an interface name of 1 to 15 characters".into());
        }
        let cfg = skybridge_jail::ip_pool::Ip4Config {
            bridge: self.bridge.clone(),
            first: ip("first", &self.first)?,
            count: self.count,
            prefix_len: self.prefix_len,
            gateway: ip("gateway", &self.gateway)?,
        };
        skybridge_jail::ip_pool::IpPool::new(cfg.clone()).map_err(|e| format!("jail.ip4: {e}"))?;
        let nameservers = self
            .nameservers
            .iter()
            .map(|n| ip("nameservers", n))
            .collect::<Result<_, _>>()?;
        Ok((cfg, nameservers))
    }
}

/// Credentials for one registry. `Debug` never shows the secret.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryAuth {
    /// User name.
    pub username: String,
    /// Password or access token.
    pub password: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `[go]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GoConfig {
    /// The `go` binary; empty: `SKYBRIDGE_GO`, then `go` on PATH.
    pub binary: String,
    /// `GOPROXY` for builds. `off` (the default) builds std-only and vendored
    /// modules without a network; e.g. `https://proxy.golang.org,direct` fetches.
    pub proxy: String,
    /// `GOFLAGS` for builds.
    pub flags: String,
    /// `GOCACHE`; empty: `<data_dir>/go/cache`.
    pub cache_dir: PathBuf,
    /// A build running longer is killed and its deployment fails, ms.
    pub build_timeout_ms: u64,
    /// Timeout of one git clone/fetch, ms.
    pub fetch_timeout_ms: u64,
    /// `go build`s running at once (each already uses every core).
    pub max_concurrent_builds: usize,
}

impl Default for GoConfig {
    fn default() -> Self {
        Self {
            binary: String::new(),
            proxy: "off".into(),
            flags: String::new(),
            cache_dir: PathBuf::new(),
            build_timeout_ms: 300_000,
            fetch_timeout_ms: 120_000,
            max_concurrent_builds: 1,
        }
    }
}

/// `[skyisland]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SkyIslandConfig {
    /// Backend that `POST /api/v1/function` runs on (`FAAS_DEFAULT_RUNTIME` also sets it).
    pub default_backend: crate::model::BackendKind,
}

impl Default for SkyIslandConfig {
    fn default() -> Self {
        Self {
            default_backend: crate::model::BackendKind::Wasm,
        }
    }
}

/// The Skybridge FaaS variable for the default runtime, honoured for compatibility.
pub const FAAS_DEFAULT_RUNTIME: &str = "FAAS_DEFAULT_RUNTIME";

/// `[server]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Directory for the SQLite store and the artifact cache.
    pub data_dir: PathBuf,
    /// Largest request body accepted, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// Log format: `text` or `json`.
    pub log_format: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3280)),
            data_dir: PathBuf::from("data"),
            max_body_bytes: 32 * 1024 * 1024,
            log_format: "text".into(),
        }
    }
}

/// `[limits]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Memory cap when a function does not set one, MiB.
    pub default_memory_mb: u32,
    /// Highest memory cap a function may ask for, MiB.
    pub max_memory_mb: u32,
    /// Timeout when a function does not set one, ms.
    pub default_timeout_ms: u64,
    /// Highest timeout a function may ask for, ms.
    pub max_timeout_ms: u64,
    /// CPU share when a function does not set one, cores.
    pub default_cpus: f64,
    /// Highest CPU share a function may ask for, cores.
    pub max_cpus: f64,
    /// Largest invoke input (its JSON text), bytes.
    pub max_input_bytes: usize,
    /// Most environment variables per function.
    pub max_env_vars: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            default_memory_mb: 128,
            max_memory_mb: 1024,
            default_timeout_ms: 5_000,
            max_timeout_ms: 300_000,
            default_cpus: 1.0,
            max_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
            max_input_bytes: 1024 * 1024,
            max_env_vars: 128,
        }
    }
}

/// `[executions]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutionsConfig {
    /// How many async executions run at once.
    pub workers: usize,
    /// Captured stdout and stderr are each cut at this many bytes.
    pub max_output_bytes: usize,
    /// Finished executions older than this are pruned, seconds.
    pub retention_max_age_secs: u64,
    /// At most this many finished executions are kept per function.
    pub retention_max_count: u64,
    /// How often pruning runs, ms.
    pub prune_interval_ms: u64,
    /// Attempts to deliver a callback before giving up.
    pub callback_attempts: u32,
    /// Delay before the first callback retry, ms; doubles each retry.
    pub callback_backoff_ms: u64,
    /// Timeout of one callback request, ms.
    pub callback_timeout_ms: u64,
}

impl Default for ExecutionsConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            max_output_bytes: 1024 * 1024,
            retention_max_age_secs: 7 * 24 * 3600,
            retention_max_count: 10_000,
            prune_interval_ms: 60_000,
            callback_attempts: 3,
            callback_backoff_ms: 500,
            callback_timeout_ms: 5_000,
        }
    }
}

/// `[wasm]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WasmConfig {
    /// Instances the pooling allocator keeps slots for; also the most wasm
    /// executions running at once (more wait for a slot).
    pub max_instances: u32,
    /// Epoch tick for wall-clock limits, ms: timeouts fire within one tick.
    pub epoch_tick_ms: u64,
}

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            max_instances: 64,
            epoch_tick_ms: 10,
        }
    }
}

impl Config {
    /// Loads `file` (if given) and applies `SKYBRIDGE_*` overrides from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut root = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        let env: Vec<(String, String)> = env.into_iter().collect();
        if let Some((_, runtime)) = env.iter().find(|(k, _)| k == FAAS_DEFAULT_RUNTIME) {
            // Lower precedence than SKYBRIDGE_SKYISLAND_DEFAULT_BACKEND, applied below.
            apply_env_override(&mut root, "SKYBRIDGE_SKYISLAND_DEFAULT_BACKEND", runtime)
                .map_err(|e| ConfigError::Invalid(format!("{FAAS_DEFAULT_RUNTIME}: {e}")))?;
        }
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        env.sort();
        for (key, value) in env {
            apply_env_override(&mut root, &key, &value)?;
        }
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(root)).map_err(
            |e: serde_path_to_error::Error<toml::de::Error>| {
                ConfigError::Invalid(format!("{}: {}", e.path(), e.inner().message()))
            },
        )?;
        config.validate()?;
        let mut config = config;
        let cwd = std::env::current_dir()
            .map_err(|e| ConfigError::Invalid(format!("cannot read the working directory: {e}")))?;
        config.resolve_paths(&cwd);
        Ok(config)
    }

    /// Makes every path setting absolute against `base` (the working directory
    /// at start-up), so nothing downstream depends on the process's current
    /// directory: child processes run elsewhere (`go build` in a build dir), and
    /// tools such as Go refuse relative cache paths. A `go.binary` without a
    /// slash is a name looked up on `PATH` and stays as it is.
    pub fn resolve_paths(&mut self, base: &Path) {
        let abs = |p: &Path| -> PathBuf {
            if p.as_os_str().is_empty() || p.is_absolute() {
                p.to_path_buf()
            } else {
                normalize(&base.join(p))
            }
        };
        self.server.data_dir = abs(&self.server.data_dir);
        self.go.cache_dir = abs(&self.go.cache_dir);
        self.docker.socket = abs(&self.docker.socket);
        self.jail.init = abs(&self.jail.init);
        if self.go.binary.contains('/') {
            self.go.binary = abs(Path::new(&self.go.binary))
                .to_string_lossy()
                .into_owned();
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if l.default_memory_mb == 0 || l.default_memory_mb > l.max_memory_mb {
            return bad("limits.default_memory_mb must be between 1 and limits.max_memory_mb");
        }
        if l.default_timeout_ms == 0 || l.default_timeout_ms > l.max_timeout_ms {
            return bad("limits.default_timeout_ms must be between 1 and limits.max_timeout_ms");
        }
        if !(l.max_cpus >= 0.01 && l.default_cpus >= 0.01 && l.default_cpus <= l.max_cpus) {
            return bad("limits.default_cpus must be between 0.01 and limits.max_cpus");
        }
        let d = &self.docker;
        if d.api_timeout_secs == 0 || d.pids_limit < 1 || d.tmpfs_mb == 0 || d.pool_idle_ttl_ms == 0
        {
            return bad("docker.api_timeout_secs, pids_limit, tmpfs_mb and pool_idle_ttl_ms must be at least 1");
        }
        if d.warm_pool_size > d.max_warm_pool_size {
            return bad("docker.warm_pool_size must be at most docker.max_warm_pool_size");
        }
        let j = &self.jail;
        if j.pids_limit == 0
            || j.tmpfs_mb == 0
            || j.nofile < 16
            || j.setup_timeout_ms == 0
            || j.pool_idle_ttl_ms == 0
        {
            return bad("jail.pids_limit, tmpfs_mb, setup_timeout_ms and pool_idle_ttl_ms must be at least 1, jail.nofile at least 16");
        }
        if j.warm_pool_size > j.max_warm_pool_size {
            return bad("jail.warm_pool_size must be at most jail.max_warm_pool_size");
        }
        if j.spare_inits > 64 {
            return bad("jail.spare_inits must be at most 64");
        }
        if !self.jail.ip4.bridge.is_empty() {
            self.jail.ip4.pool_config().map_err(ConfigError::Invalid)?;
        }
        if self.admin.token_header.is_empty()
            || !self
                .admin
                .token_header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return bad("admin.token_header must be a header name (letters, digits and `-`)");
        }
        let e = &self.executions;
        if e.workers == 0 {
            return bad("executions.workers must be at least 1");
        }
        if e.prune_interval_ms == 0 || e.callback_timeout_ms == 0 || e.max_output_bytes == 0 {
            return bad("executions.prune_interval_ms, callback_timeout_ms and max_output_bytes must be at least 1");
        }
        // chrono durations overflow past ~292 years; nobody keeps records longer.
        if e.retention_max_age_secs > 100 * 365 * 24 * 3600 {
            return bad("executions.retention_max_age_secs must be at most 100 years");
        }
        if self.wasm.max_instances == 0 || self.wasm.epoch_tick_ms == 0 {
            return bad("wasm.max_instances and wasm.epoch_tick_ms must be at least 1");
        }
        if self.go.build_timeout_ms == 0 || self.go.fetch_timeout_ms == 0 {
            return bad("go.build_timeout_ms and go.fetch_timeout_ms must be at least 1");
        }
        if !matches!(self.server.log_format.as_str(), "text" | "json") {
            return bad("server.log_format must be `text` or `json`");
        }
        Ok(())
    }
}

/// `base/./a/../b` → `base/b`, lexically (no symlinks are followed, the path
/// need not exist yet), so logs and messages show a clean path.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    out
}

/// Sections are single words, so `SKYBRIDGE_SERVER_DATA_DIR` is `[server] data_dir`.
fn apply_env_override(root: &mut toml::Table, var: &str, value: &str) -> Result<(), ConfigError> {
    let rest = &var[ENV_PREFIX.len()..];
    let Some((section, key)) = rest.split_once('_') else {
        return Err(ConfigError::UnknownEnv(var.to_string()));
    };
    let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
    let defaults = toml::Value::try_from(Config::default()).expect("defaults serialize");
    let section_defaults = defaults
        .get(&section)
        .ok_or_else(|| ConfigError::UnknownEnv(var.to_string()))?;
    // A key of a nested table: `SKYBRIDGE_JAIL_IP4_BRIDGE` is `[jail.ip4] bridge`.
    if section_defaults.get(&key).is_none() {
        if let Some((sub, rest)) = key.split_once('_') {
            if let Some(sub_defaults) = section_defaults.get(sub).filter(|v| v.is_table()) {
                let known = sub_defaults
                    .get(rest)
                    .ok_or_else(|| ConfigError::UnknownEnv(var.to_string()))?;
                let parsed = parse_env_value(var, value, known)?;
                let table = root
                    .entry(section.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let sub_table = match table {
                    toml::Value::Table(t) => t
                        .entry(sub.to_string())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new())),
                    _ => return Err(ConfigError::Invalid(format!("`{section}` must be a table"))),
                };
                return match sub_table {
                    toml::Value::Table(t) => {
                        t.insert(rest.to_string(), parsed);
                        Ok(())
                    }
                    _ => Err(ConfigError::Invalid(format!(
                        "`{section}.{sub}` must be a table"
                    ))),
                };
            }
        }
    }
    let known = section_defaults
        .get(&key)
        .ok_or_else(|| ConfigError::UnknownEnv(var.to_string()))?;
    let parsed = parse_env_value(var, value, known)?;
    let table = root
        .entry(section.clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    match table {
        toml::Value::Table(t) => {
            t.insert(key, parsed);
            Ok(())
        }
        _ => Err(ConfigError::Invalid(format!("`{section}` must be a table"))),
    }
}

/// `value` of `var`, typed like the setting's default `known`.
fn parse_env_value(
    var: &str,
    value: &str,
    known: &toml::Value,
) -> Result<toml::Value, ConfigError> {
    let parsed = match known {
        toml::Value::String(_) => toml::Value::String(value.to_string()),
        toml::Value::Integer(_) => {
            value
                .parse::<i64>()
                .map(toml::Value::Integer)
                .map_err(|_| {
                    ConfigError::Invalid(format!("{var}: expected an integer, got `{value}`"))
                })?
        }
        toml::Value::Float(_) => value.parse::<f64>().map(toml::Value::Float).map_err(|_| {
            ConfigError::Invalid(format!("{var}: expected a number, got `{value}`"))
        })?,
        toml::Value::Boolean(_) => {
            value
                .parse::<bool>()
                .map(toml::Value::Boolean)
                .map_err(|_| {
                    ConfigError::Invalid(format!("{var}: expected true or false, got `{value}`"))
                })?
        }
        toml::Value::Array(_) => toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| toml::Value::String(v.to_string()))
                .collect(),
        ),
        other => {
            return Err(ConfigError::Invalid(format!(
                "{var}: cannot be set from the environment ({} value)",
                other.type_str()
            )))
        }
    };
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load(None, env(&[("PATH", "/bin")])).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:3280");
        assert_eq!(c.limits.default_timeout_ms, 5000);
    }

    #[test]
    fn env_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = \"127.0.0.1:1\"\n[executions]\nworkers = 2\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&path),
            env(&[
                ("SKYBRIDGE_SERVER_LISTEN", "127.0.0.1:0"),
                ("SKYBRIDGE_SERVER_DATA_DIR", "/tmp/x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 0);
        assert_eq!(c.server.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.executions.workers, 2);
    }

    #[test]
    fn unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[server]\nlisten_port = 1\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(err.contains("listen_port"), "{err}");

        let err = Config::load(None, env(&[("SKYBRIDGE_SERVER_PORT", "1")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("SKYBRIDGE_SERVER_PORT"), "{err}");

        let err = Config::load(None, env(&[("SKYBRIDGE_EXECUTIONS_WORKERS", "many")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected an integer"), "{err}");

        std::fs::write(&path, "[executions]\nworkers = \"many\"\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(
            err.contains("executions.workers"),
            "type errors name the key: {err}"
        );
    }

    #[test]
    fn faas_default_runtime_sets_the_sky_island_backend_below_skybridge_vars() {
        let c = Config::load(None, env(&[("FAAS_DEFAULT_RUNTIME", "docker")])).unwrap();
        assert_eq!(
            c.skyisland.default_backend,
            crate::model::BackendKind::Docker
        );
        let c = Config::load(
            None,
            env(&[
                ("FAAS_DEFAULT_RUNTIME", "docker"),
                ("SKYBRIDGE_SKYISLAND_DEFAULT_BACKEND", "jail"),
            ]),
        )
        .unwrap();
        assert_eq!(c.skyisland.default_backend, crate::model::BackendKind::Jail);
        let err = Config::load(None, env(&[("FAAS_DEFAULT_RUNTIME", "lambda")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("skyisland.default_backend") && err.contains("lambda"),
            "{err}"
        );
        let c = Config::load(
            None,
            env(&[("SKYBRIDGE_GO_PROXY", "https://proxy.golang.org")]),
        )
        .unwrap();
        assert_eq!(c.go.proxy, "https://proxy.golang.org");
    }

    #[test]
    fn relative_paths_become_absolute_against_the_start_directory() {
        let mut c = Config::load(
            None,
            env(&[
                ("SKYBRIDGE_GO_CACHE_DIR", "./cache/../gocache"),
                ("SKYBRIDGE_GO_BINARY", ".tools/go/bin/go"),
            ]),
        )
        .unwrap();
        // load() resolved against the process's directory; resolve_paths is
        // idempotent for absolute paths and pure otherwise.
        assert!(c.server.data_dir.is_absolute(), "{:?}", c.server.data_dir);
        assert!(c.go.cache_dir.is_absolute() && c.go.cache_dir.ends_with("gocache"));
        assert!(Path::new(&c.go.binary).is_absolute());

        c.server.data_dir = PathBuf::from("data");
        c.go.cache_dir = PathBuf::new();
        c.go.binary = "go".into();
        c.docker.socket = PathBuf::from("run/docker.sock");
        c.resolve_paths(Path::new("/srv/skybridge"));
        assert_eq!(c.server.data_dir, PathBuf::from("/srv/skybridge/data"));
        assert_eq!(
            c.go.cache_dir,
            PathBuf::new(),
            "empty means derived from data_dir"
        );
        assert_eq!(c.go.binary, "go", "a bare name is looked up on PATH");
        assert_eq!(
            c.docker.socket,
            PathBuf::from("/srv/skybridge/run/docker.sock")
        );
        c.resolve_paths(Path::new("/elsewhere"));
        assert_eq!(c.server.data_dir, PathBuf::from("/srv/skybridge/data"));
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/a/../../b")), PathBuf::from("/b"));
    }

    #[test]
    fn inconsistent_limits_are_rejected() {
        let err = Config::load(None, env(&[("SKYBRIDGE_LIMITS_DEFAULT_MEMORY_MB", "4096")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("default_memory_mb"), "{err}");
    }
}
