"""Workload registry: a workload turns a CaseSpec into inputs, a callable to time, and a reference.

Library backends (PyTorch SDPA) and candidate kernels (the bundled Triton attention) register
here under their `name`, which is CaseSpec.workload. A kernel of one's own comes through the same
door without editing the harness: CaseSpec.workload "package.module:ATTR" names a Workload object
in the user's module (docs/workload-api.md), imported from PYTHONPATH or the current folder.
Importing this package does not import torch; each workload module imports torch itself and is
loaded on first use.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from typing import Any

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

# "package.module:ATTR": a user's Workload (the public door).
_EXTERNAL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
_BACKEND_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+]*$")
# What a Workload must provide (docs/workload-api.md); `backends` is the tuple of its backend names.
REQUIRED = ("backends", "check_supported", "make_inputs", "make_fn", "reference", "flops", "bytes_moved",
            "predicted_bytes", "tolerance")

_LOADED: dict[str, Any] = {}


def names() -> list[str]:
    return sorted(_REGISTRY)


def is_external(name: str) -> bool:
    """Is `name` a user's "package.module:ATTR" rather than a bundled workload?"""
    return isinstance(name, str) and ":" in name


def check_name(name: str) -> str | None:
    """Why `name` is not a workload (None: it is one), torch-free: bundled names are looked up,
    a user's "package.module:ATTR" is checked for its form only (importing it is the harness's job)."""
    if name in _REGISTRY:
        return None
    if is_external(name):
        if _EXTERNAL.match(name):
            return None
        return f"{name!r} is not of the form package.module:ATTR"
    return (f"unknown workload {name!r}; known: {', '.join(names())}, "
            "or a workload of your own as package.module:ATTR (docs/workload-api.md)")


def check_backend(workload: str, backend: str) -> str | None:
    """Why `backend` is not one of `workload`'s (None: it is). A user's workload declares its
    backends itself, so here only the name's form is checked; the harness checks the rest once it
    has imported the module (sweep._check_external_workloads)."""
    if workload in BACKENDS:
        known = BACKENDS[workload]
        return None if backend in known else f"unknown backend {backend!r} for {workload}; choose from {', '.join(known)}"
    if isinstance(backend, str) and _BACKEND_NAME.match(backend):
        return None
    return f"backend {backend!r} is not a name (letters, digits, _ . +)"


def get(name: str) -> Any:
    """The Workload instance registered as `name`, or a user's "package.module:ATTR" (imports torch).

    A user's module is imported only after the harness bound its timers and took the snapshot
    that tamper detection compares with (harness/integrity/guard.py)."""
    if name in _LOADED:
        return _LOADED[name]
    why = check_name(name)
    if why:
        raise HarnessError(why)
    if name in _REGISTRY:
        module, attr = _REGISTRY[name].split(":")
        workload = getattr(importlib.import_module(module), attr)
    else:
        workload = _load_external(name)
    _LOADED[name] = workload
    return workload


def backends_of(name: str) -> tuple[str, ...]:
    if name in BACKENDS:
        return BACKENDS[name]
    return tuple(get(name).backends)


def _load_external(name: str) -> Any:
    from harness.integrity import guard

    guard.baseline()
    module, attr = name.split(":")
    if os.getcwd() not in sys.path:
        # `harness` as a console script does not put the current folder on sys.path; a user's
        # module beside their plan should import as it would with `python -m`.
        sys.path.append(os.getcwd())
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - a user's module may fail in any way; say how, in one line
        msg = str(exc).splitlines()[0] if str(exc) else ""
        raise HarnessError(f"workload {name}: importing {module} failed ({type(exc).__name__}: {msg}); "
                           "make it importable (PYTHONPATH or the current folder)") from None
    if not hasattr(mod, attr):
        raise HarnessError(f"workload {name}: module {module} has no attribute {attr!r}")
    workload = getattr(mod, attr)
    missing = [m for m in REQUIRED if not hasattr(workload, m)]
    if missing:
        raise HarnessError(f"workload {name}: {attr} lacks {', '.join(missing)}; a workload implements "
                           "harness.workloads.base.Workload (docs/workload-api.md)")
    backends = workload.backends
    if (isinstance(backends, str) or not isinstance(backends, (tuple, list)) or not backends
            or not all(isinstance(b, str) and _BACKEND_NAME.match(b) for b in backends)):
        raise HarnessError(f"workload {name}: backends must be a non-empty tuple of names, got {backends!r}")
    return workload
