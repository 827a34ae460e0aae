//! Bare sandboxes, and spares of them made ahead of time.
//!
//! A bare sandbox is init started in its own pid, mount, network, ipc and
//! uts namespaces ([`spawn`]) and moved into a cgroup of its own, with the
//! limits of the latest sandbox (none for the first); init then does what
//! needs no configuration (see [`super::init`]) and waits for one: nothing
//! of a function is in it. [`Driver::spawn`](super::Driver::spawn) gives one
//! its configuration, its limits when they differ and (with a network) its
//! veth.
//!
//! Making one costs ~1.5 ms (the `clone` that makes the namespaces, init's
//! `execve`) plus the move into the cgroup, which on an idle machine costs
//! far more: writing a pid to `cgroup.procs` takes the kernel's cgroup
//! threadgroup lock for writing, which waits for an RCU grace period unless
//! another move happened moments before (5–25 ms measured here between
//! invocations 30 ms apart). So [`Spares`] keeps a few made ahead of time, on
//! a thread of its own: none of this is on the path of an invocation, nor
//! on a runtime worker.
//!
//! inits die with the thread that started them (`PR_SET_PDEATHSIG`), so the
//! spare thread lives as long as the [`Spares`]; the inits of spares taken
//! and still running die when it ends.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::cgroup::{Cgroup, CgroupLimits, Cgroups};
use super::{io_err, spawn, JailError};

/// A started init in a cgroup of its own. Dropping it removes the cgroup,
/// killing the init (which stays a zombie: `release` reaps it).
#[derive(Debug)]
pub struct Bare {
    /// The sandbox's name: its cgroup's, unique in this process.
    pub name: String,
    /// Sequence number of this process's sandboxes.
    pub seq: u64,
    /// The init and its pipes.
    pub init: spawn::Spawned,
    /// Its cgroup.
    pub cgroup: Cgroup,
    /// The limits its cgroup has (`None`: none yet).
    pub limits: Option<CgroupLimits>,
}

impl Bare {
    /// Kills the init and reaps it; the cgroup goes after.
    fn release(self) {
        kill_and_reap(&self.init);
        drop(self.cgroup);
    }
}

/// Kills an init still blocked reading its configuration (it dies at once)
/// and reaps it.
fn kill_and_reap(init: &spawn::Spawned) {
    let _ = spawn::pidfd_signal(&init.pidfd, libc::SIGKILL);
    for _ in 0..1000 {
        if !matches!(spawn::try_reap(&init.pidfd), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Makes bare sandboxes: the instance's cgroups and this process's names.
pub struct Maker {
    /// init's argv: its path, the root directory, the function's uid and gid.
    argv: Vec<CString>,
    cgroups: Cgroups,
    /// Distinguishes this process's sandboxes from an earlier one's.
    boot: String,
    seq: AtomicU64,
    /// The limits of the latest sandbox: spares get them ahead of time, so
    /// that a set-up asking for the same writes none.
    limits: Mutex<Option<CgroupLimits>>,
}

impl Maker {
    /// A maker of sandboxes named `<boot>-<n>` in `cgroups`, running init
    /// with `argv`: its path, the empty directory its root tmpfs goes on,
    /// the uid and the gid functions run as.
    pub fn new(argv: Vec<CString>, cgroups: Cgroups, boot: String) -> Self {
        Self {
            argv,
            cgroups,
            boot,
            seq: AtomicU64::new(0),
            limits: Mutex::new(None),
        }
    }

    /// Gives `bare` the cgroup limits `limits` (unless it has them) and
    /// makes them those of the next spares.
    pub fn limit(&self, bare: &mut Bare, limits: &CgroupLimits) -> std::io::Result<()> {
        *self.limits.lock().expect("limits lock") = Some(*limits);
        if bare.limits.as_ref() != Some(limits) {
            self.cgroups.limit(&bare.cgroup, limits)?;
            bare.limits = Some(*limits);
        }
        Ok(())
    }

    /// The instance's cgroups.
    pub fn cgroups(&self) -> &Cgroups {
        &self.cgroups
    }

    /// Starts an init and moves it into a new cgroup. Blocks for the clone
    /// and the move (see the module's notes).
    pub fn make(&self) -> Result<Bare, JailError> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{seq}", self.boot);
        let init = spawn::spawn(&self.argv).map_err(io_err("starting the sandbox"))?;
        let limits = *self.limits.lock().expect("limits lock");
        let cgroup = self.cgroups.create(&name).and_then(|cg| {
            if let Some(l) = &limits {
                self.cgroups.limit(&cg, l)?;
            }
            Ok(cg)
        });
        let bare = Bare {
            cgroup: match cgroup {
                Ok(cg) => cg,
                Err(e) => {
                    kill_and_reap(&init);
                    return Err(io_err("creating the sandbox's cgroup")(e));
                }
            },
            limits,
            name,
            seq,
            init,
        };
        if let Err(e) = bare.cgroup.add(bare.init.pid) {
            bare.release();
            return Err(io_err("moving the sandbox into its cgroup")(e));
        }
        // init starts pid 2 now: in the cgroup from its start.
        // SAFETY: a one-byte write to the config pipe, whose read end init
        // holds (a dead init shows when the sandbox is set up).
        unsafe {
            libc::write(
                bare.init.config.as_raw_fd(),
                [crate::proto::IN_CGROUP].as_ptr().cast(),
                1,
            )
        };
        Ok(bare)
    }
}

/// A set-up waiting for a bare sandbox.
type Waiter = tokio::sync::oneshot::Sender<Result<Bare, JailError>>;

struct State {
    /// Oldest first: the likeliest to have finished what init does before
    /// its configuration.
    ready: std::collections::VecDeque<Bare>,
    /// Set-ups that found no spare, first come first served.
    waiting: std::collections::VecDeque<Waiter>,
    closed: bool,
}

struct Shared {
    maker: Arc<Maker>,
    target: usize,
    state: Mutex<State>,
    wake: Condvar,
}

/// The spare thread and what it made: `target` bare sandboxes ready ahead
/// of time, each serving one sandbox, and those made on demand when none
/// is ready (so that every init has this thread for its parent, never a
/// runtime worker or a blocking-pool thread that may end first).
pub struct Spares {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Spares {
    /// Starts the spare thread, which fills up to `target` at once.
    pub fn start(maker: Arc<Maker>, target: usize) -> Result<Self, JailError> {
        let shared = Arc::new(Shared {
            maker,
            target,
            state: Mutex::new(State {
                ready: Default::default(),
                waiting: Default::default(),
                closed: false,
            }),
            wake: Condvar::new(),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("jail-spares".into())
                .spawn(move || fill(&shared))
                .map_err(io_err("starting the spare thread"))?
        };
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A spare whose init is still alive, if one is ready. The thread makes
    /// up for it once the sandbox it became is gone ([`Refill`]), or at once
    /// when none is left ([`Spares::refill_if_empty`]): making one while
    /// the sandbox runs competes with it (on this machine's two cores, a
    /// cold invocation took 1.3 ms longer).
    pub fn take(&self) -> Option<Bare> {
        let mut st = self.shared.state.lock().expect("spares lock");
        while let Some(bare) = st.ready.pop_front() {
            match spawn::try_reap(&bare.init.pidfd) {
                Ok(None) => return Some(bare),
                // It died (it should not): reaped; its cgroup goes.
                _ => drop(bare),
            }
        }
        None
    }

    /// A bare sandbox made now by the spare thread (when [`Spares::take`]
    /// found none).
    pub async fn make(&self) -> Result<Bare, JailError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let mut st = self.shared.state.lock().expect("spares lock");
            if st.closed {
                return Err(JailError::Unsupported(
                    "the jail driver is shut down".into(),
                ));
            }
            st.waiting.push_back(tx);
        }
        self.shared.wake.notify_one();
        rx.await.unwrap_or_else(|_| {
            Err(JailError::Unsupported(
                "the jail driver is shut down".into(),
            ))
        })
    }

    /// Wakes the spare thread if no spare is left.
    pub fn refill_if_empty(&self) {
        if self
            .shared
            .state
            .lock()
            .expect("spares lock")
            .ready
            .is_empty()
        {
            self.shared.wake.notify_one();
        }
    }

    /// What wakes the spare thread when a sandbox made from a spare is gone.
    pub fn refill(&self) -> Refill {
        Refill(self.shared.clone())
    }

    /// Releases every spare and ends the thread, and with it every init it
    /// started: call this once no sandbox runs. No sandbox can be set up
    /// after it.
    pub fn close(&self) {
        let ready = {
            let mut st = self.shared.state.lock().expect("spares lock");
            st.closed = true;
            st.waiting.clear();
            std::mem::take(&mut st.ready)
        };
        self.shared.wake.notify_all();
        ready.into_iter().for_each(Bare::release);
        if let Some(thread) = self.thread.lock().expect("spares lock").take() {
            let _ = thread.join();
        }
    }
}

/// Wakes the spare thread when dropped: held by a sandbox made from a spare.
pub struct Refill(Arc<Shared>);

impl Drop for Refill {
    fn drop(&mut self) {
        self.0.wake.notify_one();
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        self.close();
    }
}

/// The spare thread: serves waiting set-ups first, then makes spares while
/// fewer than the target are ready.
fn fill(shared: &Shared) {
    let mut nice = 0;
    loop {
        {
            let mut st = shared.state.lock().expect("spares lock");
            loop {
                if st.closed {
                    return;
                }
                // A spare pushed just after a set-up found none.
                while !st.waiting.is_empty() && !st.ready.is_empty() {
                    let bare = st.ready.pop_front().expect("not empty");
                    hand_over(&mut st, Ok(bare));
                }
                if !st.waiting.is_empty() || st.ready.len() < shared.target {
                    // A set-up waits for this one: as urgent as it is.
                    set_nice(
                        &mut nice,
                        if st.waiting.is_empty() { SPARE_NICE } else { 0 },
                    );
                    break;
                }
                st = shared.wake.wait(st).expect("spares lock");
            }
        }
        let made = shared.maker.make();
        let mut st = shared.state.lock().expect("spares lock");
        if st.closed {
            drop(st);
            if let Ok(bare) = made {
                bare.release();
            }
            return;
        }
        match hand_over(&mut st, made) {
            None => {}
            Some(Ok(bare)) => st.ready.push_back(bare),
            Some(Err(e)) => {
                eprintln!("skybridge-jail: making a spare sandbox: {e}");
                // Not in a tight loop: again when a set-up waits, or in a while.
                let _ = shared.wake.wait_timeout(st, Duration::from_secs(1));
            }
        }
    }
}

/// The nice value spares are made at, ahead of time: on this machine's two
/// cores a spare made at full priority (~1.5 ms of CPU) while an invocation
/// runs slowed that invocation by as much; at 19 it takes what is idle.
/// init (which inherits it) returns to 0 once its sandbox is wanted.
const SPARE_NICE: libc::c_int = 19;

/// Sets this thread's nice value (Linux: per thread) to `to`, if not yet.
fn set_nice(current: &mut libc::c_int, to: libc::c_int) {
    if *current != to {
        // SAFETY: setpriority of the calling thread (who 0); root may lower
        // the value again.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, to) } == 0 {
            *current = to;
        }
    }
}

/// Gives `made` to the first set-up still waiting; back if there is none.
fn hand_over(st: &mut State, mut made: Result<Bare, JailError>) -> Option<Result<Bare, JailError>> {
    while let Some(waiter) = st.waiting.pop_front() {
        match waiter.send(made) {
            Ok(()) => return None,
            // That set-up gave up (its request went away): the next one.
            Err(back) => made = back,
        }
    }
    Some(made)
}
