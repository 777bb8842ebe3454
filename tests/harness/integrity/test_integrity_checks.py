"""The integrity checks' pure parts: the roofline, the host-clock bound, the timed census against
an eager call's, the verdict over the checks (torch-free, exact numbers)."""

from __future__ import annotations

import json

import pytest
from testkit import REPO

from harness.census import RawActivity, aggregate
from harness.integrity import census as icensus
from harness.integrity import checks, roofline
from harness.records import Ceiling, CeilingsRecord, IntegrityCheck, from_dict


def _ceilings(tflops: float = 600.0, gbps: float = 4000.0) -> CeilingsRecord:
    # Work and times chosen so the CI's fast end is exactly the given rate.
    mm = Ceiling("matmul_tflops", tflops, "TFLOP/s", "float16", "mm", 1.0, 1.0, 1.0, tflops * 1e9, 100)
    cp = Ceiling("copy_gbps", gbps, "GB/s", "float32", "copy", 1.0, 1.0, 1.0, gbps * 1e6, 100)
    return CeilingsRecord(created_at="", device="cuda", gpu_name="X", ceilings=[mm, cp])


def test_the_roofline_is_the_slower_of_compute_and_memory_at_the_ceilings_fast_ends():
    b = roofline.bound(600e9, 4e9, _ceilings(), cache="cold", l2_bytes=50 << 20)
    assert b.compute_ms == pytest.approx(1.0) and b.memory_ms == pytest.approx(1.0)
    assert b.min_ms == pytest.approx(1.0) and b.limit_ms == pytest.approx(1 / roofline.SLACK)
    b = roofline.bound(600e9, 8e9, _ceilings(), cache="cold", l2_bytes=50 << 20)
    assert b.min_ms == pytest.approx(2.0)  # memory-bound


def test_a_warm_cache_holds_only_the_bytes_beyond_l2_to_the_copy_roof():
    warm = roofline.bound(0.0, 4e9 + (50 << 20), _ceilings(), cache="warm", l2_bytes=50 << 20)
    assert warm.dram_bytes == pytest.approx(4e9) and warm.min_ms == pytest.approx(1.0)
    small = roofline.bound(6e9, 40 << 20, _ceilings(), cache="warm", l2_bytes=50 << 20)
    assert small.memory_ms is None and small.min_ms == pytest.approx(0.01)
    # A CPU's cache size is unknown: only the compute roof, and a wider slack.
    cpu = roofline.bound(6e9, 1e12, _ceilings(), cache="warm", l2_bytes=None, device="cpu")
    assert cpu.memory_ms is None and cpu.limit_ms == pytest.approx(0.01 / roofline.CPU_SLACK)


def test_impossible_names_the_factor_and_no_ceilings_is_not_run():
    b = roofline.bound(600e9, 0.0, _ceilings(), cache="warm", l2_bytes=None)
    assert roofline.impossible(0.7, b) is None  # 1.43x beyond the measured roof: within the slack
    why = roofline.impossible(0.001, b)
    assert why and "1e+03x below" in why and "faster than this GPU can do the work" in why
    check = checks.roofline_check(0.001, 600e9, 0.0, None, cache="warm", l2_bytes=None, device="cuda")
    assert check.passed is None and "no ceilings" in check.detail


def test_no_honest_case_of_the_committed_h200_runs_comes_near_the_roofline_bound():
    runs = sorted(p.parent for p in (REPO / "bench" / "h200").glob("machine-*/*/ceilings.json"))
    assert len(runs) >= 6
    closest = []
    for run in runs:
        ceil = from_dict(CeilingsRecord, json.loads((run / "ceilings.json").read_text()))
        l2 = json.loads((run / "env.json").read_text())["gpu"]["l2_bytes"]
        for path in (run / "cases").glob("*.json"):
            case = json.loads(path.read_text())
            if case["status"] != "ok":
                continue
            th, med = case["throughput"], case["timing"]["summary"]["median_ms"]
            check = checks.roofline_check(med, th["flops"], th["bytes"], ceil, cache=case["case"]["cache"],
                                          l2_bytes=l2, device="cuda")
            assert check.passed, (path, check.detail)
            closest.append(check.value)
    # The fastest honest kernel ran at 1.47x the roofline time; the bound is 0.67x.
    assert 1.4 < min(closest) < 1.6


def test_the_host_clock_bound():
    ok = checks.host_clock(1.02, 1.0, 100)
    assert ok.passed and ok.value == pytest.approx(1.02) and ok.bound == checks.HOST_CLOCK_MAX_RATIO
    assert checks.host_clock(1.25 + 0.1 / 100 - 1e-9, 1.0, 100).passed
    bad = checks.host_clock(100.0, 1.0, 100)
    assert bad.passed is False and "timer was fooled" in bad.detail
    # Synchronize latency counts for little over a short loop: 3 calls of 10 us may read 40 us.
    assert checks.host_clock(0.04, 0.01, 3).passed


def _census(kernels: list[tuple[str, float]], calls: int, median_ms: float | None = None):
    return aggregate([RawActivity(n, "kernel", us) for n, us in kernels], calls, median_ms, "test")


def test_the_timed_census_must_run_every_kernel_an_eager_call_runs_as_often():
    eager = _census([("attn", 100.0), ("reduce", 10.0)], 1)
    same = _census([("attn", 100.0), ("reduce", 10.0)] * 4, 4, median_ms=0.11)
    assert icensus.versus_eager(same, eager, "cuda").passed
    assert icensus.time_share(same, 0.11, "cuda").passed
    missing = icensus.versus_eager(_census([("attn", 100.0)] * 4, 4), eager, "cuda")
    assert missing.passed is False and "reduce: 0 launches per timed call, 1 in an eager call" in missing.detail
    nothing = icensus.versus_eager(_census([], 4), eager, "cuda")
    assert nothing.passed is False and "ran no kernel at all" in nothing.detail
    cheaper = icensus.versus_eager(_census([("attn", 25.0), ("reduce", 2.0)] * 4, 4), eager, "cuda")
    assert cheaper.passed is False and "below 0.5x" in cheaper.detail


def test_the_timed_kernels_must_explain_the_median():
    timed = _census([("attn", 100.0)] * 4, 4)
    assert icensus.time_share(timed, 0.1, "cuda").value == pytest.approx(1.0)
    assert icensus.time_share(timed, 0.0001, "cuda").passed is False
    assert icensus.time_share(timed, 1.0, "cuda").passed is False
    assert icensus.time_share(timed, 1.0, "cpu").passed is None


def test_the_reason_names_the_first_failed_check_and_counts_the_rest():
    integ = checks.assemble([IntegrityCheck("roofline", False, "too fast"), IntegrityCheck("timed_outputs", False, "wrong"),
                             IntegrityCheck("host_clock", True, "fine")], 2, 4)
    assert [c.name for c in integ.checks] == ["timed_outputs", "roofline", "host_clock"]
    assert checks.reason(integ) == "invalid: timed_outputs: wrong (and 1 more failed check(s): roofline)"
    assert checks.reason(checks.assemble([IntegrityCheck("roofline", None, "not run")], 2, 0)) is None
