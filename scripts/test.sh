#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite: formatting, clippy,
# the generated SDK code's freshness, unit tests and the integration tests
# (real server, real wasmtime, Go-built WASI guests, a real Docker Engine,
# Swagger UI in headless Chromium, schemathesis fuzzing the live API from its
# spec, and the Node and Ruby SDKs' own suites against live servers).
source "$(dirname "$0")/lib.sh"
require_cargo
install_go
install_schemathesis
# busybox-static: the docker tests import a rootfs holding it as their image.
# ruby-dev + libclang-dev: the Ruby SDK's extension (magnus/rb-sys bindgen).
apt_install chromium busybox-static ruby-dev libclang-dev git
command -v chromium >/dev/null || { echo "chromium did not install" >&2; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
install_typescript
# No mocked Docker API anywhere: without an engine the docker tests must fail.
start_docker || { echo "the Docker Engine is required for the docker backend tests" >&2; exit 1; }

step() { log "$* ($((SECONDS / 60))m$((SECONDS % 60))s)"; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "generated SDK code is current (cargo xtask codegen --check)"
cargo xtask codegen --check
step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
# The FreeBSD jail driver cannot run here; it must at least compile and pass
# clippy for its target. Its standard library comes from rustup's server, which
# a machine that reaches only the package registries cannot fetch: then say so.
step "cargo clippy of the jail crate for x86_64-unknown-freebsd"
if rustup target list --installed | grep -qx x86_64-unknown-freebsd \
   || timeout 180 rustup target add x86_64-unknown-freebsd; then
  cargo clippy -p skybridge-jail --target x86_64-unknown-freebsd --all-targets -- -D warnings
else
  log "NOT CHECKED: rustup could not install the x86_64-unknown-freebsd standard library (no access to static.rust-lang.org?), so the FreeBSD driver's system-call part was not compiled in this run; its pure parts are unit-tested below"
fi
step "cargo doc of the Rust SDK, warnings as errors"
RUSTDOCFLAGS="-D warnings" cargo doc -q -p skybridge-client --no-deps
step "go vet + go test (examples and fixtures)"
for d in examples/hello-go examples/go-functions tests/fixtures/guest tests/fixtures/gofuncs \
         tests/fixtures/goasm tests/fixtures/gonet tests/fixtures/gohostile \
         tests/fixtures/gosnapshot tests/fixtures/gosnapenv; do
  (cd "$d" && GOTOOLCHAIN=local GOPROXY=off GOFLAGS= "$SKYBRIDGE_GO" vet ./... && GOTOOLCHAIN=local GOPROXY=off "$SKYBRIDGE_GO" test ./...)
done
# One build of everything (the server, the SDKs' native addons, the examples,
# every test): `cargo test` below then compiles nothing again.
step "cargo build --workspace --all-targets"
cargo build --workspace --all-targets
step "cargo test"
cargo test --workspace
step "done"
