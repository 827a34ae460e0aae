//! The jail backend: a natively built Go function (static, `CGO_ENABLED=0`)
//! runs in a fresh sandbox per invocation, Sky Island's model.
//!
//! The sandboxes themselves are the `skybridge-jail` crate's: on Linux, new
//! pid/mount/network/ipc/uts/cgroup namespaces, a tmpfs root holding only the
//! read-only binary, cgroup limits, rlimits, no capabilities, `no_new_privs`,
//! an unprivileged user and a seccomp filter (see `jail/src/linux`). This
//! module is what the server adds: artifacts (the binary, in the artifact
//! cache), warm sandboxes through the shared [`super::pool::Pool`], the IPv4
//! pool for functions with a network, and the mapping of how a sandbox ended
//! to an execution outcome.
//!
//! The FreeBSD driver (`skybridge_jail::freebsd`) compiles and is unit-tested,
//! but this server runs the Linux one: on other systems the backend reports
//! itself unavailable with the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::pool::{Make, Pool, Warm};
use super::{
    exit_message, function_env, go_reads_stdin, Backend, BackendError, BackendHealth,
    BuiltArtifact, RunOutcome, RunRequest, Runnable, ENV_EXECUTION_ID, ENV_INPUT,
};
use crate::artifacts::ArtifactCache;
use crate::config::JailConfig;
use crate::gobuild::shim::EXIT_MARKER_ENV;
use crate::metrics::Metrics;
use crate::model::{BackendKind, ExecutionStatus, Function, Limits};
use skybridge_jail::ip_pool::{IpPool, PoolError};

/// Artifact kind of jail binaries.
pub const ARTIFACT_KIND: &str = "jail-binary";

/// Go built natively; a network when `[jail.ip4]` configures a pool; warm
/// sandboxes; any memory limit of at least 4 MiB (a Go runtime needs that much
/// to start).
pub const CONSTRAINTS: super::Constraints = super::Constraints {
    sources: &[super::SourceKind::Go],
    network: true,
    warm_pool: true,
    min_memory_mb: 4,
};

/// The input goes into `SKYBRIDGE_INPUT` too when it is at most this long
/// (the environment of an `execve` is bounded; stdin is not).
pub const MAX_ENV_INPUT: usize = 64 * 1024;

/// The name of the init binary, looked for next to the server's executable.
pub const INIT_NAME: &str = "skybridge-jail-init";

/// Holder of a warm sandbox's address before an execution takes it.
const WARM_HOLDER: &str = "warm";

/// The jail backend.
pub struct JailBackend {
    cfg: JailConfig,
    cache: ArtifactCache,
    metrics: Arc<Metrics>,
    /// The engine, or why this machine cannot run jails.
    engine: Result<Arc<Engine>, String>,
}

#[cfg(target_os = "linux")]
use skybridge_jail::linux::{Driver, DriverConfig, End, Finished, Jail, JailError, Spec};

/// What runs sandboxes: the driver, the address pool, the warm pools that
/// hold addresses.
struct Engine {
    #[cfg(target_os = "linux")]
    driver: Driver,
    init: PathBuf,
    ip: Option<Arc<IpPool>>,
    nameservers: Vec<std::net::Ipv4Addr>,
    /// The bridge this server created (and removes at shutdown).
    created_bridge: Option<String>,
    /// Every warm pool, closed at shutdown; those whose sandboxes hold
    /// addresses (`true`) give one back when the address pool is exhausted.
    #[cfg(target_os = "linux")]
    pools: Mutex<Vec<(Weak<Pool<Jail>>, bool)>>,
}

/// The init binary: `jail.init`, else `skybridge-jail-init` next to the
/// running executable (or one directory up, for test binaries in `deps/`).
pub fn find_init(configured: &Path) -> Result<PathBuf, String> {
    if !configured.as_os_str().is_empty() {
        return Ok(configured.to_path_buf());
    }
    let exe = std::env::current_exe().map_err(|e| format!("locating the server binary: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    for d in [Some(dir), dir.parent()].into_iter().flatten() {
        let candidate = d.join(INIT_NAME);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(format!(
        "{INIT_NAME} is not next to {}: build it (`cargo build --release -p skybridge-jail`) and set jail.init to its path",
        exe.display()
    ))
}

impl JailBackend {
    /// Prepares the backend: checks this machine can run jails (root, cgroups,
    /// the init binary), removes what an earlier process of this instance
    /// left, and sets the IPv4 pool up (creating its bridge when asked). When
    /// jails cannot run here the backend still exists and reports why.
    pub async fn start(
        cfg: &JailConfig,
        cache: ArtifactCache,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let engine = Engine::start(cfg, &cache).await;
        if let Err(reason) = &engine {
            tracing::info!(%reason, "jail backend unavailable; functions on it answer 503");
        }
        Ok(Self {
            cfg: cfg.clone(),
            cache,
            metrics,
            engine: engine.map(Arc::new),
        })
    }

    /// The IPv4 pool, when `[jail.ip4]` configures one and jails run here.
    pub fn ip_pool(&self) -> Option<Arc<IpPool>> {
        self.engine.as_ref().ok().and_then(|e| e.ip.clone())
    }

    fn engine(&self) -> Result<&Arc<Engine>, BackendError> {
        self.engine
            .as_ref()
            .map_err(|reason| BackendError::Unavailable {
                backend: BackendKind::Jail,
                reason: reason.clone(),
            })
    }
}

impl Engine {
    #[cfg(not(target_os = "linux"))]
    async fn start(_cfg: &JailConfig, _cache: &ArtifactCache) -> Result<Self, String> {
        Err(format!(
            "the jail backend runs on Linux; this server is built for {}",
            std::env::consts::OS
        ))
    }

    #[cfg(target_os = "linux")]
    async fn start(cfg: &JailConfig, cache: &ArtifactCache) -> Result<Self, String> {
        let init = find_init(&cfg.init)?;
        let instance = crate::artifacts::instance_id(cache.root())
            .map_err(|e| format!("reading the instance id: {e}"))?;
        let driver = Driver::new(DriverConfig {
            init: init.clone(),
            state_dir: cache.root().join("jail"),
            instance,
            uid: cfg.uid,
            gid: cfg.gid,
            setup_timeout: Duration::from_millis(cfg.setup_timeout_ms),
            spare_inits: cfg.spare_inits as usize,
        })
        .map_err(|e| e.to_string())?;
        let (mut ip, mut nameservers, mut created_bridge) = (None, Vec::new(), None);
        if !cfg.ip4.bridge.is_empty() {
            let (pool_cfg, ns) = cfg.ip4.pool_config()?;
            let netlink = driver.netlink().await.map_err(|e| e.to_string())?;
            if cfg.ip4.create_bridge {
                let created = netlink
                    .ensure_bridge(&pool_cfg.bridge, pool_cfg.gateway, pool_cfg.prefix_len)
                    .await?;
                if created {
                    created_bridge = Some(pool_cfg.bridge.clone());
                }
            } else if netlink.index(&pool_cfg.bridge).await?.is_none() {
                return Err(format!(
                    "jail.ip4.bridge `{}` does not exist (create it, or set jail.ip4.create_bridge = true)",
                    pool_cfg.bridge
                ));
            }
            ip = Some(Arc::new(IpPool::new(pool_cfg).map_err(|e| e.to_string())?));
            nameservers = ns;
        }
        Ok(Self {
            driver,
            init,
            ip,
            nameservers,
            created_bridge,
            pools: Mutex::new(Vec::new()),
        })
    }
}

#[async_trait]
impl Backend for JailBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Jail
    }

    async fn health(&self) -> BackendHealth {
        let mut details = BTreeMap::new();
        details.insert("warm_pool_size".into(), self.cfg.warm_pool_size.to_string());
        details.insert("pids_limit".into(), self.cfg.pids_limit.to_string());
        match &self.engine {
            Ok(e) => {
                details.insert("init".into(), e.init.display().to_string());
                #[cfg(target_os = "linux")]
                {
                    details.insert("driver".into(), "linux".into());
                    details.insert("cgroup".into(), e.driver.cgroup_version().into());
                    details.insert("live_sandboxes".into(), e.driver.live().to_string());
                }
                if let Some(ip) = &e.ip {
                    details.insert("ip4_bridge".into(), ip.config().bridge.clone());
                    details.insert("ip4_available".into(), ip.available().to_string());
                    details.insert("ip4_count".into(), ip.config().count.to_string());
                }
                BackendHealth {
                    backend: BackendKind::Jail,
                    available: true,
                    reason: None,
                    details,
                }
            }
            Err(reason) => BackendHealth {
                backend: BackendKind::Jail,
                available: false,
                reason: Some(reason.clone()),
                details,
            },
        }
    }

    fn accepts(&self, f: &Function) -> Result<(), (&'static str, String)> {
        CONSTRAINTS.check(BackendKind::Jail, f)?;
        if f.network && !self.gives_network() {
            return Err((
                "network",
                "the jail backend has no IPv4 pool: set [jail.ip4] bridge (and first, count, prefix_len, gateway) to give jails a network".into(),
            ));
        }
        if let Some(n) = f.warm_pool_size {
            if n > self.cfg.max_warm_pool_size {
                return Err((
                    "warm_pool_size",
                    format!(
                        "must be at most {} (jail.max_warm_pool_size)",
                        self.cfg.max_warm_pool_size
                    ),
                ));
            }
        }
        Ok(())
    }

    fn gives_network(&self) -> bool {
        !self.cfg.ip4.bridge.is_empty()
    }

    fn go_target(&self) -> Option<crate::gobuild::GoTarget> {
        Some(crate::gobuild::GoTarget::Native)
    }

    fn artifact_key(&self, source_digest: &str) -> String {
        crate::artifacts::digest(format!("{ARTIFACT_KIND}\n{source_digest}\nv1").as_bytes())
    }

    async fn build(
        &self,
        key: &str,
        f: &Function,
        source: Vec<u8>,
        _refresh: bool,
    ) -> Result<BuiltArtifact, BackendError> {
        if !matches!(f.source, crate::model::SourceInfo::Go { .. }) || source.is_empty() {
            return Err(BackendError::Build {
                message: "the jail backend runs natively built Go functions only".into(),
                log: String::new(),
            });
        }
        if !source.starts_with(b"\x7fELF") {
            return Err(BackendError::Build {
                message: "the Go build did not produce an ELF executable".into(),
                log: String::new(),
            });
        }
        let rel_path = self.cache.artifact_rel_path(key, "jail")?;
        self.cache.put_artifact(&rel_path, &source)?;
        // Read and executed inside the sandbox by its unprivileged user.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            self.cache.resolve(&rel_path),
            std::fs::Permissions::from_mode(0o755),
        )?;
        Ok(BuiltArtifact {
            rel_path,
            kind: ARTIFACT_KIND.into(),
            size_bytes: source.len() as u64,
            log: format!("static binary of {} bytes ready\n", source.len()),
        })
    }

    async fn load(&self, rel_path: &str, f: &Function) -> Result<Arc<dyn Runnable>, BackendError> {
        let engine = self.engine()?.clone();
        let program = self.cache.resolve(rel_path);
        let meta = std::fs::metadata(&program).map_err(|e| BackendError::Artifact {
            path: rel_path.to_string(),
            message: e.to_string(),
        })?;
        if !meta.is_file() || meta.len() == 0 {
            return Err(BackendError::Artifact {
                path: rel_path.to_string(),
                message: "not a non-empty file".into(),
            });
        }
        let template = Template {
            program,
            function: f.name.clone(),
            limits: f.limits,
            network: f.network,
            pids: self.cfg.pids_limit,
            // tmpfs pages count against the memory limit: a full /tmp must
            // leave the function room to run (and to be told ENOSPC).
            tmp_bytes: (u64::from(self.cfg.tmpfs_mb) << 20)
                .min(u64::from(f.limits.memory_mb) << 19),
            nofile: u64::from(self.cfg.nofile),
        };
        let size = f.warm_pool_size.unwrap_or(self.cfg.warm_pool_size) as usize;
        let pool = if go_reads_stdin(f) && size > 0 {
            Some(
                engine.warm_pool(
                    &template,
                    function_env(f, false),
                    size,
                    Duration::from_millis(self.cfg.pool_idle_ttl_ms),
                    self.metrics
                        .warm_ready
                        .with_label_values(&[f.name.as_str()]),
                ),
            )
        } else {
            None
        };
        Ok(Arc::new(JailRunnable {
            engine,
            template,
            pool,
            metrics: self.metrics.clone(),
        }))
    }

    async fn shutdown(&self) {
        let Ok(engine) = &self.engine else { return };
        #[cfg(target_os = "linux")]
        {
            // Running sandboxes end with their executions (the grace period is
            // over by now); warm ones go now. Once every teardown is done,
            // nothing is left in this instance's cgroups: they go too.
            for (pool, _) in engine.pools() {
                pool.close();
            }
            if !engine.driver.wait_idle(Duration::from_secs(2)).await {
                tracing::warn!(
                    live = engine.driver.live(),
                    "jail sandboxes still being torn down at shutdown; the next start removes their cgroups"
                );
            } else if !engine.driver.remove_cgroups() {
                tracing::warn!(
                    "removing this instance's jail cgroups failed; the next start reuses them"
                );
            }
            if let Some(bridge) = &engine.created_bridge {
                if let Ok(nl) = engine.driver.netlink().await {
                    if let Err(e) = nl.delete(bridge).await {
                        tracing::warn!(%bridge, error = %e, "removing the jail bridge failed");
                    }
                }
            }
        }
    }
}

/// What every sandbox of one deployment shares.
#[derive(Debug, Clone)]
struct Template {
    program: PathBuf,
    function: String,
    limits: Limits,
    network: bool,
    pids: u32,
    tmp_bytes: u64,
    nofile: u64,
}

#[cfg(target_os = "linux")]
impl Engine {
    /// A sandbox spec for `t` with `env`, holding `lease` when networked.
    fn spec(
        &self,
        t: &Template,
        env: Vec<(String, String)>,
        lease: Option<skybridge_jail::ip_pool::Lease>,
    ) -> Spec {
        // Go shims end their output with the marker just before exiting: the
        // run is over without waiting for the exit to travel through init.
        let marker = skybridge_jail::marker::new_marker();
        let mut env = env;
        env.push((EXIT_MARKER_ENV.into(), marker.clone()));
        Spec {
            program: t.program.clone(),
            argv0: t.function.clone(),
            args: Vec::new(),
            env,
            hostname: t.function.clone(),
            memory_bytes: u64::from(t.limits.memory_mb) << 20,
            cpus: t.limits.cpus,
            pids: t.pids,
            tmp_bytes: t.tmp_bytes,
            tmp_inodes: 4096,
            nofile: t.nofile,
            fsize: t.tmp_bytes,
            network: lease,
            nameservers: self.nameservers.clone(),
            exit_marker: Some(marker),
        }
    }

    /// An address for `holder`, taking one back from an idle warm sandbox of
    /// another function when the pool is exhausted.
    async fn lease(
        &self,
        holder: &str,
    ) -> Result<Option<skybridge_jail::ip_pool::Lease>, BackendError> {
        let Some(pool) = &self.ip else {
            return Err(BackendError::AddressesExhausted(
                "the jail backend has no IPv4 pool ([jail.ip4] bridge is not set)".into(),
            ));
        };
        match pool.lease(holder) {
            Ok(l) => return Ok(Some(l)),
            Err(PoolError::Exhausted(_)) => {}
            Err(e) => return Err(BackendError::Engine(e.to_string())),
        }
        let evicted = self
            .pools()
            .into_iter()
            .filter(|(_, networked)| *networked)
            .any(|(p, _)| p.evict_one());
        if evicted {
            // Its address returns once the evicted sandbox is torn down.
            for _ in 0..50 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                if let Ok(l) = pool.lease(holder) {
                    return Ok(Some(l));
                }
            }
        }
        Err(BackendError::AddressesExhausted(format!(
            "{} (jail.ip4 on bridge {}); retry when an execution with a network ends, or enlarge the pool",
            PoolError::Exhausted(pool.config().count),
            pool.config().bridge
        )))
    }

    fn warm_pool(
        self: &Arc<Self>,
        t: &Template,
        env: Vec<(String, String)>,
        size: usize,
        idle_ttl: Duration,
        ready: prometheus::IntGauge,
    ) -> Arc<Pool<Jail>> {
        let engine = Arc::downgrade(self);
        let (template, pool_env) = (t.clone(), env.clone());
        let make: Make<Jail> = Arc::new(move || {
            let (engine, t, env) = (engine.clone(), template.clone(), pool_env.clone());
            Box::pin(async move {
                let engine = engine.upgrade().ok_or_else(|| {
                    BackendError::Engine("the jail backend is shutting down".into())
                })?;
                let lease = if t.network {
                    // A warm sandbox never evicts another for its address.
                    match &engine.ip {
                        Some(pool) => Some(
                            pool.lease(WARM_HOLDER)
                                .map_err(|e| BackendError::AddressesExhausted(e.to_string()))?,
                        ),
                        None => None,
                    }
                } else {
                    None
                };
                let spec = engine.spec(&t, env, lease);
                engine.driver.spawn(spec).await.map_err(setup_error)
            })
        });
        let pool = Pool::start(&t.function, make, env, size, idle_ttl, ready);
        self.pools
            .lock()
            .expect("pools lock")
            .push((Arc::downgrade(&pool), t.network));
        pool
    }

    /// The warm pools still in use, each with whether it is networked.
    fn pools(&self) -> Vec<(Arc<Pool<Jail>>, bool)> {
        let mut pools = self.pools.lock().expect("pools lock");
        pools.retain(|(w, _)| w.strong_count() > 0);
        pools
            .iter()
            .filter_map(|(w, networked)| Some((w.upgrade()?, *networked)))
            .collect()
    }
}

#[cfg(target_os = "linux")]
impl Warm for Jail {
    fn has_exited(&mut self) -> bool {
        Jail::has_exited(self)
    }
    fn describe(&self) -> String {
        self.name().to_string()
    }
}

#[cfg(target_os = "linux")]
fn setup_error(e: JailError) -> BackendError {
    match e {
        JailError::Unsupported(reason) => BackendError::Unavailable {
            backend: BackendKind::Jail,
            reason,
        },
        other => BackendError::Engine(other.to_string()),
    }
}

/// A deployed jail function.
struct JailRunnable {
    engine: Arc<Engine>,
    template: Template,
    #[cfg(target_os = "linux")]
    pool: Option<Arc<Pool<Jail>>>,
    #[cfg(not(target_os = "linux"))]
    pool: Option<()>,
    metrics: Arc<Metrics>,
}

#[async_trait]
impl Runnable for JailRunnable {
    #[cfg(not(target_os = "linux"))]
    async fn run(&self, _req: RunRequest) -> Result<RunOutcome, BackendError> {
        Err(BackendError::Unavailable {
            backend: BackendKind::Jail,
            reason: "the jail backend runs on Linux".into(),
        })
    }

    #[cfg(target_os = "linux")]
    async fn run(&self, req: RunRequest) -> Result<RunOutcome, BackendError> {
        let started = Instant::now();
        let deadline =
            tokio::time::Instant::from_std(started + Duration::from_millis(req.limits.timeout_ms));
        let execution = req.execution_id.to_string();
        let mut jail = None;
        if let Some(pool) = &self.pool {
            let base: Vec<(String, String)> = req
                .env
                .iter()
                .filter(|(k, _)| k != ENV_INPUT && k != ENV_EXECUTION_ID)
                .cloned()
                .collect();
            jail = pool.take(&base);
            let result = if jail.is_some() { "hit" } else { "miss" };
            self.metrics
                .warm_pool
                .with_label_values(&[self.template.function.as_str(), result])
                .inc();
        }
        let jail = match jail {
            Some(j) => {
                j.set_holder(&execution);
                j
            }
            None => {
                let lease = if self.template.network {
                    self.engine.lease(&execution).await?
                } else {
                    None
                };
                let mut env = req.env;
                if req.stdin.len() > MAX_ENV_INPUT {
                    env.retain(|(k, _)| k != ENV_INPUT);
                }
                let spec = self.engine.spec(&self.template, env, lease);
                match tokio::time::timeout_at(deadline, self.engine.driver.spawn(spec)).await {
                    Ok(j) => j.map_err(setup_error)?,
                    Err(_) => {
                        return Ok(RunOutcome::timed_out(
                            req.limits.timeout_ms,
                            started.elapsed(),
                            " (while its sandbox was being set up)",
                        ))
                    }
                }
            }
        };
        req.control.set_sandbox(
            jail.name().to_string(),
            jail.address().map(|a| a.to_string()),
        );
        let finished = jail
            .run(
                &req.stdin,
                deadline,
                req.max_output_bytes,
                req.control.killed(),
            )
            .await;
        if let Some(pool) = &self.pool {
            pool.refill();
        }
        Ok(outcome(finished, &req.limits, started.elapsed()))
    }
}

/// The execution outcome of a finished sandbox.
#[cfg(target_os = "linux")]
fn outcome(f: Finished, limits: &Limits, duration: Duration) -> RunOutcome {
    let mut o = RunOutcome {
        status: ExecutionStatus::Failed,
        exit_code: None,
        stdout: f.stdout,
        stderr: f.stderr,
        stdout_truncated: f.stdout_truncated,
        stderr_truncated: f.stderr_truncated,
        reason: None,
        message: None,
        duration,
    };
    let oom = || {
        (
            Some("memory_limit"),
            Some(format!(
                "killed: out of memory (limit {} MiB)",
                limits.memory_mb
            )),
        )
    };
    match f.end {
        End::Exited(exit) => {
            let code = exit.code();
            o.exit_code = Some(code);
            (o.reason, o.message) = match exit {
                skybridge_jail::proto::Exit::Code(0) => {
                    o.status = ExecutionStatus::Succeeded;
                    (None, None)
                }
                _ if f.oom_killed => oom(),
                skybridge_jail::proto::Exit::Code(c) => {
                    (Some("nonzero_exit"), Some(exit_message(c, &o.stderr)))
                }
                skybridge_jail::proto::Exit::Signal(s) => (
                    Some("signaled"),
                    Some(format!("killed by signal {s} ({})", signal_name(s))),
                ),
            };
        }
        End::TimedOut => {
            let t = RunOutcome::timed_out(limits.timeout_ms, duration, "");
            (o.status, o.reason, o.message) = (t.status, t.reason, t.message);
        }
        End::Killed => {
            let k = crate::executions::killed(duration);
            (o.reason, o.message) = (k.reason, k.message);
        }
        End::Lost if f.oom_killed => (o.reason, o.message) = oom(),
        End::Lost => {
            o.reason = Some("sandbox_lost");
            o.message = Some("the sandbox ended without reporting how the function exited".into());
        }
    }
    o
}

fn signal_name(s: i32) -> &'static str {
    match s {
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGBUS => "SIGBUS",
        libc::SIGSYS => "SIGSYS: a system call the sandbox forbids",
        libc::SIGXFSZ => "SIGXFSZ: file size limit",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        _ => "signal",
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use skybridge_jail::proto::Exit;

    fn finished(end: End, oom: bool) -> Finished {
        Finished {
            end,
            oom_killed: oom,
            stdout: b"partial".to_vec(),
            stdout_truncated: false,
            stderr: b"panic: boom\n".to_vec(),
            stderr_truncated: false,
            duration: Duration::from_millis(3),
        }
    }

    const LIMITS: Limits = Limits {
        memory_mb: 32,
        timeout_ms: 1000,
        cpus: 1.0,
    };

    #[test]
    fn every_end_maps_to_a_status_and_a_stable_reason() {
        let d = Duration::from_millis(5);
        let o = outcome(finished(End::Exited(Exit::Code(0)), false), &LIMITS, d);
        assert_eq!(
            (o.status, o.exit_code, o.reason),
            (ExecutionStatus::Succeeded, Some(0), None)
        );
        let o = outcome(finished(End::Exited(Exit::Code(2)), false), &LIMITS, d);
        assert_eq!(o.reason, Some("nonzero_exit"));
        assert_eq!(
            o.message.as_deref(),
            Some("exited with code 2: panic: boom")
        );
        let o = outcome(finished(End::Exited(Exit::Signal(9)), true), &LIMITS, d);
        assert_eq!((o.reason, o.exit_code), (Some("memory_limit"), Some(137)));
        assert!(o.message.unwrap().contains("32 MiB"));
        let o = outcome(finished(End::Exited(Exit::Signal(31)), false), &LIMITS, d);
        assert_eq!(o.reason, Some("signaled"));
        assert!(o.message.unwrap().contains("forbids"));
        let o = outcome(finished(End::TimedOut, false), &LIMITS, d);
        assert_eq!(
            (o.status, o.reason),
            (ExecutionStatus::TimedOut, Some("timeout"))
        );
        assert_eq!(
            o.stdout, b"partial",
            "what it printed before the limit is kept"
        );
        let o = outcome(finished(End::Killed, false), &LIMITS, d);
        assert_eq!(
            (o.status, o.reason),
            (ExecutionStatus::Failed, Some("killed"))
        );
        let o = outcome(finished(End::Lost, false), &LIMITS, d);
        assert_eq!(o.reason, Some("sandbox_lost"));
    }

    #[test]
    fn init_is_the_configured_path_or_a_clear_error() {
        assert_eq!(
            find_init(Path::new("/opt/init")).unwrap(),
            PathBuf::from("/opt/init")
        );
        if let Err(e) = find_init(Path::new("")) {
            assert!(e.contains("jail.init"), "{e}");
        }
    }
}
