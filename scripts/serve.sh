#!/usr/bin/env bash
# Installs what the server needs and starts it on its embedded defaults:
# SQLite and artifacts in ./data, listening on 127.0.0.1:3280.
# Extra arguments go to `skybridge serve` (e.g. --config skybridge.toml).
source "$(dirname "$0")/lib.sh"
require_cargo
install_go   # for building the Go examples to WASI
# The docker backend; the server also starts without it (docker functions then
# answer 503 backend_unavailable).
start_docker || log "Docker Engine unavailable: continuing without the docker backend"
command -v curl >/dev/null || apt_install curl   # for the README walkthrough
# SKYBRIDGE_BIN runs a skybridge binary built elsewhere (a packager's, or the
# test suite's, which starts the server exactly as this script does).
if [ -n "${SKYBRIDGE_BIN:-}" ]; then
  exec "$SKYBRIDGE_BIN" serve "$@"
fi
log "building skybridge and its jail init (release)"
cargo build --release --bin skybridge --bin skybridge-jail-init
exec target/release/skybridge serve "$@"
