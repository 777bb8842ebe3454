"""Comparing the timings of two measured cases (torch-free).

The verdict rests on one number only: the confidence interval of the ratio candidate/baseline of
the median times. Wholly below 1: faster; wholly above 1: slower; otherwise no detectable
difference. Whether the two cases' own CIs overlap is never consulted: two 95% CIs can overlap
while the difference is significant (the seed judged significance that way).

Two cases of different shape (CaseSpec.shape_key) are a *scaling* result: how time grows with the
problem, never a speedup (the seed called S=128 vs S=512 a "5.09x speedup"). Such a Comparison
has relation "scaling", no speedup, and says so in its verdict. The rule for "faster" is
harness.stats.direction, the one every verdict and report uses.

Effect sizes are reported beside the verdict, not used for it, with signs such that a negative
value means the candidate tends to be faster (shorter times): hedges_g(candidate, baseline),
cliffs_delta(candidate, baseline); mannwhitney_u is the U of the candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from harness import effects, stats, versions
from harness.errors import HarnessError, RecordError
from harness.ncu import NcuProfile
from harness.records import CaseResult, from_dict, load_json

KIND_COMPARISON = "comparison"  # its version and format history: harness/versions.py

# What the two cases are to each other (Comparison.relation).
RELATION_SPEEDUP = "speedup"
RELATION_SCALING = "scaling"

VERDICT_FASTER = "faster"
VERDICT_SLOWER = "slower"
VERDICT_NO_DIFFERENCE = "no detectable difference at this precision"
VERDICT_SCALING = "scaling result (the cases differ in shape or numerics), not a speedup"

# CaseSpec fields that make up shape_key, to say which of them differ.
_SHAPE_FIELDS = ("batch", "heads", "seq", "head_dim", "dtype", "causal", "cache", "device")


@dataclass
class Comparison:
    relation: str  # "speedup" | "scaling"
    baseline_id: str
    candidate_id: str
    ratio: float  # candidate median time / baseline median time
    ratio_ci_low: float
    ratio_ci_high: float
    speedup: Optional[float]  # 1 / ratio; None for a scaling result
    hedges_g: Optional[float]  # None when undefined (no spread in either case, or < 2 samples)
    cliffs_delta: float
    cliffs_magnitude: str
    mannwhitney_u: float
    mannwhitney_p: float
    verdict: str
    level: float
    ci_method: str  # how the ratio CI was computed ("bca", "percentile", "hierarchical_percentile")
    speedup_ci_low: Optional[float]  # 1 / ratio_ci_high; None for a scaling result
    speedup_ci_high: Optional[float]
    baseline_shape: str
    candidate_shape: str
    n_baseline: int  # samples, all repetitions
    n_candidate: int
    baseline_repetitions: int
    candidate_repetitions: int
    notes: list[str] = field(default_factory=list)
    ncu: Optional[NcuProfile] = None  # the candidate's profile (harness optimize, when the target is met)
    schema_version: int = versions.current(KIND_COMPARISON)
    kind: str = KIND_COMPARISON


def _repetition_samples(result: CaseResult, role: str) -> list[list[float]]:
    cid = result.case.case_id
    if result.status != "ok":
        why = f" ({result.reason})" if result.reason else ""
        raise HarnessError(f"{role} {cid}: status is {result.status!r}{why}; compare needs two measured cases")
    if result.timing is None or not result.timing.repetitions:
        raise HarnessError(f"{role} {cid}: timing.repetitions is empty; re-run the case to measure it")
    groups = []
    for i, rep in enumerate(result.timing.repetitions):
        if not rep.samples_ms:
            raise HarnessError(f"{role} {cid}: timing.repetitions[{i}].samples_ms is empty; re-run the case")
        groups.append([float(x) for x in rep.samples_ms])
    return groups


def _verdict(relation: str, low: float, high: float) -> str:
    if relation == RELATION_SCALING:
        return VERDICT_SCALING
    return {stats.FASTER: VERDICT_FASTER, stats.SLOWER: VERDICT_SLOWER}.get(stats.direction(low, high), VERDICT_NO_DIFFERENCE)


def compare_cases(
    baseline: CaseResult,
    candidate: CaseResult,
    level: float = 0.95,
    seed: int = 0,
    n_resamples: int = 10_000,
) -> Comparison:
    """Compare candidate against baseline from the raw per-sample times of all repetitions.

    Ratio CI: with one repetition on each side, `stats.ratio_of_medians_ci` (BCa, percentile
    fallback); otherwise `stats.hierarchical_ratio_ci`, which resamples repetitions too, so that
    run-to-run variation (17% between two L4 runs of one configuration) widens the interval.
    """
    base_groups = _repetition_samples(baseline, "baseline")
    cand_groups = _repetition_samples(candidate, "candidate")
    base_shape, cand_shape = baseline.case.shape_key, candidate.case.shape_key
    relation = RELATION_SPEEDUP if base_shape == cand_shape else RELATION_SCALING

    ci = stats.hierarchical_ratio_ci(cand_groups, base_groups, n_resamples=n_resamples, level=level, seed=seed)
    base, cand = np.concatenate(base_groups), np.concatenate(cand_groups)
    notes: list[str] = []

    if relation == RELATION_SCALING:
        differing = [
            f"{f} {getattr(baseline.case, f)} -> {getattr(candidate.case, f)}"
            for f in _SHAPE_FIELDS
            if getattr(baseline.case, f) != getattr(candidate.case, f)
        ]
        notes.append(
            f"shapes differ ({', '.join(differing)}): the ratio says how time scales between "
            f"{base_shape} and {cand_shape}; it is not a speedup of one implementation over another"
        )
    if len(base_groups) == 1 and len(cand_groups) == 1:
        notes.append(
            "one repetition per case: the CI covers sampling noise within a run, not run-to-run "
            "variation; measure with repeats > 1 for a between-run aware comparison"
        )
    for flag in ci.flags:
        notes.append(f"ratio CI flag: {flag}")
    for result, role in ((baseline, "baseline"), (candidate, "candidate")):
        summary = result.timing.summary if result.timing else None
        if summary is not None and not summary.converged:
            notes.append(f"{role} did not reach its precision target in every repetition")

    g: Optional[float] = None
    if base.size >= 2 and cand.size >= 2:
        g = effects.hedges_g(cand, base)
        if not np.isfinite(g):
            notes.append("hedges_g undefined: neither case has any spread in its samples")
            g = None
    else:
        notes.append("hedges_g undefined: needs at least 2 samples per case")
    delta = effects.cliffs_delta(cand, base)
    u, p = effects.mann_whitney(cand, base)

    speedup = speedup_low = speedup_high = None
    if relation == RELATION_SPEEDUP:
        speedup, speedup_low, speedup_high = 1.0 / ci.estimate, 1.0 / ci.high, 1.0 / ci.low

    return Comparison(
        relation=relation,
        baseline_id=baseline.case.case_id,
        candidate_id=candidate.case.case_id,
        ratio=ci.estimate,
        ratio_ci_low=ci.low,
        ratio_ci_high=ci.high,
        speedup=speedup,
        hedges_g=g,
        cliffs_delta=delta,
        cliffs_magnitude=effects.cliffs_magnitude(delta),
        mannwhitney_u=u,
        mannwhitney_p=p,
        verdict=_verdict(relation, ci.low, ci.high),
        level=float(level),
        ci_method=ci.method,
        speedup_ci_low=speedup_low,
        speedup_ci_high=speedup_high,
        baseline_shape=base_shape,
        candidate_shape=cand_shape,
        n_baseline=int(base.size),
        n_candidate=int(cand.size),
        baseline_repetitions=len(base_groups),
        candidate_repetitions=len(cand_groups),
        notes=notes,
    )


def load_comparison(path: Path | str) -> Comparison:
    """Read a comparison.json written with harness.storage.write_record (errors name file and field).
    A version 2 file named the relation `kind`; it is read as `relation`."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: expected a JSON object at the top level")
    versions.check(path, KIND_COMPARISON, data.get("schema_version"))
    if data.get("kind") in (RELATION_SPEEDUP, RELATION_SCALING):
        data = {**data, "relation": data["kind"], "kind": KIND_COMPARISON}
    try:
        return from_dict(Comparison, data)
    except RecordError as exc:
        raise RecordError(f"{path}: {exc}") from None
