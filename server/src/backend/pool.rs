//! The warm pool of one deployment, for every backend that keeps sandboxes
//! started ahead of time (docker containers, jails): each holds the function's
//! process blocked reading stdin. An invocation takes one, writes its input and
//! reads the result; the sandbox then goes (one invocation per sandbox, so
//! nothing leaks between invocations) and the pool refills in the background.
//! After `idle_ttl` without an invocation the pool empties itself; the next
//! invocation starts cold and fills it again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::BackendError;

/// How long a refill waits before it starts setting a sandbox up.
const REFILL_DELAY: Duration = Duration::from_millis(2);

/// A sandbox a pool can hold. Dropping it must release it (kill, remove).
pub trait Warm: Send + 'static {
    /// Whether its process is gone (then it cannot serve an invocation).
    fn has_exited(&mut self) -> bool;
    /// Its name, for logs.
    fn describe(&self) -> String;
}

/// Starts one sandbox for the pool.
pub type Make<T> = Arc<dyn Fn() -> BoxFuture<'static, Result<T, BackendError>> + Send + Sync>;

struct State<T> {
    idle: VecDeque<T>,
    creating: usize,
    last_used: Instant,
    /// [`Pool::close`] was called: no more sandboxes.
    closed: bool,
}

/// Warm sandboxes of one deployment.
pub struct Pool<T: Warm> {
    function: String,
    make: Make<T>,
    /// The environment pooled sandboxes are created with: an invocation whose
    /// environment (less its per-invocation variables) differs runs cold.
    env: Vec<(String, String)>,
    size: usize,
    idle_ttl: Duration,
    state: Mutex<State<T>>,
    /// `skybridge_warm_pool_ready` of this function (shared with a pool of a
    /// newer deployment while this one drains, hence add/sub, never set).
    ready: prometheus::IntGauge,
}

impl<T: Warm> Drop for Pool<T> {
    fn drop(&mut self) {
        let st = self.state.get_mut().expect("pool lock");
        self.ready.sub(st.idle.len() as i64);
        // Dropping the sandboxes releases them.
    }
}

impl<T: Warm> Pool<T> {
    /// A pool of `size` sandboxes made by `make`, filling now.
    pub fn start(
        function: &str,
        make: Make<T>,
        env: Vec<(String, String)>,
        size: usize,
        idle_ttl: Duration,
        ready: prometheus::IntGauge,
    ) -> Arc<Self> {
        let pool = Arc::new(Self {
            function: function.to_string(),
            make,
            env,
            size,
            idle_ttl,
            state: Mutex::new(State {
                idle: VecDeque::new(),
                creating: 0,
                last_used: Instant::now(),
                closed: false,
            }),
            ready,
        });
        pool.refill();
        tokio::spawn(expire_idle(Arc::downgrade(&pool)));
        pool
    }

    /// A warm sandbox for an invocation with `env` (less its per-invocation
    /// variables), if one is ready. Call [`Pool::refill`] once the invocation
    /// is done: starting sandboxes while it runs would slow it down.
    pub fn take(&self, env: &[(String, String)]) -> Option<T> {
        let mut st = self.state.lock().expect("pool lock");
        if env != self.env.as_slice() {
            return None;
        }
        // Only invocations the pool can serve keep it alive.
        st.last_used = Instant::now();
        while let Some(mut sandbox) = st.idle.pop_front() {
            self.ready.dec();
            if !sandbox.has_exited() {
                return Some(sandbox);
            }
            tracing::warn!(function = %self.function, sandbox = %sandbox.describe(), "a warm sandbox exited before its invocation; discarding it");
        }
        None
    }

    /// Gives up one idle sandbox (to free what it holds, such as an address),
    /// if there is one.
    pub fn evict_one(&self) -> bool {
        let evicted = {
            let mut st = self.state.lock().expect("pool lock");
            let s = st.idle.pop_back();
            if s.is_some() {
                self.ready.dec();
            }
            s
        };
        evicted.is_some()
    }

    /// Releases every idle sandbox and makes no more (sandboxes being set
    /// up are released as they come): at shutdown, so that what they hold
    /// is gone before the backend removes what contains them.
    pub fn close(&self) {
        let idle: Vec<T> = {
            let mut st = self.state.lock().expect("pool lock");
            st.closed = true;
            self.ready.sub(st.idle.len() as i64);
            st.idle.drain(..).collect()
        };
        drop(idle);
    }

    /// Starts creating sandboxes up to the pool size, in the background.
    pub fn refill(self: &Arc<Self>) {
        let missing = {
            let mut st = self.state.lock().expect("pool lock");
            if st.closed {
                return;
            }
            let missing = self.size.saturating_sub(st.idle.len() + st.creating);
            st.creating += missing;
            missing
        };
        for _ in 0..missing {
            let weak = Arc::downgrade(self);
            let made = (self.make)();
            let function = self.function.clone();
            tokio::spawn(async move {
                // Not before the invocation that emptied a slot has answered:
                // set-up makes blocking system calls on a runtime worker, and
                // a task spawned here would otherwise run next on this one.
                tokio::time::sleep(REFILL_DELAY).await;
                let made = made.await;
                // The pool may be gone by now: then dropping the sandbox releases it.
                let Some(pool) = weak.upgrade() else { return };
                let mut st = pool.state.lock().expect("pool lock");
                st.creating -= 1;
                match made {
                    // Dropped once the lock is released.
                    Ok(sandbox) if st.closed => {
                        drop(st);
                        drop(sandbox);
                    }
                    Ok(sandbox) => {
                        st.idle.push_back(sandbox);
                        pool.ready.inc();
                    }
                    Err(e) => {
                        tracing::warn!(%function, error = %e, "starting a warm sandbox failed; invocations run cold")
                    }
                }
            });
        }
    }
}

/// Empties the pool once it has been idle for its TTL.
async fn expire_idle<T: Warm>(pool: Weak<Pool<T>>) {
    loop {
        let tick = match pool.upgrade() {
            Some(p) => (p.idle_ttl / 4).max(Duration::from_millis(100)),
            None => return,
        };
        tokio::time::sleep(tick).await;
        let Some(p) = pool.upgrade() else { return };
        let expired: Vec<T> = {
            let mut st = p.state.lock().expect("pool lock");
            if st.last_used.elapsed() >= p.idle_ttl && !st.idle.is_empty() {
                p.ready.sub(st.idle.len() as i64);
                st.idle.drain(..).collect()
            } else {
                Vec::new()
            }
        };
        if !expired.is_empty() {
            tracing::debug!(function = %p.function, count = expired.len(), "warm pool idle past its TTL; releasing its sandboxes");
        }
        // Dropping them releases the sandboxes.
        drop(expired);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Fake {
        n: usize,
        exited: bool,
        dropped: Arc<AtomicUsize>,
    }
    impl Warm for Fake {
        fn has_exited(&mut self) -> bool {
            self.exited
        }
        fn describe(&self) -> String {
            format!("fake-{}", self.n)
        }
    }
    impl Drop for Fake {
        fn drop(&mut self) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn pool(size: usize, ttl_ms: u64, dead_first: bool) -> (Arc<Pool<Fake>>, Arc<AtomicUsize>) {
        let dropped = Arc::new(AtomicUsize::new(0));
        let made = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        let make: Make<Fake> = Arc::new(move || {
            let n = made.fetch_add(1, Ordering::SeqCst);
            let dropped = d.clone();
            Box::pin(async move {
                Ok(Fake {
                    n,
                    exited: dead_first && n == 0,
                    dropped,
                })
            })
        });
        let gauge = prometheus::IntGauge::new("ready", "ready").unwrap();
        let env = vec![("A".to_string(), "1".to_string())];
        (
            Pool::start("f", make, env, size, Duration::from_millis(ttl_ms), gauge),
            dropped,
        )
    }

    async fn settle() {
        // Refills start after REFILL_DELAY.
        tokio::time::sleep(REFILL_DELAY * 5).await;
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn serves_matching_env_skips_dead_and_refills() {
        let (p, dropped) = pool(2, 60_000, true);
        settle().await;
        assert!(p.take(&[]).is_none(), "another environment runs cold");
        let s = p.take(&[("A".into(), "1".into())]).expect("a warm one");
        assert_eq!(s.n, 1, "the dead one is skipped");
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "and released");
        assert_eq!(p.ready.get(), 0);
        p.refill();
        settle().await;
        assert_eq!(p.ready.get(), 2);
        assert!(p.evict_one());
        assert_eq!(p.ready.get(), 1);
        assert_eq!(dropped.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn close_releases_the_idle_and_those_in_flight() {
        let (p, dropped) = pool(2, 60_000, false);
        settle().await;
        let taken = p.take(&[("A".into(), "1".into())]).expect("a warm one");
        p.refill(); // one in flight, past REFILL_DELAY
        p.close();
        assert_eq!((p.ready.get(), dropped.load(Ordering::SeqCst)), (0, 1));
        settle().await;
        assert_eq!(
            (p.ready.get(), dropped.load(Ordering::SeqCst)),
            (0, 2),
            "the one in flight was released as it came"
        );
        p.refill();
        settle().await;
        assert_eq!(p.ready.get(), 0, "a closed pool makes no more");
        drop(taken);
    }

    #[tokio::test]
    async fn empties_after_its_idle_ttl() {
        let (p, dropped) = pool(3, 50, false);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(p.ready.get(), 0);
        assert_eq!(dropped.load(Ordering::SeqCst), 3);
        drop(p);
    }
}
