#!/usr/bin/env bash
# Build times and sizes of the images, as bench/image_build.md reports them. Run from the
# repository root with the test venv (make test makes it) and a Docker engine; nothing else
# running. Takes about 20 minutes and 20 GB of disk on a 2-core machine.
#
#   cold      a fresh ARTIFACT_CACHE and another mirror spelling (so a new debootstrap and a new
#             base image), every wheel downloaded, --no-cache: nothing reused
#   no-cache  the cached base and wheelhouse, --no-cache: every Docker step runs
#   cached    the same build again: every step a cache hit
set -euo pipefail
cd "$(dirname "$0")/.."
artifact=.venv/bin/artifact
cold_cache=$(mktemp -d /tmp/gka-cold-cache.XXXXXX)
trap 'rm -rf "$cold_cache"' EXIT

t() { local s=$SECONDS; "$@" >/dev/null; echo $((SECONDS - s)); }
size() { docker image inspect --format '{{.Size}}' "$1" | awk '{printf "%.2f GB", $1/1e9}'; }

for variant in cpu cuda; do
    tag="gka-bench-cold:$variant"
    cold=$(t env ARTIFACT_CACHE="$cold_cache/$variant" DEBIAN_MIRROR=http://deb.debian.org/debian/ \
        "$artifact" build --offline --variant "$variant" --no-cache --quiet --tag "$tag")
    wheels=$(du -sh "$cold_cache/$variant/wheelhouse" | cut -f1)
    docker rmi "$tag" "$tag-build" "$tag-install" >/dev/null
    nocache=$(t "$artifact" build --offline --variant "$variant" --no-cache --quiet)
    cached=$(t "$artifact" build --offline --variant "$variant" --quiet)
    ref="gpu-kernel-artifact:0.1.0-$variant"
    layers=$(docker image inspect --format '{{len .RootFS.Layers}}' "$ref")
    echo "$variant: cold ${cold}s (wheelhouse $wheels), no-cache ${nocache}s, cached ${cached}s; image $(size "$ref"), $layers layers, $(docker image inspect --format '{{.Id}}' "$ref")"
done
"$artifact" gc --images >/dev/null

out=$(mktemp -d /tmp/gka-export.XXXXXX)
for level in 1 6; do
    secs=$(t "$artifact" export --variant cuda --level "$level" --out "$out/cuda-$level.tar.gz" --quiet)
    echo "export cuda --level $level: ${secs}s, $(du -h "$out/cuda-$level.tar.gz" | cut -f1)"
done
secs=$(t "$artifact" build --from-archive "$out/cuda-6.tar.gz" --quiet)
echo "build --from-archive (cuda, level 6, image already present): ${secs}s"
rm -rf "$out"
