"""Each backend's time relative to the fastest backend at the same shape, with CIs: what readers of
kernel papers look at (the time-vs-S plot hides close backends under each other). Used by the
report (table and plot per family) and by the baseline gate's job summary."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Optional

from artifact.results.folder import groups_of
from harness import stats
from harness.records import CaseResult


@dataclass
class Relative:
    """One backend at one S: its time over the fastest backend's time there (1.0 for the fastest)."""

    seq: int
    backend: str
    fastest: str
    estimate: float
    low: Optional[float]  # 95% CI of the ratio; None for the fastest itself (exactly 1)
    high: Optional[float]


def to_fastest(cases: list[CaseResult]) -> dict[int, list[Relative]]:
    """Per S (cases of one family, ok and timed), every backend against the fastest, fastest first.
    The CI is the hierarchical bootstrap of the ratio of medians with the verdict's seed, so the
    report, the gate and the ratio claims give the same interval for the same pair."""
    by_seq: dict[int, list[CaseResult]] = defaultdict(list)
    for c in cases:
        if c.status == "ok" and c.timing is not None:
            by_seq[c.case.seq].append(c)
    out: dict[int, list[Relative]] = {}
    for seq in sorted(by_seq):
        ranked = sorted(by_seq[seq], key=lambda c: c.timing.summary.median_ms if c.timing else 0.0)
        fastest = ranked[0]
        rows = [Relative(seq, fastest.case.backend, fastest.case.backend, 1.0, None, None)]
        for other in ranked[1:]:
            ci = stats.hierarchical_ratio_ci(groups_of(other), groups_of(fastest), n_resamples=stats.VERDICT_BOOTSTRAP.resamples,
                                             seed=stats.VERDICT_BOOTSTRAP.seed)
            rows.append(Relative(seq, other.case.backend, fastest.case.backend, ci.estimate, ci.low, ci.high))
        out[seq] = rows
    return out


def markdown(rel: dict[int, list[Relative]]) -> list[str]:
    """A table: one row per S, one column per backend, time / fastest's time [95% CI]."""
    backends = sorted({r.backend for rows in rel.values() for r in rows})
    if not backends:
        return []
    lines = ["| S | " + " | ".join(backends) + " |", "|---|" + "---|" * len(backends)]
    for seq, rows in rel.items():
        at = {r.backend: r for r in rows}
        cells = []
        for b in backends:
            r = at.get(b)
            if r is None:
                cells.append("-")
            elif r.low is None:
                cells.append("**1 (fastest)**")
            else:
                cells.append(f"{r.estimate:.3f} [{r.low:.3f}, {r.high:.3f}]")
        lines.append(f"| {seq} | " + " | ".join(cells) + " |")
    return lines
