"""Claim kinds as data, and the judge of each: a results folder in, a ClaimVerdict out (torch-free).

Kinds: absolute, ratio, ranking, scaling, efficiency, correctness, memory, determinism,
environment. Each is a
dataclass parsed from one entry of a reference file (artifact/reference.py) with `parse`, and
judged against the records of one results folder with `judge`.

Rules every judge follows:
- Out of scope (other hardware) -> SKIP with the reason, before anything is read.
- A case the claim needs that the run did not produce (absent, or skipped by the harness) ->
  FAIL "missing" when the claim is `required` (the default: a run in scope must produce it), SKIP
  when it is not. A case the harness tried and that failed -> FAIL. The verdict says which.
- Numeric claims record their rule: "point" (the estimate inside the band) or "equivalence" (the
  whole CI inside the band); rankings use "point" or "significant" (the CI of each adjacent ratio
  entirely below 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

import numpy as np

from artifact.errors import ArtifactError
from artifact.reference import (
    CaseSelector,
    Hardware,
    Node,
    Scope,
    TimingSpec,
    Tolerance,
    check_backend_names,
    parse_scope,
    parse_selector,
    parse_tolerance,
)
from harness.records import CaseResult, CeilingsRecord, EnvRecord

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
RANKING_RULES = ("point", "significant")
ABSOLUTE_METRICS = {"median_ms": "ms", "tflops": "TFLOP/s", "gbps": "GB/s"}
BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 20240611  # fixed: the same folder always gets the same verdict


# --------------------------------------------------------------------------- what judges read and return
@dataclass
class ResultSet:
    """One results folder, read and hash-checked (see verdict.load_results)."""

    folder: str
    env: EnvRecord
    cases: list[CaseResult]
    run: Optional[dict[str, Any]] = None  # run.json from the launcher, when present
    ceilings: Optional[CeilingsRecord] = None  # ceilings.json: the device's own ceilings, same run
    # Ratio CIs by case pair: a ratio claim and the ranking at the same shape ask for the same one.
    # init=False: dataclasses.replace (a modified copy) starts with an empty cache.
    _ratio_cis: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def select(self, selector: CaseSelector) -> list[CaseResult]:
        if selector.case_id is not None:
            return [c for c in self.cases if c.case.case_id == selector.case_id]
        return [c for c in self.cases if selector.matches(c.case)]

    def ratio_ci(self, a: CaseResult, b: CaseResult) -> Any:
        """CI of median(a) / median(b) from the raw samples (fixed seed: the same folder always
        gets the same interval)."""
        key = (a.case.case_id, b.case.case_id)
        if key not in self._ratio_cis:
            from harness import stats

            self._ratio_cis[key] = stats.hierarchical_ratio_ci(groups_of(a), groups_of(b), n_resamples=BOOTSTRAP_RESAMPLES,
                                                               seed=BOOTSTRAP_SEED)
        return self._ratio_cis[key]


@dataclass
class ClaimVerdict:
    claim_id: str
    kind: str
    status: str  # PASS | FAIL | SKIP
    why: str
    scope: str
    line: int  # where the claim is in the reference file
    description: str = ""
    measured: Optional[float] = None
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None
    ci_level: Optional[float] = None
    reference: Optional[float] = None
    band_low: Optional[float] = None  # the measured value passes inside [band_low, band_high]
    band_high: Optional[float] = None
    tolerance: Optional[str] = None
    rule: Optional[str] = None
    unit: str = ""
    # Share of the tolerance the result used: 0 = on the reference, 1 = on the edge of the band
    # (the CI's far end for "equivalence", the estimate for "point"). > 1 fails.
    tolerance_used: Optional[float] = None
    missing: bool = False  # FAIL/SKIP because a needed case was not produced
    # FAIL/SKIP because a needed case was measured otherwise than the reference's (timing method,
    # repetitions, cache mode): what differs, case by case. Also sets `missing`: no comparable case.
    not_comparable: list[str] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)


@dataclass
class ParseContext:
    defaults: dict[str, Any]
    hardware: Hardware
    timing: Optional[TimingSpec] = None  # how the reference's cases were timed (schema 2)


# --------------------------------------------------------------------------- the base
_COMMON_KEYS = ("id", "kind", "scope", "required", "description")


@dataclass(kw_only=True)
class Claim:
    KIND: ClassVar[str] = ""
    KEYS: ClassVar[tuple[str, ...]] = ()
    # Judges a time: each case it reads must be timed as the reference's were (TimingSpec).
    TIMED: ClassVar[bool] = False

    id: str
    kind: str
    scope: Scope
    required: bool = True
    description: str = ""
    line: int = 0
    timing_spec: Optional[TimingSpec] = None  # set by parse_claim for TIMED kinds

    # -- what subclasses provide
    @classmethod
    def parse(cls, node: Node, ctx: ParseContext, common: dict[str, Any]) -> Claim:
        raise NotImplementedError

    def selectors(self) -> list[CaseSelector]:
        """Every case this claim reads (for reports and for "which claims depend on X")."""
        raise NotImplementedError

    def summary(self) -> str:
        """One line for tables and ARTIFACT.md: what is claimed, with the numbers from the file."""
        raise NotImplementedError

    def _judge(self, results: ResultSet) -> ClaimVerdict:
        raise NotImplementedError

    # -- shared
    def judge(self, results: ResultSet) -> ClaimVerdict:
        inside, why = self.scope.applies(results.env)
        if not inside:
            return self.verdict(SKIP, f"out of scope: {why}")
        return self._judge(results)

    def depends_on(self, **values: Any) -> bool:
        """Does any case this claim reads have these field values? e.g. depends_on(backend="cudnn")."""
        for sel in self.selectors():
            if sel.case_id is not None:
                if all(f"-{v}-" in f"-{sel.case_id}-" for v in values.values()):
                    return True
            elif all(v in sel.values.get(k, [v]) for k, v in values.items()):
                return True
        return False

    def verdict(self, status: str, why: str, **kw: Any) -> ClaimVerdict:
        return ClaimVerdict(
            claim_id=self.id, kind=self.kind, status=status, why=why, scope=self.scope.describe(),
            line=self.line, description=self.description or self.summary(), **kw,
        )

    def fetch_one(self, results: ResultSet, selector: CaseSelector) -> tuple[Optional[CaseResult], Optional[ClaimVerdict]]:
        """The one ok case a selector names, or the verdict that says why there is none."""
        found = results.select(selector)
        if len(found) > 1:
            ids = ", ".join(c.case.case_id for c in found[:3])
            raise ArtifactError(
                f"claim {self.id} (reference line {self.line}): its case matches {len(found)} results ({ids}); "
                "select it by case_id in the reference file"
            )
        if not found:
            other = _other_cache(results, selector)
            if other is not None:
                diff = (f"{other.case.case_id} was measured with a {other.case.cache} cache; the reference's case "
                        f"{selector.describe()} with a {'warm' if other.case.cache == 'cold' else 'cold'} one")
                return None, self.incomparable(other.case.case_id, [diff])
            return None, self.missing(selector.describe(), "is not in the results folder")
        case = found[0]
        if case.status == "failed":
            return None, self.verdict(FAIL, f"case {case.case.case_id} failed in the run: {case.reason}", cases=[case.case.case_id])
        if case.status != "ok":
            return None, self.missing(case.case.case_id, f"was skipped by the harness ({case.reason})")
        if self.TIMED and self.timing_spec is not None and case.timing is not None:
            diffs = self.timing_spec.differences(case.timing)
            if diffs:
                return None, self.incomparable(case.case.case_id, diffs)
        return case, None

    def incomparable(self, case_id: str, diffs: list[str]) -> ClaimVerdict:
        """The run measured the case, but not as the reference did: not judged as if comparable.
        A required claim FAILs (the run does not confirm it), an optional one is SKIP."""
        what = f"not comparable: {case_id} " + "; ".join(diffs)
        if self.required:
            return self.verdict(FAIL, f"{what}; re-run it as the reference was measured ({self.scope.describe()})",
                                missing=True, not_comparable=diffs, cases=[case_id])
        return self.verdict(SKIP, f"{what} (the claim is optional)", missing=True, not_comparable=diffs, cases=[case_id])

    def fetch_many(self, results: ResultSet, selector: CaseSelector) -> tuple[list[CaseResult], Optional[ClaimVerdict]]:
        found = results.select(selector)
        if not found:
            return [], self.missing(selector.describe(), "matches no case in the results folder")
        failed = [c for c in found if c.status == "failed"]
        if failed:
            c = failed[0]
            return [], self.verdict(FAIL, f"case {c.case.case_id} failed in the run: {c.reason}", cases=[c.case.case_id])
        skipped = [c for c in found if c.status != "ok"]
        if skipped and self.required:
            c = skipped[0]
            return [], self.missing(c.case.case_id, f"was skipped by the harness ({c.reason})")
        ok = [c for c in found if c.status == "ok"]
        if not ok:
            return [], self.missing(selector.describe(), "has no case that ran")
        return ok, None

    def fetch_checked(self, results: ResultSet, selector: CaseSelector, record: str) -> tuple[list[CaseResult], Optional[ClaimVerdict]]:
        """fetch_many, then require the correctness record (run without --no-correctness)."""
        found, early = self.fetch_many(results, selector)
        if early:
            return found, early
        unchecked = [c.case.case_id for c in found if c.correctness is None]
        if unchecked:
            return [], self.missing(unchecked[0], f"has no {record} (run without --no-correctness)")
        return found, None

    def missing(self, what: str, problem: str) -> ClaimVerdict:
        if self.required:
            return self.verdict(FAIL, f"missing: {what} {problem}; the reference requires it on {self.scope.describe()}", missing=True)
        return self.verdict(SKIP, f"{what} {problem} (the claim is optional)", missing=True)


def _common(node: Node) -> dict[str, Any]:
    req = node.get("required", required=False)
    desc = node.get("description", required=False)
    return {
        "id": node.get("id").text(),
        "kind": node.get("kind").value,
        "scope": parse_scope(node.get("scope")),
        "required": req.boolean() if req is not None else True,
        "description": desc.text() if desc is not None and desc.value else "",
        "line": node.line,
    }


# --------------------------------------------------------------------------- numbers
def groups_of(case: CaseResult) -> list[list[float]]:
    """The raw per-sample times of a case, one list per repetition."""
    if case.timing is None or not case.timing.repetitions:
        raise ArtifactError(f"case {case.case.case_id}: status ok but no timing in its file; re-run the case")
    return [list(r.samples_ms) for r in case.timing.repetitions]


def _other_cache(results: ResultSet, selector: CaseSelector) -> Optional[CaseResult]:
    """The result the selector would name with the other cache mode, if the run has it."""
    if selector.case_id is not None:
        for a, b in (("-warm-", "-cold-"), ("-cold-", "-warm-")):
            if a in selector.case_id:
                alt = CaseSelector(case_id=selector.case_id.replace(a, b, 1))
                break
        else:
            return None
    else:
        modes = selector.values.get("cache", ["warm"])
        others = [m for m in ("warm", "cold") if m not in modes]
        if not others:
            return None
        alt = selector.with_values(cache=others[0])
    found = results.select(alt)
    return found[0] if len(found) == 1 else None


def _fmt(x: Optional[float]) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}"


def _used(tol: Tolerance, reference: float, values: list[float]) -> float:
    """Share of the tolerance used by the farthest of `values` (log scale for relative bands)."""
    if tol.rel is not None:
        return max(abs(math.log(v / reference)) for v in values) / math.log1p(tol.rel)
    return max(abs(v - reference) for v in values) / tol.abs  # type: ignore[operator]


def judge_numeric(claim: Claim, tol: Tolerance, reference: float, estimate: float,
                  ci: Optional[tuple[float, float]], unit: str, what: str, cases: list[str], **kw: Any) -> ClaimVerdict:
    """PASS/FAIL of a number against reference within tolerance by the tolerance's rule."""
    lo, hi = tol.band(reference)
    if tol.rule == "equivalence":
        if ci is None:
            return claim.verdict(FAIL, f"{what}: rule equivalence needs a CI and the results have none", cases=cases)
        judged = [ci[0], ci[1]]
        inside = lo <= ci[0] and ci[1] <= hi
        how = f"CI [{_fmt(ci[0])}, {_fmt(ci[1])}] {'inside' if inside else 'not inside'} band [{_fmt(lo)}, {_fmt(hi)}]"
    else:
        judged = [estimate]
        inside = lo <= estimate <= hi
        how = f"estimate {_fmt(estimate)} {'inside' if inside else 'outside'} band [{_fmt(lo)}, {_fmt(hi)}]"
    if tol.rel is not None and min(judged) <= 0:
        used = math.inf
    else:
        used = _used(tol, reference, judged)
    why = f"{what} {_fmt(estimate)} {unit} vs reference {_fmt(reference)}: {how} ({used:.0%} of tolerance used)"
    return claim.verdict(
        PASS if inside else FAIL, why, measured=estimate, ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None,
        reference=reference, band_low=lo, band_high=hi, tolerance=tol.describe(), rule=tol.rule, unit=unit,
        tolerance_used=used, cases=cases, **kw,
    )


def bootstrap_medians(groups: list[list[float]], rng: np.random.Generator, size: int) -> np.ndarray:
    """Bootstrap draws of a case's median: repetitions resampled, then samples within each
    (with one repetition, the ordinary bootstrap of the median). Drawn by harness.stats'
    order-statistic identity, in O(size) memory: resampling indices took size x n (77 GiB for a
    case of 2.6M samples)."""
    from harness import stats

    arrays = [np.sort(np.asarray(g, dtype=float)) for g in groups]
    if len(arrays) == 1:
        return stats._draw_medians(arrays[0], size, rng)
    return stats._hierarchical_draws(arrays, "median", size, rng)


def loglog_slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of log(y) against log(x); y may be (draws, points)."""
    lx = np.log(np.asarray(x, dtype=float))
    ly = np.log(np.asarray(y, dtype=float))
    cx = lx - lx.mean()
    return (ly - ly.mean(axis=-1, keepdims=True)) @ cx / (cx @ cx)


def scaling_exponent(groups_per_point: list[list[list[float]]], seqs: list[int], level: float = 0.95,
                     size: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """Exponent p of time ~ S^p from the medians, with a percentile-bootstrap CI (each point
    resampled independently)."""
    medians = np.array([float(np.median([np.median(g) for g in groups])) for groups in groups_per_point])
    estimate = float(loglog_slope(np.array(seqs), medians))
    rng = np.random.default_rng(seed)
    draws = np.column_stack([bootstrap_medians(g, rng, size) for g in groups_per_point])
    slopes = loglog_slope(np.array(seqs), draws)
    tail = (1 - level) / 2
    return estimate, float(np.quantile(slopes, tail)), float(np.quantile(slopes, 1 - tail))


# --------------------------------------------------------------------------- absolute
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
    def parse(cls, node, ctx, common):
        return cls(
            case=parse_selector(node.get("case"), ctx.defaults, ctx.hardware.device, single=True),
            metric=node.get("metric").choice(tuple(ABSOLUTE_METRICS)),
            reference=node.get("reference").number(positive=True),
            tolerance=parse_tolerance(node.get("tolerance"), "rel"),
            **common,
        )

    def selectors(self):
        return [self.case]

    def summary(self):
        return f"{self.metric} of {self.case.describe()} = {_fmt(self.reference)} {ABSOLUTE_METRICS[self.metric]}, {self.tolerance.describe()}"

    def _judge(self, results):
        case, early = self.fetch_one(results, self.case)
        if early:
            return early
        s = case.timing.summary  # type: ignore[union-attr]
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
            note = clock_comparison(case, self.tolerance.derivation)
            v.why += f"; {note}"
            v.details.append(note)
        return v


def clock_comparison(case: CaseResult, derivation: Any) -> str:
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
    spread = f"{mine.sm_mhz_min:g}-{mine.sm_mhz_max:g}" if mine.sm_mhz_min is not None else "?"
    head = (f"clocks: this run's SM clock while timing had median {mine.sm_mhz_median:g} MHz ({spread}), the reference "
            f"runs' {ref['median']:g} MHz ({ref['min']:g}-{ref['max']:g})")
    if ratio < 0.98:
        return head + f": {1 - ratio:.1%} lower, so the card ran in a slower state, not only the kernel"
    if ratio > 1.02:
        return head + f": {ratio - 1:.1%} higher, so the card was not slower: the kernel (or its inputs) was"
    return head + ": within 2%, so the card's state does not explain the difference"


# --------------------------------------------------------------------------- ratio
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
    def parse(cls, node, ctx, common):
        num = parse_selector(node.get("numerator"), ctx.defaults, ctx.hardware.device, single=True)
        den = parse_selector(node.get("denominator"), ctx.defaults, ctx.hardware.device, single=True)
        if num.case_id is None and den.case_id is None:
            differ = [k for k in num.values if k != "backend" and num.values[k] != den.values.get(k)]
            if differ:
                raise node.get("denominator").error(
                    f"numerator and denominator differ in {', '.join(differ)}",
                    "a ratio compares two backends at one shape; for growth with S use a scaling claim",
                )
        return cls(numerator=num, denominator=den, reference=node.get("reference").number(positive=True),
                   tolerance=parse_tolerance(node.get("tolerance"), "rel"), **common)

    def selectors(self):
        return [self.numerator, self.denominator]

    def summary(self):
        return (f"time({_short(self.numerator)}) / time({_short(self.denominator)}) at {_shape(self.numerator)} = "
                f"{_fmt(self.reference)}, {self.tolerance.describe()}")

    def _judge(self, results):
        a, early = self.fetch_one(results, self.numerator)
        if early:
            return early
        b, early = self.fetch_one(results, self.denominator)
        if early:
            return early
        ci = results.ratio_ci(a, b)
        return judge_numeric(self, self.tolerance, self.reference, ci.estimate, (ci.low, ci.high), "x",
                             "ratio of medians", [a.case.case_id, b.case.case_id], ci_level=ci.level,
                             details=[f"CI method {ci.method}"] + [f"flag {f}" for f in ci.flags])


def _short(sel: CaseSelector) -> str:
    return sel.case_id if sel.case_id else str(sel.single("backend"))


def _shape(sel: CaseSelector) -> str:
    if sel.case_id:
        return sel.case_id
    v = {k: vals[0] for k, vals in sel.values.items() if len(vals) == 1}
    seq = f"S={v['seq']}" if "seq" in v else "S=*"
    return f"B={v.get('batch')} H={v.get('heads')} {seq} D={v.get('head_dim')} {v.get('dtype')}" + (" causal" if v.get("causal") else "")


# --------------------------------------------------------------------------- ranking
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
    def parse(cls, node, ctx, common):
        shape_node = node.get("shape")
        if shape_node.has("backend") or shape_node.has("case_id"):
            raise shape_node.error("a ranking's shape names no backend", "list the backends under 'order'")
        shape = parse_selector(shape_node, ctx.defaults, ctx.hardware.device, single=True, not_required=("backend",))
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

    def selectors(self):
        return [self.shape.with_values(backend=b) for g in self.order for b in g]

    def summary(self):
        text = " < ".join(g[0] if len(g) == 1 else "(" + " = ".join(g) + ")" for g in self.order)
        return f"at {_shape(self.shape)}: time {text} ({self.rule})"

    def _judge(self, results):
        cases: dict[str, CaseResult] = {}
        for g in self.order:
            for b in g:
                case, early = self.fetch_one(results, self.shape.with_values(backend=b))
                if early:
                    return early
                cases[b] = case  # type: ignore[assignment]
        worst = None
        details, broken = [], []
        for faster, slower in zip(self.order, self.order[1:]):
            for a in faster:
                for b in slower:
                    ci = results.ratio_ci(cases[a], cases[b])
                    holds = ci.high < 1.0 if self.rule == "significant" else ci.estimate < 1.0
                    details.append(f"{a}/{b} = {_fmt(ci.estimate)} [{_fmt(ci.low)}, {_fmt(ci.high)}]{'' if holds else ' (breaks the order)'}")
                    if not holds:
                        broken.append(f"{a} vs {b}")
                    key = ci.high if self.rule == "significant" else ci.estimate
                    if worst is None or key > worst[0]:
                        worst = (key, ci)
        ci = worst[1]  # type: ignore[index]
        ids = [c.case.case_id for c in cases.values()]
        test = "CI of each adjacent ratio below 1" if self.rule == "significant" else "each adjacent ratio below 1"
        if broken:
            why = f"order does not hold ({test}): {', '.join(broken)}; {'; '.join(details)}"
        else:
            why = f"order holds ({test}); closest pair ratio {_fmt(ci.estimate)} [{_fmt(ci.low)}, {_fmt(ci.high)}]"
        return self.verdict(PASS if not broken else FAIL, why, measured=ci.estimate, ci_low=ci.low, ci_high=ci.high,
                            ci_level=ci.level, reference=1.0, band_high=1.0, rule=self.rule, unit="x",
                            tolerance="adjacent ratio < 1", cases=ids, details=details)


# --------------------------------------------------------------------------- scaling
@dataclass(kw_only=True)
class ScalingClaim(Claim):
    """The exponent p of median time ~ S^p over the listed sequence lengths."""

    KIND: ClassVar[str] = "scaling"
    TIMED: ClassVar[bool] = True
    KEYS: ClassVar[tuple[str, ...]] = ("case", "seqs", "reference", "tolerance")
    case: CaseSelector
    seqs: list[int]
    reference: float
    tolerance: Tolerance

    @classmethod
    def parse(cls, node, ctx, common):
        case_node = node.get("case")
        if case_node.has("seq"):
            raise case_node.get("seq").error("seq is the axis of a scaling claim", "list the lengths under 'seqs'")
        case = parse_selector(case_node, ctx.defaults, ctx.hardware.device, single=True, not_required=("seq",))
        case.values.pop("seq", None)
        seqs = _seqs(node.get("seqs"))
        return cls(case=case, seqs=seqs, reference=node.get("reference").number(),
                   tolerance=parse_tolerance(node.get("tolerance"), "abs"), **common)

    def selectors(self):
        return [self.case.with_values(seq=s) for s in self.seqs]

    def summary(self):
        return (f"time of {_short(self.case)} ~ S^p over S={','.join(map(str, self.seqs))}: "
                f"p = {_fmt(self.reference)}, {self.tolerance.describe()}")

    def _judge(self, results):
        found = []
        for sel in self.selectors():
            case, early = self.fetch_one(results, sel)
            if early:
                return early
            found.append(case)
        est, lo, hi = scaling_exponent([groups_of(c) for c in found], self.seqs)
        return judge_numeric(self, self.tolerance, self.reference, est, (lo, hi), "", "exponent",
                             [c.case.case_id for c in found], ci_level=0.95,
                             details=["OLS slope of log(median) on log(S); percentile bootstrap CI"])


def _seqs(node: Node) -> list[int]:
    seqs = [i.integer(positive=True) for i in node.items()]
    if len(seqs) < 3:
        raise node.error(f"{len(seqs)} sequence lengths", "an exponent needs at least three points")
    if len(set(seqs)) != len(seqs):
        raise node.error("a sequence length appears twice")
    return sorted(seqs)


# --------------------------------------------------------------------------- efficiency
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
    def parse(cls, node, ctx, common):
        return cls(case=parse_selector(node.get("case"), ctx.defaults, ctx.hardware.device, single=True),
                   ceiling=node.get("ceiling").choice(tuple(CEILING_METRICS)),
                   reference=node.get("reference").number(positive=True),
                   tolerance=parse_tolerance(node.get("tolerance"), "rel"), **common)

    def selectors(self):
        return [self.case]

    @property
    def min_share(self) -> float:
        return self.reference / (1.0 + self.tolerance.rel)  # type: ignore[operator]

    def summary(self):
        what = "matmul" if self.ceiling == "matmul_tflops" else "copy"
        return (f"{self.case.describe()} reaches at least {self.min_share:.1%} of this card's measured {what} ceiling "
                f"(reference {self.reference:.1%}, {self.tolerance.describe()})")

    def _judge(self, results):
        case, early = self.fetch_one(results, self.case)
        if early:
            return early
        cid = case.case.case_id
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
        used = 0.0 if judged >= self.reference else math.log(self.reference / judged) / math.log1p(self.tolerance.rel)  # type: ignore[arg-type]
        how = f"{'CI low end' if self.tolerance.rule == 'equivalence' else 'estimate'} {judged:.2%} {'>=' if ok else '<'} bound {bound:.2%}"
        why = (f"share of the run's {self.ceiling} ceiling ({ceiling.value:g} {ceiling.unit}): {share:.2%} "
               f"[{lo:.2%}, {hi:.2%}] vs reference {self.reference:.2%}: {how} ({used:.0%} of tolerance used)")
        return self.verdict(PASS if ok else FAIL, why, measured=share, ci_low=lo, ci_high=hi, ci_level=s.ci_level,
                            reference=self.reference, band_low=bound, tolerance=f">= {bound:.4g} ({self.tolerance.describe()})",
                            rule=self.tolerance.rule, unit="share", tolerance_used=used, cases=[cid],
                            details=[f"ceiling {ceiling.metric} = {ceiling.value:g} {ceiling.unit} ({ceiling.what}), "
                                     f"median of {ceiling.n_samples} samples; its own CI is not propagated"])


# --------------------------------------------------------------------------- correctness
@dataclass(kw_only=True)
class CorrectnessClaim(Claim):
    """Every selected case's relative error against the float64 reference is at most a bound."""

    KIND: ClassVar[str] = "correctness"
    KEYS: ClassVar[tuple[str, ...]] = ("cases", "max_rel_error")
    cases: CaseSelector
    max_rel_error: float

    @classmethod
    def parse(cls, node, ctx, common):
        return cls(cases=parse_selector(node.get("cases"), ctx.defaults, ctx.hardware.device, single=False),
                   max_rel_error=node.get("max_rel_error").number(positive=True), **common)

    def selectors(self):
        return [self.cases]

    def summary(self):
        return f"relative error of {self.cases.describe()} <= {_fmt(self.max_rel_error)}"

    def _judge(self, results):
        found, early = self.fetch_checked(results, self.cases, "correctness record")
        if early:
            return early
        errs = {c.case.case_id: c.correctness.rel_error for c in found}  # type: ignore[union-attr]
        # Only a finite, non-negative error at most the bound passes: a comparison with NaN is
        # false both ways, so the test is "within the bound", never "not over it" (NaN passed).
        finite = {cid: e for cid, e in errs.items() if e is not None and math.isfinite(e)}
        bad = sorted(cid for cid in errs if cid not in finite or not 0.0 <= finite[cid] <= self.max_rel_error)
        largest_id = max(finite, key=lambda k: finite[k]) if finite else None
        measured = finite[largest_id] if largest_id is not None else None
        over = [f"{cid}: {_fmt(finite[cid]) if cid in finite else 'not finite (NaN or inf in the output)'}" for cid in bad]
        why = (f"largest relative error {_fmt(measured)}" + (f" ({largest_id})" if largest_id else "")
               + f" over {len(errs)} case(s), bound {_fmt(self.max_rel_error)}"
               + (f"; over the bound (or not a finite error): {', '.join(over)}" if over else ""))
        return self.verdict(FAIL if bad else PASS, why, measured=measured, reference=self.max_rel_error,
                            band_high=self.max_rel_error, tolerance=f"<= {_fmt(self.max_rel_error)}", rule="point",
                            tolerance_used=measured / self.max_rel_error if measured is not None else None,
                            cases=sorted(errs))


# --------------------------------------------------------------------------- memory
@dataclass(kw_only=True)
class MemoryClaim(Claim):
    """Peak allocated bytes of a case at most a bound, or the exponent of peak ~ S^p."""

    KIND: ClassVar[str] = "memory"
    KEYS: ClassVar[tuple[str, ...]] = ("case", "max_peak_bytes", "seqs", "reference", "tolerance")
    case: CaseSelector
    max_peak_bytes: Optional[int] = None
    seqs: Optional[list[int]] = None
    reference: Optional[float] = None
    tolerance: Optional[Tolerance] = None

    @classmethod
    def parse(cls, node, ctx, common):
        growth = node.has("seqs")
        if growth == node.has("max_peak_bytes"):
            raise node.error("give either max_peak_bytes (a bound) or seqs + reference + tolerance (growth)", "not both, not neither")
        case_node = node.get("case")
        if growth:
            if case_node.has("seq"):
                raise case_node.get("seq").error("seq is the axis of a growth claim", "list the lengths under 'seqs'")
            case = parse_selector(case_node, ctx.defaults, ctx.hardware.device, single=True, not_required=("seq",))
            case.values.pop("seq", None)
            return cls(case=case, seqs=_seqs(node.get("seqs")), reference=node.get("reference").number(),
                       tolerance=parse_tolerance(node.get("tolerance"), "abs"), **common)
        return cls(case=parse_selector(case_node, ctx.defaults, ctx.hardware.device, single=True),
                   max_peak_bytes=node.get("max_peak_bytes").integer(positive=True), **common)

    def selectors(self):
        if self.seqs:
            return [self.case.with_values(seq=s) for s in self.seqs]
        return [self.case]

    def summary(self):
        if self.seqs:
            return (f"peak memory of {_short(self.case)} ~ S^p over S={','.join(map(str, self.seqs))}: "
                    f"p = {_fmt(self.reference)}, {self.tolerance.describe()}")  # type: ignore[union-attr]
        return f"peak allocated memory of {self.case.describe()} <= {self.max_peak_bytes} bytes"

    def _peak(self, case: CaseResult) -> Optional[int]:
        return case.memory.peak_allocated_bytes if case.memory is not None else None

    def _judge(self, results):
        found = []
        for sel in self.selectors():
            case, early = self.fetch_one(results, sel)
            if early:
                return early
            if self._peak(case) is None:  # type: ignore[arg-type]
                return self.missing(case.case.case_id, "has no peak-memory reading (no allocator statistics on this device)")  # type: ignore[union-attr]
            found.append(case)
        ids = [c.case.case_id for c in found]
        if self.seqs:
            peaks = np.array([self._peak(c) for c in found], dtype=float)
            est = float(loglog_slope(np.array(self.seqs), peaks))
            return judge_numeric(self, self.tolerance, self.reference, est, None, "", "memory growth exponent", ids,  # type: ignore[arg-type]
                                 details=[f"S={s}: {int(p)} bytes" for s, p in zip(self.seqs, peaks)])
        peak = self._peak(found[0])
        ok = peak <= self.max_peak_bytes  # type: ignore[operator]
        why = f"peak allocated {peak} bytes {'<=' if ok else '>'} bound {self.max_peak_bytes}"
        return self.verdict(PASS if ok else FAIL, why, measured=float(peak), reference=float(self.max_peak_bytes),  # type: ignore[arg-type]
                            band_high=float(self.max_peak_bytes), tolerance=f"<= {self.max_peak_bytes} B", rule="point",  # type: ignore[arg-type]
                            unit="B", tolerance_used=peak / self.max_peak_bytes, cases=ids)  # type: ignore[operator]


# --------------------------------------------------------------------------- determinism
@dataclass(kw_only=True)
class DeterminismClaim(Claim):
    """Every selected case gave bitwise-identical outputs when run twice on the same inputs."""

    KIND: ClassVar[str] = "determinism"
    KEYS: ClassVar[tuple[str, ...]] = ("cases",)
    cases: CaseSelector

    @classmethod
    def parse(cls, node, ctx, common):
        return cls(cases=parse_selector(node.get("cases"), ctx.defaults, ctx.hardware.device, single=False), **common)

    def selectors(self):
        return [self.cases]

    def summary(self):
        return f"bitwise-identical repeats for {self.cases.describe()}"

    def _judge(self, results):
        found, early = self.fetch_checked(results, self.cases, "repeat check")
        if early:
            return early
        differ = [c.case.case_id for c in found if not c.correctness.bitwise_repeat]  # type: ignore[union-attr]
        same = len(found) - len(differ)
        why = f"{same} of {len(found)} case(s) repeated bitwise-identically" + (f"; differ: {', '.join(differ)}" if differ else "")
        return self.verdict(FAIL if differ else PASS, why, measured=same / len(found), reference=1.0, band_low=1.0,
                            tolerance="all identical", rule="point", unit="share", cases=sorted(c.case.case_id for c in found))


# --------------------------------------------------------------------------- environment
_ENV_KEYS = ("tf32_off", "deterministic", "fill_off", "min_nvidia_driver", "min_cuda_driver")


@dataclass(kw_only=True)
class EnvironmentClaim(Claim):
    """Settings that were in force during the run (read back by the harness into env.json)."""

    KIND: ClassVar[str] = "environment"
    KEYS: ClassVar[tuple[str, ...]] = ("require",)
    tf32_off: Optional[bool] = None
    deterministic: Optional[bool] = None
    fill_off: Optional[bool] = None  # no NaN fill of uninitialised memory inside the timed region
    min_nvidia_driver: Optional[str] = None
    min_cuda_driver: Optional[str] = None

    @classmethod
    def parse(cls, node, ctx, common):
        req = node.get("require")
        req.only_keys(_ENV_KEYS)
        if not req.mapping():
            raise req.error("nothing required", f"name at least one of {', '.join(_ENV_KEYS)}")
        kw: dict[str, Any] = {}
        for key in ("tf32_off", "deterministic", "fill_off"):
            if req.has(key):
                kw[key] = req.get(key).boolean()
        for key in ("min_nvidia_driver", "min_cuda_driver"):
            if req.has(key):
                sub = req.get(key)
                text = str(sub.value) if isinstance(sub.value, (str, int, float)) and not isinstance(sub.value, bool) else ""
                if not _version(text):
                    raise sub.error(f"expected a version like \"535.104\", got {sub.value!r}", "quote it")
                kw[key] = text
        return cls(**kw, **common)

    def selectors(self):
        return []

    def summary(self):
        parts = []
        if self.tf32_off is not None:
            parts.append("TF32 " + ("off" if self.tf32_off else "allowed"))
        if self.deterministic is not None:
            parts.append("deterministic algorithms " + ("on" if self.deterministic else "off"))
        if self.fill_off is not None:
            parts.append("no NaN fill of uninitialised memory while timing" if self.fill_off else "NaN fill on")
        if self.min_nvidia_driver:
            parts.append(f"NVIDIA driver >= {self.min_nvidia_driver}")
        if self.min_cuda_driver:
            parts.append(f"driver CUDA >= {self.min_cuda_driver}")
        return ", ".join(parts)

    def _judge(self, results):
        env = results.env
        lock = env.lock or {}
        checks: list[tuple[bool, str]] = []
        if self.tf32_off is not None:
            vals = (lock.get("matmul_allow_tf32"), lock.get("cudnn_allow_tf32"))
            if None in vals:
                checks.append((False, "TF32 settings not recorded in env.json lock"))
            else:
                off = not any(vals)
                checks.append((off == self.tf32_off, f"TF32 matmul={vals[0]} cudnn={vals[1]}"))
        if self.deterministic is not None:
            vals = (lock.get("deterministic_algorithms"), lock.get("cudnn_deterministic"))
            if None in vals:
                checks.append((False, "determinism settings not recorded in env.json lock"))
            else:
                on = all(vals)
                checks.append((on == self.deterministic, f"deterministic_algorithms={vals[0]} cudnn_deterministic={vals[1]}"))
        if self.fill_off is not None:
            checks.append(self._fill_check(results, lock))
        for key, have, label in (("min_nvidia_driver", env.nvidia_driver_version, "NVIDIA driver"),
                                 ("min_cuda_driver", env.cuda_driver_version, "driver CUDA")):
            need = getattr(self, key)
            if need is None:
                continue
            if have is None:
                field_name = "nvidia_driver_version" if key == "min_nvidia_driver" else "cuda_driver_version"
                checks.append((False, f"{label} not recorded ({env.unavailable.get(field_name, 'no reason given')})"))
            else:
                checks.append((_version(have) >= _version(need), f"{label} {have} (need >= {need})"))
        relevant = ("matmul_allow_tf32", "cudnn_allow_tf32", "deterministic_algorithms", "cublas_workspace_config",
                    "fill_uninitialized_memory")
        failures = [f"{k}: {v}" for k, v in (env.lock_failures or {}).items() if k in relevant]
        for f in failures:
            checks.append((False, f"lock failure {f}"))
        bad = [text for ok, text in checks if not ok]
        good = [text for ok, text in checks if ok]
        why = ("not met: " + "; ".join(bad) + (f" (met: {'; '.join(good)})" if good else "")) if bad else "met: " + "; ".join(good)
        return self.verdict(FAIL if bad else PASS, why, rule="point", tolerance="exact", details=[t for _, t in checks])


    def _fill_check(self, results: ResultSet, lock: dict[str, Any]) -> tuple[bool, str]:
        """The fill must be off where the timing happened: env.json's lock read-back, and the value
        each case read in the timing process right before sampling (CaseResult.timing)."""
        locked = lock.get("fill_uninitialized_memory")
        if locked is None:
            return False, ("fill_uninitialized_memory not recorded in env.json lock (a harness from before issue 8, whose "
                           "timings include a NaN fill kernel)")
        per_case = [c.timing.fill_uninitialized_memory for c in results.cases if c.status == "ok" and c.timing is not None]
        on = sum(v is True for v in per_case)
        unknown = sum(v is None for v in per_case)
        want_off = bool(self.fill_off)
        ok = (not locked) == want_off and (on == 0 if want_off else True) and unknown == 0
        text = (f"fill_uninitialized_memory={locked} in env.json; in the timing process: {len(per_case) - on - unknown} "
                f"case(s) off, {on} on" + (f", {unknown} not recorded" if unknown else ""))
        return ok, text


def _version(text: str) -> tuple[int, ...]:
    parts = str(text).strip().split(".")
    if not parts or not all(p.isdigit() for p in parts):
        return ()
    return tuple(int(p) for p in parts)


# --------------------------------------------------------------------------- the registry
CLAIM_KINDS: dict[str, type[Claim]] = {
    cls.KIND: cls
    for cls in (AbsoluteClaim, RatioClaim, RankingClaim, ScalingClaim, EfficiencyClaim, CorrectnessClaim, MemoryClaim,
                DeterminismClaim, EnvironmentClaim)
}


def parse_claim(node: Node, ctx: ParseContext) -> Claim:
    node.mapping()
    kind = node.get("kind").choice(tuple(CLAIM_KINDS))
    cls = CLAIM_KINDS[kind]
    node.only_keys(_COMMON_KEYS + cls.KEYS)
    claim = cls.parse(node, ctx, _common(node))
    if cls.TIMED:
        claim.timing_spec = ctx.timing
    return claim
