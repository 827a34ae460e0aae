//! Wiring: open the store and cache, build the backends and services, serve HTTP,
//! shut down cleanly.

use std::future::Future;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::{app, AppState};
use crate::artifacts::ArtifactCache;
use crate::backend::docker::DockerBackend;
use crate::backend::jail::JailBackend;
use crate::backend::wasm::WasmBackend;
use crate::backend::Backends;
use crate::config::Config;
use crate::executions::{ExecutionTasks, Executions};
use crate::functions::FunctionService;
use crate::gobuild::GoBuilder;
use crate::metrics::Metrics;
use crate::store::{SqliteStore, Store};

/// How long shutdown waits for running executions and pending writes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Opens everything under the data dir and starts background work.
pub async fn assemble(mut config: Config) -> anyhow::Result<(AppState, ExecutionTasks)> {
    // `Config::load` did this already; a config built in code gets it here, so
    // every path below is absolute whatever the working directory becomes.
    config.resolve_paths(&std::env::current_dir().context("reading the working directory")?);
    let data_dir = &config.server.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&data_dir.join("skybridge.db"))
            .await
            .context("opening the SQLite store")?,
    );
    let cache = ArtifactCache::open(data_dir).context("opening the artifact cache")?;
    let metrics = Arc::new(Metrics::new());
    let wasm = WasmBackend::new(&config.wasm, &config.limits, cache.clone())
        .context("starting the wasm backend")?;
    let docker = Arc::new(
        DockerBackend::new(&config.docker, cache.clone(), metrics.clone())
            .context("preparing the docker backend")?,
    );
    docker.connect_in_background();
    let jail = JailBackend::start(&config.jail, cache.clone(), metrics.clone())
        .await
        .context("preparing the jail backend")?;
    let ip_pool = jail.ip_pool();
    let backends = Backends::new(vec![Arc::new(wasm), docker, Arc::new(jail)]);
    let go = Arc::new(
        GoBuilder::new(&config.go, data_dir, std::env::var("SKYBRIDGE_GO").ok())
            .context("preparing the Go build pipeline")?,
    );
    go.warm_up();
    let functions = Arc::new(FunctionService::new(
        store.clone(),
        backends.clone(),
        cache,
        go,
        &config,
        metrics.clone(),
    ));
    let sandboxes = Arc::new(crate::sandboxes::Sandboxes::default());
    let (executions, tasks) = Executions::start(
        store,
        functions.clone(),
        config.executions.clone(),
        &config.limits,
        metrics.clone(),
        sandboxes.clone(),
    )
    .await
    .context("starting the execution engine")?;
    let state = AppState {
        config: Arc::new(config),
        functions,
        executions,
        backends,
        metrics,
        sandboxes,
        ip_pool,
        api_stats: Default::default(),
    };
    Ok((state, tasks))
}

/// Serves until `shutdown` resolves, then stops starting queued work and gives
/// running requests and pending writes one grace period (30 s) in all.
/// `on_bound` receives the actual address (useful with port 0).
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    let listen = config.server.listen;
    let (state, tasks) = assemble(config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    on_bound(listener.local_addr()?);

    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(None::<Instant>);
    let executions = state.executions.clone();
    let backends = state.backends.clone();
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing running requests; queued work stays queued");
        executions.shutdown();
        let _ = stopping_tx.send(Some(Instant::now()));
    });
    let grace_over = async {
        let _ = stopping.wait_for(Option::is_some).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server.into_future() => result.context("serving HTTP")?,
        _ = grace_over => tracing::warn!("grace period over; requests still running are cut off"),
    }
    let started = stopping.borrow().unwrap_or_else(Instant::now);
    let left = SHUTDOWN_GRACE.saturating_sub(started.elapsed());
    if tokio::time::timeout(left, tasks.finish()).await.is_err() {
        tracing::warn!("grace period over before every record was written");
    }
    // Warm containers (and runs cut off by the grace period) go now; whatever a
    // crash leaves is reaped at the next start.
    for backend in backends.all() {
        backend.shutdown().await;
    }
    Ok(())
}
