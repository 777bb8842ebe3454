"""The timers are bound before a workload's module runs, and a replaced timing function is seen."""

from __future__ import annotations

import time

import numpy as np

from harness import stats, timing
from harness.integrity import guard


def test_a_replaced_clock_or_harness_function_is_named_and_the_bound_clock_is_not_affected(monkeypatch):
    guard.load_harness_modules()
    snap = guard.Snapshot()
    bound = guard.bind()
    assert snap.changed() == []
    monkeypatch.setattr(time, "perf_counter_ns", lambda: 0)
    monkeypatch.setattr(stats, "summarize_repetitions", lambda *a, **k: None)
    monkeypatch.setattr(np, "median", lambda *a, **k: 0.0)
    assert snap.changed() == ["time.perf_counter_ns", "numpy.median", "harness.stats.summarize_repetitions"]
    assert bound.perf_counter_ns() > 0  # the harness measures with what it bound
    monkeypatch.undo()
    assert snap.changed() == []


def test_a_patched_event_method_does_not_reach_the_bound_timers(monkeypatch):
    import torch

    t = guard.bind()
    # The C method where torch has CUDA (a CPU build's C class has none: the Python one, as it was).
    native = getattr(torch._C._CudaEventBase, "elapsed_time", None) or torch.cuda.Event.elapsed_time
    assert t.elapsed_time is native
    snap = guard.Snapshot()
    fake = lambda self, end: 0.0  # noqa: E731
    monkeypatch.setattr(torch.cuda.Event, "elapsed_time", fake)
    assert "torch.cuda.Event.elapsed_time" in snap.changed()
    assert guard.bind().elapsed_time is native and guard.bind().elapsed_time is not fake
    assert timing.bind is guard.bind
