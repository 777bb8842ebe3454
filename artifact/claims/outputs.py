"""correctness and determinism: what the kernels computed, not how fast (read from each case's
correctness record, taken on fresh random inputs against a float64 reference)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from artifact.claims.base import FAIL, PASS, Claim, ClaimVerdict, ParseContext
from artifact.claims.parts import CaseSelector, parse_selector
from artifact.results.folder import ResultSet
from artifact.textfmt import num
from artifact.yamlnode import Node
from harness.records import Correctness


@dataclass(kw_only=True)
class CorrectnessClaim(Claim):
    """Every selected case's relative error against the float64 reference is at most a bound."""

    KIND: ClassVar[str] = "correctness"
    KEYS: ClassVar[tuple[str, ...]] = ("cases", "max_rel_error")
    cases: CaseSelector
    max_rel_error: float

    @classmethod
    def parse(cls, node: Node, ctx: ParseContext, common: dict[str, Any]) -> CorrectnessClaim:
        return cls(cases=parse_selector(node.get("cases"), ctx.defaults, ctx.device, single=False),
                   max_rel_error=node.get("max_rel_error").number(positive=True), **common)

    def own_entry(self) -> dict[str, Any]:
        return {"cases": self.cases.entry(), "max_rel_error": self.max_rel_error}

    def selectors(self) -> list[CaseSelector]:
        return [self.cases]

    def summary(self) -> str:
        return f"relative error of {self.cases.describe()} <= {num(self.max_rel_error)}"

    def _judge(self, results: ResultSet) -> ClaimVerdict:
        found, early = self.fetch_checked(results, self.cases, "correctness record")
        if early:
            return early
        errs = {c.case.case_id: _record(c.correctness).rel_error for c in found}
        # Only a finite, non-negative error at most the bound passes: a comparison with NaN is
        # false both ways, so the test is "within the bound", never "not over it" (NaN passed).
        finite = {cid: e for cid, e in errs.items() if e is not None and math.isfinite(e)}
        bad = sorted(cid for cid in errs if cid not in finite or not 0.0 <= finite[cid] <= self.max_rel_error)
        largest_id = max(finite, key=lambda k: finite[k]) if finite else None
        measured = finite[largest_id] if largest_id is not None else None
        over = [f"{cid}: {num(finite[cid]) if cid in finite else 'not finite (NaN or inf in the output)'}" for cid in bad]
        why = (f"largest relative error {num(measured)}" + (f" ({largest_id})" if largest_id else "")
               + f" over {len(errs)} case(s), bound {num(self.max_rel_error)}"
               + (f"; over the bound (or not a finite error): {', '.join(over)}" if over else ""))
        return self.verdict(FAIL if bad else PASS, why, measured=measured, reference=self.max_rel_error,
                            band_high=self.max_rel_error, tolerance=f"<= {num(self.max_rel_error)}", rule="point",
                            tolerance_used=measured / self.max_rel_error if measured is not None else None,
                            cases=sorted(errs))


@dataclass(kw_only=True)
class DeterminismClaim(Claim):
    """Every selected case gave bitwise-identical outputs when run twice on the same inputs."""

    KIND: ClassVar[str] = "determinism"
    KEYS: ClassVar[tuple[str, ...]] = ("cases",)
    cases: CaseSelector

    @classmethod
    def parse(cls, node: Node, ctx: ParseContext, common: dict[str, Any]) -> DeterminismClaim:
        return cls(cases=parse_selector(node.get("cases"), ctx.defaults, ctx.device, single=False), **common)

    def own_entry(self) -> dict[str, Any]:
        return {"cases": self.cases.entry()}

    def selectors(self) -> list[CaseSelector]:
        return [self.cases]

    def summary(self) -> str:
        return f"bitwise-identical repeats for {self.cases.describe()}"

    def _judge(self, results: ResultSet) -> ClaimVerdict:
        found, early = self.fetch_checked(results, self.cases, "repeat check")
        if early:
            return early
        differ = [c.case.case_id for c in found if not _record(c.correctness).bitwise_repeat]
        same = len(found) - len(differ)
        why = f"{same} of {len(found)} case(s) repeated bitwise-identically" + (f"; differ: {', '.join(differ)}" if differ else "")
        return self.verdict(FAIL if differ else PASS, why, measured=same / len(found), reference=1.0, band_low=1.0,
                            tolerance="all identical", rule="point", unit="share", cases=sorted(c.case.case_id for c in found))


def _record(c: Correctness | None) -> Correctness:
    assert c is not None  # fetch_checked returns only cases with a correctness record
    return c
