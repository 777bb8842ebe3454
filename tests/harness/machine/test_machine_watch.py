"""The per-batch watch (harness/machine/watch.py) against a fake NVML and a fake clock."""

from __future__ import annotations

import os

import pytest
from fakenvml import FakeClock, FakeNvml

from harness.machine import gate, watch
from harness.nvml import Nvml
from harness.records import MachineGate

OWN, NEIGHBOUR = os.getpid(), 424242


def watcher(fake: FakeNvml, g: MachineGate | None = None, **kw) -> tuple[watch.Watcher, FakeClock]:
    clock = FakeClock()
    nv = Nvml(0, module=fake)
    if g is None:
        g = MachineGate(checked=True, foreign=[], gpu_util_pct=0, allowed_shared=False, shared=False, own_pids=[OWN])
    return watch.Watcher(nv, g, sleep=clock.sleep, clock=clock, **kw), clock


def run(w: watch.Watcher, n: int) -> list[bool]:
    return [w.after_batch().keep for _ in range(n)]


def test_an_idle_gpu_keeps_every_batch_and_reads_clock_and_power():
    w, clock = watcher(FakeNvml(procs={OWN: 1}, sm=1830, power_w=612.5))
    r = w.after_batch()
    assert r.keep and r.sm_mhz == 1830 and r.power_w == 612.5
    assert run(w, 9) == [True] * 9
    rec = w.record()
    assert (rec.batches, rec.discarded_foreign, rec.discarded_throttled, rec.shared, rec.throttled) == (10, 0, 0, False, False)
    assert rec.sm_mhz_threshold == 0.75 * 1980 and clock.slept == [] and rec.unavailable is None


def test_a_neighbour_mid_run_is_discarded_waited_out_and_the_rest_kept():
    fake = FakeNvml(procs={OWN: 1})
    w, clock = watcher(fake)
    assert run(w, 3) == [True] * 3
    fake.procs[NEIGHBOUR] = 700 * 2**20
    fake.on_list = lambda f: f.procs.pop(NEIGHBOUR, None) if clock.now >= 0.3 else None  # it leaves after 0.3 s
    assert run(w, 1) == [False]
    assert run(w, 3) == [True] * 3
    rec = w.record()
    assert rec.discarded_foreign == 1 and not rec.shared and [p.pid for p in rec.foreign] == [NEIGHBOUR]
    assert 0.3 <= rec.waited_s <= 0.3 + watch.POLL_S + 0.05 + 1e-9  # polls, then the recovery delay


def test_a_neighbour_that_stays_makes_the_case_shared_after_the_bounded_wait():
    fake = FakeNvml(procs={OWN: 1})
    w, clock = watcher(fake, shared_wait_s=2.0)
    fake.procs[NEIGHBOUR] = 1
    assert run(w, 4) == [False, True, True, True]  # one batch discarded; after the wait, kept
    rec = w.record()
    assert rec.shared and rec.discarded_foreign == 1 and abs(rec.waited_s - 2.0) < 1e-9
    w.start()  # the next case waits again: the neighbour may have left by then
    assert run(w, 1) == [False] and w.record().shared


def test_a_neighbour_allowed_at_the_start_is_not_waited_for():
    fake = FakeNvml(procs={NEIGHBOUR: 1})
    g = gate.check(Nvml(0, module=fake), allow_shared=True)
    fake.procs[OWN] = 1
    g = gate.identify_own(Nvml(0, module=fake), g, True)
    w, clock = watcher(fake, g)
    assert run(w, 5) == [True] * 5 and clock.slept == []
    assert w.record().shared
    fake.procs.pop(NEIGHBOUR)  # it ended: the next case is not shared
    w.start()
    assert run(w, 2) == [True, True] and not w.record().shared


def test_a_throttled_clock_is_discarded_with_the_recovery_delay_then_kept_and_flagged():
    fake = FakeNvml(procs={OWN: 1}, sm=1200)  # below 0.75 x 1980 = 1485
    w, clock = watcher(fake, throttle_recovery_s=0.05)
    assert run(w, 2) == [False, False] and clock.slept == [0.05, 0.05]
    fake.sm = 1700
    assert run(w, 1) == [True]
    fake.sm = 1200
    keeps = run(w, watch.MAX_THROTTLED_DISCARDS + 3)
    assert keeps.count(False) == watch.MAX_THROTTLED_DISCARDS - 2 and keeps[-3:] == [True] * 3
    rec = w.record()
    assert rec.throttled and rec.discarded_throttled == watch.MAX_THROTTLED_DISCARDS and not rec.shared


def test_threshold_zero_turns_the_throttle_rule_off():
    w, _ = watcher(FakeNvml(procs={OWN: 1}, sm=500), throttle_threshold=0.0)
    assert run(w, 3) == [True] * 3 and w.record().sm_mhz_threshold is None


def test_without_a_process_listing_nothing_is_read_as_foreign_and_the_record_says_why():
    g = MachineGate(checked=False, foreign=[], gpu_util_pct=None, allowed_shared=False, shared=False, why="not checked: x")
    w, _ = watcher(FakeNvml(procs={NEIGHBOUR: 1}), g)
    assert run(w, 2) == [True, True]
    rec = w.record()
    assert not rec.shared and rec.foreign == [] and "could not be listed" in (rec.unavailable or "")


def test_a_listing_that_fails_mid_run_is_recorded():
    fake = FakeNvml(procs={OWN: 1})
    w, _ = watcher(fake)
    fake.list_fails = True
    assert run(w, 1) == [True]
    assert "could not list" in (w.record().unavailable or "")


def test_settle_waits_for_a_process_that_appeared_and_gives_up_as_shared():
    fake = FakeNvml(procs={OWN: 1})
    w, clock = watcher(fake, shared_wait_s=1.0)
    fake.procs[NEIGHBOUR] = 1
    fake.on_list = lambda f: f.procs.pop(NEIGHBOUR, None) if clock.now >= 0.2 else None
    w.settle()
    assert not w.record().shared and 0.2 <= w.record().waited_s < 0.3
    fake.on_list = None
    fake.procs[NEIGHBOUR] = 1
    w.settle()
    assert w.record().shared and abs(w.record().waited_s - 1.0) < 1e-9


def test_clock_stats_carry_power_and_cycles_per_call():
    from harness.runner import clock_stats

    k = clock_stats([(1800, 3201), (1700, 3201), (None, 3201)], [600.0, 620.0, None], median_ms=0.5)
    assert (k.sm_mhz_median, k.sm_mhz_min, k.sm_mhz_max) == (1750.0, 1700.0, 1800.0)
    assert (k.power_w_median, k.power_w_min, k.power_w_max) == (610.0, 600.0, 620.0)
    assert k.cycles_per_call == 0.5 * 1750 * 1e3  # ms x MHz x 1e3
    assert clock_stats([(None, None)], [None], 0.5).cycles_per_call is None


def test_a_shared_case_names_the_machine_unless_a_check_contention_cannot_explain_failed():
    from harness.integrity import checks
    from harness.records import Integrity, IntegrityCheck
    from harness.runner import invalid_reason

    def integrity(failed: str | None) -> Integrity:
        return Integrity(checks=[IntegrityCheck(n, n != failed, f"{n} detail") for n in checks.NAMES], input_sets=2, refreshes=4)

    shared = watch.Watcher(Nvml(0, module=FakeNvml()), None).record()
    shared.shared = True
    shared.foreign = [gate.GpuProcess(pid=NEIGHBOUR, used_memory_mib=714.0)]
    # Time-based checks under contention: the machine, not the kernel.
    for name in (checks.CENSUS_TIME, checks.HOST_CLOCK, checks.ROOFLINE, None):
        assert invalid_reason(integrity(name), shared).startswith(f"{gate.SHARED_PREFIX}timed while another process")
    # What the kernel returned or launched: the kernel, shared GPU or not.
    for name in checks.CONTENTION_PROOF:
        assert invalid_reason(integrity(name), shared).startswith(f"invalid: {name}: ")
    assert invalid_reason(integrity(None), None) is None
    assert invalid_reason(integrity(checks.HOST_CLOCK), None).startswith("invalid: host_clock: ")


def test_the_regime_is_written_in_words():
    from harness.plan import TimingConfig
    from harness.records import CaseSpec
    from harness.runner import regime

    spec = CaseSpec(workload="sdpa", backend="flash", batch=1, heads=1, seq=128, head_dim=64)
    text = regime(spec, TimingConfig(), "cuda_graph")
    assert text.startswith("sustained: 250 ms of warm-up kernel time, then CUDA graph replays of about 1 ms (warm L2")
    assert "batches below 0.75x its maximum discarded" in text


@pytest.mark.parametrize("name", ["h100", "h100-b"])
def test_the_committed_gpu_run_is_what_its_files_say(name):
    """bench/machine_state/h100/ and h100-b/ (two H100 machines, 2026-12-07): SUMMARY.md is
    generated from the folder, and each run shows the refusal and the mid-run neighbour waited out."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from testkit import REPO

    run = REPO / "bench" / "machine_state" / name
    committed = (run / "SUMMARY.md").read_text()
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "machine_state" / "summarize.py"), str(run)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (run / "SUMMARY.md").read_text() == committed, "stale: rerun bench/machine_state/summarize.py"
    a = (run / "a.txt").read_text()
    assert "Error 4" in a and sum("the GPU is shared" in line for line in a.splitlines()) == 1
    assert "a. A neighbour computing before the start: refused" in committed
    seconds = float(committed.split("make's exit 2, ", 1)[1].split(" s wall", 1)[0])
    assert seconds < 5
    cases = [json.loads(p.read_text()) for p in sorted((run / "midrun" / "cases").glob("*.json"))]
    hit = [c for c in cases if c["watch"]["discarded_foreign"]]
    assert len(hit) == 1 and hit[0]["watch"]["waited_s"] > 5 and not hit[0]["watch"]["shared"]
    assert all(c["status"] == "ok" and not c["watch"]["shared"] for c in cases)
    verdict = json.loads((run / "midrun" / "verdict.json").read_text())
    assert verdict["status"] == "PASS" and verdict["exit_code"] == 0
    assert Path(run / "midrun" / "env.json").is_file()


def test_the_second_h100_run_shows_allowed_sharing_the_gpu_tests_and_the_watchs_cost():
    """bench/machine_state/h100-b/: with --allow-shared-gpu beside a neighbour every case is
    invalid (shared GPU) and the verdict INVALID, exit 4, not a list of FAILs; the watch's GPU tests
    passed in the real timing loop; one watch reading costs well under a millisecond."""
    import json
    import re

    from testkit import REPO

    run = REPO / "bench" / "machine_state" / "h100-b"
    allowed = run / "allowed"
    v = json.loads((allowed / "verdict.json").read_text())
    assert v["status"] == "INVALID" and v["exit_code"] == 4 and v["cause"] == "shared_gpu" and v["counts"]["FAIL"] == 0
    cases = [json.loads(p.read_text()) for p in sorted((allowed / "cases").glob("*.json"))]
    assert len(cases) == 30 and all(c["status"] == "invalid" and c["reason"].startswith("shared GPU: ") for c in cases)
    env = json.loads((allowed / "env.json").read_text())
    assert env["machine"]["allowed_shared"] is True and env["machine"]["shared"] and env["machine"]["foreign"]
    log = (run / "log-ms.txt").read_text()
    assert re.search(r"^\d+ passed, \d+ deselected", log.split("=== e:", 1)[1], re.M)
    per_batch_us = int(re.search(r"^watch: (\d+) us per batch", log, re.M).group(1))
    assert 0 < per_batch_us < 1000
