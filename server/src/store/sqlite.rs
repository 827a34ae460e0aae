//! The embedded default store: SQLite in WAL mode through sqlx, with migrations.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::{ArtifactRecord, DeploymentRecord, ExecutionQuery, Store, StoreError, StoreResult};
use crate::model::{
    BackendKind, Deployment, DeploymentStatus, ExecutionRecord, ExecutionStatus, Function,
};

/// SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection for execution records, the hot write path: its page
    /// cache stays valid between commits, which a connection taken from
    /// `pool` in turn would have to reread (the others wrote in between).
    writes: SqlitePool,
}

const FINAL_STATUSES: &str = "('succeeded','failed','timed_out')";

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and runs migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL is durable against process crashes (what we promise for
            // queued executions); only an OS crash can lose the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let writes = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Ok(Self { pool, writes })
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> StoreResult<DateTime<Utc>> {
    Utc.timestamp_millis_opt(v)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("bad timestamp {v}")))
}

fn opt_from_ms(v: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    v.map(from_ms).transpose()
}

fn json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("domain types serialize")
}

fn uuid(s: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("bad id {s}: {e}")))
}

fn backend(s: &str) -> StoreResult<BackendKind> {
    BackendKind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("bad backend {s}")))
}

fn function_row(r: &SqliteRow) -> StoreResult<Function> {
    Ok(Function {
        name: r.try_get("name")?,
        backend: backend(r.try_get("backend")?)?,
        source: json(r.try_get("source")?, "functions.source")?,
        env: json(r.try_get("env")?, "functions.env")?,
        limits: json(r.try_get("limits")?, "functions.limits")?,
        network: r.try_get("network")?,
        warm_pool_size: r
            .try_get::<Option<i64>, _>("warm_pool_size")?
            .map(|v| v as u32),
        version: r.try_get("version")?,
        created_at: from_ms(r.try_get("created_at")?)?,
        updated_at: from_ms(r.try_get("updated_at")?)?,
    })
}

fn deployment_row(r: &SqliteRow) -> StoreResult<DeploymentRecord> {
    let status: String = r.try_get("status")?;
    Ok(DeploymentRecord {
        deployment: Deployment {
            id: uuid(r.try_get("id")?)?,
            function: r.try_get("function")?,
            function_version: r.try_get("function_version")?,
            status: DeploymentStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("bad deployment status {status}")))?,
            artifact_digest: r.try_get("artifact_digest")?,
            resolved_commit: r.try_get("resolved_commit")?,
            build_log: r.try_get("build_log")?,
            error: r.try_get("error")?,
            created_at: from_ms(r.try_get("created_at")?)?,
            finished_at: opt_from_ms(r.try_get("finished_at")?)?,
        },
        snapshot: json(r.try_get("snapshot")?, "deployments.snapshot")?,
    })
}

fn artifact_row(r: &SqliteRow) -> StoreResult<ArtifactRecord> {
    Ok(ArtifactRecord {
        digest: r.try_get("digest")?,
        kind: r.try_get("kind")?,
        path: r.try_get("path")?,
        size_bytes: r.try_get::<i64, _>("size_bytes")? as u64,
        source_digest: r.try_get("source_digest")?,
    })
}

fn execution_row(r: &SqliteRow) -> StoreResult<ExecutionRecord> {
    let status: String = r.try_get("status")?;
    Ok(ExecutionRecord {
        id: uuid(r.try_get("id")?)?,
        function: r.try_get("function")?,
        deployment_id: uuid(r.try_get("deployment_id")?)?,
        backend: backend(r.try_get("backend")?)?,
        status: ExecutionStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("bad execution status {status}")))?,
        input: json(r.try_get("input")?, "executions.input")?,
        stdout: r.try_get("stdout")?,
        stderr: r.try_get("stderr")?,
        stdout_truncated: r.try_get("stdout_truncated")?,
        stderr_truncated: r.try_get("stderr_truncated")?,
        exit_code: r.try_get("exit_code")?,
        reason: r.try_get("reason")?,
        message: r.try_get("message")?,
        duration_ms: r
            .try_get::<Option<i64>, _>("duration_ms")?
            .map(|v| v as u64),
        callback_url: r.try_get("callback_url")?,
        created_at: from_ms(r.try_get("created_at")?)?,
        started_at: opt_from_ms(r.try_get("started_at")?)?,
        finished_at: opt_from_ms(r.try_get("finished_at")?)?,
    })
}

/// Execution rows per upsert statement (18 parameters each, well under
/// SQLite's 32,766).
const ROWS_PER_UPSERT: usize = 64;

/// Upserts `chunk` in one statement, inside a transaction. A row whose
/// function is gone (deleted while the execution ran) fails the statement,
/// which SQLite undoes alone; the rows are then written one by one.
async fn upsert_chunk(
    conn: &mut sqlx::SqliteConnection,
    chunk: &[ExecutionRecord],
) -> StoreResult<()> {
    match upsert_rows(conn, chunk).await {
        Err(e) if is_foreign_key_violation(&e) => upsert_each(conn, chunk).await,
        r => Ok(r?),
    }
}

/// Upserts `rows` one statement each, skipping those whose function is gone.
async fn upsert_each(
    conn: &mut sqlx::SqliteConnection,
    rows: &[ExecutionRecord],
) -> StoreResult<()> {
    for e in rows {
        match upsert_rows(conn, std::slice::from_ref(e)).await {
            Err(err) if is_foreign_key_violation(&err) => {
                tracing::debug!(execution = %e.id, function = %e.function,
                    "function deleted while its execution ran; record dropped");
            }
            r => r?,
        }
    }
    Ok(())
}

async fn upsert_rows(
    conn: &mut sqlx::SqliteConnection,
    rows: &[ExecutionRecord],
) -> Result<(), sqlx::Error> {
    let mut q = sqlx::QueryBuilder::new(
        "INSERT INTO executions (id, function, deployment_id, backend, status, input, stdout, stderr,
            stdout_truncated, stderr_truncated, exit_code, reason, message, duration_ms,
            callback_url, created_at, started_at, finished_at) ",
    );
    q.push_values(rows, |mut b, e| {
        b.push_bind(e.id.to_string())
            .push_bind(e.function.as_str())
            .push_bind(e.deployment_id.to_string())
            .push_bind(e.backend.as_str())
            .push_bind(e.status.as_str())
            .push_bind(to_json(&e.input))
            .push_bind(e.stdout.as_slice())
            .push_bind(e.stderr.as_slice())
            .push_bind(e.stdout_truncated)
            .push_bind(e.stderr_truncated)
            .push_bind(e.exit_code)
            .push_bind(e.reason.as_deref())
            .push_bind(e.message.as_deref())
            .push_bind(e.duration_ms.map(|v| v as i64))
            .push_bind(e.callback_url.as_deref())
            .push_bind(ms(e.created_at))
            .push_bind(e.started_at.map(ms))
            .push_bind(e.finished_at.map(ms));
    });
    q.push(
        " ON CONFLICT(id) DO UPDATE SET status = excluded.status, stdout = excluded.stdout,
            stderr = excluded.stderr, stdout_truncated = excluded.stdout_truncated,
            stderr_truncated = excluded.stderr_truncated, exit_code = excluded.exit_code,
            reason = excluded.reason, message = excluded.message,
            duration_ms = excluded.duration_ms, started_at = excluded.started_at,
            finished_at = excluded.finished_at",
    );
    q.build().execute(conn).await.map(drop)
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_function(&self, f: &Function) -> StoreResult<()> {
        let res = sqlx::query(
            "INSERT INTO functions (name, backend, source, env, limits, network, warm_pool_size, version, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&f.name)
        .bind(f.backend.as_str())
        .bind(to_json(&f.source))
        .bind(to_json(&f.env))
        .bind(to_json(&f.limits))
        .bind(f.network)
        .bind(f.warm_pool_size.map(i64::from))
        .bind(f.version)
        .bind(ms(f.created_at))
        .bind(ms(f.updated_at))
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(f.name.clone())),
            Err(e) => Err(e.into()),
        }
    }

    async fn update_function(&self, f: &Function, expected_version: i64) -> StoreResult<bool> {
        let res = sqlx::query(
            "UPDATE functions SET backend = ?, source = ?, env = ?, limits = ?, network = ?, warm_pool_size = ?, version = ?, updated_at = ?
             WHERE name = ? AND version = ?",
        )
        .bind(f.backend.as_str())
        .bind(to_json(&f.source))
        .bind(to_json(&f.env))
        .bind(to_json(&f.limits))
        .bind(f.network)
        .bind(f.warm_pool_size.map(i64::from))
        .bind(f.version)
        .bind(ms(f.updated_at))
        .bind(&f.name)
        .bind(expected_version)
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    async fn get_function(&self, name: &str) -> StoreResult<Option<Function>> {
        sqlx::query("SELECT * FROM functions WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(function_row)
            .transpose()
    }

    async fn list_functions(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Function>> {
        sqlx::query(
            "SELECT * FROM functions WHERE (?1 IS NULL OR name > ?1) ORDER BY name LIMIT ?2",
        )
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(function_row)
        .collect()
    }

    async fn delete_function(&self, name: &str) -> StoreResult<bool> {
        let res = sqlx::query("DELETE FROM functions WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected() == 1)
    }

    async fn put_deployment(&self, r: &DeploymentRecord) -> StoreResult<()> {
        let d = &r.deployment;
        sqlx::query(
            "INSERT INTO deployments (id, function, function_version, status, artifact_digest, build_log,
                                      error, snapshot, created_at, finished_at, resolved_commit)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(id) DO UPDATE SET status = excluded.status,
                artifact_digest = excluded.artifact_digest, build_log = excluded.build_log,
                resolved_commit = excluded.resolved_commit,
                error = excluded.error, finished_at = excluded.finished_at",
        )
        .bind(d.id.to_string())
        .bind(&d.function)
        .bind(d.function_version)
        .bind(d.status.as_str())
        .bind(&d.artifact_digest)
        .bind(&d.build_log)
        .bind(&d.error)
        .bind(to_json(&r.snapshot))
        .bind(ms(d.created_at))
        .bind(d.finished_at.map(ms))
        .bind(&d.resolved_commit)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_deployments(
        &self,
        function: &str,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<Deployment>> {
        sqlx::query(
            "SELECT * FROM deployments WHERE function = ?1 AND (?2 IS NULL OR id < ?2)
             ORDER BY id DESC LIMIT ?3",
        )
        .bind(function)
        .bind(before.map(|u| u.to_string()))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| deployment_row(r).map(|d| d.deployment))
        .collect()
    }

    async fn active_deployment(&self, function: &str) -> StoreResult<Option<DeploymentRecord>> {
        sqlx::query(
            "SELECT * FROM deployments WHERE function = ? AND status = 'ready' ORDER BY id DESC LIMIT 1",
        )
        .bind(function)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(deployment_row)
        .transpose()
    }

    async fn fail_unfinished_deployments(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let res = sqlx::query(
            "UPDATE deployments SET status = 'failed', finished_at = ?,
                error = 'interrupted: the server stopped during the build'
             WHERE status = 'building'",
        )
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected())
    }

    async fn put_artifact(&self, a: &ArtifactRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO artifacts (digest, kind, path, size_bytes, source_digest, created_at)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT(digest) DO UPDATE SET path = excluded.path, size_bytes = excluded.size_bytes",
        )
        .bind(&a.digest)
        .bind(&a.kind)
        .bind(&a.path)
        .bind(a.size_bytes as i64)
        .bind(&a.source_digest)
        .bind(ms(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_artifact(&self, digest: &str) -> StoreResult<Option<ArtifactRecord>> {
        sqlx::query("SELECT * FROM artifacts WHERE digest = ?")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(artifact_row)
            .transpose()
    }

    async fn unreferenced_artifacts(&self) -> StoreResult<Vec<ArtifactRecord>> {
        sqlx::query(
            "SELECT * FROM artifacts a WHERE NOT EXISTS
                (SELECT 1 FROM deployments d WHERE d.artifact_digest = a.digest)",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(artifact_row)
        .collect()
    }

    async fn delete_artifact(&self, digest: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM artifacts WHERE digest = ?")
            .bind(digest)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn source_in_use(&self, digest: &str) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM functions WHERE json_extract(source, '$.digest') = ? LIMIT 1",
        )
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn upsert_executions(&self, batch: &[ExecutionRecord]) -> StoreResult<()> {
        let mut conn = self.writes.acquire().await?;
        // One statement is atomic on its own: no BEGIN/COMMIT round trips.
        let one_statement = batch.len() <= ROWS_PER_UPSERT;
        if one_statement {
            match upsert_rows(&mut conn, batch).await {
                Err(e) if is_foreign_key_violation(&e) => {} // one by one, below
                r => return Ok(r?),
            }
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        if one_statement {
            upsert_each(&mut tx, batch).await?;
        } else {
            for chunk in batch.chunks(ROWS_PER_UPSERT) {
                upsert_chunk(&mut tx, chunk).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_execution(&self, id: Uuid) -> StoreResult<Option<ExecutionRecord>> {
        sqlx::query("SELECT * FROM executions WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(execution_row)
            .transpose()
    }

    async fn list_executions(&self, q: &ExecutionQuery) -> StoreResult<Vec<ExecutionRecord>> {
        sqlx::query(
            "SELECT * FROM executions
             WHERE (?1 IS NULL OR function = ?1) AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR id < ?3)
             ORDER BY id DESC LIMIT ?4",
        )
        .bind(q.function.as_deref())
        .bind(q.status.map(|s| s.as_str()))
        .bind(q.before.map(|u| u.to_string()))
        .bind(q.limit as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(execution_row)
        .collect()
    }

    async fn fail_interrupted_executions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let res = sqlx::query(
            "UPDATE executions SET status = 'failed', reason = 'interrupted',
                message = 'the server stopped while this execution was running', finished_at = ?
             WHERE status = 'running'",
        )
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected())
    }

    async fn queued_executions(&self) -> StoreResult<Vec<ExecutionRecord>> {
        sqlx::query("SELECT * FROM executions WHERE status = 'queued' ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(execution_row)
            .collect()
    }

    async fn prune_executions(
        &self,
        older_than: DateTime<Utc>,
        keep_per_function: u64,
    ) -> StoreResult<u64> {
        let by_age = sqlx::query(&format!(
            "DELETE FROM executions WHERE status IN {FINAL_STATUSES} AND finished_at < ?"
        ))
        .bind(ms(older_than))
        .execute(&self.pool)
        .await?
        .rows_affected();
        let by_count = sqlx::query(&format!(
            "DELETE FROM executions WHERE id IN (
                SELECT id FROM (
                    SELECT id, ROW_NUMBER() OVER (PARTITION BY function ORDER BY id DESC) AS n
                    FROM executions WHERE status IN {FINAL_STATUSES})
                WHERE n > ?)"
        ))
        .bind(keep_per_function as i64)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(by_age + by_count)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Limits, SourceInfo};
    use serde_json::json;

    pub(crate) fn function(name: &str) -> Function {
        Function {
            name: name.into(),
            backend: BackendKind::Wasm,
            source: SourceInfo::Wasm {
                digest: "sha256:00".into(),
                size_bytes: 1,
            },
            env: Default::default(),
            limits: Limits {
                memory_mb: 64,
                timeout_ms: 1000,
                cpus: 1.0,
            },
            network: false,
            warm_pool_size: None,
            version: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    pub(crate) async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("db.sqlite"))
            .await
            .unwrap();
        (dir, s)
    }

    fn finished(function: &str) -> ExecutionRecord {
        let mut e = ExecutionRecord::new(
            function,
            Uuid::now_v7(),
            BackendKind::Wasm,
            ExecutionStatus::Succeeded,
            json!({"n": 1}),
            None,
        );
        e.finished_at = Some(crate::model::now());
        e
    }

    #[tokio::test]
    async fn duplicate_function_is_a_conflict() {
        let (_d, s) = store().await;
        s.create_function(&function("a")).await.unwrap();
        assert!(matches!(
            s.create_function(&function("a")).await,
            Err(StoreError::Conflict(_))
        ));
    }

    #[tokio::test]
    async fn executions_round_trip_and_page_newest_first() {
        let (_d, s) = store().await;
        s.create_function(&function("a")).await.unwrap();
        let batch: Vec<_> = (0..5).map(|_| finished("a")).collect();
        s.upsert_executions(&batch).await.unwrap();
        assert_eq!(
            s.get_execution(batch[2].id).await.unwrap().as_ref(),
            Some(&batch[2])
        );
        let page = s
            .list_executions(&ExecutionQuery {
                function: Some("a".into()),
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            page.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![batch[4].id, batch[3].id]
        );
        let next = s
            .list_executions(&ExecutionQuery {
                function: Some("a".into()),
                before: Some(batch[3].id),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(next.len(), 3);
    }

    #[tokio::test]
    async fn executions_of_deleted_functions_are_skipped_not_fatal() {
        let (_d, s) = store().await;
        s.create_function(&function("a")).await.unwrap();
        let kept = finished("a");
        s.upsert_executions(&[finished("gone"), kept.clone()])
            .await
            .unwrap();
        assert!(s.get_execution(kept.id).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn batches_over_one_statement_land_whole_around_deleted_functions() {
        let (_d, s) = store().await;
        s.create_function(&function("a")).await.unwrap();
        let mut batch: Vec<_> = (0..2 * ROWS_PER_UPSERT + 3)
            .map(|_| finished("a"))
            .collect();
        batch[ROWS_PER_UPSERT + 1] = finished("gone");
        s.upsert_executions(&batch).await.unwrap();
        for (i, e) in batch.iter().enumerate() {
            let got = s.get_execution(e.id).await.unwrap();
            assert_eq!(got.is_some(), i != ROWS_PER_UPSERT + 1, "record {i}");
        }
        // Later states replace earlier ones, in a batch of any size.
        for e in &mut batch {
            e.status = ExecutionStatus::Failed;
        }
        s.upsert_executions(&batch).await.unwrap();
        let got = s
            .get_execution(batch[2 * ROWS_PER_UPSERT].id)
            .await
            .unwrap();
        assert_eq!(got.unwrap().status, ExecutionStatus::Failed);
    }

    #[tokio::test]
    async fn prune_keeps_newest_per_function_and_unfinished() {
        let (_d, s) = store().await;
        s.create_function(&function("a")).await.unwrap();
        let mut batch: Vec<_> = (0..5).map(|_| finished("a")).collect();
        let mut queued = finished("a");
        queued.status = ExecutionStatus::Queued;
        queued.finished_at = None;
        batch.insert(0, queued.clone());
        s.upsert_executions(&batch).await.unwrap();
        let old = Utc::now() - chrono::Duration::days(1);
        assert_eq!(s.prune_executions(old, 2).await.unwrap(), 3);
        let left = s
            .list_executions(&ExecutionQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(left.len(), 3);
        assert!(left.iter().any(|e| e.id == queued.id));
    }

    #[tokio::test]
    async fn running_executions_become_interrupted() {
        let (_d, s) = store().await;
        s.create_function(&function("a")).await.unwrap();
        let mut e = finished("a");
        e.status = ExecutionStatus::Running;
        s.upsert_executions(&[e.clone()]).await.unwrap();
        assert_eq!(s.fail_interrupted_executions(Utc::now()).await.unwrap(), 1);
        let got = s.get_execution(e.id).await.unwrap().unwrap();
        assert_eq!(got.status, ExecutionStatus::Failed);
        assert_eq!(got.reason.as_deref(), Some("interrupted"));
    }
}
