"""The device's ceilings measured in the run (ceilings.json): real measurements on the CPU checked
against an independent clock, and the H200 runs' figures against what the device tool's notes
measured there independently."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from harness import ceilings

REPO = Path(__file__).resolve().parents[2]


def test_cpu_ceilings_are_measured_and_agree_with_an_independent_clock():
    torch.set_num_threads(1)
    rec = ceilings.measure("cpu")
    assert rec.unavailable == {}
    mm = rec.get("matmul_tflops")
    assert mm is not None and mm.n_samples >= 10 and mm.ci_low_ms <= mm.median_ms <= mm.ci_high_ms
    # the same product timed by wall clock over many calls
    n = ceilings.CPU_MATMUL_N
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    c = torch.empty(n, n)
    for _ in range(3):
        torch.mm(a, b, out=c)
    t = time.perf_counter()
    for _ in range(30):
        torch.mm(a, b, out=c)
    independent = 2 * n**3 / ((time.perf_counter() - t) / 30) / 1e12
    assert 0.5 < mm.value / independent < 2.0, (mm.value, independent)
    copies = [rec.get("copy_gbps"), rec.get("memcpy_gbps")]
    assert all(x is not None and x.value > 0 for x in copies)
    assert rec.bandwidth().value == max(x.value for x in copies)


def test_the_h200_runs_measured_the_cards_ceilings():
    # KINDS.md (device tool) measured on this kind: bf16 matmul 769-798 TFLOP/s, copy ~4.3 TB/s;
    # fp16 8192^3 here, and a kernel copy vs a memcpy node (which a graph runs at ~2.7 TB/s).
    files = sorted((REPO / "bench" / "h200").glob("machine-[BC]/run-*/ceilings.json"))
    assert len(files) == 4
    for f in files:
        d = json.loads(f.read_text())
        got = {c["metric"]: c["value"] for c in d["ceilings"]}
        assert 600 < got["matmul_tflops"] < 800, got
        assert 3800 < got["copy_gbps"] < 4800, got
        assert got["memcpy_gbps"] < got["copy_gbps"]
        assert d["wall_s"] < 5
