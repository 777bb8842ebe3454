"""harness.stats on timer-tick data (issue 10, finding 10): BCa's acceleration is 0, not rounding
noise, when every jackknife value is equal, and no interval is narrower than the timer's
resolution. Checked against the textbook bias-corrected percentile interval (Efron 1981: BCa with
a = 0 uses the levels Phi(2 z0 +- z_(alpha/2))) and against the draws themselves."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from harness import stats

TICK = 1.024e-3  # ms: the GPU event timer's step that the seed system's samples show


def tied_sample(n: int = 301, centre_ticks: int = 58, seed: int = 3) -> np.ndarray:
    """Most samples on one tick value around the median, the rest a tick or more away: every
    leave-one-out median is that same value."""
    rng = np.random.default_rng(seed)
    ticks = np.full(n, centre_ticks)
    k = n // 5
    ticks[:k] = centre_ticks - 1 - rng.integers(0, 3, k)
    ticks[k:2 * k] = centre_ticks + 1 + rng.geometric(0.3, k)
    return rng.permutation(ticks) * TICK


def test_equal_jackknife_values_give_zero_acceleration_and_the_bc_interval():
    x = tied_sample()
    s = np.sort(x)
    jack = stats._jackknife_sorted(s, "median")
    assert jack.min() == jack.max()  # the premise: every jackknife median is equal
    ci = stats.bootstrap_ci(x, seed=5)
    assert ci.method == "bca" and stats.FLAG_BCA_FALLBACK not in ci.flags
    # The textbook BC interval from the very draws bootstrap_ci made (same seed, same generator).
    draws = stats.draw_medians(s, 10_000, np.random.default_rng(5))
    est = float(np.median(x))
    z0 = sps.norm.ppf((np.count_nonzero(draws < est) + np.count_nonzero(draws <= est)) / (2 * draws.size))
    z = sps.norm.ppf(0.025)
    lo, hi = np.quantile(draws, [sps.norm.cdf(2 * z0 + z), sps.norm.cdf(2 * z0 - z)])
    widened = max(hi - lo, 0.0) < TICK
    if not widened:
        assert (ci.low, ci.high) == pytest.approx((lo, hi), rel=1e-12)
    else:
        assert ci.low <= lo and ci.high >= hi and ci.high - ci.low == pytest.approx(TICK, rel=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_bca_on_tied_ticks_is_scale_equivariant(seed):
    # The acceleration used to be computed from rounding noise (u = mean - value of equal floats),
    # giving a = +-1/(6 sqrt(n)) whose sign followed the data's scale: a 5% rescaling switched the
    # interval between BCa and percentile. Times in other units must give the same interval.
    x = tied_sample(seed=seed)
    base = stats.bootstrap_ci(x, seed=11)
    for scale in (0.95, 1.05, 1.1, 3.0, 1000.0):
        ci = stats.bootstrap_ci(x * scale, seed=11)
        assert ci.method == base.method == "bca", (scale, ci.method, base.method)
        assert ci.low == pytest.approx(base.low * scale, rel=1e-9)
        assert ci.high == pytest.approx(base.high * scale, rel=1e-9)


def test_ratio_bca_with_equal_jackknives_is_scale_equivariant():
    a, b = tied_sample(seed=1), tied_sample(centre_ticks=71, seed=2)
    base = stats.ratio_of_medians_ci(a, b, seed=4)
    for scale in (0.95, 1.05, 7.0):
        ci = stats.ratio_of_medians_ci(a * scale, b * scale, seed=4)
        assert ci.method == base.method == "bca"
        assert (ci.low, ci.high) == pytest.approx((base.low, base.high), rel=1e-9)


def test_no_interval_is_narrower_than_the_timer_resolution():
    # 80% of the samples on one tick: every bootstrap median is that tick, and the percentile
    # interval has zero width although the timer cannot tell values within a tick apart.
    rng = np.random.default_rng(9)
    ticks = np.concatenate([np.full(400, 50), 49 - rng.integers(0, 2, 50), 51 + rng.integers(0, 2, 50)])
    x = rng.permutation(ticks) * TICK
    draws = stats.draw_medians(np.sort(x), 10_000, np.random.default_rng(0))
    assert draws.min() == draws.max() == 50 * TICK  # the premise: zero-width bootstrap interval
    for method in ("bca", "percentile"):
        ci = stats.bootstrap_ci(x, method=method, seed=0)
        assert stats.FLAG_RESOLUTION in ci.flags
        assert ci.high - ci.low == pytest.approx(TICK, rel=1e-9)
        assert ci.low == pytest.approx(49.5 * TICK, rel=1e-12) and ci.high == pytest.approx(50.5 * TICK, rel=1e-12)
    h = stats.hierarchical_bootstrap_ci([x[:250], x[250:]], seed=0)
    assert h.high - h.low >= TICK * (1 - 1e-9) and stats.FLAG_RESOLUTION in h.flags
    s = stats.summarize_repetitions([x.tolist()], [True])
    assert s.ci_high_ms - s.ci_low_ms >= TICK * (1 - 1e-9) and stats.FLAG_RESOLUTION in s.flags
    assert s.rel_halfwidth == pytest.approx(0.5 * TICK / (50 * TICK), rel=1e-9)


def test_resolution_is_the_smallest_step_between_distinct_values():
    assert stats.resolution_of(np.array([1.0, 1.0, 3.0, 3.5, 3.5])) == 0.5
    assert stats.resolution_of(np.array([2.0, 2.0])) is None
    # Continuous data: the step is tiny and never widens an interval.
    x = np.random.default_rng(1).lognormal(size=500)
    ci = stats.bootstrap_ci(x, seed=1)
    assert stats.FLAG_RESOLUTION not in ci.flags


def test_ratio_intervals_are_no_narrower_than_one_tick_on_either_side():
    x = np.full(200, 50 * TICK)
    x[:20] = 49 * TICK
    y = np.full(200, 40 * TICK)
    y[:20] = 41 * TICK
    ci = stats.ratio_of_medians_ci(x, y, seed=0)
    expected = (50 / 40) * (1 / 50 + 1 / 40)
    assert ci.high - ci.low >= expected * (1 - 1e-9) and stats.FLAG_RESOLUTION in ci.flags
    assert all(math.isfinite(v) for v in (ci.low, ci.high))
