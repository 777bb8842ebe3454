"""Effect sizes and a rank test between two samples of times (numpy + scipy; torch-free): Hedges'
g with the exact small-sample correction, Cliff's delta and its magnitude, Mann-Whitney U. What a
comparison reports besides the ratio CI (harness/compare.py); checked against scipy in the tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import special

from harness.errors import HarnessError
from harness.stats import as_samples


def hedges_correction(df: float) -> float:
    """Exact small-sample correction J(df) = Gamma(df/2) / (sqrt(df/2) Gamma((df-1)/2))."""
    if not df > 1:
        raise HarnessError(f"df: {df!r} must exceed 1 for Hedges' correction; use at least 2 samples per group")
    return math.exp(special.gammaln(df / 2) - 0.5 * math.log(df / 2) - special.gammaln((df - 1) / 2))


def _cohens_d(x: np.ndarray, y: np.ndarray) -> float:
    diff = float(x.mean() - y.mean())
    df = x.size + y.size - 2
    pooled = math.sqrt(((x.size - 1) * x.var(ddof=1) + (y.size - 1) * y.var(ddof=1)) / df)
    if pooled == 0.0:
        return 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
    return diff / pooled


def hedges_g(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Cohen's d times the exact J(na + nb - 2). Positive: a is larger (slower, for times)."""
    x = as_samples(a, "a", min_n=2)
    y = as_samples(b, "b", min_n=2)
    return _cohens_d(x, y) * hedges_correction(x.size + y.size - 2)


def cliffs_delta(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """P(a > b) - P(a < b) over all pairs, in O((na + nb) log nb) by binary search; ties count 0."""
    x = as_samples(a, "a")
    y = np.sort(as_samples(b, "b"))
    below = np.searchsorted(y, x, side="left").sum()  # pairs with b < a
    above = (y.size - np.searchsorted(y, x, side="right")).sum()  # pairs with b > a
    return float(below - above) / (x.size * y.size)


# Romano, Kromrey, Coraggio & Skowronek (2006): |delta| < .147 negligible, < .33 small, < .474 medium.
CLIFFS_THRESHOLDS = ((0.147, "negligible"), (0.33, "small"), (0.474, "medium"))


def cliffs_magnitude(delta: float) -> str:
    if not (isinstance(delta, (int, float)) and -1.0 <= delta <= 1.0):
        raise HarnessError(f"delta: {delta!r} is not a Cliff's delta (must lie in [-1, 1])")
    for bound, name in CLIFFS_THRESHOLDS:
        if abs(delta) < bound:
            return name
    return "large"


def mann_whitney(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(U of a, two-sided p) from scipy.stats.mannwhitneyu; p = 1.0 where scipy has no answer
    (every value equal), never NaN."""
    x = as_samples(a, "a")
    y = as_samples(b, "b")
    if np.all(x == x[0]) and np.all(y == x[0]):
        return float(x.size * y.size) / 2.0, 1.0
    from scipy.stats import mannwhitneyu  # scipy.stats costs ~0.4 s to import; only this needs it

    res = mannwhitneyu(x, y, alternative="two-sided")
    p = float(res.pvalue)
    return float(res.statistic), (1.0 if not math.isfinite(p) else min(p, 1.0))
