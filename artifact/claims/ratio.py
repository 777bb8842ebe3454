"""ratio and ranking: two or more backends at one shape, compared by the CI of their ratio of
median times (harness.stats.hierarchical_ratio_ci, one fixed seed for every verdict)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from artifact.claims.base import FAIL, PASS, Claim, ClaimVerdict, ParseContext, judge_numeric, shape_words, short
from artifact.claims.parts import CaseSelector, Tolerance, check_backend_names, parse_selector, parse_tolerance
from artifact.results.folder import ResultSet
from artifact.textfmt import num
from artifact.yamlnode import Node
from harness import stats
from harness.records import CaseResult

RANKING_RULES = ("point", "significant")


@dataclass(kw_only=True)
class RatioClaim(Claim):
    """Median time of one backend over another's at the same shape (the seed called a comparison
    of two shapes a "speedup"; a ratio here is always two backends at one shape)."""

    KIND: ClassVar[str] = "ratio"
    TIMED: ClassVar[bool] = True
    KEYS: ClassVar[tuple[str, ...]] = ("numerator", "denominator", "reference", "tolerance")
    numerator: CaseSelector
    denominator: CaseSelector
    reference: float
    tolerance: Tolerance

    @classmethod
    def parse(cls, node: Node, ctx: ParseContext, common: dict[str, Any]) -> RatioClaim:
        num_ = parse_selector(node.get("numerator"), ctx.defaults, ctx.device, single=True)
        den = parse_selector(node.get("denominator"), ctx.defaults, ctx.device, single=True)
        if num_.case_id is None and den.case_id is None:
            differ = [k for k in num_.values if k != "backend" and num_.values[k] != den.values.get(k)]
            if differ:
                raise node.get("denominator").error(
                    f"numerator and denominator differ in {', '.join(differ)}",
                    "a ratio compares two backends at one shape; for growth with S use a scaling claim",
                )
        return cls(numerator=num_, denominator=den, reference=node.get("reference").number(positive=True),
                   tolerance=parse_tolerance(node.get("tolerance"), "rel"), **common)

    def own_entry(self) -> dict[str, Any]:
        return {"numerator": self.numerator.entry(), "denominator": self.denominator.entry(),
                "reference": self.reference, "tolerance": self.tolerance.entry()}

    def selectors(self) -> list[CaseSelector]:
        return [self.numerator, self.denominator]

    def summary(self) -> str:
        return (f"time({short(self.numerator)}) / time({short(self.denominator)}) at {shape_words(self.numerator)} = "
                f"{num(self.reference)}, {self.tolerance.describe()}")

    def _judge(self, results: ResultSet) -> ClaimVerdict:
        a, early = self.fetch_one(results, self.numerator)
        if early:
            return early
        b, early = self.fetch_one(results, self.denominator)
        if early:
            return early
        assert a is not None and b is not None
        ci = results.ratio_ci(a, b)
        return judge_numeric(self, self.tolerance, self.reference, ci.estimate, (ci.low, ci.high), "x",
                             "ratio of medians", [a.case.case_id, b.case.case_id], ci_level=ci.level,
                             details=[f"CI method {ci.method}"] + [f"flag {f}" for f in ci.flags])


@dataclass(kw_only=True)
class RankingClaim(Claim):
    """An ordering of backends at one shape, fastest first; a group in brackets is a tie (no
    order claimed inside it). "significant": every adjacent ratio's CI lies below 1."""

    KIND: ClassVar[str] = "ranking"
    TIMED: ClassVar[bool] = True
    KEYS: ClassVar[tuple[str, ...]] = ("shape", "order", "rule")
    shape: CaseSelector
    order: list[list[str]]
    rule: str = "significant"

    @classmethod
    def parse(cls, node: Node, ctx: ParseContext, common: dict[str, Any]) -> RankingClaim:
        shape_node = node.get("shape")
        if shape_node.has("backend") or shape_node.has("case_id"):
            raise shape_node.error("a ranking's shape names no backend", "list the backends under 'order'")
        shape = parse_selector(shape_node, ctx.defaults, ctx.device, single=True, not_required=("backend",))
        shape.values.pop("backend", None)  # a default backend would otherwise narrow every entry
        order_node = node.get("order")
        groups: list[list[str]] = []
        for item in order_node.items():
            names = [i.text() for i in item.items()] if isinstance(item.value, list) else [item.text()]
            check_backend_names(item, shape.values.get("workload", []), names)
            groups.append(names)
        flat = [b for g in groups for b in g]
        if len(groups) < 2:
            raise order_node.error("a ranking needs at least two places", "list backends fastest first")
        if len(set(flat)) != len(flat):
            raise order_node.error("a backend appears twice", "list each backend once")
        rule = node.get("rule", required=False)
        return cls(shape=shape, order=groups, rule=rule.choice(RANKING_RULES) if rule else "significant", **common)

    def own_entry(self) -> dict[str, Any]:
        return {"shape": self.shape.entry(), "order": [g[0] if len(g) == 1 else list(g) for g in self.order],
                "rule": self.rule}

    def selectors(self) -> list[CaseSelector]:
        return [self.shape.with_values(backend=b) for g in self.order for b in g]

    def summary(self) -> str:
        text = " < ".join(g[0] if len(g) == 1 else "(" + " = ".join(g) + ")" for g in self.order)
        return f"at {shape_words(self.shape)}: time {text} ({self.rule})"

    def _judge(self, results: ResultSet) -> ClaimVerdict:
        cases: dict[str, CaseResult] = {}
        for g in self.order:
            for b in g:
                case, early = self.fetch_one(results, self.shape.with_values(backend=b))
                if early:
                    return early
                assert case is not None
                cases[b] = case
        worst: Optional[tuple[float, stats.ConfidenceInterval]] = None
        details, broken = [], []
        for faster, slower in zip(self.order, self.order[1:]):
            for a in faster:
                for b in slower:
                    ci = results.ratio_ci(cases[a], cases[b])
                    if self.rule == "significant":
                        holds = stats.direction(ci.low, ci.high) == stats.FASTER
                    else:
                        holds = ci.estimate < 1.0
                    details.append(f"{a}/{b} = {num(ci.estimate)} [{num(ci.low)}, {num(ci.high)}]{'' if holds else ' (breaks the order)'}")
                    if not holds:
                        broken.append(f"{a} vs {b}")
                    key = ci.high if self.rule == "significant" else ci.estimate
                    if worst is None or key > worst[0]:
                        worst = (key, ci)
        assert worst is not None  # parse requires two places
        ci = worst[1]
        ids = [c.case.case_id for c in cases.values()]
        test = "CI of each adjacent ratio below 1" if self.rule == "significant" else "each adjacent ratio below 1"
        if broken:
            why = f"order does not hold ({test}): {', '.join(broken)}; {'; '.join(details)}"
        else:
            why = f"order holds ({test}); closest pair ratio {num(ci.estimate)} [{num(ci.low)}, {num(ci.high)}]"
        return self.verdict(PASS if not broken else FAIL, why, measured=ci.estimate, ci_low=ci.low, ci_high=ci.high,
                            ci_level=ci.level, reference=1.0, band_high=1.0, rule=self.rule, unit="x",
                            tolerance="adjacent ratio < 1", cases=ids, details=details)
