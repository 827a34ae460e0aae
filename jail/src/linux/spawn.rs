//! Starting a sandbox's init: one `clone` into new pid, mount, network, ipc
//! and uts namespaces, then `execve` of the small `skybridge-jail-init`
//! binary. Creating a network namespace is the costliest step (~0.5 ms), so
//! it belongs to the clone, which spare inits make before any invocation
//! needs them; init enters only the cgroup namespace itself.
//!
//! The server is multi-threaded, so the child runs `vfork`-style
//! (`CLONE_VM | CLONE_VFORK`, on a stack of its own, like `posix_spawn`): it
//! shares the server's memory until its `execve`, and does nothing but move
//! five inherited pipe ends to fds 0–4 and exec. No allocation, no locks, no
//! copy of the server's page tables. Everything else (mounts, network,
//! privileges) happens in init, a fresh single-threaded process.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// fds the child gets, in order: stdin, stdout, stderr, the config pipe, the
/// report pipe.
const CHILD_FDS: usize = 5;

/// The parent's ends of a started init's pipes, and its pidfd.
#[derive(Debug)]
pub struct Spawned {
    /// init's pid (in the server's pid namespace).
    pub pid: i32,
    /// A pidfd for it: waiting and killing without pid-reuse races.
    pub pidfd: OwnedFd,
    /// Write end of the function's stdin.
    pub stdin: OwnedFd,
    /// Read end of the function's stdout.
    pub stdout: OwnedFd,
    /// Read end of the function's stderr.
    pub stderr: OwnedFd,
    /// Write end of init's config pipe.
    pub config: OwnedFd,
    /// Read end of init's report pipe.
    pub report: OwnedFd,
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills two fds on success; each is owned exactly once.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fds from pipe2.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A copy of `fd` numbered at least [`CHILD_FDS`], so that moving the child's
/// fds onto 0–4 never overwrites one not yet moved.
fn above_child_range(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() >= CHILD_FDS as RawFd {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd we own.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, CHILD_FDS as RawFd) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// What the child reads; lives on the parent's stack while the parent is
/// suspended in `vfork`.
#[repr(C)]
struct ChildArgs {
    fds: [RawFd; CHILD_FDS],
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
}

extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` points at the parent's ChildArgs, alive while the parent
    // waits for our execve. Only async-signal-safe calls follow.
    unsafe {
        let a = &*(arg as *const ChildArgs);
        for (target, &fd) in a.fds.iter().enumerate() {
            if libc::dup2(fd, target as RawFd) < 0 {
                libc::_exit(126);
            }
        }
        libc::execve(a.path, a.argv, a.envp);
        libc::_exit(127)
    }
}

/// Namespaces every sandbox gets from the clone: init enters only the cgroup
/// namespace itself, once in its cgroup. Made by the clone, they are ready
/// in a spare init before any invocation needs them (a fresh network
/// namespace alone costs ~0.5 ms here).
const NAMESPACES: libc::c_int = libc::CLONE_NEWPID
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS;

/// Starts init (`argv[0]`, the program; an empty environment) in new pid,
/// mount, network, ipc and uts namespaces.
pub fn spawn(argv: &[CString]) -> io::Result<Spawned> {
    let (stdin_r, stdin_w) = pipe()?;
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let (config_r, config_w) = pipe()?;
    let (report_r, report_w) = pipe()?;
    let child_ends = [
        above_child_range(stdin_r)?,
        above_child_range(stdout_w)?,
        above_child_range(stderr_w)?,
        above_child_range(config_r)?,
        above_child_range(report_w)?,
    ];
    let path = argv
        .first()
        .ok_or_else(|| io::Error::other("no program to start"))?;
    let argv: Vec<*const libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    let envp = [std::ptr::null::<libc::c_char>()];
    let mut args = ChildArgs {
        fds: [0; CHILD_FDS],
        path: path.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
    };
    for (slot, fd) in args.fds.iter_mut().zip(&child_ends) {
        *slot = fd.as_raw_fd();
    }
    // The child's stack: it needs little (dup2, execve), but signal frames
    // cannot land on it as every signal is blocked.
    let mut stack = vec![0u8; 64 * 1024];
    // SAFETY: the stack grows down from its 16-byte aligned top.
    let top = unsafe { stack.as_mut_ptr().add(stack.len()) };
    let top = (top as usize & !15) as *mut libc::c_void;
    let mut pidfd: libc::c_int = -1;

    // Block every signal in this thread while the child shares our memory:
    // a handler must not run in the child. init unblocks them.
    // SAFETY: plain signal-mask calls on this thread.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: `child` only reads `args` and calls dup2/execve/_exit; with
    // CLONE_VFORK this thread sleeps until that execve (or _exit), so `args`,
    // `argv`, `envp` and `stack` outlive the child's use of them.
    let pid = unsafe {
        libc::clone(
            child,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | NAMESPACES | libc::SIGCHLD,
            &mut args as *mut ChildArgs as *mut libc::c_void,
            &mut pidfd as *mut libc::c_int,
        )
    };
    let err = io::Error::last_os_error();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    drop(stack);
    drop(child_ends);
    if pid < 0 {
        return Err(err);
    }
    Ok(Spawned {
        pid,
        // SAFETY: CLONE_PIDFD stored a fresh pidfd (close-on-exec) here.
        pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        stdin: stdin_w,
        stdout: stdout_r,
        stderr: stderr_r,
        config: config_w,
        report: report_r,
    })
}

/// Sends `signal` through a pidfd (no race with pid reuse).
pub fn pidfd_signal(pidfd: &OwnedFd, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: pidfd_send_signal with a valid pidfd and no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reaps the process behind `pidfd` if it has exited; `Some(raw status)`.
pub fn try_reap(pidfd: &OwnedFd) -> io::Result<Option<i32>> {
    // SAFETY: waitid(P_PIDFD) fills `info`; WNOHANG makes it not block.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: si_pid/si_status are valid for SIGCHLD infos; pid 0 = still running.
    let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(if code == libc::CLD_EXITED {
        (status & 0xff) << 8
    } else {
        status & 0x7f
    }))
}
