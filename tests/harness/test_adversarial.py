"""The adversarial suite (issue 16): kernels that cheat the timer, each through the public door
(`--workload package.module:ATTR`) of the real CLI, each caught with its reason; the honest
control through the same door stays ok. The CPU suite runs everywhere; the GPU suite (names with
`gpu`) needs CUDA and ran on the H200 (bench/adversarial/NOTES.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from testkit import REPO

from bench.adversarial.cheats import EXPECTED, GPU_ONLY
from harness import storage
from harness.records import CaseResult

needs_cuda = pytest.mark.skipif(not __import__("torch").cuda.is_available(),
                                reason="needs a CUDA GPU (run on the device machine: bench/adversarial/run.sh)")


def _bench(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "harness.cli", "bench", "--out", str(out), "--no-progress", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def _cases(out: Path) -> dict[str, CaseResult]:
    found = {}
    for path in sorted((out / storage.CASES_DIR).glob("*.json")):
        case = storage.load_record(path, CaseResult)
        found[case.case.workload.split(":")[1]] = case
    return found


def _assert_caught(cases: dict[str, CaseResult], names: list[str]) -> None:
    assert cases["HONEST"].status == "ok", cases["HONEST"].reason
    honest = cases["HONEST"].integrity
    assert honest is not None and not honest.failed() and honest.refreshes >= 2
    for name in names:
        case = cases[name]
        assert case.status in ("invalid", "failed"), f"{name} got through as {case.status}"
        assert EXPECTED[name] in (case.reason or ""), f"{name}: {case.reason}"
        if case.status == "invalid":
            assert case.integrity is not None and case.integrity.failed()
            assert case.reason and case.reason.startswith("invalid: ")


def test_every_cpu_cheat_is_caught_with_its_reason_and_the_honest_kernel_is_not(tmp_path):
    proc = _bench(tmp_path / "adv", "--plan", "bench/adversarial/plan-cpu.yaml", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    cases = _cases(tmp_path / "adv")
    cpu = [n for n in EXPECTED if n not in GPU_ONLY and n != "PATCHED_TIMER"]
    assert sorted(cases) == sorted(["HONEST", *cpu])
    _assert_caught(cases, cpu)
    # A cheat that answers from a cache is caught by more than one check: its output and its time.
    pointer = {c.name for c in cases["POINTER_CACHE"].integrity.failed()}
    assert {"timed_outputs", "roofline"} <= pointer


def test_a_module_that_patches_the_timer_at_import_is_invalid_and_its_time_is_not_shortened(tmp_path):
    common = ("--backends", "default", "--seq", "64", "--batch", "2", "--heads", "4", "--head-dim", "32",
              "--dtype", "float32", "--device", "cpu", "--max-time", "0.3", "--no-ceilings")
    proc = _bench(tmp_path / "t", "--workload", "bench.adversarial.patched_timer:PATCHED_TIMER", *common)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (case,) = _cases(tmp_path / "t").values()
    assert case.status == "invalid" and "timer_tamper" in case.reason and "time.perf_counter_ns" in case.reason
    honest = _bench(tmp_path / "h", "--workload", "bench.adversarial.cheats:HONEST", *common)
    assert honest.returncode == 0, honest.stderr[-2000:]
    (ref,) = _cases(tmp_path / "h").values()
    # The timer was bound before the module patched it: the cheat reads as slow as the honest
    # kernel (the patch would have made it 100x faster), not faster.
    assert case.timing.summary.median_ms > 0.3 * ref.timing.summary.median_ms


def test_a_bad_workload_name_or_module_is_one_line_with_exit_2(tmp_path):
    for workload, words in (("no.such.module:X", "importing no.such.module failed"),
                            ("bench.adversarial.cheats:NOPE", "has no attribute 'NOPE'"),
                            ("bench.adversarial.cheats:torch", "lacks"),
                            ("bad name:x y", "not of the form package.module:ATTR")):
        proc = _bench(tmp_path / "x", "--workload", workload, "--seq", "64", "--device", "cpu")
        assert proc.returncode == 2, (workload, proc.stderr)
        assert words in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_a_plan_with_a_backend_the_workload_does_not_declare_is_refused_before_measuring(tmp_path):
    plan = tmp_path / "p.yaml"
    plan.write_text(yaml.safe_dump({"cases": [{"workload": "bench.adversarial.cheats:HONEST", "backend": "flash",
                                               "batch": 1, "heads": 1, "seq": 32, "head_dim": 16, "dtype": "float32"}]}))
    proc = _bench(tmp_path / "x", "--plan", str(plan), "--device", "cpu")
    assert proc.returncode == 2 and "backend 'flash' is not one of workload bench.adversarial.cheats:HONEST's (default)" in proc.stderr
    assert not (tmp_path / "x" / storage.CASES_DIR).exists()


@needs_cuda
def test_gpu_every_cheat_is_caught_and_the_honest_kernel_is_not(tmp_path):
    spec = yaml.safe_load((REPO / "bench/adversarial/plan-h200.yaml").read_text())
    spec["cases"][0]["seq"] = [512]
    spec["timing"]["max_time_s"] = 0.5
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(spec))
    proc = _bench(tmp_path / "adv", "--plan", str(plan), "--device", "cuda")
    assert proc.returncode == 0, proc.stderr[-2000:]
    cases = _cases(tmp_path / "adv")
    _assert_caught(cases, [n for n in EXPECTED if n != "PATCHED_TIMER"])
    checks = {c.name: c for c in cases["HONEST"].integrity.checks}
    assert all(checks[n].passed for n in ("timed_outputs", "census_vs_eager", "census_time", "roofline", "host_clock"))
    print(json.dumps({n: (c.status, c.reason) for n, c in cases.items()}, indent=1))


DEVICE_RUN = REPO / "bench" / "adversarial" / "h100"


def test_the_committed_device_run_caught_every_cheat_and_no_honest_case_and_its_summary_is_current():
    from bench.adversarial import summarize

    cheats = {}
    for sub in ("cheats", "timer"):
        for path in sorted((DEVICE_RUN / sub / storage.CASES_DIR).glob("*.json")):
            case = storage.load_record(path, CaseResult)
            cheats[(case.case.workload.split(":")[1], case.case.seq)] = case
    # Every cheat of the suite when it ran (PROFILER_SHY came after the device run).
    assert {n for n, _ in cheats} == {"HONEST", *EXPECTED} - {"PROFILER_SHY"}
    for (name, seq), case in cheats.items():
        if name == "HONEST":
            assert case.status == "ok" and not case.integrity.failed()
        else:
            assert case.status in ("invalid", "failed"), (name, seq)
    honest = [storage.load_record(p, CaseResult) for p in sorted((DEVICE_RUN / "honest" / storage.CASES_DIR).glob("*.json"))]
    assert len(honest) == 30 and all(c.status == "ok" and not c.integrity.failed() for c in honest)
    assert summarize.main(DEVICE_RUN) == (DEVICE_RUN / "SUMMARY.md").read_text()
