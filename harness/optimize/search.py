"""The search space of the bundled Triton kernel at one shape, most promising first (torch-free
until the configs are checked against the shape)."""

from __future__ import annotations

from typing import Any

from harness.records import CaseSpec


def config(bm: int, bn: int, w: int, s: int, tma: bool = False, ws: bool = False, rev: bool = False,
           exp16: bool = False) -> dict[str, Any]:
    """One config: every tunable of harness.workloads.triton_attention.TUNABLES."""
    return {"BLOCK_M": bm, "BLOCK_N": bn, "num_warps": w, "num_stages": s, "use_tma": tma,
            "warp_specialize": ws, "reverse_m": rev, "exp_f16": exp16}


# Fastest configs of the H100 tune run 1 (bench/triton_attention/run1-tune), over the D=64
# sweep, causal, bf16 and D=128 groups, best first.
LEADERS = [
    config(128, 64, 8, 3, True, ws=True), config(128, 64, 8, 3, True), config(128, 128, 4, 3, True),
    config(128, 64, 8, 4), config(128, 64, 8, 4, True), config(64, 128, 4, 2, True), config(128, 64, 4, 2, True),
    config(64, 64, 4, 3, True), config(64, 64, 4, 3), config(128, 64, 8, 3), config(128, 64, 4, 3),
]


def candidates(spec: CaseSpec) -> list[dict[str, Any]]:
    """Every config considered for this device and mask, in order, before the shape's own limits.

    On a GPU: block shapes 64/128 x 32/64/128, 4 or 8 warps, 2-4 pipeline stages, with and
    without TMA loads, a few warp-specialised variants, and for causal masks the reversed
    launch order. The order comes from the H100 landscape in bench/triton_attention/NOTES.md.
    On the CPU (the interpreter) warps, stages and TMA mean nothing: a few block shapes only.
    """
    if spec.device == "cpu":
        blocks = [(32, 16), (16, 16), (32, 32), (64, 32)]
        cands = [config(bm, bn, 4, 2) for bm, bn in blocks]
    else:
        # The leaders of the H100 landscape (bench/triton_attention/NOTES.md, runs 1-2) first,
        # then the grid with its slow corners (8 warps on 64-row blocks: 0.09-0.13 ms against
        # 0.057 at the seed shape) last, then the half-precision exponential, which lost 2-5%
        # everywhere in run 2 but stays in the space for other GPUs.
        cands = list(LEADERS)
        grid = [config(bm, bn, w, s, tma) for bm in (128, 64) for bn in (64, 128, 32) for w in (4, 8)
                for s in (3, 2, 4) for tma in (True, False)]
        cands += [c for c in grid if not (c["BLOCK_M"] == 64 and c["num_warps"] == 8)]
        # Warp specialisation compiles only with 8 warps here (Triton 3.6 asserts in
        # WSLowerToken with 4: run 1).
        cands += [config(128, bn, 8, s, True, ws=True) for bn in (64, 128) for s in (3, 2)]
        cands += [c for c in grid if c["BLOCK_M"] == 64 and c["num_warps"] == 8]
        cands += [dict(c, exp_f16=True) for c in LEADERS[:4]]
    if spec.causal:
        cands = [c for base in cands for c in (dict(base, reverse_m=True), base)]
    out: list[dict[str, Any]] = []
    for c in cands:
        if c not in out:
            out.append(c)
    return out


def search_space(spec: CaseSpec) -> list[dict[str, Any]]:
    """The configs to try at this shape, most promising first (the budget may end the list early).
    Configs that cannot run the shape (harness.workloads.triton_attention.config_problem) are
    left out here rather than failing later."""
    # Imported here: the kernel module decides between compiling and interpreting on import.
    from harness.workloads.triton_attention import config_problem

    return [c for c in candidates(spec) if config_problem(c, spec) is None]


def describe(config: dict[str, Any]) -> str:
    """A config in one short column: 'M128 N64 w8 s3 tma ws'."""
    s = f"M{config['BLOCK_M']} N{config['BLOCK_N']} w{config['num_warps']} s{config['num_stages']}"
    for key, tag in (("use_tma", "tma"), ("warp_specialize", "ws"), ("reverse_m", "rev"), ("exp_f16", "e16")):
        if config.get(key):
            s += f" {tag}"
    return s
