"""The pull-request gate (`artifact check RUN --baseline BASE`, artifact/baseline.py), on the
committed H200 runs: an honest run of another machine passes; the same run with one case 5% or
10% slower fails on that case and nothing else; a correctness change, a dropped case, another
GPU model, a slower clock and a shared GPU are each named for what they are."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest
from resultsfolders import SHARED_WHY, as_schema4, failed_integrity, scale_cases, shared_watch, with_machine
from testkit import H200_RUN, REPO, copy_run

from artifact import baseline
from artifact.cli import main
from artifact.results.folder import load_results
from harness import storage
from harness.records import CaseResult, load_record

H200_SAME_PLAN = sorted((REPO / "bench" / "h200").glob("machine-[B-E]/run-*"))  # plan h200-artifact (A ran the H100 plan)
CUDNN_1024 = "sdpa-cudnn-b32h8s1024d64-float16-full-warm-cuda"


def gate(capsys, run: Path, base: Path, *extra: str) -> tuple[int, dict, str]:
    code = main(["check", str(run), "--baseline", str(base), *extra])
    out = capsys.readouterr()
    js = run / baseline.JSON_NAME
    return code, (json.loads(js.read_text()) if js.exists() else {}), out.out + out.err


def outcomes(v: dict) -> dict[str, str]:
    return {c["case_id"]: c["outcome"] for c in v["cases"]}


def edit_case(folder: Path, case_id: str, change) -> Path:  # noqa: ANN001 - CaseResult -> CaseResult
    path = folder / storage.CASES_DIR / f"{case_id}.json"
    storage.write_record(path, change(load_record(path, CaseResult)))
    storage.write_manifest(folder)
    return folder


@pytest.fixture
def base(tmp_path) -> Path:
    return copy_run(H200_RUN, tmp_path / "base")


def test_the_committed_runs_are_what_the_gate_is_tested_on():
    assert len(H200_SAME_PLAN) >= 5 and H200_RUN in H200_SAME_PLAN


def test_the_floor_covers_every_pair_of_committed_h200_machines():
    # The default tolerance (3%) stands for what separate machines of one model add to a run's own
    # CI: measured here, the largest case-by-case time ratio between two of the committed H200 runs.
    runs = {p: {c.case.case_id: c.timing.summary.median_ms for c in load_results(p)[0].cases if c.status == "ok"}
            for p in H200_SAME_PLAN}
    worst = max(max(a[k] / b[k] for k in a.keys() & b.keys()) for a, b in itertools.permutations(runs.values(), 2))
    assert 1.01 < worst < 1.0 + baseline.GateOptions().floor, worst


@pytest.mark.parametrize("other", [p for p in H200_SAME_PLAN if p != H200_RUN], ids=lambda p: p.name)
def test_an_honest_run_of_another_machine_passes(tmp_path, capsys, other, base):
    run = copy_run(other, tmp_path / "run")
    code, v, out = gate(capsys, run, base)
    assert code == 0 and v["status"] == "PASS", out
    assert not {"SLOWER", "WRONG", "MISSING"} & set(outcomes(v).values())
    assert sum(v["counts"].values()) == 30 and "PASS:" in out


@pytest.mark.parametrize("factor", [1.05, 1.10])
def test_one_case_slowed_fails_on_that_case_and_nothing_else(tmp_path, capsys, base, factor):
    run = scale_cases(base, tmp_path / "run", factor, backend="cudnn", seq=1024)
    code, v, out = gate(capsys, run, base)
    assert code == 1 and v["status"] == "FAIL", out
    bad = {k: o for k, o in outcomes(v).items() if o != "equivalent"}
    assert bad == {CUDNN_1024: "SLOWER"}
    (case,) = [c for c in v["cases"] if c["case_id"] == CUDNN_1024]
    assert case["ratio"] == pytest.approx(factor, rel=1e-6) and case["ci_low"] > 1.03
    assert f"SLOWER   {CUDNN_1024}" in out and "slower beyond the tolerance 3.0%" in out


def test_a_slowdown_inside_the_tolerance_passes_and_says_so(tmp_path, capsys, base):
    run = scale_cases(base, tmp_path / "run", 1.02, backend="cudnn", seq=1024)
    code, v, _ = gate(capsys, run, base)
    assert code == 0 and outcomes(v)[CUDNN_1024] == "slower, within tolerance"
    # A tighter tolerance catches it: the floor is an option, not a constant.
    code, v, _ = gate(capsys, run, base, "--tolerance", "0.01")
    assert code == 1 and outcomes(v)[CUDNN_1024] == "SLOWER"


def test_a_faster_case_passes(tmp_path, capsys, base):
    run = scale_cases(base, tmp_path / "run", 0.8, backend="flash")
    code, v, _ = gate(capsys, run, base)
    assert code == 0 and [o for k, o in outcomes(v).items() if "-flash-" in k] == ["faster"] * 5


def test_a_correctness_change_fails(tmp_path, capsys, base):
    run = edit_case(copy_run(base, tmp_path / "run"), CUDNN_1024,
                    lambda c: replace(c, correctness=replace(c.correctness, rel_error=c.correctness.rel_error * 10)))
    code, v, _ = gate(capsys, run, base)
    assert code == 1 and outcomes(v)[CUDNN_1024] == "WRONG"
    assert "over 4x the base's" in next(c["why"] for c in v["cases"] if c["case_id"] == CUDNN_1024)


def test_a_dropped_case_fails_and_a_new_one_is_only_named(tmp_path, capsys, base):
    run = copy_run(base, tmp_path / "run")
    (run / storage.CASES_DIR / f"{CUDNN_1024}.json").unlink()
    storage.write_manifest(run)
    code, v, _ = gate(capsys, run, base)
    assert code == 1 and outcomes(v)[CUDNN_1024] == "MISSING"
    # The other way round, the case only the run has is new: named, not judged.
    code, v, _ = gate(capsys, copy_run(base, tmp_path / "run2"), run)
    assert code == 0 and outcomes(v)[CUDNN_1024] == "new"


def test_a_slower_clock_is_the_runner_not_the_change(tmp_path, capsys, base):
    def slower_card(c: CaseResult) -> CaseResult:
        clocks = c.timing.clocks
        return replace(c, timing=replace(c.timing, clocks=replace(clocks, sm_mhz_median=clocks.sm_mhz_median / 1.10)))
    run = edit_case(scale_cases(base, tmp_path / "run", 1.10, backend="cudnn", seq=1024), CUDNN_1024, slower_card)
    code, v, out = gate(capsys, run, base)
    assert code == 4 and v["status"] == "INVALID" and outcomes(v)[CUDNN_1024] == "MACHINE", out
    assert "the cycles stayed flat" in out and "steady runner" in out


def test_a_shared_gpu_and_an_invalid_case_are_judged_apart(tmp_path, capsys, base):
    # Both folders as the harness writes them now (schema 5); the run's cudnn S=1024 timed beside
    # another process (the machine: exit 4), then with its timed outputs wrong (the kernel: exit 3).
    base = with_machine(as_schema4(base, tmp_path / "base5"))
    run = with_machine(as_schema4(base, tmp_path / "run"), watch=shared_watch(), status="invalid", reason=SHARED_WHY,
                       backend="cudnn", seq=1024)
    code, v, out = gate(capsys, run, base)
    assert code == 4 and outcomes(v)[CUDNN_1024] == "MACHINE", out
    assert [k for k, o in outcomes(v).items() if o != "equivalent"] == [CUDNN_1024]
    run = with_machine(as_schema4(base, tmp_path / "run3", status="invalid", integrity=failed_integrity(),
                                  reason="invalid: timed replays' outputs wrong", backend="cudnn", seq=1024))
    code, v, out = gate(capsys, run, base)
    assert code == 3 and outcomes(v)[CUDNN_1024] == "INVALID" and "outputs wrong" in out


def test_another_gpu_model_is_refused(tmp_path, capsys, base):
    h100 = sorted((REPO / "bench" / "h100").glob("reference/machine-*/run-*"))[0]
    code = main(["check", str(copy_run(h100, tmp_path / "run")), "--baseline", str(base)])
    err = capsys.readouterr().err
    assert code == 2 and "needs the same GPU model" in err and "H100" in err and "H200" in err
    assert not (tmp_path / "run" / baseline.JSON_NAME).exists()


@pytest.mark.parametrize("args,why", [
    (["--reference", str(REPO / "artifact" / "references" / "h200.yaml")], "no --reference"),
    (["--min-checked", "1"], "no --reference or --min-checked"),
])
def test_baseline_with_a_reference_is_refused(tmp_path, capsys, base, args, why):
    assert main(["check", str(copy_run(base, tmp_path / "run")), "--baseline", str(base), *args]) == 2
    assert why in capsys.readouterr().err


def test_the_outputs_stay_out_of_the_results_and_reach_the_job_summary(tmp_path, capsys, base, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run = scale_cases(base, tmp_path / "run", 1.10, backend="cudnn", seq=1024)
    assert gate(capsys, run, base)[0] == 1
    text = summary.read_text()
    assert text.startswith("## Against the baseline: FAIL (exit 1)") and f"| {CUDNN_1024} | SLOWER |" in text
    assert "each backend's time over the fastest's" in text and "**1 (fastest)**" in text
    # vs-baseline.* are the host's outputs: the folder still checks, and the gate runs again.
    assert main(["check", str(run), "--reference", str(REPO / "artifact" / "references" / "h200.yaml")]) in (0, 1)
    capsys.readouterr()
    assert gate(capsys, run, base)[0] == 1


def test_the_committed_gpu_gate_run_passes_as_it_did_on_the_device(tmp_path, capsys):
    # bench/pr_gate/h100: two reproductions minutes apart on one H100, the second against the first.
    gpu = REPO / "bench" / "pr_gate" / "h100"
    printed = (gpu / "check.txt").read_text()
    run = copy_run(gpu / "head", tmp_path / "head")
    code, v, out = gate(capsys, run, copy_run(gpu / "base", tmp_path / "base"))
    assert code == 0 and v["status"] == "PASS" and "NVIDIA H100" in v["hardware"]
    assert v["counts"] == {"faster": 9, "equivalent": 10, "slower, within tolerance": 11}
    assert "(faster 9, equivalent 10, slower, within tolerance 11)" in printed
    widest = max((c for c in v["cases"] if c["ratio"]), key=lambda c: c["ratio"])
    assert "-triton-b32h8s1024" in widest["case_id"] and 1.02 < widest["ci_low"] < widest["ci_high"] < 1.03
