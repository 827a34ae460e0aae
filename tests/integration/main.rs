//! Integration tests: the real `skybridge` binary on 127.0.0.1:0, a fresh data dir
//! each, real wasmtime, real Go-built WASI modules, real SQLite.

mod bench;
mod common;
mod docker;
mod docs;
mod errors;
mod fuzz;
mod gofunctions;
mod jail;
mod lifecycle;
mod newcomer;
mod restart;
mod sandbox;
mod sdk_rust;
mod sdks;
mod skyisland;
mod snapshot;
