"""The checker's own look at whether a case's times are possible (issue 16, torch-free).

The harness judges its cases in the process that ran the kernel under test, and that kernel is
untrusted code: an ok in cases/<id>.json is a claim, not evidence. Here every ok case is held
again to the roofline of the folder's own ceilings (ceilings.json, measured in the same run, and
env.json's L2 size), with the median recomputed from the raw samples (artifact/results.py), by
the same rule the harness applies (harness/integrity/roofline.py). A case faster than the GPU can
do its work is treated as invalid in memory, whatever the file says; the folder is not changed.

A folder without ceilings.json (the committed H100 runs) has no roofline to hold its cases to:
nothing is rechecked there, and `recheck` says how many cases it did check. A CPU run's ceilings
move with the machine's load, so a CPU case is held with the harness's wider CPU slack.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from harness.integrity import roofline
from harness.records import CaseResult, CeilingsRecord, EnvRecord

CHECKER_PREFIX = "invalid (checker): "


@dataclass(frozen=True)
class Recheck:
    cases: list[CaseResult]  # the folder's cases, an impossible ok case now `invalid`
    checked: int  # ok cases held to the roofline
    tripped: list[str]  # case ids the checker made invalid


def case_bound(case: CaseResult, ceilings: Optional[CeilingsRecord], env: EnvRecord) -> Optional[roofline.RooflineBound]:
    """The roofline of one timed case from the folder's ceilings, None where there is none to hold it to."""
    t = case.throughput
    if ceilings is None or t is None or case.timing is None or case.case.device != ceilings.device:
        return None
    # As the harness holds it (harness/integrity/checks.py): a GPU's L2 from env.json; a CPU's
    # cache size is not known, and its ceilings get the wider CPU slack.
    l2 = env.gpu.l2_bytes if env.gpu is not None and case.case.device == "cuda" else None
    return roofline.bound(t.flops, t.bytes, ceilings, cache=case.case.cache, l2_bytes=l2, device=case.case.device)


def recheck(cases: list[CaseResult], ceilings: Optional[CeilingsRecord], env: EnvRecord) -> Recheck:
    out, checked, tripped = [], 0, []
    for case in cases:
        b = case_bound(case, ceilings, env) if case.status == "ok" else None
        if b is None or case.timing is None:
            out.append(case)
            continue
        checked += 1
        why = roofline.impossible(case.timing.summary.median_ms, b)
        if why is None:
            out.append(case)
            continue
        tripped.append(case.case.case_id)
        out.append(replace(case, status="invalid", reason=CHECKER_PREFIX + why))
    return Recheck(out, checked, tripped)


def invalid_cases(cases: list[CaseResult]) -> list[CaseResult]:
    return [c for c in cases if c.status == "invalid"]


def why_invalid(case: CaseResult) -> str:
    """The reason without the status word the harness puts before it ("invalid: ...")."""
    reason = case.reason or "no reason recorded"
    if reason.startswith(CHECKER_PREFIX):
        return "the checker's own roofline: " + reason[len(CHECKER_PREFIX):]
    return reason.removeprefix("invalid: ")
