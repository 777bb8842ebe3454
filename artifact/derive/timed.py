"""Claims on times, one method per kind (artifact/claims/absolute.py, ratio.py, scaling.py,
efficiency.py judge them): absolute times, ratios, rankings, scaling exponents, efficiency shares."""

from __future__ import annotations

import math
import statistics

from artifact.claims import (
    CEILING_METRICS,
    AbsoluteClaim,
    EfficiencyClaim,
    RankingClaim,
    RatioClaim,
    ScalingClaim,
)
from artifact.derive.base import BuilderBase
from artifact.derive.runs import sig, timed_of
from artifact.errors import ArtifactError
from artifact.results.folder import groups_of
from harness import exponents, stats


class TimedClaims(BuilderBase):
    # -- the claim families
    def absolute(self) -> None:
        for spec in self.timed_specs:
            cases = self.cases(spec)
            per_run = [(timed_of(c).summary.median_ms, timed_of(c).summary.ci_low_ms, timed_of(c).summary.ci_high_ms) for c in cases]
            cid = f"abs-{spec.backend}-s{spec.seq}" + ("" if self._unique(spec) else f"-{spec.shape_key}")
            got = self.numeric(cid, per_run, True, "median time per run (ms)")
            if got is None:
                continue
            ref, tol = got
            clocks = [k for k in (timed_of(c).clocks for c in cases) if k is not None and k.sm_mhz_median
                      and k.sm_mhz_min is not None and k.sm_mhz_max is not None]
            if len(clocks) == len(cases):
                # What the card ran at while these times were taken: a FAIL on another machine
                # can then say whether its card was in a slower state (issue 11).
                tol.derivation["sm_mhz"] = {"median": sig(statistics.median(k.sm_mhz_median or 0.0 for k in clocks), 4),
                                            "min": min(k.sm_mhz_min or 0.0 for k in clocks),
                                            "max": max(k.sm_mhz_max or 0.0 for k in clocks)}
            self.add(AbsoluteClaim(id=cid, scope=self.scope_same_hardware(), case=self.selector(spec), metric="median_ms",
                                   reference=sig(ref), tolerance=tol))

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
                                    denominator=self.selector(b), reference=sig(ref), tolerance=tol))

    def rankings(self) -> None:
        floor_gap = 1.0 / (1.0 + self.opts.ranking_min_gap)
        for _key, backends in self._by_shape().items():
            if len(backends) < 2:
                continue
            ref_median = {b: statistics.median(timed_of(c).summary.median_ms for c in self.cases(s)) for b, s in backends.items()}
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
            pairs = ", ".join(f"{x}/{y} {sig(v, 4)}" for (x, y), v in worst.items()
                              if any(x in groups[i] and y in groups[i + 1] for i in range(len(groups) - 1)))
            self.add(RankingClaim(
                id=cid, scope=self.scope_family(), shape=self.selector(spec, drop=("backend",)), order=groups,
                rule=self.opts.ranking_rule,
                description="backends fastest first; a bracketed group is a tie. Each kept pair was separated in every run "
                               "by more than the runs' own spread: largest upper CI bound of time(faster)/time(slower) "
                               f"over the {self.n_runs} runs: {pairs} (required below min(1/(1+{self.opts.ranking_min_gap:g}), "
                            f"exp(-{self.opts.k:g} x the largest log deviation of a run's ratio from the runs' median)))",
            ))

    def scaling(self) -> None:
        for _key, specs in self._series().items():
            seqs = [s.seq for s in specs]
            per_run = [exponents.scaling_exponent([groups_of(self.cases(s)[i]) for s in specs], seqs) for i in range(self.n_runs)]
            cid = f"scaling-{specs[0].backend}" + ("" if self._unique_series(specs[0]) else f"-{specs[0].shape_key}")
            got = self.numeric(cid, per_run, False, "exponent p of median time ~ S^p per run")
            if got is None:
                continue
            ref, tol = got
            self.add(ScalingClaim(id=cid, scope=self.scope_family(), case=self.selector(specs[0], drop=("seq",)), seqs=seqs,
                                  reference=sig(ref, 4), tolerance=tol))

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
                s, work = timed_of(case).summary, case.throughput.flops * 1e-9
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
                                     reference=sig(ref, 4), tolerance=tol))
