"""Splitting a plan's cases into shards that take about the same time (torch-free).

`harness bench --shard I/N` measures the I-th of N shards; `artifact run --gpus all` and
`--executor slurm --shards N` start one per GPU or job. The split must be the same wherever it is
computed (every shard computes it on its own), so it depends on the plan alone: each case's cost
is estimated from its work (attention FLOPs, times a factor per backend for the slow ones), and
the cases are dealt longest first to the shard with the least estimated work (LPT), ties broken by
case id. A shard never gets a case twice and every case lands in exactly one shard.
"""

from __future__ import annotations

import re

from harness.errors import HarnessError
from harness.records import CaseSpec

# Measured on the H200 (bench/h200): math takes ~27x flash's time at S=4096, efficient ~2.2x.
_BACKEND_WEIGHT = {"math": 27.0, "efficient": 2.2}
# Every case also pays correctness, memory, warm-up, adaptive sampling and census: on the H200 a
# case takes about 1 s plus 2e-13 s per weighted FLOP (the committed runs' phases_s: math at
# S=4096, 3e13 weighted FLOP, takes 7 s; most cases 1-1.5 s). In FLOP units that second is 5e12.
# The first estimate (2e11) gave one shard of two the math S=4096 case alone: 7 s against 38 s
# (bench/h200/machine-F). tests/harness/test_shard.py checks the balance on the committed runs.
_FIXED = 5.0e12


def parse(text: str) -> tuple[int, int]:
    """'I/N' -> (I, N), 0 <= I < N."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m:
        raise HarnessError(f"--shard: expected I/N such as 0/2, got {text!r}")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= i < n:
        raise HarnessError(f"--shard: need 0 <= I < N, got {i}/{n}")
    return i, n


def cost(spec: CaseSpec) -> float:
    flops = 4.0 * spec.batch * spec.heads * spec.seq * spec.seq * spec.head_dim * (0.5 if spec.causal else 1.0)
    return _FIXED + flops * _BACKEND_WEIGHT.get(spec.backend, 1.0)


def assign(cases: list[CaseSpec], count: int) -> list[list[CaseSpec]]:
    """The cases of each of `count` shards, each shard in the plan's own order."""
    if count < 1:
        raise HarnessError(f"cannot split a plan into {count} shards")
    order = {c.case_id: i for i, c in enumerate(cases)}
    load = [0.0] * count
    owner: dict[str, int] = {}
    for c in sorted(cases, key=lambda c: (-cost(c), c.case_id)):
        k = min(range(count), key=lambda j: (load[j], j))
        owner[c.case_id] = k
        load[k] += cost(c)
    return [sorted((c for c in cases if owner[c.case_id] == k), key=lambda c: order[c.case_id]) for k in range(count)]


def select(cases: list[CaseSpec], index: int, count: int) -> list[CaseSpec]:
    shard = assign(cases, count)[index]
    if not shard:
        raise HarnessError(f"--shard {index}/{count}: this shard has no case (the plan has {len(cases)}); use fewer shards")
    return shard
