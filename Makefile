# make test       the whole test suite (creates .venv, makes sure a Docker engine and a
#                 single-node Slurm cluster run)
# make image      build the benchmark image offline (no registry: debootstrap base + local wheels);
#                 VARIANT=cuda for the GPU image
# make smoke      the smoke profile through the launcher (docker if it can give a GPU, else native)
# make reproduce  the reviewer's one command: run (full on a GPU, smoke otherwise), then check
# make gate BASE=origin/main   the pull-request gate: the base commit and this checkout measured on
#                 this machine (the base reused when stored), then compared case by case
# make release    a citable snapshot: dist/ source archive of this commit, its sha256 and metadata
# make lock       regenerate docker/requirements-$(VARIANT).lock and docker/pip.lock (hash-locked;
#                 VARIANT=cpu|cuda|host)
# make clean      remove build outputs, stamps and the launcher's leftover containers
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
REPRO_VENV := .venv-reproduce
STAMP := $(shell date -u +%Y%m%dT%H%M%SZ)
PYTEST_ARGS ?=
# e.g. REPRODUCE_ARGS=--allow-shared-gpu (measure beside another process: the verdict is INVALID, exit 4)
REPRODUCE_ARGS ?=
VARIANT ?= cpu
# torch 2.13.0 CPU and triton 3.6.0 (the Triton interpreter tests) are the versions the tests pin.
TEST_PINS := 'torch==2.13.0' 'triton==3.6.0'

.PHONY: help test lint image smoke reproduce reproduce-image gate release lock clean docker-engine slurm-cluster

help:
	@sed -n 's/^# make /make /p' Makefile

# Stamp files: reinstall only when pyproject.toml changes, so a second `make test` starts at once.
$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -e '.[harness,test]' $(TEST_PINS)
	touch $@

# The reproduction's own venv: the hash-locked set of the image (the CUDA lock on a host with an
# NVIDIA GPU, the CPU lock elsewhere), never an unpinned resolve; see docker/reproduce_env.sh.
$(REPRO_VENV)/.installed: pyproject.toml docker/reproduce_env.sh docker/requirements-cpu.lock \
		docker/requirements-cuda.lock docker/requirements-host.lock
	PYTHON=$(PYTHON) bash docker/reproduce_env.sh $(REPRO_VENV)
	touch $@

# On a GPU host whose Docker can give containers a GPU: the CUDA image, built offline (cached).
reproduce-image: $(REPRO_VENV)/.installed
	bash docker/reproduce_image.sh $(REPRO_VENV)

docker-engine:
	bash docker/ensure_engine.sh

slurm-cluster:
	bash slurm/ensure_slurm.sh

test: lint docker-engine slurm-cluster
	$(VENV)/bin/python -m pytest tests/ $(PYTEST_ARGS)

# Lint first: seconds, and a failure names file:line before the long tests start.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check artifact harness tests bench docker slurm
	$(VENV)/bin/mypy

image: $(VENV)/.installed docker-engine
	$(VENV)/bin/artifact build --offline --variant $(VARIANT)

smoke: $(VENV)/.installed
	$(VENV)/bin/artifact run --runtime auto --profile smoke --out results/smoke-$(STAMP)

# On an NVIDIA GPU the CUDA image is built first when Docker can give a container the GPU
# (reproduce-image; auto then runs in it, natively otherwise, and says why). Then `artifact
# reproduce` looks at the hardware (NVML), picks the shipped references that fit it (the same GPU
# model first, then those with claims for its compute capability), runs the plan the primary one
# names (harness/plans/h200-artifact.yaml on an H200, the H100 plan on an H100, the portable plan
# on another GPU, the smoke profile without a GPU), and checks every fitting reference.
# artifact lives in $(REPRO_VENV), not on PATH: the last lines say how to call it.
reproduce: $(REPRO_VENV)/.installed reproduce-image
	rc=0; $(REPRO_VENV)/bin/artifact reproduce --out results/$(STAMP) $(REPRODUCE_ARGS) || rc=$$?; \
	if [ $$rc -ne 130 ] && compgen -G "results/$(STAMP)/cases/*.json" > /dev/null; then \
	  echo "next: $(REPRO_VENV)/bin/artifact report results/$(STAMP)"; \
	  echo "      (or: source $(REPRO_VENV)/bin/activate, then artifact ...)"; \
	fi; \
	exit $$rc

# scripts/pr_gate.sh says how (GATE_STORE, GATE_MEASURE, GATE_ARGS); GATE_OUT: where both runs go.
BASE ?=
GATE_OUT ?= results/gate-$(STAMP)
gate:
	@test -n "$(BASE)" || { echo "make gate: give the base, e.g. make gate BASE=origin/main" >&2; exit 2; }
	bash scripts/pr_gate.sh "$(BASE)" "$(GATE_OUT)"

release:
	bash scripts/release.sh dist

lock:
	$(PYTHON) docker/lock.py --variant $(VARIANT)

clean:
	-test -x $(VENV)/bin/artifact && $(VENV)/bin/artifact gc --images
	rm -rf build dist .pytest_cache $(REPRO_VENV) $(VENV)/.installed
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
