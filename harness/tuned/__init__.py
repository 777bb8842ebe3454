"""Tuned configs of the bundled Triton attention kernel, saved by `harness optimize` (torch-free).

One JSON record per GPU model + compute capability + shape + dtype + causal, so later runs (and
the reference claims) reuse a search's winner without searching again. The shipped records live
in this folder; a run also writes its own as DIR/tuned_config.json.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from harness import versions
from harness.errors import RecordError
from harness.records import CaseSpec, load_record
from harness.storage import write_record

KIND_TUNED = "tuned_config"  # its version and format history: harness/versions.py
SHIPPED_DIR = Path(__file__).resolve().parent


@dataclass
class TunedConfig:
    gpu_name: str  # as torch.cuda.get_device_name() reports it
    compute_capability: str  # "9.0"
    batch: int
    heads: int
    seq: int
    head_dim: int
    dtype: str
    causal: bool
    config: dict[str, Any]  # the kernel's tunables (harness.workloads.triton_attention.TUNABLES)
    median_ms: float  # the winner's full measurement, fresh after the search
    baseline_backend: str  # the fastest SDPA backend at this shape
    baseline_median_ms: float
    ratio: float  # candidate median / baseline median (below 1: the candidate is faster)
    ratio_ci_low: float
    ratio_ci_high: float
    verdict: str  # from harness.compare
    configs_tried: int
    triton_version: str
    torch_version: str
    created_at: str
    source: str  # the command that produced it
    notes: list[str] = field(default_factory=list)
    schema_version: int = versions.current(KIND_TUNED)
    kind: str = KIND_TUNED


def gpu_slug(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'nvidia-h100-80gb-hbm3' (a file-name-safe key)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown-gpu"


def file_name(gpu_name: str, compute_capability: str, spec: CaseSpec) -> str:
    mask = "causal" if spec.causal else "full"
    cc = compute_capability.replace(".", "")
    return f"{gpu_slug(gpu_name)}-sm{cc}-b{spec.batch}h{spec.heads}s{spec.seq}d{spec.head_dim}-{spec.dtype}-{mask}.json"


def save(record: TunedConfig, folder: Path | str = SHIPPED_DIR) -> Path:
    spec = CaseSpec("triton_attention", "triton", record.batch, record.heads, record.seq, record.head_dim,
                    dtype=record.dtype, causal=record.causal)
    path = Path(folder) / file_name(record.gpu_name, record.compute_capability, spec)
    write_record(path, record)
    return path


def load(path: Path | str) -> TunedConfig:
    record = load_record(path, TunedConfig)
    if record.kind != KIND_TUNED:
        raise RecordError(f"{path}: kind: expected {KIND_TUNED!r}, got {record.kind!r}")
    return record


def all_records(folder: Path | str = SHIPPED_DIR) -> list[TunedConfig]:
    return [load(p) for p in sorted(Path(folder).glob("*.json"))]


def lookup(gpu_name: Optional[str], compute_capability: Optional[str], spec: CaseSpec,
           folder: Path | str = SHIPPED_DIR) -> Optional[TunedConfig]:
    """The record for this GPU and shape; else, for the same GPU, head_dim, dtype and causality,
    the one whose problem size (B*H*S) is nearest on a log scale (block shapes that suit one
    length usually suit its neighbours); else None."""
    if not gpu_name or not compute_capability:
        return None
    same_kind = [
        r for r in all_records(folder)
        if gpu_slug(r.gpu_name) == gpu_slug(gpu_name) and r.compute_capability == compute_capability
        and r.head_dim == spec.head_dim and r.dtype == spec.dtype and r.causal == spec.causal
    ]
    if not same_kind:
        return None
    size = spec.batch * spec.heads * spec.seq

    def distance(r: TunedConfig) -> tuple[float, int, int]:
        exact = (r.batch, r.heads, r.seq) == (spec.batch, spec.heads, spec.seq)
        return (0.0 if exact else abs(math.log(r.batch * r.heads * r.seq / size)) + 1e-9, abs(r.seq - spec.seq), r.seq)

    return min(same_kind, key=distance)
