"""The CPU timer: what it computes from its clock (on a fake clock, so the answers are exact and
independent of the machine's load), and on the real clock only what load cannot break: a
sample is never shorter than the work it timed."""

import itertools
import time
from dataclasses import replace

import pytest

from harness.integrity import guard
from harness.plan import TimingConfig
from harness.timing import measure_cpu, rel_halfwidth


class FakeClock:
    """Stands in for the clocks harness.timing measures with (guard.bind()'s); work advances it."""

    def __init__(self):
        self.ns = 0

    def perf_counter(self) -> float:
        return self.ns / 1e9

    def perf_counter_ns(self) -> int:
        return self.ns

    def work(self, ms: float, jitter=(1.0,)):
        factors = itertools.cycle(jitter)

        def fn():
            self.ns += round(ms * next(factors) * 1e6)

        return fn


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(guard, "_BOUND", replace(guard.bind(), perf_counter=fake.perf_counter,
                                                 perf_counter_ns=fake.perf_counter_ns))
    return fake


def _median(r):
    return sorted(r.samples_ms)[len(r.samples_ms) // 2]


def test_a_sample_is_the_time_per_call_and_twice_the_work_reads_twice_the_time(clock):
    cfg = TimingConfig(target_rel_ci=0.03, min_samples=20, min_time_s=0.05, max_samples=300, max_time_s=2.0,
                       sample_target_ms=2.0, warmup_ms=20)
    one = measure_cpu(clock.work(0.5), cfg).repetition
    two = measure_cpu(clock.work(1.0), cfg).repetition
    assert set(one.samples_ms) == {0.5} and set(two.samples_ms) == {1.0}
    assert _median(two) / _median(one) == 2.0
    # Calibration: each sample replays enough calls to last about sample_target_ms.
    assert (one.inner_iters, two.inner_iters) == (4, 2)
    assert one.converged and len(one.samples_ms) >= 20


def test_on_the_real_clock_a_sample_is_never_shorter_than_the_work():
    cfg = TimingConfig(target_rel_ci=0.5, min_samples=5, max_samples=10, min_time_s=0.0, max_time_s=2.0,
                       sample_target_ms=2.0, warmup_ms=0, batch=5)
    rep = measure_cpu(lambda: time.sleep(0.002), cfg).repetition
    assert len(rep.samples_ms) >= 5 and min(rep.samples_ms) >= 2.0


def test_stopping_rule_reports_convergence_and_caps_honestly(clock):
    fn = clock.work(0.2, jitter=(1.0, 1.1))  # a little spread, so that a 1e-9 target is never met
    loose = measure_cpu(fn, TimingConfig(target_rel_ci=0.5, min_samples=12, min_time_s=0.0, max_samples=500, max_time_s=5,
                                         batch=6, sample_target_ms=0.2, warmup_ms=2))
    assert loose.repetition.converged and loose.repetition.stop_reason == "converged"
    assert len(loose.repetition.samples_ms) == 12  # the first check with enough samples
    strict = measure_cpu(fn, TimingConfig(target_rel_ci=1e-9, min_samples=10, max_samples=30, max_time_s=5, batch=10,
                                          sample_target_ms=0.2, warmup_ms=2))
    assert not strict.repetition.converged and strict.repetition.stop_reason == "max_samples"
    assert len(strict.repetition.samples_ms) == 30
    capped = measure_cpu(fn, TimingConfig(target_rel_ci=1e-9, min_samples=10, max_samples=10**6, max_time_s=0.3, batch=10,
                                          sample_target_ms=0.2, warmup_ms=2))
    assert capped.repetition.stop_reason == "max_time" and not capped.repetition.converged
    # 0.3 s of 0.21 ms samples, checked every 10: the cap ends it, not the sample count.
    assert 1000 <= len(capped.repetition.samples_ms) <= 1500


def test_rel_halfwidth_shrinks_with_more_samples():
    import numpy as np

    rng = np.random.default_rng(5)
    x = list(rng.lognormal(0, 0.1, 2000))
    assert rel_halfwidth(x[:3]) is None
    assert rel_halfwidth(x[:2000]) < rel_halfwidth(x[:100]) < rel_halfwidth(x[:20])
