"""The derivation's shared state: the cases every run measured ok, how they were timed, the
defaults, scopes and selectors, and the tolerance rule (numeric) that every timed claim kind uses."""

from __future__ import annotations

import math
from typing import Any, Optional

from artifact.claims import (
    Claim,
)
from artifact.claims.parts import CASE_FIELDS, CaseSelector, Scope, Tolerance
from artifact.derive.options import DeriveOptions
from artifact.derive.runs import machines_of, order_key, reach, sig, timed_of
from artifact.errors import ArtifactError
from artifact.results.folder import ResultSet
from artifact.results.integrity import why_invalid
from harness.records import CaseResult, CaseSpec


class BuilderBase:
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
        self.specs = sorted(specs, key=order_key)
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
        self.n_machines = len(machines_of(runs))

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
        targets = {timed_of(c).target_rel_ci for cases in timed for c in cases}
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
        ref, dev, half = reach(runs, relative)
        if floor is None:
            floor = self.opts.floor_rel if relative else self.opts.floor_abs
        if relative:
            tol = max(math.expm1(self.opts.k * dev + half), floor)
        else:
            tol = max(self.opts.k * dev + half, floor)
        if relative and tol > self.opts.max_rel:
            self.not_claimed.append({"what": claim_id, "why": f"run-to-run spread too wide to claim: tolerance would be "
                                     f"{tol:.0%} (per run: {[sig(e, 4) for e, _, _ in runs]})"})
            return None
        scale = "log" if relative else "abs"
        derivation = {
            "method": ("rel = max(exp(k * max_log_dev + max_log_ci_half) - 1, floor)" if relative
                       else "abs = max(k * max_abs_dev + max_ci_half, floor)"),
            "of": what,
            "k": self.opts.k,
            "floor": floor,
            f"max_{scale}_dev": sig(dev, 4),
            ("max_log_ci_half" if relative else "max_ci_half"): sig(half, 4),
            "runs": self.n_runs,
            "machines": self.n_machines,
            "per_run": [sig(e) for e, _, _ in runs],
        }
        # Rounded up, so rounding never makes a reference run fail its own file.
        width = math.ceil(tol * 1000) / 1000
        return ref, Tolerance("equivalence", derivation=derivation, **{"rel" if relative else "abs": width})

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

    def _series(self, timed: bool = True) -> dict[tuple, list[CaseSpec]]:
        series: dict[tuple, list[CaseSpec]] = {}
        for s in (self.timed_specs if timed else self.specs):
            if not s.config:
                series.setdefault((s.workload, s.backend, s.batch, s.heads, s.head_dim, s.dtype, s.causal, s.cache, s.device), []).append(s)
        return {k: sorted(v, key=lambda s: s.seq) for k, v in series.items() if len(v) >= 3}

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
