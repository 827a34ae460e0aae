//! Work that must finish even if whoever awaits it goes away.
//!
//! A request handler's future is dropped when its client hangs up; a build, a
//! delete or a function run must not stop half-way then. Spawning such work as
//! a task and awaiting it does that, but hands every request to another task
//! (and often another worker thread). [`finish_even_if_dropped`] drives the
//! work on the caller's task instead, and spawns only what is left of it if
//! the caller is dropped first.

use std::future::Future;
use std::pin::Pin;

use futures::FutureExt;

/// Drives `work` on the caller's task; if the caller is dropped before it is
/// done, the rest of `work` goes on as a task of its own. A panic in `work` is
/// an `Err`, as from a task's `JoinHandle`.
pub async fn finish_even_if_dropped<F>(work: F) -> std::thread::Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut detach = Detach(Some(Box::pin(
        std::panic::AssertUnwindSafe(work).catch_unwind(),
    )));
    let out = std::future::poll_fn(|cx| {
        detach
            .0
            .as_mut()
            .expect("not polled after it finished")
            .as_mut()
            .poll(cx)
    })
    .await;
    detach.0 = None;
    out
}

type Rest<O> = Pin<Box<dyn Future<Output = std::thread::Result<O>> + Send>>;

/// Holds unfinished work; dropping it spawns the work.
struct Detach<O: Send + 'static>(Option<Rest<O>>);

impl<O: Send + 'static> Drop for Detach<O> {
    fn drop(&mut self) {
        // Dropped on a thread with no runtime to spawn on, the work is dropped
        // too: what it holds releases itself. (A runtime that is shutting down
        // takes the task and drops it the same way.)
        if let (Some(rest), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn returns_what_the_work_returns() {
        assert_eq!(finish_even_if_dropped(async { 7 }).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_panic_is_an_error() {
        let r = finish_even_if_dropped(async { panic!("boom") }).await;
        assert!(r.is_err());
    }

    /// The caller gives up half-way (a client hang-up): the work still ends.
    #[tokio::test]
    async fn work_outlives_a_dropped_caller() {
        let (started_tx, started) = oneshot::channel();
        let (go_tx, go) = oneshot::channel::<()>();
        let (done_tx, done) = oneshot::channel();
        let caller = tokio::spawn(finish_even_if_dropped(async move {
            started_tx.send(()).unwrap();
            go.await.unwrap();
            done_tx.send("finished").unwrap();
        }));
        started.await.unwrap();
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
        go_tx.send(()).unwrap();
        let finished = tokio::time::timeout(Duration::from_secs(10), done).await;
        assert_eq!(finished.unwrap().unwrap(), "finished");
    }
}
