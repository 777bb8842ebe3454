# The pinned benchmark image: `harness bench` on Debian bookworm's Python 3.11 with hash-locked wheels.
#
# Two ways to build it, chosen by build args (artifact build does both; see docs/container.md):
#   online   FROM debian:bookworm-slim pinned by digest; wheels fetched from PyPI during the build.
#   offline  FROM a base made locally by docker/make_base.sh (debootstrap + docker import) and
#            wheels from docker/wheelhouse.sh put into the build context: no registry, no network.
# Both give the same distribution, the same Python and the same locked wheels.
#
# Why debian:bookworm-slim and not an nvidia/cuda image: torch's CUDA wheels carry their own CUDA
# runtime, cuBLAS and cuDNN, and the NVIDIA Container Toolkit injects the driver at run time, so a
# CUDA base would only add a second, unused CUDA (gigabytes) and another Python (Ubuntu's 3.10 or
# 3.12, not the 3.11 of the lock). bookworm is also what the offline path can debootstrap.
# Digest: the multi-platform index of debian:bookworm-slim published 2026-08-04, as recorded by
# docker-library/repo-info (repos/debian/remote/bookworm-slim.md).
#
# Written for the classic builder as well as BuildKit (the Docker SDK's build API is the classic
# one): no RUN --mount, no heredocs; wheels stay out of the final image through a second stage.
#
# Rebuildable bit for bit (docs/container.md, "Reproducible builds"): the install stage writes
# the final image's files into two trees, /rootfs-venv (the venv: large, rarely changes) and
# /rootfs-app (the harness, the entrypoint, the user), every mtime clamped to a fixed date (for
# the harness the commit's, SOURCE_DATE_EPOCH), with hash-based .pyc files and a fixed hash
# seed; the final stage is those two trees copied onto the base, one layer each. Each layer is
# then a function of its files, and `artifact build` rewrites the image config (build times,
# build container ids) so that the image id is too. A plain `docker build` gives the same layers
# with a config that records when it was built.
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim@sha256:abd67ffcfa541b485a3dff59865ab629aa048a6c613e639d36e7456b0b229241

FROM ${BASE_IMAGE} AS base
# The offline base already has exactly these packages; the online one gets them from Debian.
RUN if ! command -v python3 >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3-minimal libpython3.11-stdlib \
        && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log; \
    fi

FROM base AS install
# Labelled so `artifact gc --images` can remove superseded build stages, and nothing else.
LABEL org.gpu-kernel-artifact.stage=install
ARG WHEELS=online
ARG TORCH_VARIANT=cpu
# The venv is a function of the lock and the base, not of the commit, so it is dated like the
# base (docker/make_base.sh's default epoch) rather than by SOURCE_DATE_EPOCH, which is declared
# only after it: a new commit then reuses the cached venv instead of installing it again.
ARG VENV_EPOCH=1700000000
COPY docker/install_deps.sh docker/pip.lock docker/requirements-${TORCH_VARIANT}.lock /build/
COPY docker/wheelhouse/ /build/wheelhouse/
# /opt is a link into /rootfs-venv here, so the venv is made at its final path (/opt/venv: the
# scripts' #! lines and the .pyc file names say so) inside the tree the final stage copies. The
# mtimes are clamped in the same step: touching them later would copy every file into a new layer.
# SOURCE_DATE_EPOCH set makes py_compile write hash-based .pyc files; a fixed hash seed makes the
# order of frozenset constants in them (and so their bytes) the same in every build.
RUN mkdir -p /rootfs-venv/opt && rmdir /opt && ln -s /rootfs-venv/opt /opt \
    && SOURCE_DATE_EPOCH="${VENV_EPOCH}" PYTHONHASHSEED=0 sh /build/install_deps.sh "${WHEELS}" "${TORCH_VARIANT}" \
    && find /rootfs-venv -newermt "@${VENV_EPOCH}" -exec touch -h -d "@${VENV_EPOCH}" {} +
ARG SOURCE_DATE_EPOCH=0
# The harness is plain source on the venv's path (a .pth file): installing it as a package would
# need a build backend in the image for nothing. The image's lock goes with it: the harness reads
# ARTIFACT_LOCK_FILE and records in env.json whether the installed packages still match it.
COPY harness/ /rootfs-app/opt/artifact/harness/
COPY docker/entrypoint.sh /rootfs-app/usr/local/bin/artifact-entrypoint
RUN set -e; app=/rootfs-app; site=lib/python3.11/site-packages; \
    mkdir -p "$app/opt/venv/bin" "$app/opt/venv/$site" "$app/etc" "$app/results"; \
    echo /opt/artifact > "$app/opt/venv/$site/gpu_kernel_artifact.pth"; \
    printf '#!/opt/venv/bin/python\nimport sys\nfrom harness.cli import main\nsys.exit(main())\n' > "$app/opt/venv/bin/harness"; \
    cp "/build/requirements-${TORCH_VARIANT}.lock" "$app/opt/artifact/"; \
    # A fixed non-root user, written rather than made by useradd, which would stamp today's
    # date into /etc/shadow and leave logs behind.
    { cat /etc/passwd; echo 'bench:x:10001:10001::/tmp:/usr/sbin/nologin'; } > "$app/etc/passwd"; \
    { cat /etc/group; echo 'bench:x:10001:'; } > "$app/etc/group"; \
    chmod 0644 "$app/etc/passwd" "$app/etc/group"; \
    chmod 0755 "$app/opt/venv/bin/harness" "$app/usr/local/bin/artifact-entrypoint"; \
    chown 10001:10001 "$app/results"; \
    PYTHONHASHSEED=0 /opt/venv/bin/python -m compileall -q -s "$app" -p / "$app/opt/artifact"; \
    PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$app/opt/artifact" ARTIFACT_LOCK_FILE="$app/opt/artifact/requirements-${TORCH_VARIANT}.lock" \
        /opt/venv/bin/python -c "import harness.cli, numpy, scipy, torch, yaml, pynvml, typer, sys; from harness import lockcheck as l; s = l.from_environment({}); sys.exit(None if s and s.matches else 'the venv does not match the lock: ' + (l.summary(s) if s else 'unreadable'))"; \
    find "$app" -newermt "@${SOURCE_DATE_EPOCH}" -exec touch -h -d "@${SOURCE_DATE_EPOCH}" {} +

FROM base
# Two layers: the venv, then everything of this project's (so a harness change re-copies only that).
COPY --from=install /rootfs-venv/ /
COPY --from=install /rootfs-app/ /

ARG VERSION=0.0.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG BASE_IMAGE
ARG BASE_DIGEST=unknown
ARG BASE_ROOTFS=unknown
ARG TORCH_VARIANT=cpu
ARG CUDA_VERSION=none
ARG LOCK_SHA256=unknown
LABEL org.opencontainers.image.title="gpu-kernel-artifact" \
      org.opencontainers.image.description="GPU kernel benchmark harness (harness bench)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      org.opencontainers.image.base.digest="${BASE_DIGEST}" \
      org.gpu-kernel-artifact.base.rootfs="${BASE_ROOTFS}" \
      org.gpu-kernel-artifact.torch-variant="${TORCH_VARIANT}" \
      org.gpu-kernel-artifact.cuda-version="${CUDA_VERSION}" \
      org.gpu-kernel-artifact.lock="requirements-${TORCH_VARIANT}.lock sha256:${LOCK_SHA256}"

# HOME and caches on /tmp: the root filesystem is read-only at run time and /tmp is a tmpfs.
# NVIDIA_DRIVER_CAPABILITIES: what the NVIDIA Container Toolkit mounts into a container with a
# GPU request: compute (libcuda) and utility (nvidia-smi, and the NVML library the harness reads
# clocks with). Set here because this is not an nvidia/cuda image, which would set it.
ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin \
    HOME=/tmp \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ARTIFACT_RESULTS=/results \
    ARTIFACT_IN_CONTAINER=1 \
    ARTIFACT_LOCK_FILE=/opt/artifact/requirements-${TORCH_VARIANT}.lock \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["/usr/local/bin/artifact-entrypoint"]
CMD ["--profile", "smoke"]
