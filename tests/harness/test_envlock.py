"""The lock: deterministic algorithms on, but no NaN fill of uninitialised memory where kernels are
timed (issue 8: that fill kernel sat inside every timed replay), and the fill on where it helps
(the correctness check poisons outputs). Checked in this process and in the process that times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from testkit import REPO

from harness import envlock


def test_lock_keeps_determinism_and_switches_the_fill_off():
    settings, failures = envlock.lock(7)
    assert settings["deterministic_algorithms"] is True
    assert settings["fill_uninitialized_memory"] is False
    assert envlock.fill_uninitialized() is False
    assert "fill_uninitialized_memory" not in failures


def test_poisoned_fills_new_outputs_with_nan_and_restores():
    envlock.lock(7)
    with envlock.poisoned():
        x = torch.empty(4096)
        assert torch.isnan(x).all()  # an element a kernel never writes shows up as NaN
    assert envlock.fill_uninitialized() is False


def test_unlocked_lifts_the_lock_and_puts_it_back():
    envlock.lock(7)
    with envlock.unlocked():
        assert not torch.are_deterministic_algorithms_enabled()
        assert envlock.fill_uninitialized() is False
    assert torch.are_deterministic_algorithms_enabled()
    assert envlock.fill_uninitialized() is False


def _bench(script: list[str], out: Path) -> None:
    args = ["bench", "--device", "cpu", "--seq", "32", "--backends", "math,flash", "--batch", "1", "--heads", "2",
            "--head-dim", "16", "--dtype", "float32", "--max-time", "0.2", "--target-ci", "0.1", "--no-ceilings",
            "--no-progress", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, *script, *args], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _cases(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "cases").glob("*.json"))]


def test_the_fill_is_off_in_the_process_that_times(tmp_path):
    # A real `harness bench` in its own process: the setting read back into env.json, the value
    # each case read right before sampling, and the census (no fill operator, same as unlocked).
    _bench(["-m", "harness.cli"], tmp_path / "run")
    env = json.loads((tmp_path / "run" / "env.json").read_text())
    assert env["lock"]["fill_uninitialized_memory"] is False
    cases = _cases(tmp_path / "run")
    assert len(cases) == 2
    for c in cases:
        assert c["timing"]["fill_uninitialized_memory"] is False
        assert c["census"]["matches_unlocked"] is True and c["census"]["differences"] == []
        assert "census_lock_differs" not in c["timing"]["summary"]["flags"]


def test_with_the_old_lock_every_record_says_so(tmp_path):
    # The behaviour before issue 8 (bench/h200/with_fill.py): the same checks must all see it.
    _bench([str(REPO / "bench" / "h200" / "with_fill.py")], tmp_path / "run")
    env = json.loads((tmp_path / "run" / "env.json").read_text())
    assert env["lock"]["fill_uninitialized_memory"] is True
    for c in _cases(tmp_path / "run"):
        assert c["timing"]["fill_uninitialized_memory"] is True
        assert c["census"]["matches_unlocked"] is False
        # math fills legitimately too; the lock's fill shows as extra aten::fill_ calls
        assert any("aten::fill_" in d for d in c["census"]["differences"]), c["census"]["differences"]
        assert "census_lock_differs" in c["timing"]["summary"]["flags"]
