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
# A git repository of examples/go-functions for the Go pipeline rows.
rm -rf target/bench/go-functions
cp -r examples/go-functions target/bench/go-functions
git -C target/bench/go-functions init -q -b main
git -C target/bench/go-functions add -A
git -C target/bench/go-functions -c user.name=bench -c user.email=bench@localhost commit -q -m bench
cargo build --release --bin skybridge
SKYBRIDGE_LOG=warn target/release/skybridge bench --module target/bench/hello.wasm \
  --go-repo "file://$ROOT/target/bench/go-functions" "$@"
