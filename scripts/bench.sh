#!/usr/bin/env bash
# Builds examples/hello-go for WASI and runs `skybridge bench` (release build)
# against it: the in-process floor and sync invoke over HTTP, in one run.
# Extra arguments go to `skybridge bench` (e.g. --requests 5000).
source "$(dirname "$0")/lib.sh"
require_cargo
install_go
mkdir -p target/bench
(cd examples/hello-go && GOOS=wasip1 GOARCH=wasm GOTOOLCHAIN=local GOPROXY=off \
  GOCACHE="$ROOT/target/go-cache" "$SKYBRIDGE_GO" build -o "$ROOT/target/bench/hello.wasm" .)
cargo build --release --bin skybridge
SKYBRIDGE_LOG=warn target/release/skybridge bench --module target/bench/hello.wasm "$@"
