"""The shared-GPU gate (harness/machine/gate.py) against a fake NVML."""

from __future__ import annotations

import os

import pytest
from fakenvml import FakeClock, FakeNvml

from harness.machine import gate
from harness.nvml import Nvml

NEIGHBOUR = 424242  # a PID that is not this process's


def nvml(**kw) -> Nvml:
    return Nvml(0, module=FakeNvml(**kw))


def test_an_idle_gpu_passes_and_says_so():
    g = gate.check(nvml(), allow_shared=False)
    assert g.checked and not g.shared and g.foreign == [] and g.why.startswith("idle")


def test_another_process_is_refused_in_one_line_naming_it_and_the_fix():
    fake = FakeNvml(procs={NEIGHBOUR: 714 * 2**20}, proc_util={NEIGHBOUR: 62}, util=89)
    with pytest.raises(gate.SharedGpuError) as err:
        gate.check(Nvml(0, module=fake), allow_shared=False)
    msg = str(err.value)
    assert err.value.exit_code == 4 == gate.EXIT_SHARED_GPU
    assert "\n" not in msg
    for part in (f"PID {NEIGHBOUR}", "714 MiB", "62% of the SMs", "GPU utilisation 89%", "--allow-shared-gpu", "nvidia-smi"):
        assert part in msg, part


def test_allowed_sharing_goes_ahead_and_marks_the_run():
    g = gate.check(nvml(procs={NEIGHBOUR: 2**30}), allow_shared=True)
    assert g.shared and g.allowed_shared and [p.pid for p in g.foreign] == [NEIGHBOUR]
    assert g.why.startswith("shared (--allow-shared-gpu)")


def test_this_process_is_not_another():
    g = gate.check(nvml(procs={os.getpid(): 2**20}), allow_shared=False)
    assert not g.shared and g.foreign == []


def test_utilisation_without_a_listed_process_is_read_again_before_it_counts():
    fake = FakeNvml(util=95)
    clock = FakeClock()

    def settle(s: float) -> None:
        clock.sleep(s)
        fake.util = 0  # the previous run's activity leaves NVML's sample window

    g = gate.check(Nvml(0, module=fake), allow_shared=False, sleep=settle, clock=clock)
    assert not g.shared and g.gpu_util_pct == 0
    busy = FakeNvml(util=95)
    clock = FakeClock()
    with pytest.raises(gate.SharedGpuError, match="utilisation 95% .* no process NVML can list"):
        gate.check(Nvml(0, module=busy), allow_shared=False, sleep=clock.sleep, clock=clock)
    assert clock.now >= gate.BUSY_SETTLE_S


def test_a_listing_nvml_cannot_make_is_not_read_as_an_idle_gpu():
    g = gate.check(nvml(list_fails=True), allow_shared=False)
    assert not g.checked and "could not list" in g.why


def test_own_process_found_natively_and_as_the_one_new_pid_in_a_container():
    fake = FakeNvml()
    nv = Nvml(0, module=fake)
    g = gate.check(nv, allow_shared=False)
    fake.procs = {os.getpid(): 2**20}
    assert gate.identify_own(nv, g, False).own_pids == [os.getpid()]
    fake2 = FakeNvml(procs={NEIGHBOUR: 1})
    nv2 = Nvml(0, module=fake2)
    g2 = gate.check(nv2, allow_shared=True)
    fake2.procs[777] = 2**20  # this run, under the host's PID numbering
    assert gate.identify_own(nv2, g2, True).own_pids == [777]


def test_a_list_without_this_run_turns_the_watch_off_and_says_why():
    fake = FakeNvml()
    nv = Nvml(0, module=fake)
    g = gate.identify_own(nv, gate.check(nv, allow_shared=False), False)
    assert not g.checked and "does not list this run's own process" in g.why


def test_two_processes_appearing_at_the_start_cannot_be_told_apart():
    fake = FakeNvml()
    nv = Nvml(0, module=fake)
    g = gate.check(nv, allow_shared=False)
    fake.procs = {777: 1, 778: 1}
    with pytest.raises(gate.SharedGpuError, match="2 processes appeared"):
        gate.identify_own(nv, g, False)
    g = gate.check(nv, allow_shared=True)
    fake.procs = {}
    g = gate.check(nv, allow_shared=True)
    fake.procs = {777: 1, 778: 1}
    g = gate.identify_own(nv, g, True)
    assert g.shared and {p.pid for p in g.foreign} == {777, 778}


def test_env_state_records_power_limits_and_compute_mode():
    state = Nvml(0, module=FakeNvml(limit_w=500.0, default_limit_w=700.0)).state({}, "gpu_state_before")
    assert state.power_limit_w == 500.0 and state.power_management_limit_w == 500.0
    assert state.power_default_limit_w == 700.0 and state.compute_mode == "Default"


def test_nvml_follows_cuda_visible_devices(monkeypatch):
    fake = FakeNvml()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert Nvml(module=fake)._h == "gpu3"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-abc,GPU-def")
    assert Nvml(module=fake)._h == "GPU-abc"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert Nvml(module=fake)._h == "gpu0"


def test_harness_bench_refuses_a_shared_gpu_before_torch_loads_in_one_line_exit_4(tmp_path):
    # A fresh interpreter whose NVML is the fake, showing a neighbour: `harness bench` must refuse
    # within seconds, before importing torch, naming the process and the fix.
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    code = (
        "import sys, time; t = time.perf_counter()\n"
        f"sys.path.insert(0, {str(here)!r})\n"
        "from fakenvml import FakeNvml\n"
        "import harness.nvml as nvmlmod\n"
        "from harness.nvml import Nvml\n"
        f"nvmlmod.Nvml = lambda: Nvml(0, module=FakeNvml(procs={{{NEIGHBOUR}: 714 * 2**20}}, util=89))\n"
        "from harness.cli import main\n"
        f"rc = main(['bench', '--seq', '128', '--out', {str(tmp_path / 'o')!r}, '--device', 'cuda', '--no-progress'])\n"
        "print('torch' in sys.modules, round(time.perf_counter() - t, 2))\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[3])
    assert proc.returncode == 4, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the GPU is shared: 1 other process(es) on it: PID 424242"), proc.stderr
    assert "--allow-shared-gpu" in lines[0]
    torch_loaded, seconds = proc.stdout.split()
    assert torch_loaded == "False" and float(seconds) < 5
    assert not (tmp_path / "o" / "cases").exists()
