//! The connection to the Docker Engine: lazily connected, version-negotiated,
//! and the one place that decides which engine errors mean "Docker is down".
//!
//! Every container this server creates carries labels naming the data dir that
//! owns it (`instance`) and the process that made it (`boot`). When the engine
//! is first reached, containers of the same instance but an earlier boot are
//! leftovers of a run that died, and are removed before anything else happens.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bollard::errors::Error as DockerError;
use bollard::query_parameters::{EventsOptions, ListContainersOptions, RemoveContainerOptions};
use bollard::Docker;
use futures::StreamExt;
use tokio::sync::{oneshot, Mutex};

use crate::backend::BackendError;
use crate::model::BackendKind;

/// Label on everything Skybridge creates.
pub const LABEL_MANAGED_BY: &str = "skybridge.managed-by";
/// The data dir (server instance) a container belongs to.
pub const LABEL_INSTANCE: &str = "skybridge.instance";
/// The server process that created it.
pub const LABEL_BOOT: &str = "skybridge.boot";
/// The function it runs.
pub const LABEL_FUNCTION: &str = "skybridge.function";
/// The execution it runs, or `warm` for a pooled container not yet taken.
pub const LABEL_EXECUTION: &str = "skybridge.execution";

/// How a container's process ended: its exit code, or why that is unknown.
pub type ExitStatus = Result<i64, String>;

/// Where a container's exit status goes. Two sources race to fill it: the
/// engine's `die` event (sent before the engine unmounts the container, about
/// 10 ms earlier) and a wait request (the fallback if the event stream is down).
#[derive(Clone)]
pub struct ExitSlot(Arc<std::sync::Mutex<Option<oneshot::Sender<ExitStatus>>>>);

impl ExitSlot {
    /// A slot and the receiver of the first status delivered to it.
    pub fn new() -> (Self, oneshot::Receiver<ExitStatus>) {
        let (tx, rx) = oneshot::channel();
        (Self(Arc::new(std::sync::Mutex::new(Some(tx)))), rx)
    }

    /// Delivers `status` unless an earlier one was.
    pub fn deliver(&self, status: ExitStatus) {
        if let Some(tx) = self.0.lock().expect("exit slot lock").take() {
            let _ = tx.send(status);
        }
    }
}

/// A lazily connected Docker client.
pub struct Engine {
    socket: PathBuf,
    timeout_secs: u64,
    instance: String,
    boot: String,
    client: Mutex<Option<Docker>>,
    /// Containers whose `die` event someone waits for, by id.
    exits: std::sync::Mutex<HashMap<String, ExitSlot>>,
    /// Set at shutdown: no new containers after the final clean-up lists them.
    closing: std::sync::atomic::AtomicBool,
}

impl Engine {
    /// An engine at `socket`, for the server instance that owns `data_dir`.
    pub fn new(socket: &Path, timeout_secs: u64, data_dir: &Path) -> std::io::Result<Self> {
        Ok(Self {
            socket: socket.to_owned(),
            timeout_secs,
            instance: crate::artifacts::instance_id(data_dir)?,
            boot: uuid::Uuid::new_v4().simple().to_string(),
            client: Mutex::new(None),
            exits: Default::default(),
            closing: Default::default(),
        })
    }

    /// Refuses new containers once shutdown has begun.
    pub fn check_open(&self) -> Result<(), BackendError> {
        if self.closing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(BackendError::Unavailable {
                backend: BackendKind::Docker,
                reason: "the server is shutting down".into(),
            });
        }
        Ok(())
    }

    /// Routes the `die` event of container `id` to `slot`.
    pub fn watch_exit(&self, id: &str, slot: ExitSlot) {
        self.exits
            .lock()
            .expect("exits lock")
            .insert(id.to_string(), slot);
    }

    /// Stops routing events of `id` (its container is gone).
    pub fn forget_exit(&self, id: &str) {
        self.exits.lock().expect("exits lock").remove(id);
    }

    /// This server instance's id (stable across restarts of one data dir).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// A connected client. The first success negotiates the API version (the
    /// engine may speak an older one than bollard) and reaps leftovers of earlier
    /// runs; failures are [`BackendError::Unavailable`], quickly.
    pub async fn client(self: &Arc<Self>) -> Result<Docker, BackendError> {
        let mut slot = self.client.lock().await;
        if let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        let path = self.socket.to_string_lossy().into_owned();
        let docker =
            Docker::connect_with_unix(&path, self.timeout_secs, bollard::API_DEFAULT_VERSION)
                .map_err(|e| self.unavailable(&e))?;
        // Negotiation is a short request: do not wait the long API timeout on a
        // daemon that accepts connections but does not answer.
        let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
            .await
            .map_err(|_| self.unavailable_msg("the engine did not answer within 10 s"))?
            .map_err(|e| self.unavailable(&e))?;
        self.reap(&docker).await;
        tokio::spawn(watch_die_events(
            Arc::downgrade(self),
            self.instance.clone(),
        ));
        *slot = Some(docker.clone());
        Ok(docker)
    }

    /// Labels for a new container.
    pub fn labels(&self, function: &str, execution: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_MANAGED_BY.into(), "skybridge".into()),
            (LABEL_INSTANCE.into(), self.instance.clone()),
            (LABEL_BOOT.into(), self.boot.clone()),
            (LABEL_FUNCTION.into(), function.into()),
            (LABEL_EXECUTION.into(), execution.into()),
        ])
    }

    /// Maps an engine error: connection-level failures mean the engine is
    /// unavailable; an answer from the engine is passed on as `what: message`.
    pub fn error(&self, what: &str, e: DockerError) -> BackendError {
        match e {
            DockerError::DockerResponseServerError { message, .. } => {
                BackendError::Engine(format!("{what}: {message}"))
            }
            other => self.unavailable(&other),
        }
    }

    /// [`BackendError::Unavailable`] for a connection failure.
    pub fn unavailable(&self, e: &DockerError) -> BackendError {
        self.unavailable_msg(&e.to_string())
    }

    fn unavailable_msg(&self, detail: &str) -> BackendError {
        BackendError::Unavailable {
            backend: BackendKind::Docker,
            reason: format!(
                "cannot reach the Docker Engine at {}: {detail}; start dockerd (scripts/lib.sh `start_docker` does) or set docker.socket",
                self.socket.display()
            ),
        }
    }

    /// Removes a container, running or not; a container already gone is fine.
    pub async fn remove(&self, docker: &Docker, id: &str) {
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match docker.remove_container(id, Some(opts)).await {
            Ok(()) => {}
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            // "removal already in progress" (409) ends the same way.
            Err(DockerError::DockerResponseServerError {
                status_code: 409, ..
            }) => {}
            Err(e) => {
                tracing::warn!(container = id, error = %e, "removing a container failed; it is reaped at the next start")
            }
        }
    }

    /// Containers of this instance; with `only_earlier_boots`, those left by
    /// earlier runs of this server only.
    async fn owned(&self, docker: &Docker, only_earlier_boots: bool) -> Vec<String> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_INSTANCE}={}", self.instance)],
        )]);
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        match docker.list_containers(Some(opts)).await {
            Ok(list) => list
                .into_iter()
                .filter(|c| {
                    let boot = c.labels.as_ref().and_then(|l| l.get(LABEL_BOOT));
                    !only_earlier_boots || boot.map(String::as_str) != Some(self.boot.as_str())
                })
                .filter_map(|c| c.id)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "listing containers failed");
                Vec::new()
            }
        }
    }

    async fn reap(&self, docker: &Docker) {
        let leftovers = self.owned(docker, true).await;
        if !leftovers.is_empty() {
            tracing::info!(
                count = leftovers.len(),
                "removing containers left by an earlier run"
            );
        }
        futures::future::join_all(leftovers.iter().map(|id| self.remove(docker, id))).await;
    }

    /// Removes every container this process created (shutdown).
    pub async fn remove_all(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let Some(docker) = self.client.lock().await.clone() else {
            return; // never connected: nothing created
        };
        // Removals still running in the background can answer "in progress"
        // (409): look again until nothing is left, briefly.
        for _ in 0..5 {
            let mine = self.owned(&docker, false).await;
            if mine.is_empty() {
                return;
            }
            futures::future::join_all(mine.iter().map(|id| self.remove(&docker, id))).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Streams this instance's `die` events for as long as the engine exists,
/// resubscribing after the engine restarts, and hands each exit code to the
/// container's slot.
async fn watch_die_events(engine: Weak<Engine>, instance: String) {
    let filters = HashMap::from([
        ("type".to_string(), vec!["container".to_string()]),
        ("event".to_string(), vec!["die".to_string()]),
        (
            "label".to_string(),
            vec![format!("{LABEL_INSTANCE}={instance}")],
        ),
    ]);
    loop {
        let docker = match engine.upgrade() {
            Some(e) => e.client.lock().await.clone(),
            None => return,
        };
        if let Some(docker) = docker {
            let opts = EventsOptions {
                filters: Some(filters.clone()),
                ..Default::default()
            };
            let mut events = docker.events(Some(opts));
            while let Some(Ok(event)) = events.next().await {
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                let Some(actor) = event.actor else { continue };
                let code = actor
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get("exitCode"))
                    .and_then(|c| c.parse::<i64>().ok());
                let slot = actor
                    .id
                    .and_then(|id| engine.exits.lock().expect("exits lock").remove(&id));
                if let (Some(slot), Some(code)) = (slot, code) {
                    slot.deliver(Ok(code));
                }
            }
        }
        // The stream ended: the engine went away. Wait requests cover exits
        // meanwhile; resubscribe in a moment.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_socket_is_unavailable_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let e = Arc::new(Engine::new(&dir.path().join("no.sock"), 5, dir.path()).unwrap());
        match e.client().await {
            Err(BackendError::Unavailable { reason, .. }) => {
                assert!(
                    reason.contains("no.sock") && reason.contains("dockerd"),
                    "{reason}"
                )
            }
            other => panic!("expected unavailable, got {:?}", other.map(|_| ())),
        }
    }
}
