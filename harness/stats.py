"""Statistics for per-sample kernel timings (numpy + scipy only; torch-free).

Conventions used throughout:
- Inputs are flat sequences of finite numbers (times in ms where it matters). Bad input raises
  HarnessError with one line naming the argument and the fix; nothing returns NaN.
- Randomness comes only from `numpy.random.default_rng(seed)`: same seed, same answer.
- Intervals are two-sided at `level`; percentiles of a bootstrap distribution use numpy's default
  (linear, "type 7") quantile, as scipy.stats.bootstrap does, so the two can be compared.

Why the bootstrap of the median does not materialise an (n_resamples, n) array: for a sorted
sample s, the median of a resample is a function of the k-th smallest resampled *index* alone
(s is monotone), and the k-th smallest of n uniform indices floor(n*U_i) is floor(n*U_(k)) with
U_(k) ~ Beta(k, n-k+1). Drawing that Beta directly gives exactly the same distribution as resampling
indices and calling np.median along axis 1, in O(n_resamples) instead of O(n_resamples * n):
10,000 x 1,000 went from ~170 ms to ~1.2 ms, BCa included, on the 2-core CI box (bench/bootstrap_speed.md).
The mean still resamples indices, in chunks bounded by _CHUNK_BYTES.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional, Union

import numpy as np
from scipy import special

from harness.errors import HarnessError
from harness.records import TimingSummary

# Repetitions of one case: each a sequence of sample times (lists or numpy arrays).
Groups = Sequence[Union[Sequence[float], np.ndarray]]

STATISTICS = ("median", "mean")
METHODS = ("bca", "percentile")

# Flags a ConfidenceInterval (and so a TimingSummary) may carry.
FLAG_TIES = "ties"  # few distinct values: GPU timers tick in ~1.024 us steps
FLAG_BCA_FALLBACK = "bca_fallback_percentile"  # BCa undefined on these data (infinite bias correction z0)
FLAG_DEGENERATE = "degenerate_all_equal"  # every value equal: the interval has zero width
# The bootstrap interval was narrower than the timer's resolution (the smallest step between two
# distinct samples: GPU event timers tick in ~0.5-1 us, divided by the calls per sample) and was
# widened to it. Within one tick the data cannot tell values apart, so a narrower interval would
# claim a precision the timer does not have (zero-width CIs on tied data over-covered: 98.9-100%).
FLAG_RESOLUTION = "ci_widened_to_timer_resolution"

# Below this share of distinct values the bootstrap distribution is a handful of atoms.
TIES_DISTINCT_SHARE = 0.5

# Memory bound for one chunk of resampled indices plus the gathered values (mean statistic).
_CHUNK_BYTES = 256 * 2**20
# Rows per chunk even when memory allows more: small chunks stay in cache and avoid page faults,
# which measured ~20% faster than one 10,000-row block.
_CHUNK_ROWS = 256


@dataclass
class ConfidenceInterval:
    estimate: float
    low: float
    high: float
    level: float
    method: str  # "bca" | "percentile" | "hierarchical_percentile" | "degenerate"
    flags: list[str] = field(default_factory=list)

    @property
    def rel_halfwidth(self) -> float:
        """Half the width over |estimate|; 0 for a zero-width interval."""
        width = self.high - self.low
        if width == 0.0:
            return 0.0
        return 0.5 * width / abs(self.estimate) if self.estimate != 0.0 else math.inf


# --------------------------------------------------------------------------- input checks
def as_samples(values: Sequence[float] | np.ndarray, name: str, *, min_n: int = 1, positive: bool = False) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise HarnessError(f"{name}: not a list of numbers; pass the per-sample values as floats") from None
    if arr.ndim != 1:
        raise HarnessError(f"{name}: expected a flat list of numbers, got an array of shape {arr.shape}")
    if arr.size < min_n:
        raise HarnessError(f"{name}: has {arr.size} values but needs at least {min_n}; collect more samples")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argmax(bad))
        raise HarnessError(f"{name}[{i}]: is {arr[i]}; drop non-finite samples before computing statistics")
    if positive and (arr <= 0).any():
        i = int(np.argmax(arr <= 0))
        raise HarnessError(f"{name}[{i}]: is {arr[i]}; times must be positive for ratios and logs")
    return arr


def _check_options(statistic: str, method: str | None, n_resamples: int, level: float) -> None:
    if statistic not in STATISTICS:
        raise HarnessError(f"statistic: unknown {statistic!r}; use one of {', '.join(STATISTICS)}")
    if method is not None and method not in METHODS:
        raise HarnessError(f"method: unknown {method!r}; use one of {', '.join(METHODS)}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise HarnessError(f"n_resamples: {n_resamples!r} is not a positive integer; use e.g. 10000")
    _check_level(level)


def _check_level(level: float, name: str = "level") -> None:
    if not (isinstance(level, (int, float)) and 0.0 < float(level) < 1.0):
        raise HarnessError(f"{name}: {level!r} must lie strictly between 0 and 1, e.g. 0.95")


def _tie_flags(sorted_values: np.ndarray) -> list[str]:
    distinct = 1 + int(np.count_nonzero(np.diff(sorted_values)))
    return [FLAG_TIES] if distinct / sorted_values.size < TIES_DISTINCT_SHARE else []


# --------------------------------------------------------------------------- bootstrap machinery
def _median_sorted(s: np.ndarray) -> float:
    n = s.size
    mid = n // 2
    return float(s[mid]) if n % 2 else float(0.5 * (s[mid - 1] + s[mid]))


def _statistic_sorted(s: np.ndarray, statistic: str) -> float:
    return _median_sorted(s) if statistic == "median" else float(s.mean())


def draw_medians(s: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` bootstrap medians of the sorted sample `s` via the order-statistic identity (module doc)."""
    n = s.size
    if n % 2:
        k = (n + 1) // 2
        u = rng.beta(k, n - k + 1, size)
        return s[np.minimum((u * n).astype(np.intp), n - 1)]
    k = n // 2
    u1 = rng.beta(k, n - k + 1, size)
    # The other n-k uniforms lie above u1, uniformly; the smallest of them is the (k+1)-th overall.
    u2 = u1 + (1.0 - u1) * rng.beta(1, n - k, size)
    i1 = np.minimum((u1 * n).astype(np.intp), n - 1)
    i2 = np.minimum((u2 * n).astype(np.intp), n - 1)
    return 0.5 * (s[i1] + s[i2])


def _draw_means(x: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    n = x.size
    dtype = np.int16 if n <= np.iinfo(np.int16).max else np.intp
    per_row = n * (np.dtype(dtype).itemsize + x.itemsize)
    rows = max(1, min(_CHUNK_ROWS, _CHUNK_BYTES // per_row))
    out = np.empty(size)
    for start in range(0, size, rows):
        r = min(rows, size - start)
        idx = rng.integers(0, n, size=(r, n), dtype=dtype)
        out[start : start + r] = x[idx].mean(axis=1)
    return out


def _draw(s: np.ndarray, statistic: str, size: int, rng: np.random.Generator) -> np.ndarray:
    return draw_medians(s, size, rng) if statistic == "median" else _draw_means(s, size, rng)


def _jackknife_sorted(s: np.ndarray, statistic: str) -> np.ndarray:
    """Leave-one-out statistics of the sorted sample, in O(n) (n >= 2)."""
    n = s.size
    if statistic == "mean":
        return (s.sum() - s) / (n - 1)
    removed = np.arange(n)
    m = n - 1  # length after removal; element j of the reduced array is s[j + (j >= removed)]

    def at(j: int) -> np.ndarray:
        return s[j + (j >= removed)]

    return at(m // 2) if m % 2 else 0.5 * (at(m // 2 - 1) + at(m // 2))


def _bca_probabilities(draws: np.ndarray, estimate: float, jackknives: list[np.ndarray], level: float) -> Optional[list[float]]:
    """BCa's adjusted percentile levels (Efron & Tibshirani 1993, eq. 14.10/15.36), or None when
    they are undefined (bias-correction z0 infinite). Multi-sample acceleration as in scipy.

    A jackknife whose values are all equal (common for the median of tied timer ticks) carries no
    skewness information: its acceleration term is exactly 0. Computing it anyway gives u = mean
    - value = rounding noise of one sign, and a = +-1/(6 sqrt(n)) that flips with the data's scale
    (a 5% rescaling switched the interval between BCa and percentile). With every term 0, a = 0:
    the bias-corrected percentile interval."""
    b = draws.size
    share_below = (np.count_nonzero(draws < estimate) + np.count_nonzero(draws <= estimate)) / (2.0 * b)
    if not 0.0 < share_below < 1.0:
        return None
    z0 = float(special.ndtri(share_below))
    num = 0.0
    den = 0.0
    for jack in jackknives:
        n = jack.size
        if n < 2 or jack.min() == jack.max():
            continue
        u = (n - 1) * (jack.mean() - jack)
        num += float(np.sum(u**3)) / n**3
        den += float(np.sum(u**2)) / n**2
    accel = num / (6.0 * den**1.5) if den > 0.0 else 0.0
    alpha = 1.0 - level
    probs: list[float] = []
    for z in (special.ndtri(alpha / 2), special.ndtri(1 - alpha / 2)):
        shifted = z0 + z
        denom = 1.0 - accel * shifted
        if not denom > 0.0:
            return None
        probs.append(float(special.ndtr(z0 + shifted / denom)))
    if not all(0.0 < p < 1.0 for p in probs):
        return None
    return probs


def resolution_of(sorted_values: np.ndarray) -> float | None:
    """The timer's step as the data show it: the smallest gap between two distinct values (None
    when every value is equal). On tick-quantised data this is one tick; on continuous data it is
    tiny and never widens an interval."""
    gaps = np.diff(sorted_values)
    gaps = gaps[gaps > 0]
    return float(gaps.min()) if gaps.size else None


def _widen(ci: ConfidenceInterval, resolution: float | None) -> ConfidenceInterval:
    """At least `resolution` wide, centred on the estimate where it had to grow (flagged)."""
    if resolution is None or ci.high - ci.low >= resolution:
        return ci
    ci.low = min(ci.low, ci.estimate - resolution / 2)
    ci.high = max(ci.high, ci.estimate + resolution / 2)
    ci.flags = ci.flags + [FLAG_RESOLUTION]
    return ci


def _interval(
    draws: np.ndarray,
    estimate: float,
    level: float,
    method: str,
    jackknives: list[np.ndarray],
    flags: list[str],
) -> ConfidenceInterval:
    flags = list(flags)
    alpha = 1.0 - level
    probs = None
    used = "percentile"
    if method == "bca":
        probs = _bca_probabilities(draws, estimate, jackknives, level)
        if probs is None:
            flags.append(FLAG_BCA_FALLBACK)
        else:
            used = "bca"
    if probs is None:
        probs = [alpha / 2, 1 - alpha / 2]
    low, high = np.quantile(draws, probs)
    return ConfidenceInterval(float(estimate), float(low), float(high), float(level), used, flags)


def _degenerate(estimate: float, level: float, flags: list[str]) -> ConfidenceInterval:
    value = float(estimate)
    return ConfidenceInterval(value, value, value, float(level), "degenerate", flags + [FLAG_DEGENERATE])


# --------------------------------------------------------------------------- public API
def bootstrap_ci(
    samples: Sequence[float] | np.ndarray,
    statistic: str = "median",
    n_resamples: int = 10_000,
    level: float = 0.95,
    method: str = "bca",
    seed: int = 0,
) -> ConfidenceInterval:
    """Bootstrap CI of the median or mean of one sample.

    BCa uses the jackknife for the acceleration. Where BCa is undefined (see _bca_probabilities)
    the percentile interval is returned with flag "bca_fallback_percentile"; all-equal data give a
    zero-width interval with flag "degenerate_all_equal"; `ci.method` says what was computed.
    """
    _check_options(statistic, method, n_resamples, level)
    s = np.sort(as_samples(samples, "samples"))
    estimate = _statistic_sorted(s, statistic)
    flags = _tie_flags(s)
    if s[0] == s[-1]:
        return _degenerate(estimate, level, flags)
    draws = _draw(s, statistic, n_resamples, np.random.default_rng(seed))
    jack = [_jackknife_sorted(s, statistic)] if method == "bca" else []
    return _widen(_interval(draws, estimate, level, method, jack, flags), resolution_of(s))


def ratio_of_medians_ci(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    n_resamples: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
    method: str = "bca",
) -> ConfidenceInterval:
    """CI of median(a) / median(b), resampling a and b independently.

    BCa by default (two-sample jackknife acceleration, as scipy.stats.bootstrap does for several
    samples), falling back to percentile with a flag where BCa is undefined.
    """
    _check_options("median", method, n_resamples, level)
    sa = np.sort(as_samples(a, "a", positive=True))
    sb = np.sort(as_samples(b, "b", positive=True))
    ma, mb = _median_sorted(sa), _median_sorted(sb)
    estimate = ma / mb
    flags = sorted(set(_tie_flags(sa) + _tie_flags(sb)))
    if sa[0] == sa[-1] and sb[0] == sb[-1]:
        return _degenerate(estimate, level, flags)
    rng = np.random.default_rng(seed)
    draws = draw_medians(sa, n_resamples, rng) / draw_medians(sb, n_resamples, rng)
    jack: list[np.ndarray] = []
    if method == "bca":
        # A constant sample contributes a jackknife of equal values: no acceleration from it.
        jack_a = _jackknife_sorted(sa, "median") / mb if sa.size > 1 else np.full(1, estimate)
        jack_b = ma / _jackknife_sorted(sb, "median") if sb.size > 1 else np.full(1, estimate)
        jack = [jack_a, jack_b]
    return _widen(_interval(draws, estimate, level, method, jack, flags), _ratio_resolution(sa, sb, ma, mb, estimate))


def _ratio_resolution(sa: np.ndarray, sb: np.ndarray, ma: float, mb: float, ratio: float) -> float | None:
    """How far the ratio moves when each median moves one tick (first order, both added)."""
    ra, rb = resolution_of(sa), resolution_of(sb)
    if ra is None and rb is None:
        return None
    return ratio * ((ra or 0.0) / ma + (rb or 0.0) / mb)


def hierarchical_draws(
    sorted_groups: list[np.ndarray], statistic: str, size: int, rng: np.random.Generator
) -> np.ndarray:
    """Resample repetitions with replacement, then samples within each chosen repetition; each
    resample's value is the median (or mean) of its repetitions' resampled medians (or means)."""
    g = len(sorted_groups)
    picks = rng.integers(0, g, size=(size, g))
    per_slot = np.empty((size, g))
    for i, s in enumerate(sorted_groups):
        chosen = picks == i
        count = int(np.count_nonzero(chosen))
        if count:
            per_slot[chosen] = _draw(s, statistic, count, rng)
    return np.median(per_slot, axis=1) if statistic == "median" else per_slot.mean(axis=1)


def _groups(groups: Groups, name: str, positive: bool = False) -> list[np.ndarray]:
    if isinstance(groups, np.ndarray) and groups.ndim == 1:
        raise HarnessError(f"{name}: expected a list of repetitions (lists of samples), got one flat list")
    if len(groups) == 0:
        raise HarnessError(f"{name}: no repetitions; pass at least one list of samples")
    if any(np.ndim(g) == 0 for g in groups):
        raise HarnessError(f"{name}: expected a list of repetitions (lists of samples), got a list of numbers")
    return [np.sort(as_samples(g, f"{name}[{i}]", positive=positive)) for i, g in enumerate(groups)]


def hierarchical_bootstrap_ci(
    groups: Groups,
    statistic: str = "median",
    n_resamples: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> ConfidenceInterval:
    """Between-run aware CI from several independent repetitions.

    Estimate: the median of the repetition medians (mean of means for statistic="mean"), so one
    odd repetition cannot drag the headline, and runs with more samples do not outvote the others.
    Interval: two-stage (hierarchical) bootstrap percentile interval. With a single repetition this
    is exactly `bootstrap_ci(groups[0], statistic, n_resamples, level, "bca", seed)`.
    Few repetitions (2-5) make the outer stage coarse; the interval is then honest about the
    spread between runs but its coverage is approximate.
    """
    _check_options(statistic, None, n_resamples, level)
    sorted_groups = _groups(groups, "groups")
    if len(sorted_groups) == 1:
        return bootstrap_ci(sorted_groups[0], statistic, n_resamples, level, "bca", seed)
    per_group = np.array([_statistic_sorted(s, statistic) for s in sorted_groups])
    estimate = float(np.median(per_group)) if statistic == "median" else float(per_group.mean())
    flags = _tie_flags(np.sort(np.concatenate(sorted_groups)))
    if all(s[0] == s[-1] for s in sorted_groups) and np.all(per_group == per_group[0]):
        return _degenerate(estimate, level, flags)
    draws = hierarchical_draws(sorted_groups, statistic, n_resamples, np.random.default_rng(seed))
    ci = _interval(draws, estimate, level, "percentile", [], flags)
    ci.method = "hierarchical_percentile"
    return _widen(ci, resolution_of(np.sort(np.concatenate(sorted_groups))))


def hierarchical_ratio_ci(
    groups_a: Groups,
    groups_b: Groups,
    n_resamples: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> ConfidenceInterval:
    """CI of est(a) / est(b), est = median of repetition medians, each side resampled
    hierarchically and independently (percentile). One repetition on each side: exactly
    `ratio_of_medians_ci(groups_a[0], groups_b[0], n_resamples, level, seed)` (BCa)."""
    _check_options("median", None, n_resamples, level)
    ga = _groups(groups_a, "groups_a", positive=True)
    gb = _groups(groups_b, "groups_b", positive=True)
    if len(ga) == 1 and len(gb) == 1:
        return ratio_of_medians_ci(ga[0], gb[0], n_resamples, level, seed)
    est_a = float(np.median([_median_sorted(s) for s in ga]))
    est_b = float(np.median([_median_sorted(s) for s in gb]))
    flags = sorted(set(_tie_flags(np.sort(np.concatenate(ga))) + _tie_flags(np.sort(np.concatenate(gb)))))
    rng = np.random.default_rng(seed)
    draws = hierarchical_draws(ga, "median", n_resamples, rng) / hierarchical_draws(gb, "median", n_resamples, rng)
    pooled_a, pooled_b = np.sort(np.concatenate(ga)), np.sort(np.concatenate(gb))
    resolution = _ratio_resolution(pooled_a, pooled_b, est_a, est_b, est_a / est_b)
    if draws.min() == draws.max():
        return _widen(_degenerate(est_a / est_b, level, flags), resolution)
    ci = _interval(draws, est_a / est_b, level, "percentile", [], flags)
    ci.method = "hierarchical_percentile"
    return _widen(ci, resolution)


# --------------------------------------------------------------------------- distribution-free median CI
@lru_cache(maxsize=8192)
def median_ci_ranks(n: int, level: float = 0.95) -> tuple[int, int]:
    """0-based order-statistic indices (j, n-1-j) of the exact binomial CI of the median:
    the largest j with P(Binomial(n, 1/2) <= j) <= (1-level)/2. (-1, n) when n is too small."""
    tail = (1.0 - level) / 2.0
    if special.bdtr(0, n, 0.5) > tail:
        return (-1, n)
    # Start from the normal approximation and walk to the exact answer (one or two steps).
    j = int(n / 2 - float(special.ndtri(1 - tail)) * math.sqrt(n) / 2 - 0.5)
    j = min(max(j, 0), (n - 1) // 2)
    while j + 1 <= (n - 1) // 2 and special.bdtr(j + 1, n, 0.5) <= tail:
        j += 1
    while j > 0 and special.bdtr(j, n, 0.5) > tail:
        j -= 1
    return (j, n - 1 - j)


def median_ci_min_samples(level: float = 0.95) -> int:
    """Fewest samples for which `median_ci_distribution_free` exists (6 at 95%)."""
    _check_level(level)
    return max(1, math.ceil(math.log2(2.0 / (1.0 - level))))


def median_ci_distribution_free(samples: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Exact, distribution-free CI of the median: (x_(j+1), x_(n-j)) by the binomial argument,
    coverage >= level for any continuous distribution (conservative with ties). O(n) selection,
    no resampling: the timer's stopping rule calls it after every batch."""
    _check_level(level)
    x = as_samples(samples, "samples")
    n = x.size
    lo, hi = median_ci_ranks(n, float(level))
    if lo < 0:
        raise HarnessError(
            f"samples: {n} values are too few for a {level:.0%} CI of the median; "
            f"need at least {median_ci_min_samples(level)}"
        )
    part = np.partition(x, (lo, hi))
    return float(part[lo]), float(part[hi])


# --------------------------------------------------------------------------- the timer's summary
def summarize_repetitions(
    groups: Groups,
    converged: Sequence[bool],
    level: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> TimingSummary:
    """TimingSummary over all repetitions of one case.

    median_ms and the CI come from `hierarchical_bootstrap_ci` (one repetition: the plain BCa
    bootstrap of the median; several: median of repetition medians with a two-stage bootstrap
    interval). mean/std/min/max describe the pooled samples. converged: every repetition met
    its precision target.
    """
    sorted_groups = _groups(groups, "groups", positive=True)
    if len(converged) != len(sorted_groups):
        raise HarnessError(
            f"converged: has {len(converged)} entries for {len(sorted_groups)} repetitions; "
            "pass one flag per repetition"
        )
    ci = hierarchical_bootstrap_ci(sorted_groups, "median", n_resamples, level, seed)
    pooled = np.concatenate(sorted_groups)
    return TimingSummary(
        n_samples=int(pooled.size),
        n_repetitions=len(sorted_groups),
        median_ms=ci.estimate,
        mean_ms=float(pooled.mean()),
        std_ms=float(pooled.std(ddof=1)) if pooled.size > 1 else 0.0,
        min_ms=float(pooled.min()),
        max_ms=float(pooled.max()),
        ci_low_ms=ci.low,
        ci_high_ms=ci.high,
        ci_level=float(level),
        ci_method=ci.method,
        rel_halfwidth=ci.rel_halfwidth,
        converged=bool(all(converged)),
        flags=list(ci.flags),
    )


# --------------------------------------------------------------------------- verdict settings and rules
@dataclass(frozen=True)
class BootstrapSettings:
    resamples: int
    seed: int


# Every CI a verdict, a derived tolerance or a report computes from two or more cases (ratios,
# scaling exponents): fixed, so the same folder always gets the same verdict, and derive-reference
# widens a tolerance by the very intervals a check will compute.
VERDICT_BOOTSTRAP = BootstrapSettings(resamples=4000, seed=20240611)

FASTER, SLOWER, NO_DIFFERENCE = "faster", "slower", "no detectable difference"


def direction(ratio_low: float, ratio_high: float) -> str:
    """The one rule for "faster": the CI of time(candidate) / time(baseline) lies wholly below 1
    (wholly above: slower; otherwise no detectable difference). Whether the two cases' own CIs
    overlap is never consulted: two 95% CIs can overlap while the difference is significant."""
    if ratio_high < 1.0:
        return FASTER
    if ratio_low > 1.0:
        return SLOWER
    return NO_DIFFERENCE
