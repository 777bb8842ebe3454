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
ARG SOURCE_DATE_EPOCH=0
ENV SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH}
COPY docker/install_deps.sh docker/pip.lock docker/requirements-*.lock /build/
COPY docker/wheelhouse/ /build/wheelhouse/
RUN sh /build/install_deps.sh "${WHEELS}" "${TORCH_VARIANT}"
# The harness is plain source on the venv's path (a .pth file): installing it as a package would
# need a build backend in the image for nothing.
COPY harness/ /opt/artifact/harness/
RUN echo /opt/artifact > /opt/venv/lib/python3.11/site-packages/gpu_kernel_artifact.pth \
    && printf '#!/opt/venv/bin/python\nimport sys\nfrom harness.cli import main\nsys.exit(main())\n' > /opt/venv/bin/harness \
    && chmod 0755 /opt/venv/bin/harness \
    && /opt/venv/bin/python -m compileall -q /opt/artifact \
    && /opt/venv/bin/python -c "import harness.cli, numpy, scipy, torch, yaml, pynvml, typer"

FROM base
COPY --from=install /opt/venv /opt/venv
COPY --from=install /opt/artifact /opt/artifact
COPY docker/entrypoint.sh /usr/local/bin/artifact-entrypoint
# A fixed non-root user; the launcher may instead run as the invoking host user's uid:gid so that
# the results belong to them. /results is where the launcher mounts the output folder.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin bench \
    && mkdir -p /results && chown 10001:10001 /results \
    && chmod 0755 /usr/local/bin/artifact-entrypoint

ARG VERSION=0.0.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG BASE_IMAGE
ARG BASE_DIGEST=unknown
ARG BASE_ROOTFS=unknown
ARG TORCH_VARIANT=cpu
ARG CUDA_VERSION=none
LABEL org.opencontainers.image.title="gpu-kernel-artifact" \
      org.opencontainers.image.description="GPU kernel benchmark harness (harness bench)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      org.opencontainers.image.base.digest="${BASE_DIGEST}" \
      org.gpu-kernel-artifact.base.rootfs="${BASE_ROOTFS}" \
      org.gpu-kernel-artifact.torch-variant="${TORCH_VARIANT}" \
      org.gpu-kernel-artifact.cuda-version="${CUDA_VERSION}"

# HOME and caches on /tmp: the root filesystem is read-only at run time and /tmp is a tmpfs.
ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin \
    HOME=/tmp \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ARTIFACT_RESULTS=/results \
    ARTIFACT_IN_CONTAINER=1
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["/usr/local/bin/artifact-entrypoint"]
CMD ["--profile", "smoke"]
