"""The CPU timer on real work (random matrices): it must see twice the work as about twice the time,
and its stopping rule must report honestly whether it converged."""

import time

import torch

from harness.plan import TimingConfig
from harness.timing import measure_cpu, rel_halfwidth


def _matmul_fn(n, reps):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g)
    b = torch.randn(n, n, generator=g)

    def fn():
        for _ in range(reps):
            torch.mm(a, b)

    return fn


def test_timer_agrees_with_independent_clock_and_scales_with_work():
    torch.set_num_threads(1)
    cfg = TimingConfig(target_rel_ci=0.03, min_samples=20, min_time_s=0.05, max_samples=300, max_time_s=2.0, sample_target_ms=2.0, warmup_ms=20)
    one = measure_cpu(_matmul_fn(96, 4), cfg).repetition
    two = measure_cpu(_matmul_fn(96, 8), cfg).repetition
    med = lambda r: sorted(r.samples_ms)[len(r.samples_ms) // 2]  # noqa: E731
    ratio = med(two) / med(one)
    assert 1.6 < ratio < 2.5, ratio
    # an independent measurement: wall clock over many calls
    fn = _matmul_fn(96, 4)
    per_call = []
    for _ in range(15):
        t = time.perf_counter()
        for _ in range(20):
            fn()
        per_call.append((time.perf_counter() - t) / 20 * 1e3)
    independent = sorted(per_call)[len(per_call) // 2]
    assert 0.7 < med(one) / independent < 1.4, (med(one), independent)
    assert one.inner_iters >= 1 and len(one.samples_ms) >= 20


def test_stopping_rule_reports_convergence_and_caps_honestly():
    fn = _matmul_fn(32, 1)
    loose = measure_cpu(fn, TimingConfig(target_rel_ci=0.5, min_samples=12, min_time_s=0.0, max_samples=500, max_time_s=5, batch=6, sample_target_ms=0.2, warmup_ms=2))
    assert loose.repetition.converged and loose.repetition.stop_reason == "converged"
    assert 12 <= len(loose.repetition.samples_ms) <= 18
    strict = measure_cpu(fn, TimingConfig(target_rel_ci=1e-9, min_samples=10, max_samples=30, max_time_s=5, batch=10, sample_target_ms=0.2, warmup_ms=2))
    assert not strict.repetition.converged and strict.repetition.stop_reason == "max_samples"
    assert len(strict.repetition.samples_ms) == 30
    capped = measure_cpu(fn, TimingConfig(target_rel_ci=1e-9, min_samples=10, max_samples=10**6, max_time_s=0.3, batch=10, sample_target_ms=0.2, warmup_ms=2))
    assert capped.repetition.stop_reason == "max_time" and not capped.repetition.converged


def test_rel_halfwidth_shrinks_with_more_samples():
    import numpy as np

    rng = np.random.default_rng(5)
    x = list(rng.lognormal(0, 0.1, 2000))
    assert rel_halfwidth(x[:3]) is None
    assert rel_halfwidth(x[:2000]) < rel_halfwidth(x[:100]) < rel_halfwidth(x[:20])
