"""What a `harness optimize` run was asked for, and the checks on it that need no GPU (torch-free).

The checks run before the kernel module is imported: importing it decides between compiling and
interpreting the kernel, so the device must be known first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from harness.errors import HarnessError
from harness.records import DTYPES, CaseSpec

# The interpreter runs about 3 M multiply-adds a second on one core: beyond this the CPU search
# would take minutes per config.
CPU_MAX_MACS = 1 << 22
NCU_WHEN = ("target", "always", "never")


@dataclass
class OptimizeSettings:
    batch: int = 32
    heads: int = 8
    seq: int = 512
    head_dim: int = 64
    dtype: str = "float16"
    causal: bool = False
    device: str = "cuda"
    budget_s: float = 120.0
    target_speedup: float = 1.10
    seed: int = 1234
    space: Optional[list[dict[str, Any]]] = None  # None: search_space() for the shape
    reuse: Optional[dict[str, Any]] = None  # a tuned config to measure instead of searching
    matmul_peak_tflops: Optional[float] = None  # for the summary's share-of-peak column
    precompile: bool = True  # on a GPU, compile the space in parallel before measuring
    ncu: str = "target"  # Nsight Compute on the winner: "target" (when the target is met), "always", "never"


def shape_spec(s: OptimizeSettings, workload: str = "triton_attention", backend: str = "triton") -> CaseSpec:
    """The run's one shape, as a case of `workload`."""
    return CaseSpec(workload, backend, s.batch, s.heads, s.seq, s.head_dim, dtype=s.dtype, causal=s.causal,
                    device=s.device)


def check_flags(s: OptimizeSettings) -> None:
    """Flag checks that need neither torch nor the kernel module."""
    if s.dtype not in DTYPES:
        raise HarnessError(f"--dtype: unknown dtype {s.dtype!r}; choose from {', '.join(DTYPES)}")
    if s.budget_s <= 0:
        raise HarnessError(f"--budget-s: must be positive, got {s.budget_s:g}")
    if s.target_speedup <= 0:
        raise HarnessError(f"--target-speedup: must be positive, got {s.target_speedup:g}")
    if s.ncu not in NCU_WHEN:
        raise HarnessError(f"--ncu: must be target, always or never, got {s.ncu!r}")
    macs = s.batch * s.heads * s.seq * s.seq * s.head_dim
    if s.device == "cpu" and macs > CPU_MAX_MACS:
        raise HarnessError(
            f"--device cpu runs the Triton kernel in its interpreter, far too slow for B={s.batch} H={s.heads} "
            f"S={s.seq} D={s.head_dim}; use a tiny shape such as --batch 1 --heads 2 --seq 64 --head-dim 32"
        )


def check_kernel_supports(s: OptimizeSettings) -> None:
    """The kernel's own limits (imports the kernel module: call once the device is prepared)."""
    from harness.workloads.triton_attention import DTYPES as KERNEL_DTYPES
    from harness.workloads.triton_attention import HEAD_DIMS

    if s.dtype not in KERNEL_DTYPES:
        raise HarnessError(f"--dtype: the Triton kernel supports {' and '.join(KERNEL_DTYPES)}, not {s.dtype}")
    if s.head_dim not in HEAD_DIMS:
        raise HarnessError(f"--head-dim: the Triton kernel supports {', '.join(map(str, HEAD_DIMS))}, not {s.head_dim}")
