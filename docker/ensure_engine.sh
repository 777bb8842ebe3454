#!/usr/bin/env bash
# Make sure a Docker engine answers, and that the offline image build has its tools (debootstrap).
# Used by `make test` and .ci/run. On a machine without Docker it installs Debian's docker.io and
# starts dockerd in the background (no systemd needed), then waits for it.
#
# Exit status: 0 when the engine answers. When it cannot be made to answer: 1 under CI=true (CI
# must fail, not skip, the container tests), else 0 with a warning (the docker tests then skip).
#
# The engine is the one of the socket the tests will use (DOCKER_HOST, else /var/run/docker.sock):
# whether it answers decides, not whether some dockerd runs (one on another socket made this start
# nothing and wait out the timeout). `--check` prints the decision and changes nothing.
set -uo pipefail

check_only=false; [[ "${1:-}" == "--check" ]] && check_only=true
DEFAULT_SOCK=/var/run/docker.sock
host="${DOCKER_HOST:-unix://$DEFAULT_SOCK}"
if [[ "$host" == unix://* ]]; then sock="${host#unix://}"; else sock=""; fi

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

engine_answers() {
    if [[ -n "$sock" ]] && command -v curl >/dev/null; then
        [[ -S "$sock" ]] && curl -fsS --max-time 5 --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1
    else
        DOCKER_HOST="$host" docker info >/dev/null 2>&1
    fi
}

# A dockerd already serving this socket (it may be starting up): its command line names the
# socket, or names none and the socket is the default one.
dockerd_for_socket() {
    local pid args
    for pid in $(pgrep -x dockerd); do
        args=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || continue
        if [[ "$args" == *"unix://$sock"* ]]; then return 0; fi
        if [[ "$sock" == "$DEFAULT_SOCK" && "$args" != *" -H "* && "$args" != *"--host"* ]]; then return 0; fi
    done
    return 1
}

decide() {
    if engine_answers; then echo "use"
    elif [[ -z "$sock" ]]; then echo "wait"  # tcp/ssh: not ours to start
    elif dockerd_for_socket; then echo "wait"
    else echo "start"
    fi
}

if $check_only; then
    echo "ensure_engine: $(decide) ${host}"
    exit 0
fi

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

if engine_answers; then
    exit 0
fi

if ! command -v dockerd >/dev/null; then
    echo "ensure_engine: installing docker.io from Debian" >&2
    apt_install docker.io || give_up "no dockerd and could not install docker.io (needs root and apt-get)"
fi

case "$(decide)" in
    use) exit 0 ;;
    wait) : ;;  # starting up, or a remote engine: wait below
    start)
        [[ $(id -u) -eq 0 ]] || give_up "no Docker engine answers at $host and starting one needs root (sudo dockerd &)"
        mkdir -p "$CACHE"
        args=()
        if [[ "$sock" != "$DEFAULT_SOCK" ]]; then
            # A second engine beside the default one needs its own state, or the two would share it.
            state="$CACHE/dockerd-$(echo -n "$sock" | md5sum | cut -c1-8)"
            mkdir -p "$state"
            args=(-H "unix://$sock" --data-root "$state/data" --exec-root "$state/exec" --pidfile "$state/dockerd.pid")
        fi
        echo "ensure_engine: starting dockerd for $host (log: $CACHE/dockerd.log)" >&2
        setsid nohup dockerd "${args[@]}" >"$CACHE/dockerd.log" 2>&1 < /dev/null &
        ;;
esac

for _ in $(seq 1 "$WAIT_S"); do
    engine_answers && exit 0
    sleep 1
done
tail -n 5 "$CACHE/dockerd.log" >&2 2>/dev/null
give_up "the Docker engine did not answer within ${WAIT_S} s (dockerd log above)"
