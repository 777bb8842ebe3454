"""Checking the records of a results folder before they are judged (torch-free).

Two rules make a verdict about the folder and about nothing else:

- What is read is what was verified. The manifest is the folder's table of contents: every file
  it lists must be a plain file inside the folder with the listed sha256 (harness.storage
  verify_manifest refuses '..', absolute paths, symbolic links, hidden and special files), and
  only the files it lists are read: env.json, ceilings.json, run.json and cases/<case_id>.json
  (artifact/results/folder.py reads them and calls the checks here).
- What is judged is recomputed from the raw samples. A case's TimingSummary and Throughput are
  derived data; they are recomputed here with the harness's own statistics
  (harness.stats.summarize_repetitions, same seed), the judges read the recomputed ones, and a
  case whose stored summary disagrees with its samples is refused: a summary left alone while
  the samples changed (or the reverse) is an edited file, whatever the manifest says.
- What is certified did the work (schema 4 on, issue 16). A case is `invalid` when the harness
  could not show that its timed calls did the real work; an ok case must carry the integrity
  checks, none failed, and an invalid one the check that failed. (artifact/results/integrity.py then
  holds every ok case to the roofline of the folder's own ceilings, trusting no verdict of the
  harness.) Files of schema 3 and before have neither and read as they always did.

Anything unusable is an ArtifactError: one line naming the file and the field, exit code 2.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Optional

from artifact.errors import ArtifactError
from harness import plan, stats, storage, versions
from harness.machine.gate import SHARED_PREFIX
from harness.plan import TimingConfig
from harness.records import STATUSES, CaseResult, CaseSpec, CeilingsRecord, Throughput, Timing, TimingSummary

DEFAULT_BOOTSTRAP_SEED = TimingConfig().seed  # what runs before schema 3 used (the plans never set another)
BOOTSTRAP_RESAMPLES = 10_000  # as harness.runner (summarize_repetitions' default)
# No plan takes more (plan.MAX_SAMPLES x plan.MAX_REPEATS); more is not a harness case.
MAX_CASE_SAMPLES = 500_000
# A day per call: no timed kernel call takes longer, and times near 1e150 overflowed the statistics.
MAX_SAMPLE_MS = 86_400_000.0
# Stored deterministic statistics (median, mean, min, max) must match the recomputed ones to
# rounding; the CI is a bootstrap interval whose method may have been refined since the run was
# measured, so its bounds need only lie within one CI width (or one timer tick) of the recomputed.
_EXACT_REL = 1e-9
_STD_REL = 1e-6
# The flags harness.stats sets; any other flag (host_bound, census_lock_differs) comes from the
# runner and is kept from the stored summary.
_STATS_FLAGS = {stats.FLAG_TIES, stats.FLAG_BCA_FALLBACK, stats.FLAG_DEGENERATE, stats.FLAG_RESOLUTION}
_ELEM_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}
INTEGRITY_SCHEMA = versions.INTEGRITY_SINCE


def _refuse(where: str, problem: str) -> ArtifactError:
    return ArtifactError(f"{where}: {problem}; re-run the benchmark, do not edit results")


# --------------------------------------------------------------------------- one case
def check_case(case: CaseResult, rel: str) -> CaseResult:
    """The case with its summary and throughput recomputed from the raw samples, after checking
    that the record is one the harness could have written. Raises ArtifactError naming the field."""
    spec = case.case
    if rel != f"{storage.CASES_DIR}/{spec.case_id}.json":
        raise _refuse(rel, f"holds case {spec.case_id}, not the case its file name says")
    statuses = STATUSES if case.schema_version >= INTEGRITY_SCHEMA else STATUSES[:3]
    if case.status not in statuses:
        raise _refuse(rel, f"status: {case.status!r} is not {', '.join(statuses[:-1])} or {statuses[-1]}"
                           + (f" (a schema {case.schema_version} file)" if case.status == "invalid" else ""))
    _check_integrity(case, rel)
    _check_correctness(case, rel)
    _check_memory(case, rel)
    if case.status == "ok" and case.timing is None:
        raise _refuse(rel, "status ok but no timing in the file")
    if case.timing is not None:
        case = replace(case, timing=recompute_timing(case.timing, rel))
        if case.throughput is not None:
            case = replace(case, throughput=_check_throughput(case, rel))
    return case


def recompute_timing(timing: Timing, rel: str) -> Timing:
    """The Timing with its summary recomputed from the raw samples (and checked against the stored one)."""
    reps = timing.repetitions
    if not reps:
        raise _refuse(rel, "timing.repetitions: empty; a timed case has at least one repetition")
    if len(reps) > plan.MAX_REPEATS:
        # 4000 one-sample repetitions cost 91 s and 1 GB in the hierarchical bootstrap (issue 19).
        raise _refuse(rel, f"timing.repetitions: {len(reps)}, more than any plan takes ({plan.MAX_REPEATS})")
    n = sum(len(r.samples_ms) for r in reps)
    if n > MAX_CASE_SAMPLES:
        raise _refuse(rel, f"timing: {n} samples, more than any plan takes ({MAX_CASE_SAMPLES})")
    for i, r in enumerate(reps):
        if not r.samples_ms:
            raise _refuse(rel, f"timing.repetitions[{i}].samples_ms: empty")
        bad = next((j for j, x in enumerate(r.samples_ms) if not 0 < x <= MAX_SAMPLE_MS), None)
        if bad is not None:
            raise _refuse(rel, f"timing.repetitions[{i}].samples_ms[{bad}]: {r.samples_ms[bad]!r} is not a time a "
                               f"kernel call takes (positive, at most {MAX_SAMPLE_MS:g} ms)")
        if r.inner_iters < 1:
            raise _refuse(rel, f"timing.repetitions[{i}].inner_iters: {r.inner_iters} is not a positive count")
    stored = timing.summary
    level = stored.ci_level if 0.0 < stored.ci_level < 1.0 else 0.95
    seed = timing.bootstrap_seed if timing.bootstrap_seed is not None else DEFAULT_BOOTSTRAP_SEED
    fresh = stats.summarize_repetitions([r.samples_ms for r in reps], [r.converged for r in reps], level=level,
                                        n_resamples=BOOTSTRAP_RESAMPLES, seed=seed)
    _compare_summary(stored, fresh, rel)
    fresh.flags = sorted(set(fresh.flags) | (set(stored.flags) - _STATS_FLAGS))
    return replace(timing, summary=fresh)


def _close(a: float, b: float, rel_tol: float) -> bool:
    return abs(a - b) <= rel_tol * max(abs(a), abs(b)) + 1e-300


def _compare_summary(stored: TimingSummary, fresh: TimingSummary, rel: str) -> None:
    where = f"{rel}: timing.summary"
    for name in ("n_samples", "n_repetitions", "converged"):
        if getattr(stored, name) != getattr(fresh, name):
            raise _refuse(f"{where}.{name}", f"{getattr(stored, name)!r} disagrees with the raw samples "
                                             f"({getattr(fresh, name)!r}): the summary and the samples do not belong together")
    for name, tol in (("median_ms", _EXACT_REL), ("mean_ms", _EXACT_REL), ("min_ms", _EXACT_REL),
                      ("max_ms", _EXACT_REL), ("std_ms", _STD_REL)):
        a, b = getattr(stored, name), getattr(fresh, name)
        if not _close(a, b, tol):
            raise _refuse(f"{where}.{name}", f"{a:.6g} is not what the raw samples give ({b:.6g}): the summary and the "
                                             "samples do not belong together")
    slack = max(fresh.ci_high_ms - fresh.ci_low_ms, 1e-9 * fresh.median_ms)
    if not (stored.ci_low_ms <= stored.ci_high_ms and fresh.ci_low_ms - slack <= stored.ci_low_ms
            and stored.ci_high_ms <= fresh.ci_high_ms + slack):
        raise _refuse(f"{where}.ci_low_ms/ci_high_ms",
                      f"[{stored.ci_low_ms:.6g}, {stored.ci_high_ms:.6g}] is not the CI of the raw samples "
                      f"([{fresh.ci_low_ms:.6g}, {fresh.ci_high_ms:.6g}])")


def check_ceilings(record: CeilingsRecord) -> None:
    """A ceiling's value is derived from its work and median time (rounded to 4 significant
    digits by the harness): one that disagrees was edited, and would shift every efficiency share."""
    for i, c in enumerate(record.ceilings):
        where = f"{storage.CEILINGS_FILE}: ceilings[{i}] ({c.metric})"
        if not (c.value > 0 and c.work > 0 and 0 < c.ci_low_ms <= c.median_ms <= c.ci_high_ms):
            raise _refuse(where, "value, work and times must be positive, the median inside its CI")
        per = 1e9 if c.unit.startswith("TFLOP") else 1e6  # work / ms -> TFLOP/s or GB/s
        if not _close(c.value, c.work / c.median_ms / per, 1e-3):
            raise _refuse(f"{where}.value", f"{c.value:g} {c.unit} is not its work over its median time "
                                            f"({c.work / c.median_ms / per:.6g})")


def attention_work(workload: str, spec: CaseSpec) -> Optional[tuple[float, float]]:
    """(FLOP, bytes) of one call of the attention workloads, as harness.workloads.sdpa computes
    them (torch-free copy; tests/artifact/results/test_checks.py checks they agree), or None for a
    workload this checker does not know."""
    if workload not in ("sdpa", "triton_attention") or spec.dtype not in _ELEM_BYTES:
        return None
    flops = 4.0 * spec.batch * spec.heads * spec.seq * spec.seq * spec.head_dim
    if spec.causal:
        flops /= 2
    nbytes = 4.0 * spec.batch * spec.heads * spec.seq * spec.head_dim * _ELEM_BYTES[spec.dtype]
    return flops, nbytes


def _check_throughput(case: CaseResult, rel: str) -> Throughput:
    t = case.throughput
    assert t is not None and case.timing is not None  # check_case calls it only then
    work = attention_work(case.case.workload, case.case)
    if work is not None:
        for name, want in zip(("flops", "bytes"), work):
            if not _close(getattr(t, name), want, 1e-9):
                raise _refuse(f"{rel}: throughput.{name}", f"{getattr(t, name):.6g} is not the work of this shape ({want:.6g})")
    if not (t.flops > 0 and t.bytes > 0):
        raise _refuse(f"{rel}: throughput", "work must be positive")
    sec = case.timing.summary.median_ms / 1e3
    fresh = replace(t, tflops=t.flops / sec / 1e12, gbps=t.bytes / sec / 1e9)
    for name in ("tflops", "gbps"):
        if not _close(getattr(t, name), getattr(fresh, name), 1e-6):
            raise _refuse(f"{rel}: throughput.{name}", f"{getattr(t, name):.6g} is not work over the median time "
                                                     f"({getattr(fresh, name):.6g})")
    return fresh


def _check_integrity(case: CaseResult, rel: str) -> None:
    """From schema 4 on, an ok case carries the evidence that its timed calls did the work and an
    invalid one the check that showed they did not: a file where the two disagree was edited (or
    written by a harness that skipped the checks), and its times certify nothing."""
    if case.schema_version < INTEGRITY_SCHEMA:
        return
    integrity = case.integrity
    failed = integrity.failed() if integrity is not None else []
    if case.status == "ok" and integrity is None:
        raise _refuse(f"{rel}: integrity", "status ok without the integrity checks (a schema "
                                           f"{case.schema_version} case must carry them)")
    if case.status == "ok" and failed:
        raise _refuse(f"{rel}: status", f"ok although its integrity check {failed[0].name} failed ({failed[0].detail})")
    shared = case.watch is not None and case.watch.shared
    if case.status == "ok" and shared:
        raise _refuse(f"{rel}: status", "ok although its watch saw another process on the GPU while it was timed "
                                        "(the harness makes such a case invalid: shared GPU)")
    says_shared = (case.reason or "").startswith(SHARED_PREFIX)
    if case.status == "invalid" and says_shared and not shared:
        raise _refuse(f"{rel}: watch", "status invalid for a shared GPU, but its watch saw no other process")
    if case.status == "invalid" and not failed and not says_shared:
        raise _refuse(f"{rel}: integrity", "status invalid but no integrity check failed: nothing says why")


def _check_correctness(case: CaseResult, rel: str) -> None:
    c = case.correctness
    if c is None:
        return
    if c.rel_error is not None and not (math.isfinite(c.rel_error) and c.rel_error >= 0.0):
        raise _refuse(f"{rel}: correctness.rel_error", f"{c.rel_error!r} is not a relative error (a norm ratio is >= 0)")
    if not c.tolerance >= 0.0:
        raise _refuse(f"{rel}: correctness.tolerance", f"{c.tolerance!r} is negative")
    within = c.rel_error is not None and c.rel_error <= c.tolerance
    if c.passed != within:
        raise _refuse(f"{rel}: correctness.passed", f"{c.passed} contradicts rel_error {c.rel_error!r} and tolerance "
                                                    f"{c.tolerance!r}")
    if case.status == "ok" and not c.passed:
        raise _refuse(f"{rel}: status", "ok although the case failed its correctness check")


def _check_memory(case: CaseResult, rel: str) -> None:
    m = case.memory
    if m is None:
        return
    for name in ("predicted_bytes", "peak_allocated_bytes", "peak_reserved_bytes", "free_bytes_before", "total_bytes"):
        v = getattr(m, name)
        if v is not None and v < 0:
            raise _refuse(f"{rel}: memory.{name}", f"{v} is negative")
        if v == 0 and name in ("peak_allocated_bytes", "peak_reserved_bytes") and case.case.device == "cuda":
            # A case that ran allocated its inputs at least: 0 is not a measurement (the memory
            # scaling fit took log(0) and ended in the catch-all, issue 19).
            raise _refuse(f"{rel}: memory.{name}", "0 is not the peak of a case that ran (it allocates its inputs)")
