//! The Linux driver: a sandbox per execution from namespaces, cgroups,
//! `pivot_root`, dropped privileges and seccomp, without any helper program
//! on the hot path but our own small init.
//!
//! - [`spawn`]: the one `clone` that starts init in new namespaces;
//! - [`init`]: init itself (pid 1 of every sandbox);
//! - [`cgroup`]: memory, CPU and pids limits, v1 and v2;
//! - [`net`]: veth pairs on the pool's bridge;
//! - [`seccomp`]: the system call filter;
//! - [`spare`]: bare sandboxes (init started, in its cgroup) made ahead of
//!   time.
//!
//! [`Driver::spawn`] sets a sandbox up and returns once the function's process
//! runs, blocked reading its stdin (a warm pool keeps such [`Jail`]s ready);
//! [`Jail::run`] feeds it one input and collects what it writes. Dropping a
//! [`Jail`] at any point kills everything in it and removes its cgroup, its
//! veth pair and its address lease.

pub mod cgroup;
pub mod init;
pub mod net;
pub mod seccomp;
pub mod spare;
pub mod spawn;

use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{Notify, OnceCell};

use self::cgroup::{Cgroup, CgroupLimits, Cgroups, Layout};
use self::net::Netlink;
use self::spare::{Maker, Spares};
use crate::ip_pool::Lease;
use crate::proto::{Exit, InitConfig, NetConfig, Report, Stage};

/// Failures to set a sandbox up. What the function does inside it is never an
/// error: that is a [`Finished`].
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    /// This machine or process cannot run sandboxes (not root, no cgroups,
    /// init missing); the message says how to fix it.
    #[error("{0}")]
    Unsupported(String),
    /// init reported a failed set-up step.
    #[error("sandbox set-up failed at {}: {detail}", stage.as_str())]
    Setup {
        /// The step.
        stage: Stage,
        /// The OS error number (0 when none).
        errno: i32,
        /// What init said.
        detail: String,
    },
    /// The network could not be set up.
    #[error("sandbox network: {0}")]
    Network(String),
    /// A host-side system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> JailError {
    let context = context.into();
    move |source| JailError::Io { context, source }
}

/// Driver settings.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The `skybridge-jail-init` binary.
    pub init: PathBuf,
    /// A directory of the driver's own (the empty mount point of sandbox
    /// roots lives here).
    pub state_dir: PathBuf,
    /// Names this server instance's cgroups (`skybridge-<instance>`), so a
    /// restart finds what an earlier process left.
    pub instance: String,
    /// The user functions run as.
    pub uid: u32,
    /// The group functions run as.
    pub gid: u32,
    /// How long set-up may take before it counts as failed.
    pub setup_timeout: Duration,
    /// Sandboxes kept started ahead of time (see [`spare`]); 0: every
    /// sandbox waits for its own.
    pub spare_inits: usize,
}

/// One sandbox to set up.
#[derive(Debug)]
pub struct Spec {
    /// The function's static binary on the host.
    pub program: PathBuf,
    /// `argv[0]`.
    pub argv0: String,
    /// Further arguments.
    pub args: Vec<String>,
    /// The environment.
    pub env: Vec<(String, String)>,
    /// Host name inside.
    pub hostname: String,
    /// Memory limit, bytes (no swap on top).
    pub memory_bytes: u64,
    /// CPU share, cores.
    pub cpus: f64,
    /// Most processes and threads.
    pub pids: u32,
    /// Size of `/tmp`, bytes.
    pub tmp_bytes: u64,
    /// Most files in `/tmp`.
    pub tmp_inodes: u64,
    /// `RLIMIT_NOFILE`.
    pub nofile: u64,
    /// `RLIMIT_FSIZE`, bytes.
    pub fsize: u64,
    /// An address on the pool's bridge; `None`: loopback only.
    pub network: Option<Lease>,
    /// Name servers for `/etc/resolv.conf` when networked.
    pub nameservers: Vec<std::net::Ipv4Addr>,
    /// The exit marker the program ends stdout and stderr with (see
    /// [`crate::marker`]; the caller puts it in `env` under the name its
    /// program reads): the run ends when both streams carry it.
    pub exit_marker: Option<String>,
}

/// Counts live sandboxes, so shutdown can wait for their teardown.
#[derive(Default)]
struct Live {
    count: AtomicUsize,
    changed: Notify,
}

impl Live {
    fn inc(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }
    fn dec(&self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }
}

/// The driver: one per server.
pub struct Driver {
    cfg: DriverConfig,
    maker: Arc<Maker>,
    spares: Spares,
    netlink: OnceCell<Netlink>,
    live: Arc<Live>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("cfg", &self.cfg)
            .field("cgroups", &self.cgroup_version())
            .finish()
    }
}

/// Why this process cannot run sandboxes, if it cannot.
pub fn check_support(init: &Path) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("the jail backend needs root (namespaces, cgroups and mounts); run the server as root or use the wasm or docker backend".into());
    }
    let meta = std::fs::metadata(init).map_err(|e| {
        format!(
            "the sandbox init {} is missing ({e}); build it with `cargo build -p skybridge-jail` (scripts/serve.sh does)",
            init.display()
        )
    })?;
    use std::os::unix::fs::PermissionsExt;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "the sandbox init {} is not an executable file",
            init.display()
        ));
    }
    Ok(())
}

impl Driver {
    /// Checks that sandboxes can run here, prepares the cgroup parent and the
    /// root mount point, and removes what an earlier process of the same
    /// instance left (its cgroups and whatever still ran in them).
    pub fn new(cfg: DriverConfig) -> Result<Self, JailError> {
        check_support(&cfg.init).map_err(JailError::Unsupported)?;
        let layout = Layout::detect().map_err(|e| JailError::Unsupported(e.to_string()))?;
        let cgroups = Cgroups::new(layout, &format!("skybridge-{}", cfg.instance))
            .map_err(io_err("preparing the cgroup parent"))?;
        let swept = cgroups.sweep();
        if swept > 0 {
            eprintln!("skybridge-jail: removed {swept} sandbox cgroup(s) an earlier process left");
        }
        let root = cfg.state_dir.join("root");
        std::fs::create_dir_all(&root).map_err(io_err(format!("creating {}", root.display())))?;
        let path = |p: &Path| {
            CString::new(p.as_os_str().as_bytes())
                .map_err(|_| JailError::Unsupported(format!("{} holds NUL", p.display())))
        };
        let argv = vec![
            path(&cfg.init)?,
            path(&root)?,
            CString::new(cfg.uid.to_string()).expect("digits"),
            CString::new(cfg.gid.to_string()).expect("digits"),
        ];
        let maker = Arc::new(Maker::new(argv, cgroups, format!("{:08x}", rand_u32())));
        Ok(Self {
            spares: Spares::start(maker.clone(), cfg.spare_inits)?,
            maker,
            cfg,
            netlink: OnceCell::new(),
            live: Arc::new(Live::default()),
        })
    }

    /// `v1` or `v2`.
    pub fn cgroup_version(&self) -> &'static str {
        self.maker.cgroups().layout().version()
    }

    /// Sandboxes alive now (running, warm, or being torn down).
    pub fn live(&self) -> usize {
        self.live.count.load(Ordering::SeqCst)
    }

    /// Waits until every sandbox is torn down, at most `timeout`; `true` if
    /// none is left.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.live.changed.notified();
            if self.live() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.live() == 0;
            }
        }
    }

    /// Once every sandbox is torn down (at shutdown): releases the spares
    /// and removes this instance's parent cgroups (a restart would create
    /// them again); `false` when sandboxes remain. No sandbox can be set
    /// up after this.
    pub fn remove_cgroups(&self) -> bool {
        if self.live() != 0 {
            return false;
        }
        self.spares.close();
        self.maker.cgroups().remove_parent()
    }

    /// The netlink connection, opened on first use.
    pub async fn netlink(&self) -> Result<&Netlink, JailError> {
        self.netlink
            .get_or_try_init(|| async { Netlink::connect() })
            .await
            .map_err(|e| JailError::Network(format!("opening a netlink socket: {e}")))
    }

    /// Sets a sandbox up and starts the function in it; returns once its
    /// `execve` succeeded (the process then waits for its stdin).
    pub async fn spawn(&self, spec: Spec) -> Result<Jail, JailError> {
        let started = Instant::now();
        let limits = CgroupLimits {
            memory_bytes: spec.memory_bytes,
            cpus: spec.cpus,
            pids: spec.pids,
        };
        let bridge =
            match &spec.network {
                Some(lease) => {
                    let bridge = &lease.config().bridge;
                    let index = self
                        .netlink()
                        .await?
                        .index(bridge)
                        .await
                        .map_err(JailError::Network)?;
                    Some(index.ok_or_else(|| {
                        JailError::Network(format!("bridge {bridge} does not exist"))
                    })?)
                }
                None => None,
            };
        let config = InitConfig {
            program: spec.program.clone(),
            argv0: spec.argv0.clone(),
            args: spec.args.clone(),
            env: spec.env.clone(),
            hostname: spec.hostname.clone(),
            tmp_bytes: spec.tmp_bytes,
            tmp_inodes: spec.tmp_inodes,
            nofile: spec.nofile,
            fsize: spec.fsize,
            net: spec.network.as_ref().map(|l| NetConfig {
                addr: l.addr(),
                prefix_len: l.config().prefix_len,
                gateway: l.config().gateway,
                nameservers: spec.nameservers.clone(),
            }),
        }
        .encode()
        .map_err(|e| JailError::Unsupported(format!("invalid sandbox configuration: {e}")))?;

        let config = crate::proto::frame(&config).map_err(JailError::Unsupported)?;
        // A spare is started and in its cgroup already; without one, this
        // waits for both. init builds what it can while the limits (and the
        // network) are set here; it waits for GO to start the function.
        let mut bare = match self.spares.take() {
            Some(bare) => bare,
            None => self.spares.make().await?,
        };
        // init was made at a low priority, ahead of time; it is wanted now.
        // SAFETY: setpriority of a child process (the server is root).
        unsafe { libc::setpriority(libc::PRIO_PROCESS, bare.init.pid as libc::id_t, 0) };
        // The configuration first, so that init works on it while the rest
        // is set up here: an empty pipe takes 64 KiB at once.
        let sent = write_ahead(&bare.init.config, &config);
        let limited = self.maker.limit(&mut bare, &limits);
        let (name, sp) = (bare.name, bare.init);
        self.live.inc();
        let address = spec.network.as_ref().map(Lease::addr);
        // From here on, dropping `jail` tears everything down.
        let mut jail = Jail {
            name: name.clone(),
            pid: sp.pid,
            // SAFETY: the OwnedFd moves into the AsyncFd and stays open, the
            // same fd, for the AsyncFd's whole life.
            pidfd: Some(
                unsafe { AsyncFd::register_with_interest(sp.pidfd, tokio::io::Interest::READABLE) }
                    .map_err(|e| io_err("watching the sandbox")(e.into()))?,
            ),
            stdin: Some(pipe::Sender::from_owned_fd(sp.stdin).map_err(io_err("stdin pipe"))?),
            stdout: Some(pipe::Receiver::from_owned_fd(sp.stdout).map_err(io_err("stdout pipe"))?),
            stderr: Some(pipe::Receiver::from_owned_fd(sp.stderr).map_err(io_err("stderr pipe"))?),
            report: pipe::Receiver::from_owned_fd(sp.report).map_err(io_err("report pipe"))?,
            report_buf: Vec::new(),
            address,
            marker: spec.exit_marker,
            setup: Duration::ZERO,
            teardown: Some(Teardown {
                cgroup: Some(bare.cgroup),
                veth: None,
                netlink: None,
                lease: spec.network,
                live: self.live.clone(),
                _refill: self.spares.refill(),
            }),
        };
        let mut config_pipe =
            pipe::Sender::from_owned_fd(sp.config).map_err(io_err("config pipe"))?;
        // A dead init shows in its report, read below.
        let _ = config_pipe.write_all(&config[sent..]).await;
        limited.map_err(io_err("limiting the sandbox's cgroup"))?;
        let t = jail.teardown.as_mut().expect("set above");
        if let Some(bridge) = bridge {
            let veth = format!("sbj{}", &name.replace('-', "")[..8.min(name.len())]);
            let veth = format!("{veth}{:x}", bare.seq);
            let veth: String = veth.chars().take(15).collect();
            let netlink = self.netlink().await?.clone();
            t.veth = Some(veth.clone());
            t.netlink = Some(netlink.clone());
            netlink
                .add_veth(&veth, bridge, sp.pid)
                .await
                .map_err(JailError::Network)?;
        }
        let _ = config_pipe.write_all(&[crate::proto::GO]).await;
        drop(config_pipe);
        let deadline = tokio::time::Instant::now() + self.cfg.setup_timeout;
        let ready = async {
            match jail.next_report().await? {
                Some(Report::Ready) => Ok(()),
                Some(Report::Failed {
                    stage,
                    errno,
                    detail,
                }) => Err(JailError::Setup {
                    stage,
                    errno,
                    detail,
                }),
                Some(Report::Exited(_)) | None => Err(JailError::Setup {
                    stage: Stage::Exec,
                    errno: 0,
                    detail: "the sandbox's init ended before the function started".into(),
                }),
            }
        };
        tokio::time::timeout_at(deadline, ready)
            .await
            .map_err(|_| JailError::Setup {
                stage: Stage::Exec,
                errno: 0,
                detail: format!(
                    "the sandbox was not ready within {} ms",
                    self.cfg.setup_timeout.as_millis()
                ),
            })??;
        jail.setup = started.elapsed();
        self.spares.refill_if_empty();
        Ok(jail)
    }
}

/// Writes what of `bytes` fits in the pipe `fd` now, without blocking; how
/// much.
fn write_ahead(fd: &OwnedFd, bytes: &[u8]) -> usize {
    use std::os::fd::AsRawFd;
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl and write on a pipe fd we own, `bytes` readable.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return 0;
        }
        usize::try_from(libc::write(fd, bytes.as_ptr().cast(), bytes.len())).unwrap_or(0)
    }
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: getrandom fills at most 4 bytes of `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), 4, 0) };
    if n == 4 {
        u32::from_ne_bytes(b)
    } else {
        std::process::id() ^ Instant::now().elapsed().subsec_nanos()
    }
}

/// What a sandbox holds on the host, released once its init is gone.
struct Teardown {
    cgroup: Option<Cgroup>,
    veth: Option<String>,
    netlink: Option<Netlink>,
    lease: Option<Lease>,
    live: Arc<Live>,
    /// Dropped last: the spare thread makes up for this sandbox's spare.
    _refill: spare::Refill,
}

impl Teardown {
    /// After init's exit: the cgroup (killing stragglers), the veth pair,
    /// then the address goes back to the pool.
    async fn finish(mut self) {
        if let Some(cg) = self.cgroup.take() {
            let _ = tokio::task::spawn_blocking(move || drop(cg)).await;
        }
        if let (Some(nl), Some(veth)) = (self.netlink.take(), self.veth.take()) {
            if let Err(e) = nl.delete(&veth).await {
                eprintln!("skybridge-jail: {e}");
            }
        }
        drop(self.lease.take());
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        // Whatever `finish` did not get to (no runtime): the cgroup removal
        // kills stragglers; the veth pair dies with the namespace.
        drop(self.cgroup.take());
        drop(self.lease.take());
        self.live.dec();
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The function's process exited or was killed by a signal.
    Exited(Exit),
    /// The deadline passed; everything was killed.
    TimedOut,
    /// The caller's kill signal fired; everything was killed.
    Killed,
    /// The sandbox ended without reporting the function's status.
    Lost,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Finished {
    /// How it ended.
    pub end: End,
    /// The kernel's OOM killer ended a process in the sandbox.
    pub oom_killed: bool,
    /// Captured stdout (at most the cap).
    pub stdout: Vec<u8>,
    /// stdout went past the cap.
    pub stdout_truncated: bool,
    /// Captured stderr.
    pub stderr: Vec<u8>,
    /// stderr went past the cap.
    pub stderr_truncated: bool,
    /// From the input being sent to the end.
    pub duration: Duration,
}

/// A running sandbox whose function waits for its input.
pub struct Jail {
    name: String,
    pid: i32,
    pidfd: Option<AsyncFd<OwnedFd>>,
    stdin: Option<pipe::Sender>,
    stdout: Option<pipe::Receiver>,
    stderr: Option<pipe::Receiver>,
    report: pipe::Receiver,
    report_buf: Vec<u8>,
    address: Option<std::net::Ipv4Addr>,
    marker: Option<String>,
    setup: Duration,
    teardown: Option<Teardown>,
}

impl std::fmt::Debug for Jail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jail")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .field("address", &self.address)
            .finish()
    }
}

/// Keeps the first `cap` bytes of a stream, reading (and dropping) the rest
/// so the writer never blocks.
struct Capture {
    data: Vec<u8>,
    cap: usize,
    truncated: bool,
}

/// Reads `pipe` into `sink` until EOF, or until the stream ends with
/// `marker`: then the exit code it carries.
async fn capture(
    pipe: Option<pipe::Receiver>,
    sink: &mut Capture,
    marker: Option<&str>,
) -> Option<i64> {
    let mut pipe = pipe?;
    let mut tail = crate::marker::Tail::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => {
                let room = sink.cap.saturating_sub(sink.data.len());
                if n > room {
                    sink.truncated = true;
                }
                sink.data.extend_from_slice(&buf[..n.min(room)]);
                if let Some(code) = marker.and_then(|m| tail.push(&buf[..n], m)) {
                    return Some(code);
                }
            }
        }
    }
}

impl Jail {
    /// The sandbox's name (its cgroup's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// init's pid on the host.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Its address, when it has a network.
    pub fn address(&self) -> Option<std::net::Ipv4Addr> {
        self.address
    }

    /// How long set-up took.
    pub fn setup_time(&self) -> Duration {
        self.setup
    }

    /// Whether init has exited (a warm sandbox that died is useless).
    pub fn has_exited(&self) -> bool {
        match &self.pidfd {
            Some(fd) => {
                let mut p = libc::pollfd {
                    fd: std::os::fd::AsRawFd::as_raw_fd(fd.get_ref()),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: poll of one pidfd with no wait.
                unsafe { libc::poll(&mut p, 1, 0) > 0 }
            }
            None => true,
        }
    }

    /// Records who holds the address now (a warm sandbox taken by an
    /// execution).
    pub fn set_holder(&self, holder: &str) {
        if let Some(lease) = self.teardown.as_ref().and_then(|t| t.lease.as_ref()) {
            lease.set_holder(holder);
        }
    }

    async fn next_report(&mut self) -> Result<Option<Report>, JailError> {
        loop {
            let mut reports = Report::take(&mut self.report_buf).map_err(JailError::Unsupported)?;
            if !reports.is_empty() {
                let first = reports.remove(0);
                // Put back what came in the same read.
                let rest: Vec<u8> = reports.iter().flat_map(Report::encode).collect();
                self.report_buf.splice(0..0, rest);
                return Ok(Some(first));
            }
            let mut buf = [0u8; 512];
            match self.report.read(&mut buf).await {
                Ok(0) => return Ok(None),
                Ok(n) => self.report_buf.extend_from_slice(&buf[..n]),
                Err(e) => return Err(io_err("reading the sandbox's report")(e)),
            }
        }
    }

    async fn function_status(&mut self) -> Option<i32> {
        loop {
            match self.next_report().await {
                Ok(Some(Report::Exited(status))) => return Some(status),
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Kills everything in the sandbox now.
    pub fn kill(&self) {
        if let Some(fd) = &self.pidfd {
            let _ = spawn::pidfd_signal(fd.get_ref(), libc::SIGKILL);
        }
    }

    /// Writes `input` to the function's stdin and closes it, collects stdout
    /// and stderr (each capped at `max_output` bytes) until the function and
    /// everything it started are gone, or until `deadline` or `kill`. The
    /// sandbox is torn down afterwards, on every path.
    pub async fn run(
        mut self,
        input: &[u8],
        deadline: tokio::time::Instant,
        max_output: usize,
        kill: impl std::future::Future<Output = ()>,
    ) -> Finished {
        let started = Instant::now();
        let marker = self.marker.take();
        let marker = marker.as_deref();
        // Room for the marker line past the cap; the cap is applied again
        // once it is stripped.
        let slack = marker.map_or(0, crate::marker::slack);
        let mut out = Capture {
            data: Vec::new(),
            cap: max_output + slack,
            truncated: false,
        };
        let mut err = Capture {
            data: Vec::new(),
            cap: max_output + slack,
            truncated: false,
        };
        let stdin = self.stdin.take();
        let (stdout, stderr) = (self.stdout.take(), self.stderr.take());
        let end = {
            let write = async move {
                if let Some(mut s) = stdin {
                    // A function that exits without reading its input closes
                    // the pipe: not an error of the run.
                    let _ = s.write_all(input).await;
                }
                // The output decides when the run is over, not the input.
                std::future::pending::<()>().await
            };
            let all = async {
                let outputs = async {
                    tokio::join!(
                        capture(stdout, &mut out, marker),
                        capture(stderr, &mut err, marker)
                    )
                };
                let marked = tokio::select! {
                    (o, e) = outputs => o.zip(e).map(|(code, _)| code),
                    () = write => None,
                };
                match marked {
                    // Both streams are complete and the code is known: the
                    // process's exit need not travel through init.
                    Some(code) => Some(Exit::Code(i32::try_from(code).unwrap_or(-1))),
                    None => self.function_status().await.map(Exit::from_status),
                }
            };
            tokio::select! {
                r = tokio::time::timeout_at(deadline, all) => match r {
                    Ok(Some(exit)) => End::Exited(exit),
                    Ok(None) => End::Lost,
                    Err(_) => End::TimedOut,
                },
                () = kill => End::Killed,
            }
        };
        if let Some(m) = marker {
            crate::marker::strip_and_cap(&mut out.data, &mut out.truncated, m, max_output);
            crate::marker::strip_and_cap(&mut err.data, &mut err.truncated, m, max_output);
        }
        let duration = started.elapsed();
        if matches!(end, End::TimedOut | End::Killed) {
            self.kill();
        }
        let oom_killed = self
            .teardown
            .as_ref()
            .and_then(|t| t.cgroup.as_ref())
            .is_some_and(|cg| cg.oom_kills() > 0);
        Finished {
            end,
            oom_killed,
            stdout: out.data,
            stdout_truncated: out.truncated,
            stderr: err.data,
            stderr_truncated: err.truncated,
            duration,
        }
    }
}

impl Drop for Jail {
    fn drop(&mut self) {
        let (Some(pidfd), Some(teardown)) = (self.pidfd.take(), self.teardown.take()) else {
            self.kill();
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    // Killed here rather than in `drop`: the answer of the
                    // run that just ended goes out without waiting for it (a
                    // task dropped unrun drops `teardown`, whose cgroup
                    // removal kills whatever is left).
                    let _ = spawn::pidfd_signal(pidfd.get_ref(), libc::SIGKILL);
                    // init's exit means its namespace is empty: the kernel
                    // killed and reaped everything in it first.
                    let _ = tokio::time::timeout(Duration::from_secs(10), pidfd.readable()).await;
                    let _ = spawn::try_reap(pidfd.get_ref());
                    teardown.finish().await;
                });
            }
            Err(_) => {
                let fd = pidfd.into_inner();
                let _ = spawn::pidfd_signal(&fd, libc::SIGKILL);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        if matches!(spawn::try_reap(&fd), Ok(Some(_)) | Err(_)) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    drop(teardown);
                });
            }
        }
    }
}
