#!/usr/bin/env bash
# `make test` beside another image build on the same Docker engine (issue 19, item 2: the suite's
# `artifact gc --images` once deleted another build's intermediate images mid-build, "unknown parent
# image ID"). While `make test` runs, a build the project did not make (classic builder, so every
# step leaves an intermediate image; --no-cache, so each round makes new ones) runs in a loop.
# Both must succeed: every round of the other build, and the whole suite.
#
#   bash bench/concurrent_build/run.sh [OUT]      (OUT defaults to bench/concurrent_build/latest)
#
# Writes OUT/make-test.log, OUT/other-builds.log and OUT/summary.json; summarize.py makes RESULTS.md.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(realpath -m "${1:-$here/latest}")
mkdir -p "$out"
base=$(docker images --format '{{.Repository}}:{{.Tag}}' 'gpu-kernel-artifact-base' | head -n1)
[ -n "$base" ] || { echo "no gpu-kernel-artifact-base image: run make image once first" >&2; exit 2; }
# The other build's base is a tag of its own: it is not the project's image while the suite runs.
docker tag "$base" other-build-base:probe
ctx=$(mktemp -d)
cat > "$ctx/Dockerfile" <<DOCKERFILE
FROM other-build-base:probe
RUN echo one > /one && sleep 2
RUN echo two > /two && sleep 2
RUN echo three > /three && sleep 2
RUN cat /one /two /three > /all
DOCKERFILE

: > "$out/other-builds.log"
(cd "$root" && start=$(date +%s) && make test > "$out/make-test.log" 2>&1; echo "$? $(( $(date +%s) - start ))" > "$out/make-test.rc") &
tests=$!
round=0
while kill -0 "$tests" 2>/dev/null; do
  round=$((round + 1))
  tag="other-build-probe:$round"
  t0=$(date +%s)
  DOCKER_BUILDKIT=0 docker build --network none --no-cache --rm -q -t "$tag" "$ctx" >> "$out/other-builds.log.raw" 2>&1
  rc=$?
  echo "$round $rc $(( $(date +%s) - t0 ))" >> "$out/other-builds.log"
  docker rmi -f "$tag" >/dev/null 2>&1 || true
  [ "$rc" -eq 0 ] || sleep 5  # a failing build is recorded, not spun on
done
wait "$tests"
rm -rf "$ctx"
docker rmi other-build-base:probe >/dev/null 2>&1 || true
read -r test_rc test_s < "$out/make-test.rc"
passed=$(grep -Eo '[0-9]+ passed' "$out/make-test.log" | tail -n1 | cut -d' ' -f1)
failed=$(grep -Eo '[0-9]+ failed' "$out/make-test.log" | tail -n1 | cut -d' ' -f1)
rounds=$(wc -l < "$out/other-builds.log")
ok=$(awk '$2 == 0' "$out/other-builds.log" | wc -l)
cat > "$out/summary.json" <<JSON
{"date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "commit": "$(git -C "$root" rev-parse HEAD)",
 "make_test": {"exit_code": $test_rc, "wall_s": $test_s, "passed": ${passed:-0}, "failed": ${failed:-0}},
 "other_build": {"base": "$base", "rounds": $rounds, "ok": $ok}}
JSON
cat "$out/summary.json"
[ "$test_rc" -eq 0 ] && [ "$ok" -eq "$rounds" ] && [ "$rounds" -gt 0 ]
