"""Which device a harness command runs on: one resolution for `bench`, `env` and `optimize`.

Importing this module does not import torch: flags are checked before CUDA initialises.
"""

from __future__ import annotations

import os
import sys

from harness.errors import HarnessError

DEVICES = ("auto", "cuda", "cpu")
_KERNEL_MODULE = "harness.workloads.triton_attention"


def resolve(requested: str) -> str:
    """auto, cuda or cpu -> cuda or cpu; asking for a GPU that torch cannot see is an error,
    not a silent fall-back (a CPU run would be mistaken for a GPU result)."""
    if requested not in DEVICES:
        raise HarnessError(f"--device: must be auto, cuda or cpu, got {requested!r}")
    if requested == "cpu":
        return "cpu"
    import torch

    has_gpu = torch.cuda.is_available()
    if requested == "cuda" and not has_gpu:
        raise HarnessError("--device cuda: no CUDA GPU is visible to torch; run on a GPU host (docker: --gpus all) "
                           "or use --device cpu")
    return "cuda" if has_gpu else "cpu"


def prepare_triton(device: str) -> None:
    """Set Triton up for `device` before the kernel module loads: triton.jit decides between
    compiling and interpreting when that module is first imported, and cannot change it later."""
    if device == "cpu":
        loaded = sys.modules.get(_KERNEL_MODULE)
        if loaded is not None and not getattr(loaded, "INTERPRETED", False):
            raise HarnessError("--device cpu: the Triton kernel was already compiled for the GPU in this process; "
                               "run with TRITON_INTERPRET=1")
        os.environ["TRITON_INTERPRET"] = "1"
    elif os.environ.get("TRITON_INTERPRET") == "1":
        raise HarnessError("TRITON_INTERPRET=1 is set: on a GPU the kernel must be compiled; unset it")
