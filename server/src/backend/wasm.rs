//! The wasm backend: wasmtime running WASI preview-1 command modules.
//!
//! Deploy precompiles the module to a `.cwasm` in the artifact cache; load mmaps it
//! (`Module::deserialize_file`, no recompilation) and pre-links it (`InstancePre`).
//! Every run gets a fresh instance from the pooling allocator with its own WASI
//! context: stdin = input, capped stdout/stderr, the function's env, no preopened
//! directories, no sockets. Memory is capped by a [`ResourceLimiter`]; wall-clock
//! time by an async deadline that the epoch ticker lets fire even inside a busy
//! loop, and that also cancels a guest blocked in a host call such as a sleep.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use sha2::Digest as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Semaphore;
use wasmtime::{
    Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, PoolingAllocationConfig,
    ResourceLimiter, Store, Trap, UpdateDeadline,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};

use super::output::CappedOutput;
use super::{
    Backend, BackendError, BackendHealth, BuiltArtifact, RunOutcome, RunRequest, Runnable,
};
use crate::artifacts::ArtifactCache;
use crate::config::{LimitsConfig, WasmConfig};
use crate::model::{BackendKind, ExecutionStatus, Function};

const MIB: usize = 1024 * 1024;
/// Go's function tables run to tens of thousands of entries in larger programs.
const MAX_TABLE_ELEMENTS: usize = 200_000;
/// Artifact kind recorded in the store, and part of the cache key.
const ARTIFACT_KIND: &str = "wasm-cwasm";

/// WASI modules and Go built for WASI; no network (no sockets at all), no warm
/// pool (a fresh instance costs about a millisecond), any memory cap.
pub const CONSTRAINTS: super::Constraints = super::Constraints {
    sources: &[super::SourceKind::Wasm, super::SourceKind::Go],
    network: false,
    warm_pool: false,
    min_memory_mb: 1,
};

/// Feeds `Hash` into SHA-256: unlike `DefaultHasher`, stable across Rust releases,
/// so artifact keys survive a toolchain upgrade.
#[derive(Default)]
struct Sha256Hasher(sha2::Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        sha2::Digest::update(&mut self.0, bytes);
    }
    fn finish(&self) -> u64 {
        unreachable!("only the full digest is used")
    }
}

/// Per-store state.
struct Guest {
    wasi: WasiP1Ctx,
    memory: MemoryCap,
}

/// Denies linear-memory growth past the function's cap and remembers that it did,
/// so an out-of-memory exit is reported as `memory_limit`, not a plain failure.
struct MemoryCap {
    max_bytes: usize,
    denied: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The wasm backend.
pub struct WasmBackend {
    engine: Engine,
    linker: Arc<Linker<Guest>>,
    cache: ArtifactCache,
    slots: Arc<Semaphore>,
    config: WasmConfig,
    max_memory_mb: u32,
    compat: String,
}

impl WasmBackend {
    /// Builds the engine (pooling allocator, epoch interruption) and starts the
    /// epoch ticker thread.
    pub fn new(
        config: &WasmConfig,
        limits: &LimitsConfig,
        cache: ArtifactCache,
    ) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(config.max_instances)
            .total_memories(config.max_instances)
            .total_tables(config.max_instances)
            .total_stacks(config.max_instances)
            .max_memory_size(limits.max_memory_mb as usize * MIB)
            .table_elements(MAX_TABLE_ELEMENTS);
        let mut wt = wasmtime::Config::new();
        wt.epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wt)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |g: &mut Guest| &mut g.wasi)?;

        // The ticker holds only a weak engine handle, so dropping the backend ends it.
        let weak = engine.weak();
        let tick = Duration::from_millis(config.epoch_tick_ms);
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(tick);
                }
            })?;

        let mut h = Sha256Hasher::default();
        engine.precompile_compatibility_hash().hash(&mut h);
        let compat = hex::encode(h.0.finalize());

        Ok(Self {
            engine,
            linker: Arc::new(linker),
            cache,
            slots: Arc::new(Semaphore::new(config.max_instances as usize)),
            config: config.clone(),
            max_memory_mb: limits.max_memory_mb,
            compat,
        })
    }

    /// Compiles module bytes outside any server, as the benchmark floor does.
    pub async fn load_module_bytes(&self, bytes: &[u8]) -> Result<Arc<dyn Runnable>, BackendError> {
        let module = Module::new(&self.engine, bytes).map_err(|e| BackendError::Build {
            message: format!("{e:#}"),
            log: String::new(),
        })?;
        self.prepare(module, "<memory>")
    }

    fn prepare(&self, module: Module, path: &str) -> Result<Arc<dyn Runnable>, BackendError> {
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| BackendError::Artifact {
                path: path.to_string(),
                message: format!("{e:#}"),
            })?;
        Ok(Arc::new(WasmRunnable {
            pre,
            engine: self.engine.clone(),
            slots: self.slots.clone(),
        }))
    }
}

#[async_trait]
impl Backend for WasmBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Wasm
    }

    async fn health(&self) -> BackendHealth {
        let mut details = BTreeMap::new();
        details.insert("engine".into(), "wasmtime 48 (WASI preview 1)".into());
        details.insert(
            "max_instances".into(),
            self.config.max_instances.to_string(),
        );
        details.insert(
            "free_instance_slots".into(),
            self.slots.available_permits().to_string(),
        );
        details.insert("max_memory_mb".into(), self.max_memory_mb.to_string());
        BackendHealth {
            backend: BackendKind::Wasm,
            available: true,
            reason: None,
            details,
        }
    }

    fn go_target(&self) -> Option<crate::gobuild::GoTarget> {
        Some(crate::gobuild::GoTarget::Wasm)
    }

    fn artifact_key(&self, source_digest: &str) -> String {
        crate::artifacts::digest(
            format!("{ARTIFACT_KIND}\n{source_digest}\n{}", self.compat).as_bytes(),
        )
    }

    async fn build(
        &self,
        key: &str,
        _function: &Function,
        source: Vec<u8>,
        _refresh: bool,
    ) -> Result<BuiltArtifact, BackendError> {
        let rel_path = self.cache.artifact_rel_path(key, "cwasm")?;
        let engine = self.engine.clone();
        let linker = self.linker.clone();
        let cache = self.cache.clone();
        let rel = rel_path.clone();
        // Cranelift takes seconds on a Go module: keep it off the async workers.
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let fail = |message: String| BackendError::Build {
                log: format!("compiling {} byte module: {message}\n", source.len()),
                message,
            };
            let compiled = engine
                .precompile_module(&source)
                .map_err(|e| fail(format!("module does not compile: {e:#}")))?;
            // SAFETY: the bytes were produced by this engine's own precompile.
            let module = unsafe { Module::deserialize(&engine, &compiled) }
                .map_err(|e| fail(format!("precompiled module does not load: {e:#}")))?;
            match module.get_export("_start") {
                Some(wasmtime::ExternType::Func(f))
                    if f.params().len() == 0 && f.results().len() == 0 => {}
                _ => {
                    return Err(fail(
                        "module is not a WASI command: it has no `_start` function export".into(),
                    ))
                }
            }
            linker.instantiate_pre(&module).map_err(|e| {
                fail(format!(
                    "module imports something WASI preview 1 does not provide: {e:#}"
                ))
            })?;
            cache.put_artifact(&rel, &compiled)?;
            Ok(BuiltArtifact {
                log: format!(
                    "compiled {} byte module to {} bytes of native code in {} ms\n",
                    source.len(),
                    compiled.len(),
                    started.elapsed().as_millis()
                ),
                rel_path: rel,
                kind: ARTIFACT_KIND.into(),
                size_bytes: compiled.len() as u64,
            })
        })
        .await
        .map_err(|e| BackendError::Io(std::io::Error::other(e)))?
    }

    async fn load(
        &self,
        rel_path: &str,
        _function: &Function,
    ) -> Result<Arc<dyn Runnable>, BackendError> {
        let path = self.cache.resolve(rel_path);
        // SAFETY: the file is a cwasm this engine wrote into our own data dir.
        let module = unsafe { Module::deserialize_file(&self.engine, &path) }.map_err(|e| {
            BackendError::Artifact {
                path: path.display().to_string(),
                message: format!("{e:#}"),
            }
        })?;
        self.prepare(module, rel_path)
    }
}

/// A pre-linked module; each run instantiates it afresh.
struct WasmRunnable {
    pre: InstancePre<Guest>,
    engine: Engine,
    slots: Arc<Semaphore>,
}

#[async_trait]
impl Runnable for WasmRunnable {
    async fn run(&self, req: RunRequest) -> Result<RunOutcome, BackendError> {
        // Waiting for a free instance slot counts toward the time limit.
        let started = Instant::now();
        let limit = Duration::from_millis(req.limits.timeout_ms);
        let slot = match tokio::time::timeout(limit, self.slots.clone().acquire_owned()).await {
            Ok(slot) => slot.expect("semaphore never closed"),
            Err(_) => {
                return Ok(RunOutcome::timed_out(
                    req.limits.timeout_ms,
                    started.elapsed(),
                    " (no wasm instance slot became free: raise wasm.max_instances)",
                ))
            }
        };
        let remaining = limit.saturating_sub(started.elapsed());
        let pre = self.pre.clone();
        let engine = self.engine.clone();
        let handle = tokio::runtime::Handle::current();
        // The guest runs on a blocking thread so a CPU-bound function cannot stall
        // the HTTP workers; block_on there still drives the deadline timer.
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            handle.block_on(run_instance(engine, pre, req, remaining))
        })
        .await
        .map_err(|e| BackendError::Io(std::io::Error::other(e)))
    }
}

async fn run_instance(
    engine: Engine,
    pre: InstancePre<Guest>,
    req: RunRequest,
    timeout: Duration,
) -> RunOutcome {
    let stdout = CappedOutput::new(req.max_output_bytes);
    let stderr = CappedOutput::new(req.max_output_bytes);
    let wasi = WasiCtxBuilder::new()
        .stdin(MemoryInputPipe::new(req.stdin))
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .envs(&req.env)
        .args(&[req.function.as_str()])
        .build_p1();
    let mut store = Store::new(
        &engine,
        Guest {
            wasi,
            memory: MemoryCap {
                max_bytes: req.limits.memory_mb as usize * MIB,
                denied: false,
            },
        },
    );
    store.limiter(|g| &mut g.memory);
    // Yield to the executor at every epoch tick so the timeout below can fire.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));

    let started = Instant::now();
    let control = req.control.clone();
    let run = tokio::time::timeout(timeout, async {
        let instance = pre.instantiate_async(&mut store).await?;
        let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
        start.call_async(&mut store, ()).await
    });
    // The guest yields at every epoch tick, so a kill stops it within one.
    let result = tokio::select! {
        r = run => r,
        () = control.killed() => return crate::executions::killed(started.elapsed()),
    };
    let duration = started.elapsed();
    let memory_denied = store.data().memory.denied;
    drop(store);

    let (out, out_trunc) = stdout.take();
    let (err, err_trunc) = stderr.take();
    let mut outcome = RunOutcome {
        status: ExecutionStatus::Succeeded,
        exit_code: Some(0),
        stdout: out,
        stderr: err,
        stdout_truncated: out_trunc,
        stderr_truncated: err_trunc,
        reason: None,
        message: None,
        duration,
    };
    let fail = |o: &mut RunOutcome, status, reason, message: String| {
        o.status = status;
        o.reason = Some(reason);
        o.message = Some(message);
    };
    match result {
        Err(_elapsed) => {
            outcome.exit_code = None;
            fail(
                &mut outcome,
                ExecutionStatus::TimedOut,
                "timeout",
                format!("stopped after the {} ms time limit", req.limits.timeout_ms),
            );
        }
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                outcome.exit_code = Some(exit.0);
                if exit.0 != 0 {
                    let message = super::exit_message(exit.0, &outcome.stderr);
                    fail(
                        &mut outcome,
                        ExecutionStatus::Failed,
                        "nonzero_exit",
                        message,
                    );
                }
            } else {
                outcome.exit_code = None;
                let message = match e.downcast_ref::<Trap>() {
                    Some(trap) => format!("trapped: {trap}"),
                    None => format!("{e:#}"),
                };
                fail(&mut outcome, ExecutionStatus::Failed, "trap", message);
            }
            if memory_denied {
                // Go reports its own "out of memory" and exits 2; whatever the
                // guest did, the cause is the cap.
                let code = outcome.exit_code;
                fail(
                    &mut outcome,
                    ExecutionStatus::Failed,
                    "memory_limit",
                    format!(
                        "memory limit of {} MiB exceeded{}",
                        req.limits.memory_mb,
                        code.map(|c| format!(" (exited with code {c})"))
                            .unwrap_or_default()
                    ),
                );
            }
        }
    }
    outcome
}
