"""Workload registry: a workload turns a CaseSpec into inputs, a callable to time, and a reference.

Library backends (PyTorch SDPA) and candidate kernels (the bundled Triton attention) register
here under their `name`, which is CaseSpec.workload. Importing this package does not import torch;
each workload module imports torch itself and is loaded on first use.
"""

from __future__ import annotations

import importlib

from harness.errors import HarnessError

# name -> "module:attribute" of a Workload instance, loaded lazily so torch-free callers
# (plan validation on the host) can list names without importing torch.
_REGISTRY: dict[str, str] = {
    "sdpa": "harness.workloads.sdpa:WORKLOAD",
    "triton_attention": "harness.workloads.triton_attention:WORKLOAD",
}

# The one list of SDPA backends (torch-free, so plans are validated and the host orders and
# checks backends before torch loads). "default" is torch's own dispatch among the others.
# The order is the presentation order of sweeps, derived references and tables.
SDPA_BACKENDS: tuple[str, ...] = ("flash", "efficient", "cudnn", "math", "default")

# Backend names per workload.
BACKENDS: dict[str, tuple[str, ...]] = {
    "sdpa": SDPA_BACKENDS,
    "triton_attention": ("triton",),
}


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str):
    """The Workload instance registered as `name` (imports torch)."""
    if name not in _REGISTRY:
        raise HarnessError(f"unknown workload {name!r}; known: {', '.join(names())}")
    module, attr = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), attr)
