"""memory: two claims under one kind name. A bound (peak allocated bytes of a case at most
max_peak_bytes) and a growth (the exponent p of peak ~ S^p over seqs); the entry's keys say which."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional, Union

import numpy as np

from artifact.claims.base import FAIL, PASS, Claim, ClaimVerdict, ParseContext, SeriesMixin, judge_numeric, parse_series
from artifact.claims.parts import CaseSelector, Tolerance, parse_selector
from artifact.results.folder import ResultSet
from artifact.yamlnode import Node
from harness import exponents
from harness.records import CaseResult


@dataclass(kw_only=True)
class MemoryClaim(Claim):
    """What both memory claims share: the kind name, the parser that tells them apart, and reading
    a case's peak."""

    KIND: ClassVar[str] = "memory"
    KEYS: ClassVar[tuple[str, ...]] = ("case", "max_peak_bytes", "seqs", "reference", "tolerance")
    case: CaseSelector

    @classmethod
    def parse(cls, node: Node, ctx: ParseContext, common: dict[str, Any]) -> Union[MemoryBoundClaim, MemoryGrowthClaim]:
        growth = node.has("seqs")
        if growth == node.has("max_peak_bytes"):
            raise node.error("give either max_peak_bytes (a bound) or seqs + reference + tolerance (growth)", "not both, not neither")
        if growth:
            return MemoryGrowthClaim(**parse_series(node, ctx, "growth"), **common)
        return MemoryBoundClaim(case=parse_selector(node.get("case"), ctx.defaults, ctx.device, single=True),
                                max_peak_bytes=node.get("max_peak_bytes").integer(positive=True), **common)

    def _peaks(self, results: ResultSet) -> tuple[list[tuple[CaseResult, int]], Optional[ClaimVerdict]]:
        """Each selected case with its peak, or the verdict that says why one is missing."""
        found = []
        for sel in self.selectors():
            case, early = self.fetch_one(results, sel)
            if early:
                return [], early
            assert case is not None
            peak = case.memory.peak_allocated_bytes if case.memory is not None else None
            if peak is None:
                return [], self.missing(case.case.case_id, "has no peak-memory reading (no allocator statistics on this device)")
            found.append((case, peak))
        return found, None


@dataclass(kw_only=True)
class MemoryBoundClaim(MemoryClaim):
    """Peak allocated bytes of a case at most a bound."""

    max_peak_bytes: int

    def own_entry(self) -> dict[str, Any]:
        return {"case": self.case.entry(), "max_peak_bytes": self.max_peak_bytes}

    def selectors(self) -> list[CaseSelector]:
        return [self.case]

    def summary(self) -> str:
        return f"peak allocated memory of {self.case.describe()} <= {self.max_peak_bytes} bytes"

    def _judge(self, results: ResultSet) -> ClaimVerdict:
        found, early = self._peaks(results)
        if early:
            return early
        case, peak = found[0]
        ok = peak <= self.max_peak_bytes
        why = f"peak allocated {peak} bytes {'<=' if ok else '>'} bound {self.max_peak_bytes}"
        return self.verdict(PASS if ok else FAIL, why, measured=float(peak), reference=float(self.max_peak_bytes),
                            band_high=float(self.max_peak_bytes), tolerance=f"<= {self.max_peak_bytes} B", rule="point",
                            unit="B", tolerance_used=peak / self.max_peak_bytes, cases=[case.case.case_id])


@dataclass(kw_only=True)
class MemoryGrowthClaim(SeriesMixin, MemoryClaim):
    """The exponent p of peak allocated bytes ~ S^p over the listed sequence lengths."""

    QUANTITY: ClassVar[str] = "peak memory"

    seqs: list[int]
    reference: float
    tolerance: Tolerance

    def _judge(self, results: ResultSet) -> ClaimVerdict:
        found, early = self._peaks(results)
        if early:
            return early
        peaks = np.array([p for _, p in found], dtype=float)
        est = float(exponents.loglog_slope(np.array(self.seqs), peaks))
        return judge_numeric(self, self.tolerance, self.reference, est, None, "", "memory growth exponent",
                             [c.case.case_id for c, _ in found],
                             details=[f"S={s}: {int(p)} bytes" for s, p in zip(self.seqs, peaks)])
