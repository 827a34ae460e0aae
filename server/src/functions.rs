//! Function lifecycle: validate, store, deploy (build through the artifact cache),
//! and keep each function's live deployment loaded for the invoke hot path.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use uuid::Uuid;

use crate::artifacts::ArtifactCache;
use crate::backend::{BackendError, Backends, Runnable};
use crate::config::LimitsConfig;
use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;
use crate::model::{
    Deployment, DeploymentStatus, Function, FunctionSpec, Limits, SourceInfo, SourceSpec,
};
use crate::store::{ArtifactRecord, DeploymentRecord, Store};

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
    limits: LimitsConfig,
    metrics: Arc<Metrics>,
    live: RwLock<HashMap<String, Arc<LiveDeployment>>>,
    /// Serializes the short steps that change which deployment is live (install,
    /// delete, cache fill, artifact GC), so a deleted function cannot come back
    /// through a racing cache fill.
    lifecycle: tokio::sync::Mutex<()>,
    /// One lock per artifact key: concurrent deploys of the same source build once.
    builds: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// What validation makes of a submitted spec.
#[derive(Debug)]
pub struct ValidSpec {
    /// Limits with defaults applied.
    pub limits: Limits,
    /// Decoded source bytes.
    pub source: Vec<u8>,
}

const WASM_MAGIC: &[u8] = b"\0asm";

/// Checks a submitted spec against the configured limits; pure, no I/O.
pub fn validate_spec(spec: &FunctionSpec, cfg: &LimitsConfig) -> AppResult<ValidSpec> {
    let name = &spec.name;
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !name_ok {
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
    if spec.env.len() > cfg.max_env_vars {
        return Err(AppError::validation(
            "env",
            format!("at most {} variables", cfg.max_env_vars),
        ));
    }
    for (k, v) in &spec.env {
        let key_ok = !k.is_empty()
            && !k.bytes().next().unwrap().is_ascii_digit()
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !key_ok {
            return Err(AppError::validation(
                format!("env.{k}"),
                "names are letters, digits and `_`, not starting with a digit",
            ));
        }
        if k.starts_with("SKYBRIDGE_") {
            return Err(AppError::validation(
                format!("env.{k}"),
                "the SKYBRIDGE_ prefix is reserved for variables the platform sets",
            ));
        }
        if v.contains('\0') {
            return Err(AppError::validation(
                format!("env.{k}"),
                "values cannot contain NUL",
            ));
        }
    }
    let source = match &spec.source {
        SourceSpec::Wasm { module } => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(module.trim())
                .map_err(|e| {
                    AppError::validation("source.module", format!("is not valid base64: {e}"))
                })?;
            if !bytes.starts_with(WASM_MAGIC) {
                return Err(AppError::validation(
                    "source.module",
                    "is not a WebAssembly binary (no \\0asm header)",
                ));
            }
            bytes
        }
    };
    Ok(ValidSpec {
        limits: Limits {
            memory_mb,
            timeout_ms,
        },
        source,
    })
}

impl FunctionService {
    /// A service over `store`, building through `backends` into `cache`.
    pub fn new(
        store: Arc<dyn Store>,
        backends: Backends,
        cache: ArtifactCache,
        limits: LimitsConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            backends,
            cache,
            limits,
            metrics,
            live: RwLock::default(),
            lifecycle: tokio::sync::Mutex::new(()),
            builds: std::sync::Mutex::default(),
        }
    }

    /// Validates a spec and turns it into a stored function (not yet saved).
    fn materialize(
        &self,
        spec: FunctionSpec,
        version: i64,
        created: Option<chrono::DateTime<chrono::Utc>>,
    ) -> AppResult<Function> {
        let valid = validate_spec(&spec, &self.limits)?;
        let backend = self
            .backends
            .get(spec.backend)
            .map_err(|_| AppError::UnsupportedBackend(spec.backend))?;
        let digest = self
            .cache
            .put_source(&valid.source)
            .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("storing source")))?;
        let source = match spec.source {
            SourceSpec::Wasm { .. } => SourceInfo::Wasm {
                digest,
                size_bytes: valid.source.len() as u64,
            },
        };
        backend
            .accepts(&source)
            .map_err(|m| AppError::validation("source.type", m))?;
        let now = crate::model::now();
        Ok(Function {
            name: spec.name,
            backend: spec.backend,
            source,
            env: spec.env,
            limits: valid.limits,
            version,
            created_at: created.unwrap_or(now),
            updated_at: now,
        })
    }

    /// Creates a function (not deployed).
    pub async fn create(&self, spec: FunctionSpec) -> AppResult<Function> {
        let f = self.materialize(spec, 1, None)?;
        self.store.create_function(&f).await.map_err(|e| match e {
            crate::store::StoreError::Conflict(name) => AppError::FunctionExists(name),
            other => other.into(),
        })?;
        Ok(f)
    }

    /// Replaces a function's spec. The live deployment keeps running until the next deploy.
    pub async fn update(&self, name: &str, spec: FunctionSpec) -> AppResult<Function> {
        if spec.name != name {
            return Err(AppError::validation(
                "name",
                format!("must match the name in the path (`{name}`); functions cannot be renamed"),
            ));
        }
        let old = self.get(name).await?;
        let f = self.materialize(spec, old.version + 1, Some(old.created_at))?;
        if !self.store.update_function(&f).await? {
            return Err(AppError::FunctionNotFound(name.into()));
        }
        if old.source != f.source {
            self.collect_garbage(Some(&old.source)).await;
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
        let f = self.get(name).await?;
        {
            let _guard = self.lifecycle.lock().await;
            if !self.store.delete_function(name).await? {
                return Err(AppError::FunctionNotFound(name.into()));
            }
            self.live.write().expect("live lock").remove(name);
        }
        self.collect_garbage(Some(&f.source)).await;
        Ok(())
    }

    /// Removes artifacts no deployment refers to, and `source` if no function uses it.
    /// Failures are logged: garbage left behind costs disk, not correctness.
    async fn collect_garbage(&self, source: Option<&SourceInfo>) {
        let _guard = self.lifecycle.lock().await;
        let result: anyhow::Result<()> = async {
            for a in self.store.unreferenced_artifacts().await? {
                self.cache.remove_artifact(&a.path)?;
                self.store.delete_artifact(&a.digest).await?;
            }
            if let Some(SourceInfo::Wasm { digest, .. }) = source {
                if !self.store.source_in_use(digest).await? {
                    self.cache.remove_source(digest)?;
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %format!("{e:#}"), "artifact garbage collection failed");
        }
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
    /// [`AppError::DeploymentFailed`] with the build's message.
    pub async fn deploy(&self, name: &str) -> AppResult<Deployment> {
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
                build_log: String::new(),
                error: None,
                created_at: crate::model::now(),
                finished_at: None,
            },
            snapshot: f.clone(),
        };
        self.store.put_deployment(&rec).await?;

        let built = self.build_artifact(backend.as_ref(), &f).await;
        let runnable = match built {
            Ok((artifact, log)) => {
                rec.deployment.build_log = log;
                rec.deployment.artifact_digest = Some(artifact.digest.clone());
                match backend.load(&artifact.path).await {
                    Ok(r) => Ok((artifact, r)),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        rec.deployment.finished_at = Some(crate::model::now());
        match runnable {
            Ok((artifact, runnable)) => {
                rec.deployment.status = DeploymentStatus::Ready;
                let _guard = self.lifecycle.lock().await;
                if self.store.get_function(name).await?.is_none() {
                    return Err(AppError::FunctionNotFound(name.into()));
                }
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
            Err(e) => {
                let unavailable = matches!(e, BackendError::Unavailable { .. });
                let (message, log) = match &e {
                    BackendError::Build { message, log } => (message.clone(), log.clone()),
                    other => (other.to_string(), String::new()),
                };
                rec.deployment.status = DeploymentStatus::Failed;
                rec.deployment.build_log.push_str(&log);
                rec.deployment.error = Some(message.clone());
                self.store.put_deployment(&rec).await?;
                if unavailable {
                    return Err(e.into());
                }
                Err(AppError::DeploymentFailed {
                    id: rec.deployment.id,
                    message,
                })
            }
        }
    }

    /// Finds the artifact in the cache or builds it (once per key, however many
    /// deploys ask at the same time). Returns the record and the build log.
    async fn build_artifact(
        &self,
        backend: &dyn crate::backend::Backend,
        f: &Function,
    ) -> Result<(ArtifactRecord, String), BackendError> {
        let SourceInfo::Wasm {
            digest: source_digest,
            ..
        } = &f.source;
        let key = backend.artifact_key(source_digest);
        let lock = {
            let mut builds = self.builds.lock().expect("builds lock");
            builds.entry(key.clone()).or_default().clone()
        };
        let _building = lock.lock().await;
        if let Ok(Some(existing)) = self.store.get_artifact(&key).await {
            if self.cache.resolve(&existing.path).exists() {
                let log = format!("artifact cache hit: {key}\n");
                return Ok((existing, log));
            }
        }
        let source = self.cache.read_source(source_digest)?;
        let result = backend.build(&key, source).await;
        self.metrics
            .builds
            .with_label_values(&[
                backend.kind().as_str(),
                if result.is_ok() { "ok" } else { "failed" },
            ])
            .inc();
        let built = result?;
        Ok((
            ArtifactRecord {
                digest: key,
                kind: built.kind,
                path: built.rel_path,
                size_bytes: built.size_bytes,
                source_digest: source_digest.clone(),
            },
            built.log,
        ))
    }

    /// The live deployment of `name`: from memory, else loaded from the store
    /// (after a restart) without rebuilding.
    pub async fn live(&self, name: &str) -> AppResult<Arc<LiveDeployment>> {
        if let Some(live) = self.live.read().expect("live lock").get(name) {
            return Ok(live.clone());
        }
        let _guard = self.lifecycle.lock().await;
        if let Some(live) = self.live.read().expect("live lock").get(name) {
            return Ok(live.clone());
        }
        let f = self.get(name).await?;
        let record = self
            .store
            .active_deployment(name)
            .await?
            .ok_or_else(|| AppError::NotDeployed(name.into()))?;
        let digest = record.deployment.artifact_digest.clone().ok_or_else(|| {
            anyhow::anyhow!("ready deployment {} has no artifact", record.deployment.id)
        })?;
        let artifact = self.store.get_artifact(&digest).await?.ok_or_else(|| {
            anyhow::anyhow!(
                "artifact {digest} of deployment {} is not indexed",
                record.deployment.id
            )
        })?;
        let backend = self
            .backends
            .get(f.backend)
            .map_err(|_| AppError::UnsupportedBackend(f.backend))?;
        let runnable = backend.load(&artifact.path).await?;
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
        let v = validate_spec(&spec("hello", EMPTY_MODULE), &LimitsConfig::default()).unwrap();
        assert_eq!(v.limits.memory_mb, 128);
        assert_eq!(v.limits.timeout_ms, 5000);
        assert_eq!(v.source, b"\0asm\x01\0\0\0");
    }

    #[test]
    fn each_bad_field_is_named() {
        let cfg = LimitsConfig::default();
        assert_eq!(
            field_of(validate_spec(&spec("Bad Name", EMPTY_MODULE), &cfg).unwrap_err()),
            "name"
        );
        assert_eq!(
            field_of(validate_spec(&spec("-x", EMPTY_MODULE), &cfg).unwrap_err()),
            "name"
        );
        assert_eq!(
            field_of(validate_spec(&spec("x", "!!!").clone(), &cfg).unwrap_err()),
            "source.module"
        );
        assert_eq!(
            field_of(validate_spec(&spec("x", "aGVsbG8=").clone(), &cfg).unwrap_err()),
            "source.module"
        );
        let mut s = spec("x", EMPTY_MODULE);
        s.limits.memory_mb = Some(cfg.max_memory_mb + 1);
        assert_eq!(
            field_of(validate_spec(&s, &cfg).unwrap_err()),
            "limits.memory_mb"
        );
        let mut s = spec("x", EMPTY_MODULE);
        s.limits.timeout_ms = Some(0);
        assert_eq!(
            field_of(validate_spec(&s, &cfg).unwrap_err()),
            "limits.timeout_ms"
        );
        let mut s = spec("x", EMPTY_MODULE);
        s.env.insert("SKYBRIDGE_INPUT".into(), "x".into());
        assert_eq!(
            field_of(validate_spec(&s, &cfg).unwrap_err()),
            "env.SKYBRIDGE_INPUT"
        );
        let mut s = spec("x", EMPTY_MODULE);
        s.env.insert("A=B".into(), "x".into());
        assert_eq!(field_of(validate_spec(&s, &cfg).unwrap_err()), "env.A=B");
    }
}
