#!/usr/bin/env bash
# Before `make reproduce` measures on a GPU host with Docker: the CUDA image, built offline from
# the committed lock (cached: seconds after the first build). Skipped, with the reason, where a
# container could not get the GPU anyway; the launcher then runs natively in the pinned venv and
# says so in run.json.
#
# Usage: docker/reproduce_image.sh VENV      (VENV: the venv docker/reproduce_env.sh made)
set -uo pipefail

venv="${1:?usage: docker/reproduce_image.sh VENV}"
say() { echo "reproduce: $*" >&2; }

if ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; }; then
    exit 0  # no NVIDIA GPU: the CPU smoke profile runs natively
fi
if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    say "no Docker engine answers here: the GPU run is native, in the pinned venv"
    exit 0
fi
# The NVIDIA Container Toolkit registers the `nvidia` runtime or installs its hook; without it a
# container cannot get a GPU (the launcher's preflight would say the same, after the build).
if ! docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"nvidia"' \
        && ! command -v nvidia-container-runtime-hook >/dev/null 2>&1 && ! command -v nvidia-ctk >/dev/null 2>&1; then
    say "Docker has no NVIDIA Container Toolkit, so a container cannot get the GPU: the run is native, in the" \
        "pinned venv (install nvidia-container-toolkit and run 'sudo nvidia-ctk runtime configure --runtime=docker' to measure in the image)"
    exit 0
fi
say "building the CUDA image offline (first time: minutes; then cached)"
if ! "$venv/bin/artifact" build --offline --variant cuda --quiet; then
    say "the CUDA image could not be built (above): the run falls back to native, in the pinned venv"
fi
exit 0
