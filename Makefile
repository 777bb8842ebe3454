# make test       the whole test suite (creates .venv, makes sure a Docker engine runs)
# make image      build the benchmark image offline (no registry: debootstrap base + local wheels);
#                 VARIANT=cuda for the GPU image once docker/requirements-cuda.lock exists
# make smoke      the smoke profile through the launcher (docker if it can give a GPU, else native)
# make reproduce  the reviewer's one command: run (full on a GPU, smoke otherwise), then check
# make lock       regenerate docker/requirements-$(VARIANT).lock and docker/pip.lock (hash-locked)
# make clean      remove build outputs, stamps and the launcher's leftover containers
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
REPRO_VENV := .venv-reproduce
STAMP := $(shell date -u +%Y%m%dT%H%M%SZ)
PYTEST_ARGS ?=
VARIANT ?= cpu
# torch 2.13.0 CPU and triton 3.6.0 (the Triton interpreter tests) are the versions the tests pin.
TEST_PINS := 'torch==2.13.0' 'triton==3.6.0'

.PHONY: help test image smoke reproduce lock clean docker-engine

help:
	@sed -n 's/^# make /make /p' Makefile

# Stamp files: reinstall only when pyproject.toml changes, so a second `make test` starts at once.
$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -e '.[harness,test]' $(TEST_PINS)
	touch $@

$(REPRO_VENV)/.installed: pyproject.toml
	test -x $(REPRO_VENV)/bin/python || $(PYTHON) -m venv $(REPRO_VENV)
	$(REPRO_VENV)/bin/pip install --quiet -e '.[harness]'
	touch $@

docker-engine:
	bash docker/ensure_engine.sh

test: $(VENV)/.installed docker-engine
	$(VENV)/bin/python -m pytest tests/ $(PYTEST_ARGS)

image: $(VENV)/.installed docker-engine
	$(VENV)/bin/artifact build --offline --variant $(VARIANT)

smoke: $(VENV)/.installed
	$(VENV)/bin/artifact run --runtime auto --profile smoke --out results/smoke-$(STAMP)

# On an NVIDIA GPU: the CUDA image is built first when Docker is there and its lock exists (auto
# then runs in it if the NVIDIA runtime works, natively otherwise, and says why). Then `artifact
# reproduce` looks at the hardware (NVML), picks the shipped references that fit it (the same GPU
# model first, then those with claims for its compute capability), runs the plan the primary one
# names (harness/plans/h200-artifact.yaml on an H200, the H100 plan on an H100, the full profile
# on another GPU, the smoke profile without a GPU), and checks every fitting reference.
reproduce: $(REPRO_VENV)/.installed
	@gpu=$$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || true); \
	if [ -n "$$gpu" ] && [ -f docker/requirements-cuda.lock ] && docker info >/dev/null 2>&1; then \
	    $(REPRO_VENV)/bin/artifact build --offline --variant cuda; \
	fi; \
	$(REPRO_VENV)/bin/artifact reproduce --out results/$(STAMP)

lock:
	$(PYTHON) docker/lock.py --variant $(VARIANT)

clean:
	-test -x $(VENV)/bin/artifact && $(VENV)/bin/artifact gc --images
	rm -rf build dist .pytest_cache $(REPRO_VENV) $(VENV)/.installed
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
