"""Lock the numerics before anything runs, and read back what is actually in force.

CUBLAS_WORKSPACE_CONFIG only takes effect if set before CUDA creates its first cuBLAS handle, so
`prepare_process_env()` runs before torch is imported (the CLI calls it first thing).

The lock keeps deterministic algorithms but switches off what `use_deterministic_algorithms(True)`
turns on besides: `torch.utils.deterministic.fill_uninitialized_memory`, which fills every
`torch.empty`/`empty_like` (the output of every SDPA call and of the Triton kernel) with NaN by an
extra kernel. That kernel ran inside every timed replay: on an H200 at B=32 H=8 D=64 fp16 it added
53-58% at S=128 and 13-14% at S=512 (issue 8). The fill's one use, poisoning outputs so that an
element the kernel never wrote cannot pass, belongs to the correctness check, which is untimed:
`poisoned()` switches it on there and only there.
"""

from __future__ import annotations

import os
import random
from typing import Any

CUBLAS_WORKSPACE = ":4096:8"
# What the lock sets torch.utils.deterministic.fill_uninitialized_memory to (see the docstring).
# bench/h200/with_fill.py flips it to reproduce the old behaviour for the fidelity check.
FILL_UNINITIALIZED_MEMORY = False


def prepare_process_env() -> None:
    """Environment variables that must be set before torch/CUDA initialise."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)


def lock(seed: int, cpu_threads: int | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Apply the lock; return (settings as read back, setting -> why it could not be locked)."""
    import numpy as np
    import torch

    if cpu_threads is not None:
        torch.set_num_threads(cpu_threads)
    failures: dict[str, str] = {}
    cuda_was_initialized = torch.cuda.is_available() and torch.cuda.is_initialized()
    prepare_process_env()

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    # warn_only: an op with no deterministic implementation warns instead of aborting the
    # sweep; the bitwise-repeat check of every case is what proves determinism per case.
    torch.use_deterministic_algorithms(True, warn_only=True)
    set_fill_uninitialized(FILL_UNINITIALIZED_MEMORY)

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)

    if os.environ.get("CUBLAS_WORKSPACE_CONFIG") != CUBLAS_WORKSPACE:
        failures["cublas_workspace_config"] = (
            f"CUBLAS_WORKSPACE_CONFIG was already {os.environ.get('CUBLAS_WORKSPACE_CONFIG')!r}; left as set"
        )
    if cuda_was_initialized:
        failures["cublas_workspace_config_timing"] = "CUDA was initialised before the lock; the variable may not apply"

    settings = read_back()
    settings["seed"] = seed
    if settings["matmul_allow_tf32"]:
        failures["matmul_allow_tf32"] = "still True after setting it False"
    if settings["cudnn_allow_tf32"]:
        failures["cudnn_allow_tf32"] = "still True after setting it False"
    if not settings["deterministic_algorithms"]:
        failures["deterministic_algorithms"] = "torch reports deterministic algorithms off"
    if settings["fill_uninitialized_memory"] is None:
        failures["fill_uninitialized_memory"] = "this torch has no torch.utils.deterministic.fill_uninitialized_memory"
    elif settings["fill_uninitialized_memory"] != FILL_UNINITIALIZED_MEMORY:
        failures["fill_uninitialized_memory"] = f"still {settings['fill_uninitialized_memory']} after setting it {FILL_UNINITIALIZED_MEMORY}"
    return settings, failures


def set_fill_uninitialized(value: bool) -> None:
    import torch

    det = getattr(torch.utils, "deterministic", None)
    if det is not None and hasattr(det, "fill_uninitialized_memory"):
        det.fill_uninitialized_memory = bool(value)


def fill_uninitialized() -> bool | None:
    """The fill setting in force in this process now (None: this torch does not have it)."""
    import torch

    det = getattr(torch.utils, "deterministic", None)
    value = getattr(det, "fill_uninitialized_memory", None) if det is not None else None
    return None if value is None else bool(value)


class poisoned:
    """Context manager: outputs of torch.empty & co. are NaN-filled (the correctness check runs
    under it, so an element a kernel never wrote shows as NaN and fails); timing never does."""

    def __enter__(self) -> poisoned:
        self._saved = fill_uninitialized()
        set_fill_uninitialized(True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            set_fill_uninitialized(self._saved)


class unlocked:
    """Context manager: the process's numerics as torch starts them (no determinism, no fill,
    cuDNN free to choose), restored on exit. The kernel census runs the same call under it to
    show that the lock adds or changes no kernel in the timed region."""

    def __enter__(self) -> unlocked:
        import torch

        self._saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                       fill_uninitialized(), torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
        torch.use_deterministic_algorithms(False)
        set_fill_uninitialized(False)
        torch.backends.cudnn.deterministic = False
        return self

    def __exit__(self, *exc: object) -> None:
        import torch

        det, warn, fill, cudnn_det, cudnn_bench = self._saved
        torch.use_deterministic_algorithms(det, warn_only=warn)
        if fill is not None:
            set_fill_uninitialized(fill)
        torch.backends.cudnn.deterministic = cudnn_det
        torch.backends.cudnn.benchmark = cudnn_bench


def read_back() -> dict[str, Any]:
    import torch

    return {
        "matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
        "deterministic_warn_only": bool(torch.is_deterministic_algorithms_warn_only_enabled()),
        "fill_uninitialized_memory": fill_uninitialized(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "torch_num_threads": torch.get_num_threads(),
    }
