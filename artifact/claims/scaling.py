"""scaling: the exponent p of median time ~ S^p over the listed sequence lengths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from artifact.claims.base import Claim, ClaimVerdict, ParseContext, judge_numeric, parse_seqs, short
from artifact.claims.parts import CaseSelector, Tolerance, parse_selector, parse_tolerance
from artifact.folder import ResultSet, groups_of
from artifact.textfmt import num
from artifact.yamlnode import Node
from harness import stats
from harness.records import CaseResult


@dataclass(kw_only=True)
class ScalingClaim(Claim):
    """The exponent p of median time ~ S^p over the listed sequence lengths."""

    KIND: ClassVar[str] = "scaling"
    TIMED: ClassVar[bool] = True
    KEYS: ClassVar[tuple[str, ...]] = ("case", "seqs", "reference", "tolerance")
    case: CaseSelector  # every field but seq
    seqs: list[int]
    reference: float
    tolerance: Tolerance

    @classmethod
    def parse(cls, node: Node, ctx: ParseContext, common: dict[str, Any]) -> ScalingClaim:
        case_node = node.get("case")
        if case_node.has("seq"):
            raise case_node.get("seq").error("seq is the axis of a scaling claim", "list the lengths under 'seqs'")
        case = parse_selector(case_node, ctx.defaults, ctx.device, single=True, not_required=("seq",))
        case.values.pop("seq", None)
        return cls(case=case, seqs=parse_seqs(node.get("seqs")), reference=node.get("reference").number(),
                   tolerance=parse_tolerance(node.get("tolerance"), "abs"), **common)

    def own_entry(self) -> dict[str, Any]:
        return {"case": self.case.entry(), "seqs": list(self.seqs), "reference": self.reference,
                "tolerance": self.tolerance.entry()}

    def selectors(self) -> list[CaseSelector]:
        return [self.case.with_values(seq=s) for s in self.seqs]

    def summary(self) -> str:
        return (f"time of {short(self.case)} ~ S^p over S={','.join(map(str, self.seqs))}: "
                f"p = {num(self.reference)}, {self.tolerance.describe()}")

    def _judge(self, results: ResultSet) -> ClaimVerdict:
        found: list[CaseResult] = []
        for sel in self.selectors():
            case, early = self.fetch_one(results, sel)
            if early:
                return early
            assert case is not None
            found.append(case)
        est, lo, hi = stats.scaling_exponent([groups_of(c) for c in found], self.seqs)
        return judge_numeric(self, self.tolerance, self.reference, est, (lo, hi), "", "exponent",
                             [c.case.case_id for c in found], ci_level=0.95,
                             details=["OLS slope of log(median) on log(S); percentile bootstrap CI"])
