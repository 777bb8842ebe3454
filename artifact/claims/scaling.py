"""scaling: the exponent p of median time ~ S^p over the listed sequence lengths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from artifact.claims.base import Claim, ClaimVerdict, ParseContext, SeriesMixin, judge_numeric, parse_series
from artifact.claims.parts import CaseSelector, Tolerance
from artifact.results.folder import ResultSet, groups_of
from artifact.yamlnode import Node
from harness import exponents
from harness.records import CaseResult


@dataclass(kw_only=True)
class ScalingClaim(SeriesMixin, Claim):
    """The exponent p of median time ~ S^p over the listed sequence lengths."""

    KIND: ClassVar[str] = "scaling"
    QUANTITY: ClassVar[str] = "time"
    TIMED: ClassVar[bool] = True
    KEYS: ClassVar[tuple[str, ...]] = ("case", "seqs", "reference", "tolerance")
    case: CaseSelector  # every field but seq
    seqs: list[int]
    reference: float
    tolerance: Tolerance

    @classmethod
    def parse(cls, node: Node, ctx: ParseContext, common: dict[str, Any]) -> ScalingClaim:
        return cls(**parse_series(node, ctx, "scaling"), **common)

    def _judge(self, results: ResultSet) -> ClaimVerdict:
        found: list[CaseResult] = []
        for sel in self.selectors():
            case, early = self.fetch_one(results, sel)
            if early:
                return early
            assert case is not None
            found.append(case)
        est, lo, hi = exponents.scaling_exponent([groups_of(c) for c in found], self.seqs)
        return judge_numeric(self, self.tolerance, self.reference, est, (lo, hi), "", "exponent",
                             [c.case.case_id for c in found], ci_level=0.95,
                             details=["OLS slope of log(median) on log(S); percentile bootstrap CI"])
