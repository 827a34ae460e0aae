//! Persistence: the [`Store`] trait and its records.
//!
//! The trait speaks in domain types and plain SQL concepts (pages, cursors, upserts)
//! so a PostgreSQL implementation can sit beside [`sqlite::SqliteStore`] without the
//! rest of the server noticing.

pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{Deployment, ExecutionRecord, ExecutionStatus, Function};

pub use sqlite::SqliteStore;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key exists already.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row does not decode.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// Result alias.
pub type StoreResult<T> = Result<T, StoreError>;

/// A deployment plus the function as it was when built.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRecord {
    /// The API view.
    pub deployment: Deployment,
    /// The function's spec at build time: what invocations of this deployment use.
    pub snapshot: Function,
}

/// A built artifact in the on-disk cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRecord {
    /// The artifact's cache key: `sha256:<hex>` of what it is built from (see
    /// `Backend::artifact_key`), so a deploy finds it before building.
    pub digest: String,
    /// What it is, e.g. `wasm-cwasm`.
    pub kind: String,
    /// Path relative to the data dir.
    pub path: String,
    /// File size.
    pub size_bytes: u64,
    /// Digest of the source it was built from.
    pub source_digest: String,
}

/// Which executions to list.
#[derive(Debug, Clone, Default)]
pub struct ExecutionQuery {
    /// Only this function's.
    pub function: Option<String>,
    /// Only in this state.
    pub status: Option<ExecutionStatus>,
    /// Only older than this id (the previous page's cursor).
    pub before: Option<Uuid>,
    /// Page size.
    pub limit: u32,
}

/// Persistence for functions, deployments, artifacts and executions.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts a function; [`StoreError::Conflict`] when the name is taken.
    async fn create_function(&self, f: &Function) -> StoreResult<()>;
    /// Replaces a function if its stored version is still `expected_version`;
    /// false when it does not exist or changed meanwhile.
    async fn update_function(&self, f: &Function, expected_version: i64) -> StoreResult<bool>;
    /// One function.
    async fn get_function(&self, name: &str) -> StoreResult<Option<Function>>;
    /// Functions ordered by name, after `after`.
    async fn list_functions(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Function>>;
    /// Deletes a function with its deployments and executions; false when absent.
    async fn delete_function(&self, name: &str) -> StoreResult<bool>;

    /// Inserts or replaces a deployment.
    async fn put_deployment(&self, d: &DeploymentRecord) -> StoreResult<()>;
    /// A function's deployments, newest first, older than `before`.
    async fn list_deployments(
        &self,
        function: &str,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<Deployment>>;
    /// The newest ready deployment of a function.
    async fn active_deployment(&self, function: &str) -> StoreResult<Option<DeploymentRecord>>;
    /// Deployments still `building` (the process died during the build): marks them failed.
    async fn fail_unfinished_deployments(&self, now: DateTime<Utc>) -> StoreResult<u64>;

    /// Indexes an artifact (idempotent).
    async fn put_artifact(&self, a: &ArtifactRecord) -> StoreResult<()>;
    /// One artifact.
    async fn get_artifact(&self, digest: &str) -> StoreResult<Option<ArtifactRecord>>;
    /// Artifacts no deployment refers to any more (they can be removed from disk).
    async fn unreferenced_artifacts(&self) -> StoreResult<Vec<ArtifactRecord>>;
    /// Removes an artifact from the index.
    async fn delete_artifact(&self, digest: &str) -> StoreResult<()>;
    /// Whether any function still uses the source with this digest.
    async fn source_in_use(&self, digest: &str) -> StoreResult<bool>;

    /// Inserts or updates executions, all of them or none. Rows whose function
    /// is gone are skipped (the function was deleted mid-run), not an error.
    async fn upsert_executions(&self, batch: &[ExecutionRecord]) -> StoreResult<()>;
    /// One execution.
    async fn get_execution(&self, id: Uuid) -> StoreResult<Option<ExecutionRecord>>;
    /// Executions newest first.
    async fn list_executions(&self, q: &ExecutionQuery) -> StoreResult<Vec<ExecutionRecord>>;
    /// Executions that were `running` when the process died: marked failed with
    /// reason `interrupted`. Returns how many.
    async fn fail_interrupted_executions(&self, now: DateTime<Utc>) -> StoreResult<u64>;
    /// Queued executions, oldest first.
    async fn queued_executions(&self) -> StoreResult<Vec<ExecutionRecord>>;
    /// Deletes finished executions older than `older_than`, and beyond the newest
    /// `keep_per_function` of each function. Returns how many.
    async fn prune_executions(
        &self,
        older_than: DateTime<Utc>,
        keep_per_function: u64,
    ) -> StoreResult<u64>;
}
