//! `skybridge-jail-init`: pid 1 of every Linux sandbox.
//!
//! The server starts it in new pid, mount, network, ipc and uts namespaces
//! (with a network, the server moves the sandbox's veth into that network
//! namespace) with five fds: the function's stdin, stdout and stderr (0–2), the
//! config pipe (3) and a report pipe (4); its arguments are the empty host
//! directory its root goes on and the uid and gid of the function. Steps 1–3
//! need no configuration, so a spare init has them done:
//!
//! 1. dies with the server (`PR_SET_PDEATHSIG`); mounts a tmpfs root with
//!    `/dev/{null,zero,random,urandom}`, its own `/proc` (`/proc/sys`
//!    read-only) and `/etc/{passwd,group}`; keeps a detached clone of the
//!    host's mount tree (an fd), `pivot_root`s into the new root and
//!    detaches the host's tree; brings `lo` up;
//! 2. waits for [`IN_CGROUP`], enters a new cgroup namespace and forks pid
//!    2, which lowers its rlimits, drops every capability, becomes the
//!    unprivileged user, sets `no_new_privs`, installs the seccomp filter and
//!    waits for the configuration;
//! 3. reads its [`InitConfig`] and finishes the root: the function's binary
//!    mounted read-only at `/function` from the host clone, a size-capped
//!    `/tmp`, `/etc/hosts` (and with a network `/etc/resolv.conf` and the CA
//!    certificates); makes it read-only; sets the host name;
//! 4. waits for [`GO`] (meanwhile the server set the cgroup's limits and put
//!    the veth in place), configures `eth0` if the sandbox has a network and
//!    hands pid 2 the configuration: it sets its last rlimits and execs
//!    `/function`;
//! 5. reports [`Report::Ready`], reaps, and when pid 2 exits reports its
//!    status and exits itself: the kernel then kills whatever the function
//!    left running in the namespace.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::proto::{
    InitConfig, NetConfig, Report, Stage, CONFIG_FD, GO, IN_CGROUP, PROGRAM_PATH, REPORT_FD,
};

type Step<T> = Result<T, (Stage, i32, String)>;

fn os(stage: Stage, what: impl Into<String>) -> (Stage, i32, String) {
    let e = io::Error::last_os_error();
    let what = what.into();
    (stage, e.raw_os_error().unwrap_or(0), format!("{what}: {e}"))
}

fn check(r: libc::c_int, stage: Stage, what: impl Into<String>) -> Step<()> {
    if r < 0 {
        Err(os(stage, what))
    } else {
        Ok(())
    }
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

fn report(r: &Report) {
    // SAFETY: REPORT_FD is ours; ManuallyDrop keeps it open.
    let mut f = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(REPORT_FD) });
    let _ = f.write_all(&r.encode());
}

/// Runs init; never returns.
pub fn main() -> ! {
    // SAFETY: prctl and sigprocmask on this single-threaded process.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        // The server blocked every signal around the clone.
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        // Nothing in the sandbox may read init's memory or /proc/1/*.
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    let code = match run() {
        Ok(status) => {
            report(&Report::Exited(status));
            0
        }
        Err((stage, errno, detail)) => {
            report(&Report::Failed {
                stage,
                errno,
                detail,
            });
            120
        }
    };
    // SAFETY: ends init (and with it the namespace) at once.
    unsafe { libc::_exit(code) }
}

/// The config pipe: [`IN_CGROUP`], the framed configuration, then [`GO`].
fn config_pipe() -> File {
    // SAFETY: CONFIG_FD is ours; this is its only owner.
    unsafe { File::from_raw_fd(CONFIG_FD) }
}

/// The server went away (or gave up on this sandbox): nothing to report to.
fn abandoned() -> ! {
    // SAFETY: ends init, and with it the namespace.
    unsafe { libc::_exit(121) }
}

/// Waits for the one byte `expected`; anything else ends init.
fn expect(pipe: &mut File, expected: u8) {
    let mut b = [0u8; 1];
    if pipe.read_exact(&mut b).is_err() || b[0] != expected {
        abandoned()
    }
}

/// Reads one framed configuration: its bytes (pid 2 gets them as they
/// are) and what they say.
fn read_config(pipe: &mut File) -> Step<(Vec<u8>, InitConfig)> {
    let Some(bytes) = read_frame(pipe) else {
        abandoned()
    };
    let bytes = bytes?;
    let cfg = InitConfig::decode(&bytes).map_err(|e| (Stage::Config, 0, e))?;
    Ok((bytes, cfg))
}

/// One configuration as framed by [`crate::proto::frame`]; `None` when the
/// pipe ends before it starts (the sandbox was given up).
fn read_frame(pipe: &mut File) -> Option<Step<Vec<u8>>> {
    let mut len = [0u8; 4];
    pipe.read_exact(&mut len).ok()?;
    let mut bytes = vec![0u8; u32::from_le_bytes(len) as usize];
    Some(
        pipe.read_exact(&mut bytes)
            .map(|()| bytes)
            .map_err(|e| (Stage::Config, e.raw_os_error().unwrap_or(0), e.to_string())),
    )
}

/// init's arguments: the empty host directory the root goes on, and the
/// user and group the function runs as.
struct Args {
    root: CString,
    uid: u32,
    gid: u32,
}

impl Args {
    fn parse() -> Step<Self> {
        let bad = || {
            (
                Stage::Config,
                0,
                "usage: skybridge-jail-init ROOT UID GID".to_string(),
            )
        };
        let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        let [root, uid, gid] = args.as_slice() else {
            return Err(bad());
        };
        let num = |s: &std::ffi::OsString| s.to_str().and_then(|s| s.parse::<u32>().ok());
        Ok(Self {
            root: CString::new(root.as_bytes()).map_err(|_| bad())?,
            uid: num(uid).ok_or_else(bad)?,
            gid: num(gid).ok_or_else(bad)?,
        })
    }
}

fn run() -> Step<i32> {
    let args = Args::parse()?;
    // Everything no configuration changes happens before it arrives, so a
    // spare init has it done: the root's fixed half, lo, and pid 2, which
    // drops every privilege and waits to exec the function.
    prepare_root(&args)?;
    let tree = host_tree()?;
    enter_root()?;
    network(None)?;
    let mut pipe = config_pipe();
    expect(&mut pipe, IN_CGROUP);
    // SAFETY: unshare on this single-threaded process, now in its cgroup;
    // pid 2 is born into the new namespace.
    check(
        unsafe { libc::unshare(libc::CLONE_NEWCGROUP) },
        Stage::CgroupNs,
        "unshare(CLONE_NEWCGROUP)",
    )?;
    let pid2 = FunctionProcess::start(&args, &tree)?;
    let (bytes, cfg) = read_config(&mut pipe)?;
    // A spare was started at a low priority; its sandbox is wanted now (the
    // server raised init's already).
    // SAFETY: setpriority of pid 2 (init is still root).
    unsafe { libc::setpriority(libc::PRIO_PROCESS, pid2.pid as libc::id_t, 0) };
    finish_root(&cfg, &tree)?;
    let host = cfg.hostname.as_bytes();
    // SAFETY: sethostname reads `host.len()` bytes.
    check(
        unsafe { libc::sethostname(host.as_ptr().cast(), host.len()) },
        Stage::Hostname,
        "sethostname",
    )?;
    expect(&mut pipe, GO);
    drop(pipe);
    if let Some(net) = &cfg.net {
        network(Some(net))?;
    }
    let pid = pid2.exec(&bytes)?;
    report(&Report::Ready);
    // init holds no end of the function's pipes: they reach EOF when the
    // function (and anything it started) is gone.
    // SAFETY: closing our stdio.
    unsafe {
        libc::close(0);
        libc::close(1);
        libc::close(2);
    }
    loop {
        let mut status = 0;
        // SAFETY: reaps any child (orphans are re-parented to us).
        let r = unsafe { libc::wait4(-1, &mut status, libc::__WALL, std::ptr::null_mut()) };
        if r == pid {
            return Ok(status);
        }
        if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(os(Stage::Fork, "wait4"));
        }
    }
}

/// pid 2 before it becomes the function: started (in the sandbox's cgroup
/// and cgroup namespace) before the configuration, it lowers its
/// privileges and installs the seccomp filter at once (the filter alone,
/// compiled by the kernel, costs ~150 µs), then waits for the
/// configuration to exec the function.
struct FunctionProcess {
    pid: libc::pid_t,
    /// The configuration goes here.
    request: File,
    /// EOF once its `execve` succeeded; a [`Report::Failed`] if a step
    /// failed.
    status: File,
}

fn pipe_pair() -> Step<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds, each owned once below.
    check(
        unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) },
        Stage::Fork,
        "pipe2",
    )?;
    // SAFETY: fresh fds from pipe2.
    Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

impl FunctionProcess {
    fn start(args: &Args, tree: &OwnedFd) -> Step<Self> {
        let filter = super::seccomp::filter().map_err(|e| (Stage::Seccomp, 0, e))?;
        let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse::<libc::c_ulong>().ok())
            .unwrap_or(63);
        let (request_r, request_w) = pipe_pair()?;
        let (status_r, status_w) = pipe_pair()?;
        // SAFETY: fork of this single-threaded process.
        match unsafe { libc::fork() } {
            -1 => Err(os(Stage::Fork, "fork")),
            0 => {
                // Not the host's tree: pid 2 never reaches a host path.
                // SAFETY: closing our copy of init's fd.
                unsafe { libc::close(tree.as_raw_fd()) };
                drop((request_w, status_r));
                let failed = function_process(args, &filter, last_cap, request_r);
                let mut status = status_w;
                let _ = status.write_all(
                    &Report::Failed {
                        stage: failed.0,
                        errno: failed.1,
                        detail: failed.2,
                    }
                    .encode(),
                );
                // SAFETY: ends pid 2; init reads the failure.
                unsafe { libc::_exit(127) }
            }
            pid => Ok(Self {
                pid,
                request: request_w,
                status: status_r,
            }),
        }
    }

    /// Sends the configuration and returns once the function's `execve`
    /// succeeded (its pid) or a step failed (the failure).
    fn exec(mut self, config: &[u8]) -> Step<libc::pid_t> {
        // A pid 2 that failed already does not read: its failure follows.
        if let Ok(framed) = crate::proto::frame(config) {
            let _ = self.request.write_all(&framed);
        }
        drop(self.request);
        let mut buf = Vec::new();
        let _ = self.status.read_to_end(&mut buf);
        if buf.is_empty() {
            return Ok(self.pid);
        }
        let mut status = 0;
        // SAFETY: reaps the failed child.
        unsafe { libc::waitpid(self.pid, &mut status, libc::__WALL) };
        match Report::take(&mut buf)
            .ok()
            .and_then(|r| r.into_iter().next())
        {
            Some(Report::Failed {
                stage,
                errno,
                detail,
            }) => Err((stage, errno, detail)),
            _ => Err((Stage::Exec, 0, "the function's process failed".into())),
        }
    }
}

/// pid 2: lowers its privileges, installs the seccomp filter, waits for the
/// configuration and execs the function; returns only the step that
/// failed.
fn function_process(
    args: &Args,
    filter: &seccompiler::BpfProgram,
    last_cap: libc::c_ulong,
    mut request: File,
) -> (Stage, i32, String) {
    let fail = |stage: Stage, what: &str| os(stage, what);
    // SAFETY: plain system calls on this process.
    unsafe {
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::setrlimit(libc::RLIMIT_CORE, &no_core) != 0 {
            return fail(Stage::Privileges, "setrlimit");
        }
        for cap in 0..=last_cap {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0
                && *libc::__errno_location() != libc::EINVAL
            {
                return fail(Stage::Privileges, "dropping the capability bounding set");
            }
        }
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return fail(Stage::Privileges, "setgroups");
        }
        if libc::setresgid(args.gid, args.gid, args.gid) != 0 {
            return fail(Stage::Privileges, "setresgid");
        }
        if libc::setresuid(args.uid, args.uid, args.uid) != 0 {
            return fail(Stage::Privileges, "setresuid");
        }
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return fail(Stage::Privileges, "no_new_privs");
        }
        let prog = libc::sock_fprog {
            len: filter.len() as libc::c_ushort,
            filter: filter.as_ptr() as *mut libc::sock_filter,
        };
        if libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        ) != 0
        {
            return fail(Stage::Privileges, "installing the seccomp filter");
        }
    }
    let bytes = match read_frame(&mut request) {
        Some(Ok(bytes)) => bytes,
        Some(Err(failed)) => return failed,
        // SAFETY: ends pid 2 quietly: the sandbox was given up, init too.
        None => unsafe { libc::_exit(0) },
    };
    drop(request);
    let cfg = match InitConfig::decode(&bytes) {
        Ok(cfg) => cfg,
        Err(e) => return (Stage::Config, 0, e),
    };
    let mut argv = vec![cstr(&cfg.argv0)];
    argv.extend(cfg.args.iter().map(|a| cstr(a)));
    let env: Vec<CString> = cfg
        .env
        .iter()
        .map(|(k, v)| cstr(&format!("{k}={v}")))
        .collect();
    let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
        v.iter()
            .map(|c| c.as_ptr())
            .chain([std::ptr::null()])
            .collect()
    };
    let (argv_p, env_p) = (ptrs(&argv), ptrs(&env));
    // SAFETY: plain system calls; the pointers outlive the execve.
    unsafe {
        for (resource, value) in [
            (libc::RLIMIT_NOFILE, cfg.nofile),
            (libc::RLIMIT_FSIZE, cfg.fsize),
        ] {
            let rl = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            if libc::setrlimit(resource, &rl) != 0 {
                return fail(Stage::Privileges, "setrlimit");
            }
        }
        // Only 0-2 survive the exec: the config and report pipes, the
        // status pipe (its EOF tells init the exec succeeded), anything
        // else.
        if libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) != 0
        {
            return fail(Stage::Privileges, "close_range");
        }
        if libc::chdir(c"/tmp".as_ptr()) != 0 {
            return fail(Stage::Privileges, "chdir /tmp");
        }
        libc::execve(cstr(PROGRAM_PATH).as_ptr(), argv_p.as_ptr(), env_p.as_ptr());
    }
    fail(Stage::Exec, "execve /function")
}

fn mount(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Step<()> {
    let p = |c: Option<&CStr>| c.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: mount(2) with NUL-terminated strings or nulls.
    let r = unsafe { libc::mount(p(src), target.as_ptr(), p(fstype), flags, p(data).cast()) };
    check(
        r,
        Stage::Mounts,
        format!(
            "mount {} on {}",
            src.map_or("none".into(), |s| s.to_string_lossy()),
            target.to_string_lossy()
        ),
    )
}

/// Binds `src` on `target` (an existing file or directory) with `flags`
/// (`MS_BIND` alone ignores them: a second, remounting call sets them).
fn bind(src: &CStr, target: &CStr, flags: libc::c_ulong) -> Step<()> {
    mount(Some(src), target, None, libc::MS_BIND | libc::MS_REC, None)?;
    remount_bind(target, flags)
}

/// Sets `flags` on the bind mount at `target`.
fn remount_bind(target: &CStr, flags: libc::c_ulong) -> Step<()> {
    mount(
        None,
        target,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | flags,
        None,
    )
}

fn touch(path: &CStr, mode: libc::mode_t) -> Step<()> {
    // SAFETY: open/close of a relative path.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
            mode,
        )
    };
    check(
        fd,
        Stage::Mounts,
        format!("creating {}", path.to_string_lossy()),
    )?;
    // SAFETY: fd from open.
    unsafe { libc::close(fd) };
    Ok(())
}

fn mkdir(path: &CStr, mode: libc::mode_t) -> Step<()> {
    // SAFETY: mkdir of a relative path.
    check(
        unsafe { libc::mkdir(path.as_ptr(), mode) },
        Stage::Mounts,
        format!("mkdir {}", path.to_string_lossy()),
    )
}

fn write_file(path: &str, text: &str) -> Step<()> {
    std::fs::write(path, text).map_err(|e| {
        (
            Stage::Mounts,
            e.raw_os_error().unwrap_or(0),
            format!("writing {path}: {e}"),
        )
    })
}

const NOSUID_NODEV: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV;

/// The part of the root no configuration changes, on `args.root` (an empty
/// host directory; this mount namespace is ours): the tmpfs, `/dev`,
/// `/proc`, `/etc/{passwd,group}`. Leaves the working directory in it.
fn prepare_root(args: &Args) -> Step<()> {
    let root = args.root.as_c_str();
    // Nothing below propagates back to the host.
    mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    mount(
        Some(c"tmpfs"),
        root,
        Some(c"tmpfs"),
        libc::MS_NOSUID,
        Some(c"size=1m,nr_inodes=64,mode=0755"),
    )?;
    // SAFETY: chdir into the new root; every path below is relative to it.
    check(
        unsafe { libc::chdir(root.as_ptr()) },
        Stage::Mounts,
        "chdir root",
    )?;
    for dir in [c"dev", c"proc", c"tmp", c"etc"] {
        mkdir(dir, 0o755)?;
    }
    touch(c"function", 0o555)?;
    // The four devices, made here (the root is not `nodev` so that they
    // open; the function can make none: it has no CAP_MKNOD, and the root
    // ends read-only).
    for (path, minor) in [
        (c"dev/null", 3),
        (c"dev/zero", 5),
        (c"dev/random", 8),
        (c"dev/urandom", 9),
    ] {
        // SAFETY: mknod of a relative path; umask may narrow the mode, so
        // chmod sets it.
        check(
            unsafe {
                libc::mknod(
                    path.as_ptr(),
                    libc::S_IFCHR | 0o666,
                    libc::makedev(1, minor),
                )
            },
            Stage::Mounts,
            format!("mknod {}", path.to_string_lossy()),
        )?;
        // SAFETY: chmod of the node just made.
        check(
            unsafe { libc::chmod(path.as_ptr(), 0o666) },
            Stage::Mounts,
            format!("chmod {}", path.to_string_lossy()),
        )?;
    }
    for (target, link) in [
        (c"/proc/self/fd", c"dev/fd"),
        (c"/proc/self/fd/0", c"dev/stdin"),
        (c"/proc/self/fd/1", c"dev/stdout"),
        (c"/proc/self/fd/2", c"dev/stderr"),
    ] {
        // SAFETY: symlink with NUL-terminated paths.
        check(
            unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) },
            Stage::Mounts,
            "symlink in /dev",
        )?;
    }
    // Our own /proc: this pid namespace's processes only, and of those only
    // the ones the function's user may see (not init).
    let proc_flags = NOSUID_NODEV | libc::MS_NOEXEC;
    mount(
        Some(c"proc"),
        c"proc",
        Some(c"proc"),
        proc_flags,
        Some(c"hidepid=invisible"),
    )
    .or_else(|_| {
        mount(
            Some(c"proc"),
            c"proc",
            Some(c"proc"),
            proc_flags,
            Some(c"hidepid=2"),
        )
    })?;
    bind(c"proc/sys", c"proc/sys", libc::MS_RDONLY | proc_flags)?;
    write_file(
        "etc/passwd",
        &format!(
            "root:x:0:0:root:/:/sbin/nologin\nnobody:x:{}:{}:nobody:/tmp:/sbin/nologin\n",
            args.uid, args.gid
        ),
    )?;
    write_file(
        "etc/group",
        &format!("root:x:0:\nnogroup:x:{}:\n", args.gid),
    )
}

/// A copy of the host's whole mount tree, attached nowhere (an fd): after
/// the `pivot_root` it still reaches host files, so that the function's
/// binary can be mounted once the configuration names it. (A bind mount
/// from the detached old root is refused; one from this clone is not.)
fn host_tree() -> Step<OwnedFd> {
    // SAFETY: open_tree of "/" returns a new fd we own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/".as_ptr(),
            libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as libc::c_uint,
        )
    } as libc::c_int;
    check(fd, Stage::Mounts, "cloning the host's mount tree")?;
    // SAFETY: a fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Swaps the roots (the working directory is the new one) and detaches the
/// host's tree from this namespace. Done before the configuration: the
/// detach waits for an RCU grace period.
fn enter_root() -> Step<()> {
    // SAFETY: pivot_root(".", ".") stacks the old root on the new one.
    check(
        unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as libc::c_int },
        Stage::Mounts,
        "pivot_root",
    )?;
    // SAFETY: detaches the old root stacked on ".".
    check(
        unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) },
        Stage::Mounts,
        "detaching the host's root",
    )?;
    // SAFETY: chdir to the new root.
    check(
        unsafe { libc::chdir(c"/".as_ptr()) },
        Stage::Mounts,
        "chdir /",
    )
}

/// `move_mount` from an fd (not in the libc crate).
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// Mounts the host's `host_path` (through `tree`) on `target` with `flags`.
fn bind_host(tree: &OwnedFd, host_path: &Path, target: &CStr, flags: libc::c_ulong) -> Step<()> {
    let what = || {
        format!(
            "mount {} on {}",
            host_path.display(),
            target.to_string_lossy()
        )
    };
    let rel = host_path.strip_prefix("/").unwrap_or(host_path);
    let rel = CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| (Stage::Mounts, 0, format!("{}: path holds NUL", what())))?;
    // SAFETY: open_tree relative to the tree's fd; a new fd we own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            tree.as_raw_fd(),
            rel.as_ptr(),
            libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC,
        )
    } as libc::c_int;
    check(fd, Stage::Mounts, what())?;
    // SAFETY: a fresh fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: move_mount of that mount onto `target`.
    check(
        unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                fd.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            )
        } as libc::c_int,
        Stage::Mounts,
        what(),
    )?;
    remount_bind(target, flags)
}

/// The rest of the root, from `cfg` (the working directory is the root,
/// entered already): the function's binary (through `tree`), `/tmp`,
/// `/etc/hosts` and, with a network, `/etc/resolv.conf` and the CA
/// certificates; then the root is made read-only.
fn finish_root(cfg: &InitConfig, tree: &OwnedFd) -> Step<()> {
    bind_host(
        tree,
        &cfg.program,
        c"function",
        libc::MS_RDONLY | NOSUID_NODEV,
    )?;
    let tmp_opts = cstr(&format!(
        "size={},nr_inodes={},mode=1777",
        cfg.tmp_bytes, cfg.tmp_inodes
    ));
    mount(
        Some(c"tmpfs"),
        c"tmp",
        Some(c"tmpfs"),
        NOSUID_NODEV,
        Some(&tmp_opts),
    )?;
    let addr = cfg
        .net
        .as_ref()
        .map_or("127.0.1.1".to_string(), |n| n.addr.to_string());
    write_file(
        "etc/hosts",
        &format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost\n{addr}\t{}\n",
            cfg.hostname
        ),
    )?;
    if let Some(net) = &cfg.net {
        let servers: String = net
            .nameservers
            .iter()
            .map(|ns| format!("nameserver {ns}\n"))
            .collect();
        write_file("etc/resolv.conf", &servers)?;
        // CA certificates, for functions that call HTTPS services (a host
        // without them has none to give).
        let certs = Path::new("/etc/ssl/certs");
        if std::fs::create_dir_all("etc/ssl/certs").is_ok() {
            match bind_host(
                tree,
                certs,
                c"etc/ssl/certs",
                libc::MS_RDONLY | NOSUID_NODEV | libc::MS_NOEXEC,
            ) {
                Err((_, libc::ENOENT, _)) => {}
                other => other?,
            }
        }
    }
    mount(
        None,
        c"/",
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID,
        None,
    )
}

/// Flags of an interface via `SIOCGIFFLAGS`/`SIOCSIFFLAGS`.
fn if_up(sock: libc::c_int, name: &[u8]) -> Step<()> {
    // SAFETY: ifreq is plain data; the name fits (checked by callers: "lo", "eth0").
    unsafe {
        let mut ifr: libc::ifreq = std::mem::zeroed();
        std::ptr::copy_nonoverlapping(name.as_ptr(), ifr.ifr_name.as_mut_ptr().cast(), name.len());
        let what = || format!("bringing {} up", String::from_utf8_lossy(name));
        check(
            libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut ifr),
            Stage::Network,
            what(),
        )?;
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        check(
            libc::ioctl(sock, libc::SIOCSIFFLAGS, &ifr),
            Stage::Network,
            what(),
        )
    }
}

fn sockaddr(ip: std::net::Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size; reinterpreting is
    // how the ioctl API takes addresses.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// `struct rtentry` from `<net/route.h>` (not in the libc crate for glibc).
#[repr(C)]
struct RtEntry {
    rt_pad1: libc::c_ulong,
    rt_dst: libc::sockaddr,
    rt_gateway: libc::sockaddr,
    rt_genmask: libc::sockaddr,
    rt_flags: libc::c_ushort,
    rt_pad2: libc::c_short,
    rt_pad3: libc::c_ulong,
    rt_tos: libc::c_uchar,
    rt_class: libc::c_uchar,
    rt_pad4: [libc::c_short; 3],
    rt_metric: libc::c_short,
    rt_dev: *mut libc::c_char,
    rt_mtu: libc::c_ulong,
    rt_window: libc::c_ulong,
    rt_irtt: libc::c_ushort,
}

/// Without `net`: brings `lo` up. With it: configures `eth0` (the veth the
/// server moved in) and the default route.
fn network(net: Option<&NetConfig>) -> Step<()> {
    // SAFETY: a socket for interface ioctls.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(sock, Stage::Network, "socket")?;
    let result = (|| {
        let Some(net) = net else {
            return if_up(sock, b"lo");
        };
        // SAFETY: ifreq/rtentry are plain data filled field by field.
        unsafe {
            let mut ifr: libc::ifreq = std::mem::zeroed();
            std::ptr::copy_nonoverlapping(b"eth0".as_ptr(), ifr.ifr_name.as_mut_ptr().cast(), 4);
            ifr.ifr_ifru.ifru_addr = sockaddr(net.addr);
            check(
                libc::ioctl(sock, libc::SIOCSIFADDR, &ifr),
                Stage::Network,
                "setting eth0's address",
            )?;
            let mask = if net.prefix_len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(net.prefix_len))
            };
            ifr.ifr_ifru.ifru_netmask = sockaddr(mask.into());
            check(
                libc::ioctl(sock, libc::SIOCSIFNETMASK, &ifr),
                Stage::Network,
                "setting eth0's netmask",
            )?;
            if_up(sock, b"eth0")?;
            let mut rt: RtEntry = std::mem::zeroed();
            rt.rt_dst = sockaddr(std::net::Ipv4Addr::UNSPECIFIED);
            rt.rt_genmask = sockaddr(std::net::Ipv4Addr::UNSPECIFIED);
            rt.rt_gateway = sockaddr(net.gateway);
            rt.rt_flags = libc::RTF_UP | libc::RTF_GATEWAY;
            let mut dev = *b"eth0\0";
            rt.rt_dev = dev.as_mut_ptr().cast();
            check(
                libc::ioctl(sock, libc::SIOCADDRT, &rt),
                Stage::Network,
                "adding the default route",
            )?;
        }
        Ok(())
    })();
    // SAFETY: our socket.
    unsafe { libc::close(sock) };
    result
}
