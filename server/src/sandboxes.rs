//! Every sandbox running an execution, whatever its backend (a jail, a
//! container, a wasm instance): what the admin API lists and kills.
//!
//! An execution registers itself for as long as it runs and hands the backend
//! a [`RunControl`]; the backend reports its sandbox's name and address there
//! and stops when it is killed. The execution then ends `failed` with reason
//! `killed`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Notify;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::model::BackendKind;

/// One running sandbox.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SandboxInfo {
    /// The sandbox's id in the admin API: its execution's id.
    pub id: Uuid,
    /// The execution it runs.
    pub execution_id: Uuid,
    /// The function.
    pub function: String,
    /// Where it runs.
    pub backend: BackendKind,
    /// The backend's own name for it (the jail, the container id); absent
    /// until the backend has one (a wasm instance has none).
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its IPv4 address, when it has a network with an address of its own.
    #[schema(nullable = false, format = Ipv4)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// When the execution started.
    pub started_at: DateTime<Utc>,
}

#[derive(Default)]
struct ControlInner {
    killed: AtomicBool,
    notify: Notify,
    name: Mutex<Option<String>>,
    address: Mutex<Option<String>>,
}

/// What an execution's backend and the admin API share: a kill switch, and
/// the sandbox's name and address as the backend learns them.
#[derive(Clone, Default)]
pub struct RunControl {
    inner: Arc<ControlInner>,
}

impl std::fmt::Debug for RunControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunControl")
            .field("killed", &self.is_killed())
            .finish()
    }
}

impl RunControl {
    /// Asks the run to stop now.
    pub fn kill(&self) {
        self.inner.killed.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Whether [`RunControl::kill`] was called.
    pub fn is_killed(&self) -> bool {
        self.inner.killed.load(Ordering::SeqCst)
    }

    /// Resolves once the run is killed.
    pub async fn killed(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_killed() {
                return;
            }
            notified.await;
        }
    }

    /// Records the sandbox's name and address (backends call this once set up).
    pub fn set_sandbox(&self, name: String, address: Option<String>) {
        *self.inner.name.lock().expect("control lock") = Some(name);
        *self.inner.address.lock().expect("control lock") = address;
    }
}

struct Entry {
    function: String,
    backend: BackendKind,
    started_at: DateTime<Utc>,
    control: RunControl,
}

impl Entry {
    fn info(&self, id: Uuid) -> SandboxInfo {
        SandboxInfo {
            id,
            execution_id: id,
            function: self.function.clone(),
            backend: self.backend,
            name: self
                .control
                .inner
                .name
                .lock()
                .expect("control lock")
                .clone(),
            address: self
                .control
                .inner
                .address
                .lock()
                .expect("control lock")
                .clone(),
            started_at: self.started_at,
        }
    }
}

/// The registry of running sandboxes.
#[derive(Default)]
pub struct Sandboxes {
    map: Mutex<BTreeMap<Uuid, Entry>>,
}

/// Keeps an execution in the registry; dropping it takes it out.
pub struct Registration {
    sandboxes: Arc<Sandboxes>,
    id: Uuid,
    /// The execution's control, to hand to its backend.
    pub control: RunControl,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.sandboxes
            .map
            .lock()
            .expect("sandboxes lock")
            .remove(&self.id);
    }
}

impl Sandboxes {
    /// Registers execution `id` of `function` on `backend` as running now.
    pub fn register(
        self: &Arc<Self>,
        id: Uuid,
        function: &str,
        backend: BackendKind,
    ) -> Registration {
        let control = RunControl::default();
        self.map.lock().expect("sandboxes lock").insert(
            id,
            Entry {
                function: function.to_string(),
                backend,
                started_at: crate::model::now(),
                control: control.clone(),
            },
        );
        Registration {
            sandboxes: self.clone(),
            id,
            control,
        }
    }

    /// Every running sandbox, oldest first.
    pub fn list(&self) -> Vec<SandboxInfo> {
        let map = self.map.lock().expect("sandboxes lock");
        let mut all: Vec<SandboxInfo> = map.iter().map(|(id, e)| e.info(*id)).collect();
        all.sort_by_key(|s| (s.started_at, s.id));
        all
    }

    /// One running sandbox.
    pub fn get(&self, id: Uuid) -> Option<SandboxInfo> {
        let map = self.map.lock().expect("sandboxes lock");
        map.get(&id).map(|e| e.info(id))
    }

    /// Kills one; what it was, or `None` when no such sandbox runs.
    pub fn kill(&self, id: Uuid) -> Option<SandboxInfo> {
        let map = self.map.lock().expect("sandboxes lock");
        map.get(&id).map(|e| {
            e.control.kill();
            e.info(id)
        })
    }

    /// Kills every running sandbox; what they were.
    pub fn kill_all(&self) -> Vec<SandboxInfo> {
        let map = self.map.lock().expect("sandboxes lock");
        map.iter()
            .map(|(id, e)| {
                e.control.kill();
                e.info(*id)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn registered_runs_are_listed_killed_and_gone_when_dropped() {
        let s = Arc::new(Sandboxes::default());
        let a = s.register(Uuid::now_v7(), "f", BackendKind::Jail);
        let b = s.register(Uuid::now_v7(), "g", BackendKind::Wasm);
        a.control
            .set_sandbox("sbj1".into(), Some("10.0.0.2".into()));
        let all = s.list();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name.as_deref(), Some("sbj1"));
        assert_eq!(all[0].address.as_deref(), Some("10.0.0.2"));
        assert!(s
            .get(b.id)
            .is_some_and(|i| i.function == "g" && i.name.is_none()));

        let waiter = {
            let c = a.control.clone();
            tokio::spawn(async move { c.killed().await })
        };
        assert!(s.kill(a.id).is_some());
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the kill wakes the run")
            .unwrap();
        assert!(a.control.is_killed() && !b.control.is_killed());
        assert!(s.kill(Uuid::now_v7()).is_none());
        assert_eq!(s.kill_all().len(), 2);
        assert!(b.control.is_killed());
        drop((a, b));
        assert!(s.list().is_empty());
    }
}
