"""Kernel census: which kernels a case's call really runs, counted by the profiler (CUPTI on a GPU).

A timing says how long; the census says what ran in that time. Per case, one profiled replay of a
CUDA graph of the case's call (the same object the timer replays) lists every GPU activity in it:
kernel name, launches per call, device time per call, and the share of the harness's median the
kernels explain. A reviewer sees that `cudnn` ran a cuDNN kernel, `flash` a flash kernel, and that
nothing else sat in the timed region.

The rule the census enforces: the lock and the harness add nothing to the timed region. The same
call is censused again with the lock lifted (`envlock.unlocked()`: no deterministic algorithms, no
fill, cuDNN free); a case whose kernels (names and launches per call) differ is flagged
`census_lock_differs`. That is how the NaN fill of `fill_uninitialized_memory`, which sat in every
timed replay before issue 8, would have shown: a `FillFunctor` kernel that only the locked run has.

On the CPU there are no kernels; the census lists the ATen operators instead (with their self
time), which catches the same class of problem (the fill shows as `aten::fill_` under
`aten::empty`).
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Optional

from harness.records import Census, CensusEntry

# Calls captured into the census graph: enough that a kernel launched once per call is counted
# as such, few enough that the trace stays small for 10 us kernels.
CENSUS_CALLS = 8


@dataclass
class RawActivity:
    """One profiler activity: what the aggregation needs, whatever the profiler's own types."""

    name: str
    kind: str  # kernel | memset | memcpy | cpu_op
    duration_us: float


class CensusUnavailable(Exception):
    """The profiler could not list activities here; the message is the reason recorded."""


# --------------------------------------------------------------------------- aggregation (torch-free)
def aggregate(activities: Iterable[RawActivity], calls: int, median_ms: Optional[float], method: str) -> Census:
    """Group activities by (kind, name): launches and device time per call, share of the median."""
    groups: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
    for a in activities:
        groups.setdefault((a.kind, a.name), []).append(a.duration_us)
    entries = []
    for (kind, name), durations in groups.items():
        per_call_ms = sum(durations) / 1e3 / calls
        entries.append(CensusEntry(
            name=name, kind=kind, launches_per_call=round(len(durations) / calls, 4),
            ms_per_call=per_call_ms,
            share_of_median=(per_call_ms / median_ms) if median_ms else None,
        ))
    entries.sort(key=lambda e: -e.ms_per_call)
    device = [e for e in entries if e.kind != "cpu_op"]
    total = sum(e.ms_per_call for e in device) if device else sum(e.ms_per_call for e in entries)
    return Census(method=method, calls=calls, entries=entries, ms_per_call=total,
                  share_of_median=(total / median_ms) if median_ms else None)


def signature(census: Census) -> dict[tuple[str, str], float]:
    """What must match between the locked and the unlocked census: each activity and how many
    times a call launches it (time is allowed to differ; the set of work is not)."""
    return {(e.kind, e.name): e.launches_per_call for e in census.entries}


def differences(locked: Census, unlocked: Census) -> list[str]:
    a, b = signature(locked), signature(unlocked)
    out = []
    for key in sorted(set(a) | set(b)):
        kind, name = key
        if key not in b:
            out.append(f"only under the lock: {kind} {short_name(name)} x{a[key]:g} per call")
        elif key not in a:
            out.append(f"only without the lock: {kind} {short_name(name)} x{b[key]:g} per call")
        elif abs(a[key] - b[key]) > 1e-9:
            out.append(f"{kind} {short_name(name)}: {a[key]:g} launches per call under the lock, {b[key]:g} without")
    return out


def short_name(name: str, width: int = 120) -> str:
    """A kernel's name for tables: no return type, no parameter list, template arguments kept
    (they tell FillFunctor<c10::Half> from FillFunctor<long>) but cut to `width`."""
    if name.startswith(("Memset", "Memcpy")):
        return name
    text = name[5:] if name.startswith("void ") else name
    depth = 0
    for i, ch in enumerate(text):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "(" and depth == 0 and i > 0:
            text = text[:i]
            break
    text = text.strip() or name
    return text if len(text) <= width else text[: width - 3] + "..."


# --------------------------------------------------------------------------- collection (torch)
class _quiet_profiler_log:
    """Kineto writes 'profiler_start'/'profiler_stop' lines straight to file descriptor 2 (seen
    with torch 2.13); sixty of them would bury a sweep's log, so fd 2 points at /dev/null while
    the profiler starts and stops (nothing else runs in between)."""

    def __enter__(self) -> _quiet_profiler_log:
        sys.stderr.flush()
        try:
            self._saved: Optional[int] = os.dup(2)
            self._null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(self._null, 2)
        except OSError:
            self._saved = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            sys.stderr.flush()
            _flush_c_stdio()
            os.dup2(self._saved, 2)
            os.close(self._saved)
            os.close(self._null)


def _flush_c_stdio() -> None:
    import ctypes

    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


def _activity_kind(name: str) -> str:
    lowered = name.lower()
    if lowered.startswith("memset"):
        return "memset"
    if lowered.startswith("memcpy"):
        return "memcpy"
    return "kernel"


def _cuda_activities(prof: Any) -> list[RawActivity]:
    from torch.autograd import DeviceType

    out = []
    for e in prof.events():
        if e.device_type != DeviceType.CUDA:
            continue
        out.append(RawActivity(name=e.name, kind=_activity_kind(e.name), duration_us=float(e.time_range.elapsed_us())))
    return out


def _cpu_activities(prof: Any) -> list[RawActivity]:
    out = []
    for e in prof.events():
        if not e.name.startswith("aten::"):
            continue
        out.append(RawActivity(name=e.name, kind="cpu_op", duration_us=float(e.self_cpu_time_total)))
    return out


class KernelRaised(Exception):
    """The kernel's own call raised while it was profiled (not the profiler): the message says how."""


def _profiled(run: Callable[[], Any], activity: str, sync: Callable[[], None]) -> Any:
    """One call of `run` under torch.profiler. The profiler failing is CensusUnavailable (no
    census here); the call itself raising is KernelRaised: a kernel that runs everywhere else
    and fails only when watched is not given the benefit of "not run"."""
    from torch.profiler import ProfilerActivity, profile

    raised: list[BaseException] = []
    try:
        with _quiet_profiler_log(), profile(activities=[getattr(ProfilerActivity, activity)]) as prof:
            try:
                run()
                sync()
            except Exception as exc:  # noqa: BLE001 - kept, re-raised below as the kernel's
                raised.append(exc)
    except Exception as exc:  # noqa: BLE001 - any profiler failure means "no census here"
        raise CensusUnavailable(f"torch.profiler with {activity} activities failed: {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if raised:
        first = raised[0]
        raise KernelRaised(f"{type(first).__name__}: {str(first).splitlines()[0] if str(first) else ''}") from None
    return prof


def _profile_cuda(run: Callable[[], Any]) -> list[RawActivity]:
    """The GPU activities of one call of `run` (already warm), device-wide synchronised around it."""
    import torch

    torch.cuda.synchronize()
    return _cuda_activities(_profiled(run, "CUDA", torch.cuda.synchronize))


def _profile_cpu(run: Callable[[], Any]) -> list[RawActivity]:
    return _cpu_activities(_profiled(run, "CPU", lambda: None))


def collect_cuda(fn: Callable[[], Any], calls: int = CENSUS_CALLS) -> list[RawActivity]:
    """Capture `calls` calls into a CUDA graph (as the timer does), replay it once to warm, then
    profile one replay. Raises CensusUnavailable with the reason when CUPTI lists nothing. A call
    that cannot be captured (the timer then falls back to eager launches) is censused eagerly."""
    from harness.timing import capture_graph

    try:
        graph = capture_graph(fn, calls)
        run: Callable[[], Any] = graph.replay
    except Exception:  # noqa: BLE001 - the timer records the capture failure itself
        graph = None

        def run() -> None:
            for _ in range(calls):
                fn()

    run()
    acts = _profile_cuda(run)
    del graph
    if not acts:
        raise CensusUnavailable("the profiler recorded no GPU activity (CUPTI unavailable or not permitted here)")
    return acts


def collect_cpu(fn: Callable[[], Any], calls: int = CENSUS_CALLS) -> list[RawActivity]:
    fn()

    def run() -> None:
        for _ in range(calls):
            fn()

    acts = _profile_cpu(run)
    if not acts:
        raise CensusUnavailable("the profiler recorded no ATen operator")
    return acts


def of_run(run: Callable[[], Any], calls: int, device: str, median_ms: Optional[float]) -> Census:
    """The census of one call of `run` (`calls` kernel calls: the timer's own graph replay, or its
    eager loop), as timed: an empty list is a census too (the timed region ran nothing)."""
    acts = _profile_cuda(run) if device == "cuda" else _profile_cpu(run)
    what = ("torch.profiler (CUPTI): one replay of the timed CUDA graph" if device == "cuda"
            else "torch.profiler: ATen operators of one timed sample")
    return aggregate(acts, calls, median_ms, f"{what} ({calls} calls)")


def eager(warm: Callable[[], Any], fresh: Callable[[], Any], device: str) -> Census:
    """The census of one eager call, `fresh`, on inputs the kernel has never seen: `warm` (the
    same kernel on other inputs) is called first, so first-use work (compilation, workspaces)
    stays out, but no cache of the kernel's can answer the profiled call."""
    warm()
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    acts = _profile_cuda(fresh) if device == "cuda" else _profile_cpu(fresh)
    if not acts:
        raise CensusUnavailable("the profiler recorded no activity for an eager call "
                                "(CUPTI unavailable or not permitted here)")
    return aggregate(acts, 1, None, "torch.profiler: one eager call on fresh inputs")


def take(make_fn: Callable[[], Callable[[], Any]], device: str, median_ms: Optional[float],
         calls: int = CENSUS_CALLS, sm_clock: Optional[Callable[[], Optional[int]]] = None) -> Census:
    """The census of a case under the lock in force, and the same call with the lock lifted.

    `make_fn` builds the case's callable (inputs included); it is called once per census so each
    graph is captured under the settings it is censused with."""
    from harness import envlock

    collect = collect_cuda if device == "cuda" else collect_cpu
    what = (f"torch.profiler (CUPTI): one replay of a CUDA graph of {calls} calls" if device == "cuda"
            else f"torch.profiler: ATen operators over {calls} calls (self CPU time)")
    locked = aggregate(collect(make_fn(), calls), calls, median_ms, what)
    locked.sm_mhz = sm_clock() if sm_clock is not None else None
    with envlock.unlocked():
        unlocked_raw = collect(make_fn(), calls)
    unlocked = aggregate(unlocked_raw, calls, median_ms, what + ", lock lifted")
    locked.unlocked_entries = unlocked.entries
    locked.differences = differences(locked, unlocked)
    locked.matches_unlocked = not locked.differences
    return locked
