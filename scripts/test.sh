#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite: formatting, clippy,
# unit tests and the integration tests (real server, real wasmtime, Go-built
# WASI guests, Swagger UI in headless Chromium).
source "$(dirname "$0")/lib.sh"
require_cargo
install_go
apt_install chromium
command -v chromium >/dev/null || { echo "chromium did not install" >&2; exit 1; }

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --all-targets -- -D warnings
log "cargo test"
cargo test --workspace
