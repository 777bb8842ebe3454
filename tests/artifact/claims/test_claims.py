"""The judges of each claim kind, on random timings drawn here (never zeros), checked against
numbers computed independently (numpy/scipy) and against hand-made edge cases."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from resultsfolders import case_result, env_record
from scipy import stats as sps

from artifact import claims as C
from artifact.claims.parts import CaseSelector, Scope, Tolerance
from artifact.results.folder import ResultSet
from harness.records import CaseSpec

RNG_SEED = 7


def spec(backend="flash", seq=512, device="cuda", **kw) -> CaseSpec:
    return CaseSpec(workload="sdpa", backend=backend, batch=32, heads=8, seq=seq, head_dim=64, dtype="float16", device=device, **kw)


def sel(**values) -> CaseSelector:
    base = {"workload": "sdpa", "batch": 32, "heads": 8, "head_dim": 64, "dtype": "float16", "causal": False,
            "cache": "warm", "device": "cuda"}
    base.update(values)
    return CaseSelector({k: v if isinstance(v, list) else [v] for k, v in base.items()})


def timed(s: CaseSpec, median: float, spread: float, n: int, rng: np.random.Generator, reps: int = 1):
    groups = [median * np.exp(rng.normal(0.0, spread, n)) for _ in range(reps)]
    return case_result(s, groups, rng)


def results(cases, **env_kw) -> ResultSet:
    return ResultSet(folder="mem", env=env_record(**env_kw), cases=list(cases))


COMMON = dict(kind="", scope=Scope("any_gpu"), line=1)


def absolute(reference, rel, rule, metric="median_ms", **kw):
    return C.AbsoluteClaim(id="a", case=sel(backend="flash", seq=512), metric=metric, reference=reference,
                           tolerance=Tolerance(rule=rule, rel=rel, derivation="test"), **{**COMMON, "kind": "absolute", **kw})


# --------------------------------------------------------------------------- absolute
def test_absolute_point_and_equivalence_rules():
    rng = np.random.default_rng(RNG_SEED)
    case = timed(spec(), 0.08, 0.02, 400, rng)
    s = case.timing.summary
    r = results([case])
    near = absolute(s.median_ms * 1.02, 0.05, "equivalence").judge(r)
    assert near.status == C.PASS and near.rule == "equivalence"
    assert (near.measured, near.ci_low, near.ci_high) == (s.median_ms, s.ci_low_ms, s.ci_high_ms)
    # tolerance_used: the CI's farther end on the log scale over log(1 + rel).
    far_end = max(abs(math.log(s.ci_low_ms / near.reference)), abs(math.log(s.ci_high_ms / near.reference)))
    assert near.tolerance_used == pytest.approx(far_end / math.log(1.05))
    assert (near.band_low, near.band_high) == pytest.approx((near.reference / 1.05, near.reference * 1.05))
    off = absolute(s.median_ms * 1.15, 0.05, "point").judge(r)
    assert off.status == C.FAIL and "outside band" in off.why


def test_equivalence_is_stricter_than_point_when_the_ci_is_wide():
    rng = np.random.default_rng(RNG_SEED + 1)
    case = timed(spec(), 0.08, 0.25, 12, rng)  # few noisy samples: a wide CI
    s = case.timing.summary
    assert (s.ci_high_ms - s.ci_low_ms) / s.median_ms > 0.1
    r = results([case])
    assert absolute(s.median_ms, 0.04, "point").judge(r).status == C.PASS
    eq = absolute(s.median_ms, 0.04, "equivalence").judge(r)
    assert eq.status == C.FAIL and "not inside band" in eq.why and eq.tolerance_used > 1


def test_absolute_throughput_maps_the_time_ci_end_for_end():
    rng = np.random.default_rng(RNG_SEED + 2)
    case = timed(spec(), 0.08, 0.02, 300, rng)
    v = absolute(case.throughput.tflops, 0.05, "equivalence", metric="tflops").judge(results([case]))
    s, flops = case.timing.summary, case.throughput.flops
    assert v.status == C.PASS and v.unit == "TFLOP/s"
    assert v.ci_low == pytest.approx(flops / (s.ci_high_ms * 1e-3) / 1e12)
    assert v.ci_high == pytest.approx(flops / (s.ci_low_ms * 1e-3) / 1e12)


# --------------------------------------------------------------------------- missing cases and scope
def test_missing_required_case_fails_and_optional_skips():
    rng = np.random.default_rng(RNG_SEED + 3)
    other = timed(spec(seq=256), 0.03, 0.02, 50, rng)
    v = absolute(0.08, 0.05, "point").judge(results([other]))
    assert v.status == C.FAIL and v.missing and v.why.startswith("missing:")
    v = absolute(0.08, 0.05, "point", required=False).judge(results([other]))
    assert v.status == C.SKIP and v.missing


def test_failed_case_fails_and_skipped_case_counts_as_missing():
    rng = np.random.default_rng(RNG_SEED + 4)
    case = timed(spec(), 0.08, 0.02, 50, rng)
    broken = replace(case, status="failed", reason="CUDA error: illegal memory access")
    v = absolute(0.08, 0.05, "point", required=False).judge(results([broken]))
    assert v.status == C.FAIL and "illegal memory access" in v.why
    skipped = replace(case, status="skipped", reason="backend not supported on this GPU")
    assert absolute(0.08, 0.05, "point", required=False).judge(results([skipped])).status == C.SKIP
    v = absolute(0.08, 0.05, "point").judge(results([skipped]))
    assert v.status == C.FAIL and "not supported" in v.why


def test_out_of_scope_is_skip_with_the_hardware_named():
    rng = np.random.default_rng(RNG_SEED + 5)
    case = timed(spec(), 0.08, 0.02, 50, rng)
    claim = absolute(0.08, 0.05, "point", scope=Scope("gpu_model", gpu_name="NVIDIA H100 80GB HBM3"))
    v = claim.judge(results([case]))
    assert v.status == C.SKIP and "NVIDIA H100 80GB HBM3" in v.why and "NVIDIA L4" in v.why


# --------------------------------------------------------------------------- ratio and ranking
def test_ratio_estimate_is_the_ratio_of_medians():
    rng = np.random.default_rng(RNG_SEED + 6)
    a = timed(spec("cudnn"), 0.07, 0.03, 300, rng)
    b = timed(spec("flash"), 0.08, 0.03, 300, rng)
    expected = np.median(a.timing.repetitions[0].samples_ms) / np.median(b.timing.repetitions[0].samples_ms)
    claim = C.RatioClaim(id="r", numerator=sel(backend="cudnn", seq=512), denominator=sel(backend="flash", seq=512),
                         reference=0.875, tolerance=Tolerance(rule="equivalence", rel=0.05, derivation="t"), **{**COMMON, "kind": "ratio"})
    v = claim.judge(results([a, b]))
    assert v.measured == pytest.approx(expected)
    assert v.ci_low < expected < v.ci_high
    assert v.status == (C.PASS if 0.875 / 1.05 <= v.ci_low and v.ci_high <= 0.875 * 1.05 else C.FAIL)
    assert sorted(v.cases) == sorted([a.case.case_id, b.case.case_id])


def ranking(order, rule="significant"):
    return C.RankingClaim(id="k", shape=CaseSelector({k: v for k, v in sel(seq=512).values.items()}), order=order, rule=rule,
                          **{**COMMON, "kind": "ranking"})


def test_ranking_holds_breaks_and_ties():
    rng = np.random.default_rng(RNG_SEED + 7)
    cases = [timed(spec("cudnn"), 0.06, 0.02, 300, rng), timed(spec("flash"), 0.08, 0.02, 300, rng),
             timed(spec("efficient"), 0.08, 0.02, 300, rng), timed(spec("math"), 0.25, 0.02, 300, rng)]
    r = results(cases)
    assert ranking([["cudnn"], ["flash", "efficient"], ["math"]]).judge(r).status == C.PASS
    # flash and efficient share a true median: no order between them can be claimed.
    v = ranking([["cudnn"], ["flash"], ["efficient"], ["math"]]).judge(r)
    assert v.status == C.FAIL and "flash vs efficient" in v.why
    wrong = ranking([["math"], ["cudnn"]], rule="point").judge(r)
    assert wrong.status == C.FAIL and wrong.measured > 1


# --------------------------------------------------------------------------- scaling and memory
def test_scaling_exponent_matches_a_least_squares_fit():
    rng = np.random.default_rng(RNG_SEED + 8)
    seqs = [256, 512, 1024, 2048]
    cases = [timed(spec(seq=s), 1e-6 * s**1.9, 0.02, 200, rng) for s in seqs]
    medians = [np.median(c.timing.repetitions[0].samples_ms) for c in cases]
    fit = sps.linregress(np.log(seqs), np.log(medians))
    claim = C.ScalingClaim(id="s", case=sel(backend="flash"), seqs=seqs, reference=1.9,
                           tolerance=Tolerance(rule="equivalence", abs=0.05, derivation="t"), **{**COMMON, "kind": "scaling"})
    v = claim.judge(results(cases))
    assert v.measured == pytest.approx(fit.slope)
    assert v.ci_low < fit.slope < v.ci_high and v.ci_low < 1.9 < v.ci_high
    assert v.status == C.PASS
    assert replace(claim, reference=2.0).judge(results(cases)).status == C.FAIL


def test_memory_bound_and_growth():
    rng = np.random.default_rng(RNG_SEED + 9)
    seqs = [256, 512, 1024]
    cases = [timed(spec("math", seq=s), 0.01 * s / 256, 0.02, 30, rng) for s in seqs]
    peak = cases[1].memory.peak_allocated_bytes
    bound = C.MemoryBoundClaim(id="m", case=sel(backend="math", seq=512), max_peak_bytes=peak, **{**COMMON, "kind": "memory"})
    assert bound.judge(results(cases)).status == C.PASS
    v = replace(bound, max_peak_bytes=peak - 1).judge(results(cases))
    assert v.status == C.FAIL and str(peak) in v.why
    peaks = [c.memory.peak_allocated_bytes for c in cases]
    slope = sps.linregress(np.log(seqs), np.log(peaks)).slope
    growth = C.MemoryGrowthClaim(id="g", case=sel(backend="math"), seqs=seqs, reference=round(slope, 2),
                           tolerance=Tolerance(rule="point", abs=0.05, derivation="t"), **{**COMMON, "kind": "memory"})
    v = growth.judge(results(cases))
    assert v.measured == pytest.approx(slope) and v.status == C.PASS
    cpu_cases = [timed(spec("math", seq=512, device="cpu"), 1.0, 0.02, 30, rng)]
    cpu_bound = replace(bound, case=sel(backend="math", seq=512, device="cpu"), scope=Scope("any"), required=False)
    v = cpu_bound.judge(results(cpu_cases, device="cpu"))
    assert v.status == C.SKIP and "no peak-memory reading" in v.why


# --------------------------------------------------------------------------- correctness and determinism
def test_correctness_and_determinism_over_several_cases():
    rng = np.random.default_rng(RNG_SEED + 10)
    cases = [timed(spec(b, seq=s), 0.05, 0.02, 30, rng) for b in ("flash", "cudnn") for s in (256, 512)]
    worst = max(c.correctness.rel_error for c in cases)
    corr = C.CorrectnessClaim(id="c", cases=sel(backend=["flash", "cudnn"], seq=[256, 512]), max_rel_error=worst,
                              **{**COMMON, "kind": "correctness"})
    v = corr.judge(results(cases))
    assert v.status == C.PASS and v.measured == worst and len(v.cases) == 4
    v = replace(corr, max_rel_error=worst * 0.999).judge(results(cases))
    assert v.status == C.FAIL and "over the bound" in v.why
    det = C.DeterminismClaim(id="d", cases=sel(backend="flash", seq=[256, 512]), **{**COMMON, "kind": "determinism"})
    assert det.judge(results(cases)).status == C.PASS
    cases[1] = replace(cases[1], correctness=replace(cases[1].correctness, bitwise_repeat=False))
    v = det.judge(results(cases))
    assert v.status == C.FAIL and cases[1].case.case_id in v.why
    nocheck = [replace(c, correctness=None) for c in cases]
    assert corr.judge(results(nocheck)).status == C.FAIL


# --------------------------------------------------------------------------- environment
def test_environment_claim():
    claim = C.EnvironmentClaim(id="e", tf32_off=True, deterministic=True, min_nvidia_driver="535.104",
                               **{**COMMON, "kind": "environment", "scope": Scope("any")})
    assert claim.judge(results([], driver="550.90.07")).status == C.PASS
    v = claim.judge(results([], tf32=True))
    assert v.status == C.FAIL and "TF32 matmul=True" in v.why
    v = claim.judge(results([], driver="535.54.03"))
    assert v.status == C.FAIL and "535.54.03 (need >= 535.104)" in v.why
    v = claim.judge(results([], device="cpu"))  # a driver claim on a CPU run: not recorded, and said so
    assert v.status == C.FAIL and "not recorded (run on the CPU)" in v.why
    env_cpu = replace(claim, min_nvidia_driver=None).judge(results([], device="cpu"))
    assert env_cpu.status == C.PASS


# --------------------------------------------------------------------------- efficiency
def _ceilings(matmul_tflops: float):
    from harness.records import Ceiling, CeilingsRecord

    return CeilingsRecord(created_at="", device="cuda", gpu_name="NVIDIA L4", ceilings=[
        Ceiling(metric="matmul_tflops", value=matmul_tflops, unit="TFLOP/s", dtype="float16", what="test",
                median_ms=1.0, ci_low_ms=1.0, ci_high_ms=1.0, work=1.0, n_samples=30)])


def efficiency(reference, rel, rule="point"):
    return C.EfficiencyClaim(id="e", case=sel(backend="flash", seq=512), ceiling="matmul_tflops", reference=reference,
                             tolerance=Tolerance(rule=rule, rel=rel, derivation="test"), **{**COMMON, "kind": "efficiency"})


def test_efficiency_is_the_share_of_the_runs_own_ceiling_one_sided():
    rng = np.random.default_rng(RNG_SEED + 40)
    case = timed(spec(), 0.08, 0.02, 300, rng)
    share = case.throughput.tflops / 200.0
    r = replace(results([case]), ceilings=_ceilings(200.0))
    ok = efficiency(share, 0.05).judge(r)
    assert ok.status == C.PASS and ok.measured == pytest.approx(share)
    assert ok.band_low == pytest.approx(share / 1.05) and ok.band_high is None
    # faster than the reference never fails a lower bound
    assert efficiency(share * 0.5, 0.05).judge(r).status == C.PASS
    slow = efficiency(share * 1.10, 0.05).judge(r)  # the case reaches 10% less than claimed
    assert slow.status == C.FAIL and slow.tolerance_used > 1
    # the same run on a card with a 10% lower ceiling: the share is back where it was claimed
    assert efficiency(share * 1.10, 0.05).judge(replace(r, ceilings=_ceilings(200.0 / 1.10))).status == C.PASS


def test_efficiency_without_ceilings_is_missing_not_a_pass():
    rng = np.random.default_rng(RNG_SEED + 41)
    v = efficiency(0.4, 0.05).judge(results([timed(spec(), 0.08, 0.02, 100, rng)]))
    assert v.status == C.FAIL and v.missing and "ceilings.json" in v.why


def test_environment_claim_fails_a_run_timed_with_the_fill():
    rng = np.random.default_rng(RNG_SEED + 42)
    claim = C.EnvironmentClaim(id="env", fill_off=True, **{**COMMON, "kind": "environment"})
    case = timed(spec(), 0.08, 0.02, 100, rng)
    env_off = env_record()
    env_off.lock["fill_uninitialized_memory"] = False
    good = replace(case, timing=replace(case.timing, fill_uninitialized_memory=False))
    assert claim.judge(ResultSet("x", env_off, [good])).status == C.PASS
    # the lock said off, but the process that timed had it on: that is what counts
    bad = replace(case, timing=replace(case.timing, fill_uninitialized_memory=True))
    assert claim.judge(ResultSet("x", env_off, [bad])).status == C.FAIL
    # a run of the harness from before issue 8 did not record it at all
    assert claim.judge(ResultSet("x", env_record(), [case])).status == C.FAIL
