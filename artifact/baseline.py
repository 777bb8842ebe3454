"""The pull-request gate: judge a run against a base run of the same GPU model, case by case.

"Does this change make any case slower, or wrong, than the base branch on the same GPU?" The
claims come from the base run on the fly; no reference file is involved. Per case present in both:

    ratio = median(run) / median(base), 95% CI by the hierarchical bootstrap (the verdict's seed)
    tolerance = max(floor, k x the runs' own repetition spread)   (spread: the largest
        |log(repetition median / case median)| of either run; 0 with one repetition each)
    slower beyond the tolerance   the whole CI above 1 + tolerance            -> FAIL (exit 1)
    slower / faster               the whole CI above / below 1 (stats.direction), within it -> PASS
    equivalent                    the CI holds 1                              -> PASS

A FAIL whose SM clock fell as much as its time rose (cycles per call flat: machine_state's
attribution) is the runner's state, not the change: `machine`, exit 4, judged apart. Correctness
is judged too: a case ok in the base and failed or invalid in the run, an error more than
`correctness_factor` x the base's, a repeat no longer bitwise-identical, or a base case the run
lacks, is a FAIL. The floor (3%, as derive-reference's) is what separate machines of one model
add to one run's CI: across the committed H200 runs (bench/h200), the largest case-by-case ratio
between two machines of the same plan is within it (tests/artifact/test_baseline.py reads them).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from artifact import __version__
from artifact.errors import ArtifactError
from artifact.report import relative
from artifact.results.folder import ResultSet, groups_of
from artifact.results.integrity import is_shared, why_invalid
from artifact.results.machine_state import CLOCK_EXPLAINS, attribution, clock_share
from artifact.textfmt import env_hardware, hardware_model, num
from artifact.verdict import EXIT_FAIL, EXIT_INVALID, EXIT_PASS, EXIT_SHARED_GPU
from harness import stats, storage, versions
from harness.records import CaseResult

KIND = "baseline_comparison"  # its version and format history: harness/versions.py
SCHEMA_VERSION = versions.current(KIND)
JSON_NAME, MD_NAME = "vs-baseline.json", "vs-baseline.md"  # folder.OUTPUTS has the prefix

# Per case: what the comparison found.
FASTER, SLOWER_OK, EQUIVALENT, SLOWER = "faster", "slower, within tolerance", "equivalent", "SLOWER"
WRONG, MISSING, MACHINE, INVALID, NEW, NOT_COMPARED = "WRONG", "MISSING", "MACHINE", "INVALID", "new", "not compared"
FAILING = (SLOWER, WRONG, MISSING)


@dataclass
class GateOptions:
    floor: float = 0.03  # no tolerance tighter than this (what machines of one model add to a run's CI)
    k: float = 2.0  # multiplier on the runs' own repetition spread
    correctness_factor: float = 4.0  # an error above this x the base's is a correctness change
    min_error: float = 1e-6  # errors below this are equal (float64 reference; a bitwise-exact base has 0)


@dataclass
class GateCase:
    case_id: str
    outcome: str  # one of the per-case outcomes above
    why: str
    base_ms: Optional[float] = None
    run_ms: Optional[float] = None
    ratio: Optional[float] = None  # run / base
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None
    tolerance: Optional[float] = None
    clock_ratio: Optional[float] = None  # run's SM clock while timing / the base's


@dataclass
class GateVerdict:
    status: str  # PASS | FAIL | INVALID
    exit_code: int
    run: str
    base: str
    hardware: str
    counts: dict[str, int]
    cases: list[GateCase]
    options: dict[str, float]
    notes: list[str] = field(default_factory=list)
    created_at: str = ""
    wall_s: Optional[float] = None
    tool_version: str = __version__
    schema_version: int = SCHEMA_VERSION
    kind: str = KIND


def same_hardware(run: ResultSet, base: ResultSet) -> None:
    """A baseline is only comparable on the same GPU model (or both on the CPU)."""
    if hardware_model(run.env) != hardware_model(base.env):
        raise ArtifactError(f"{run.folder} ran on {env_hardware(run.env)}, the baseline {base.folder} on "
                            f"{env_hardware(base.env)}; a baseline comparison needs the same GPU model: measure the "
                            "base on the same runner")


def _spread(case: CaseResult) -> float:
    """The largest |log(repetition median / the case's median)|: the run-to-run spread inside one run."""
    groups = groups_of(case)
    if len(groups) < 2:
        return 0.0
    meds = [statistics.median(g) for g in groups]
    est = case.timing.summary.median_ms if case.timing else statistics.median(meds)
    return max(abs(math.log(m / est)) for m in meds)


def _clock_ratio(run: CaseResult, base: CaseResult) -> Optional[float]:
    a = run.timing.clocks if run.timing else None
    b = base.timing.clocks if base.timing else None
    if a is None or b is None or not a.sm_mhz_median or not b.sm_mhz_median:
        return None
    return a.sm_mhz_median / b.sm_mhz_median


def _correctness(run: CaseResult, base: CaseResult, opts: GateOptions) -> Optional[str]:
    """Why the run's outputs are worse than the base's, or None."""
    rc, bc = run.correctness, base.correctness
    if rc is None or bc is None:
        return None
    if bc.passed and not rc.passed:
        return f"correctness failed (error {num(rc.rel_error)}, the base's {num(bc.rel_error)})"
    if rc.rel_error is None and bc.rel_error is not None:
        return "the output is no longer finite"
    if rc.rel_error is not None and bc.rel_error is not None:
        bound = max(opts.correctness_factor * bc.rel_error, opts.min_error)
        if rc.rel_error > bound:
            return (f"error {num(rc.rel_error)} against float64, over {opts.correctness_factor:g}x the base's "
                    f"{num(bc.rel_error)}")
    if bc.bitwise_repeat and rc.bitwise_repeat is False:
        return "two calls on the same inputs no longer give bitwise-identical outputs (the base's did)"
    return None


def judge_case(run: Optional[CaseResult], base: Optional[CaseResult], opts: GateOptions) -> GateCase:
    if run is None:
        assert base is not None
        cid = base.case.case_id
        if base.status != "ok":
            return GateCase(cid, NOT_COMPARED, f"absent from the run and {base.status} in the base")
        return GateCase(cid, MISSING, "measured ok in the base, absent from the run: a dropped case can hide a slowdown; "
                                      "measure the same plan")
    cid = run.case.case_id
    if base is None:
        return GateCase(cid, NEW, f"not in the base ({run.status} in the run)")
    if run.status == "invalid":
        if is_shared(run):
            return GateCase(cid, MACHINE, why_invalid(run))
        return GateCase(cid, INVALID, f"the timed calls were not shown to do the work: {why_invalid(run)}")
    if base.status != "ok":
        return GateCase(cid, NOT_COMPARED, f"{base.status} in the base ({base.reason or 'no reason'}), {run.status} in the run")
    if run.status != "ok":
        return GateCase(cid, WRONG, f"ok in the base, {run.status} in the run: {run.reason or 'no reason recorded'}")
    assert run.timing is not None and base.timing is not None  # ok cases carry their timing
    r_ms, b_ms = run.timing.summary.median_ms, base.timing.summary.median_ms
    ci = stats.hierarchical_ratio_ci(groups_of(run), groups_of(base), n_resamples=stats.VERDICT_BOOTSTRAP.resamples,
                                     seed=stats.VERDICT_BOOTSTRAP.seed)
    tol = max(opts.floor, opts.k * max(_spread(run), _spread(base)))
    clock = _clock_ratio(run, base)
    numbers = dict(base_ms=b_ms, run_ms=r_ms, ratio=ci.estimate, ci_low=ci.low, ci_high=ci.high, tolerance=tol, clock_ratio=clock)
    ratio_text = f"time {num(ci.estimate)}x the base's (95% CI {num(ci.low)}-{num(ci.high)})"
    wrong = _correctness(run, base, opts)
    if wrong:
        return GateCase(cid, WRONG, wrong, **numbers)
    if ci.low > 1.0 + tol:
        why = f"{ratio_text}: slower beyond the tolerance {tol:.1%}"
        if clock is not None:
            why += f"; SM clock {clock:.3g}x the base's: {attribution(ci.estimate, clock)}"
            share = clock_share(ci.estimate, clock)
            if share is not None and share >= CLOCK_EXPLAINS:
                return GateCase(cid, MACHINE, why + "; rerun both on a steady runner", **numbers)
        return GateCase(cid, SLOWER, why, **numbers)
    way = stats.direction(ci.low, ci.high)
    if way == stats.SLOWER:
        return GateCase(cid, SLOWER_OK, f"{ratio_text}: slower, but within the tolerance {tol:.1%}", **numbers)
    if way == stats.FASTER:
        return GateCase(cid, FASTER, f"{ratio_text}: faster", **numbers)
    return GateCase(cid, EQUIVALENT, f"{ratio_text}: no detectable difference", **numbers)


def compare(run: ResultSet, base: ResultSet, opts: GateOptions) -> GateVerdict:
    t0 = time.perf_counter()
    same_hardware(run, base)
    runs = {c.case.case_id: c for c in run.cases}
    bases = {c.case.case_id: c for c in base.cases}
    order = [c.case.case_id for c in base.cases] + [cid for cid in runs if cid not in bases]
    cases = [judge_case(runs.get(cid), bases.get(cid), opts) for cid in dict.fromkeys(order)]
    outcomes = (FASTER, EQUIVALENT, SLOWER_OK, SLOWER, WRONG, MISSING, MACHINE, INVALID, NEW, NOT_COMPARED)
    counts = {o: sum(c.outcome == o for c in cases) for o in outcomes}
    compared = counts[FASTER] + counts[EQUIVALENT] + counts[SLOWER_OK] + counts[SLOWER] + counts[WRONG]
    notes = []
    if counts[INVALID]:
        status, code = "INVALID", EXIT_INVALID
    elif counts[MACHINE]:
        status, code = "INVALID", EXIT_SHARED_GPU
        notes.append("the runner, not the change: a case was timed beside another process or at a clock that explains "
                     "its slowdown; those cases are not judged. Rerun on an idle, steady runner")
    elif any(counts[o] for o in FAILING):
        status, code = "FAIL", EXIT_FAIL
    elif compared == 0:
        raise ArtifactError(f"{run.folder} and {base.folder} have no case measured ok in both; measure the same plan")
    else:
        status, code = "PASS", EXIT_PASS
    return GateVerdict(status=status, exit_code=code, run=run.folder, base=base.folder, hardware=env_hardware(run.env),
                       counts={k: v for k, v in counts.items() if v}, cases=cases, options=asdict(opts), notes=notes,
                       created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       wall_s=round(time.perf_counter() - t0, 3))


def to_markdown(v: GateVerdict, run: ResultSet) -> str:
    lines = [f"## Against the baseline: {v.status} (exit {v.exit_code})", "",
             f"`{v.run}` against the base run `{v.base}`, both on {v.hardware}. Time ratio = run / base; "
             f"FAIL when its whole 95% CI lies above 1 + the tolerance (max({v.options['floor']:g}, "
             f"{v.options['k']:g} x the runs' repetition spread)).", "",
             "| case | outcome | base ms | run ms | run / base [95% CI] | tolerance | why |", "|---|---|---|---|---|---|---|"]
    order = {o: i for i, o in enumerate(FAILING + (MACHINE, INVALID, SLOWER_OK, FASTER, EQUIVALENT, NEW, NOT_COMPARED))}
    for c in sorted(v.cases, key=lambda c: order.get(c.outcome, 99)):
        ratio = f"{num(c.ratio)} [{num(c.ci_low)}, {num(c.ci_high)}]" if c.ratio is not None else "-"
        tol = f"{c.tolerance:.1%}" if c.tolerance is not None else "-"
        why = "" if c.outcome in (FASTER, EQUIVALENT, SLOWER_OK) else c.why  # the ratio column says it all
        lines.append(f"| {c.case_id} | {c.outcome} | {num(c.base_ms)} | {num(c.run_ms)} | {ratio} | {tol} | {why} |")
    lines += ["", "Counts: " + ", ".join(f"{k}: {n}" for k, n in v.counts.items()) + "."]
    lines += [f"Note: {n}." for n in v.notes]
    from artifact.report.family import family, family_name

    fams: dict[tuple, list[CaseResult]] = {}
    for rc in run.cases:
        fams.setdefault(family(rc.case), []).append(rc)
    for key, cs in fams.items():
        table = relative.markdown(relative.to_fastest(cs))
        if table:
            lines += ["", f"### The run: each backend's time over the fastest's ({family_name(key)})", "", *table]
    return "\n".join(lines) + "\n"


def write(v: GateVerdict, run: ResultSet, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    storage.atomic_write_text(out / JSON_NAME, json.dumps(asdict(v), indent=2, allow_nan=False) + "\n")
    storage.atomic_write_text(out / MD_NAME, to_markdown(v, run))
    return out / JSON_NAME, out / MD_NAME
