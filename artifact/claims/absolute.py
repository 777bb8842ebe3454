"""absolute: a case's latency (median_ms) or throughput (tflops, gbps) within a relative tolerance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from artifact.claims.base import FAIL, Claim, ClaimVerdict, ParseContext, judge_numeric
from artifact.claims.parts import CaseSelector, Tolerance, parse_selector, parse_tolerance
from artifact.results.folder import ResultSet
from artifact.textfmt import num
from artifact.yamlnode import Node
from harness.records import CaseResult

ABSOLUTE_METRICS = {"median_ms": "ms", "tflops": "TFLOP/s", "gbps": "GB/s"}


@dataclass(kw_only=True)
class AbsoluteClaim(Claim):
    """A case's latency (median_ms) or throughput (tflops, gbps) within a relative tolerance."""

    KIND: ClassVar[str] = "absolute"
    TIMED: ClassVar[bool] = True
    KEYS: ClassVar[tuple[str, ...]] = ("case", "metric", "reference", "tolerance")
    case: CaseSelector
    metric: str
    reference: float
    tolerance: Tolerance

    @classmethod
    def parse(cls, node: Node, ctx: ParseContext, common: dict[str, Any]) -> AbsoluteClaim:
        return cls(
            case=parse_selector(node.get("case"), ctx.defaults, ctx.device, single=True),
            metric=node.get("metric").choice(tuple(ABSOLUTE_METRICS)),
            reference=node.get("reference").number(positive=True),
            tolerance=parse_tolerance(node.get("tolerance"), "rel"),
            **common,
        )

    def own_entry(self) -> dict[str, Any]:
        return {"case": self.case.entry(), "metric": self.metric, "reference": self.reference,
                "tolerance": self.tolerance.entry()}

    def selectors(self) -> list[CaseSelector]:
        return [self.case]

    def summary(self) -> str:
        return f"{self.metric} of {self.case.describe()} = {num(self.reference)} {ABSOLUTE_METRICS[self.metric]}, {self.tolerance.describe()}"

    def _judge(self, results: ResultSet) -> ClaimVerdict:
        case, early = self.fetch_one(results, self.case)
        if early:
            return early
        assert case is not None and case.timing is not None  # fetch_one returns an ok, timed case
        s = case.timing.summary
        cid = case.case.case_id
        if self.metric == "median_ms":
            est, ci = s.median_ms, (s.ci_low_ms, s.ci_high_ms)
        else:
            if case.throughput is None:
                return self.verdict(FAIL, f"case {cid} has no throughput record", cases=[cid])
            work = case.throughput.flops * 1e-9 if self.metric == "tflops" else case.throughput.bytes * 1e-6
            # Throughput is work over time: the CI of the median time maps to it end for end.
            est = getattr(case.throughput, self.metric)
            ci = (work / s.ci_high_ms, work / s.ci_low_ms)
        v = judge_numeric(self, self.tolerance, self.reference, est, ci, ABSOLUTE_METRICS[self.metric],
                          self.metric, [cid], ci_level=s.ci_level)
        if v.status == FAIL:
            # Time over the reference's time: a throughput is work over time, so its ratio inverts.
            time_ratio = est / self.reference if self.metric == "median_ms" else self.reference / est
            note = clock_comparison(case, self.tolerance.derivation, time_ratio)
            v.why += f"; {note}"
            v.details.append(note)
        return v


def clock_comparison(case: CaseResult, derivation: Any, time_ratio: float | None = None) -> str:
    """How the SM clock of this run, while the case was timed, compares with the reference runs':
    a FAIL with a lower clock is a slower card state (power cap, thermals, another clock
    setting) as much as a slower kernel."""
    ref = derivation.get("sm_mhz") if isinstance(derivation, dict) else None
    mine = case.timing.clocks if case.timing is not None else None
    if not ref:
        return "clocks: the reference records no SM clock to compare with"
    if mine is None or not mine.sm_mhz_median:
        return f"clocks: this run recorded none (the reference runs ran at {ref['median']:g} MHz)"
    ratio = mine.sm_mhz_median / ref["median"]
    if time_ratio is not None:
        from artifact.results.machine_state import attribution

        return (f"clocks: SM clock {mine.sm_mhz_median:g} MHz while timing, the reference runs' {ref['median']:g} MHz "
                f"({ratio:.3g}x); " + attribution(time_ratio, ratio))
    spread = f"{mine.sm_mhz_min:g}-{mine.sm_mhz_max:g}" if mine.sm_mhz_min is not None else "?"
    head = (f"clocks: this run's SM clock while timing had median {mine.sm_mhz_median:g} MHz ({spread}), the reference "
            f"runs' {ref['median']:g} MHz ({ref['min']:g}-{ref['max']:g})")
    if ratio < 0.98:
        return head + f": {1 - ratio:.1%} lower, so the card ran in a slower state, not only the kernel"
    if ratio > 1.02:
        return head + f": {ratio - 1:.1%} higher, so the card was not slower: the kernel (or its inputs) was"
    return head + ": within 2%, so the card's state does not explain the difference"

