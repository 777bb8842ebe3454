"""The checker's own look at whether a case's times are possible (issue 16, torch-free).

The harness judges its cases in the process that ran the kernel under test, and that kernel is
untrusted code: an ok in cases/<id>.json is a claim, not evidence. Here every ok case is held
again to the roofline of the folder's own ceilings (ceilings.json, measured in the same run, and
env.json's L2 size), with the median recomputed from the raw samples (artifact/results/checks.py), by
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
from harness.machine.gate import SHARED_PREFIX, describe_all
from harness.records import CaseResult, CeilingsRecord, EnvRecord, GpuProcess

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


def is_shared(case: CaseResult) -> bool:
    """Invalid because it was timed beside another process on the GPU (the harness's watch), not
    because of the kernel: its claims are not judged, and the verdict's exit code is 4."""
    return case.status == "invalid" and (case.reason or "").startswith(SHARED_PREFIX)


def invalid_cases(cases: list[CaseResult]) -> list[CaseResult]:
    """Cases whose timed calls were not shown to do the work (the kernel's doing)."""
    return [c for c in cases if c.status == "invalid" and not is_shared(c)]


def shared_cases(cases: list[CaseResult]) -> list[CaseResult]:
    return [c for c in cases if is_shared(c)]


def other_processes(cases: list[CaseResult], ceilings: Optional[CeilingsRecord], env: EnvRecord) -> list[GpuProcess]:
    """Every other process the run saw on the GPU (the gate's and each watch's), first reading each."""
    seen: dict[int, GpuProcess] = {}
    watches = [c.watch for c in cases if c.watch is not None] + ([ceilings.watch] if ceilings is not None and ceilings.watch else [])
    for p in (env.machine.foreign if env.machine is not None else []) + [p for w in watches for p in w.foreign]:
        seen.setdefault(p.pid, p)
    return [seen[k] for k in sorted(seen)]


def shared_note(cases: list[CaseResult], ceilings: Optional[CeilingsRecord], env: EnvRecord) -> Optional[str]:
    """One line naming what shared the GPU and what it touched, None when nothing did."""
    bad = shared_cases(cases)
    roofs = roofline.contended(ceilings)
    if not bad and not roofs:
        return None
    procs = other_processes(cases, ceilings, env)
    named = describe_all(procs) or "work NVML could not attribute to a process"
    touched = [f"{len(bad)} case(s)"] if bad else []
    if roofs:
        touched.append("the ceilings (so no roofline or efficiency claim is judged)")
    first = f" (first: {bad[0].case.case_id})" if bad else ""
    return (f"the GPU was shared: another process ran on it ({named}) while {' and '.join(touched)} were timed{first}; "
            "times beside it measure the contention, not the kernels, so their claims are not judged. "
            "Rerun on an idle GPU (nvidia-smi lists what runs on it)")


def why_invalid(case: CaseResult) -> str:
    """The reason without the status word the harness puts before it ("invalid: ...")."""
    reason = case.reason or "no reason recorded"
    if reason.startswith(CHECKER_PREFIX):
        return "the checker's own roofline: " + reason[len(CHECKER_PREFIX):]
    return reason.removeprefix("invalid: ")
