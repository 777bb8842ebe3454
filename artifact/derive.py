"""Derive a reference file from several independent result folders of the same hardware.

Tolerances come from the measured run-to-run spread, never from a guess, and each claim records
how its tolerance was derived:

    relative tolerance = max(k * max_rel_dev + max_ci_rel_halfwidth, floor)

where max_rel_dev is the largest |run estimate / reference - 1| over the runs (the reference is
the median of the run estimates) and max_ci_rel_halfwidth the widest CI any run had (with rule
"equivalence" the whole CI of a rerun must fit inside the band, so the band must be wider than a
CI). Exponents use the same formula on an absolute scale. Cases that are not produced ok by every
run (absent, skipped, failed, or invalid: timed calls not shown to do the work), spreads too wide
to claim anything, rankings that are not separated in every run, and repeats that were not
bitwise-identical in every run are written under `not_claimed` with the reason, so the file says
what was left out as well as what is claimed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import yaml

from artifact import __version__
from artifact.claims import (
    CEILING_METRICS,
    AbsoluteClaim,
    Claim,
    CorrectnessClaim,
    DeterminismClaim,
    EfficiencyClaim,
    EnvironmentClaim,
    MemoryBoundClaim,
    MemoryGrowthClaim,
    RankingClaim,
    RatioClaim,
    ScalingClaim,
)
from artifact.claims.parts import CASE_FIELDS, CaseSelector, Scope, Tolerance
from artifact.errors import ArtifactError
from artifact.folder import ResultSet, groups_of, load_results
from artifact.integrity import why_invalid
from artifact.reference import REFERENCE_VERSION, Peak, RunSpec, load_reference, parse_hardware
from artifact.textfmt import env_hardware
from artifact.yamlnode import load_yaml
from harness import stats, storage
from harness.records import CaseResult, CaseSpec, Timing
from harness.workloads import SDPA_BACKENDS


@dataclass
class DeriveOptions:
    name: str
    description: str = ""
    k: float = 2.0  # multiplier on the observed run-to-run deviation
    floor_rel: float = 0.03  # no relative tolerance tighter than this
    floor_abs: float = 0.05  # no exponent tolerance tighter than this
    max_rel: float = 0.5  # a spread wider than this is not claimed at all (written under not_claimed)
    min_runs: int = 3
    min_machines: int = 2
    ratio_pairs: list[tuple[str, str]] = field(default_factory=lambda: [("cudnn", "flash")])
    correctness_factor: float = 4.0  # bound = factor * largest observed error (fresh random inputs each run)
    memory_margin: float = 0.05  # bound = (1 + margin) * largest observed peak
    # A ranking pair needs faster/slower <= 1/(1+gap) in every run (and below the runs' own spread).
    ranking_min_gap: float = 0.01
    ranking_rule: str = "significant"  # how a rerun is judged; "point" for noisy, shared CPUs
    portable_only: bool = False  # correctness, determinism, environment, rankings only (CPU smoke)
    peaks: list[Peak] = field(default_factory=list)
    peaks_gpu: Optional[str] = None  # the GPU model the peaks were measured on
    run: Optional[RunSpec] = None  # the plan or profile a run for this reference follows
    # Ratio, ranking, scaling and efficiency claims are offered to the compute-capability family
    # and kept there only if they hold on these runs of other GPU models of that family.
    family_evidence: list[Path] = field(default_factory=list)
    evidence_peaks: list[Peak] = field(default_factory=list)  # ceilings for evidence runs without ceilings.json
    retire_timing: Optional[str] = None  # why no time-based claim is derived (absolute, ratio, ...)


def _sig(x: float, digits: int = 6) -> float:
    return float(f"{x:.{digits}g}")


def _timed(case: CaseResult) -> Timing:
    """The timing of a case every run measured ok (the harness writes timing with status ok)."""
    if case.timing is None:
        raise ArtifactError(f"case {case.case.case_id}: status ok but no timing in its file; re-run the case")
    return case.timing


def _order_key(spec: CaseSpec) -> tuple:
    b = SDPA_BACKENDS.index(spec.backend) if spec.backend in SDPA_BACKENDS else len(SDPA_BACKENDS)
    return (spec.workload, spec.dtype, spec.causal, spec.cache, spec.batch, spec.heads, spec.head_dim, b, spec.backend, spec.seq)


# --------------------------------------------------------------------------- reading the runs
def read_runs(folders: list[Path], opts: DeriveOptions, loaded: Optional[list[ResultSet]] = None) -> list[ResultSet]:
    """The runs, read and checked (`loaded`: already read by load_results, in the same order)."""
    if len(folders) < opts.min_runs:
        raise ArtifactError(
            f"{len(folders)} result folder(s) given; tolerances need at least {opts.min_runs} independent runs "
            "(pass more folders, or --min-runs to accept fewer for a test reference)"
        )
    runs = loaded if loaded is not None else [load_results(f)[0] for f in folders]
    first = runs[0]
    for r in runs[1:]:
        if r.env.device != first.env.device or (
            first.env.device == "cuda" and (r.env.gpu.name if r.env.gpu else None) != (first.env.gpu.name if first.env.gpu else None)
        ):
            raise ArtifactError(
                f"{r.folder}: ran on {env_hardware(r.env)}, but {first.folder} ran on {env_hardware(first.env)}; derive one reference per hardware model"
            )
    machines = _machines(runs)
    if len(machines) < opts.min_machines:
        raise ArtifactError(
            f"the {len(runs)} runs come from {len(machines)} machine(s); tolerances need runs on at least "
            f"{opts.min_machines} separately started machines (or --min-machines to accept fewer)"
        )
    return runs


def _machine_id(r: ResultSet) -> str:
    # A GPU's UUID and the host's hashed name together tell separately started machines apart.
    gpu = (r.env.gpu.uuid or "") if r.env.gpu else ""
    host = str((r.env.host or {}).get("hostname_sha256_8", ""))
    return f"{gpu}/{host}"


def _machines(runs: list[ResultSet]) -> set[str]:
    return {_machine_id(r) for r in runs}


# --------------------------------------------------------------------------- helpers
def _reach(estimates: list[tuple[float, float, float]], relative: bool) -> tuple[float, float, float]:
    """(reference, max deviation of a run's estimate from it, max far-side CI half-width of a run).

    Relative quantities are measured on the log scale, where the band ref/(1+t)..ref*(1+t) is
    symmetric; CIs of medians are often lopsided, so the far side is what must fit in the band.
    """
    ref = float(statistics.median(e for e, _, _ in estimates))
    if relative:
        dev = max(abs(math.log(e / ref)) for e, _, _ in estimates)
        half = max(max(math.log(e / lo), math.log(hi / e)) for e, lo, hi in estimates)
    else:
        dev = max(abs(e - ref) for e, _, _ in estimates)
        half = max(max(e - lo, hi - e) for e, lo, hi in estimates)
    return ref, dev, half


class _Builder:
    def __init__(self, runs: list[ResultSet], opts: DeriveOptions):
        self.runs = runs
        self.opts = opts
        self.claims: list[dict[str, Any]] = []  # each kind's own entry (Claim.entry)
        self.not_claimed: list[dict[str, Any]] = []
        self.cuda = runs[0].env.device == "cuda"
        gpu = runs[0].env.gpu
        self.gpu_name = (gpu.name or "").strip() if gpu else None
        per_run = [{c.case.case_id: c for c in r.cases} for r in runs]
        all_ids = set().union(*per_run)
        self.common: dict[str, list[CaseResult]] = {}
        for cid in sorted(all_ids):
            got = [m.get(cid) for m in per_run]
            bad = [(r.folder, c) for r, c in zip(runs, got) if c is None or c.status != "ok"]
            if bad:
                folder, c = bad[0]
                # An invalid case's times certify nothing: no claim, whatever the other runs say.
                why = "absent" if c is None else f"invalid: {why_invalid(c)}" if c.status == "invalid" else f"{c.status}: {c.reason}"
                self.not_claimed.append({"what": cid, "why": f"not produced by every run ({folder}: {why})"})
                continue
            self.common[cid] = [c for c in got if c is not None]
        if not self.common:
            raise ArtifactError("no case ran ok in every run; nothing to derive a reference from")
        specs = [cases[0].case for cases in self.common.values()]
        self.specs = sorted(specs, key=_order_key)
        self.timing, self.untimed = self._timing()
        self.timed_specs = [s for s in self.specs if s.case_id not in self.untimed]
        self.defaults = {}
        for f in CASE_FIELDS:
            if f in ("backend", "seq"):
                continue
            vals = {getattr(s, f) for s in specs}
            if len(vals) == 1:
                self.defaults[f] = vals.pop()
        self.n_runs = len(runs)
        self.n_machines = len(_machines(runs))

    def _timing(self) -> tuple[Optional[dict[str, Any]], set[str]]:
        """How the reference's cases were timed (the reference records it, and check compares a
        rerun's cases with it), and the cases timed otherwise in some run: those get no time
        claim (a graph capture that failed in one run gives eager times, another quantity)."""
        from collections import Counter

        votes = Counter((c.timing.method, c.timing.summary.n_repetitions)
                        for cases in self.common.values() for c in cases if c.timing is not None)
        if not votes:
            return None, set()
        method, repeats = votes.most_common(1)[0][0]
        untimed: set[str] = set()
        for cid, cases in self.common.items():
            odd = [(r.folder, c.timing) for r, c in zip(self.runs, cases)
                   if c.timing is None or (c.timing.method, c.timing.summary.n_repetitions) != (method, repeats)]
            if odd:
                folder, t = odd[0]
                how = "untimed" if t is None else f"{t.method}" + (f" ({t.fallback_reason})" if t.fallback_reason else "") + \
                    f", {t.summary.n_repetitions} repetition(s)"
                untimed.add(cid)
                self.not_claimed.append({"what": f"time claims on {cid}",
                                         "why": f"timed otherwise in {folder} ({how}) than the reference's cases "
                                                f"({method}, {repeats} repetition(s)): not comparable"})
        timed = [cases for cid, cases in self.common.items() if cid not in untimed]
        spec: dict[str, Any] = {"method": method, "repeats": repeats,
                                "cache": sorted({cases[0].case.cache for cases in timed})}
        targets = {_timed(c).target_rel_ci for cases in timed for c in cases}
        if len(targets) == 1:
            spec["target_rel_ci"] = targets.pop()
        return spec, untimed

    # -- scopes and selectors
    def add(self, claim: Claim) -> None:
        self.claims.append(claim.entry())

    def scope_same_hardware(self) -> Scope:
        return Scope("gpu_model", gpu_name=self.gpu_name) if self.cuda else Scope("cpu")

    def scope_portable(self) -> Scope:
        return Scope("any_gpu") if self.cuda else Scope("cpu")

    def scope_family(self) -> Scope:
        """Claims that depend on the architecture rather than the exact card (ratios, rankings,
        scaling exponents, efficiency shares) are offered to the compute capability; derive()
        narrows each back to the GPU model unless the family evidence bears it out."""
        cc = self.runs[0].env.gpu.compute_capability if self.cuda and self.runs[0].env.gpu else None
        if cc is None:
            return self.scope_same_hardware()
        return Scope("compute_capability", cc_min=cc, cc_max=cc)

    @property
    def portable_required(self) -> bool:
        """A claim on cases checked on other GPUs too (scope_portable) is optional there: another
        GPU may not support every backend (the harness then skips the case), so the claim is SKIP
        rather than FAIL; on the reference GPU the same case is still required by the same-model claims."""
        return not self.cuda

    def _written(self, f: str) -> bool:
        return f not in self.defaults or f in ("backend", "seq")

    def selector(self, spec: CaseSpec, drop: tuple[str, ...] = ()) -> CaseSelector:
        if spec.config:
            return CaseSelector(case_id=spec.case_id)
        fields_ = [f for f in CASE_FIELDS if f not in drop]
        return CaseSelector.of({f: getattr(spec, f) for f in fields_}, given=tuple(f for f in fields_ if self._written(f)))

    def cases(self, spec: CaseSpec) -> list[CaseResult]:
        return self.common[spec.case_id]

    def numeric(self, claim_id: str, runs: list[tuple[float, float, float]], relative: bool, what: str,
                floor: Optional[float] = None) -> Optional[tuple[float, Tolerance]]:
        """(reference, tolerance mapping) from per-run (estimate, ci_low, ci_high), or None
        (recorded under not_claimed) when the spread is too wide to claim anything.

        tolerance = max(k * max_dev + max_ci_half, floor). Every reference run passes its own
        file for k >= 1: its CI's far end is at most max_dev + max_ci_half from the reference.
        """
        ref, dev, half = _reach(runs, relative)
        if floor is None:
            floor = self.opts.floor_rel if relative else self.opts.floor_abs
        if relative:
            tol = max(math.expm1(self.opts.k * dev + half), floor)
        else:
            tol = max(self.opts.k * dev + half, floor)
        if relative and tol > self.opts.max_rel:
            self.not_claimed.append({"what": claim_id, "why": f"run-to-run spread too wide to claim: tolerance would be "
                                     f"{tol:.0%} (per run: {[_sig(e, 4) for e, _, _ in runs]})"})
            return None
        scale = "log" if relative else "abs"
        derivation = {
            "method": ("rel = max(exp(k * max_log_dev + max_log_ci_half) - 1, floor)" if relative
                       else "abs = max(k * max_abs_dev + max_ci_half, floor)"),
            "of": what,
            "k": self.opts.k,
            "floor": floor,
            f"max_{scale}_dev": _sig(dev, 4),
            ("max_log_ci_half" if relative else "max_ci_half"): _sig(half, 4),
            "runs": self.n_runs,
            "machines": self.n_machines,
            "per_run": [_sig(e) for e, _, _ in runs],
        }
        # Rounded up, so rounding never makes a reference run fail its own file.
        width = math.ceil(tol * 1000) / 1000
        return ref, Tolerance("equivalence", derivation=derivation, **{"rel" if relative else "abs": width})

    # -- the claim families
    def absolute(self) -> None:
        for spec in self.timed_specs:
            cases = self.cases(spec)
            per_run = [(_timed(c).summary.median_ms, _timed(c).summary.ci_low_ms, _timed(c).summary.ci_high_ms) for c in cases]
            cid = f"abs-{spec.backend}-s{spec.seq}" + ("" if self._unique(spec) else f"-{spec.shape_key}")
            got = self.numeric(cid, per_run, True, "median time per run (ms)")
            if got is None:
                continue
            ref, tol = got
            clocks = [k for k in (_timed(c).clocks for c in cases) if k is not None and k.sm_mhz_median
                      and k.sm_mhz_min is not None and k.sm_mhz_max is not None]
            if len(clocks) == len(cases):
                # What the card ran at while these times were taken: a FAIL on another machine
                # can then say whether its card was in a slower state (issue 11).
                tol.derivation["sm_mhz"] = {"median": _sig(statistics.median(k.sm_mhz_median or 0.0 for k in clocks), 4),
                                            "min": min(k.sm_mhz_min or 0.0 for k in clocks),
                                            "max": max(k.sm_mhz_max or 0.0 for k in clocks)}
            self.add(AbsoluteClaim(id=cid, scope=self.scope_same_hardware(), case=self.selector(spec), metric="median_ms",
                                   reference=_sig(ref), tolerance=tol))

    def _unique(self, spec: CaseSpec) -> bool:
        return sum(1 for s in self.specs if s.backend == spec.backend and s.seq == spec.seq) == 1

    def _by_shape(self) -> dict[str, dict[str, CaseSpec]]:
        """Library backends of one workload at each shape (what a ranking orders)."""
        shapes: dict[str, dict[str, CaseSpec]] = {}
        for s in self.timed_specs:
            if not s.config:
                shapes.setdefault(f"{s.workload}|{s.shape_key}", {})[s.backend] = s
        return shapes

    def _by_shape_any(self) -> dict[str, dict[str, CaseSpec]]:
        # Keyed by shape alone, across workloads: a candidate kernel's ratio to a library backend
        # at the same shape is the speedup claim of the artifact (issue: candidate claims).
        shapes: dict[str, dict[str, CaseSpec]] = {}
        for s in self.timed_specs:
            shapes.setdefault(s.shape_key, {}).setdefault(s.backend, s)
        return shapes

    def ratios(self) -> None:
        for _key, backends in self._by_shape_any().items():
            for num, den in self.opts.ratio_pairs:
                if num not in backends or den not in backends:
                    continue
                a, b = backends[num], backends[den]
                cis = [stats.hierarchical_ratio_ci(groups_of(x), groups_of(y), n_resamples=stats.VERDICT_BOOTSTRAP.resamples,
                                                    seed=stats.VERDICT_BOOTSTRAP.seed)
                       for x, y in zip(self.cases(a), self.cases(b))]
                cid = f"ratio-{num}-{den}-s{a.seq}" + ("" if self._unique(a) else f"-{a.shape_key}")
                got = self.numeric(cid, [(c.estimate, c.low, c.high) for c in cis], True, f"median({num}) / median({den}) per run")
                if got is None:
                    continue
                ref, tol = got
                self.add(RatioClaim(id=cid, scope=self.scope_family(), numerator=self.selector(a),
                                    denominator=self.selector(b), reference=_sig(ref), tolerance=tol))

    def rankings(self) -> None:
        floor_gap = 1.0 / (1.0 + self.opts.ranking_min_gap)
        for _key, backends in self._by_shape().items():
            if len(backends) < 2:
                continue
            ref_median = {b: statistics.median(_timed(c).summary.median_ms for c in self.cases(s)) for b, s in backends.items()}
            order = sorted(backends, key=lambda b: ref_median[b])
            worst: dict[tuple[str, str], float] = {}
            needed: dict[tuple[str, str], float] = {}

            def separated(x: str, y: str, backends=backends, worst=worst, needed=needed) -> bool:
                # x faster than y in every run by more than the runs' own spread of x/y: the CI of
                # x/y below exp(-k * max_log_dev) (and below the floor gap). A gap smaller than the
                # between-machine spread is an ordering another machine may reverse (the H100
                # audit: gaps of 0.05-0.3% made 5 of 7 honest runs fail a ranking).
                if (x, y) not in worst:
                    cis = [stats.hierarchical_ratio_ci(groups_of(cx), groups_of(cy), n_resamples=stats.VERDICT_BOOTSTRAP.resamples,
                                                    seed=stats.VERDICT_BOOTSTRAP.seed)
                           for cx, cy in zip(self.cases(backends[x]), self.cases(backends[y]))]
                    worst[(x, y)] = max(c.high for c in cis)
                    ests = [c.estimate for c in cis]
                    mid = statistics.median(ests)
                    dev = max(abs(math.log(e / mid)) for e in ests)
                    needed[(x, y)] = min(1.0, floor_gap, math.exp(-self.opts.k * dev))
                return worst[(x, y)] < needed[(x, y)]

            groups = [[b] for b in order]
            merged = True
            while merged:
                merged = False
                for i in range(len(groups) - 1):
                    if not all(separated(x, y) for x in groups[i] for y in groups[i + 1]):
                        groups[i:i + 2] = [groups[i] + groups[i + 1]]
                        merged = True
                        break
            spec = next(iter(backends.values()))
            cid = f"rank-s{spec.seq}" + ("" if len({s.seq for s in self.specs if not s.config}) == len(self._by_shape()) else f"-{spec.shape_key}")
            if len(groups) < 2:
                self.not_claimed.append({"what": cid, "why": f"no backend was faster than another in every run at {spec.shape_key} "
                                         "by more than the runs' own spread (and the floor gap "
                                         f"{self.opts.ranking_min_gap:g})"})
                continue
            pairs = ", ".join(f"{x}/{y} {_sig(v, 4)}" for (x, y), v in worst.items()
                              if any(x in groups[i] and y in groups[i + 1] for i in range(len(groups) - 1)))
            self.add(RankingClaim(
                id=cid, scope=self.scope_family(), shape=self.selector(spec, drop=("backend",)), order=groups,
                rule=self.opts.ranking_rule,
                description="backends fastest first; a bracketed group is a tie. Each kept pair was separated in every run "
                               "by more than the runs' own spread: largest upper CI bound of time(faster)/time(slower) "
                               f"over the {self.n_runs} runs: {pairs} (required below min(1/(1+{self.opts.ranking_min_gap:g}), "
                            f"exp(-{self.opts.k:g} x the largest log deviation of a run's ratio from the runs' median)))",
            ))

    def _series(self, timed: bool = True) -> dict[tuple, list[CaseSpec]]:
        series: dict[tuple, list[CaseSpec]] = {}
        for s in (self.timed_specs if timed else self.specs):
            if not s.config:
                series.setdefault((s.workload, s.backend, s.batch, s.heads, s.head_dim, s.dtype, s.causal, s.cache, s.device), []).append(s)
        return {k: sorted(v, key=lambda s: s.seq) for k, v in series.items() if len(v) >= 3}

    def scaling(self) -> None:
        for _key, specs in self._series().items():
            seqs = [s.seq for s in specs]
            per_run = [stats.scaling_exponent([groups_of(self.cases(s)[i]) for s in specs], seqs) for i in range(self.n_runs)]
            cid = f"scaling-{specs[0].backend}" + ("" if self._unique_series(specs[0]) else f"-{specs[0].shape_key}")
            got = self.numeric(cid, per_run, False, "exponent p of median time ~ S^p per run")
            if got is None:
                continue
            ref, tol = got
            self.add(ScalingClaim(id=cid, scope=self.scope_family(), case=self.selector(specs[0], drop=("seq",)), seqs=seqs,
                                  reference=_sig(ref, 4), tolerance=tol))

    def efficiency(self) -> None:
        found = [r.ceilings.get("matmul_tflops") if r.ceilings is not None else None for r in self.runs]
        ceilings = [c for c in found if c is not None]
        if len(ceilings) < len(found):
            self.not_claimed.append({"what": "efficiency claims", "why": "not every run measured its matmul ceiling "
                                     "(ceilings.json); run them with a harness that writes it"})
            return
        metric, _ = CEILING_METRICS["matmul_tflops"]
        for spec in self.timed_specs:
            per_run = []
            for case, ceil in zip(self.cases(spec), ceilings):
                if case.throughput is None:  # the harness writes throughput with every timing
                    raise ArtifactError(f"case {case.case.case_id}: status ok but no throughput in its file; re-run the case")
                s, work = _timed(case).summary, case.throughput.flops * 1e-9
                per_run.append((work / s.median_ms / ceil.value, work / s.ci_high_ms / ceil.value,
                                work / s.ci_low_ms / ceil.value))
            cid = f"eff-{spec.backend}-s{spec.seq}" + ("" if self._unique(spec) else f"-{spec.shape_key}")
            # A share is two measurements (the case's time and the ceiling's), each as uncertain
            # as one time: the floor is sqrt(2) times a time's. With one floor, leaving machine C
            # out made an honest run of it fail eff-efficient-s512 at 101% of its tolerance
            # (its matmul ceiling read 679 TFLOP/s, the runs' highest; bench/validity).
            got = self.numeric(cid, per_run, True, "share of the run's matmul ceiling per run",
                               floor=self.opts.floor_rel * math.sqrt(2))
            if got is None:
                continue
            ref, tol = got
            tol.rule = "point"
            self.add(EfficiencyClaim(id=cid, scope=self.scope_family(), case=self.selector(spec), ceiling="matmul_tflops",
                                     reference=_sig(ref, 4), tolerance=tol))

    def _unique_series(self, spec: CaseSpec, timed: bool = True) -> bool:
        return sum(1 for k in self._series(timed) if k[1] == spec.backend) == 1

    def _per_backend(self) -> dict[tuple, list[CaseSpec]]:
        groups: dict[tuple, list[CaseSpec]] = {}
        for s in self.specs:
            groups.setdefault((s.workload, s.backend, s.config is not None), []).append(s)
        return groups

    def _multi_selector(self, specs: list[CaseSpec]) -> CaseSelector:
        values = {f: sorted({getattr(s, f) for s in specs}, key=lambda v: (type(v).__name__, v)) for f in CASE_FIELDS}
        return CaseSelector.of(values, given=tuple(f for f in CASE_FIELDS if self._written(f)))

    def correctness(self) -> None:
        for (_, backend, _cfg), specs in self._per_backend().items():
            errs = [c.correctness.rel_error for s in specs for c in self.cases(s)
                    if c.correctness is not None and c.correctness.rel_error is not None]
            if len(errs) < len(specs) * self.n_runs:
                self.not_claimed.append({"what": f"correct-{backend}", "why": "some runs have no correctness record (--no-correctness)"})
                continue
            worst = max(errs)
            bound = _sig(self.opts.correctness_factor * worst, 3) if worst > 0 else 1e-12
            self.add(CorrectnessClaim(
                id=f"correct-{backend}", scope=self.scope_portable(), required=self.portable_required,
                cases=self._multi_selector(specs), max_rel_error=bound,
                description=f"relative error vs float64 at most {bound:.3g}: {self.opts.correctness_factor:g} x the largest "
                            f"error seen ({worst:.3g}) over {len(specs)} case(s) x {self.n_runs} runs with fresh random inputs",
            ))

    def determinism(self) -> None:
        for (_, backend, _cfg), specs in self._per_backend().items():
            keep: list[CaseSpec] = []
            drop: list[CaseSpec] = []
            for s in specs:
                reps = [c.correctness.bitwise_repeat if c.correctness else None for c in self.cases(s)]
                (keep if all(r is True for r in reps) else drop).append(s)
            for s in drop:
                self.not_claimed.append({"what": f"determinism of {s.case_id}", "why": "not bitwise-identical (or not checked) in every run"})
            if keep:
                self.add(DeterminismClaim(id=f"determinism-{backend}", scope=self.scope_portable(),
                                          required=self.portable_required, cases=self._multi_selector(keep),
                                          description=f"bitwise-identical repeats in all {self.n_runs} runs"))

    def memory(self) -> None:
        if not self.cuda:
            self.not_claimed.append({"what": "memory", "why": "no allocator statistics on the CPU"})
            return
        for spec in self.specs:
            peaks = [c.memory.peak_allocated_bytes for c in self.cases(spec)
                     if c.memory is not None and c.memory.peak_allocated_bytes is not None]
            if len(peaks) < self.n_runs:
                continue
            bound = int(max(peaks) * (1 + self.opts.memory_margin))
            self.add(MemoryBoundClaim(
                id=f"mem-{spec.backend}-s{spec.seq}" + ("" if self._unique(spec) else f"-{spec.shape_key}"),
                scope=self.scope_same_hardware(), case=self.selector(spec), max_peak_bytes=bound,
                description=f"peak allocated at most (1 + {self.opts.memory_margin:g}) x the largest peak seen "
                            f"({max(peaks)} bytes; per run {sorted(set(peaks))})",
            ))
        for _key, specs in self._series(timed=False).items():
            seqs = [s.seq for s in specs]
            exps = []
            for i in range(self.n_runs):
                mems = [self.cases(s)[i].memory for s in specs]
                growth = [m.peak_allocated_bytes for m in mems if m is not None and m.peak_allocated_bytes is not None]
                if len(growth) < len(specs):
                    break
                exps.append(float(stats.loglog_slope(np.array(seqs), np.array(growth, dtype=float))))
            if len(exps) < self.n_runs:
                continue
            cid = f"memgrowth-{specs[0].backend}" + ("" if self._unique_series(specs[0], timed=False) else f"-{specs[0].shape_key}")
            got = self.numeric(cid, [(e, e, e) for e in exps], False, "exponent p of peak allocated bytes ~ S^p per run")
            if got is None:
                continue
            ref, tol = got
            tol.rule = "point"  # a peak is one reading, there is no CI
            self.add(MemoryGrowthClaim(id=cid, scope=self.scope_portable(), required=self.portable_required,
                                       case=self.selector(specs[0], drop=("seq",)), seqs=seqs, reference=_sig(ref, 4),
                                       tolerance=tol))

    def environment(self) -> None:
        locks = [r.env.lock or {} for r in self.runs]
        tf32_off = all(not l.get("matmul_allow_tf32", True) and not l.get("cudnn_allow_tf32", True) for l in locks)
        determ = all(l.get("deterministic_algorithms") and l.get("cudnn_deterministic") for l in locks)
        fill_off = all(l.get("fill_uninitialized_memory") is False for l in locks)
        if tf32_off or determ or fill_off:
            what = ", ".join(w for w, on in (("TF32 off", tf32_off), ("deterministic algorithms on", determ),
                                             ("no NaN fill while timing", fill_off)) if on)
            self.add(EnvironmentClaim(id="env-numerics", scope=self.scope_portable(), tf32_off=tf32_off or None,
                                      deterministic=determ or None, fill_off=fill_off or None,
                                      description=f"the numerics lock of every reference run: {what}"))
        else:
            self.not_claimed.append({"what": "env-numerics", "why": "the reference runs did not all have TF32 off and determinism on"})
        if self.cuda:
            drivers = [r.env.nvidia_driver_version for r in self.runs if r.env.nvidia_driver_version]
            if len(drivers) == len(self.runs):
                lowest = min(drivers, key=lambda v: tuple(int(p) for p in v.split(".") if p.isdigit()))
                self.add(EnvironmentClaim(id="env-driver", scope=self.scope_portable(), min_nvidia_driver=lowest,
                                          description="the lowest NVIDIA driver among the reference runs; not validated below it"))

    # -- the file
    def options(self) -> dict[str, Any]:
        o = self.opts
        out: dict[str, Any] = {
            "ratio": [f"{a}/{b}" for a, b in o.ratio_pairs], "max_rel": o.max_rel, "min_runs": o.min_runs,
            "min_machines": o.min_machines, "ranking_min_gap": o.ranking_min_gap, "ranking_rule": o.ranking_rule,
            "correctness_factor": o.correctness_factor, "memory_margin": o.memory_margin,
        }
        if o.portable_only:
            out["portable_only"] = True
        if o.retire_timing:
            out["retire_timing"] = o.retire_timing
        if o.family_evidence:
            out["family_evidence"] = [str(f) for f in o.family_evidence]
        if o.evidence_peaks:
            out["evidence_peaks"] = [f"{p.metric} {p.value:g} {p.unit}" for p in o.evidence_peaks]
        return out

    def hardware(self) -> dict[str, Any]:
        env = self.runs[0].env
        hw: dict[str, Any] = {"device": env.device}
        if self.cuda and env.gpu:
            hw["gpu_name"] = self.gpu_name
            hw["compute_capability"] = env.gpu.compute_capability
            drivers = sorted({r.env.nvidia_driver_version for r in self.runs if r.env.nvidia_driver_version})
            hw["nvidia_driver_version"] = ", ".join(drivers) if drivers else None
            limits = [r.env.gpu_state_before.power_limit_w for r in self.runs
                      if r.env.gpu_state_before is not None and r.env.gpu_state_before.power_limit_w]
            if limits:
                hw["power_limit_w"] = min(limits)
        cpus = sorted({str((r.env.host or {}).get("cpu_model")) for r in self.runs})
        hw["cpu_model"] = ", ".join(cpus)
        if self.opts.peaks:
            hw["peaks"] = [{k: v for k, v in vars(p).items() if v is not None} for p in self.opts.peaks]
        return hw

    def document(self, folders: list[Path]) -> dict[str, Any]:
        env = self.runs[0].env
        return {
            "schema_version": REFERENCE_VERSION,
            "kind": "reference",
            "name": self.opts.name,
            "description": self.opts.description or f"derived from {self.n_runs} runs on {self.n_machines} machine(s)",
            "hardware": self.hardware(),
            **({"run": {k: v for k, v in vars(self.opts.run).items() if v is not None}} if self.opts.run else {}),
            **({"timing": self.timing} if self.timing and not self.opts.retire_timing else {}),
            "environment": {
                "software": dict(env.software),
                "cuda_runtime_version": env.cuda_runtime_version,
                "cuda_driver_version": env.cuda_driver_version,
                "torch_cuda_build": env.torch_cuda_build,
                "cudnn_version": env.cudnn_version,
                "in_container": env.in_container,
            },
            "derived_from": {
                "tool": f"artifact derive-reference {__version__}",
                "created_at": storage.utc_now(),
                "rule": ("relative: max(exp(k * max_log_dev + max_log_ci_half) - 1, floor); exponents: max(k * max_abs_dev + "
                         "max_ci_half, floor); dev = a run's estimate against the median of the runs, ci_half = the far side of "
                         "a run's CI from its estimate"),
                "k": self.opts.k, "floor_rel": self.opts.floor_rel, "floor_abs": self.opts.floor_abs,
                "runs": [
                    {"folder": str(f), "created_at": r.env.created_at, "machine": _machine_id(r),
                     "nvidia_driver_version": r.env.nvidia_driver_version, "harness_version": r.env.harness_version,
                     "cases": len(r.cases)}
                    for f, r in zip(folders, self.runs)
                ],
                "machines": self.n_machines,
                # Everything else the derivation was given, so the file can be regenerated from it.
                "options": self.options(),
            },
            "defaults": dict(self.defaults),
            "claims": self.claims,
            "not_claimed": self.not_claimed,
        }


def derive(folders: list[Path], opts: DeriveOptions, loaded: Optional[list[ResultSet]] = None) -> dict[str, Any]:
    """The reference document (a mapping ready for YAML) derived from the runs in `folders`
    (`loaded`: the same runs already read by load_results, e.g. by a study deriving many times)."""
    runs = read_runs(folders, opts, loaded)
    b = _Builder(runs, opts)
    if opts.peaks and opts.peaks_gpu is not None and opts.peaks_gpu != b.gpu_name:
        raise ArtifactError(f"the peaks given were measured on {opts.peaks_gpu}, but the runs are on {b.gpu_name or 'the CPU'}; "
                            "give --peaks-from a file for this hardware")
    if opts.portable_only:
        b.not_claimed.append({"what": "absolute, ratio, scaling and memory claims",
                              "why": "a portable-only reference (--portable-only): times and peaks depend on the machine"})
    elif opts.retire_timing:
        b.not_claimed.append({"what": "absolute, ratio, ranking, scaling and efficiency claims", "why": opts.retire_timing})
        b.memory()
    else:
        b.absolute()
        b.ratios()
        b.scaling()
        b.efficiency()
        b.memory()
    if not opts.retire_timing:
        b.rankings()
    b.correctness()
    b.determinism()
    b.environment()
    if not b.claims:
        first = b.not_claimed[0] if b.not_claimed else {"what": "-", "why": "no cases"}
        raise ArtifactError(f"no claim could be derived from these runs ({len(b.not_claimed)} left out; first: "
                            f"{first['what']}: {first['why']})")
    doc = b.document(folders)
    if b.cuda:
        narrow_family_claims(doc, opts)
    return doc


def _evidence_results(folder: Path, peaks: list[Peak]) -> ResultSet:
    from harness.records import Ceiling, CeilingsRecord

    rs = load_results(folder)[0]
    if rs.ceilings is None and peaks:
        # Older runs measured no ceilings in the run; the peaks measured on that hardware stand in.
        rs.ceilings = CeilingsRecord(created_at="", device="cuda", gpu_name=rs.env.gpu.name if rs.env.gpu else None,
                                     ceilings=[Ceiling(metric={"tflops": "matmul_tflops", "gbps": "copy_gbps"}[p.metric],
                                                       value=p.value, unit=p.unit, dtype=p.dtype, what=p.source,
                                                       median_ms=0.0, ci_low_ms=0.0, ci_high_ms=0.0, work=0.0, n_samples=0)
                                               for p in peaks])
    return rs


def narrow_family_claims(doc: dict[str, Any], opts: DeriveOptions) -> None:
    """Keep a claim offered to the compute-capability family only where the evidence bears it
    out: it must PASS on every given run of another GPU model of that family. Otherwise (it
    fails there, or no evidence run can judge it) it is narrowed to the GPU model it was measured
    on, and its tolerance's derivation says why."""
    family = [c for c in doc["claims"] if isinstance(c.get("scope"), dict) and c["scope"].get("kind") == "compute_capability"]
    if not family:
        return
    evidence = [_evidence_results(Path(f), opts.evidence_peaks) for f in opts.family_evidence]
    gpu = doc["hardware"].get("gpu_name")
    cc = family[0]["scope"]["min"]
    evidence = [e for e in evidence if e.env.gpu is not None and e.env.gpu.compute_capability == cc and e.env.gpu.name != gpu]
    verdicts: dict[str, list[tuple[str, bool]]] = {}
    if evidence:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "family.yaml"
            path.write_text(yaml.safe_dump({**doc, "claims": family, "not_claimed": []}, sort_keys=False), encoding="utf-8")
            ref = load_reference(path)
        for claim in ref.claims:
            verdicts[claim.id] = [(v.status, v.missing) for v in (claim.judge(e) for e in evidence)]
    models = sorted({e.env.gpu.name for e in evidence if e.env.gpu and e.env.gpu.name})
    for c in family:
        judged = [st for st, missing in verdicts.get(c["id"], []) if not missing]
        note_to = c.setdefault("tolerance", {}).setdefault("derivation", {}) if "tolerance" in c else c
        if judged and len(judged) == len(verdicts[c["id"]]) and all(s == "PASS" for s in judged):
            note = f"held on {len(judged)} run(s) of {', '.join(models)}: scoped to compute capability {cc}"
        else:
            c["scope"] = {"kind": "gpu_model", "gpu_name": gpu}
            if not evidence:
                note = "no run of another GPU model of this family to check it on: kept to the GPU model"
            elif not judged:
                note = f"the runs of {', '.join(models)} do not have its cases, so nothing bears it out: kept to the GPU model"
            else:
                note = (f"{sum(s == 'PASS' for s in judged)} of {len(verdicts[c['id']])} run(s) of {', '.join(models)} "
                        "passed it: kept to the GPU model")
        if note_to is c:
            c["description"] = (c.get("description", "") + ("; " if c.get("description") else "") + "scope: " + note)
        else:
            note_to["scope_evidence"] = note


def peaks_from(path: Path) -> tuple[Optional[str], list[Peak]]:
    """(GPU model, measured peaks) from the hardware section of a reference or peaks file."""
    root, _ = load_yaml(path)
    hw = root.get("hardware")
    parsed = parse_hardware(hw)
    return parsed.gpu_name, parsed.peaks


_HEADER = """\
# Reference tolerance file, generated by `artifact derive-reference` from the runs listed under
# derived_from. Regenerate it rather than editing numbers by hand; each tolerance records how it
# was derived. hardware.peaks are measured figures carried over from the previous file.
"""


def write_reference(doc: dict[str, Any], out: Path) -> None:
    """Validate the document by reading it back as a reference, then write it atomically."""
    text = _HEADER + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=120, allow_unicode=True)
    if out.is_dir():
        raise ArtifactError(f"{out}: is a folder; give the reference file to write, e.g. {out / 'name.yaml'}")
    tmp = out.with_name(f".{out.name}.check")
    try:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            tmp.write_text(text, encoding="utf-8")
            load_reference(tmp)  # the derive tool never writes a file that check would refuse
        finally:
            tmp.unlink(missing_ok=True)
        storage.atomic_write_text(out, text)
    except OSError as exc:
        raise ArtifactError(f"{out}: cannot write the reference file ({exc.strerror or exc}); give a writable path to --out") from None
