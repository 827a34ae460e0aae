//! The deploy-time snapshot of a Go reactor, and the clock every instance reads.
//!
//! A Go handler built for the wasm backend is a WASI reactor (see
//! [`crate::gobuild::shim::ShimMode::Reactor`]). At deploy, [`take`] instantiates
//! it once, runs `_initialize` (the Go runtime and every package's `init`) and
//! the shim's warm-up, and has Wizer (`wasmtime-wizer`) write memory and globals
//! into a new module. Calls then instantiate that module: a copy-on-write image
//! of an initialized Go program, entered through `skybridge_handle`.
//!
//! What the snapshot must not freeze, and how it is kept out:
//! - the build's environment: the snapshot instance gets no env, args
//!   `["skybridge-snapshot"]`, no preopens; every call's shim re-reads env and args
//!   from its own WASI context;
//! - randomness: the shim reseeds the runtime's generator on entry from the
//!   call's `random_get`;
//! - the monotonic clock: wasmtime-wasi's default starts at 0 in every context,
//!   so a value Go read during init would lie in the future of every call and
//!   `time.Since` of it would go negative. Every context (the snapshot's and the
//!   calls') reads [`AnchoredClock`] instead: one clock, anchored to the wall
//!   clock when the process starts, so it also runs on across restarts;
//! - stdio: the snapshot instance gets the same kinds of streams a call gets
//!   (a memory pipe on stdin, capped pipes out), so what Go's `os` package
//!   learned about fds 0–2 at init stays true.

use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::{Engine, Instance, Linker, Module, Store, Val};
use wasmtime_wasi::HostMonotonicClock;
use wasmtime_wizer::{InstanceState, SnapshotVal, ValType, Wizer};

use super::Guest;
use crate::backend::output::CappedOutput;
use crate::gobuild::shim::{HANDLE_EXPORT, WARMUP_EXPORT};

/// How long `_initialize` plus the warm-up may take before the deploy gives up
/// on the snapshot (and runs the reactor unsnapshotted).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Output the init may print into the build log.
const INIT_OUTPUT_CAP: usize = 16 * 1024;

/// The exports that make a module a Skybridge reactor.
pub fn is_reactor(exports: &[String]) -> bool {
    ["_initialize", HANDLE_EXPORT, WARMUP_EXPORT]
        .iter()
        .all(|e| exports.iter().any(|x| x == e))
}

/// A snapshot and what its init printed.
pub struct Taken {
    /// The pre-initialized module.
    pub wasm: Vec<u8>,
    /// stdout and stderr of `_initialize` and the warm-up, for the build log.
    pub output: String,
    /// Linear memory at the snapshot, bytes.
    pub memory_bytes: usize,
}

/// Runs the reactor's init and warm-up once and snapshots the result.
pub(crate) async fn take(
    engine: &Engine,
    linker: &Linker<Guest>,
    wasm: &[u8],
    max_memory_bytes: usize,
) -> Result<Taken, String> {
    let mut wizer = Wizer::new();
    wizer.init_func(WARMUP_EXPORT);
    let (cx, instrumented) = wizer
        .instrument(wasm)
        .map_err(|e| format!("cannot instrument the module: {e:#}"))?;
    let module = Module::new(engine, &instrumented)
        .map_err(|e| format!("the instrumented module does not compile: {e:#}"))?;

    let stdout = CappedOutput::new(INIT_OUTPUT_CAP);
    let stderr = CappedOutput::new(INIT_OUTPUT_CAP);
    let wasi = super::wasi_ctx(
        Vec::new(),
        &stdout,
        &stderr,
        &[],
        &["skybridge-snapshot".to_string()],
    );
    let mut store = super::guest_store(engine, wasi, max_memory_bytes);
    let run = async {
        let instance = linker.instantiate_async(&mut store, &module).await?;
        for export in ["_initialize", WARMUP_EXPORT] {
            instance
                .get_typed_func::<(), ()>(&mut store, export)?
                .call_async(&mut store, ())
                .await
                .map_err(|e| e.context(format!("`{export}` failed")))?;
        }
        wasmtime::Result::Ok(instance)
    };
    let result = tokio::time::timeout(INIT_TIMEOUT, run).await;
    let output = {
        let (out, _) = stdout.take();
        let (err, _) = stderr.take();
        let mut s = String::from_utf8_lossy(&out).into_owned();
        s.push_str(&String::from_utf8_lossy(&err));
        s
    };
    let instance = match result {
        Err(_) => {
            return Err(format!(
                "the Go runtime's init did not finish within {} s{}",
                INIT_TIMEOUT.as_secs(),
                said(&output)
            ))
        }
        Ok(Err(e)) => {
            let denied = store.data().memory.denied;
            return Err(format!(
                "{}{}{}",
                describe(&e),
                if denied {
                    " (the memory limit stopped it)"
                } else {
                    ""
                },
                said(&output)
            ));
        }
        Ok(Ok(instance)) => instance,
    };
    let memory_bytes = instance
        .get_export(&mut store, "memory")
        .and_then(|e| e.into_memory())
        .map(|m| m.data_size(&store))
        .unwrap_or(0);
    let wasm = wizer
        .snapshot(
            &cx,
            &mut Snapshotted {
                store: &mut store,
                instance,
            },
        )
        .await
        .map_err(|e| format!("writing the snapshot failed: {e:#}"))?;
    Ok(Taken {
        wasm,
        output,
        memory_bytes,
    })
}

fn describe(e: &wasmtime::Error) -> String {
    match e.root_cause().downcast_ref::<wasmtime_wasi::I32Exit>() {
        Some(exit) => format!("{e}: the module exited with code {} during init", exit.0),
        None => format!("{e:#}"),
    }
}

fn said(output: &str) -> String {
    let output = output.trim();
    if output.is_empty() {
        String::new()
    } else {
        format!("; it printed: {output}")
    }
}

/// What Wizer reads from the initialized instance.
struct Snapshotted<'a> {
    store: &'a mut Store<Guest>,
    instance: Instance,
}

impl InstanceState for Snapshotted<'_> {
    async fn global_get(&mut self, name: &str, _: ValType) -> SnapshotVal {
        let global = self
            .instance
            .get_global(&mut *self.store, name)
            .expect("wizer names only globals its instrumentation exported");
        match global.get(&mut *self.store) {
            Val::I32(x) => SnapshotVal::I32(x),
            Val::I64(x) => SnapshotVal::I64(x),
            Val::F32(x) => SnapshotVal::F32(x),
            Val::F64(x) => SnapshotVal::F64(x),
            Val::V128(x) => SnapshotVal::V128(x.as_u128()),
            other => panic!("wizer does not snapshot {other:?} globals"),
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        let memory = self
            .instance
            .get_memory(&mut *self.store, name)
            .expect("wizer names only memories its instrumentation exported");
        contents(memory.data(&*self.store))
    }
}

/// Nanoseconds since the Unix epoch at the moment this process first read the
/// clock, plus the monotonic time since: never goes back within a process, and
/// a later process (same machine, wall clock not stepped back) starts past
/// everything an earlier one handed out, so a snapshot's init time is always in
/// the past of its calls.
#[derive(Clone, Copy, Default)]
pub struct AnchoredClock;

static ANCHOR: LazyLock<(Instant, u64)> = LazyLock::new(|| {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (Instant::now(), wall)
});

impl HostMonotonicClock for AnchoredClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        let (at, wall) = *ANCHOR;
        wall + at.elapsed().as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_runs_on_from_the_wall_clock() {
        let a = AnchoredClock.now();
        std::thread::sleep(Duration::from_millis(2));
        let b = AnchoredClock.now();
        assert!(b >= a + 2_000_000, "{a} then {b}");
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        assert!(
            b.abs_diff(wall) < 1_000_000_000,
            "anchored {b}, wall {wall}"
        );
    }

    #[test]
    fn reactors_are_known_by_their_exports() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_reactor(&names(&[
            "memory",
            "_initialize",
            "skybridge_handle",
            "skybridge_warmup"
        ])));
        assert!(!is_reactor(&names(&["_start", "memory"])));
        assert!(!is_reactor(&names(&["_initialize", "skybridge_handle"])));
    }
}
