//! Function lifecycle: validate, store, deploy (build through the artifact cache),
//! and keep each function's live deployment loaded for the invoke hot path.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use uuid::Uuid;

use crate::artifacts::ArtifactCache;
use crate::backend::{BackendError, Backends, Runnable};
use crate::config::LimitsConfig;
use crate::contract;
use crate::error::{AppError, AppResult};
use crate::gobuild::GoBuilder;
use crate::metrics::Metrics;
use crate::model::{
    Deployment, DeploymentStatus, ExecutionStatus, Function, FunctionSpec, Limits, SourceInfo,
    SourceSpec,
};
use crate::store::{ArtifactRecord, DeploymentRecord, Store, StoreError};

/// A ready deployment, loaded and runnable.
pub struct LiveDeployment {
    /// The deployment and the function spec it was built from.
    pub record: DeploymentRecord,
    /// The loaded artifact.
    pub runnable: Arc<dyn Runnable>,
}

/// Function CRUD, deploys and the live-deployment cache.
pub struct FunctionService {
    store: Arc<dyn Store>,
    backends: Backends,
    cache: ArtifactCache,
    go: Arc<GoBuilder>,
    limits: LimitsConfig,
    max_warm_pool_size: u32,
    metrics: Arc<Metrics>,
    live: RwLock<HashMap<String, Arc<LiveDeployment>>>,
    /// Serializes the short steps that change which deployment is live (install,
    /// delete, cache fill, artifact GC), so a deleted function cannot come back
    /// through a racing cache fill.
    lifecycle: tokio::sync::Mutex<()>,
    /// One lock per artifact key: concurrent deploys of the same source build once.
    builds: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A built (or cache-hit) artifact, with its build lock still held.
struct Built {
    artifact: ArtifactRecord,
    log: String,
    commit: Option<String>,
    _held: tokio::sync::OwnedMutexGuard<()>,
}

/// What validation makes of a submitted spec.
#[derive(Debug)]
pub struct ValidSpec {
    /// Limits with defaults applied.
    pub limits: Limits,
    /// Decoded source bytes.
    pub source: Vec<u8>,
}

/// Checks a submitted spec against the published contract and the configured
/// limits; pure, no I/O. `max_warm_pool_size` is the larger of
/// `docker.max_warm_pool_size` and `jail.max_warm_pool_size` (each backend
/// checks its own).
pub fn validate_spec(
    spec: &FunctionSpec,
    cfg: &LimitsConfig,
    max_warm_pool_size: u32,
) -> AppResult<ValidSpec> {
    if !contract::FUNCTION_NAME.matches(&spec.name) {
        return Err(AppError::validation(
            "name",
            "must be 1-63 characters of a-z, 0-9, `-` and `_`, starting with a letter or digit",
        ));
    }
    let memory_mb = spec.limits.memory_mb.unwrap_or(cfg.default_memory_mb);
    if memory_mb == 0 || memory_mb > cfg.max_memory_mb {
        return Err(AppError::validation(
            "limits.memory_mb",
            format!(
                "must be between 1 and {} (the server's limits.max_memory_mb)",
                cfg.max_memory_mb
            ),
        ));
    }
    let timeout_ms = spec.limits.timeout_ms.unwrap_or(cfg.default_timeout_ms);
    if timeout_ms == 0 || timeout_ms > cfg.max_timeout_ms {
        return Err(AppError::validation(
            "limits.timeout_ms",
            format!(
                "must be between 1 and {} (the server's limits.max_timeout_ms)",
                cfg.max_timeout_ms
            ),
        ));
    }
    let cpus = spec.limits.cpus.unwrap_or(cfg.default_cpus);
    if !(0.01..=cfg.max_cpus).contains(&cpus) {
        return Err(AppError::validation(
            "limits.cpus",
            format!(
                "must be between 0.01 and {} (the server's limits.max_cpus)",
                cfg.max_cpus
            ),
        ));
    }
    if spec.warm_pool_size.unwrap_or(0) > max_warm_pool_size {
        return Err(AppError::validation(
            "warm_pool_size",
            format!(
                "must be at most {max_warm_pool_size} (the server's docker./jail.max_warm_pool_size)"
            ),
        ));
    }
    if spec.env.len() > cfg.max_env_vars {
        return Err(AppError::validation(
            "env",
            format!(
                "at most {} variables (the server's limits.max_env_vars)",
                cfg.max_env_vars
            ),
        ));
    }
    for (k, v) in &spec.env {
        if !contract::ENV_NAME.matches(k) {
            let why = if k.starts_with("SKYBRIDGE_") {
                "the SKYBRIDGE_ prefix is reserved for variables the platform sets"
            } else {
                "names are letters, digits and `_`, not starting with a digit"
            };
            return Err(AppError::validation(format!("env.{k}"), why));
        }
        if !contract::NO_NUL.matches(v) {
            return Err(AppError::validation(
                format!("env.{k}"),
                "values cannot contain NUL",
            ));
        }
    }
    let source = match &spec.source {
        SourceSpec::Go { .. } => {
            let go = spec.source.go().expect("a Go source");
            crate::gobuild::check_source(&go)
                .map_err(|(field, m)| AppError::validation(field, m))?;
            Vec::new()
        }
        SourceSpec::Image {
            image,
            command,
            user,
            ..
        } => {
            check_image_source(image, command.as_deref(), user.as_deref())?;
            Vec::new()
        }
        SourceSpec::Wasm { module } => {
            if !contract::WASM_MODULE.matches(module) {
                return Err(AppError::validation(
                    "source.module",
                    "must be a WebAssembly binary (it starts with \\0asm) in canonical, padded standard base64",
                ));
            }
            base64::engine::general_purpose::STANDARD
                .decode(module)
                .map_err(|e| {
                    AppError::validation("source.module", format!("is not valid base64: {e}"))
                })?
        }
    };
    Ok(ValidSpec {
        limits: Limits {
            memory_mb,
            timeout_ms,
            cpus,
        },
        source,
    })
}

/// An image reference in Docker's grammar; a command is a non-empty list whose
/// first element names a program, without NUL; a user is `name`, `uid` or `uid:gid`.
fn check_image_source(
    image: &str,
    command: Option<&[String]>,
    user: Option<&str>,
) -> AppResult<()> {
    if !contract::fits(&contract::IMAGE_REF, contract::MAX_IMAGE_CHARS, image) {
        return Err(AppError::validation(
            "source.image",
            "must be an image reference such as `alpine:3.20` or `registry.example.com/team/fn@sha256:…`",
        ));
    }
    if let Some(cmd) = command {
        if cmd.is_empty() || cmd[0].is_empty() {
            return Err(AppError::validation(
                "source.command",
                "must name a program: a non-empty list such as [\"sh\", \"-c\", \"cat\"]; leave it out to use the image's own",
            ));
        }
        if !cmd.iter().all(|a| contract::NO_NUL.matches(a)) {
            return Err(AppError::validation(
                "source.command",
                "arguments cannot contain NUL",
            ));
        }
    }
    if let Some(u) = user {
        if !contract::fits(&contract::IMAGE_USER, contract::MAX_USER_CHARS, u) {
            return Err(AppError::validation(
                "source.user",
                "must be a user name, a uid, or uid:gid",
            ));
        }
    }
    Ok(())
}

impl FunctionService {
    /// A service over `store`, building through `backends` (and `go` for Go
    /// sources) into `cache`; specs are checked against `config`'s limits.
    pub fn new(
        store: Arc<dyn Store>,
        backends: Backends,
        cache: ArtifactCache,
        go: Arc<GoBuilder>,
        config: &crate::config::Config,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            backends,
            cache,
            go,
            limits: config.limits.clone(),
            max_warm_pool_size: config
                .docker
                .max_warm_pool_size
                .max(config.jail.max_warm_pool_size),
            metrics,
            live: RwLock::default(),
            lifecycle: tokio::sync::Mutex::new(()),
            builds: std::sync::Mutex::default(),
        }
    }

    /// The Go build pipeline.
    pub fn go(&self) -> &GoBuilder {
        &self.go
    }

    /// Validates a spec and turns it into a function (source stored, row not yet
    /// written). Call under the lifecycle lock so GC cannot take the source away.
    fn materialize(
        &self,
        spec: FunctionSpec,
        version: i64,
        created: Option<chrono::DateTime<chrono::Utc>>,
    ) -> AppResult<Function> {
        let valid = validate_spec(&spec, &self.limits, self.max_warm_pool_size)?;
        let backend = self
            .backends
            .get(spec.backend)
            .map_err(|_| AppError::UnsupportedBackend(spec.backend))?;
        let source = match spec.source {
            SourceSpec::Go { .. } => SourceInfo::from(spec.source.go().expect("a Go source")),
            SourceSpec::Image {
                image,
                command,
                user,
                reads_stdin,
            } => SourceInfo::Image {
                image,
                command,
                user,
                reads_stdin,
            },
            SourceSpec::Wasm { .. } => SourceInfo::Wasm {
                digest: crate::artifacts::digest(&valid.source),
                size_bytes: valid.source.len() as u64,
            },
        };
        let now = crate::model::now();
        let f = Function {
            name: spec.name,
            backend: spec.backend,
            source,
            env: spec.env,
            limits: valid.limits,
            network: spec.network,
            warm_pool_size: spec.warm_pool_size,
            version,
            created_at: created.unwrap_or(now),
            updated_at: now,
        };
        backend
            .accepts(&f)
            .map_err(|(field, message)| AppError::UnsupportedByBackend {
                backend: f.backend,
                field: field.into(),
                message,
            })?;
        if f.source.blob_digest().is_some() {
            self.cache
                .put_source(&valid.source)
                .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("storing source")))?;
        }
        Ok(f)
    }

    /// A `call` that is not all literals is compiled as written: check it with Go's
    /// parser now, when a toolchain is there, so a bad call fails at create.
    async fn check_call(&self, spec: &FunctionSpec) -> AppResult<()> {
        if let SourceSpec::Go {
            call: Some(call),
            handler: None,
            ..
        } = &spec.source
        {
            // A call that breaks the published pattern is a plain validation
            // error (validate_spec); Go's parser only sees well-shaped calls.
            if crate::gobuild::shim::parse_literal_call(call).is_none()
                && self.go.available()
                && crate::contract::GO_CALL.matches(call)
            {
                if let Err(message) = self.go.check_call(call, spec.backend).await? {
                    return Err(AppError::InvalidCall {
                        field: "source.call".into(),
                        message,
                    });
                }
            }
        }
        Ok(())
    }

    /// Creates a function (not deployed).
    pub async fn create(&self, spec: FunctionSpec) -> AppResult<Function> {
        self.check_call(&spec).await?;
        let _guard = self.lifecycle.lock().await;
        let f = self.materialize(spec, 1, None)?;
        if let Err(e) = self.store.create_function(&f).await {
            self.remove_unused_source(&f.source).await;
            return Err(match e {
                StoreError::Conflict(name) => AppError::FunctionExists(name),
                other => other.into(),
            });
        }
        Ok(f)
    }

    /// Replaces a function's spec. The live deployment keeps running until the next
    /// deploy. Two racing updates cannot both win: the loser gets 409 `conflict`.
    pub async fn update(&self, name: &str, spec: FunctionSpec) -> AppResult<Function> {
        if spec.name != name {
            return Err(AppError::validation(
                "name",
                format!("must match the name in the path (`{name}`); functions cannot be renamed"),
            ));
        }
        self.check_call(&spec).await?;
        let _guard = self.lifecycle.lock().await;
        let old = self.get(name).await?;
        let f = self.materialize(spec, old.version + 1, Some(old.created_at))?;
        if !self.store.update_function(&f, old.version).await? {
            self.remove_unused_source(&f.source).await;
            return Err(match self.store.get_function(name).await? {
                None => AppError::FunctionNotFound(name.into()),
                Some(_) => StoreError::Conflict(format!(
                    "function `{name}` changed during the update; retry"
                ))
                .into(),
            });
        }
        if old.source != f.source {
            self.remove_unused_source(&old.source).await;
        }
        Ok(f)
    }

    /// One function.
    pub async fn get(&self, name: &str) -> AppResult<Function> {
        self.store
            .get_function(name)
            .await?
            .ok_or_else(|| AppError::FunctionNotFound(name.into()))
    }

    /// A page of functions by name.
    pub async fn list(&self, after: Option<&str>, limit: u32) -> AppResult<Vec<Function>> {
        Ok(self.store.list_functions(after, limit).await?)
    }

    /// Deletes a function, its deployments and executions, and artifacts nothing else uses.
    pub async fn delete(&self, name: &str) -> AppResult<()> {
        let _guard = self.lifecycle.lock().await;
        let f = self.get(name).await?;
        if !self.store.delete_function(name).await? {
            return Err(AppError::FunctionNotFound(name.into()));
        }
        self.live.write().expect("live lock").remove(name);
        for status in ExecutionStatus::ALL {
            let _ = self.metrics.invocations.remove_label_values(&[
                name,
                f.backend.as_str(),
                status.as_str(),
            ]);
        }
        self.collect_artifacts().await;
        self.remove_unused_source(&f.source).await;
        Ok(())
    }

    /// Removes a source blob no function uses. Call under the lifecycle lock.
    /// Failures are logged: garbage left behind costs disk, not correctness.
    async fn remove_unused_source(&self, source: &SourceInfo) {
        let Some(digest) = source.blob_digest() else {
            return; // Go sources live in the repository mirror
        };
        let result: anyhow::Result<()> = async {
            if !self.store.source_in_use(digest).await? {
                self.cache.remove_source(digest)?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %format!("{e:#}"), %digest, "removing an unused source failed");
        }
    }

    /// Removes artifacts no deployment refers to. Call under the lifecycle lock.
    /// An artifact whose build lock is held belongs to a deploy in progress that
    /// has not recorded it yet: it is skipped.
    async fn collect_artifacts(&self) {
        let result: anyhow::Result<()> = async {
            for a in self.store.unreferenced_artifacts().await? {
                let lock = self.build_lock(&a.digest);
                let Ok(_held) = lock.try_lock() else { continue };
                for backend in self.backends.all() {
                    backend.discard(&a).await;
                }
                self.cache.remove_artifact(&a.path)?;
                self.store.delete_artifact(&a.digest).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %format!("{e:#}"), "artifact garbage collection failed");
        }
        self.forget_idle_build_locks();
    }

    fn build_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut builds = self.builds.lock().expect("builds lock");
        builds.entry(key.to_string()).or_default().clone()
    }

    /// Drops build locks nobody holds or waits for, so the map does not grow forever.
    fn forget_idle_build_locks(&self) {
        self.builds
            .lock()
            .expect("builds lock")
            .retain(|_, lock| Arc::strong_count(lock) > 1);
    }

    /// A page of a function's deployments, newest first.
    pub async fn deployments(
        &self,
        name: &str,
        before: Option<Uuid>,
        limit: u32,
    ) -> AppResult<Vec<Deployment>> {
        self.get(name).await?;
        Ok(self.store.list_deployments(name, before, limit).await?)
    }

    /// Builds the function's current spec into a ready deployment.
    /// A failed build is stored as a `failed` deployment and reported as
    /// [`AppError::DeploymentFailed`] with the build's message. Run it detached
    /// from the request (see `api::detached`): a hang-up must not strand a build.
    /// `cache_bust` fetches and rebuilds even when the artifact is cached, and
    /// replaces it.
    pub async fn deploy(&self, name: &str, cache_bust: bool) -> AppResult<Deployment> {
        let f = self.get(name).await?;
        let backend = self
            .backends
            .get(f.backend)
            .map_err(|_| AppError::UnsupportedBackend(f.backend))?
            .clone();
        let mut rec = DeploymentRecord {
            deployment: Deployment {
                id: Uuid::now_v7(),
                function: f.name.clone(),
                function_version: f.version,
                status: DeploymentStatus::Building,
                artifact_digest: None,
                resolved_commit: None,
                build_log: String::new(),
                error: None,
                created_at: crate::model::now(),
                finished_at: None,
            },
            snapshot: f.clone(),
        };
        self.store.put_deployment(&rec).await?;

        // The build lock stays held until the deployment refers to the artifact,
        // so garbage collection cannot remove it in between.
        let mut outcome = self
            .build_and_load(backend.as_ref(), &f, cache_bust, &mut rec)
            .await;
        if let Err(BackendError::Artifact { path, message }) = &outcome {
            // A cached artifact whose backing is gone (an image removed from
            // the engine): build it again instead of failing the deploy.
            tracing::warn!(function = name, %path, %message, "cached artifact does not load; rebuilding it");
            outcome = self
                .build_and_load(backend.as_ref(), &f, true, &mut rec)
                .await;
        }
        rec.deployment.finished_at = Some(crate::model::now());
        let (artifact, runnable, _held) = match outcome {
            Ok(ok) => ok,
            Err(e) => return Err(self.record_failed_deployment(rec, e).await),
        };

        let _guard = self.lifecycle.lock().await;
        match self.store.get_function(name).await? {
            Some(current) if current.created_at == f.created_at => {}
            _ => {
                // Deleted (and maybe re-created) while building: this build is stale.
                return Err(AppError::FunctionNotFound(name.into()));
            }
        }
        rec.deployment.status = DeploymentStatus::Ready;
        self.store.put_artifact(&artifact).await?;
        self.store.put_deployment(&rec).await?;
        let live = Arc::new(LiveDeployment {
            record: rec.clone(),
            runnable,
        });
        let mut map = self.live.write().expect("live lock");
        // Two racing deploys: the newer one (ids are time-ordered) wins.
        let newer = map
            .get(name)
            .is_none_or(|cur| cur.record.deployment.id < rec.deployment.id);
        if newer {
            map.insert(name.to_string(), live);
        }
        Ok(rec.deployment)
    }

    /// Builds (or finds) `f`'s artifact and loads it, recording the build in `rec`.
    async fn build_and_load(
        &self,
        backend: &dyn crate::backend::Backend,
        f: &Function,
        force: bool,
        rec: &mut DeploymentRecord,
    ) -> Result<(ArtifactRecord, Arc<dyn Runnable>, Built), BackendError> {
        let built = self
            .build_artifact(backend, f, force, true, &mut rec.deployment.resolved_commit)
            .await?;
        rec.deployment.build_log = built.log.clone();
        rec.deployment.artifact_digest = Some(built.artifact.digest.clone());
        rec.deployment.resolved_commit = built.commit.clone();
        let runnable = backend.load(&built.artifact.path, f).await?;
        Ok((built.artifact.clone(), runnable, built))
    }

    /// Stores a failed deployment and picks the API error: the build's own failure
    /// is the user's (422 with its message); anything else is the platform's.
    async fn record_failed_deployment(
        &self,
        mut rec: DeploymentRecord,
        e: BackendError,
    ) -> AppError {
        let message = match &e {
            BackendError::Build { message, log } => {
                rec.deployment.build_log.push_str(log);
                message.clone()
            }
            BackendError::Engine(message) => {
                rec.deployment.build_log.push_str(&format!("{message}\n"));
                message.clone()
            }
            other => other.to_string(),
        };
        rec.deployment.status = DeploymentStatus::Failed;
        rec.deployment.error = Some(message.clone());
        if let Err(store_err) = self.store.put_deployment(&rec).await {
            return store_err.into();
        }
        match e {
            // The engine refusing what the function names (an image reference
            // it does not take, a registry that answers 4xx) fails the
            // deployment like a compiler error does.
            BackendError::Build { .. } | BackendError::Engine(_) => AppError::DeploymentFailed {
                id: rec.deployment.id,
                message,
            },
            other => other.into(),
        }
    }

    /// Finds the artifact in the cache or builds it (once per key, however many
    /// deploys ask at the same time; `force` rebuilds anyway). Go sources are
    /// fetched first (`refresh`: also when the mirror exists) to pin the commit,
    /// which is part of the key.
    /// `resolved` receives the commit as soon as it is known, so a deployment
    /// whose build then fails still records what it built.
    async fn build_artifact(
        &self,
        backend: &dyn crate::backend::Backend,
        f: &Function,
        force: bool,
        refresh: bool,
        resolved: &mut Option<String>,
    ) -> Result<Built, BackendError> {
        let mut log = String::new();
        let (input_digest, prepared) = match f.source.go() {
            None => (
                f.source
                    .input_digest()
                    .expect("non-Go sources have an input digest"),
                None,
            ),
            Some(go) => {
                let target = backend.go_target().ok_or_else(|| BackendError::Build {
                    message: format!(
                        "the {} backend does not run Go sources",
                        backend.kind().as_str()
                    ),
                    log: String::new(),
                })?;
                let p = self
                    .go
                    .prepare(&go, target, backend.kind(), refresh)
                    .await?;
                log.push_str(&p.log);
                (p.input_digest.clone(), Some(p))
            }
        };
        let commit = prepared.as_ref().map(|p| p.commit.clone());
        resolved.clone_from(&commit);
        let key = backend.artifact_key(&input_digest);
        self.forget_idle_build_locks();
        let held = self.build_lock(&key).lock_owned().await;
        if !force {
            if let Ok(Some(existing)) = self.store.get_artifact(&key).await {
                if self.cache.resolve(&existing.path).exists() {
                    log.push_str(&format!("artifact cache hit: {key}\n"));
                    return Ok(Built {
                        artifact: existing,
                        log,
                        commit,
                        _held: held,
                    });
                }
            }
        }
        let result = async {
            let (source, mut build_log) = match &prepared {
                None if f.source.blob_digest().is_some() => {
                    (self.cache.read_source(&input_digest)?, String::new())
                }
                None => (Vec::new(), String::new()),
                Some(p) => self.go.compile(p, backend.kind()).await?,
            };
            let built = backend.build(&key, f, source, force).await?;
            build_log.push_str(&built.log);
            Ok((built, build_log))
        }
        .await;
        self.metrics
            .builds
            .with_label_values(&[
                backend.kind().as_str(),
                if result.is_ok() { "ok" } else { "failed" },
            ])
            .inc();
        let (built, build_log) = result.map_err(|e| match e {
            BackendError::Build { message, log: l } => BackendError::Build {
                message,
                log: format!("{log}{l}"),
            },
            other => other,
        })?;
        log.push_str(&build_log);
        Ok(Built {
            artifact: ArtifactRecord {
                digest: key,
                kind: built.kind,
                path: built.rel_path,
                size_bytes: built.size_bytes,
                source_digest: input_digest,
            },
            log,
            commit,
            _held: held,
        })
    }

    /// The live deployment of `name`: from memory, else loaded from the store
    /// (after a restart) without rebuilding. An artifact this engine can no longer
    /// load (e.g. written by another wasmtime version) is rebuilt from the stored
    /// source once, instead of failing every invoke.
    pub async fn live(&self, name: &str) -> AppResult<Arc<LiveDeployment>> {
        if let Some(live) = self.live.read().expect("live lock").get(name) {
            return Ok(live.clone());
        }
        let _guard = self.lifecycle.lock().await;
        if let Some(live) = self.live.read().expect("live lock").get(name) {
            return Ok(live.clone());
        }
        let f = self.get(name).await?;
        let mut record = self
            .store
            .active_deployment(name)
            .await?
            .ok_or_else(|| AppError::NotDeployed(name.into()))?;
        let backend = self
            .backends
            .get(f.backend)
            .map_err(|_| AppError::UnsupportedBackend(f.backend))?
            .clone();
        let digest = record.deployment.artifact_digest.clone().ok_or_else(|| {
            anyhow::anyhow!("ready deployment {} has no artifact", record.deployment.id)
        })?;
        let artifact = self.store.get_artifact(&digest).await?;
        let loaded = match &artifact {
            Some(a) => backend.load(&a.path, &record.snapshot).await,
            None => Err(BackendError::Artifact {
                path: digest.clone(),
                message: "not in the artifact index".into(),
            }),
        };
        let runnable = match loaded {
            Ok(r) => r,
            Err(BackendError::Artifact { path, message }) => {
                tracing::warn!(function = name, %path, %message, "artifact does not load; rebuilding it from source");
                // Rebuild exactly what was deployed: the recorded commit, not
                // whatever the ref points at now.
                let mut pinned = record.snapshot.clone();
                if let (SourceInfo::Go { git_ref, .. }, Some(commit)) =
                    (&mut pinned.source, &record.deployment.resolved_commit)
                {
                    *git_ref = Some(commit.clone());
                }
                let built = self
                    .build_artifact(backend.as_ref(), &pinned, true, false, &mut None)
                    .await?;
                let runnable = backend.load(&built.artifact.path, &record.snapshot).await?;
                self.store.put_artifact(&built.artifact).await?;
                record.deployment.artifact_digest = Some(built.artifact.digest.clone());
                record
                    .deployment
                    .build_log
                    .push_str(&format!("rebuilt after restart: {}", built.log));
                self.store.put_deployment(&record).await?;
                runnable
            }
            Err(e) => return Err(e.into()),
        };
        let live = Arc::new(LiveDeployment { record, runnable });
        self.live
            .write()
            .expect("live lock")
            .insert(name.to_string(), live.clone());
        Ok(live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BackendKind, LimitsSpec};

    fn spec(name: &str, module: &str) -> FunctionSpec {
        FunctionSpec {
            name: name.into(),
            backend: BackendKind::Wasm,
            source: SourceSpec::Wasm {
                module: module.into(),
            },
            env: Default::default(),
            limits: LimitsSpec::default(),
            network: false,
            warm_pool_size: None,
        }
    }

    const EMPTY_MODULE: &str = "AGFzbQEAAAA=";

    fn field_of(e: AppError) -> String {
        match e {
            AppError::Validation { field, .. } => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_apply_and_module_decodes() {
        let v = validate_spec(&spec("hello", EMPTY_MODULE), &LimitsConfig::default(), 16).unwrap();
        assert_eq!(v.limits.memory_mb, 128);
        assert_eq!(v.limits.timeout_ms, 5000);
        assert_eq!(v.source, b"\0asm\x01\0\0\0");
    }

    #[test]
    fn each_bad_field_is_named() {
        let cfg = LimitsConfig::default();
        assert_eq!(
            field_of(validate_spec(&spec("Bad Name", EMPTY_MODULE), &cfg, 16).unwrap_err()),
            "name"
        );
        assert_eq!(
            field_of(validate_spec(&spec("-x", EMPTY_MODULE), &cfg, 16).unwrap_err()),
            "name"
        );
        assert_eq!(
            field_of(validate_spec(&spec("x", "!!!").clone(), &cfg, 16).unwrap_err()),
            "source.module"
        );
        assert_eq!(
            field_of(validate_spec(&spec("x", "aGVsbG8=").clone(), &cfg, 16).unwrap_err()),
            "source.module"
        );
        let mut s = spec("x", EMPTY_MODULE);
        s.limits.memory_mb = Some(cfg.max_memory_mb + 1);
        assert_eq!(
            field_of(validate_spec(&s, &cfg, 16).unwrap_err()),
            "limits.memory_mb"
        );
        let mut s = spec("x", EMPTY_MODULE);
        s.limits.timeout_ms = Some(0);
        assert_eq!(
            field_of(validate_spec(&s, &cfg, 16).unwrap_err()),
            "limits.timeout_ms"
        );
        let mut s = spec("x", EMPTY_MODULE);
        s.env.insert("SKYBRIDGE_INPUT".into(), "x".into());
        assert_eq!(
            field_of(validate_spec(&s, &cfg, 16).unwrap_err()),
            "env.SKYBRIDGE_INPUT"
        );
        let mut s = spec("x", EMPTY_MODULE);
        s.env.insert("A=B".into(), "x".into());
        assert_eq!(
            field_of(validate_spec(&s, &cfg, 16).unwrap_err()),
            "env.A=B"
        );
    }
}
