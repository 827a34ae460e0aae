//! `skybridge-jail-init`: pid 1 of every Linux sandbox.
//!
//! The server starts it in new pid, mount, network, ipc and uts namespaces
//! with five fds: the function's stdin, stdout and stderr (0–2), its
//! [`InitConfig`] (3, closed by the server once the sandbox's cgroup and
//! network are in place: the signal to go), and a report pipe (4). It then:
//!
//! 1. dies with the server (`PR_SET_PDEATHSIG`), reads the config, enters a
//!    new cgroup namespace;
//! 2. builds the root: a tmpfs holding only the function's binary
//!    (read-only), `/dev/{null,zero,random,urandom}`, a size-capped `/tmp`,
//!    its own `/proc` (`/proc/sys` read-only) and a few `/etc` files;
//!    `pivot_root`s into it and detaches the host's tree; makes it read-only;
//! 3. sets the host name, brings `lo` up and configures `eth0` if the
//!    sandbox has a network;
//! 4. forks the function's process (pid 2), which lowers its rlimits, drops
//!    every capability, becomes an unprivileged user, sets `no_new_privs`,
//!    installs the seccomp filter and execs `/function`;
//! 5. reports [`Report::Ready`], reaps, and when pid 2 exits reports its
//!    status and exits itself: the kernel then kills whatever the function
//!    left running in the namespace.
//!
//! init is a fresh single-threaded process, so it may allocate; pid 2 after
//! the fork does too (it is single-threaded as well).

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;

use crate::proto::{InitConfig, NetConfig, Report, Stage, CONFIG_FD, PROGRAM_PATH, REPORT_FD};

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

fn read_config() -> Step<InitConfig> {
    // SAFETY: CONFIG_FD is ours, read once, closed on drop.
    let mut f = unsafe { File::from_raw_fd(CONFIG_FD) };
    let mut bytes = Vec::with_capacity(4096);
    f.read_to_end(&mut bytes)
        .map_err(|e| (Stage::Config, e.raw_os_error().unwrap_or(0), e.to_string()))?;
    if bytes.is_empty() {
        // The server went away before sending anything.
        // SAFETY: nothing to report to.
        unsafe { libc::_exit(121) }
    }
    InitConfig::decode(&bytes).map_err(|e| (Stage::Config, 0, e))
}

fn run() -> Step<i32> {
    let cfg = read_config()?;
    // SAFETY: unshare on this single-threaded process.
    check(
        unsafe { libc::unshare(libc::CLONE_NEWCGROUP) },
        Stage::CgroupNs,
        "unshare(CLONE_NEWCGROUP)",
    )?;
    build_root(&cfg)?;
    let host = cfg.hostname.as_bytes();
    // SAFETY: sethostname reads `host.len()` bytes.
    check(
        unsafe { libc::sethostname(host.as_ptr().cast(), host.len()) },
        Stage::Hostname,
        "sethostname",
    )?;
    network(cfg.net.as_ref())?;
    let filters = super::seccomp::filters().map_err(|e| (Stage::Seccomp, 0, e))?;
    let program = cstr(PROGRAM_PATH);
    let mut argv_c = vec![cstr(&cfg.argv0)];
    argv_c.extend(cfg.args.iter().map(|a| cstr(a)));
    let env_c: Vec<CString> = cfg
        .env
        .iter()
        .map(|(k, v)| cstr(&format!("{k}={v}")))
        .collect();
    let argv: Vec<*const libc::c_char> = argv_c
        .iter()
        .map(|c| c.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    let envp: Vec<*const libc::c_char> = env_c
        .iter()
        .map(|c| c.as_ptr())
        .chain([std::ptr::null()])
        .collect();

    let mut errpipe = [0; 2];
    // SAFETY: pipe2 fills two fds.
    check(
        unsafe { libc::pipe2(errpipe.as_mut_ptr(), libc::O_CLOEXEC) },
        Stage::Fork,
        "pipe2",
    )?;
    // SAFETY: init is single-threaded, so fork is safe; the child only runs
    // `function_process`, which ends in execve or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(os(Stage::Fork, "fork"));
    }
    if pid == 0 {
        // SAFETY: closes our copy of the read end.
        unsafe { libc::close(errpipe[0]) };
        let (stage, errno, detail) = function_process(&cfg, &filters, &program, &argv, &envp);
        let msg = Report::Failed {
            stage,
            errno,
            detail,
        }
        .encode();
        // SAFETY: writes the failure for init to relay, then exits.
        unsafe {
            libc::write(errpipe[1], msg.as_ptr().cast(), msg.len());
            libc::_exit(127)
        }
    }
    // SAFETY: close the write end; reading to EOF then tells whether the
    // function's execve succeeded (the pipe is close-on-exec).
    unsafe { libc::close(errpipe[1]) };
    let mut failure = Vec::new();
    // SAFETY: the read end is ours.
    let _ = unsafe { File::from_raw_fd(errpipe[0]) }.read_to_end(&mut failure);
    if let Ok(reports) = Report::take(&mut failure) {
        if let Some(Report::Failed {
            stage,
            errno,
            detail,
        }) = reports.into_iter().next()
        {
            return Err((stage, errno, detail));
        }
    }
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

/// pid 2: lowers privileges and execs the function; returns only on failure.
fn function_process(
    cfg: &InitConfig,
    filters: &[seccompiler::BpfProgram; 2],
    program: &CStr,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> (Stage, i32, String) {
    let fail = |what: &str| os(Stage::Privileges, what);
    // SAFETY: plain system calls on this single-threaded process.
    unsafe {
        let limits = [
            (libc::RLIMIT_CORE, 0),
            (libc::RLIMIT_NOFILE, cfg.nofile),
            (libc::RLIMIT_FSIZE, cfg.fsize),
        ];
        for (resource, value) in limits {
            let rl = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            if libc::setrlimit(resource, &rl) != 0 {
                return fail("setrlimit");
            }
        }
        let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse::<libc::c_ulong>().ok())
            .unwrap_or(63);
        for cap in 0..=last_cap {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0
                && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
            {
                return fail("dropping the capability bounding set");
            }
        }
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return fail("setgroups");
        }
        if libc::setresgid(cfg.gid, cfg.gid, cfg.gid) != 0 {
            return fail("setresgid");
        }
        if libc::setresuid(cfg.uid, cfg.uid, cfg.uid) != 0 {
            return fail("setresuid");
        }
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return fail("no_new_privs");
        }
        // Only 0-2 survive the exec: the config fd is closed, the report
        // and error pipes are close-on-exec; anything else too.
        if libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) != 0
        {
            return fail("close_range");
        }
        if libc::chdir(c"/tmp".as_ptr()) != 0 {
            return fail("chdir /tmp");
        }
        for f in filters {
            if let Err(e) = seccompiler::apply_filter(f) {
                return (
                    Stage::Privileges,
                    0,
                    format!("installing the seccomp filter: {e}"),
                );
            }
        }
        libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr());
    }
    os(Stage::Exec, format!("execve {PROGRAM_PATH}"))
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

fn build_root(cfg: &InitConfig) -> Step<()> {
    const NOSUID_NODEV: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV;
    // Nothing below propagates back to the host.
    mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    let root = CString::new(cfg.root.as_os_str().as_bytes())
        .map_err(|_| (Stage::Mounts, 0, "root path holds NUL".to_string()))?;
    mount(
        Some(c"tmpfs"),
        &root,
        Some(c"tmpfs"),
        NOSUID_NODEV,
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
    let program = CString::new(cfg.program.as_os_str().as_bytes())
        .map_err(|_| (Stage::Mounts, 0, "program path holds NUL".to_string()))?;
    bind(&program, c"function", libc::MS_RDONLY | NOSUID_NODEV)?;
    for (host, inside) in [
        (c"/dev/null", c"dev/null"),
        (c"/dev/zero", c"dev/zero"),
        (c"/dev/random", c"dev/random"),
        (c"/dev/urandom", c"dev/urandom"),
    ] {
        touch(inside, 0o666)?;
        bind(
            host,
            inside,
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NOEXEC,
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
    write_file(
        "etc/passwd",
        &format!(
            "root:x:0:0:root:/:/sbin/nologin\nnobody:x:{}:{}:nobody:/tmp:/sbin/nologin\n",
            cfg.uid, cfg.gid
        ),
    )?;
    write_file("etc/group", &format!("root:x:0:\nnogroup:x:{}:\n", cfg.gid))?;
    if let Some(net) = &cfg.net {
        let servers: String = net
            .nameservers
            .iter()
            .map(|ns| format!("nameserver {ns}\n"))
            .collect();
        write_file("etc/resolv.conf", &servers)?;
        // CA certificates, for functions that call HTTPS services.
        if std::path::Path::new("/etc/ssl/certs").is_dir() {
            std::fs::create_dir_all("etc/ssl/certs").map_err(|e| {
                (
                    Stage::Mounts,
                    e.raw_os_error().unwrap_or(0),
                    format!("mkdir etc/ssl/certs: {e}"),
                )
            })?;
            bind(
                c"/etc/ssl/certs",
                c"etc/ssl/certs",
                libc::MS_RDONLY | NOSUID_NODEV | libc::MS_NOEXEC,
            )?;
        }
    }
    // Swap the roots and detach the host's tree from this namespace.
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
    )?;
    mount(
        None,
        c"/",
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | NOSUID_NODEV,
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

fn network(net: Option<&NetConfig>) -> Step<()> {
    // SAFETY: a socket for interface ioctls.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(sock, Stage::Network, "socket")?;
    let result = (|| {
        if_up(sock, b"lo")?;
        let Some(net) = net else { return Ok(()) };
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
