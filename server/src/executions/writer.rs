//! Background writer for execution records.
//!
//! The invoke hot path hands records to this task instead of waiting on SQLite:
//! records queued while a transaction commits go out together in the next one
//! (group commit), and successive states of one execution in a batch collapse into
//! the last. Readers call [`ExecutionWriter::flush`] first, so an API read always
//! sees every write that was handed over before it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::model::ExecutionRecord;
use crate::store::Store;

const MAX_BATCH: usize = 512;
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
}

impl ExecutionWriter {
    /// Starts the writer task.
    pub fn spawn(store: Arc<dyn Store>) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(store, rx));
        (Self { tx }, task)
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
            let _ = wait.await;
        }
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Msg>) {
    let mut batch: Vec<ExecutionRecord> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
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
}
