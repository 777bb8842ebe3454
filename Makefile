# make test       the whole test suite (creates .venv, makes sure a Docker engine runs)
# make image      build the benchmark image offline (no registry: debootstrap base + local wheels);
#                 VARIANT=cuda for the GPU image
# make smoke      the smoke profile through the launcher (docker if it can give a GPU, else native)
# make reproduce  the reviewer's one command: run (full on a GPU, smoke otherwise), then check
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
VARIANT ?= cpu
# torch 2.13.0 CPU and triton 3.6.0 (the Triton interpreter tests) are the versions the tests pin.
TEST_PINS := 'torch==2.13.0' 'triton==3.6.0'

.PHONY: help test image smoke reproduce reproduce-image lock clean docker-engine

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

test: $(VENV)/.installed docker-engine
	$(VENV)/bin/python -m pytest tests/ $(PYTEST_ARGS)

image: $(VENV)/.installed docker-engine
	$(VENV)/bin/artifact build --offline --variant $(VARIANT)

smoke: $(VENV)/.installed
	$(VENV)/bin/artifact run --runtime auto --profile smoke --out results/smoke-$(STAMP)

# On an NVIDIA GPU: the CUDA image is built first when Docker can give a container the GPU
# (reproduce-image; auto then runs in it, natively otherwise, and says why). On an H100 the
# artifact plan (the sweep and the Triton candidate with its H100-tuned configs) runs and every
# claim of h100.yaml is checked; on another GPU the full profile runs and the same file's
# portable claims are checked (the rest SKIP, with the reason). Without a GPU: the smoke profile
# and the CPU smoke reference.
reproduce: $(REPRO_VENV)/.installed reproduce-image
	@out=results/$(STAMP); \
	gpu=$$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || true); \
	case "$$gpu" in \
	    *H100*) what="--plan harness/plans/h100-artifact.yaml"; ref=artifact/references/h100.yaml ;; \
	    "")     what="--profile smoke"; ref=artifact/references/cpu-smoke.yaml ;; \
	    *)      what="--profile full"; ref=artifact/references/h100.yaml ;; \
	esac; \
	echo "reproduce: GPU: $${gpu:-none}; $$what; results in $$out; reference $$ref"; \
	$(REPRO_VENV)/bin/artifact run --runtime auto $$what --out $$out; \
	if [ -n "$$ref" ] && [ -f "$$ref" ]; then \
	    $(REPRO_VENV)/bin/artifact check $$out --reference $$ref; \
	else \
	    echo "reproduce: no reference file for '$${gpu:-this CPU}' ($${ref:-none matches this GPU}):" \
	         "the measurements are in $$out, unchecked; 'artifact report $$out' summarises them"; \
	fi

lock:
	$(PYTHON) docker/lock.py --variant $(VARIANT)

clean:
	-test -x $(VENV)/bin/artifact && $(VENV)/bin/artifact gc --images
	rm -rf build dist .pytest_cache $(REPRO_VENV) $(VENV)/.installed
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
