#!/usr/bin/env bash
# Builds the Node SDK's native addon with cargo (in the repository's workspace,
# so it shares one target dir with everything else) and puts it beside
# index.js as skybridge.<platform>-<arch>.node. `--release` builds optimized;
# `--pack` then makes the npm package (skybridge-client-<version>.tgz).
set -euo pipefail
cd "$(dirname "$0")"
profile=debug
args=()
pack=false
for a in "$@"; do
  case "$a" in
    --release) profile=release; args+=(--release) ;;
    --pack) pack=true ;;
    *) echo "usage: $0 [--release] [--pack]" >&2; exit 2 ;;
  esac
done
cargo build -q -p skybridge-node "${args[@]}"
target="${CARGO_TARGET_DIR:-$(cd .. && pwd)/target}"
platform="$(node -p 'process.platform + "-" + process.arch')"
cp "$target/$profile/libskybridge_node.so" "skybridge.$platform.node"
if $pack; then npm pack --silent; fi
