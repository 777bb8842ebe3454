#!/usr/bin/env bash
# The environment `make reproduce` runs in: a venv installed from the same hash-locked
# requirements as the image, never from an unpinned resolve.
#   host with an NVIDIA GPU (nvidia-smi lists one)  docker/requirements-cuda.lock
#   any other host                                   docker/requirements-cpu.lock
# plus docker/requirements-host.lock (the Docker SDK) where a Docker CLI exists, and this
# checkout, editable, without its dependencies (they are the locked ones).
#
# On a GPU host the venv also sees the system's packages: a machine that already has the locked
# CUDA torch installed (the H200 machines: no registry there, and a CUDA torch is far too large
# to carry) uses it. pip checks every version against the lock and installs only what differs;
# it does not re-hash a distribution that is already installed, so the versions are then checked
# again (harness/lockcheck.py) and recorded by every run (env.json, run.json).
#
# Usage: docker/reproduce_env.sh VENV
# Env:   PYTHON (default python3), REPRO_VARIANT (cpu|cuda: skip the detection),
#        TORCH_INDEX_URL (default https://download.pytorch.org/whl/cpu: where torch+cpu lives)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
PYTHON="${PYTHON:-python3}"
TORCH_INDEX_URL="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
die() { echo "error: $*" >&2; exit 2; }
say() { echo "reproduce_env: $*" >&2; }

venv="${1:?usage: docker/reproduce_env.sh VENV}"

variant="${REPRO_VARIANT:-}"
if [[ -z "$variant" ]]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
        variant=cuda
    else
        variant=cpu
    fi
fi
[[ "$variant" == cpu || "$variant" == cuda ]] || die "REPRO_VARIANT=$variant: must be cpu or cuda"
lock="$here/requirements-$variant.lock"
[[ -f "$lock" ]] || die "$lock is missing: generate it with 'make lock VARIANT=$variant'"

py=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) \
    || die "PYTHON=$PYTHON does not run: set PYTHON to a python3 (make reproduce PYTHON=python3.11)"
pythons=$(sed -n 's/^# pythons: //p' "$lock")
[[ " $pythons " == *" $py "* ]] \
    || die "$(basename "$lock") pins packages for Python ${pythons// /, } and $PYTHON is $py: install one of those and run 'make reproduce PYTHON=python${pythons%% *}'"

# A venv from an earlier, different install would keep packages the lock does not name.
if [[ -f "$venv/pyvenv.cfg" ]]; then
    rm -rf "$venv"
elif [[ -e "$venv" ]]; then
    die "$venv exists and is not a venv: move it aside"
fi
site=()
[[ "$variant" == cuda ]] && site=(--system-site-packages)
# Without ensurepip (Debian/Ubuntu's python3 lacks it unless python3-venv is installed) a venv
# that sees the system's packages can still use the system's pip.
"$PYTHON" -m venv "${site[@]}" "$venv" 2>/dev/null || "$PYTHON" -m venv "${site[@]}" --without-pip "$venv" \
    || die "'$PYTHON -m venv' failed: install python3-venv (apt-get install python3-venv)"
if [[ "$variant" == cuda ]]; then
    # --system-site-packages shows the base interpreter's packages only. Where $PYTHON is itself
    # a venv (the H200 machines' python3 is /opt/torch/.venv/bin/python3, torch installed in
    # that venv), its packages would be invisible: a .pth adds its site-packages after the new
    # venv's own, so what the lock installs here still comes first.
    parent=$("$PYTHON" -c 'import site, sys; print(site.getsitepackages()[0] if sys.prefix != sys.base_prefix else "")')
    if [[ -n "$parent" ]]; then
        own=$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')
        printf 'import site; site.addsitedir(%s)\n' "$("$PYTHON" -c 'import sys; print(repr(sys.argv[1]))' "$parent")" \
            > "$own/_artifact_parent_venv.pth"
        say "$PYTHON is a venv: its packages ($parent) are visible to $venv too"
    fi
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" --version >/dev/null 2>&1 || die "the venv has no pip: install python3-venv (apt-get install python3-venv)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One Python's pins with their hashes, for pip: `install_locked NAME LOCK [extra pip args]`.
install_locked() {
    local name="$1" file="$2"
    shift 2
    PYTHONPATH="$root" "$venv/bin/python" -m harness.lockcheck requirements "$file" --python "$py" >"$work/$name.txt" \
        || die "cannot read the Python $py pins of $file (above)"
    local args=(install --require-hashes --only-binary=:all: -r "$work/$name.txt")
    # Offline first: where everything is installed already (system-wide, seen through the venv)
    # or in pip's find-links, nothing is fetched. Then pip's configured index; for torch+cpu,
    # the PyTorch index as well.
    "${pip[@]}" install --quiet --no-index "${args[@]:1}" "$@" 2>"$work/$name.log" && return 0
    "${pip[@]}" "${args[@]}" --quiet "$@" 2>"$work/$name.log" && return 0
    if [[ "$name" == cpu ]] && "${pip[@]}" "${args[@]}" --quiet --extra-index-url "$TORCH_INDEX_URL" "$@" 2>"$work/$name.log"; then
        return 0
    fi
    grep -E "^ERROR|THESE PACKAGES" "$work/$name.log" | head -n 3 >&2 || true
    die "could not install $(basename "$file") (above): check that PyPI is reachable, or put the locked wheels in a folder and set PIP_FIND_LINKS to it"
}

say "$venv for Python $py from $(basename "$lock") ($variant host)"
install_locked "$variant" "$lock"
if command -v docker >/dev/null 2>&1; then
    install_locked host "$here/requirements-host.lock"
else
    say "no Docker CLI here: the Docker SDK is not installed and runs are native"
fi
# This checkout, editable, on the locked packages: no dependencies, no build isolation (the
# locks hold setuptools), no index.
"${pip[@]}" install --quiet --no-deps --no-build-isolation --no-index -e "$root" 2>"$work/self.log" \
    || { tail -n 3 "$work/self.log" >&2; die "could not install $root into $venv (above)"; }

# The launcher finds this copy and passes it to the harness (ARTIFACT_LOCK_FILE).
cp "$lock" "$venv/"
"$venv/bin/python" -m harness.lockcheck check "$venv/$(basename "$lock")" >/dev/null 2>"$work/check.log" \
    || { cat "$work/check.log" >&2; die "$venv does not match $(basename "$lock") after installing it (above)"; }
say "$(cat "$work/check.log")"
size=$(du -sh "$venv" | cut -f1)
extra=""
[[ "$variant" == cuda ]] && extra=" (not counting packages used from the system's site-packages)"
say "venv size: $size$extra"
