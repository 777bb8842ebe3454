"""`harness scaffold NAME`: a folder that makes a kernel of one's own a measured, checked workload
(docs/own-kernel.md): the workload module (a correct starting kernel to replace), a plan that
measures it beside PyTorch's SDPA, and a test of its outputs against float64 on the CPU.
Torch-free: it writes text."""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from harness.errors import HarnessError
from harness.storage import atomic_write_text

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

_MODULE = '''"""{name}: a kernel of your own, measured by the harness (docs/own-kernel.md, docs/workload-api.md).

Replace `my_kernel` with yours. The harness holds it to the contract of docs/workload-api.md: read
the inputs on every call, return an output of its own, keep the work on the caller's stream.
Cases are attention-shaped (batch B, heads H, sequence S, head dim D): AttentionWorkload makes the
inputs q, k, v, the float64 reference, the tolerance, the FLOPs and bytes for the roofline.
"""

from __future__ import annotations

import torch

from harness.workloads.sdpa import AttentionWorkload


def my_kernel(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """A plain attention to start from: correct, not fast. Replace it with your kernel."""
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    if causal:
        s = q.shape[-2]
        scores = scores.masked_fill(torch.ones(s, s, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return torch.softmax(scores.float(), dim=-1).to(q.dtype) @ v


class Workload(AttentionWorkload):
    backends = ("mine",)

    def make_fn(self, spec, inputs):  # noqa: ANN001, ANN201 - the Workload protocol
        q, k, v = inputs
        return lambda: my_kernel(q, k, v, spec.causal)


WORKLOAD = Workload()
'''

_PLAN = '''# {name} beside PyTorch's SDPA (harness bench --plan {name}/plan.yaml). These shapes are small
# enough for a CPU (--device cpu); on a GPU use e.g. batch 32, heads 8, head_dim 64, float16 and
# seq [512, 1024, 4096], and drop the CPU timing and cpu_threads lines.
schema_version: 1
timing: {{target_rel_ci: 0.05, min_samples: 10, max_samples: 300, min_time_s: 0.05, max_time_s: 0.5, warmup_ms: 20.0}}
cpu_threads: 1
defaults: {{batch: 2, heads: 4, head_dim: 32, dtype: float32}}
cases:
  - {{workload: "{name}:WORKLOAD", backend: mine, seq: [64, 128]}}
  - {{workload: sdpa, backend: [math, default], seq: [64, 128]}}
'''

_TEST = '''"""{name}'s own test: its outputs against the float64 reference on the CPU, before any timing."""

from __future__ import annotations

import pytest
import torch

from harness.records import CaseSpec
from {name} import WORKLOAD


@pytest.mark.parametrize("seq,causal", [(64, False), (128, True)])
def test_my_kernel_matches_float64(seq, causal):
    spec = CaseSpec(workload="{name}:WORKLOAD", backend="mine", batch=2, heads=4, seq=seq, head_dim=32,
                    dtype="float32", causal=causal, device="cpu")
    inputs = WORKLOAD.make_inputs(spec, seed=0)
    out = WORKLOAD.make_fn(spec, inputs)()
    ref = WORKLOAD.reference(spec, inputs)
    err = float(torch.linalg.vector_norm(out.double() - ref) / torch.linalg.vector_norm(ref))
    assert err <= WORKLOAD.tolerance(spec), err
'''


def scaffold(name: str, parent: Path) -> list[Path]:
    """Write parent/name/ (__init__.py, plan.yaml, test_<name>.py); refuse to overwrite anything."""
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise HarnessError(f"{name!r}: not a module name; use lower-case letters, digits and _ (e.g. my_attention)")
    folder = parent / name
    if folder.exists():
        raise HarnessError(f"{folder}: already exists; choose another name or remove it")
    files = {folder / "__init__.py": _MODULE, folder / "plan.yaml": _PLAN, folder / f"test_{name}.py": _TEST}
    folder.mkdir(parents=True)
    for path, text in files.items():
        atomic_write_text(path, text.format(name=name))
    return list(files)
