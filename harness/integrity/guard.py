"""The timers the harness measures with, bound before any user module is imported, and the
detection of code that replaces them (issue 16, item 5).

A kernel's module runs in the harness's process, so it can reach every Python object there. It
cannot change what was bound before it ran: `bind()` takes the clock functions and the CUDA event
methods from their C implementations (torch._C._CudaEventBase, not the Python subclass a module
could patch) once, and the timing code calls only those. And it cannot replace a function
unnoticed: `Snapshot` records the identity of every timing-relevant attribute (the time module's
clocks, torch.cuda's event, synchronize and graph entry points, every function of the harness's
timing and statistics modules), and `changed()` lists what differs afterwards. A case whose
workload replaced any of them is invalid, whatever its numbers.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

# (module, attribute path) whose identity must not change while a workload runs.
_WATCHED: tuple[tuple[str, str], ...] = (
    ("time", "perf_counter"),
    ("time", "perf_counter_ns"),
    ("time", "monotonic"),
    ("time", "monotonic_ns"),
    ("time", "time"),
    ("torch.cuda", "Event"),
    ("torch.cuda", "Event.elapsed_time"),
    ("torch.cuda", "Event.record"),
    ("torch.cuda", "Event.synchronize"),
    ("torch.cuda", "synchronize"),
    ("torch.cuda", "CUDAGraph"),
    ("torch.cuda", "CUDAGraph.replay"),
    ("torch.cuda", "CUDAGraph.capture_begin"),
    ("torch.cuda", "CUDAGraph.capture_end"),
    ("torch.cuda", "graph"),
    ("torch.cuda", "is_current_stream_capturing"),
    ("torch.cuda", "current_stream"),
    ("torch.cuda", "Stream"),
    ("torch.cuda", "Stream.synchronize"),
    ("torch", "equal"),
    ("torch.linalg", "vector_norm"),
    ("numpy", "median"),
    ("numpy", "percentile"),
    ("numpy", "quantile"),
)
# Harness modules whose every function must stay the one imported (the timer, the statistics,
# the checks themselves).
_HARNESS_MODULES = ("harness.timing", "harness.stats", "harness.runner", "harness.census",
                    "harness.integrity.guard", "harness.integrity.outputs", "harness.integrity.checks",
                    "harness.integrity.census", "harness.integrity.roofline")


@dataclass(frozen=True)
class Timers:
    """The clocks the harness measures with, bound once before any workload is imported."""

    perf_counter: Callable[[], float]
    perf_counter_ns: Callable[[], int]
    event_cls: Any  # torch.cuda.Event as imported by the harness (None without torch/CUDA)
    record: Any  # torch._C._CudaEventBase.record on the stream current at the call
    elapsed_time: Any  # torch._C._CudaEventBase.elapsed_time
    event_synchronize: Any
    device_synchronize: Any  # torch.cuda.synchronize as it was

    def new_event(self) -> Any:
        return self.event_cls(enable_timing=True)

    def elapsed_ms(self, start: Any, end: Any) -> float:
        return float(self.elapsed_time(start, end))


_BOUND: Optional[Timers] = None


def bind() -> Timers:
    """The harness's timers (bound on the first call; every later call returns the same)."""
    global _BOUND
    if _BOUND is None:
        event_cls = record = elapsed = ev_sync = dev_sync = None
        try:
            import torch
        except ImportError:
            torch = None  # type: ignore[assignment]
        if torch is not None:
            event_cls, dev_sync = torch.cuda.Event, torch.cuda.synchronize
            base = getattr(torch._C, "_CudaEventBase", None)

            def method(name: str) -> Any:
                # The C implementation where torch has CUDA; a CPU build's event class has none.
                return getattr(base, name, None) or getattr(event_cls, name, None)

            elapsed, ev_sync = method("elapsed_time"), method("synchronize")
            raw_record, current = getattr(base, "record", None), torch.cuda.current_stream
            # The C record takes the stream explicitly (the Python one defaults it to the current).
            record = (lambda ev: raw_record(ev, current())) if raw_record is not None else event_cls.record
        _BOUND = Timers(time.perf_counter, time.perf_counter_ns, event_cls, record, elapsed, ev_sync, dev_sync)
    return _BOUND


def _resolve(module: str, path: str) -> Any:
    mod = sys.modules.get(module)
    if mod is None:
        return _MISSING
    obj: Any = mod
    for part in path.split("."):
        obj = getattr(obj, part, _MISSING)
        if obj is _MISSING:
            return _MISSING
    return obj


_MISSING = object()


class Snapshot:
    """Every watched attribute at one moment, held (so `is` compares identities that cannot be
    reused by another object)."""

    def __init__(self) -> None:
        bind()
        self._held: dict[tuple[str, str], Any] = {}
        for module, path in _WATCHED:
            obj = _resolve(module, path)
            if obj is not _MISSING:
                self._held[(module, path)] = obj
        for name in _HARNESS_MODULES:
            mod = sys.modules.get(name)
            if mod is None:
                continue
            for attr, value in vars(mod).items():
                if callable(value) and not attr.startswith("__"):
                    self._held[(name, attr)] = value

    def changed(self) -> list[str]:
        """What was replaced since the snapshot ("module.attribute"), in order."""
        return [f"{module}.{path}" for (module, path), obj in self._held.items() if _resolve(module, path) is not obj]


def load_harness_modules() -> None:
    """Import what the snapshot watches, so it is bound before a user module can run."""
    for name in ("numpy", *_HARNESS_MODULES):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    bind()


_BASELINE: Optional[Snapshot] = None


def baseline() -> Snapshot:
    """The process's snapshot, taken once with the harness's modules and torch loaded and before
    any user module is imported (harness.workloads.get takes it before importing one)."""
    global _BASELINE
    if _BASELINE is None:
        load_harness_modules()
        _BASELINE = Snapshot()
    return _BASELINE


def tampered() -> list[str]:
    """What was replaced since the baseline (empty when nothing was, or no baseline was taken)."""
    return _BASELINE.changed() if _BASELINE is not None else []
