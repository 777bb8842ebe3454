"""Nsight Compute: the report pages parsed as they come from ncu 2025.3 on the H200 (captured by
bench/h200/ncu_probe.sh), and a profile where ncu cannot run recorded with its reason."""

from __future__ import annotations

from pathlib import Path

from harness import ncu
from harness.records import CaseSpec

DATA = Path(__file__).resolve().parent / "data" / "ncu"


def _kernels(name):
    return ncu.kernels_from((DATA / f"{name}-raw.csv").read_text(), (DATA / f"{name}-details.csv").read_text())


def test_triton_kernel_metrics_are_read_from_the_raw_page():
    (k,) = _kernels("triton-s1024")
    assert k.name == "_attn_fwd"
    assert abs(k.duration_us - 174.016) < 1e-6
    assert abs(k.sm_throughput_pct - 44.105270) < 1e-6 and abs(k.memory_throughput_pct - 30.645823) < 1e-6
    assert k.registers_per_thread == 220 and k.grid_size == 2048 and k.block_size == 128
    assert abs(k.shared_mem_per_block_bytes - 114712) < 1  # 114.712 Kbyte dynamic + 0 static
    assert abs(k.achieved_occupancy_pct - 12.125586) < 1e-6 and abs(k.theoretical_occupancy_pct - 12.5) < 1e-6
    assert k.tensor_pipe_pct and k.xu_pipe_pct and k.waves_per_sm == 7.76


def test_the_limiter_and_the_rules_come_from_ncus_own_words():
    (k,) = _kernels("cudnn-s1024")
    assert k.limiter.startswith("This workload exhibits low compute throughput and memory bandwidth utilization")
    assert k.busiest_pipe and "%" in k.busiest_pipe
    names = {r.name for r in k.rules}
    assert {"SOLBottleneck", "HighPipeUtilization", "TheoreticalOccupancy"} <= names
    assert k.grid_size == 132 and k.block_size == 384  # cuDNN: persistent, 3 warpgroups


def test_without_ncu_the_profile_is_recorded_with_the_reason(tmp_path):
    spec = CaseSpec("sdpa", "cudnn", 1, 1, 128, 64)
    rec = ncu.profile_case(spec, tmp_path, ncu=None) if ncu.ncu_binary() is None else None
    if rec is None:  # a machine with ncu: ask for one that is not there
        rec = ncu.profile_case(spec, tmp_path, ncu=str(tmp_path / "no-such-ncu"))
    assert rec.kernels == [] and rec.unavailable
    assert (tmp_path / f"ncu-{spec.case_id}.json").is_file()
    assert ncu.summary_lines(rec)[0].startswith("Nsight Compute: not available")


def test_a_cpu_case_is_not_profiled():
    rec = ncu.profile_case(CaseSpec("sdpa", "math", 1, 1, 32, 16, dtype="float32", device="cpu"), Path("/tmp/ncu-cpu"))
    assert rec.unavailable.startswith("a CPU case")


def test_a_permission_error_is_explained():
    why = ncu._why_failed("==ERROR== ERR_NVGPUCTRPERM - The user does not have permission to access NVIDIA GPU "
                          "Performance Counters on the target device 0.", 1)
    assert "performance counters" in why and "NVreg_RestrictProfilingToAdminUsers" in why
