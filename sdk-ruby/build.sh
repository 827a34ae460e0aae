#!/usr/bin/env bash
# Builds the Ruby SDK's native extension with cargo (in the repository's
# workspace: one target dir for everything) into lib/skybridge/, then the gem
# (skybridge-<version>-<platform>.gem), which ships the extension: installing
# it compiles nothing. `--release` builds optimized; `--no-gem` stops after the
# extension.
set -euo pipefail
cd "$(dirname "$0")"
profile=debug
args=()
gem=true
for a in "$@"; do
  case "$a" in
    --release) profile=release; args+=(--release) ;;
    --no-gem) gem=false ;;
    *) echo "usage: $0 [--release] [--no-gem]" >&2; exit 2 ;;
  esac
done
cargo build -q -p skybridge-ruby "${args[@]}"
target="${CARGO_TARGET_DIR:-$(cd .. && pwd)/target}"
cp "$target/$profile/libskybridge_native.so" lib/skybridge/skybridge_native.so
if $gem; then gem build --quiet skybridge.gemspec; fi
