//! Background writer for execution records.
//!
//! The invoke hot path hands records to this task instead of waiting on SQLite.
//! A transaction opens at most [`COMMIT_WINDOW`] after the first record that
//! needs one, so the records handed over in that window go out together (group
//! commit), and successive states of one execution in a batch collapse into the
//! last: a short sync call commits once, in its final state, instead of twice.
//! Readers call [`ExecutionWriter::flush`] first, which ends the window at once,
//! so an API read always sees every write that was handed over before it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};
use uuid::Uuid;

use crate::model::ExecutionRecord;
use crate::store::Store;

const MAX_BATCH: usize = 512;
/// How long a record may wait for others to share its transaction. The
/// response of a sync call never waits for the commit, so this costs no
/// latency; it bounds how long a record is held in memory only.
const COMMIT_WINDOW: Duration = Duration::from_millis(2);
/// Records waiting for the writer before `write` waits too (backpressure).
const QUEUE: usize = 4096;
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);

enum Msg {
    Write(Box<ExecutionRecord>),
    Flush(oneshot::Sender<()>),
}

/// Handle to the writer task. Cloning is cheap; the task ends, after writing
/// everything, once every handle is dropped.
#[derive(Clone)]
pub struct ExecutionWriter {
    tx: mpsc::Sender<Msg>,
    /// Ends the commit window early: somebody waits for a flush.
    hurry: Arc<Notify>,
}

impl ExecutionWriter {
    /// Starts the writer task.
    pub fn spawn(store: Arc<dyn Store>) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let hurry = Arc::new(Notify::new());
        let task = tokio::spawn(run(store, rx, hurry.clone()));
        (Self { tx, hurry }, task)
    }

    /// Queues a record for writing; waits only when the queue is full.
    pub async fn write(&self, rec: ExecutionRecord) {
        if self.tx.send(Msg::Write(Box::new(rec))).await.is_err() {
            tracing::error!("execution writer has stopped; record lost");
        }
    }

    /// Waits until everything queued before this call is committed.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            self.hurry.notify_one();
            let _ = wait.await;
        }
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Msg>, hurry: Arc<Notify>) {
    let mut batch: Vec<ExecutionRecord> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        if matches!(first, Msg::Write(_)) {
            // Let the records of the next moments join this transaction,
            // unless a reader is waiting.
            tokio::select! {
                () = tokio::time::sleep(COMMIT_WINDOW) => {}
                () = hurry.notified() => {}
            }
        }
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Write(rec) => batch.push(*rec),
                Msg::Flush(w) => waiters.push(w),
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let records = collapse(std::mem::take(&mut batch));
            commit(store.as_ref(), &records).await;
        }
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

/// Keeps the last state of each execution, in first-seen order.
fn collapse(batch: Vec<ExecutionRecord>) -> Vec<ExecutionRecord> {
    let mut index: HashMap<Uuid, usize> = HashMap::with_capacity(batch.len());
    let mut out: Vec<ExecutionRecord> = Vec::with_capacity(batch.len());
    for rec in batch {
        match index.get(&rec.id) {
            Some(&i) => out[i] = rec,
            None => {
                index.insert(rec.id, out.len());
                out.push(rec);
            }
        }
    }
    out
}

/// Commits a batch, retrying until it lands: a record is never dropped, and flush
/// waiters are released only after their records are committed. While the store
/// is failing, the bounded queue fills and invocations wait instead of piling up.
async fn commit(store: &dyn Store, records: &[ExecutionRecord]) {
    let mut delay = Duration::from_millis(20);
    let mut attempt = 1u32;
    while let Err(e) = store.upsert_executions(records).await {
        tracing::error!(error = %e, attempt, count = records.len(), "writing executions failed; retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY_DELAY);
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BackendKind, ExecutionStatus};

    #[test]
    fn collapse_keeps_last_state_in_first_seen_order() {
        let a = ExecutionRecord::new(
            "f",
            Uuid::now_v7(),
            BackendKind::Wasm,
            ExecutionStatus::Running,
            serde_json::Value::Null,
            None,
        );
        let b = ExecutionRecord::new(
            "f",
            Uuid::now_v7(),
            BackendKind::Wasm,
            ExecutionStatus::Running,
            serde_json::Value::Null,
            None,
        );
        let mut a2 = a.clone();
        a2.status = ExecutionStatus::Succeeded;
        let out = collapse(vec![a.clone(), b.clone(), a2.clone()]);
        assert_eq!(out, vec![a2, b]);
    }

    fn running() -> ExecutionRecord {
        ExecutionRecord::new(
            "f",
            Uuid::now_v7(),
            BackendKind::Wasm,
            ExecutionStatus::Running,
            serde_json::json!([1]),
            None,
        )
    }

    /// A writer on a fresh store that has function `f`.
    async fn started() -> (
        tempfile::TempDir,
        Arc<dyn Store>,
        ExecutionWriter,
        tokio::task::JoinHandle<()>,
    ) {
        let (dir, store) = crate::store::sqlite::tests::store().await;
        store
            .create_function(&crate::store::sqlite::tests::function("f"))
            .await
            .unwrap();
        let store: Arc<dyn Store> = Arc::new(store);
        let (writer, task) = ExecutionWriter::spawn(store.clone());
        (dir, store, writer, task)
    }

    /// A flush commits what was handed over before it, the last state of each.
    #[tokio::test]
    async fn flush_sees_the_last_state() {
        let (_dir, store, writer, task) = started().await;
        let rec = running();
        writer.write(rec.clone()).await;
        let mut done = rec.clone();
        done.status = ExecutionStatus::Succeeded;
        writer.write(done.clone()).await;
        writer.flush().await;
        assert_eq!(store.get_execution(rec.id).await.unwrap(), Some(done));
        drop(writer);
        task.await.unwrap();
    }

    /// Without a reader, the window still ends: a running record lands on its
    /// own, and everything handed over lands before the task ends.
    #[tokio::test]
    async fn records_land_without_a_flush() {
        let (_dir, store, writer, task) = started().await;
        let rec = running();
        writer.write(rec.clone()).await;
        let mut seen = None;
        for _ in 0..500 {
            seen = store.get_execution(rec.id).await.unwrap();
            if seen.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(seen, Some(rec));

        let last = running();
        writer.write(last.clone()).await;
        drop(writer);
        task.await.unwrap();
        assert_eq!(store.get_execution(last.id).await.unwrap(), Some(last));
    }
}
