#!/usr/bin/env bash
# Builds examples/hello-go for WASI and runs `skybridge bench` (release build)
# against it, in one run: the in-process floor and sync invoke over HTTP, the
# SDKs against plain clients of their languages, the Go pipeline, and the
# docker backend against `docker run --rm`.
# Extra arguments go to `skybridge bench` (e.g. --requests 5000).
source "$(dirname "$0")/lib.sh"
require_cargo
install_go
apt_install busybox-static
start_docker
# The docker rows' image: a rootfs holding only Debian's static busybox (no
# registry is reachable here to pull one).
BENCH_IMAGE=skybridge-bench/busybox:1
if ! docker image inspect "$BENCH_IMAGE" >/dev/null 2>&1; then
  rootfs="$(mktemp -d)"
  mkdir -p "$rootfs/bin" "$rootfs/tmp" && chmod 1777 "$rootfs/tmp"
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
  done
  tar -C "$rootfs" -c . | docker import -c "ENV PATH=/bin" - "$BENCH_IMAGE" >/dev/null
  rm -rf "$rootfs"
fi
mkdir -p target/bench
(cd examples/hello-go && GOOS=wasip1 GOARCH=wasm GOTOOLCHAIN=local GOPROXY=off \
  GOCACHE="$ROOT/target/go-cache" "$SKYBRIDGE_GO" build -o "$ROOT/target/bench/hello.wasm" .)
# A git repository of examples/go-functions for the Go pipeline rows.
rm -rf target/bench/go-functions
cp -r examples/go-functions target/bench/go-functions
git -C target/bench/go-functions init -q -b main
git -C target/bench/go-functions add -A
git -C target/bench/go-functions -c user.name=bench -c user.email=bench@localhost commit -q -m bench
# One release build of the workspace: the server and the SDKs' native parts.
cargo build --release --workspace
cp target/release/libskybridge_node.so "sdk-node/skybridge.$(node -p 'process.platform + "-" + process.arch').node"
cp target/release/libskybridge_native.so sdk-ruby/lib/skybridge/skybridge_native.so
SKYBRIDGE_LOG=warn target/release/skybridge bench --module target/bench/hello.wasm \
  --go-repo "file://$ROOT/target/bench/go-functions" --docker-image "$BENCH_IMAGE" --sdks "$ROOT" "$@"
