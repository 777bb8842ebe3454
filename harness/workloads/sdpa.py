"""PyTorch scaled_dot_product_attention through each backend, and the shared attention maths
(inputs, float64 reference, FLOP and byte counts) that candidate attention kernels reuse."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from harness.records import CaseSpec
from harness.workloads import SDPA_BACKENDS

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
_ELEM = {"float16": 2, "bfloat16": 2, "float32": 4}
# Relative error (Frobenius) against float64 that an attention forward should stay under:
# fp16 inputs round at ~5e-4, bf16 at ~4e-3 (METHOD.md: bf16 lands between 1e-3 and 1e-2).
_TOLERANCE = {"float16": 5e-3, "bfloat16": 3e-2, "float32": 1e-4}
# Bound on the float64 score block the reference materialises at once.
_REF_CHUNK_BYTES = 512 << 20


class AttentionWorkload:
    """Shared attention maths; subclasses only say how to run the kernel (`make_fn`)."""

    name = "attention"

    def check_supported(self, spec: CaseSpec) -> str | None:
        if spec.device == "cuda" and not torch.cuda.is_available():
            return "no CUDA GPU visible"
        return None

    def make_inputs(self, spec: CaseSpec, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gen = torch.Generator(device=spec.device).manual_seed(seed)
        shape = (spec.batch, spec.heads, spec.seq, spec.head_dim)
        dtype = _DTYPES[spec.dtype]
        return tuple(  # type: ignore[return-value]
            torch.randn(shape, generator=gen, device=spec.device, dtype=dtype) for _ in range(3)
        )

    def reference(self, spec: CaseSpec, inputs: Any) -> torch.Tensor:
        """softmax(q k^T / sqrt(D)) v in float64, over (batch*head) chunks to bound memory."""
        q, k, v = (t.reshape(-1, spec.seq, spec.head_dim) for t in inputs)
        bh = q.shape[0]
        per_head = spec.seq * spec.seq * 8 * 2  # scores + probabilities
        chunk = max(1, min(bh, _REF_CHUNK_BYTES // per_head))
        scale = 1.0 / math.sqrt(spec.head_dim)
        out = torch.empty(q.shape, dtype=torch.float64, device=q.device)
        mask = None
        if spec.causal:
            mask = torch.ones(spec.seq, spec.seq, dtype=torch.bool, device=q.device).tril()
        for i in range(0, bh, chunk):
            qc, kc, vc = (t[i : i + chunk].double() for t in (q, k, v))
            scores = torch.matmul(qc, kc.transpose(-1, -2)) * scale
            if mask is not None:
                scores.masked_fill_(~mask, float("-inf"))
            out[i : i + chunk] = torch.matmul(torch.softmax(scores, dim=-1), vc)
        return out.reshape(spec.batch, spec.heads, spec.seq, spec.head_dim)

    def flops(self, spec: CaseSpec) -> float:
        # Two matmuls (QK^T and PV) of 2*S*S*D each per head; causal does half the work.
        f = 4.0 * spec.batch * spec.heads * spec.seq * spec.seq * spec.head_dim
        return f / 2 if spec.causal else f

    def bytes_moved(self, spec: CaseSpec) -> float:
        # q, k, v read once and o written once: the fewest bytes any implementation must move.
        return 4.0 * spec.batch * spec.heads * spec.seq * spec.head_dim * _ELEM[spec.dtype]

    def predicted_bytes(self, spec: CaseSpec) -> int:
        io = int(self.bytes_moved(spec))
        lse = spec.batch * spec.heads * spec.seq * 4  # log-sum-exp rows kept by fused kernels
        # Library workspaces allocated on first use (cuBLAS's is 4 MiB x 8 under the lock's
        # CUBLAS_WORKSPACE_CONFIG): the H100 sweep measured 32-64 MiB above inputs + output.
        workspace = 64 << 20 if spec.device == "cuda" else 0
        return io + lse + workspace

    def tolerance(self, spec: CaseSpec) -> float:
        return _TOLERANCE[spec.dtype]


def _sdpa_backends() -> dict[str, Any]:
    from torch.nn.attention import SDPBackend

    return {
        "flash": SDPBackend.FLASH_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "math": SDPBackend.MATH,
    }


class SdpaWorkload(AttentionWorkload):
    name = "sdpa"
    backends = SDPA_BACKENDS

    def check_supported(self, spec: CaseSpec) -> str | None:
        reason = super().check_supported(spec)
        if reason:
            return reason
        if spec.device == "cpu" and spec.backend in ("efficient", "cudnn"):
            return f"SDPA backend {spec.backend!r} runs on CUDA GPUs only"
        return None

    def predicted_bytes(self, spec: CaseSpec) -> int:
        base = super().predicted_bytes(spec)
        if spec.backend == "math" or (spec.backend == "default" and spec.device == "cpu"):
            # The math path materialises scores and probabilities (and a float32 softmax copy
            # for half inputs): about three S x S matrices per head.
            es = _ELEM[spec.dtype]
            base += 3 * spec.batch * spec.heads * spec.seq * spec.seq * max(es, 4)
        return base

    def make_fn(self, spec: CaseSpec, inputs: Any) -> Callable[[], torch.Tensor]:
        from torch.nn.attention import sdpa_kernel

        q, k, v = inputs
        causal = spec.causal
        if spec.backend == "default":
            return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        backend = _sdpa_backends()[spec.backend]

        def fn() -> torch.Tensor:
            # Selecting the backend is host-side work: with CUDA-graph timing it happens at
            # capture, so only the kernel itself is in the timed replays.
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

        return fn


WORKLOAD = SdpaWorkload()
