#!/usr/bin/env bash
# A container engine for Brook's image tests, and the image's offline wheelhouse.
#
#   scripts/container-engine.sh up       reuse a reachable engine (DOCKER_HOST, /var/run/docker.sock),
#                                        else prepare Debian's podman (../shared/containers/oci.sh:
#                                        setup, a local base image tagged as the Dockerfile's FROM,
#                                        the Docker-compatible API socket); each step only if needed.
#                                        Prints DOCKER_HOST=... as its last line.
#   scripts/container-engine.sh wheels   download the image's wheels into docker/wheels/ (Linux,
#                                        CPython 3.11, this machine's architecture), so builds need
#                                        no network; skipped when the same set is already there.
#   scripts/container-engine.sh prepare  wheels, then up (what `make test` runs before pytest).
#   scripts/container-engine.sh down     stop the API socket that `up` started.
#
# Typical use:  export "$(scripts/container-engine.sh prepare | tail -n 1)"   # DOCKER_HOST=...
# The first `up` on a machine without an engine takes ~80 s (apt-get install, debootstrap of the
# base image); later ones reuse all of it (~0.1 s). `up` needs root where it must install podman.
# Environment: PYTHON (for pip; default .venv/bin/python, else python3), OCI_SH (path of oci.sh),
# BROOK_PODMAN_SOCKET (default /tmp/brook-podman.sock).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
OCI_SH=${OCI_SH:-$REPO/../shared/containers/oci.sh}
SOCKET=${BROOK_PODMAN_SOCKET:-/tmp/brook-podman.sock}
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PYTHON=$REPO/.venv/bin/python; else PYTHON=python3; fi
fi
if [ -z "${CONTAINERS_CONF:-}" ] && [ -f "$(dirname "$OCI_SH")/containers.conf" ]; then
  CONTAINERS_CONF=$(cd "$(dirname "$OCI_SH")" && pwd)/containers.conf
  export CONTAINERS_CONF
fi

log() { echo "container-engine: $*" >&2; }

# "GET /_ping" over a unix socket: 0 when an engine answers OK.
ping_socket() {
  python3 - "$1" <<'EOF'
import socket, sys
try:
    s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
    s.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    sys.exit(0 if data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n", 1)[0] and data.endswith(b"OK") else 1)
except OSError:
    sys.exit(1)
EOF
}

# The image named by the Dockerfile's first FROM, as podman names it.
base_image() {
  local image
  image=$(awk 'toupper($1) == "FROM" { print $2; exit }' "$REPO/Dockerfile")
  case $image in
    */*/*) ;;
    */*) image=docker.io/$image ;;
    *) image=docker.io/library/$image ;;
  esac
  echo "$image"
}

dockerfile_arg() { sed -n "s/^ARG $1=//p" "$REPO/Dockerfile" | head -n 1; }

cmd_up() {
  if [ -n "${DOCKER_HOST:-}" ] && [[ $DOCKER_HOST != unix://* ]]; then
    log "using DOCKER_HOST=$DOCKER_HOST as given"; echo "DOCKER_HOST=$DOCKER_HOST"; return
  fi
  if [ -n "${DOCKER_HOST:-}" ] && [[ $DOCKER_HOST == unix://* ]] && ping_socket "${DOCKER_HOST#unix://}"; then
    log "engine at $DOCKER_HOST answers"; echo "DOCKER_HOST=$DOCKER_HOST"; return
  fi
  if [ -S /var/run/docker.sock ] && ping_socket /var/run/docker.sock; then
    log "Docker engine at /var/run/docker.sock answers"; echo "DOCKER_HOST=unix:///var/run/docker.sock"; return
  fi
  [ -x "$OCI_SH" ] || [ -f "$OCI_SH" ] || { log "no engine and no $OCI_SH"; exit 1; }
  if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
    log "installing podman (oci.sh setup)"; bash "$OCI_SH" setup >&2
  fi
  local base
  base=$(base_image)
  if ! podman image exists "$base"; then
    log "building the local base image $base (oci.sh base)"; bash "$OCI_SH" base "$base" >&2
  fi
  if ! ping_socket "$SOCKET"; then
    bash "$OCI_SH" api-stop "$SOCKET" >/dev/null 2>&1 || true
    log "starting podman's API on $SOCKET"; bash "$OCI_SH" api-start "$SOCKET" >/dev/null
    for _ in $(seq 1 50); do ping_socket "$SOCKET" && break; sleep 0.1; done
    ping_socket "$SOCKET" || { log "podman API on $SOCKET does not answer; see $SOCKET.log"; exit 1; }
  fi
  echo "DOCKER_HOST=unix://$SOCKET"
}

cmd_wheels() {
  local dest=$REPO/docker/wheels arch pip_version setuptools_version wanted
  arch=$(uname -m); [ "$arch" = arm64 ] && arch=aarch64
  pip_version=$(dockerfile_arg PIP_VERSION); setuptools_version=$(dockerfile_arg SETUPTOOLS_VERSION)
  wanted=$(printf '%s\n' "arch=$arch" "pip==$pip_version" "setuptools==$setuptools_version" \
    "$("$PYTHON" "$REPO/docker/requirements.py" "$REPO/pyproject.toml")")
  if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$wanted" ]; then
    log "docker/wheels is up to date"; return
  fi
  find "$dest" -maxdepth 1 -name '*.whl' -delete
  rm -f "$dest/.stamp"
  # Every manylinux tag up to Debian bookworm's glibc (2.36), and the legacy aliases.
  local platforms=() minor
  for minor in $(seq 5 36); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
  platforms+=(--platform "manylinux1_$arch" --platform "manylinux2010_$arch" --platform "manylinux2014_$arch")
  # (explicit status checks: `set -e` does not apply when the caller writes `cmd_wheels || ...`)
  "$PYTHON" "$REPO/docker/requirements.py" "$REPO/pyproject.toml" > "$dest/requirements.txt" || return 1
  "$PYTHON" -m pip download --quiet --only-binary=:all: --dest "$dest" \
    --implementation cp --python-version 3.11 --abi cp311 --abi abi3 --abi none "${platforms[@]}" \
    "pip==$pip_version" "setuptools==$setuptools_version" -r "$dest/requirements.txt" || return 1
  echo "$wanted" > "$dest/.stamp"
  log "docker/wheels: $(find "$dest" -maxdepth 1 -name '*.whl' | wc -l) wheels, $(du -sh "$dest" | cut -f1)"
}

cmd_down() {
  [ -f "$OCI_SH" ] && bash "$OCI_SH" api-stop "$SOCKET"
}

case ${1:-} in
  up) cmd_up ;;
  wheels) cmd_wheels ;;
  prepare) cmd_wheels || log "could not fill docker/wheels: the image build will need the network"; cmd_up ;;
  down) cmd_down ;;
  *) sed -n '2,21p' "$0"; exit 2 ;;
esac
