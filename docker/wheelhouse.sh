#!/usr/bin/env bash
# Offline wheels for the image: every wheel of docker/requirements-$VARIANT.lock and docker/pip.lock,
# downloaded on the host (which can reach an index) for the image's platform, hash-checked.
# The build COPYs them in because the build container itself has no network.
#
# Cached outside the repository, keyed by the two lock files, so a machine downloads them once.
# Usage: docker/wheelhouse.sh       prints the wheelhouse folder on stdout
# Env:   VARIANT (default cpu), ARTIFACT_CACHE (default ~/.cache/gpu-kernel-artifact), PYTHON (default python3),
#        TORCH_INDEX_URL (default https://download.pytorch.org/whl/cpu: where torch+cpu lives)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
CACHE="${ARTIFACT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-kernel-artifact}"
PYTHON="${PYTHON:-python3}"
TORCH_INDEX_URL="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
VARIANT="${VARIANT:-cpu}"
locks=("$here/requirements-$VARIANT.lock" "$here/pip.lock")

die() { echo "error: $*" >&2; exit 2; }
[[ -f "${locks[0]}" ]] || die "no ${locks[0]}: generate it with 'make lock VARIANT=$VARIANT'"

key=$(cat "${locks[@]}" | sha256sum | cut -c1-12)
dest="$CACHE/wheelhouse/$key"
if [[ -f "$dest/.complete" ]]; then
    echo "$dest"
    exit 0
fi

"$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip: set PYTHON to a python3 with pip"
mkdir -p "$CACHE/wheelhouse"
work=$(mktemp -d "$CACHE/wheelhouse/.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The image's platform: CPython 3.11 and every manylinux tag its glibc accepts (lock.py has the
# one list); and from each lock only the image Python's pins (a lock may serve other Pythons too).
mapfile -t platform < <("$PYTHON" "$here/lock.py" --print-platform-args)
(( ${#platform[@]} )) || die "docker/lock.py --print-platform-args printed nothing"
for lock in "${locks[@]}"; do
    PYTHONPATH="$here/.." "$PYTHON" -m harness.lockcheck requirements "$lock" --python 3.11 >>"$work/requirements.txt" \
        || die "cannot select the Python 3.11 pins of $lock (above)"
done
fetch() {
    "$PYTHON" -m pip download --quiet --no-deps --require-hashes "${platform[@]}" "$@" \
        -r "$work/requirements.txt" -d "$work" 2>"$work.log"
}
echo "wheelhouse: downloading the locked wheels (once; cached in $dest)" >&2
# pip's configured sources first; the PyTorch index only if they lack the +cpu wheel, because an
# unreachable extra index costs retries for every package.
if ! fetch && ! fetch --extra-index-url "$TORCH_INDEX_URL"; then
    grep -E "^ERROR|THESE PACKAGES" "$work.log" | head -n 3 >&2 || true
    rm -f "$work.log"
    die "could not download the locked wheels (above); check that PyPI and $TORCH_INDEX_URL are reachable, or copy a wheelhouse into $dest"
fi
rm -f "$work.log"
n=$(ls "$work"/*.whl | wc -l)
expected=$(grep -c . "$work/requirements.txt")
[[ "$n" -eq "$expected" ]] || die "wheelhouse has $n wheels but the locks list $expected: re-run docker/lock.py"
rm -f "$work/requirements.txt"
touch "$work/.complete"
rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
echo "$dest"
