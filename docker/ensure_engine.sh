#!/usr/bin/env bash
# Make sure a Docker engine answers, and that the offline image build has its tools (debootstrap).
# Used by `make test` and .ci/run. On a machine without Docker it installs Debian's docker.io and
# starts dockerd in the background (no systemd needed), then waits for it.
#
# Exit status: 0 when the engine answers. When it cannot be made to answer: 1 under CI=true (CI
# must fail, not skip, the container tests), else 0 with a warning (the docker tests then skip).
set -uo pipefail

CACHE="${ARTIFACT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-kernel-artifact}"
WAIT_S="${DOCKER_WAIT_S:-60}"
ci=false; [[ "${CI:-}" == "true" ]] && ci=true

give_up() {
    if $ci; then
        echo "error: $* (CI=true: the container tests cannot run, so this fails)" >&2
        exit 1
    fi
    echo "warning: $*; the tests that need Docker will be skipped" >&2
    exit 0
}

engine_answers() { docker info >/dev/null 2>&1; }

apt_install() {
    [[ $(id -u) -eq 0 ]] || return 1
    command -v apt-get >/dev/null || return 1
    if [[ ! -f "$CACHE/.apt-updated" ]]; then
        apt-get update -q >/dev/null || return 1
        mkdir -p "$CACHE" && touch "$CACHE/.apt-updated"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# debootstrap is only needed for the offline base; without it, the image tests explain the fix.
if ! command -v debootstrap >/dev/null; then
    apt_install debootstrap || echo "warning: debootstrap missing and not installable; apt-get install debootstrap" >&2
fi

if command -v docker >/dev/null && engine_answers; then
    exit 0
fi

if ! command -v dockerd >/dev/null; then
    echo "ensure_engine: installing docker.io from Debian" >&2
    apt_install docker.io || give_up "no dockerd and could not install docker.io (needs root and apt-get)"
fi

if [[ -S /var/run/docker.sock ]] && ! engine_answers && pgrep -x dockerd >/dev/null; then
    : # starting up: wait below
elif ! pgrep -x dockerd >/dev/null; then
    [[ $(id -u) -eq 0 ]] || give_up "dockerd is not running and starting it needs root (sudo dockerd &)"
    mkdir -p "$CACHE"
    echo "ensure_engine: starting dockerd (log: $CACHE/dockerd.log)" >&2
    setsid nohup dockerd >"$CACHE/dockerd.log" 2>&1 < /dev/null &
fi

for _ in $(seq 1 "$WAIT_S"); do
    engine_answers && exit 0
    sleep 1
done
tail -n 5 "$CACHE/dockerd.log" >&2 2>/dev/null
give_up "the Docker engine did not answer within ${WAIT_S} s (dockerd log above)"
