//! The docker backend: functions run as containers on a Docker Engine, through
//! bollard.
//!
//! - [`engine`]: the lazily connected client, error mapping, labels, reaping.
//! - [`image`]: pulling named images, packing Go binaries into `FROM scratch`
//!   images, the artifact manifest.
//! - [`container`]: one container's settings, I/O and guaranteed removal.
//!
//! Warm containers live in the shared [`super::pool::Pool`].
//!
//! An artifact is a small JSON [`image::Manifest`] in the artifact cache naming
//! our tag of the image; the image itself lives on the engine.

pub mod container;
pub mod engine;
pub mod image;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use self::container::{Settings, Started, MAX_ENV_INPUT};
use self::engine::Engine;
use self::image::{Manifest, NOBODY};
use super::pool::{Make, Pool, Warm};
use super::{
    function_env, Backend, BackendError, BackendHealth, BuiltArtifact, RunOutcome, RunRequest,
    Runnable, ENV_EXECUTION_ID, ENV_INPUT,
};
use crate::artifacts::ArtifactCache;
use crate::config::DockerConfig;
use crate::metrics::Metrics;
use crate::model::{BackendKind, Function, SourceInfo};
use crate::store::ArtifactRecord;

/// Artifact kind of docker images.
pub const ARTIFACT_KIND: &str = "docker-image";

/// Images and Go built natively; the default bridge network on request; warm
/// containers; at least 6 MiB of memory, the engine's own minimum.
pub const CONSTRAINTS: super::Constraints = super::Constraints {
    sources: &[super::SourceKind::Image, super::SourceKind::Go],
    network: true,
    warm_pool: true,
    min_memory_mb: 6,
};

/// The docker backend.
pub struct DockerBackend {
    engine: Arc<Engine>,
    cache: ArtifactCache,
    cfg: DockerConfig,
    metrics: Arc<Metrics>,
}

impl DockerBackend {
    /// A backend for the engine at `cfg.socket`. Does not connect: the server
    /// starts without Docker, and the first use (or health check) connects.
    pub fn new(
        cfg: &DockerConfig,
        cache: ArtifactCache,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let engine = Arc::new(Engine::new(
            &cfg.socket,
            cfg.api_timeout_secs,
            cache.root(),
        )?);
        Ok(Self {
            engine,
            cache,
            cfg: cfg.clone(),
            metrics,
        })
    }

    /// Connects in the background, so leftovers of an earlier run are reaped at
    /// start-up rather than at the first docker request.
    pub fn connect_in_background(self: &Arc<Self>) {
        let engine = self.engine.clone();
        tokio::spawn(async move {
            if let Err(e) = engine.client().await {
                tracing::info!(error = %e, "docker backend unavailable at start-up; functions on it answer 503 until the engine is reachable");
            }
        });
    }

    fn read_manifest(&self, rel_path: &str) -> Result<Manifest, BackendError> {
        let path = self.cache.resolve(rel_path);
        let artifact = |message: String| BackendError::Artifact {
            path: path.display().to_string(),
            message,
        };
        let bytes = std::fs::read(&path).map_err(|e| artifact(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| artifact(format!("bad manifest: {e}")))
    }
}

#[async_trait]
impl Backend for DockerBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Docker
    }

    async fn health(&self) -> BackendHealth {
        let mut details = BTreeMap::new();
        details.insert("socket".into(), self.cfg.socket.display().to_string());
        details.insert("instance".into(), self.engine.instance().to_string());
        let version = match self.engine.client().await {
            Ok(docker) => {
                let negotiated = docker.client_version();
                details.insert(
                    "api_version".into(),
                    format!("{}.{}", negotiated.major_version, negotiated.minor_version),
                );
                tokio::time::timeout(Duration::from_secs(5), docker.version())
                    .await
                    .map_err(|_| "the engine did not answer within 5 s".to_string())
                    .and_then(|r| r.map_err(|e| self.engine.unavailable(&e).to_string()))
            }
            Err(e) => Err(e.to_string()),
        };
        match version {
            Ok(v) => {
                details.insert("engine_version".into(), v.version.unwrap_or_default());
                details.insert(
                    "engine_api_version".into(),
                    v.api_version.unwrap_or_default(),
                );
                details.insert("warm_pool_size".into(), self.cfg.warm_pool_size.to_string());
                BackendHealth {
                    backend: BackendKind::Docker,
                    available: true,
                    reason: None,
                    details,
                }
            }
            Err(reason) => BackendHealth {
                backend: BackendKind::Docker,
                available: false,
                reason: Some(reason),
                details,
            },
        }
    }

    fn go_target(&self) -> Option<crate::gobuild::GoTarget> {
        Some(crate::gobuild::GoTarget::Native)
    }

    fn artifact_key(&self, source_digest: &str) -> String {
        crate::artifacts::digest(format!("{ARTIFACT_KIND}\n{source_digest}\nv1").as_bytes())
    }

    async fn build(
        &self,
        key: &str,
        f: &Function,
        source: Vec<u8>,
        refresh: bool,
    ) -> Result<BuiltArtifact, BackendError> {
        let started = Instant::now();
        let docker = self.engine.client().await?;
        let tag = image::tag_for(self.engine.instance(), key);
        let mut log = String::new();
        let manifest = match &f.source {
            SourceInfo::Image {
                image,
                command,
                user,
                reads_stdin,
            } => {
                // A cache_bust deploy pulls again: the tag may have moved.
                let (image_id, image_user, has_command) = image::ensure_present(
                    &self.engine,
                    &docker,
                    image,
                    &self.cfg.registries,
                    refresh,
                    &mut log,
                )
                .await?;
                if command.is_none() && !has_command {
                    return Err(BackendError::Build {
                        message: format!("image {image} has no command: set source.command"),
                        log,
                    });
                }
                image::tag(&self.engine, &docker, &image_id, &tag).await?;
                Manifest {
                    tag,
                    image_id,
                    command: command.clone(),
                    user: user
                        .clone()
                        .or_else(|| Some(image_user).filter(|u| !u.is_empty()))
                        .unwrap_or_else(|| NOBODY.to_string()),
                    reads_stdin: *reads_stdin,
                    exit_marker: false,
                }
            }
            SourceInfo::Go { .. } => {
                let image_id =
                    image::build_scratch(&self.engine, &docker, &source, &tag, &mut log).await?;
                Manifest {
                    tag,
                    image_id,
                    command: None,
                    user: NOBODY.to_string(),
                    reads_stdin: super::go_reads_stdin(f),
                    exit_marker: true,
                }
            }
            SourceInfo::Wasm { .. } => {
                return Err(BackendError::Build {
                    message: "the docker backend does not run WASI modules".into(),
                    log,
                })
            }
        };
        let bytes = serde_json::to_vec_pretty(&manifest).expect("manifests serialize");
        let rel_path = self.cache.artifact_rel_path(key, "docker.json")?;
        self.cache.put_artifact(&rel_path, &bytes)?;
        log.push_str(&format!(
            "image {} ready as {} in {} ms\n",
            manifest.image_id,
            manifest.tag,
            started.elapsed().as_millis()
        ));
        Ok(BuiltArtifact {
            rel_path,
            kind: ARTIFACT_KIND.into(),
            size_bytes: bytes.len() as u64,
            log,
        })
    }

    async fn load(&self, rel_path: &str, f: &Function) -> Result<Arc<dyn Runnable>, BackendError> {
        let manifest = self.read_manifest(rel_path)?;
        let docker = self.engine.client().await?;
        if !image::exists(&self.engine, &docker, &manifest.tag).await? {
            return Err(BackendError::Artifact {
                path: rel_path.to_string(),
                message: format!("image {} is no longer on the engine", manifest.tag),
            });
        }
        let settings = Settings {
            function: f.name.clone(),
            limits: f.limits,
            network: f.network,
            pids_limit: self.cfg.pids_limit,
            tmpfs_mb: self.cfg.tmpfs_mb,
            manifest,
        };
        let size = f.warm_pool_size.unwrap_or(self.cfg.warm_pool_size) as usize;
        let pool = (settings.manifest.reads_stdin && size > 0).then(|| {
            let env = function_env(f, false);
            let (engine, settings, pool_env) = (self.engine.clone(), settings.clone(), env.clone());
            let make: Make<Started> = Arc::new(move || {
                let (engine, settings, env) = (engine.clone(), settings.clone(), pool_env.clone());
                Box::pin(async move {
                    let docker = engine.client().await?;
                    container::start(&engine, &docker, &settings, &env, WARM).await
                })
            });
            Pool::start(
                &f.name,
                make,
                env,
                size,
                Duration::from_millis(self.cfg.pool_idle_ttl_ms),
                self.metrics
                    .warm_ready
                    .with_label_values(&[f.name.as_str()]),
            )
        });
        Ok(Arc::new(DockerRunnable {
            engine: self.engine.clone(),
            settings,
            pool,
            metrics: self.metrics.clone(),
        }))
    }

    async fn discard(&self, artifact: &ArtifactRecord) {
        if artifact.kind != ARTIFACT_KIND {
            return;
        }
        let (Ok(manifest), Ok(docker)) = (
            self.read_manifest(&artifact.path),
            self.engine.client().await,
        ) else {
            return;
        };
        image::untag(&docker, &manifest.tag).await;
    }

    async fn shutdown(&self) {
        self.engine.remove_all().await;
    }
}

/// Label value of a pooled container not yet serving an execution.
pub const WARM: &str = "warm";

impl Warm for Started {
    fn has_exited(&mut self) -> bool {
        Started::has_exited(self)
    }
    fn describe(&self) -> String {
        self.id.clone()
    }
}

/// A deployed docker function.
struct DockerRunnable {
    engine: Arc<Engine>,
    settings: Settings,
    pool: Option<Arc<Pool<Started>>>,
    metrics: Arc<Metrics>,
}

#[async_trait]
impl Runnable for DockerRunnable {
    async fn run(&self, req: RunRequest) -> Result<RunOutcome, BackendError> {
        let started = Instant::now();
        let deadline = started + Duration::from_millis(req.limits.timeout_ms);
        // A daemon that accepts connections but does not answer must not hold
        // an invocation past its time limit: that is the engine's failure.
        let stalled = || {
            BackendError::Unavailable {
            backend: BackendKind::Docker,
            reason: format!(
                "the Docker Engine did not start the container within the function's {} ms time limit",
                req.limits.timeout_ms
            ),
        }
        };
        let docker = tokio::time::timeout_at(deadline.into(), self.engine.client())
            .await
            .map_err(|_| stalled())??;
        let execution = req.execution_id.to_string();
        if let Some(pool) = &self.pool {
            let base: Vec<(String, String)> = req
                .env
                .iter()
                .filter(|(k, _)| k != ENV_INPUT && k != ENV_EXECUTION_ID)
                .cloned()
                .collect();
            let hit = pool.take(&base);
            let result = if hit.is_some() { "hit" } else { "miss" };
            self.metrics
                .warm_pool
                .with_label_values(&[self.settings.function.as_str(), result])
                .inc();
            if let Some(c) = hit {
                tracing::debug!(%execution, container = %c.id, "running on a warm container");
                req.control.set_sandbox(c.id.clone(), None);
                let outcome = c
                    .finish(
                        &self.engine,
                        &req.stdin,
                        started,
                        &req.limits,
                        req.max_output_bytes,
                    )
                    .await;
                pool.refill();
                return outcome;
            }
            pool.refill();
        }
        let mut env = req.env;
        if req.stdin.len() > MAX_ENV_INPUT {
            env.retain(|(k, _)| k != ENV_INPUT);
        }
        let c = tokio::time::timeout_at(
            deadline.into(),
            container::start(&self.engine, &docker, &self.settings, &env, &execution),
        )
        .await
        .map_err(|_| stalled())??;
        req.control.set_sandbox(c.id.clone(), None);
        c.finish(
            &self.engine,
            &req.stdin,
            started,
            &req.limits,
            req.max_output_bytes,
        )
        .await
    }
}
