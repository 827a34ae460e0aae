//! Invocations: sync and async, the worker pool, recovery after restart, pruning.
//!
//! Sync: run now, hand the record to the [`writer::ExecutionWriter`], answer.
//! Async: commit a `queued` record *before* answering 202, then a dispatcher hands
//! it to one of `executions.workers` concurrent workers. At start-up, executions
//! left `running` by a dead process are marked failed (`interrupted`) and `queued`
//! ones are queued again.

pub mod callback;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, Semaphore};
use uuid::Uuid;

use crate::backend::{BackendError, RunRequest};
use crate::config::{ExecutionsConfig, LimitsConfig};
use crate::error::{AppError, AppResult};
use crate::functions::{FunctionService, LiveDeployment};
use crate::metrics::Metrics;
use crate::model::{ExecutionLogs, ExecutionRecord, ExecutionStatus, SourceInfo};
use crate::sandboxes::Sandboxes;
use crate::store::{ExecutionQuery, Store};
use callback::CallbackSender;
use writer::ExecutionWriter;

/// Runs functions and records what happened.
pub struct Executions {
    store: Arc<dyn Store>,
    functions: Arc<FunctionService>,
    writer: ExecutionWriter,
    queue: mpsc::UnboundedSender<Uuid>,
    callbacks: CallbackSender,
    metrics: Arc<Metrics>,
    sandboxes: Arc<Sandboxes>,
    cfg: ExecutionsConfig,
    max_input_bytes: usize,
    /// Worker slots; closed at shutdown so no new queued work starts.
    slots: Arc<Semaphore>,
}

/// Background tasks to wait for at shutdown.
pub struct ExecutionTasks {
    writer: tokio::task::JoinHandle<()>,
}

impl ExecutionTasks {
    /// Waits for the writer to commit everything (call after the last
    /// [`Executions`] handle is dropped).
    pub async fn finish(self) {
        let _ = self.writer.await;
    }
}

impl Executions {
    /// Recovers from the previous run, then starts the writer, the dispatcher and
    /// the pruner.
    pub async fn start(
        store: Arc<dyn Store>,
        functions: Arc<FunctionService>,
        cfg: ExecutionsConfig,
        limits: &LimitsConfig,
        metrics: Arc<Metrics>,
        sandboxes: Arc<Sandboxes>,
    ) -> anyhow::Result<(Arc<Self>, ExecutionTasks)> {
        let now = crate::model::now();
        let interrupted = store.fail_interrupted_executions(now).await?;
        let builds = store.fail_unfinished_deployments(now).await?;
        let queued = store.queued_executions().await?;
        if interrupted + builds > 0 || !queued.is_empty() {
            tracing::info!(
                interrupted,
                builds,
                requeued = queued.len(),
                "recovered from previous run"
            );
        }

        let (writer, writer_task) = ExecutionWriter::spawn(store.clone());
        let (queue, rx) = mpsc::unbounded_channel();
        let this = Arc::new(Self {
            store: store.clone(),
            functions,
            writer,
            queue,
            callbacks: CallbackSender::new(&cfg, metrics.clone()),
            metrics,
            sandboxes,
            cfg: cfg.clone(),
            max_input_bytes: limits.max_input_bytes,
            slots: Arc::new(Semaphore::new(cfg.workers)),
        });
        for rec in queued {
            this.enqueue(rec.id);
        }
        tokio::spawn(dispatch(Arc::downgrade(&this), rx));
        tokio::spawn(prune(Arc::downgrade(&this)));
        Ok((
            this,
            ExecutionTasks {
                writer: writer_task,
            },
        ))
    }

    /// Stops starting queued work: what is queued stays queued in the store and
    /// runs after the next start. Running work finishes.
    pub fn shutdown(&self) {
        self.slots.close();
    }

    fn runner(&self) -> Runner {
        Runner {
            writer: self.writer.clone(),
            metrics: self.metrics.clone(),
            callbacks: self.callbacks.clone(),
            sandboxes: self.sandboxes.clone(),
            max_output_bytes: self.cfg.max_output_bytes,
        }
    }

    fn enqueue(&self, id: Uuid) {
        self.metrics.queue_depth.inc();
        if self.queue.send(id).is_err() {
            self.metrics.queue_depth.dec();
            tracing::error!(execution = %id, "dispatcher stopped; execution stays queued until restart");
        }
    }

    fn check_input(&self, input: &Value, callback_url: Option<&str>) -> AppResult<()> {
        let size = serde_json::to_vec(input)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > self.max_input_bytes {
            return Err(AppError::InputTooLarge {
                size,
                limit: self.max_input_bytes,
            });
        }
        if let Some(url) = callback_url {
            callback::check_url(url).map_err(|m| AppError::validation("callback_url", m))?;
        }
        Ok(())
    }

    /// Runs `function` now and returns the finished execution.
    pub async fn invoke_sync(
        &self,
        function: &str,
        input: Value,
        callback_url: Option<String>,
    ) -> AppResult<ExecutionRecord> {
        self.invoke_sync_as(function, input, callback_url, OutputMode::Json)
            .await
    }

    /// Like [`Executions::invoke_sync`], choosing how a Go handler prints.
    pub async fn invoke_sync_as(
        &self,
        function: &str,
        input: Value,
        callback_url: Option<String>,
        mode: OutputMode,
    ) -> AppResult<ExecutionRecord> {
        self.check_input(&input, callback_url.as_deref())?;
        let live = self.functions.live(function).await?;
        let d = &live.record;
        let mut rec = ExecutionRecord::new(
            function,
            d.deployment.id,
            d.snapshot.backend,
            ExecutionStatus::Running,
            input,
            callback_url,
        );
        rec.started_at = Some(rec.created_at);
        self.writer.write(rec.clone()).await;
        let run = tracing::Instrument::in_current_span(run(live, rec, self.runner(), mode));
        let (rec, unavailable) = crate::detach::finish_even_if_dropped(run)
            .await
            .map_err(|_| anyhow::anyhow!("invocation task failed: it panicked"))?;
        match unavailable {
            Some(e) => Err(e.into()),
            None => Ok(rec),
        }
    }

    /// Queues `function` for a worker; the record is committed before this returns.
    pub async fn invoke_async(
        &self,
        function: &str,
        input: Value,
        callback_url: Option<String>,
    ) -> AppResult<ExecutionRecord> {
        self.check_input(&input, callback_url.as_deref())?;
        let live = self.functions.live(function).await?;
        let d = &live.record;
        let rec = ExecutionRecord::new(
            function,
            d.deployment.id,
            d.snapshot.backend,
            ExecutionStatus::Queued,
            input,
            callback_url,
        );
        self.store
            .upsert_executions(std::slice::from_ref(&rec))
            .await?;
        self.enqueue(rec.id);
        Ok(rec)
    }

    /// One execution, including writes still in flight.
    pub async fn get(&self, id: Uuid) -> AppResult<ExecutionRecord> {
        self.writer.flush().await;
        self.store
            .get_execution(id)
            .await?
            .ok_or_else(|| AppError::ExecutionNotFound(id.to_string()))
    }

    /// Full stdout/stderr of one execution.
    pub async fn logs(&self, id: Uuid) -> AppResult<ExecutionLogs> {
        Ok(self.get(id).await?.logs())
    }

    /// A page of a function's executions, newest first.
    pub async fn list(&self, q: ExecutionQuery) -> AppResult<Vec<ExecutionRecord>> {
        if let Some(f) = &q.function {
            self.functions.get(f).await?;
        }
        self.writer.flush().await;
        Ok(self.store.list_executions(&q).await?)
    }

    /// Runs one queued execution (a worker's job).
    async fn work(&self, id: Uuid) {
        let mut rec = match self.store.get_execution(id).await {
            Ok(Some(rec)) if rec.status == ExecutionStatus::Queued => rec,
            Ok(_) => return, // deleted with its function, or already handled
            Err(e) => {
                tracing::error!(execution = %id, error = %e, "cannot load queued execution; it stays queued");
                return;
            }
        };
        rec.started_at = Some(crate::model::now());
        let live = match self.functions.live(&rec.function).await {
            Ok(live) => live,
            Err(e) => {
                rec.status = ExecutionStatus::Failed;
                rec.reason = Some(
                    match e {
                        AppError::NotDeployed(_) | AppError::FunctionNotFound(_) => "not_deployed",
                        AppError::BackendUnavailable { .. } => "backend_unavailable",
                        _ => "backend_error",
                    }
                    .into(),
                );
                rec.message = Some(e.to_string());
                rec.finished_at = Some(crate::model::now());
                finish(&rec, &self.writer, &self.metrics, &self.callbacks).await;
                return;
            }
        };
        // Async work runs the deployment that is live when it starts.
        rec.deployment_id = live.record.deployment.id;
        rec.status = ExecutionStatus::Running;
        self.writer.write(rec.clone()).await;
        run(live, rec, self.runner(), OutputMode::Json).await;
    }
}

/// How a Go handler writes its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// As JSON (the API's default).
    Json,
    /// Exactly what `fmt.Print` prints (Sky Island's `data`).
    Print,
}

/// The bytes for stdin. A `call` of literals runs its handler binary with those
/// arguments (the invoke input is ignored, as the call fixes them); other
/// sources read the input.
fn stdin_for(source: &SourceInfo, input: &Value) -> Vec<u8> {
    if let SourceInfo::Go {
        call: Some(call),
        handler: None,
        ..
    } = source
    {
        let args = crate::gobuild::shim::parse_literal_call(call).map(|c| Value::Array(c.args));
        return serde_json::to_vec(&args.unwrap_or(Value::Null)).expect("JSON values serialize");
    }
    serde_json::to_vec(input).expect("JSON values serialize")
}

/// What a run needs besides its deployment and record.
struct Runner {
    writer: ExecutionWriter,
    metrics: Arc<Metrics>,
    callbacks: CallbackSender,
    sandboxes: Arc<Sandboxes>,
    max_output_bytes: usize,
}

/// Runs one execution on its live deployment and records the outcome. Returns
/// the final record and, when the backend could not run it (unavailable, no
/// address left), that error for sync callers.
async fn run(
    live: Arc<LiveDeployment>,
    mut rec: ExecutionRecord,
    ctx: Runner,
    mode: OutputMode,
) -> (ExecutionRecord, Option<BackendError>) {
    let snapshot = &live.record.snapshot;
    let stdin = stdin_for(&snapshot.source, &rec.input);
    let mut env = crate::backend::function_env(snapshot, mode == OutputMode::Print);
    env.push((
        crate::backend::ENV_INPUT.into(),
        String::from_utf8_lossy(&stdin).into_owned(),
    ));
    env.push((crate::backend::ENV_EXECUTION_ID.into(), rec.id.to_string()));
    let registration = ctx.sandboxes.register(rec.id, &rec.function, rec.backend);
    let control = registration.control.clone();
    let req = RunRequest {
        execution_id: rec.id,
        function: rec.function.clone(),
        stdin,
        env,
        limits: snapshot.limits,
        max_output_bytes: ctx.max_output_bytes,
        control: control.clone(),
    };
    let started = std::time::Instant::now();
    // Backends stop on the kill themselves; this also covers one still setting
    // its sandbox up (dropping the future releases what it holds).
    let result = tokio::select! {
        r = live.runnable.run(req) => r,
        () = control.killed() => Ok(killed(started.elapsed())),
    };
    drop(registration);
    let mut refused = None;
    match result {
        Ok(o) => {
            rec.status = o.status;
            rec.exit_code = o.exit_code;
            rec.stdout = o.stdout;
            rec.stderr = o.stderr;
            rec.stdout_truncated = o.stdout_truncated;
            rec.stderr_truncated = o.stderr_truncated;
            rec.reason = o.reason.map(str::to_string);
            rec.message = o.message;
            rec.duration_ms = Some(o.duration.as_millis() as u64);
            ctx.metrics
                .invoke_duration
                .with_label_values(&[rec.backend.as_str()])
                .observe(o.duration.as_secs_f64());
        }
        Err(e) => {
            rec.status = ExecutionStatus::Failed;
            rec.reason = Some(
                match e {
                    BackendError::Unavailable { .. } => "backend_unavailable",
                    BackendError::AddressesExhausted(_) => "ip_pool_exhausted",
                    _ => "backend_error",
                }
                .into(),
            );
            rec.message = Some(e.to_string());
            if matches!(
                e,
                BackendError::Unavailable { .. } | BackendError::AddressesExhausted(_)
            ) {
                tracing::warn!(execution = %rec.id, error = %e, "backend could not run the function");
                refused = Some(e);
            } else {
                tracing::error!(execution = %rec.id, error = %e, "backend failed to run the function");
            }
        }
    }
    rec.finished_at = Some(crate::model::now());
    finish(&rec, &ctx.writer, &ctx.metrics, &ctx.callbacks).await;
    (rec, refused)
}

/// The outcome of a run the admin API killed.
pub fn killed(duration: Duration) -> crate::backend::RunOutcome {
    crate::backend::RunOutcome {
        status: ExecutionStatus::Failed,
        exit_code: None,
        stdout: Vec::new(),
        stderr: Vec::new(),
        stdout_truncated: false,
        stderr_truncated: false,
        reason: Some("killed"),
        message: Some("killed by an administrator (DELETE /api/v1/admin/jail/{id})".into()),
        duration,
    }
}

async fn finish(
    rec: &ExecutionRecord,
    writer: &ExecutionWriter,
    metrics: &Metrics,
    callbacks: &CallbackSender,
) {
    metrics
        .invocations
        .with_label_values(&[
            rec.function.as_str(),
            rec.backend.as_str(),
            rec.status.as_str(),
        ])
        .inc();
    writer.write(rec.clone()).await;
    if let Some(url) = &rec.callback_url {
        callbacks.send(url.clone(), rec.to_api());
    }
}

/// Hands queued ids to at most `executions.workers` concurrent runs, until shutdown.
async fn dispatch(this: std::sync::Weak<Executions>, mut rx: mpsc::UnboundedReceiver<Uuid>) {
    while let Some(id) = rx.recv().await {
        let Some(exec) = this.upgrade() else { return };
        let Ok(permit) = exec.slots.clone().acquire_owned().await else {
            return; // shutting down: the rest stays queued in the store
        };
        exec.metrics.queue_depth.dec();
        tokio::spawn(async move {
            let _permit = permit;
            exec.work(id).await;
        });
    }
}

/// Deletes old executions every `prune_interval_ms`.
async fn prune(this: std::sync::Weak<Executions>) {
    loop {
        let Some(interval) = this.upgrade().map(|e| e.cfg.prune_interval_ms) else {
            return;
        };
        tokio::time::sleep(Duration::from_millis(interval)).await;
        let Some(exec) = this.upgrade() else { return };
        let cutoff =
            crate::model::now() - chrono::Duration::seconds(exec.cfg.retention_max_age_secs as i64);
        exec.writer.flush().await;
        match exec
            .store
            .prune_executions(cutoff, exec.cfg.retention_max_count)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "pruned old executions"),
            Err(e) => tracing::warn!(error = %e, "pruning executions failed"),
        }
    }
}
