"""Which shipped references fit a machine, and what `artifact reproduce` runs there."""

from __future__ import annotations

from testkit import REPO

from artifact import shipped
from artifact.cli import main
from harness.storage import load_env


def names(sel):
    return [(f.reference.name, f.how) for f in sel.fits]


def test_an_h200_gets_its_own_reference_and_plan():
    sel = shipped.select(shipped.Hardware("cuda", "NVIDIA H200", "9.0"))
    assert names(sel) == [("h200", "model")]
    assert sel.run.plan == "harness/plans/h200-artifact.yaml" and shipped.plan_path(sel.run).is_file()


def test_an_h100_gets_its_reference_and_the_h200_claims_of_its_family():
    sel = shipped.select(shipped.Hardware("cuda", "NVIDIA H100 80GB HBM3", "9.0"))
    assert names(sel) == [("h100", "model"), ("h200", "family")]
    assert sel.run.plan == "harness/plans/h100-artifact.yaml"
    assert "compute capability 9.0" in sel.fits[1].why


def test_another_gpu_gets_the_portable_claims_and_the_candidate_with_a_portable_config():
    from harness import plan as planmod

    sel = shipped.select(shipped.Hardware("cuda", "NVIDIA A100-SXM4-80GB", "8.0"))
    assert [how for _, how in names(sel)] == ["portable"]
    assert sel.run.plan == "harness/plans/artifact-portable.yaml"
    cases = planmod.from_yaml(shipped.plan_path(sel.run), "cuda").cases
    cands = [c for c in cases if c.workload == "triton_attention"]
    assert len(cands) == 5 and not any(c.config["use_tma"] or c.config["warp_specialize"] for c in cands)


def test_a_cpu_gets_the_cpu_smoke_reference():
    sel = shipped.select(shipped.Hardware("cpu"))
    assert names(sel) == [("cpu-smoke", "model")] and sel.run.profile == "smoke"


def test_check_without_a_reference_picks_by_the_results_hardware(capsys, tmp_path):
    run = REPO / "bench" / "h100" / "fresh-check" / "run-F1"
    assert load_env(run).gpu.name == "NVIDIA H100 80GB HBM3"
    code = main(["check", str(run), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "h100 was measured on this GPU model" in out and "h200 was measured on NVIDIA H200" in out
    assert (tmp_path / "verdict.json").is_file() and (tmp_path / "verdict-h200.json").is_file()
    # a run of the harness from before issue 8 fails the H200 reference's environment claim
    assert code == 1


def test_reproduce_dry_run_says_what_it_would_do(capsys):
    assert main(["reproduce", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "reproduce: hardware: CPU" in out and "cpu-smoke" in out and "profile smoke" in out
