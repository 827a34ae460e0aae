//! The warm pool of one deployment: containers created and started ahead of
//! time, their process blocked reading stdin. An invocation takes one, writes
//! its input and reads the result; the container then goes (one invocation per
//! container, so nothing leaks between invocations) and the pool refills in
//! the background. After `idle_ttl` without an invocation the pool empties
//! itself; the next invocation starts cold and fills it again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::container::{start, Settings, Started};
use super::engine::Engine;

/// Label value of a pooled container not yet serving an execution.
pub const WARM: &str = "warm";

struct State {
    idle: VecDeque<Started>,
    creating: usize,
    last_used: Instant,
}

/// Warm containers of one deployment.
pub struct Pool {
    engine: Arc<Engine>,
    settings: Settings,
    /// The environment pooled containers are created with: an invocation whose
    /// environment (less its per-invocation variables) differs runs cold.
    env: Vec<(String, String)>,
    size: usize,
    idle_ttl: Duration,
    state: Mutex<State>,
    /// `skybridge_warm_pool_ready` of this function (shared with a pool of a
    /// newer deployment while this one drains, hence add/sub, never set).
    ready: prometheus::IntGauge,
}

impl Drop for Pool {
    fn drop(&mut self) {
        let st = self.state.get_mut().expect("pool lock");
        self.ready.sub(st.idle.len() as i64);
        // Dropping the containers removes them.
    }
}

impl Pool {
    /// A pool of `size` containers, filling now.
    pub fn start(
        engine: Arc<Engine>,
        settings: Settings,
        env: Vec<(String, String)>,
        size: usize,
        idle_ttl: Duration,
        ready: prometheus::IntGauge,
    ) -> Arc<Self> {
        let pool = Arc::new(Self {
            engine,
            settings,
            env,
            size,
            idle_ttl,
            state: Mutex::new(State {
                idle: VecDeque::new(),
                creating: 0,
                last_used: Instant::now(),
            }),
            ready,
        });
        pool.refill();
        tokio::spawn(expire_idle(Arc::downgrade(&pool)));
        pool
    }

    /// A warm container for an invocation with `env` (less its per-invocation
    /// variables), if one is ready. Call [`Pool::refill`] once the invocation
    /// is done: creating containers while it runs would slow it down (the
    /// engine serializes much of its work).
    pub fn take(&self, env: &[(String, String)]) -> Option<Started> {
        let taken = {
            let mut st = self.state.lock().expect("pool lock");
            let mut found = None;
            if env == self.env.as_slice() {
                // Only invocations the pool can serve keep it alive.
                st.last_used = Instant::now();
                while let Some(mut c) = st.idle.pop_front() {
                    self.ready.dec();
                    if !c.has_exited() {
                        found = Some(c);
                        break;
                    }
                    tracing::warn!(function = %self.settings.function, container = %c.id, "a warm container exited before its invocation; discarding it");
                }
            }
            found
        };
        taken
    }

    /// Starts creating containers up to the pool size, in the background.
    pub fn refill(self: &Arc<Self>) {
        let missing = {
            let mut st = self.state.lock().expect("pool lock");
            let missing = self.size.saturating_sub(st.idle.len() + st.creating);
            st.creating += missing;
            missing
        };
        for _ in 0..missing {
            let weak = Arc::downgrade(self);
            let (engine, settings, env) =
                (self.engine.clone(), self.settings.clone(), self.env.clone());
            tokio::spawn(async move {
                let made = match engine.client().await {
                    Ok(docker) => start(&engine, &docker, &settings, &env, WARM).await,
                    Err(e) => Err(e),
                };
                // The pool may be gone by now: then dropping the container removes it.
                let Some(pool) = weak.upgrade() else { return };
                let mut st = pool.state.lock().expect("pool lock");
                st.creating -= 1;
                match made {
                    Ok(c) => {
                        st.idle.push_back(c);
                        pool.ready.inc();
                    }
                    Err(e) => {
                        tracing::warn!(function = %settings.function, error = %e, "starting a warm container failed; invocations run cold")
                    }
                }
            });
        }
    }
}

/// Empties the pool once it has been idle for its TTL.
async fn expire_idle(pool: Weak<Pool>) {
    loop {
        let tick = match pool.upgrade() {
            Some(p) => (p.idle_ttl / 4).max(Duration::from_millis(100)),
            None => return,
        };
        tokio::time::sleep(tick).await;
        let Some(p) = pool.upgrade() else { return };
        let expired: Vec<Started> = {
            let mut st = p.state.lock().expect("pool lock");
            if st.last_used.elapsed() >= p.idle_ttl && !st.idle.is_empty() {
                p.ready.sub(st.idle.len() as i64);
                st.idle.drain(..).collect()
            } else {
                Vec::new()
            }
        };
        if !expired.is_empty() {
            tracing::debug!(function = %p.settings.function, count = expired.len(), "warm pool idle past its TTL; removing its containers");
        }
        // Dropping them removes the containers.
        drop(expired);
    }
}
