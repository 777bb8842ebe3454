"""Claims that are not times (artifact/claims/outputs.py, memory.py, environment.py judge them):
correctness bounds, bitwise determinism, peak memory and its growth, the numerics lock."""

from __future__ import annotations

import numpy as np

from artifact.claims import (
    CorrectnessClaim,
    DeterminismClaim,
    EnvironmentClaim,
    MemoryBoundClaim,
    MemoryGrowthClaim,
)
from artifact.derive.base import BuilderBase
from artifact.derive.runs import sig
from harness import exponents
from harness.records import CaseSpec


class UntimedClaims(BuilderBase):
    def correctness(self) -> None:
        for (_, backend, _cfg), specs in self._per_backend().items():
            errs = [c.correctness.rel_error for s in specs for c in self.cases(s)
                    if c.correctness is not None and c.correctness.rel_error is not None]
            if len(errs) < len(specs) * self.n_runs:
                self.not_claimed.append({"what": f"correct-{backend}", "why": "some runs have no correctness record (--no-correctness)"})
                continue
            worst = max(errs)
            bound = sig(self.opts.correctness_factor * worst, 3) if worst > 0 else 1e-12
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
                exps.append(float(exponents.loglog_slope(np.array(seqs), np.array(growth, dtype=float))))
            if len(exps) < self.n_runs:
                continue
            cid = f"memgrowth-{specs[0].backend}" + ("" if self._unique_series(specs[0], timed=False) else f"-{specs[0].shape_key}")
            got = self.numeric(cid, [(e, e, e) for e in exps], False, "exponent p of peak allocated bytes ~ S^p per run")
            if got is None:
                continue
            ref, tol = got
            tol.rule = "point"  # a peak is one reading, there is no CI
            self.add(MemoryGrowthClaim(id=cid, scope=self.scope_portable(), required=self.portable_required,
                                       case=self.selector(specs[0], drop=("seq",)), seqs=seqs, reference=sig(ref, 4),
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
