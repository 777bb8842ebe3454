#!/bin/sh
# The image's entrypoint: `docker run IMAGE --profile smoke` runs `harness bench --profile smoke
# --out /results`; `docker run IMAGE env|bench ...` runs that harness command; anything else runs
# as given (the launcher's preflight and the tests use `id`, `python3 -c ...`).
#
# `exec` matters: the launcher starts containers with an init (docker-init) that forwards SIGTERM
# and SIGINT to this process, and exec makes that process the harness itself, which then keeps
# every finished case and exits 130.
set -eu

case "${1:-}" in
    "" | -*)
        for arg in "$@"; do
            case "$arg" in --out | --out=*) exec harness bench "$@" ;; esac
        done
        exec harness bench --out "${ARTIFACT_RESULTS:-/results}" "$@"
        ;;
    bench | env)
        exec harness "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
