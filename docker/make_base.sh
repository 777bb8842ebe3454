#!/usr/bin/env bash
# Offline base image: a minimal Debian bookworm root made with debootstrap and loaded into Docker.
# Air-gapped clusters (and this project's CI) cannot pull from a registry, but can reach a Debian
# mirror or carry its packages; bookworm's python3 is 3.11, which matches the cp311 wheels of the lock.
#
# The root tarball is cached outside the repository, keyed by everything that shapes it (this
# script, suite, mirror, package list), so a machine builds it once. Its files get a fixed mtime
# (SOURCE_DATE_EPOCH) and a sorted order, so the tarball does not depend on when it was made.
#
# Usage: docker/make_base.sh            prints the image reference (repository:tag) on stdout
# Env:   ARTIFACT_CACHE (default ~/.cache/gpu-kernel-artifact), DEBIAN_MIRROR, DEBIAN_SUITE,
#        PYTHON (default python3: writes the image archive, stdlib only)
set -euo pipefail

SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
INCLUDE="python3-minimal,libpython3.11-stdlib,passwd"
EPOCH="${SOURCE_DATE_EPOCH:-1700000000}"
CACHE="${ARTIFACT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-kernel-artifact}"
PYTHON="${PYTHON:-python3}"
REPO="gpu-kernel-artifact-base"
here="$(cd "$(dirname "$0")" && pwd)"

die() { echo "error: $*" >&2; exit 2; }

key=$( { cat "$0"; echo "$SUITE $MIRROR $INCLUDE $EPOCH"; } | sha256sum | cut -c1-12)
ref="$REPO:$SUITE-$key"
tarball="$CACHE/base/$SUITE-$key.tar"

command -v docker >/dev/null || die "docker CLI not found: install docker.io (apt-get install -y docker.io)"

if docker image inspect "$ref" >/dev/null 2>&1; then
    echo "$ref"
    exit 0
fi

if [[ ! -s "$tarball" ]]; then
    [[ $(id -u) -eq 0 ]] || die "debootstrap needs root: run 'sudo $0' once (the result is cached in $CACHE/base)"
    command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install -y debootstrap"
    mkdir -p "$CACHE/base"
    work=$(mktemp -d "$CACHE/base/.root.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    echo "make_base: debootstrap $SUITE from $MIRROR (once; cached as $tarball)" >&2
    debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$work/root" "$MIRROR" >"$work/log" 2>&1 \
        || { tail -n 5 "$work/log" >&2; die "debootstrap of $SUITE from $MIRROR failed (log above); check the mirror is reachable or set DEBIAN_MIRROR"; }
    # Nothing that changes between two debootstraps of the same packages, and nothing the image
    # never uses: apt lists and caches, logs, docs, man pages, locales other than C.
    root="$work/root"
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/ldconfig/* \
           "$root"/var/log/* "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
           "$root"/usr/share/locale/* "$root"/tmp/* "$root"/var/tmp/* "$root"/dev/*
    : > "$root/etc/machine-id"
    rm -f "$root"/etc/ssh/ssh_host_* "$root"/var/lib/dbus/machine-id
    # pax headers would otherwise carry each file's atime/ctime and tar's pid.
    tar --sort=name --mtime="@$EPOCH" --clamp-mtime --numeric-owner --xattrs \
        --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
        -C "$root" -cf "$work/base.tar" .
    mv "$work/base.tar" "$tarball"
fi

# Loaded, not `docker import`ed: an imported image's id records the import time, so every machine
# (and every re-import) would name the same root filesystem differently. The archive written by
# artifact/launch/imagearchive.py has a config whose only time is SOURCE_DATE_EPOCH, so the base's id is
# a function of the tarball, and so is the id of every image built on it.
PYTHONPATH="$here/.." "$PYTHON" -m artifact.launch.imagearchive base "$tarball" "$ref" "$EPOCH" \
    "debootstrap $SUITE minbase ($key)" | docker load >/dev/null \
    || die "loading $tarball failed: is the Docker daemon running? (artifact doctor)"
echo "$ref"
