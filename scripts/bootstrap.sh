#!/usr/bin/env bash
# One-step setup for a Debian 12 machine (run as root). Installs only what is
# missing, so a second run on a prepared machine takes a few seconds.
#
#   scripts/bootstrap.sh [--no-docker] [--no-image]
#
# Environment:
#   FLEET_VENV    virtualenv to create/use (default: ~/.cache/fleet-rollout/venv-<hash of requirements.txt>)
#   FLEET_IMAGE   fleet container image (default: fleet-rollout/debian12:latest);
#                 a non-default name is pulled, the default one is built locally
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/env.sh
. "$ROOT/scripts/env.sh"

want_docker=1
want_image=1
for arg in "$@"; do
    case "$arg" in
        --no-docker) want_docker=0; want_image=0 ;;
        --no-image) want_image=0 ;;
        *) echo "bootstrap: unknown argument '$arg'" >&2; exit 2 ;;
    esac
done

log() { printf '[bootstrap] %s\n' "$*" >&2; }

APT_PACKAGES=(debootstrap haproxy nginx prometheus socat python3-venv shellcheck git)
[ "$want_docker" = 1 ] && APT_PACKAGES+=(docker.io)

install_debian_packages() {
    local missing=() pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
            missing+=("$pkg")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        log "missing Debian packages: ${missing[*]}; run this script as root"
        exit 1
    fi
    log "installing Debian packages: ${missing[*]}"
    # The haproxy/nginx/prometheus packages are only used as binaries by the
    # tests (which start their own on loopback); keep their postinst from
    # starting system services that grab ports 80/443/9090. A policy-rc.d this
    # script adds goes again however the install ends (set -e exits on failure).
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ "$created_policy" = 1 ]; then
        rm -f "$policy"
        trap - EXIT
    fi
    return 0
}

ensure_venv() {
    local stamp="$FLEET_VENV/.requirements.sha256"
    local want
    want=$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)
    if [ -x "$FLEET_VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    log "creating virtualenv $FLEET_VENV from requirements.txt"
    rm -rf "$FLEET_VENV"
    mkdir -p "$(dirname "$FLEET_VENV")"
    python3 -m venv "$FLEET_VENV"
    local pip_log="$FLEET_VENV/pip-install.log"
    # pip's output goes to a log: it is long, and only useful when it fails.
    if ! { "$FLEET_VENV/bin/python" -m pip install --upgrade 'pip>=24' &&
        "$FLEET_VENV/bin/python" -m pip install -r "$ROOT/requirements.txt"; } >"$pip_log" 2>&1; then
        tail -n 40 "$pip_log" >&2
        log "pip install failed; full log: $pip_log"
        exit 1
    fi
    echo "$want" >"$stamp"
}

ensure_ansible_test_pip() {
    # ansible-test downloads get-pip from a host that is unreachable here; give
    # it a cached stand-in that bootstraps pip from ensurepip instead.
    local cache="$HOME/.ansible/test/cache"
    local name
    name=$("$FLEET_VENV/bin/python" "$ROOT/scripts/ansible_test_get_pip.py" --cache-name)
    mkdir -p "$cache"
    if ! cmp -s "$ROOT/scripts/ansible_test_get_pip.py" "$cache/$name"; then
        log "installing ansible-test pip bootstrap stand-in as $cache/$name"
        install -m 0644 "$ROOT/scripts/ansible_test_get_pip.py" "$cache/$name"
    fi
}

ensure_docker() {
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v dockerd >/dev/null 2>&1; then
        log "dockerd not found although docker.io is installed"
        exit 1
    fi
    log "starting dockerd (log: /var/log/fleet-rollout-dockerd.log)"
    # setsid: dockerd must outlive this script and the make process.
    setsid nohup dockerd >>/var/log/fleet-rollout-dockerd.log 2>&1 </dev/null &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && return 0
        sleep 1
    done
    log "dockerd did not come up within 60 s; see /var/log/fleet-rollout-dockerd.log"
    tail -n 20 /var/log/fleet-rollout-dockerd.log >&2 || true
    exit 1
}

ensure_image() {
    if [ "$FLEET_IMAGE" != "$FLEET_DEFAULT_IMAGE" ]; then
        # A user-supplied image (e.g. from a site registry) is used as it is.
        if ! docker image inspect "$FLEET_IMAGE" >/dev/null 2>&1; then
            log "pulling $FLEET_IMAGE"
            docker pull "$FLEET_IMAGE"
        fi
        return 0
    fi
    local want have
    want=$(sha256sum "$ROOT/scripts/build_fleet_image.sh" | cut -c1-16)
    have=$(docker image inspect -f '{{ index .Config.Labels "org.fleet-rollout.recipe" }}' "$FLEET_IMAGE" 2>/dev/null || true)
    if [ "$have" = "$want" ]; then
        return 0
    fi
    if [ -n "$have" ]; then
        log "fleet image $FLEET_IMAGE was built by an older recipe; rebuilding"
    fi
    "$ROOT/scripts/build_fleet_image.sh"
}

install_debian_packages
# The venv (pip, from PyPI) and the fleet image (debootstrap, from the Debian mirror) do not need each
# other: on a fresh machine they are made at the same time.
ensure_venv & venv=$!
trap 'kill "$venv" 2>/dev/null || true' EXIT
if [ "$want_docker" = 1 ]; then
    ensure_docker
    [ "$want_image" = 1 ] && ensure_image
fi
wait "$venv"
trap - EXIT
ensure_ansible_test_pip
log "ready (venv: $FLEET_VENV, image: $FLEET_IMAGE)"
