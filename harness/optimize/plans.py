"""How long each stage of `harness optimize` measures, and the clock its budget runs on."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.plan import TimingConfig


@dataclass
class TimingPlan:
    select: TimingConfig  # the baseline backends
    quick: TimingConfig  # rung 0; later rungs stretch it (halving.rung_timing)
    full: TimingConfig  # the final pair


def timing_plan(device: str) -> TimingPlan:
    if device == "cuda":
        return TimingPlan(
            select=TimingConfig(target_rel_ci=0.01, min_samples=20, max_samples=2000, max_time_s=0.5, warmup_ms=25),
            quick=TimingConfig(target_rel_ci=0.02, min_samples=10, max_samples=500, max_time_s=0.2, warmup_ms=10,
                               sample_target_ms=0.5),
            full=TimingConfig(target_rel_ci=0.005, min_samples=30, max_samples=4000, max_time_s=2.0, repeats=3),
        )
    # The interpreter is slow and noisy: short rungs, and precision that a CI machine can reach.
    return TimingPlan(
        select=TimingConfig(target_rel_ci=0.05, min_samples=6, max_samples=200, max_time_s=0.3, warmup_ms=5,
                            sample_target_ms=0.2, batch=3),
        quick=TimingConfig(target_rel_ci=0.1, min_samples=6, max_samples=60, max_time_s=0.3, warmup_ms=1,
                           sample_target_ms=0.1, batch=3),
        full=TimingConfig(target_rel_ci=0.05, min_samples=9, max_samples=200, max_time_s=0.6, warmup_ms=1,
                          sample_target_ms=0.1, batch=3, repeats=2),
    )


def reserve_s(plan: TimingPlan) -> float:
    """Seconds kept back for the final pair: each at most repeats * max_time_s of sampling, plus
    about as much again for correctness, warm-up and graph capture."""
    return 2 * 2 * plan.full.repeats * plan.full.max_time_s


class Clock:
    """Seconds since the run started. `now` is replaceable so that budgets can be tested on a
    fake clock instead of on the speed of the machine running the tests."""

    def __init__(self, budget_s: float, now: Callable[[], float] = time.perf_counter):
        self.now = now
        self.t0 = now()
        self.budget_s = budget_s

    def spent(self) -> float:
        return self.now() - self.t0
