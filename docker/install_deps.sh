#!/bin/sh
# Runs in the build's `install` stage: makes /opt/venv from the hash-locked requirements.
#   install_deps.sh local VARIANT    wheels from /build/wheelhouse (offline: the build has no network)
#   install_deps.sh online VARIANT   wheels from PyPI (and the PyTorch CPU index for the cpu variant)
# VARIANT names the lock: /build/requirements-VARIANT.lock (cpu, or cuda once it is generated).
# pip itself runs from its (hash-checked) wheel and is not installed: the image does not need it.
set -eu

mode="$1"
variant="${2:-cpu}"
lock="/build/requirements-$variant.lock"
wheels=/build/wheelhouse
die() { echo "error: $*" >&2; exit 2; }
[ -f "$lock" ] || die "no docker/requirements-$variant.lock: generate it with 'make lock VARIANT=$variant'"

pip_pin=$(sed -n 's/^\(pip==[^ ]*\) .*/\1/p' /build/pip.lock)
pip_sha=$(sed -n 's/.*--hash=sha256:\([0-9a-f]*\).*/\1/p' /build/pip.lock)
pip_whl="$wheels/pip-${pip_pin#pip==}-py3-none-any.whl"

case "$mode" in
    local)
        [ -f "$pip_whl" ] || die "no $pip_whl in the build context: run docker/wheelhouse.sh and build with 'artifact build --offline'"
        source_args="--no-index --find-links $wheels"
        ;;
    online)
        mkdir -p "$wheels"
        # PyPI's stable per-file URL; the hash below is what makes it trustworthy.
        python3 -c "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])" \
            "https://files.pythonhosted.org/packages/py3/p/pip/$(basename "$pip_whl")" "$pip_whl" \
            || die "cannot download pip from PyPI: no network in the build? use 'artifact build --offline'"
        source_args="--index-url https://pypi.org/simple"
        # +cpu torch wheels live only on the PyTorch index; CUDA ones are on PyPI itself.
        [ "$variant" = cpu ] && source_args="$source_args --extra-index-url https://download.pytorch.org/whl/cpu"
        ;;
    *)
        die "install_deps.sh: mode must be local or online, got '$mode'"
        ;;
esac

echo "$pip_sha  $pip_whl" | sha256sum -c - >/dev/null || die "$pip_whl does not match the sha256 in docker/pip.lock"

python3 -m venv --without-pip /opt/venv
# --only-binary: no sdists, so no compilers are needed or invoked. Bytecode is compiled now
# because the root filesystem is read-only at run time; with SOURCE_DATE_EPOCH set, Python writes
# hash-based .pyc files, so they do not depend on the build time.
# shellcheck disable=SC2086
/opt/venv/bin/python "$pip_whl/pip" install --no-cache-dir --disable-pip-version-check \
    --no-warn-script-location --only-binary=:all: --require-hashes $source_args -r "$lock"
