"""The bundled candidate: a FlashAttention-style forward kernel in Triton.

One program computes a BLOCK_M x D tile of the output for one (batch, head): it keeps Q in
registers, walks K/V in BLOCK_N tiles and folds each tile into a running (max, sum, output)
triple -- the online softmax -- so the S x S scores never reach device memory.

Choices made for Hopper (each is measured in bench/triton_attention/NOTES.md):
- scores are scaled by sm_scale * log2(e) once and exponentiated with exp2, which maps to one
  MUFU.EX2 instruction instead of a multiply plus ex2;
- causal attention splits the K/V walk in two: the blocks wholly below the diagonal run with no
  mask at all, and only the BLOCK_M-wide diagonal band builds and applies the mask;
- `use_tma` loads tiles through host-built tensor descriptors (the bulk tensor copy engine);
- `warp_specialize` asks Triton to split the loop into producer/consumer warp groups;
- `reverse_m` (causal only) launches the heaviest row blocks first so they do not form the tail;
- `exp_f16` computes the softmax exponentials two at a time in half precision (ex2.approx.f16x2):
  the exponential unit (16 results per clock per SM) and not the tensor cores is the bound at
  D=64, and P is rounded to 16 bits for the P@V product anyway.
A hand-pipelined loop (Q K^T of tile j+1 issued before the softmax of tile j, FlashAttention-3's
intra-warpgroup overlap) was tried on the H200 and removed: 1.1-4.5x slower at every config, two
score tiles live at once (bench/triton_attention/NOTES.md, run 5).

Inputs are SDPA's layout, (B, H, S, D) contiguous. On the CPU the kernel runs only under
Triton's interpreter, which must be switched on (TRITON_INTERPRET=1) before this module is
imported: `triton.jit` decides between compiling and interpreting when the kernel is defined.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import torch
import triton
import triton.language as tl

from harness.errors import HarnessError
from harness.records import CaseSpec
from harness.workloads.sdpa import AttentionWorkload

# Decided once, like triton.jit itself decides, so the two can never disagree.
INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") == "1"



def _fix_interpreter_scalar_index() -> None:
    """Triton 3.6's interpreter turns a scalar into an int with int(ndarray of shape (1,)),
    which numpy >= 2.4 refuses ("only 0-dimensional arrays can be converted to Python scalars"),
    so any loop with a run-time bound fails. Upstream fixed it after 3.6.0 (triton-lang/triton
    issue 9171, PR 9172) by squeezing first; this applies the same fix while the pinned triton
    lacks it, and does nothing once the interpreter handles such arrays itself."""
    import numpy as np
    from triton.runtime import interpreter

    try:
        int(np.zeros(1, dtype=np.int32))
        return  # numpy still converts one-element arrays: nothing to fix
    except TypeError:
        pass
    original = interpreter._patch_lang_tensor
    if getattr(original, "_squeezes_index", False):
        return

    def patched(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(np.asarray(self.handle.data).reshape(-1)[0]))

    patched._squeezes_index = True  # type: ignore[attr-defined]
    interpreter._patch_lang_tensor = patched


if INTERPRETED:
    _fix_interpreter_scalar_index()

HEAD_DIMS = (16, 32, 64, 128)
DTYPES = ("float16", "bfloat16")
LOG2E = 1.4426950408889634

# The tunables and the values the kernel accepts for each. The search space (harness/optimize/search.py)
# is a subset of these combinations.
TUNABLES: dict[str, tuple[Any, ...]] = {
    "BLOCK_M": (16, 32, 64, 128, 256),
    "BLOCK_N": (16, 32, 64, 128, 256),
    "num_warps": (1, 2, 4, 8, 16),
    "num_stages": (1, 2, 3, 4, 5),
    "use_tma": (False, True),
    "warp_specialize": (False, True),
    "reverse_m": (False, True),
    "exp_f16": (False, True),
}

# Used when a case names no config and no tuned config matches this GPU and shape: the shape
# that did best across the H100 sweep (bench/triton_attention/NOTES.md).
DEFAULT_CONFIG: dict[str, Any] = {
    "BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 4, "num_stages": 3,
    "use_tma": False, "warp_specialize": False, "reverse_m": False, "exp_f16": False,
}


def config_problem(config: dict[str, Any], spec: CaseSpec) -> str | None:
    """Why `config` cannot run `spec` (None when it can); checked before any launch."""
    unknown = set(config) - set(TUNABLES)
    if unknown:
        return f"config: unknown tunable(s) {', '.join(sorted(unknown))}; known: {', '.join(TUNABLES)}"
    for key, allowed in TUNABLES.items():
        if key not in config:
            return f"config.{key}: missing (give every tunable: {', '.join(TUNABLES)})"
        value = config[key]
        if isinstance(allowed[0], bool):
            if not isinstance(value, bool):
                return f"config.{key}: must be true or false, got {value!r}"
        elif isinstance(value, bool) or value not in allowed:
            return f"config.{key}: must be one of {', '.join(map(str, allowed))}, got {value!r}"
    bm, bn = config["BLOCK_M"], config["BLOCK_N"]
    if spec.causal and bm % bn:
        # The diagonal band is BLOCK_M wide and walked in BLOCK_N steps.
        return f"config: causal attention needs BLOCK_M to be a multiple of BLOCK_N, got {bm} and {bn}"
    if config["use_tma"]:
        if spec.seq % bm or spec.seq % bn:
            # Descriptors span all heads as one (B*H*S, D) matrix: a partial tile would read or
            # write the next head's rows.
            return f"config.use_tma: needs seq ({spec.seq}) to be a multiple of BLOCK_M and BLOCK_N"
        if spec.device != "cuda" or INTERPRETED:
            return "config.use_tma: tensor descriptors need a compiled kernel on a CUDA GPU"
    if config["warp_specialize"] and (spec.device != "cuda" or INTERPRETED):
        return "config.warp_specialize: needs a compiled kernel on a CUDA GPU"
    if config["exp_f16"] and (spec.device != "cuda" or INTERPRETED):
        return "config.exp_f16: the half-precision exp2 is PTX inline assembly; it needs a compiled kernel on a CUDA GPU"
    if config["reverse_m"] and not spec.causal:
        return "config.reverse_m: only changes causal attention (every row block costs the same otherwise)"
    return None


@triton.jit
def _load_kv(K, V, row0, start_n, offs_n, offs_d, seq_len, EVEN_N: tl.constexpr, USE_TMA: tl.constexpr,
             HEAD_DIM: tl.constexpr):
    if USE_TMA:
        k = K.load([row0 + start_n, 0])
        v = V.load([row0 + start_n, 0])
    else:
        kv_offs = (start_n + offs_n)[:, None] * HEAD_DIM + offs_d[None, :]
        if EVEN_N:
            k = tl.load(K + kv_offs)
            v = tl.load(V + kv_offs)
        else:
            kv_mask = (start_n + offs_n)[:, None] < seq_len
            k = tl.load(K + kv_offs, mask=kv_mask, other=0.0)
            v = tl.load(V + kv_offs, mask=kv_mask, other=0.0)
    return k, v


@triton.jit
def _qk(q, k, DOT_F32: tl.constexpr):
    if DOT_F32:
        qk = tl.dot(q.to(tl.float32), tl.trans(k).to(tl.float32))
    else:
        qk = tl.dot(q, tl.trans(k))
    return qk


@triton.jit
def _online_softmax_step(acc, l_i, m_i, qk, v, m_ij, DOT_F32: tl.constexpr, EXP_F16: tl.constexpr):
    """Fold one tile of scaled, max-subtracted scores `qk` into the running (acc, l, m)."""
    if EXP_F16:
        # ex2.approx.f16x2: two exponentials per MUFU instruction instead of one. The
        # exponent is <= 0 after the max is subtracted, so f16 has the range; its rounding
        # of the exponent costs about as much as rounding p to 16 bits for the P@V product,
        # which happens anyway.
        p16 = tl.inline_asm_elementwise("ex2.approx.f16x2 $0, $1;", "=r,r", [qk.to(tl.float16)],
                                        dtype=tl.float16, is_pure=True, pack=2)
        l_ij = tl.sum(p16.to(tl.float32), 1)
        p_mm = p16.to(v.dtype)
    else:
        p = tl.math.exp2(qk)
        l_ij = tl.sum(p, 1)
        p_mm = p.to(v.dtype)
    alpha = tl.math.exp2(m_i - m_ij)
    l_i = l_i * alpha + l_ij
    acc = acc * alpha[:, None]
    if DOT_F32:
        acc = tl.dot(p_mm.to(tl.float32), v.to(tl.float32), acc)
    else:
        acc = tl.dot(p_mm, v, acc)
    return acc, l_i, m_ij


@triton.jit
def _attn_tile_loop(
    acc, l_i, m_i, q, K, V, row0, lo, hi, offs_m, offs_n, offs_d, seq_len, qk_scale,
    CAUSAL_MASK: tl.constexpr, EVEN_N: tl.constexpr, USE_TMA: tl.constexpr, WARP_SPEC: tl.constexpr,
    DOT_F32: tl.constexpr, EXP_F16: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
):
    for start_n in tl.range(lo, hi, BLOCK_N, warp_specialize=WARP_SPEC):
        start_n = tl.multiple_of(start_n, BLOCK_N)
        k, v = _load_kv(K, V, row0, start_n, offs_n, offs_d, seq_len, EVEN_N, USE_TMA, HEAD_DIM)
        qk = _qk(q, k, DOT_F32)
        if CAUSAL_MASK or not EVEN_N:
            cols = start_n + offs_n
            keep = cols[None, :] < seq_len
            if CAUSAL_MASK:
                keep = keep & (offs_m[:, None] >= cols[None, :])
            # A large finite negative, not -inf: a row whose every column is masked in this
            # tile must not turn into (-inf) - (-inf) = NaN.
            qk = qk * qk_scale + tl.where(keep, 0.0, -1.0e6)
            m_ij = tl.maximum(m_i, tl.max(qk, 1))
            qk = qk - m_ij[:, None]
        else:
            m_ij = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
            qk = qk * qk_scale - m_ij[:, None]
        acc, l_i, m_i = _online_softmax_step(acc, l_i, m_i, qk, v, m_ij, DOT_F32, EXP_F16)
    return acc, l_i, m_i


@triton.jit
def _attn_fwd(
    Q, K, V, O, seq_len, qk_scale,
    CAUSAL: tl.constexpr, EVEN_M: tl.constexpr, EVEN_N: tl.constexpr, USE_TMA: tl.constexpr,
    WARP_SPEC: tl.constexpr, REVERSE_M: tl.constexpr, DOT_F32: tl.constexpr, EXP_F16: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
):
    pid_m = tl.program_id(0)
    off_bh = tl.program_id(1)
    if REVERSE_M:
        start_m = tl.cdiv(seq_len, BLOCK_M) - 1 - pid_m
    else:
        start_m = pid_m
    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    # Row of this head's first query in the (B*H*S, D) view every tensor shares.
    row0 = off_bh * seq_len
    if USE_TMA:
        q = Q.load([row0 + start_m * BLOCK_M, 0])
        Kh = K
        Vh = V
    else:
        head = off_bh.to(tl.int64) * seq_len * HEAD_DIM
        q_offs = offs_m[:, None] * HEAD_DIM + offs_d[None, :]
        if EVEN_M:
            q = tl.load(Q + head + q_offs)
        else:
            q = tl.load(Q + head + q_offs, mask=offs_m[:, None] < seq_len, other=0.0)
        Kh = K + head
        Vh = V + head

    m_i = tl.zeros([BLOCK_M], dtype=tl.float32) - float("inf")
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    if CAUSAL:
        # Blocks wholly below the diagonal: no mask. Then the diagonal band, masked.
        diag = start_m * BLOCK_M
        acc, l_i, m_i = _attn_tile_loop(
            acc, l_i, m_i, q, Kh, Vh, row0, 0, diag, offs_m, offs_n, offs_d, seq_len, qk_scale,
            False, True, USE_TMA, WARP_SPEC, DOT_F32, EXP_F16, BLOCK_N, HEAD_DIM)
        acc, l_i, m_i = _attn_tile_loop(
            acc, l_i, m_i, q, Kh, Vh, row0, diag, tl.minimum(diag + BLOCK_M, seq_len), offs_m, offs_n, offs_d,
            seq_len, qk_scale, True, EVEN_N, USE_TMA, WARP_SPEC, DOT_F32, EXP_F16, BLOCK_N, HEAD_DIM)
    else:
        acc, l_i, m_i = _attn_tile_loop(
            acc, l_i, m_i, q, Kh, Vh, row0, 0, seq_len, offs_m, offs_n, offs_d, seq_len, qk_scale,
            False, EVEN_N, USE_TMA, WARP_SPEC, DOT_F32, EXP_F16, BLOCK_N, HEAD_DIM)

    out = (acc / l_i[:, None]).to(q.dtype)
    if USE_TMA:
        O.store([row0 + start_m * BLOCK_M, 0], out)
    else:
        o_ptrs = O + head + q_offs
        if EVEN_M:
            tl.store(o_ptrs, out)
        else:
            tl.store(o_ptrs, out, mask=offs_m[:, None] < seq_len)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, config: dict[str, Any]) -> torch.Tensor:
    """softmax(q k^T / sqrt(D)) v for (B, H, S, D) contiguous q, k, v of one dtype."""
    B, H, S, D = q.shape
    bm, bn = config["BLOCK_M"], config["BLOCK_N"]
    o = torch.empty_like(q)
    num_m = triton.cdiv(S, bm)
    grid = (num_m, B * H)
    if config["use_tma"]:
        from triton.tools.tensor_descriptor import TensorDescriptor

        def desc(t: torch.Tensor, rows: int) -> Any:
            return TensorDescriptor.from_tensor(t.view(B * H * S, D), [rows, D])

        args = (desc(q, bm), desc(k, bn), desc(v, bn), desc(o, bm))
    else:
        args = (q, k, v, o)
    _attn_fwd[grid](
        *args, S, (1.0 / math.sqrt(D)) * LOG2E,
        CAUSAL=causal, EVEN_M=S % bm == 0, EVEN_N=S % bn == 0, USE_TMA=config["use_tma"],
        WARP_SPEC=config["warp_specialize"], REVERSE_M=config["reverse_m"],
        # Triton 3.6's interpreter multiplies bfloat16 tiles as their raw uint16 bits (it stores
        # bf16 as uint16 for numpy); feeding it the same bf16 values widened to float32 gives
        # the products the tensor cores form (bf16 x bf16 is exact in float32, accumulated in
        # float32). Compiled kernels never take this branch.
        DOT_F32=INTERPRETED and q.dtype == torch.bfloat16,
        EXP_F16=config["exp_f16"],
        BLOCK_M=bm, BLOCK_N=bn, HEAD_DIM=D,
        num_warps=config["num_warps"], num_stages=config["num_stages"],
    )
    return o


def _gpu_identity() -> tuple[str | None, str | None]:
    if not torch.cuda.is_available():
        return None, None
    major, minor = torch.cuda.get_device_capability()
    return torch.cuda.get_device_name(), f"{major}.{minor}"


def resolve_config(spec: CaseSpec) -> dict[str, Any]:
    """The config a case runs with: its own, else the tuned one for this GPU and shape, else the default."""
    if spec.config:
        return dict(spec.config)
    if spec.device == "cuda":
        from harness import tuned

        name, cc = _gpu_identity()
        found = tuned.lookup(name, cc, spec)
        if found is not None and config_problem(found.config, spec) is None:
            return dict(found.config)
    cfg = dict(DEFAULT_CONFIG)
    # The default's blocks must still tile a small or odd shape.
    while cfg["BLOCK_M"] > 16 and cfg["BLOCK_M"] >= 2 * spec.seq:
        cfg["BLOCK_M"] //= 2
    cfg["BLOCK_N"] = min(cfg["BLOCK_N"], cfg["BLOCK_M"])
    return cfg


class TritonAttentionWorkload(AttentionWorkload):
    name = "triton_attention"
    backends = ("triton",)

    def check_supported(self, spec: CaseSpec) -> str | None:
        reason = super().check_supported(spec)
        if reason:
            return reason
        if spec.dtype not in DTYPES:
            return f"triton_attention supports {' and '.join(DTYPES)}, not {spec.dtype}"
        if spec.head_dim not in HEAD_DIMS:
            return f"triton_attention supports head_dim {', '.join(map(str, HEAD_DIMS))}, not {spec.head_dim}"
        if spec.device == "cpu" and not INTERPRETED:
            return "on the CPU the Triton kernel runs only in the interpreter: set TRITON_INTERPRET=1 before starting"
        if spec.device == "cuda" and INTERPRETED:
            return "TRITON_INTERPRET=1 is set, so the kernel would be interpreted, not compiled: unset it to run on the GPU"
        config = resolve_config(spec)
        if spec.device == "cuda":
            major, minor = torch.cuda.get_device_capability()
            if (major, minor) < (8, 0):
                return f"the Triton kernel needs compute capability 8.0 or newer; this GPU has {major}.{minor}"
            if (config["use_tma"] or config["warp_specialize"]) and major < 9:
                return (f"config uses {'TMA descriptors' if config['use_tma'] else 'warp specialisation'}, which need "
                        f"compute capability 9.0 (Hopper); this GPU has {major}.{minor}: use a config without them")
        return config_problem(config, spec)

    def make_fn(self, spec: CaseSpec, inputs: Any) -> Callable[[], torch.Tensor]:
        q, k, v = inputs
        if not (q.is_contiguous() and k.is_contiguous() and v.is_contiguous()):
            raise HarnessError("triton_attention: q, k and v must be contiguous (B, H, S, D) tensors")
        config = resolve_config(spec)
        problem = config_problem(config, spec)
        if problem:
            raise HarnessError(f"triton_attention: {problem}")
        causal = spec.causal
        return lambda: attention(q, k, v, causal=causal, config=config)


WORKLOAD = TritonAttentionWorkload()
