"""Successive halving over the search space: rung 0 measures every config quickly, each later
rung keeps the fastest 1/ETA and measures them again, longer, on fresh inputs (torch-free:
the measuring is a function passed in)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Optional

from harness.optimize.plans import Clock, TimingPlan
from harness.optimize.records import Trial, median_ms, timing_summary
from harness.optimize.search import describe
from harness.plan import TimingConfig
from harness.records import CaseResult, CaseSpec

ETA = 3  # each rung keeps the best 1/ETA
SEED_STEP = 7919  # a prime: every measurement's seed differs from every other's

Measure = Callable[[CaseSpec, TimingConfig], CaseResult]
Log = Callable[[str], None]


def rung_timing(quick: TimingConfig, rung: int) -> TimingConfig:
    """Rung r samples ETA^r times longer and asks for a CI sqrt(ETA^r) times tighter: the
    survivors are closer together, so telling them apart needs more precision."""
    stretch = ETA**rung
    return replace(quick, max_time_s=quick.max_time_s * stretch, target_rel_ci=quick.target_rel_ci / math.sqrt(stretch),
                   min_samples=quick.min_samples * (rung + 1))


def rung_keep(n_alive: int) -> int:
    """How many of `n_alive` configs go on to the next rung."""
    return max(1, math.ceil(n_alive / ETA))


@dataclass
class Halving:
    trials: list[Trial]  # one per config of the space, in its order
    rung_sizes: list[int]  # configs measured at each rung
    winner: Optional[dict[str, Any]]  # None: see stop_reason
    stop_reason: str


def _record(t: Trial, rung: int, r: CaseResult) -> None:
    t.rungs.append(rung)
    t.medians_ms.append(median_ms(r))
    t.rel_halfwidths.append(timing_summary(r).rel_halfwidth)


def successive_halving(
    shape: CaseSpec, space: list[dict[str, Any]], plan: TimingPlan, measure: Measure, clock: Clock,
    search_deadline_s: float, log: Log, compile_failures: Optional[dict[int, str]] = None,
) -> Halving:
    """Rung 0 over as much of `space` as 60% of the search time allows, then halving rungs.
    `compile_failures` ({index in space: why}) are recorded as failed and never measured."""
    trials = [Trial(config=c) for c in space]
    for i, why in (compile_failures or {}).items():
        trials[i].status, trials[i].reason = "failed", why
    rung0_end = clock.spent() + 0.6 * max(0.0, search_deadline_s - clock.spent())
    seed = plan.quick.seed
    alive: list[Trial] = []
    for i, t in enumerate(trials):
        if t.status == "failed":
            continue
        if clock.spent() >= rung0_end:
            for rest in trials[i:]:
                if rest.status == "pending":
                    rest.status, rest.reason = "not_tried", "time budget spent before this config's turn"
            break
        seed += SEED_STEP
        spec = replace(shape, workload="triton_attention", backend="triton", config=t.config)
        # Its own seed: every config's correctness gate sees fresh random inputs.
        r = measure(spec, replace(plan.quick, seed=seed))
        if r.correctness is not None:
            t.rel_error = r.correctness.rel_error
        if r.status == "ok":
            t.status = "ok"
            _record(t, 0, r)
            alive.append(t)
        elif r.correctness is not None and not r.correctness.passed:
            t.status, t.reason = "incorrect", r.reason
        else:
            t.status, t.reason = r.status, r.reason
        log(f"rung 0 [{i + 1}/{len(trials)}] {describe(t.config):26s} "
            + (f"{t.medians_ms[-1]:.4f} ms" if t.status == "ok" else f"{t.status}: {t.reason}"))
    rung_sizes = [len(alive)]
    if not alive:
        tried = any(t.status != "not_tried" for t in trials)
        why = "no config passed the correctness gate" if tried else "the time budget ended before any config was tried"
        return Halving(trials, rung_sizes, None, why)
    rung = 0
    stop = "one config left"
    while len(alive) > 1:
        keep = rung_keep(len(alive))
        alive = sorted(alive, key=lambda t: t.medians_ms[-1])[:keep]
        if keep == 1:
            break
        rung += 1
        timing = rung_timing(plan.quick, rung)
        # A rung costs about keep * (sampling + per-case overhead); the overhead is taken as the
        # sampling time again, which is what rung 0 showed on the H100.
        if clock.spent() + keep * 2 * timing.max_time_s > search_deadline_s:
            stop = f"time budget: rung {rung} ({keep} configs) would not fit"
            break
        for t in alive:
            seed += SEED_STEP
            spec = replace(shape, workload="triton_attention", backend="triton", config=t.config)
            r = measure(spec, replace(timing, seed=seed))
            if r.status != "ok":
                # It passed before; failing now (a moving error is a race) disqualifies it.
                t.status, t.reason = "failed", f"rung {rung}: {r.reason}"
                continue
            _record(t, rung, r)
            log(f"rung {rung} {describe(t.config):26s} {t.medians_ms[-1]:.4f} ms")
        alive = [t for t in alive if t.status == "ok" and t.rungs[-1] == rung]
        rung_sizes.append(len(alive))
        if not alive:
            return Halving(trials, rung_sizes, None, f"every survivor failed at rung {rung}")
    winner = min(alive, key=lambda t: t.medians_ms[-1])
    return Halving(trials, rung_sizes, winner.config, stop)
