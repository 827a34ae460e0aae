//! The wasm backend: wasmtime running WASI preview-1 modules.
//!
//! Deploy turns a module into one of three [`Entry`] kinds: a Skybridge Go
//! reactor is initialized once and snapshotted ([`snapshot`]); if that fails it
//! stays a reactor that initializes on every call; anything else must be a WASI
//! command (`_start`). Every kind then has its data segments merged
//! ([`compact`]) and is precompiled to a `.cwasm` in the artifact cache; the
//! build log says which path it took. Load mmaps the `.cwasm`
//! (`Module::deserialize_file`, never a rebuild) and pre-links it (`InstancePre`).
//! Every run gets a fresh instance from the pooling allocator (a copy-on-write
//! image of the module's memory) with its own WASI context: stdin = input,
//! capped stdout/stderr, the function's env, no preopened directories, no
//! sockets. Memory is capped by a [`ResourceLimiter`]; wall-clock time by an
//! async deadline that the epoch ticker lets fire even inside a busy loop, and
//! that also cancels a guest blocked in a host call such as a sleep.

mod compact;
pub mod snapshot;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use sha2::Digest as _;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
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
use crate::gobuild::shim::HANDLE_EXPORT;
use crate::model::{BackendKind, ExecutionStatus, Function};

const MIB: usize = 1024 * 1024;
/// Memory (and table) bytes a pooled slot keeps mapped between instances, reset
/// in place instead of unmapped: most of a Go call's page faults go away.
const KEEP_RESIDENT: usize = 8 * MIB;
/// Go's function tables run to tens of thousands of entries in larger programs.
const MAX_TABLE_ELEMENTS: usize = 200_000;
/// Artifact kind recorded in the store, and part of the cache key.
const ARTIFACT_KIND: &str = "wasm-cwasm";
/// Part of the cache key: bump when what a build makes of the same module
/// changes (2: snapshots and merged data segments).
const BUILD_VERSION: &str = "2";

/// WASI modules and Go built for WASI; no network (no sockets at all), no warm
/// pool (a fresh instance of a snapshot costs about a hundred microseconds), any
/// memory cap.
pub const CONSTRAINTS: super::Constraints = super::Constraints {
    sources: &[super::SourceKind::Wasm, super::SourceKind::Go],
    network: false,
    warm_pool: false,
    min_memory_mb: 1,
};

/// What a deploy makes of a module before compiling it: a Skybridge reactor is
/// snapshotted (or, if that fails, kept as a reactor that initializes per call),
/// anything else is taken as a command; then data segments are merged. Says
/// which path it took in `log`. Blocks: call it off the async workers.
fn prepare_module(
    init: &Init,
    handle: &tokio::runtime::Handle,
    source: Vec<u8>,
    max_memory_bytes: usize,
    log: &mut String,
) -> Result<Vec<u8>, String> {
    let exports = export_names(&source).map_err(|e| format!("not a WebAssembly module: {e}"))?;
    let module_bytes = if snapshot::is_reactor(&exports) {
        let t = Instant::now();
        match handle.block_on(snapshot::take(
            &init.engine,
            &init.linker,
            &source,
            max_memory_bytes,
        )) {
            Ok(taken) => {
                log.push_str(&format!(
                    "snapshot: ran the Go runtime's init and the shim's warm-up once \
                     ({} MiB of memory) in {} ms; every call starts from that image\n",
                    taken.memory_bytes / MIB,
                    t.elapsed().as_millis()
                ));
                log.push_str(&taken.output);
                taken.wasm
            }
            Err(why) => {
                log.push_str(&format!(
                    "snapshot: not taken ({why}); every call initializes the Go \
                     runtime itself, as a command does\n"
                ));
                source
            }
        }
    } else {
        log.push_str("a WASI command: every call runs `_start` (no snapshot)\n");
        source
    };
    Ok(match compact::compact(&module_bytes) {
        Ok(c) => {
            log.push_str(&format!(
                "data segments: {} merged into {}\n",
                c.before, c.after
            ));
            c.wasm
        }
        Err(why) => {
            log.push_str(&format!("data segments: left as they are ({why})\n"));
            module_bytes
        }
    })
}

/// The names a module exports, read without compiling it.
fn export_names(wasm: &[u8]) -> Result<Vec<String>, wasmparser::BinaryReaderError> {
    let mut names = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::ExportSection(reader) = payload? {
            for export in reader {
                names.push(export?.name.to_string());
            }
        }
    }
    Ok(names)
}

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

/// How a run enters a module, read from its exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// A WASI command: `_start`; exit codes come through `proc_exit`.
    Command,
    /// A Skybridge reactor that was not snapshotted: `_initialize`, then
    /// `skybridge_handle`, which returns the exit code.
    Reactor,
    /// A snapshot of a Skybridge reactor: `skybridge_handle` alone.
    Snapshot,
}

impl Entry {
    fn of(module: &Module) -> Option<Entry> {
        let func = |name: &str, results: usize| {
            matches!(module.get_export(name), Some(wasmtime::ExternType::Func(f))
                if f.params().len() == 0 && f.results().len() == results)
        };
        if func(HANDLE_EXPORT, 1) {
            Some(if func("_initialize", 0) {
                Entry::Reactor
            } else {
                Entry::Snapshot
            })
        } else if func("_start", 0) {
            Some(Entry::Command)
        } else {
            None
        }
    }
}

/// The engine (and its linker) that runs a snapshot's init: compiled for
/// compile speed, since it runs once.
#[derive(Clone)]
struct Init {
    engine: Engine,
    linker: Arc<Linker<Guest>>,
}

fn wasi_linker(engine: &Engine) -> anyhow::Result<Arc<Linker<Guest>>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |g: &mut Guest| &mut g.wasi)?;
    Ok(Arc::new(linker))
}

/// The WASI context of a run (and of the snapshot's init, which must see the
/// same kinds of streams).
fn wasi_ctx(
    stdin: Vec<u8>,
    stdout: &CappedOutput,
    stderr: &CappedOutput,
    env: &[(String, String)],
    args: &[String],
) -> WasiP1Ctx {
    WasiCtxBuilder::new()
        .stdin(MemoryInputPipe::new(stdin))
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .envs(env)
        .args(args)
        .monotonic_clock(snapshot::AnchoredClock)
        .build_p1()
}

/// A store with the memory cap and the epoch yield every run needs.
fn guest_store(engine: &Engine, wasi: WasiP1Ctx, max_memory_bytes: usize) -> Store<Guest> {
    let mut store = Store::new(
        engine,
        Guest {
            wasi,
            memory: MemoryCap {
                max_bytes: max_memory_bytes,
                denied: false,
            },
        },
    );
    store.limiter(|g| &mut g.memory);
    // Yield to the executor at every epoch tick so a timeout around the call
    // can fire.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
    store
}

/// Per-store state.
pub(crate) struct Guest {
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
    /// Where snapshots' inits run.
    init: Init,
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
            .table_elements(MAX_TABLE_ELEMENTS)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut wt = wasmtime::Config::new();
        wt.epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wt)?;
        // The snapshot's init runs once per deploy: compile it as fast as
        // Cranelift can, not into the fastest code (the snapshot is then
        // compiled by `engine`, like every module).
        let mut init = wasmtime::Config::new();
        init.epoch_interruption(true)
            .cranelift_opt_level(wasmtime::OptLevel::None)
            .cranelift_regalloc_algorithm(wasmtime::RegallocAlgorithm::SinglePass);
        let init_engine = Engine::new(&init)?;

        // The ticker holds only weak engine handles, so dropping the backend ends it.
        let weak = [engine.weak(), init_engine.weak()];
        let tick = Duration::from_millis(config.epoch_tick_ms);
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak[0].upgrade() {
                    engine.increment_epoch();
                    if let Some(init) = weak[1].upgrade() {
                        init.increment_epoch();
                    }
                    drop(engine);
                    std::thread::sleep(tick);
                }
            })?;

        let mut h = Sha256Hasher::default();
        engine.precompile_compatibility_hash().hash(&mut h);
        let compat = hex::encode(h.0.finalize());

        Ok(Self {
            linker: wasi_linker(&engine)?,
            engine,
            init: Init {
                linker: wasi_linker(&init_engine)?,
                engine: init_engine,
            },
            cache,
            slots: Arc::new(Semaphore::new(config.max_instances as usize)),
            config: config.clone(),
            max_memory_mb: limits.max_memory_mb,
            compat,
        })
    }

    /// What a deploy makes of `source` (snapshot, data segments merged),
    /// compiled and ready to run outside any server, for the benchmark; with
    /// the build log.
    pub async fn load_deployed_bytes(
        &self,
        source: Vec<u8>,
    ) -> Result<(Arc<dyn Runnable>, String), BackendError> {
        let init = self.init.clone();
        let max_memory_bytes = self.max_memory_mb as usize * MIB;
        let handle = tokio::runtime::Handle::current();
        let (bytes, log) = tokio::task::spawn_blocking(move || {
            let mut log = String::new();
            prepare_module(&init, &handle, source, max_memory_bytes, &mut log)
                .map(|bytes| (bytes, log))
        })
        .await
        .map_err(|e| BackendError::Io(std::io::Error::other(e)))?
        .map_err(|message| BackendError::Build {
            message,
            log: String::new(),
        })?;
        Ok((self.load_module_bytes(&bytes).await?, log))
    }

    /// Compiles module bytes as they are, outside any server: the benchmark's
    /// floor (today's `_start` path, nothing merged).
    pub async fn load_module_bytes(&self, bytes: &[u8]) -> Result<Arc<dyn Runnable>, BackendError> {
        let module = Module::new(&self.engine, bytes).map_err(|e| BackendError::Build {
            message: format!("{e:#}"),
            log: String::new(),
        })?;
        self.prepare(module, "<memory>")
    }

    fn prepare(&self, module: Module, path: &str) -> Result<Arc<dyn Runnable>, BackendError> {
        let entry = Entry::of(&module).ok_or_else(|| BackendError::Artifact {
            path: path.to_string(),
            message: "the module has neither `_start` nor `skybridge_handle`".into(),
        })?;
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| BackendError::Artifact {
                path: path.to_string(),
                message: format!("{e:#}"),
            })?;
        Ok(Arc::new(WasmRunnable {
            pre,
            entry,
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
            format!(
                "{ARTIFACT_KIND}\n{BUILD_VERSION}\n{source_digest}\n{}",
                self.compat
            )
            .as_bytes(),
        )
    }

    async fn build(
        &self,
        key: &str,
        _function: &Function,
        source: Vec<u8>,
        _refresh: bool,
    ) -> Result<BuiltArtifact, BackendError> {
        let rel = self.cache.artifact_rel_path(key, "cwasm")?;
        let engine = self.engine.clone();
        let linker = self.linker.clone();
        let init = self.init.clone();
        let cache = self.cache.clone();
        let max_memory_bytes = self.max_memory_mb as usize * MIB;
        let handle = tokio::runtime::Handle::current();
        // Cranelift takes seconds on a Go module, and the snapshot's init runs
        // guest code: keep both off the async workers.
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut log = String::new();
            let fail = |message: String, log: &str| BackendError::Build {
                log: format!("{log}{message}\n"),
                message,
            };
            let module_bytes = prepare_module(&init, &handle, source, max_memory_bytes, &mut log)
                .map_err(|message| fail(message, &log))?;
            let compiled = engine
                .precompile_module(&module_bytes)
                .map_err(|e| fail(format!("module does not compile: {e:#}"), &log))?;
            // SAFETY: the bytes were produced by this engine's own precompile.
            let module = unsafe { Module::deserialize(&engine, &compiled) }
                .map_err(|e| fail(format!("precompiled module does not load: {e:#}"), &log))?;
            if Entry::of(&module).is_none() {
                return Err(fail(
                    "module is not a WASI command: it has no `_start` function export".into(),
                    &log,
                ));
            }
            linker.instantiate_pre(&module).map_err(|e| {
                fail(
                    format!("module imports something WASI preview 1 does not provide: {e:#}"),
                    &log,
                )
            })?;
            cache.put_artifact(&rel, &compiled)?;
            log.push_str(&format!(
                "compiled {} byte module to {} bytes of native code in {} ms\n",
                module_bytes.len(),
                compiled.len(),
                started.elapsed().as_millis()
            ));
            Ok(BuiltArtifact {
                log,
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
    entry: Entry,
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
        // A run starts on the async worker that took it: most calls end within
        // this first slice (the guest yields at the next epoch tick at the
        // latest), paying no thread hand-off. A run still going after it (a busy
        // loop, a sleep) goes on on a blocking thread, so long guests never keep
        // the workers from the sockets and timers they serve.
        let run = run_instance(
            self.engine.clone(),
            self.pre.clone(),
            self.entry,
            slot,
            req,
            remaining,
        );
        let mut run = Box::pin(AssertUnwindSafe(run).catch_unwind());
        let outcome = match futures::poll!(run.as_mut()) {
            Poll::Ready(outcome) => outcome,
            Poll::Pending => {
                let handle = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || handle.block_on(run))
                    .await
                    .map_err(|e| BackendError::Io(std::io::Error::other(e)))?
            }
        };
        outcome.map_err(|_| BackendError::Io(std::io::Error::other("the wasm run panicked")))
    }
}

/// One run on a fresh instance; `slot` is held until the instance is gone.
async fn run_instance(
    engine: Engine,
    pre: InstancePre<Guest>,
    entry: Entry,
    slot: OwnedSemaphorePermit,
    req: RunRequest,
    timeout: Duration,
) -> RunOutcome {
    let stdout = CappedOutput::new(req.max_output_bytes);
    let stderr = CappedOutput::new(req.max_output_bytes);
    let wasi = wasi_ctx(
        req.stdin,
        &stdout,
        &stderr,
        &req.env,
        std::slice::from_ref(&req.function),
    );
    let mut store = guest_store(&engine, wasi, req.limits.memory_mb as usize * MIB);

    let started = Instant::now();
    let control = req.control.clone();
    // The exit code: returned by a reactor's handle, or given to proc_exit.
    let run = tokio::time::timeout(timeout, async {
        let instance = pre.instantiate_async(&mut store).await?;
        let code = match entry {
            Entry::Command => {
                let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
                start.call_async(&mut store, ()).await.map(|()| 0)
            }
            Entry::Reactor | Entry::Snapshot => {
                if entry == Entry::Reactor {
                    let init = instance.get_typed_func::<(), ()>(&mut store, "_initialize")?;
                    init.call_async(&mut store, ()).await?;
                }
                let handle = instance.get_typed_func::<(), i32>(&mut store, HANDLE_EXPORT)?;
                handle.call_async(&mut store, ()).await
            }
        };
        match code {
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(exit) => Ok(exit.0),
                None => Err(e),
            },
            ok => ok,
        }
    });
    // The guest yields at every epoch tick, so a kill stops it within one.
    let result = tokio::select! {
        r = run => r,
        () = control.killed() => return crate::executions::killed(started.elapsed()),
    };
    let duration = started.elapsed();
    let memory_denied = store.data().memory.denied;
    // Resetting the instance's memory for reuse takes tens of microseconds for
    // a Go heap: do it as a task of its own, which runs once this one yields
    // (after the answer is on its way), not before. The slot is free again
    // only once the store is gone.
    tokio::spawn(async move { drop((store, slot)) });

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
        Ok(Ok(code)) => {
            outcome.exit_code = Some(code);
            if code != 0 {
                let message = super::exit_message(code, &outcome.stderr);
                fail(
                    &mut outcome,
                    ExecutionStatus::Failed,
                    "nonzero_exit",
                    message,
                );
            }
        }
        Ok(Err(e)) => {
            outcome.exit_code = None;
            let message = match e.downcast_ref::<Trap>() {
                Some(trap) => format!("trapped: {trap}"),
                None => format!("{e:#}"),
            };
            fail(&mut outcome, ExecutionStatus::Failed, "trap", message);
        }
    }
    if memory_denied && outcome.status == ExecutionStatus::Failed {
        // Go reports its own "out of memory" and exits 2 (and a snapshot larger
        // than the cap does not instantiate); whatever the guest did, the cause
        // is the cap.
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
    outcome
}
