"""The base of every claim kind: what a judge returns (ClaimVerdict), how a kind is parsed from
and written back to a reference file's entry, and the rules every judge follows (torch-free).

Rules every judge follows:
- Out of scope (other hardware) -> SKIP with the reason, before anything is read.
- A case the claim needs that the run did not produce (absent, or skipped by the harness) ->
  FAIL "missing" when the claim is `required` (the default: a run in scope must produce it), SKIP
  when it is not. A case the harness tried and that failed -> FAIL. The verdict says which.
- A case that is invalid (its timed calls were not shown to do the work, by the harness or by
  artifact/results/integrity.py) -> FAIL "case <id> is invalid: <reason>", required or not: never PASS
  on numbers that certify nothing, never SKIP as if the case were merely absent. Except a case
  invalid because it was timed beside another process on the GPU (issue 17): SKIP "not judged",
  and the verdict is INVALID with exit code 4 whatever its claims say, so it never reads as PASS.
- Numeric claims record their rule: "point" (the estimate inside the band) or "equivalence" (the
  whole CI inside the band); rankings use "point" or "significant" (the CI of each adjacent ratio
  entirely below 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

from artifact.claims.parts import CaseSelector, Scope, TimingSpec, Tolerance, parse_scope
from artifact.errors import ArtifactError
from artifact.results.folder import ResultSet
from artifact.results.integrity import is_shared, why_invalid
from artifact.textfmt import num
from artifact.yamlnode import Node
from harness.records import CaseResult

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


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
    defaults: dict[str, Any]  # the reference file's case defaults
    device: str  # the reference hardware's: a selector's default device
    timing: Optional[TimingSpec] = None  # how the reference's cases were timed (schema 2)



# --------------------------------------------------------------------------- the base
COMMON_KEYS = ("id", "kind", "scope", "required", "description")


@dataclass(kw_only=True)
class Claim:
    KIND: ClassVar[str] = ""
    KEYS: ClassVar[tuple[str, ...]] = ()
    # Judges a time: each case it reads must be timed as the reference's were (TimingSpec).
    TIMED: ClassVar[bool] = False

    id: str
    scope: Scope
    kind: str = ""  # KIND, as the file names it
    required: bool = True
    description: str = ""
    # Where and with what the file was read, not part of the claim: a claim derive builds equals
    # the one parsed back from what it wrote.
    line: int = field(default=0, compare=False)
    timing_spec: Optional[TimingSpec] = field(default=None, compare=False)  # set by parse_claim for TIMED kinds

    def __post_init__(self) -> None:
        self.kind = self.kind or self.KIND

    # -- what subclasses provide
    @classmethod
    def parse(cls, node: Node, ctx: ParseContext, common: dict[str, Any]) -> Claim:
        raise NotImplementedError

    def own_entry(self) -> dict[str, Any]:
        """The kind's own fields (KEYS) as written in a reference file; `parse` reads them back."""
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
    def entry(self) -> dict[str, Any]:
        """The claim as one entry of a reference file's `claims`, as derive-reference writes it:
        id, kind, scope, required (only when false), the kind's fields, description."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "scope": self.scope.entry()}
        if not self.required:
            out["required"] = False
        out.update(self.own_entry())
        if self.description:
            out["description"] = self.description
        return out

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
            other = other_cache(results, selector)
            if other is not None:
                diff = (f"{other.case.case_id} was measured with a {other.case.cache} cache; the reference's case "
                        f"{selector.describe()} with a {'warm' if other.case.cache == 'cold' else 'cold'} one")
                return None, self.incomparable(other.case.case_id, [diff])
            return None, self.missing(selector.describe(), "is not in the results folder")
        case = found[0]
        if case.status == "invalid":
            return None, self.invalid(case)
        if case.status == "failed":
            return None, self.verdict(FAIL, f"case {case.case.case_id} failed in the run: {case.reason}", cases=[case.case.case_id])
        if case.status != "ok":
            return None, self.missing(case.case.case_id, f"was skipped by the harness ({case.reason})")
        if self.TIMED and self.timing_spec is not None and case.timing is not None:
            diffs = self.timing_spec.differences(case.timing)
            if diffs:
                return None, self.incomparable(case.case.case_id, diffs)
        return case, None

    def invalid(self, case: CaseResult) -> ClaimVerdict:
        """A case whose timed calls were not shown to do the work: its numbers confirm nothing, so
        the claim FAILs, optional or not (an optional claim SKIPs only what was not measured).
        A case timed beside another process on the GPU says nothing about the kernel either way:
        the claim is not judged (SKIP), and the verdict is INVALID with exit code 4."""
        if is_shared(case):
            return self.verdict(SKIP, f"not judged: case {case.case.case_id} was timed on a shared GPU "
                                f"({why_invalid(case).split(';')[0]})", cases=[case.case.case_id])
        return self.verdict(FAIL, f"case {case.case.case_id} is invalid: {why_invalid(case)}", cases=[case.case.case_id])

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
        invalid = [c for c in found if c.status == "invalid"]
        if invalid:
            return [], self.invalid(invalid[0])
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


def common_fields(node: Node) -> dict[str, Any]:
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



def other_cache(results: ResultSet, selector: CaseSelector) -> Optional[CaseResult]:
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



def tolerance_used(tol: Tolerance, reference: float, values: list[float]) -> float:
    """Share of the tolerance used by the farthest of `values` (log scale for relative bands)."""
    if tol.rel is not None:
        return max(abs(math.log(v / reference)) for v in values) / math.log1p(tol.rel)
    return max(abs(v - reference) for v in values) / tol.width


def judge_numeric(claim: Claim, tol: Tolerance, reference: float, estimate: float,
                  ci: Optional[tuple[float, float]], unit: str, what: str, cases: list[str], **kw: Any) -> ClaimVerdict:
    """PASS/FAIL of a number against reference within tolerance by the tolerance's rule."""
    lo, hi = tol.band(reference)
    if tol.rule == "equivalence":
        if ci is None:
            return claim.verdict(FAIL, f"{what}: rule equivalence needs a CI and the results have none", cases=cases)
        judged = [ci[0], ci[1]]
        inside = lo <= ci[0] and ci[1] <= hi
        how = f"CI [{num(ci[0])}, {num(ci[1])}] {'inside' if inside else 'not inside'} band [{num(lo)}, {num(hi)}]"
    else:
        judged = [estimate]
        inside = lo <= estimate <= hi
        how = f"estimate {num(estimate)} {'inside' if inside else 'outside'} band [{num(lo)}, {num(hi)}]"
    if tol.rel is not None and min(judged) <= 0:
        used = math.inf
    else:
        used = tolerance_used(tol, reference, judged)
    why = f"{what} {num(estimate)} {unit} vs reference {num(reference)}: {how} ({used:.0%} of tolerance used)"
    return claim.verdict(
        PASS if inside else FAIL, why, measured=estimate, ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None,
        reference=reference, band_low=lo, band_high=hi, tolerance=tol.describe(), rule=tol.rule, unit=unit,
        tolerance_used=used, cases=cases, **kw,
    )



def short(sel: CaseSelector) -> str:
    return sel.case_id if sel.case_id else str(sel.single("backend"))


def shape_words(sel: CaseSelector) -> str:
    if sel.case_id:
        return sel.case_id
    v = {k: vals[0] for k, vals in sel.values.items() if len(vals) == 1}
    seq = f"S={v['seq']}" if "seq" in v else "S=*"
    return f"B={v.get('batch')} H={v.get('heads')} {seq} D={v.get('head_dim')} {v.get('dtype')}" + (" causal" if v.get("causal") else "")



def parse_seqs(node: Node) -> list[int]:
    seqs = [i.integer(positive=True) for i in node.items()]
    if len(seqs) < 3:
        raise node.error(f"{len(seqs)} sequence lengths", "an exponent needs at least three points")
    if len(set(seqs)) != len(seqs):
        raise node.error("a sequence length appears twice")
    return sorted(seqs)


def parse_series(node: Node, ctx: ParseContext, what: str) -> dict[str, Any]:
    """The fields of an exponent claim (scaling, memory growth): one case over `seqs`."""
    from artifact.claims.parts import parse_selector, parse_tolerance

    case_node = node.get("case")
    if case_node.has("seq"):
        raise case_node.get("seq").error(f"seq is the axis of a {what} claim", "list the lengths under 'seqs'")
    case = parse_selector(case_node, ctx.defaults, ctx.device, single=True, not_required=("seq",))
    case.values.pop("seq", None)
    return {"case": case, "seqs": parse_seqs(node.get("seqs")), "reference": node.get("reference").number(),
            "tolerance": parse_tolerance(node.get("tolerance"), "abs")}


class SeriesMixin:
    """An exponent claim's entry, cases and wording: p of QUANTITY ~ S^p over `seqs`."""

    QUANTITY: ClassVar[str]
    case: CaseSelector
    seqs: list[int]
    reference: float
    tolerance: Tolerance

    def own_entry(self) -> dict[str, Any]:
        return {"case": self.case.entry(), "seqs": list(self.seqs), "reference": self.reference,
                "tolerance": self.tolerance.entry()}

    def selectors(self) -> list[CaseSelector]:
        return [self.case.with_values(seq=s) for s in self.seqs]

    def summary(self) -> str:
        return (f"{self.QUANTITY} of {short(self.case)} ~ S^p over S={','.join(map(str, self.seqs))}: "
                f"p = {num(self.reference)}, {self.tolerance.describe()}")
