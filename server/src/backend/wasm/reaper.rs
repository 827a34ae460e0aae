//! A thread that drops spent instances off the request path.
//!
//! Resetting an instance's memory for reuse takes tens of microseconds for a
//! Go heap. On a worker that is time the answer, or the next request, waits
//! for; on the reaper it happens on the other core meanwhile.
//!
//! Waking a sleeping thread is not free either: on this kind of VM a futex
//! wake of a thread whose vCPU is halted costs the waker ~10 µs, a third of
//! what it hands over. So while work keeps coming the reaper polls its queue
//! every [`POLL`] instead of blocking, and the workers never wake it; only
//! after [`IDLE`] without work does it block, and the next hand-over wakes it
//! once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How often a busy reaper looks at its queue.
const POLL: Duration = Duration::from_micros(200);
/// How long the reaper polls without work before it blocks.
const IDLE: Duration = Duration::from_millis(50);

struct Shared<T> {
    queue: Mutex<Vec<T>>,
    /// The reaper is blocked (or about to be) and must be unparked.
    parked: AtomicBool,
    /// Every handle is gone: drop what is left and end.
    closed: AtomicBool,
}

/// The last handle's drop closes the reaper.
struct Handle<T> {
    shared: Arc<Shared<T>>,
    thread: Thread,
}

impl<T> Drop for Handle<T> {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Drops values of type `T` on a thread of its own. Cloning is cheap; the
/// thread ends, after dropping everything handed over, once every clone is gone.
pub struct Reaper<T>(Arc<Handle<T>>);

impl<T> Clone for Reaper<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: Send + 'static> Reaper<T> {
    /// Starts the thread, named `name`.
    pub fn start(name: &str) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Vec::new()),
            parked: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let inner = shared.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(&inner))?
            .thread()
            .clone();
        Ok(Self(Arc::new(Handle { shared, thread })))
    }

    /// Hands `value` over to be dropped on the reaper.
    pub fn reap(&self, value: T) {
        let h = &self.0;
        h.shared.queue.lock().expect("reaper queue").push(value);
        if h.shared.parked.load(Ordering::SeqCst) {
            h.thread.unpark();
        }
    }
}

fn run<T>(shared: &Shared<T>) {
    let mut spare = Vec::new();
    let mut last_work = Instant::now();
    loop {
        std::mem::swap(&mut *shared.queue.lock().expect("reaper queue"), &mut spare);
        if !spare.is_empty() {
            spare.clear();
            last_work = Instant::now();
            continue;
        }
        if shared.closed.load(Ordering::SeqCst) {
            // Handles are gone, so nothing more can arrive after this look.
            spare.append(&mut shared.queue.lock().expect("reaper queue"));
            return;
        }
        if last_work.elapsed() < IDLE {
            std::thread::sleep(POLL);
            continue;
        }
        // Announce the block, then look once more: a hand-over that missed
        // the flag put its value in the queue before this look.
        shared.parked.store(true, Ordering::SeqCst);
        if shared.queue.lock().expect("reaper queue").is_empty()
            && !shared.closed.load(Ordering::SeqCst)
        {
            std::thread::park();
        }
        shared.parked.store(false, Ordering::SeqCst);
        last_work = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its drops.
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn wait_for(count: &AtomicUsize, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while count.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "only {count:?} of {n} dropped");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Values are dropped while the reaper polls, after it has blocked, and
    /// when the last handle goes; then the thread ends.
    #[test]
    fn drops_everything_busy_idle_and_at_close() {
        let count = Arc::new(AtomicUsize::new(0));
        let reaper = Reaper::start("test-reaper").unwrap();
        let thread = reaper.0.thread.clone();
        for _ in 0..100 {
            reaper.reap(Counted(count.clone()));
        }
        wait_for(&count, 100);
        // Idle long enough to block; a hand-over must wake it.
        std::thread::sleep(IDLE * 3);
        assert!(reaper.0.shared.parked.load(Ordering::SeqCst));
        reaper.reap(Counted(count.clone()));
        wait_for(&count, 101);

        let shared = reaper.0.shared.clone();
        let clone = reaper.clone();
        drop(reaper);
        clone.reap(Counted(count.clone()));
        drop(clone);
        wait_for(&count, 102);
        // The thread let go of its share: it ended.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&shared) > 1 {
            assert!(
                Instant::now() < deadline,
                "{} still running",
                thread.name().unwrap()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
