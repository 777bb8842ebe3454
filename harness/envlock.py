"""Lock the numerics before anything runs, and read back what is actually in force.

CUBLAS_WORKSPACE_CONFIG only takes effect if set before CUDA creates its first cuBLAS handle, so
`prepare_process_env()` runs before torch is imported (the CLI calls it first thing).
"""

from __future__ import annotations

import os
import random
from typing import Any

CUBLAS_WORKSPACE = ":4096:8"


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
    return settings, failures


def read_back() -> dict[str, Any]:
    import torch

    return {
        "matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
        "deterministic_warn_only": bool(torch.is_deterministic_algorithms_warn_only_enabled()),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "torch_num_threads": torch.get_num_threads(),
    }
