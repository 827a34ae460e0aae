#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite: formatting, clippy,
# unit tests and the integration tests (real server, real wasmtime, Go-built
# WASI guests, a real Docker Engine, Swagger UI in headless Chromium, and
# schemathesis fuzzing the live API from its spec).
source "$(dirname "$0")/lib.sh"
require_cargo
install_go
install_schemathesis
# busybox-static: the docker tests import a rootfs holding it as their image.
apt_install chromium busybox-static
command -v chromium >/dev/null || { echo "chromium did not install" >&2; exit 1; }
# No mocked Docker API anywhere: without an engine the docker tests must fail.
start_docker || { echo "the Docker Engine is required for the docker backend tests" >&2; exit 1; }

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --all-targets -- -D warnings
log "go vet + go test (examples and fixtures)"
for d in examples/hello-go examples/go-functions tests/fixtures/guest tests/fixtures/gofuncs \
         tests/fixtures/goasm tests/fixtures/gonet; do
  (cd "$d" && GOTOOLCHAIN=local GOPROXY=off GOFLAGS= "$SKYBRIDGE_GO" vet ./... && GOTOOLCHAIN=local GOPROXY=off "$SKYBRIDGE_GO" test ./...)
done
log "cargo test"
cargo test --workspace
