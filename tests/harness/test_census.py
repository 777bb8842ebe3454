"""The kernel census: aggregation (pure), the CPU census of real calls, and the census the H200
runs recorded (what ran in each timed call, and that the lock added nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from testkit import REPO

from harness import census, envlock
from harness.census import RawActivity
from harness.workloads import SDPA_BACKENDS

H200_RUNS = sorted((REPO / "bench" / "h200").glob("machine-[BC]/run-*"))


def test_aggregate_counts_launches_and_time_per_call():
    acts = [RawActivity("k1", "kernel", 10.0)] * 8 + [RawActivity("Memset (Device)", "memset", 1.0)] * 8 \
        + [RawActivity("k2", "kernel", 5.0)] * 16
    c = census.aggregate(acts, calls=8, median_ms=0.025, method="test")
    by = {e.name: e for e in c.entries}
    assert by["k1"].launches_per_call == 1 and by["k2"].launches_per_call == 2
    assert by["k1"].ms_per_call == pytest.approx(0.010) and by["k2"].ms_per_call == pytest.approx(0.010)
    assert c.ms_per_call == pytest.approx(0.021)
    assert c.share_of_median == pytest.approx(0.021 / 0.025)
    assert [e.name for e in c.entries][:2] in (["k1", "k2"], ["k2", "k1"])  # slowest first


def test_differences_name_what_only_one_side_ran():
    a = census.aggregate([RawActivity("main", "kernel", 1.0), RawActivity("fill", "kernel", 0.1)], 1, 1.0, "x")
    b = census.aggregate([RawActivity("main", "kernel", 1.0)] * 2, 1, 1.0, "x")
    diffs = census.differences(a, b)
    assert any(d.startswith("only under the lock: kernel fill") for d in diffs)
    assert any("main: 1 launches per call under the lock, 2 without" in d for d in diffs)
    assert census.differences(a, a) == []


def test_short_names_keep_template_arguments_and_drop_parameters():
    name = ("void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<c10::Half>, std::array<char*, 1ul> >"
            "(int, at::native::FillFunctor<c10::Half>, std::array<char*, 1ul>)")
    short = census.short_name(name)
    assert short.startswith("at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<c10::Half>")
    assert "(int" not in short
    assert census.short_name("Memset (Device)") == "Memset (Device)"


def _sdpa_fn():
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(1, 2, 64, 16, generator=g) for _ in range(3))
    return lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v)


def test_cpu_census_of_a_real_call_matches_without_the_lock():
    envlock.lock(11)
    c = census.take(_sdpa_fn, "cpu", median_ms=0.1)
    names = {e.name for e in c.entries}
    assert any("scaled_dot_product" in n for n in names)
    assert c.matches_unlocked and c.differences == []
    assert all(e.kind == "cpu_op" and e.launches_per_call > 0 for e in c.entries)


def test_cpu_census_catches_a_kernel_the_lock_adds():
    envlock.lock(11)
    envlock.set_fill_uninitialized(True)  # the pre-issue-8 lock
    try:
        c = census.take(_sdpa_fn, "cpu", median_ms=0.1)
    finally:
        envlock.set_fill_uninitialized(False)
    assert not c.matches_unlocked
    assert any("aten::fill_" in d for d in c.differences)


def _cases(run: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((run / "cases").glob("*.json"))]


def test_the_h200_runs_census_shows_each_backends_own_kernel_and_nothing_from_the_lock():
    assert len(H200_RUNS) == 4
    expect = {"flash": "flash", "cudnn": "cudnn", "efficient": "fmha", "triton": "_attn_fwd"}
    for run in H200_RUNS:
        for c in _cases(run):
            cen = c["census"]
            assert cen is not None, (run, c["case"])
            assert cen["matches_unlocked"] is True and cen["differences"] == []
            kernels = [e["name"] for e in cen["entries"] if e["kind"] == "kernel"]
            if c["case"]["backend"] != "math":  # math fills its own buffers; the fused kernels write every output
                assert not any("FillFunctor" in k for k in kernels), kernels
            want = expect.get(c["case"]["backend"])
            if want:
                assert any(want in k for k in kernels), (c["case"]["backend"], kernels)
            if c["case"]["seq"] >= 1024:
                # the kernels explain the median to within a few percent from S=1024 up
                assert 0.93 <= cen["share_of_median"] <= 1.05, (run.name, c["case"]["backend"], cen["share_of_median"])


def test_the_fill_run_on_the_h200_shows_the_fill_kernel_under_the_lock_only():
    for c in _cases(REPO / "bench" / "h200" / "machine-A" / "fill-A1"):
        assert c["census"]["matches_unlocked"] is False and c["census"]["differences"]
        locked = {e["name"] for e in c["census"]["entries"]}
        unlocked = {e["name"] for e in c["census"]["unlocked_entries"]}
        assert any("FillFunctor" in n for n in locked - unlocked), locked - unlocked


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on the device machine)")
@pytest.mark.parametrize("workload,backend", [("sdpa", b) for b in SDPA_BACKENDS]
                         + [("triton_attention", "triton")])
def test_on_a_gpu_the_lock_adds_no_kernel_to_any_backend(workload, backend):
    from harness.plan import TimingConfig
    from harness.records import CaseSpec
    from harness.runner import run_case

    envlock.lock(5)
    spec = CaseSpec(workload=workload, backend=backend, batch=4, heads=4, seq=512, head_dim=64, dtype="float16")
    r = run_case(spec, TimingConfig(max_time_s=0.3, min_time_s=0.05, warmup_ms=20))
    assert r.status == "ok", r.reason
    assert r.census is not None and r.census.matches_unlocked, r.census.differences if r.census else r.unavailable


def test_a_call_that_raises_under_the_profiler_is_the_kernels_failure_not_a_missing_census():
    def shy():
        raise RuntimeError("not while profiled")

    with pytest.raises(census.KernelRaised, match="RuntimeError: not while profiled"):
        census.eager(lambda: None, shy, "cpu")
