"""Successive halving on synthetic, noise-free scores and a fake clock: which configs each rung
keeps, what happens to failures, and where the budget stops it (no kernel, no real time)."""

from __future__ import annotations

import pytest

from harness.optimize.halving import ETA, rung_keep, successive_halving
from harness.optimize.plans import Clock, timing_plan
from harness.optimize.search import config, describe
from harness.records import CaseResult, CaseSpec, Correctness, Repetition, Timing, TimingSummary

SHAPE = CaseSpec("sdpa", "default", 1, 2, 32, 16, device="cpu")
SPACE = [config(bm, bn, w, 2) for bm, bn in ((16, 16), (32, 16), (32, 32)) for w in (1, 2, 4)]  # 9 configs


def _timed(spec: CaseSpec, ms: float) -> CaseResult:
    summary = TimingSummary(n_samples=3, n_repetitions=1, median_ms=ms, mean_ms=ms, std_ms=0.0, min_ms=ms, max_ms=ms,
                            ci_low_ms=ms, ci_high_ms=ms, ci_level=0.95, ci_method="percentile", rel_halfwidth=0.0,
                            converged=True)
    rep = Repetition([ms] * 3, 1, True, "converged", 0.0, 0.01)
    return CaseResult(case=spec, status="ok", correctness=Correctness("float64", 1e-4, 5e-3, True, True),
                      timing=Timing("perf_counter", None, 0.1, 1, [rep], summary))


class Scores:
    """A measure function: each config a fixed time (rung by rung if a list); every call costs
    `cost_s` on the fake clock."""

    def __init__(self, ms: dict[str, object], incorrect=(), fail_at_rung: dict[str, int] | None = None, cost_s=1.0):
        self.ms, self.incorrect, self.fail_at_rung, self.cost_s = ms, set(incorrect), fail_at_rung or {}, cost_s
        self.now = 0.0
        self.calls: list[tuple[str, int]] = []  # (config, seed)

    def __call__(self, spec: CaseSpec, timing) -> CaseResult:
        self.now += self.cost_s
        key = describe(spec.config)
        rung = sum(k == key for k, _ in self.calls)
        self.calls.append((key, timing.seed))
        if key in self.incorrect:
            return CaseResult(case=spec, status="failed", reason="relative error 0.5 exceeds tolerance",
                              correctness=Correctness("float64", 0.5, 5e-3, False, True))
        if self.fail_at_rung.get(key) == rung:
            return CaseResult(case=spec, status="failed", reason="illegal memory access")
        ms = self.ms[key]
        return _timed(spec, ms[min(rung, len(ms) - 1)] if isinstance(ms, list) else ms)


def _halve(scores: Scores, deadline_s=1000.0, compile_failures=None):
    plan = timing_plan("cpu")
    clock = Clock(1000.0, lambda: scores.now)
    return successive_halving(SHAPE, SPACE, plan, scores, clock, deadline_s, lambda _: None, compile_failures)


def _ms(*values):
    return {describe(c): v for c, v in zip(SPACE, values)}


@pytest.mark.parametrize("alive,kept", [(1, 1), (2, 1), (3, 1), (4, 2), (8, 3), (9, 3), (10, 4), (27, 9)])
def test_each_rung_keeps_the_best_third_rounded_up(alive, kept):
    assert ETA == 3 and rung_keep(alive) == kept


def test_the_fastest_config_wins_through_rungs_of_9_then_3():
    scores = Scores(_ms(5, 4, 3, 9, 8, 7, 2, 6, 1))
    h = _halve(scores)
    assert h.winner == SPACE[8] and h.stop_reason == "one config left"
    assert h.rung_sizes == [9, 3]
    kept = {describe(c) for c in (SPACE[8], SPACE[6], SPACE[2])}  # 1, 2 and 3 ms
    assert {describe(t.config) for t in h.trials if t.rungs == [0, 1]} == kept
    assert all(t.rungs == [0] for t in h.trials if describe(t.config) not in kept)
    # Every measurement draws fresh inputs: no two share a seed.
    seeds = [s for _, s in scores.calls]
    assert len(set(seeds)) == len(seeds) == 9 + 3


def test_a_later_rung_can_reorder_the_survivors():
    # Rung 0 favours config 0; measured longer at rung 1, config 1 is the faster one.
    ms = _ms([1.0, 3.0], [1.1, 2.0], [1.2, 2.5], 9, 9, 9, 9, 9, 9)
    assert _halve(Scores(ms)).winner == SPACE[1]


def test_incorrect_and_uncompiled_configs_are_recorded_never_timed():
    scores = Scores(_ms(5, 4, 3, 9, 8, 7, 2, 6, 1), incorrect={describe(SPACE[8])})
    h = _halve(scores, compile_failures={6: "compile failed: out of shared memory"})
    by = {describe(t.config): t for t in h.trials}
    assert by[describe(SPACE[8])].status == "incorrect" and by[describe(SPACE[8])].medians_ms == []
    assert by[describe(SPACE[8])].rel_error == 0.5
    assert by[describe(SPACE[6])].status == "failed" and "shared memory" in by[describe(SPACE[6])].reason
    assert describe(SPACE[6]) not in {k for k, _ in scores.calls}
    assert h.rung_sizes[0] == 7 and h.winner == SPACE[2]  # 3 ms: the fastest left


def test_a_survivor_that_fails_later_is_disqualified():
    scores = Scores(_ms(5, 4, 3, 9, 8, 7, 2, 6, 1), fail_at_rung={describe(SPACE[8]): 1})
    h = _halve(scores)
    loser = next(t for t in h.trials if t.config == SPACE[8])
    assert loser.status == "failed" and loser.reason == "rung 1: illegal memory access"
    assert h.rung_sizes == [9, 2] and h.winner == SPACE[6]


def test_no_correct_config_gives_no_winner_and_says_why():
    h = _halve(Scores({}, incorrect={describe(c) for c in SPACE}))
    assert h.winner is None and h.stop_reason == "no config passed the correctness gate"
    assert {t.status for t in h.trials} == {"incorrect"}


def test_the_deadline_ends_rung_zero_and_skips_a_rung_that_would_not_fit():
    # Rung 0 gets 60% of the 9 s before the deadline, so starts configs until 5.4 s: 6 at 1 s
    # each. Rung 1 (2 configs, each budgeted twice its 0.9 s of sampling) would end at 9.6 s.
    scores = Scores(_ms(5, 4, 3, 9, 8, 7, 2, 6, 1))
    h = _halve(scores, deadline_s=9.0)
    assert [t.status for t in h.trials] == ["ok"] * 6 + ["not_tried"] * 3
    assert h.rung_sizes == [6]
    assert h.stop_reason.startswith("time budget: rung 1 (2 configs) would not fit")
    assert h.winner == SPACE[2]  # the fastest of those tried, from rung 0


class InvalidScores(Scores):
    """A config whose timed calls were not shown to do the work (issue 16): `invalid`, with a
    time far below every honest config's."""

    def __init__(self, ms, invalid):
        super().__init__(ms)
        self.invalid = set(invalid)

    def __call__(self, spec, timing):
        r = super().__call__(spec, timing)
        if describe(spec.config) in self.invalid:
            r.status, r.reason = "invalid", "invalid: timed_outputs: the outputs of the timed replays are wrong"
        return r


def test_an_invalid_config_is_never_kept_however_fast_it_reads():
    cheat = describe(SPACE[4])
    ms = _ms(*[5.0 + i for i in range(9)])
    ms[cheat] = 0.001
    h = _halve(InvalidScores(ms, {cheat}))
    by = {describe(t.config): t for t in h.trials}
    assert by[cheat].status == "invalid" and "timed_outputs" in by[cheat].reason
    assert h.winner == SPACE[0] and h.winner != SPACE[4]
