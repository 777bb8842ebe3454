"""The watch inside the real timing loop, on a GPU (device machine; skipped elsewhere): batches a
neighbour ran beside are discarded and re-measured, the wait is not sampling time, and a case
timed beside one that stays is invalid (shared GPU) with the evidence. The neighbour is the fake
NVML's: the real one is on the device run (bench/machine_state/)."""

from __future__ import annotations

import os

import pytest
from fakenvml import FakeNvml

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on the device machine)")

NEIGHBOUR = 424242


def _watcher(fake: FakeNvml, **kw):
    from harness.machine.watch import Watcher
    from harness.nvml import Nvml
    from harness.records import MachineGate

    g = MachineGate(checked=True, foreign=[], gpu_util_pct=0, allowed_shared=False, shared=False, own_pids=[os.getpid()])
    return Watcher(Nvml(0, module=fake), g, **kw)


def test_gpu_batches_beside_a_neighbour_are_discarded_and_remeasured():
    import time

    from harness.plan import TimingConfig
    from harness.timing import measure_cuda

    fake = FakeNvml(procs={os.getpid(): 1})
    lists = {"n": 0}

    def script(f: FakeNvml) -> None:
        lists["n"] += 1
        if lists["n"] == 3:
            f.procs[NEIGHBOUR] = 2**30
            script.t0 = time.monotonic()  # type: ignore[attr-defined]
        elif NEIGHBOUR in f.procs and time.monotonic() - script.t0 > 0.2:  # type: ignore[attr-defined]
            f.procs.pop(NEIGHBOUR)

    fake.on_list = script
    w = _watcher(fake)
    a = torch.randn(2048, 2048, device="cuda", dtype=torch.float16)
    cfg = TimingConfig(min_samples=40, max_time_s=0.5, min_time_s=0.05, warmup_ms=20)
    t = measure_cuda(lambda: a @ a, cfg, watch=w)
    rec = w.record()
    rep = t.repetition
    assert rec.discarded_foreign == 1 and not rec.shared and rec.waited_s >= 0.2
    assert len(rep.samples_ms) == cfg.batch * len(rep.batch_sm_mhz) == cfg.batch * (rec.batches - 1)
    assert all(m == fake.sm for m in rep.batch_sm_mhz)
    assert rep.wall_s >= rec.waited_s  # the wait is in the wall time, not in the sampling clock


def test_gpu_a_case_beside_a_neighbour_that_stays_is_invalid_shared_gpu():
    from harness import envlock
    from harness.plan import TimingConfig
    from harness.records import CaseSpec
    from harness.runner import run_case

    envlock.lock(5)
    fake = FakeNvml(procs={os.getpid(): 1, NEIGHBOUR: 714 * 2**20}, proc_util={NEIGHBOUR: 60})
    w = _watcher(fake, shared_wait_s=0.3)
    spec = CaseSpec(workload="sdpa", backend="flash", batch=4, heads=4, seq=512, head_dim=64, dtype="float16")
    r = run_case(spec, TimingConfig(max_time_s=0.3, min_time_s=0.05, warmup_ms=20), watch=w)
    assert r.status == "invalid" and r.reason.startswith("shared GPU: timed while another process was on the GPU (PID 424242")
    assert r.watch is not None and r.watch.shared and r.watch.discarded_foreign == 1
    assert r.integrity is not None and not r.integrity.failed()  # the kernel did its work
    assert r.timing is not None and r.timing.clocks is not None and r.timing.clocks.power_w_median == fake.power_w
    assert r.timing.clocks.cycles_per_call == pytest.approx(r.timing.summary.median_ms * fake.sm * 1e3, rel=1e-5)
