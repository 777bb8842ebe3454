"""The timed graph's kernels against an eager call's (torch-free; the censuses are harness/census.py's).

The timer replays a CUDA graph captured from the kernel's callable; a kernel that behaves
differently while it is captured (records nothing, records a cheaper kernel, answers from a cache
it filled while being warmed up) shows here: the graph's census of 8 calls, on the timed inputs,
against one eager call on inputs it has never seen.

- census_vs_eager: every kernel the eager call launches is in the timed graph, as often per call,
  and the graph's kernel time per call is at least EAGER_TIME_MIN_RATIO of the eager call's.
- census_time (GPU): the graph's kernel time per call explains the timed median, within
  CENSUS_SHARE_RANGE: the timed region ran what the census saw, and nothing far bigger.
On the CPU the census lists ATen operators; only the first check applies, on operator counts.
"""

from __future__ import annotations

from collections import defaultdict

from harness.census import short_name
from harness.integrity.checks import (
    CENSUS_SHARE_RANGE,
    CENSUS_TIME,
    CENSUS_VS_EAGER,
    EAGER_TIME_MIN_RATIO,
)
from harness.records import Census, IntegrityCheck

# Activities that are work (kernels; CPU operators). Memsets and copies may be graph nodes or not.
_WORK = ("kernel", "cpu_op")


def _launches(census: Census) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for e in census.entries:
        if e.kind in _WORK:
            out[short_name(e.name)] += e.launches_per_call
    return dict(out)


def _work_ms(census: Census) -> float:
    return sum(e.ms_per_call for e in census.entries if e.kind in _WORK)


def versus_eager(timed: Census, eager: Census, device: str) -> IntegrityCheck:
    got, want = _launches(timed), _launches(eager)
    problems = []
    if not got and want:
        problems.append("the timed graph ran no kernel at all")
    for name, n in sorted(want.items(), key=lambda kv: -kv[1]):
        have = got.get(name, 0.0)
        if have + 1e-9 < n:
            problems.append(f"{name}: {have:g} launches per timed call, {n:g} in an eager call")
    total_got, total_want = sum(got.values()), sum(want.values())
    what = "operators" if device == "cpu" else "kernels"
    if device == "cuda" and not problems:
        t_got, t_want = _work_ms(timed), _work_ms(eager)
        if t_want > 0 and t_got < EAGER_TIME_MIN_RATIO * t_want:
            problems.append(f"kernel time {t_got:.4g} ms per timed call against {t_want:.4g} ms in an eager call "
                            f"(below {EAGER_TIME_MIN_RATIO:g}x)")
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        return IntegrityCheck(CENSUS_VS_EAGER, False,
                              f"the timed calls did not run what an eager call runs: {shown}",
                              value=total_got / total_want if total_want else None, bound=1.0)
    return IntegrityCheck(CENSUS_VS_EAGER, True,
                          f"{total_got:g} {what} launches per timed call, {total_want:g} in an eager call on fresh inputs; "
                          "every eager one present", value=total_got / total_want if total_want else None, bound=1.0)


def time_share(timed: Census, median_ms: float, device: str) -> IntegrityCheck:
    if device != "cuda":
        return IntegrityCheck(CENSUS_TIME, None, "CPU: operator self times do not add up to a call's time")
    lo, hi = CENSUS_SHARE_RANGE
    share = _work_ms(timed) / median_ms if median_ms > 0 else 0.0
    if lo <= share <= hi:
        return IntegrityCheck(CENSUS_TIME, True, f"the timed graph's kernels take {share:.3g}x the median",
                              value=share, bound=lo)
    side = "far below" if share < lo else "far above"
    return IntegrityCheck(CENSUS_TIME, False,
                          f"the timed graph's kernels take {share:.3g}x the median ({side}; allowed {lo:g}-{hi:g}x): "
                          "the timed region did not run what the census saw", value=share, bound=lo)
