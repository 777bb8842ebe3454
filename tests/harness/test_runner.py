import torch

from harness.plan import TimingConfig
from harness.records import CaseSpec
from harness.runner import run_case

FAST = TimingConfig(target_rel_ci=0.05, min_samples=10, min_time_s=0.0, max_samples=200, max_time_s=0.5, warmup_ms=5, sample_target_ms=0.5)


def test_case_runs_with_correctness_memory_and_throughput():
    spec = CaseSpec("sdpa", "math", 2, 2, 64, 16, dtype="float32", device="cpu")
    r = run_case(spec, FAST)
    assert r.status == "ok", r.reason
    assert r.correctness.passed and r.correctness.bitwise_repeat and 0 < r.correctness.rel_error < 1e-4
    assert r.memory.predicted_bytes > 4 * 2 * 2 * 64 * 16 * 4
    s = r.timing.summary
    assert abs(r.throughput.tflops - r.throughput.flops / (s.median_ms / 1e3) / 1e12) < 1e-12


def test_repetitions_are_independent_and_summarised():
    spec = CaseSpec("sdpa", "default", 1, 2, 32, 16, dtype="float32", device="cpu")
    cfg = TimingConfig(**{**FAST.__dict__, "repeats": 3})
    r = run_case(spec, cfg)
    assert r.status == "ok" and len(r.timing.repetitions) == 3
    assert r.timing.summary.n_repetitions == 3
    assert r.timing.summary.n_samples == sum(len(x.samples_ms) for x in r.timing.repetitions)


def test_unsupported_backend_is_skipped_not_crashed():
    r = run_case(CaseSpec("sdpa", "efficient", 1, 1, 16, 8, dtype="float32", device="cpu"), FAST)
    assert r.status == "skipped" and "CUDA GPUs only" in r.reason and r.timing is None


def test_case_that_cannot_fit_is_skipped_with_reason():
    # a math-path case whose S x S scores need petabytes
    r = run_case(CaseSpec("sdpa", "math", 4096, 64, 1 << 20, 64, dtype="float32", device="cpu"), FAST)
    assert r.status == "skipped" and "predicted footprint" in r.reason and "free memory" in r.reason


def test_wrong_kernel_fails_correctness_and_is_not_timed(monkeypatch):
    from harness.workloads import sdpa

    real = sdpa.SdpaWorkload.make_fn

    def broken(self, spec, inputs):
        fn = real(self, spec, inputs)
        return lambda: fn() * 1.01  # 1% off: far outside float32 tolerance

    monkeypatch.setattr(sdpa.SdpaWorkload, "make_fn", broken)
    r = run_case(CaseSpec("sdpa", "math", 1, 2, 32, 16, dtype="float32", device="cpu"), FAST)
    assert r.status == "failed" and "exceeds tolerance" in r.reason and r.timing is None
    assert not r.correctness.passed and 5e-3 < r.correctness.rel_error < 2e-2


def test_envlock_reads_back_what_is_in_force():
    from harness import envlock

    settings, failures = envlock.lock(7)
    assert settings["matmul_allow_tf32"] is False and settings["cudnn_allow_tf32"] is False
    assert settings["float32_matmul_precision"] == "highest"
    assert settings["deterministic_algorithms"] is True and settings["cublas_workspace_config"] == ":4096:8"
    assert "matmul_allow_tf32" not in failures
    a = torch.randn(3)
    envlock.lock(7)
    assert torch.equal(a, torch.randn(3))  # seeded


def test_a_kernel_returning_nan_fails_its_case_and_the_record_is_written(monkeypatch, tmp_path):
    # NaN and inf cannot be written as JSON: the case used to crash the sweep when it was saved.
    from harness import storage
    from harness.records import CaseResult, load_record
    from harness.workloads import sdpa

    real = sdpa.SdpaWorkload.make_fn

    def poisoned(self, spec, inputs):
        fn = real(self, spec, inputs)
        return lambda: fn() * float("nan")

    monkeypatch.setattr(sdpa.SdpaWorkload, "make_fn", poisoned)
    r = run_case(CaseSpec("sdpa", "math", 1, 2, 32, 16, dtype="float32", device="cpu"), FAST)
    assert r.status == "failed" and "not finite" in r.reason and r.timing is None
    assert r.correctness.rel_error is None and not r.correctness.passed
    assert "correctness.rel_error" in r.unavailable
    path = storage.write_case(tmp_path, r)
    assert load_record(path, CaseResult).correctness.rel_error is None


def test_the_summary_records_its_bootstrap_seed():
    r = run_case(CaseSpec("sdpa", "math", 1, 2, 32, 16, dtype="float32", device="cpu"), FAST)
    assert r.timing.bootstrap_seed == FAST.seed
