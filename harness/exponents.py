"""Scaling exponents: p of time ~ S^p from per-length medians, with a bootstrap CI that resamples
each length's repetitions and samples independently (numpy only; torch-free). Scaling claims and
their derivation use it, with the verdict's bootstrap settings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.stats import VERDICT_BOOTSTRAP, Groups, draw_medians, hierarchical_draws


def median_draws(groups: Groups, size: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap draws of a case's median: repetitions resampled, then samples within each (with
    one repetition, the ordinary bootstrap of the median), by the order-statistic identity above
    in O(size) memory: resampling indices took size x n (77 GiB for a case of 2.6M samples)."""
    arrays = [np.sort(np.asarray(g, dtype=float)) for g in groups]
    if len(arrays) == 1:
        return draw_medians(arrays[0], size, rng)
    return hierarchical_draws(arrays, "median", size, rng)


def loglog_slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of log(y) against log(x); y may be (draws, points)."""
    lx = np.log(np.asarray(x, dtype=float))
    ly = np.log(np.asarray(y, dtype=float))
    cx = lx - lx.mean()
    return np.asarray((ly - ly.mean(axis=-1, keepdims=True)) @ cx / (cx @ cx))


def scaling_exponent(groups_per_point: Sequence[Sequence[Sequence[float]]], seqs: Sequence[int], level: float = 0.95,
                     size: int = VERDICT_BOOTSTRAP.resamples, seed: int = VERDICT_BOOTSTRAP.seed) -> tuple[float, float, float]:
    """Exponent p of time ~ S^p from the medians (median of repetition medians), with a
    percentile-bootstrap CI, each point resampled independently: (estimate, low, high)."""
    medians = np.array([float(np.median([np.median(g) for g in groups])) for groups in groups_per_point])
    estimate = float(loglog_slope(np.array(seqs), medians))
    rng = np.random.default_rng(seed)
    draws = np.column_stack([median_draws(g, size, rng) for g in groups_per_point])
    slopes = loglog_slope(np.array(seqs), draws)
    tail = (1 - level) / 2
    return estimate, float(np.quantile(slopes, tail)), float(np.quantile(slopes, 1 - tail))
