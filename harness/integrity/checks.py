"""The integrity checks' names, bounds and verdict (torch-free).

Every bound is stated here, once, and written into each check's record (`bound`), so a reader of
a case file sees what the numbers were held to. Honest cases of the committed H200 runs sit far
inside each bound (the figures are in each constant's comment).
"""

from __future__ import annotations

from typing import Optional

from harness.integrity import roofline
from harness.records import CeilingsRecord, Integrity, IntegrityCheck

TIMED_OUTPUTS = "timed_outputs"
OUTPUT_ALIAS = "output_alias"
CENSUS_VS_EAGER = "census_vs_eager"
CENSUS_TIME = "census_time"
ROOFLINE = "roofline"
HOST_CLOCK = "host_clock"
TIMER_TAMPER = "timer_tamper"
NAMES = (TIMED_OUTPUTS, OUTPUT_ALIAS, CENSUS_VS_EAGER, CENSUS_TIME, ROOFLINE, HOST_CLOCK, TIMER_TAMPER)
# The checks that hold whatever else runs on the GPU: what the kernel returned and launched, and
# its own code. The others compare times, which another process on the GPU distorts; on a case
# timed beside one, only these make the case the kernel's fault (harness/machine/).
CONTENTION_PROOF = (TIMED_OUTPUTS, OUTPUT_ALIAS, CENSUS_VS_EAGER, TIMER_TAMPER)

# Input sets rotated between timed batches (each with its own buffers and graph).
INPUT_SETS = 2
# Host-clock loop per call over the event median: at most this (plus HOST_CLOCK_SLACK_MS spread
# over the loop's calls for the synchronize latency). A patched or fooled timer, or work left on
# another stream, reads far beyond; an honest graph replay reads 1.00-1.02.
HOST_CLOCK_MAX_RATIO = 1.25
HOST_CLOCK_SLACK_MS = 0.1
# The timed graph's kernel time per call over the median: honest H200 cases 0.85-1.04 (the
# census replay may run at a higher clock after a pause). Outside [1/2, 2] the timed region did
# not run what the census saw.
CENSUS_SHARE_RANGE = (0.5, 2.0)
# The timed graph's kernel time per call against an eager call's: below half, the timed calls did
# far less work than a call on fresh inputs does.
EAGER_TIME_MIN_RATIO = 0.5


def host_clock(host_ms: float, event_ms: float, calls: int) -> IntegrityCheck:
    allowed = event_ms * HOST_CLOCK_MAX_RATIO + HOST_CLOCK_SLACK_MS / max(calls, 1)
    ratio = host_ms / event_ms if event_ms > 0 else float("inf")
    ok = host_ms <= allowed
    detail = (f"host clock {host_ms:.4g} ms per call over {calls} device-synchronised calls vs event median "
              f"{event_ms:.4g} ms ({ratio:.3g}x; allowed {HOST_CLOCK_MAX_RATIO:g}x + {HOST_CLOCK_SLACK_MS:g} ms per loop)")
    if not ok:
        detail = ("the event timer disagrees with the host clock: " + detail
                  + "; the timer was fooled, or work ran outside the timed stream")
    return IntegrityCheck(HOST_CLOCK, ok, detail, value=ratio if ratio != float("inf") else None,
                          bound=HOST_CLOCK_MAX_RATIO)


def host_clock_not_run(why: str) -> IntegrityCheck:
    return IntegrityCheck(HOST_CLOCK, None, why)


def roofline_check(median_ms: float, flops: float, nbytes: float, ceilings: Optional[CeilingsRecord], *,
                   cache: str, l2_bytes: Optional[int], device: str) -> IntegrityCheck:
    b = roofline.bound(flops, nbytes, ceilings, cache=cache, l2_bytes=l2_bytes, device=device)
    if b is None:
        return IntegrityCheck(ROOFLINE, None, "not run: the ceilings were measured while another process was on the GPU"
                              if roofline.contended(ceilings) else "no ceilings measured in this run (ceilings: false or --no-ceilings)")
    why = roofline.impossible(median_ms, b)
    ratio = median_ms / b.min_ms
    if why:
        return IntegrityCheck(ROOFLINE, False, why, value=ratio, bound=1 / b.slack)
    return IntegrityCheck(ROOFLINE, True, f"median {median_ms:.4g} ms is {ratio:.3g}x the {b.describe()}",
                          value=ratio, bound=1 / b.slack)


def tamper(changed: list[str]) -> IntegrityCheck:
    if changed:
        shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
        return IntegrityCheck(TIMER_TAMPER, False,
                              f"timing functions were replaced after the harness bound them: {shown}; the workload's "
                              "code patched the timer, statistics or checks (every case measured after it is suspect)")
    return IntegrityCheck(TIMER_TAMPER, True, "no timing, statistics or check function replaced since the harness bound them")


def assemble(checks: list[IntegrityCheck], input_sets: int, refreshes: int) -> Integrity:
    order = {n: i for i, n in enumerate(NAMES)}
    return Integrity(checks=sorted(checks, key=lambda c: order.get(c.name, len(order))), input_sets=input_sets,
                     refreshes=refreshes)


def kernel_failures(integrity: Integrity) -> list[IntegrityCheck]:
    """Failed checks that another process on the GPU cannot explain."""
    return [c for c in integrity.failed() if c.name in CONTENTION_PROOF]


def reason(integrity: Integrity) -> Optional[str]:
    """The case's `invalid: ...` reason (the first failed check, and how many more), or None."""
    failed = integrity.failed()
    if not failed:
        return None
    more = f" (and {len(failed) - 1} more failed check(s): {', '.join(c.name for c in failed[1:])})" if len(failed) > 1 else ""
    return f"invalid: {failed[0].name}: {failed[0].detail}{more}"
