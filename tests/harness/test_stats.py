"""harness.stats against scipy, textbook values and the real L4 timings of the seed system."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import special
from scipy import stats as sps

from harness import effects, stats
from harness.errors import HarnessError
from harness.records import TimingSummary, from_dict, to_json


# Helpers that only these tests need (the harness uses ranks and Hedges' g, not these).
def median_ci_coverage(n: int, level: float = 0.95) -> float:
    """Exact coverage of stats.median_ci_distribution_free for n continuous samples."""
    j, _ = stats.median_ci_ranks(n, level)
    return 0.0 if j < 0 else 1.0 - 2.0 * float(special.bdtr(j, n, 0.5))


def cohens_d(a, b) -> float:
    return effects._cohens_d(np.asarray(a, dtype=float), np.asarray(b, dtype=float))

SEED_DATA = Path(__file__).resolve().parents[1] / "data" / "seed-l4-data"  # real L4 data, see its README
RNG_SEED = 20251013


def l4_samples(name: str) -> np.ndarray:
    path = SEED_DATA / name
    if not path.is_file():
        pytest.fail(f"{path}: L4 fixture missing: it belongs to the repository (tests/data/seed-l4-data); restore it with git checkout")
    data = json.loads(path.read_text())
    raw = data.get("raw_latencies") or data["results"]["raw_latencies"]
    return np.asarray(raw, dtype=float)


def l4_files() -> list[str]:
    return sorted(p.name for p in SEED_DATA.glob("*.json") if p.name != "full_env.json")


def mc_tolerance(distribution: np.ndarray, endpoint: float) -> float:
    """How far another implementation's endpoint may honestly sit from `endpoint` of scipy's.

    An endpoint is the p-quantile of B bootstrap draws; its Monte-Carlo error in p is about
    sqrt(p(1-p)/B) per implementation. The tolerance is the distance to the quantiles of scipy's
    own bootstrap distribution 4 combined standard errors away in p. This also covers the atoms of
    tied timings: a neighbouring atom is within tolerance only if it is that close in probability."""
    b = distribution.size
    p = float(np.clip(np.mean(distribution <= endpoint), 1.0 / b, 1.0 - 1.0 / b))
    window = 4.0 * math.sqrt(2.0 * p * (1.0 - p) / b)
    lo, hi = np.quantile(distribution, [max(p - window, 0.0), min(p + window, 1.0)])
    return max(endpoint - lo, hi - endpoint) + 1e-12 * abs(endpoint)


def scipy_bootstrap(data, statistic, method, n_resamples=10_000, seed=1):
    fn = {"median": np.median, "mean": np.mean}[statistic] if isinstance(statistic, str) else statistic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns (and returns NaN) where BCa is undefined
        return sps.bootstrap(
            data, fn, method={"bca": "BCa", "percentile": "percentile"}[method],
            n_resamples=n_resamples, rng=np.random.default_rng(seed), vectorized=True,
        )


def assert_agrees_with_scipy(ci, res):
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    dist = res.bootstrap_distribution
    assert abs(ci.low - lo) <= mc_tolerance(dist, lo), (ci.low, lo, mc_tolerance(dist, lo))
    assert abs(ci.high - hi) <= mc_tolerance(dist, hi), (ci.high, hi, mc_tolerance(dist, hi))


class _Interval:
    def __init__(self, low, high, distribution):
        self.confidence_interval = type("CI", (), {"low": low, "high": high})()
        self.bootstrap_distribution = distribution


def bc_percentile(res, estimate, level=0.95):
    """Efron's bias-corrected percentile interval (BCa with a = 0) from scipy's bootstrap
    distribution: levels Phi(2 z0 +- z_(alpha/2)), z0 = Phi^-1(share of draws below the estimate,
    ties counted one half)."""
    dist = res.bootstrap_distribution
    share = (np.count_nonzero(dist < estimate) + np.count_nonzero(dist <= estimate)) / (2.0 * dist.size)
    z0 = sps.norm.ppf(share)
    z = sps.norm.ppf((1 - level) / 2)
    lo, hi = np.quantile(dist, [sps.norm.cdf(2 * z0 + z), sps.norm.cdf(2 * z0 - z)])
    return _Interval(float(lo), float(hi), dist)


def scipy_ci(data, statistic, method, n_resamples=10_000, seed=1):
    res = scipy_bootstrap((data,), statistic, method, n_resamples, seed)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


# --------------------------------------------------------------------------- bootstrap_ci
@pytest.mark.parametrize(
    "n,statistic,method",
    [(200, "median", "bca"), (200, "median", "percentile"), (1000, "median", "bca"), (301, "median", "bca"),
     (301, "mean", "bca"), (301, "mean", "percentile"), (60, "mean", "bca")],
)
def test_bootstrap_matches_scipy_on_lognormal(n, statistic, method):
    # sigma=1 at n=60: skewed enough that BCa's acceleration moves the endpoints visibly.
    sigma = 1.0 if n == 60 else 0.4
    x = np.random.default_rng(RNG_SEED + n).lognormal(mean=-2.0, sigma=sigma, size=n)
    ci = stats.bootstrap_ci(x, statistic, level=0.95, method=method, seed=3)
    res = scipy_bootstrap((x,), statistic, method)
    assert ci.method == method and ci.flags == []
    assert ci.estimate == pytest.approx(float(getattr(np, statistic)(x)), rel=1e-12)
    assert ci.low < ci.estimate < ci.high
    assert_agrees_with_scipy(ci, res)


@pytest.mark.parametrize("name", l4_files())
def test_bootstrap_matches_scipy_on_l4_samples(name):
    x = l4_samples(name)
    assert x.size == 100
    pct = stats.bootstrap_ci(x, method="percentile", seed=11)
    assert_agrees_with_scipy(pct, scipy_bootstrap((x,), "median", "percentile"))
    assert pct.low <= np.median(x) <= pct.high

    bca = stats.bootstrap_ci(x, method="bca", seed=11)
    sp_bca = scipy_bootstrap((x,), "median", "bca")
    if math.isnan(sp_bca.confidence_interval.low):
        # scipy gives up (all 100 leave-one-out medians equal: tied ticks at the median, a = 0/0);
        # with a = 0 BCa is the bias-corrected percentile interval, computed here from scipy's
        # own bootstrap distribution.
        assert bca.method == "bca" and stats.FLAG_BCA_FALLBACK not in bca.flags
        assert_agrees_with_scipy(bca, bc_percentile(sp_bca, float(np.median(x))))
    else:
        assert bca.method == "bca" and stats.FLAG_BCA_FALLBACK not in bca.flags
        assert_agrees_with_scipy(bca, sp_bca)
    assert all(math.isfinite(v) for v in (bca.estimate, bca.low, bca.high))


@pytest.mark.parametrize("seed", [0, 1])
def test_bca_counts_draws_equal_to_the_estimate_as_half_below_like_scipy(seed):
    # Coarse ticks: over half the bootstrap medians equal the sample median, yet the jackknife
    # varies, so BCa is defined; its z0 must use scipy's mid-rank share (ties count one half).
    x = np.round(np.random.default_rng(seed).lognormal(0.0, 0.3, 31) * 8) / 8
    ci = stats.bootstrap_ci(x, n_resamples=20_000, seed=4)
    lo, hi = scipy_ci(x, "median", "bca", n_resamples=20_000)
    assert ci.method == "bca" and stats.FLAG_TIES in ci.flags
    assert (ci.low, ci.high) == (lo, hi)  # the distribution is a few atoms: both land on the same ones


def test_l4_ties_are_flagged_and_equal_jackknives_still_give_bca():
    results = [stats.bootstrap_ci(l4_samples(n), seed=1) for n in l4_files()]
    # The timer ticks in ~1.024 us steps: most runs have few distinct values, and the median is
    # usually a tied value, which makes every jackknife median equal: a = 0, not a fallback.
    assert sum(stats.FLAG_TIES in r.flags for r in results) >= 10
    assert all(r.method == "bca" and stats.FLAG_BCA_FALLBACK not in r.flags for r in results)


def test_median_draws_follow_the_exact_bootstrap_distribution_odd_n():
    # For odd n the bootstrap median is s[I], P(I <= j) = P(Binomial(n, (j+1)/n) >= (n+1)/2).
    n, b = 41, 40_000
    s = np.sort(np.random.default_rng(RNG_SEED).lognormal(size=n))
    draws = stats.draw_medians(s, b, np.random.default_rng(5))
    idx = np.searchsorted(s, draws)
    empirical = np.searchsorted(np.sort(idx), np.arange(n), side="right") / b
    exact = sps.binom.sf((n + 1) // 2 - 1, n, (np.arange(n) + 1) / n)
    assert np.max(np.abs(empirical - exact)) < 1.95 / math.sqrt(b)  # KS critical value, alpha=0.001


@pytest.mark.parametrize("n", [6, 40])
def test_median_draws_match_brute_force_index_resampling_even_n(n):
    b = 40_000
    s = np.sort(np.random.default_rng(RNG_SEED + n).lognormal(size=n))
    fast = stats.draw_medians(s, b, np.random.default_rng(5))
    rng = np.random.default_rng(6)
    brute = np.median(s[rng.integers(0, n, size=(b, n))], axis=1)
    support = np.union1d(fast, brute)
    cdf_fast = np.searchsorted(np.sort(fast), support, side="right") / b
    cdf_brute = np.searchsorted(np.sort(brute), support, side="right") / b
    assert np.max(np.abs(cdf_fast - cdf_brute)) < 1.95 * math.sqrt(2 / b)  # two-sample KS, alpha=0.001


def test_mean_chunking_keeps_the_answer(monkeypatch):
    x = np.random.default_rng(RNG_SEED).gamma(2.0, 0.01, size=500)
    whole = stats.bootstrap_ci(x, "mean", method="percentile", seed=4)
    monkeypatch.setattr(stats, "_CHUNK_BYTES", 7 * 500 * 10)  # 7 rows per chunk
    chunked = stats.bootstrap_ci(x, "mean", method="percentile", seed=4)
    width = whole.high - whole.low
    assert abs(chunked.low - whole.low) < 0.05 * width and abs(chunked.high - whole.high) < 0.05 * width


def test_bootstrap_is_reproducible_per_seed():
    x = np.random.default_rng(RNG_SEED).lognormal(size=150)
    assert stats.bootstrap_ci(x, seed=9) == stats.bootstrap_ci(x, seed=9)
    assert stats.bootstrap_ci(x, seed=9) == stats.bootstrap_ci(np.random.default_rng(1).permutation(x), seed=9)


def test_all_equal_samples_give_a_zero_width_interval():
    value = float(np.random.default_rng(RNG_SEED).uniform(0.05, 2.0))
    for samples in ([value] * 37, [value]):
        for method in stats.METHODS:
            ci = stats.bootstrap_ci(samples, method=method)
            assert (ci.estimate, ci.low, ci.high) == (value, value, value)
            assert ci.method == "degenerate" and stats.FLAG_DEGENERATE in ci.flags
            assert ci.rel_halfwidth == 0.0


def test_quantized_timer_ticks_fall_back_to_percentile_without_nan():
    # A 1.024 us timer, a kernel of ~60 us with ~1 us jitter: a handful of distinct values.
    rng = np.random.default_rng(RNG_SEED)
    tick = 1.024e-3
    x = np.round(rng.normal(0.0604, 0.0008, size=200) / tick) * tick
    ci = stats.bootstrap_ci(x, method="bca")
    assert stats.FLAG_TIES in ci.flags
    assert all(math.isfinite(v) for v in (ci.low, ci.high, ci.estimate))
    assert ci.low <= ci.estimate <= ci.high
    if ci.method == "percentile":
        assert stats.FLAG_BCA_FALLBACK in ci.flags


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"samples": []}, "samples"),
        ({"samples": [0.1, float("nan"), 0.2]}, "samples[1]"),
        ({"samples": [0.1, float("inf")]}, "samples[1]"),
        ({"samples": ["fast", "slow"]}, "samples"),
        ({"samples": [[0.1, 0.2], [0.3, 0.4]]}, "samples"),
        ({"samples": [0.1, 0.2], "statistic": "mode"}, "statistic"),
        ({"samples": [0.1, 0.2], "method": "bootstrap-t"}, "method"),
        ({"samples": [0.1, 0.2], "level": 95}, "level"),
        ({"samples": [0.1, 0.2], "n_resamples": 0}, "n_resamples"),
    ],
)
def test_bad_input_is_a_one_line_error_naming_the_field(kwargs, field):
    with pytest.raises(HarnessError) as exc:
        stats.bootstrap_ci(**kwargs)
    msg = str(exc.value)
    assert msg.startswith(field) and "\n" not in msg and exc.value.exit_code == 2


# --------------------------------------------------------------------------- distribution-free median CI
@pytest.mark.parametrize(
    "n,lower_rank,upper_rank,coverage", [(10, 2, 9, 0.9785), (20, 6, 15, 0.9586), (100, 40, 61, 0.9648)]
)
def test_median_ci_ranks_match_textbook_tables(n, lower_rank, upper_rank, coverage):
    # Conover, Practical Nonparametric Statistics, CI for a quantile (1-based ranks).
    lo, hi = stats.median_ci_ranks(n, 0.95)
    assert (lo + 1, hi + 1) == (lower_rank, upper_rank)
    assert median_ci_coverage(n, 0.95) == pytest.approx(coverage, abs=5e-5)


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_median_ci_ranks_match_binomial_search(level):
    tail = (1 - level) / 2
    for n in range(1, 400):
        cdf = sps.binom.cdf(np.arange(n), n, 0.5)
        ok = np.nonzero(cdf <= tail)[0]
        expected = int(ok[-1]) if ok.size else -1
        assert stats.median_ci_ranks(n, level)[0] == expected, n
        if expected >= 0:
            assert median_ci_coverage(n, level) >= level
    first_possible = next(n for n in range(1, 50) if stats.median_ci_ranks(n, level)[0] >= 0)
    assert stats.median_ci_min_samples(level) == first_possible


def test_median_ci_has_its_exact_binomial_coverage():
    rng = np.random.default_rng(RNG_SEED)
    n, trials = 25, 4000
    true_median = math.exp(-2.0)  # lognormal(mu=-2): median exp(mu)
    data = rng.lognormal(-2.0, 0.5, size=(trials, n))
    hits = 0
    for row in data:
        lo, hi = stats.median_ci_distribution_free(row)
        hits += lo <= true_median <= hi
    exact = median_ci_coverage(n)
    assert exact == pytest.approx(1 - 2 * sps.binom.cdf(7, n, 0.5))  # j = 7 for n = 25
    assert abs(hits / trials - exact) < 4 * math.sqrt(exact * (1 - exact) / trials)


def test_median_ci_on_l4_samples_brackets_the_median_with_sample_values():
    for name in l4_files():
        x = l4_samples(name)
        lo, hi = stats.median_ci_distribution_free(x)
        srt = np.sort(x)
        assert (lo, hi) == (srt[39], srt[60])
        assert lo <= np.median(x) <= hi


def test_median_ci_refuses_too_few_samples():
    x = np.random.default_rng(RNG_SEED).lognormal(size=5)
    with pytest.raises(HarnessError, match="need at least 6"):
        stats.median_ci_distribution_free(x)
    assert stats.median_ci_distribution_free(np.append(x, 1.0))[0] == np.min(np.append(x, 1.0))


# --------------------------------------------------------------------------- ratio of medians
@pytest.mark.parametrize(
    "method,na,nb,sigma,seed",
    # The small skewed pair is where BCa's two-sample acceleration visibly moves the endpoints.
    [("bca", 240, 181, 0.3, RNG_SEED), ("percentile", 240, 181, 0.3, RNG_SEED), ("bca", 15, 12, 1.0, 1)],
)
def test_ratio_of_medians_matches_scipy_two_sample_bootstrap(method, na, nb, sigma, seed):
    rng = np.random.default_rng(seed)
    a = rng.lognormal(np.log(0.8), sigma, size=na)
    b = rng.lognormal(0.0, sigma, size=nb)
    ci = stats.ratio_of_medians_ci(a, b, method=method, seed=2)

    def ratio(x, y, axis=-1):
        return np.median(x, axis=axis) / np.median(y, axis=axis)

    res = scipy_bootstrap((a, b), ratio, method, seed=8)
    assert ci.method == method
    assert ci.estimate == pytest.approx(np.median(a) / np.median(b))
    assert_agrees_with_scipy(ci, res)


def test_ratio_of_medians_on_l4_scaling_pair():
    s128, s512 = l4_samples("full_enhanced_s128.json"), l4_samples("full_enhanced_s512.json")
    ci = stats.ratio_of_medians_ci(s512, s128)
    assert ci.estimate == pytest.approx(np.median(s512) / np.median(s128))
    assert 4.0 < ci.low <= ci.estimate <= ci.high < 5.5
    assert stats.FLAG_TIES in ci.flags


def test_ratio_of_medians_rejects_non_positive_times():
    with pytest.raises(HarnessError, match=r"^b\[1\]: .*positive"):
        stats.ratio_of_medians_ci([0.1, 0.2], [0.3, -0.1])


# --------------------------------------------------------------------------- effect sizes
LAKENS_MOVIE_1 = [9, 7, 8, 9, 8, 9, 9, 10, 9, 9]
LAKENS_MOVIE_2 = [9, 6, 7, 8, 7, 9, 8, 8, 8, 7]


def test_hedges_g_reproduces_lakens_2013_worked_example():
    # Lakens (2013), Front. Psychol. 4:863, Table 1: means 8.7 vs 7.7, SDs 0.82 / 0.95,
    # Cohen's d_s = 1.13, Hedges' g_s = 1.08.
    assert cohens_d(LAKENS_MOVIE_1, LAKENS_MOVIE_2) == pytest.approx(1.13, abs=0.005)
    assert effects.hedges_g(LAKENS_MOVIE_1, LAKENS_MOVIE_2) == pytest.approx(1.08, abs=0.005)
    assert effects.hedges_g(LAKENS_MOVIE_2, LAKENS_MOVIE_1) == -effects.hedges_g(LAKENS_MOVIE_1, LAKENS_MOVIE_2)


def test_hedges_correction_is_exact_and_close_to_the_approximation():
    # Closed forms: J(2) = 1/sqrt(pi), J(4) = sqrt(2/pi).
    assert effects.hedges_correction(2) == pytest.approx(1 / math.sqrt(math.pi), rel=1e-12)
    assert effects.hedges_correction(4) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-12)
    for df in range(10, 500, 7):
        approx = 1 - 3 / (4 * df - 1)
        assert abs(effects.hedges_correction(df) - approx) < 0.5 / df**2
    assert effects.hedges_correction(3) < effects.hedges_correction(30) < effects.hedges_correction(3000) < 1


def test_cohens_d_matches_the_pooled_t_statistic():
    rng = np.random.default_rng(RNG_SEED)
    a, b = rng.lognormal(0.1, 0.3, 37), rng.lognormal(0.0, 0.4, 52)
    t = sps.ttest_ind(a, b, equal_var=True).statistic
    assert cohens_d(a, b) == pytest.approx(t * math.sqrt(1 / 37 + 1 / 52), rel=1e-10)
    assert effects.hedges_g(a, b) == pytest.approx(cohens_d(a, b) * effects.hedges_correction(87), rel=1e-12)


def test_hedges_g_without_spread_and_with_too_few_samples():
    v = float(np.random.default_rng(RNG_SEED).uniform(0.1, 1.0))
    assert effects.hedges_g([v] * 4, [v] * 5) == 0.0
    assert effects.hedges_g([v] * 4, [2 * v] * 5) == -math.inf
    with pytest.raises(HarnessError, match="^a: has 1 values"):
        effects.hedges_g([v], [v, 2 * v, 3 * v])


def brute_cliffs(a, b):
    a, b = np.asarray(a)[:, None], np.asarray(b)[None, :]
    return float(np.sum(a > b) - np.sum(a < b)) / (a.size * b.size)


def test_cliffs_delta_matches_brute_force_with_ties():
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(20):
        na, nb = rng.integers(1, 300, size=2)
        # Quantized values so ties are frequent, as with timer ticks.
        a = np.round(rng.normal(0.1, 0.01, na) / 1.024e-3) * 1.024e-3
        b = np.round(rng.normal(0.1, 0.01, nb) / 1.024e-3) * 1.024e-3
        assert effects.cliffs_delta(a, b) == pytest.approx(brute_cliffs(a, b), abs=1e-12)
    x, y = l4_samples("full_enhanced_s128.json"), l4_samples("local_enhanced_s128.json")
    assert effects.cliffs_delta(x, y) == pytest.approx(brute_cliffs(x, y), abs=1e-12)
    assert effects.cliffs_delta(x, y) > 0.474  # the 17% between-run offset: a "large" effect


def test_cliffs_delta_agrees_with_mann_whitney_u():
    rng = np.random.default_rng(RNG_SEED)
    a, b = rng.lognormal(0, 1, 83), rng.lognormal(0.2, 1, 61)
    u, _ = effects.mann_whitney(a, b)
    assert effects.cliffs_delta(a, b) == pytest.approx(2 * u / (83 * 61) - 1, abs=1e-12)


@pytest.mark.parametrize(
    "delta,name",
    [(0.0, "negligible"), (0.1469, "negligible"), (-0.147, "small"), (0.3299, "small"), (0.33, "medium"),
     (-0.4739, "medium"), (0.474, "large"), (-1.0, "large")],
)
def test_cliffs_magnitude_uses_romano_thresholds(delta, name):
    assert effects.cliffs_magnitude(delta) == name


def test_cliffs_magnitude_rejects_values_outside_minus_one_one():
    with pytest.raises(HarnessError, match="^delta"):
        effects.cliffs_magnitude(1.5)


def test_mann_whitney_matches_scipy():
    rng = np.random.default_rng(RNG_SEED)
    for na, nb in [(8, 11), (60, 45), (400, 350)]:
        a, b = rng.lognormal(0, 0.5, na), rng.lognormal(0.15, 0.5, nb)
        ref = sps.mannwhitneyu(a, b, alternative="two-sided")
        assert effects.mann_whitney(a, b) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    x, y = l4_samples("full_enhanced_s512.json"), l4_samples("local_enhanced_s512.json")
    ref = sps.mannwhitneyu(x, y, alternative="two-sided")
    assert effects.mann_whitney(x, y) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))


def test_mann_whitney_all_ties_is_p_one_not_nan():
    v = float(np.random.default_rng(RNG_SEED).uniform(0.05, 1.0))
    u, p = effects.mann_whitney([v] * 12, [v] * 9)
    assert (u, p) == (54.0, 1.0)
    u, p = effects.mann_whitney([v], [v])
    assert (u, p) == (0.5, 1.0)


# --------------------------------------------------------------------------- equivalence
def test_hierarchical_with_one_group_is_the_plain_bootstrap():
    x = np.random.default_rng(RNG_SEED).lognormal(size=123)
    for statistic in stats.STATISTICS:
        assert stats.hierarchical_bootstrap_ci([x], statistic, seed=5) == stats.bootstrap_ci(x, statistic, seed=5)
    a, b = l4_samples("full_enhanced_s512.json"), l4_samples("full_enhanced_s128.json")
    assert stats.hierarchical_ratio_ci([a], [b], seed=5) == stats.ratio_of_medians_ci(a, b, seed=5)


def test_hierarchical_ci_spans_the_between_run_offset_of_the_l4_runs():
    run1, run2 = l4_samples("full_enhanced_s128.json"), l4_samples("local_enhanced_s128.json")
    m1, m2 = np.median(run1), np.median(run2)
    assert 0.15 < m1 / m2 - 1 < 0.19  # the seed README's 17% between two runs of one config
    own = [stats.bootstrap_ci(r) for r in (run1, run2)]
    hier = stats.hierarchical_bootstrap_ci([run1, run2])
    assert hier.method == "hierarchical_percentile"
    assert hier.estimate == pytest.approx(np.median([m1, m2]))
    assert hier.high - hier.low > 4 * max(c.high - c.low for c in own)
    assert hier.low <= min(m1, m2) and max(m1, m2) <= hier.high


def test_hierarchical_ci_on_synthetic_groups_offset_by_17_percent():
    rng = np.random.default_rng(RNG_SEED)
    groups = [rng.lognormal(np.log(0.06), 0.05, 300), rng.lognormal(np.log(0.06 * 1.17), 0.05, 300),
              rng.lognormal(np.log(0.06 * 1.05), 0.05, 300)]
    hier = stats.hierarchical_bootstrap_ci(groups, seed=1)
    own_widths = [c.high - c.low for c in (stats.bootstrap_ci(g) for g in groups)]
    assert hier.high - hier.low > 5 * max(own_widths)
    assert hier.estimate == pytest.approx(np.median([np.median(g) for g in groups]))
    mean_ci = stats.hierarchical_bootstrap_ci(groups, "mean", n_resamples=2000, seed=1)
    assert mean_ci.estimate == pytest.approx(np.mean([g.mean() for g in groups]))
    assert mean_ci.low < mean_ci.estimate < mean_ci.high


def test_hierarchical_rejects_a_flat_list():
    with pytest.raises(HarnessError, match="^groups: expected a list of repetitions"):
        stats.hierarchical_bootstrap_ci([0.1, 0.2, 0.3])
    with pytest.raises(HarnessError, match=r"^groups\[1\]: has 0 values"):
        stats.hierarchical_bootstrap_ci([[0.1, 0.2], []])


# --------------------------------------------------------------------------- summarize_repetitions
def test_summarize_one_repetition():
    x = l4_samples("full_enhanced_s512.json")
    summary = stats.summarize_repetitions([list(x)], [True], seed=3)
    ci = stats.bootstrap_ci(x, seed=3)
    assert isinstance(summary, TimingSummary)
    assert (summary.n_samples, summary.n_repetitions, summary.converged) == (100, 1, True)
    assert summary.median_ms == pytest.approx(np.median(x))
    assert (summary.ci_low_ms, summary.ci_high_ms, summary.ci_method) == (ci.low, ci.high, ci.method)
    assert summary.mean_ms == pytest.approx(x.mean())
    assert summary.std_ms == pytest.approx(x.std(ddof=1))
    assert (summary.min_ms, summary.max_ms) == (x.min(), x.max())
    assert summary.rel_halfwidth == pytest.approx((ci.high - ci.low) / 2 / np.median(x))
    assert summary.flags == ci.flags and stats.FLAG_TIES in summary.flags
    # The record must survive the JSON contract (no NaN/inf) and read back equal.
    assert from_dict(TimingSummary, json.loads(to_json(summary))) == summary


def test_summarize_several_repetitions_is_between_run_aware():
    runs = [l4_samples(n) for n in ("full_enhanced_s128.json", "local_enhanced_s128.json", "baseline_config_01.json")]
    summary = stats.summarize_repetitions(runs, [True, False, True])
    pooled = np.concatenate(runs)
    assert summary.n_samples == 300 and summary.n_repetitions == 3 and summary.converged is False
    assert summary.median_ms == pytest.approx(np.median([np.median(r) for r in runs]))
    assert summary.ci_method == "hierarchical_percentile"
    assert summary.min_ms == pooled.min() and summary.max_ms == pooled.max()
    # Treating 300 samples as one run misses the slow run; the two-stage interval covers every run.
    medians = [np.median(r) for r in runs]
    pooled_ci = stats.bootstrap_ci(pooled)
    assert pooled_ci.high < max(medians)
    assert summary.ci_low_ms <= min(medians) and max(medians) <= summary.ci_high_ms


def test_summarize_checks_its_inputs():
    with pytest.raises(HarnessError, match="^converged: has 1 entries for 2 repetitions"):
        stats.summarize_repetitions([[0.1, 0.2], [0.1, 0.3]], [True])
    with pytest.raises(HarnessError, match=r"^groups\[0\]\[1\]: is 0.0"):
        stats.summarize_repetitions([[0.1, 0.0]], [True])


# --------------------------------------------------------------------------- no NaN escapes
def test_no_nan_escapes_on_small_tied_random_inputs():
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(150):
        n1, n2 = rng.integers(2, 14, size=2)
        levels = rng.integers(1, 4)  # 1 to 3 distinct tick values: degenerate and near-degenerate data
        a = (rng.integers(50, 50 + levels, n1) * 1.024e-3).tolist()
        b = (rng.integers(50, 50 + levels, n2) * 1.024e-3).tolist()
        values = []
        for statistic in stats.STATISTICS:
            for method in stats.METHODS:
                ci = stats.bootstrap_ci(a, statistic, n_resamples=300, method=method, seed=1)
                values += [ci.estimate, ci.low, ci.high, ci.rel_halfwidth]
        ci = stats.ratio_of_medians_ci(a, b, n_resamples=300)
        values += [ci.estimate, ci.low, ci.high]
        ci = stats.hierarchical_bootstrap_ci([a, b], n_resamples=300)
        values += [ci.estimate, ci.low, ci.high]
        values += list(effects.mann_whitney(a, b)) + [effects.cliffs_delta(a, b)]
        values += list(stats.median_ci_distribution_free(a + b + a, 0.9)) if len(a + b + a) >= 5 else []
        summary = stats.summarize_repetitions([a, b], [True, True], n_resamples=300)
        json.loads(to_json(summary))  # allow_nan=False
        assert all(math.isfinite(v) for v in values), values
        assert not math.isnan(effects.hedges_g(a, b))


def test_faster_only_when_the_whole_ratio_ci_lies_below_one():
    assert stats.direction(0.80, 0.99) == stats.FASTER
    assert stats.direction(0.90, 1.00) == stats.NO_DIFFERENCE  # touching 1 is no evidence
    assert stats.direction(0.95, 1.05) == stats.NO_DIFFERENCE
    assert stats.direction(1.01, 1.20) == stats.SLOWER
