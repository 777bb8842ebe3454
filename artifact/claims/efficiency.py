"""efficiency: a case reaches at least a share of the device's own ceiling, measured in the same run."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from artifact.claims.base import FAIL, PASS, SKIP, Claim, ClaimVerdict, ParseContext
from artifact.claims.parts import CaseSelector, Tolerance, parse_selector, parse_tolerance
from artifact.results.folder import ResultSet
from artifact.yamlnode import Node
from harness.integrity.roofline import contended

CEILING_METRICS = {"matmul_tflops": ("tflops", "TFLOP/s"), "copy_gbps": ("gbps", "GB/s")}


@dataclass(kw_only=True)
class EfficiencyClaim(Claim):
    """A case reaches at least a share of the device's own ceiling, measured in the same run
    (ceilings.json): TFLOP/s over the matmul ceiling, or GB/s over the copy ceiling.

    The share is normalised by the card it ran on, so the claim travels across GPU models of one
    family, yet a slowdown of every case at once (the harness, a driver, a library) still fails
    it: the ceilings are other operations and do not slow down with the kernels under test.
    One-sided: PASS when the share is at least reference / (1 + rel)."""

    KIND: ClassVar[str] = "efficiency"
    TIMED: ClassVar[bool] = True
    KEYS: ClassVar[tuple[str, ...]] = ("case", "ceiling", "reference", "tolerance")
    case: CaseSelector
    ceiling: str
    reference: float  # the share the reference runs reached (median of runs)
    tolerance: Tolerance

    @classmethod
    def parse(cls, node: Node, ctx: ParseContext, common: dict[str, Any]) -> EfficiencyClaim:
        return cls(case=parse_selector(node.get("case"), ctx.defaults, ctx.device, single=True),
                   ceiling=node.get("ceiling").choice(tuple(CEILING_METRICS)),
                   reference=node.get("reference").number(positive=True),
                   tolerance=parse_tolerance(node.get("tolerance"), "rel"), **common)

    def own_entry(self) -> dict[str, Any]:
        return {"case": self.case.entry(), "ceiling": self.ceiling, "reference": self.reference,
                "tolerance": self.tolerance.entry()}

    def selectors(self) -> list[CaseSelector]:
        return [self.case]

    @property
    def min_share(self) -> float:
        return self.reference / (1.0 + self.tolerance.width)

    def summary(self) -> str:
        what = "matmul" if self.ceiling == "matmul_tflops" else "copy"
        return (f"{self.case.describe()} reaches at least {self.min_share:.1%} of this card's measured {what} ceiling "
                f"(reference {self.reference:.1%}, {self.tolerance.describe()})")

    def _judge(self, results: ResultSet) -> ClaimVerdict:
        case, early = self.fetch_one(results, self.case)
        if early:
            return early
        assert case is not None
        cid = case.case.case_id
        if contended(results.ceilings):
            return self.verdict(SKIP, "not judged: the ceilings were measured while another process was on the GPU",
                                cases=[cid])
        ceiling = results.ceilings.get(self.ceiling) if results.ceilings is not None else None
        if ceiling is None:
            why = (results.ceilings.unavailable.get(self.ceiling) if results.ceilings is not None else None) or \
                "the run measured no ceilings (ceilings.json is absent: run with a harness that writes it)"
            return self.missing(f"the {self.ceiling} ceiling", f"is not in the results folder ({why})")
        metric, unit = CEILING_METRICS[self.ceiling]
        if case.throughput is None or case.timing is None:
            return self.verdict(FAIL, f"case {cid} has no throughput record", cases=[cid])
        s = case.timing.summary
        work = case.throughput.flops * 1e-9 if metric == "tflops" else case.throughput.bytes * 1e-6
        share = work / s.median_ms / ceiling.value
        lo, hi = work / s.ci_high_ms / ceiling.value, work / s.ci_low_ms / ceiling.value
        bound = self.min_share
        judged = lo if self.tolerance.rule == "equivalence" else share
        ok = judged >= bound
        used = 0.0 if judged >= self.reference else math.log(self.reference / judged) / math.log1p(self.tolerance.width)
        how = f"{'CI low end' if self.tolerance.rule == 'equivalence' else 'estimate'} {judged:.2%} {'>=' if ok else '<'} bound {bound:.2%}"
        why = (f"share of the run's {self.ceiling} ceiling ({ceiling.value:g} {ceiling.unit}): {share:.2%} "
               f"[{lo:.2%}, {hi:.2%}] vs reference {self.reference:.2%}: {how} ({used:.0%} of tolerance used)")
        return self.verdict(PASS if ok else FAIL, why, measured=share, ci_low=lo, ci_high=hi, ci_level=s.ci_level,
                            reference=self.reference, band_low=bound, tolerance=f">= {bound:.4g} ({self.tolerance.describe()})",
                            rule=self.tolerance.rule, unit="share", tolerance_used=used, cases=[cid],
                            details=[f"ceiling {ceiling.metric} = {ceiling.value:g} {ceiling.unit} ({ceiling.what}), "
                                     f"median of {ceiling.n_samples} samples; its own CI is not propagated"])

