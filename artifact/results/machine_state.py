"""The card's state beside the claims (issue 17, torch-free): what a time FAIL is attributed to,
a power limit below the reference's, cases timed on a throttled clock.

Attribution works in cycle space (nvbench's robust compare does the same): cycles per call = time
x SM clock. A time that rose while the cycles stayed flat was the clock (a power cap, thermals, a
clocks setting); cycles that rose with the time were the kernel, or other work on the SMs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional

from harness.records import CaseResult

if TYPE_CHECKING:
    from artifact.reference import Reference
    from artifact.results.folder import ResultSet

# A power limit this much below the reference's is named (limits are set in whole watts; 2%
# is beyond any rounding between boards of one model).
POWER_LIMIT_TOLERANCE = 0.02
# Share of a slowdown the clock explains, in log space: at least CLOCK_EXPLAINS -> the clock;
# at most KERNEL_EXPLAINS -> the cycles (the kernel, or other work); in between, both.
CLOCK_EXPLAINS, KERNEL_EXPLAINS = 0.75, 0.25


def clock_share(time_ratio: float, clock_ratio: float) -> Optional[float]:
    """The share of a change in time that the SM clock explains, in log space (None: no change)."""
    if time_ratio <= 0 or clock_ratio <= 0 or abs(math.log(time_ratio)) < 1e-9:
        return None
    return -math.log(clock_ratio) / math.log(time_ratio)


def attribution(time_ratio: float, clock_ratio: float) -> str:
    """Why a case is slower (or faster) than the reference's, from time/ref and SM clock/ref."""
    cycles = time_ratio * clock_ratio
    head = f"cycles per call {cycles:.3g}x the reference's, time {time_ratio:.3g}x"
    share = clock_share(time_ratio, clock_ratio)
    if share is None:
        return head
    if share >= CLOCK_EXPLAINS:
        return (head + f": the cycles stayed flat, so the clock explains {min(share, 1):.0%} of it "
                "(power limit, thermals or a clocks setting), not the kernel")
    if share <= KERNEL_EXPLAINS:
        return (head + ": the cycles moved with the time, so it is the kernel (or other work on the SMs), "
                "not the clock")
    return head + f": the clock explains {share:.0%} of it, the cycles the rest"


def power_note(results: ResultSet, reference: Reference) -> Optional[str]:
    """A card held to a lower power limit than the reference runs': which claims it touches."""
    ref = reference.hardware.power_limit_w
    state = results.env.gpu_state_before
    mine = state.power_limit_w if state is not None else None
    if ref is None or mine is None or mine >= ref * (1 - POWER_LIMIT_TOLERANCE):
        return None
    timed = [c for c in reference.claims if getattr(c, "TIMED", False)]
    kinds = sorted({c.kind for c in timed})
    default = state.power_default_limit_w if state is not None else None
    cap = f" (the board's default is {default:g} W: lowered with nvidia-smi -pl)" if default and default > mine else ""
    return (f"power: this card's enforced power limit is {mine:g} W{cap}, the reference runs' {ref:g} W "
            f"({mine / ref:.0%}); its {len(timed)} time claim(s) ({', '.join(kinds)}) are measured on a card held "
            "to less power, and a FAIL among them says so in its clocks note")


def throttled_note(cases: list[CaseResult]) -> Optional[str]:
    hot = [c for c in cases if c.watch is not None and c.watch.throttled]
    if not hot:
        return None
    w = hot[0].watch
    assert w is not None
    return (f"{len(hot)} case(s) kept samples with the SM clock below the throttle threshold "
            f"({w.sm_mhz_threshold:g} MHz) after {w.discarded_throttled} discarded batches (first: {hot[0].case.case_id}); "
            "their times describe a throttled card")
