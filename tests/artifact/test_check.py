"""`artifact check` end to end: same-hardware reruns pass, a backend made 15% slower fails exactly
the claims that depend on it, tampered results are refused, and results checked against a
reference for other hardware get SKIPs with reasons, never a pass."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from resultsfolders import L4, cpu_run, l4_run, scale_cases
from testkit import H200_REF, REPO

from artifact import derive
from artifact.cli import main
from artifact.reference import load_reference
from harness import storage, versions
from harness.storage import load_env

CPU_SMOKE = REPO / "artifact" / "references" / "cpu-smoke.yaml"
CPU_RUNS = Path(__file__).resolve().parent / "data" / "cpu-smoke-runs"


@pytest.fixture(scope="module")
def l4(tmp_path_factory):
    """Two L4 runs on two machines and the reference derived from them."""
    root = tmp_path_factory.mktemp("l4")
    runs = [l4_run(root / f"run-{i}", i) for i in (0, 1)]
    ref = root / "l4.yaml"
    derive.write_reference(derive.derive(runs, derive.DeriveOptions(name="l4-test", min_runs=2)), ref)
    return {"runs": runs, "ref": ref, "root": root}


def check(capsys, folder, ref, *extra):
    """Run the CLI; verdict files go to a fresh folder (unless --out is given) so the shared
    results folders stay exactly as derived."""
    if "--out" not in extra:
        extra = (*extra, "--out", tempfile.mkdtemp(prefix="verdict-"))
    code = main(["check", str(folder), "--reference", str(ref), "--json", *extra])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip() else None), out.err


@pytest.mark.parametrize("run", [0, 1])
def test_same_hardware_runs_pass_their_reference(l4, capsys, run):
    code, verdict, err = check(capsys, l4["runs"][run], l4["ref"])
    assert code == 0, err
    assert verdict["status"] == "PASS" and verdict["counts"]["FAIL"] == 0 and verdict["counts"]["SKIP"] == 0
    kinds = {c["kind"] for c in verdict["claims"]}
    assert kinds == {"absolute", "ratio", "ranking", "scaling", "correctness", "memory", "determinism", "environment"}
    numeric = [c for c in verdict["claims"] if c["tolerance_used"] is not None]
    assert numeric and all(c["tolerance_used"] <= 1.0 for c in numeric)


def test_a_backend_15_percent_slower_fails_exactly_the_claims_that_depend_on_it(l4, capsys, tmp_path):
    slow = scale_cases(l4["runs"][0], tmp_path / "slow", 1.15, backend="cudnn")
    before = {c["claim_id"]: c["status"] for c in check(capsys, l4["runs"][0], l4["ref"])[1]["claims"]}
    code, verdict, _ = check(capsys, slow, l4["ref"])
    assert code == 1 and verdict["status"] == "FAIL"
    ref = load_reference(l4["ref"])
    depends = {c.id for c in ref.claims if c.depends_on(backend="cudnn")}
    failed = {c["claim_id"] for c in verdict["claims"] if c["status"] == "FAIL"}
    assert failed <= depends
    # Every claim that does not read cudnn is judged as before.
    assert all(c["status"] == before[c["claim_id"]] for c in verdict["claims"] if c["claim_id"] not in depends)
    # A 15% shift must be caught wherever the tolerance is well below it. (The L4's own
    # run-to-run spread at S=1024 gives a wider band there: a shift inside it is noise.)
    must = {c.id for c in ref.claims if c.id in depends and c.kind in ("absolute", "ratio") and c.tolerance.rel < 0.10}
    assert {c.split("-s")[0] for c in must} == {"abs-cudnn", "ratio-cudnn-flash"}
    assert must <= failed
    # The exponent does not move when every S is 15% slower, and correctness does not care.
    assert not any(c.startswith(("scaling-", "correct-", "determinism-", "mem")) for c in failed)


def test_a_tampered_or_truncated_result_is_refused(l4, capsys, tmp_path):
    bad = tmp_path / "tampered"
    shutil.copytree(l4["runs"][0], bad)
    victim = sorted((bad / "cases").glob("*cudnn*s512*"))[0]
    victim.write_text(victim.read_text().replace('"median_ms": 0.', '"median_ms": 1.', 1))
    code, verdict, err = check(capsys, bad, l4["ref"])
    assert code == 2 and verdict is None
    assert f"cases/{victim.name}: sha256 differs" in err and err.count("\n") == 1
    assert not list(bad.glob("verdict.*"))
    assert main(["check", str(bad), "--reference", str(l4["ref"])]) == 2  # without --out: nothing written either
    assert not list(bad.glob("verdict.*"))
    capsys.readouterr()

    cut = tmp_path / "truncated"
    shutil.copytree(l4["runs"][0], cut)
    victim = sorted((cut / "cases").glob("*.json"))[3]
    victim.write_bytes(victim.read_bytes()[:200])
    code, _, err = check(capsys, cut, l4["ref"])
    assert code == 2 and victim.name in err

    extra = tmp_path / "extra"
    shutil.copytree(l4["runs"][0], extra)
    src = sorted((extra / "cases").glob("*.json"))[0]
    shutil.copy(src, extra / "cases" / "sdpa-flash-b32h8s9999d64-float16-full-warm-cuda.json")
    code, _, err = check(capsys, extra, l4["ref"])
    assert code == 2 and "not listed in manifest.json" in err

    nomanifest = tmp_path / "nomanifest"
    shutil.copytree(l4["runs"][0], nomanifest)
    (nomanifest / "manifest.json").unlink()
    code, _, err = check(capsys, nomanifest, l4["ref"])
    assert code == 2 and "manifest.json: missing" in err


def test_a_required_case_that_was_not_produced_fails_as_missing(l4, capsys, tmp_path):
    part = tmp_path / "partial"
    shutil.copytree(l4["runs"][0], part)
    for p in (part / "cases").glob("sdpa-math-*s512*"):
        p.unlink()
    storage.write_manifest(part)
    code, verdict, _ = check(capsys, part, l4["ref"])
    assert code == 1
    ref = load_reference(l4["ref"])
    missing = {c["claim_id"]: c for c in verdict["claims"] if c["missing"]}
    assert {"abs-math-s512", "scaling-math", "memgrowth-math"} <= set(missing)
    for cid, c in missing.items():
        # Same-model claims require the case; portable ones (other GPUs may lack a backend) skip.
        if ref.claim(cid).required:
            assert c["status"] == "FAIL" and c["why"].startswith("missing:"), cid
        else:
            assert c["status"] == "SKIP" and "optional" in c["why"], cid
    assert not ref.claim("memgrowth-math").required and ref.claim("abs-math-s512").required


def test_another_gpu_model_gets_its_portable_claims_checked(tmp_path, l4, capsys):
    a100 = l4_run(tmp_path / "a100", 0, gpu_name="NVIDIA A100-SXM4-80GB", cc="8.0")
    code, verdict, _ = check(capsys, a100, l4["ref"])
    assert code == 0
    by_status = {}
    for c in verdict["claims"]:
        by_status.setdefault(c["status"], set()).add(c["kind"])
    assert by_status["SKIP"] >= {"absolute", "ratio", "ranking", "scaling"}
    assert by_status["PASS"] >= {"correctness", "determinism", "environment"}
    assert all("NVIDIA L4" in c["why"] and "A100" in c["why"] for c in verdict["claims"] if c["status"] == "SKIP")


def test_gpu_results_against_the_cpu_reference_are_all_skips(l4, capsys):
    code, verdict, err = check(capsys, l4["runs"][0], CPU_SMOKE)
    assert code == 2 and verdict["status"] == "NOT_APPLICABLE"
    assert verdict["counts"]["PASS"] == 0 and verdict["counts"]["FAIL"] == 0
    assert all(c["status"] == "SKIP" and "CPU runs" in c["why"] and L4 in c["why"] for c in verdict["claims"])
    assert err.startswith("error: no claim of cpu-smoke applies")


def test_cpu_results_against_a_gpu_reference_are_all_skips(l4, capsys, tmp_path):
    cpu = cpu_run(tmp_path / "cpu")
    code, verdict, _ = check(capsys, cpu, l4["ref"])
    assert code == 2 and verdict["counts"] == {"PASS": 0, "FAIL": 0, "SKIP": len(verdict["claims"])}
    assert all("CPU" in c["why"] for c in verdict["claims"])


@pytest.mark.parametrize("run", ["run-1", "run-2", "run-3"])
def test_real_cpu_smoke_runs_pass_the_shipped_cpu_reference(capsys, tmp_path, run):
    # The runs the CPU reference was derived from (harness bench --profile smoke --device cpu);
    # --out keeps the shipped fixture folders untouched.
    code, verdict, err = check(capsys, CPU_RUNS / run, CPU_SMOKE, "--out", str(tmp_path))
    assert code == 0, err
    assert verdict["counts"]["PASS"] == len(verdict["claims"])
    assert {c["kind"] for c in verdict["claims"]} == {"ranking", "correctness", "determinism", "environment"}


def test_outputs_verdict_files_table_and_step_summary(l4, capsys, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = tmp_path / "verdict"
    code = main(["check", str(l4["runs"][1]), "--reference", str(l4["ref"]), "--out", str(out)])
    table = capsys.readouterr().out
    assert code == 0
    data = json.loads((out / "verdict.json").read_text())
    assert data["kind"] == "verdict" and data["schema_version"] == versions.current("verdict") and data["exit_code"] == 0
    assert data["reference_sha256"] == load_reference(l4["ref"]).sha256
    md = (out / "verdict.md").read_text()
    assert md.startswith("## Verdict: PASS")
    assert all(f"| {c['claim_id']} |" in md for c in data["claims"])
    assert summary.read_text() == "earlier step\n" + md + "\n"
    assert "abs-cudnn-s512" in table and f"{data['counts']['PASS']} PASS, 0 FAIL, 0 SKIP -> exit 0" in table
    assert not (l4["runs"][1] / "verdict.json").exists()  # --out, not the results folder


# --------------------------------------------------------------------------- real GPU runs
H100_REF = REPO / "artifact" / "references" / "h100.yaml"
H100_RUNS = sorted((REPO / "bench" / "h100").glob("reference/machine-*/run-*"))
H200_RUNS = sorted((REPO / "bench" / "h200").glob("machine-[BC]/run-*"))


def test_h100_runs_pass_the_shipped_h100_reference(capsys):
    # The reference runs themselves (bench/h100/, full profile on the device tool's H100).
    assert len(H100_RUNS) >= 3, "bench/h100/reference/machine-*/run-* are this test's fixtures"
    for run in H100_RUNS:
        code, verdict, err = check(capsys, run, H100_REF)
        assert code == 0, (run, err)
        assert verdict["counts"]["FAIL"] == 0 and verdict["counts"]["SKIP"] == 0


def test_the_h100_reference_certifies_no_time_measured_with_the_fill():
    # Its runs timed the NaN fill (issue 8) and no H100 was lent to re-measure: only memory,
    # correctness, determinism and environment claims remain, and the file says why.
    ref = load_reference(H100_REF)
    assert {c.kind for c in ref.claims} == {"memory", "correctness", "determinism", "environment"}
    assert any("NaN fill" in n["why"] for n in ref.not_claimed)


def test_a_fresh_h100_machine_passes_the_shipped_reference(capsys):
    # bench/h100/fresh-check/run-F1: a separately started H100 whose runs are not in the reference.
    fresh = REPO / "bench" / "h100" / "fresh-check" / "run-F1"
    ref_gpus = {load_env(r).gpu.uuid for r in H100_RUNS}
    assert load_env(fresh).gpu.uuid not in ref_gpus
    code, verdict, err = check(capsys, fresh, H100_REF)
    assert code == 0, err
    assert verdict["counts"]["PASS"] == len(verdict["claims"]) >= 45


def test_h200_runs_pass_the_shipped_h200_reference(capsys):
    assert len(H200_RUNS) == 4 and len({load_env(r).gpu.uuid for r in H200_RUNS}) == 2
    for run in H200_RUNS:
        code, verdict, err = check(capsys, run, H200_REF)
        assert code == 0, (run, err)
        assert verdict["counts"]["PASS"] == len(verdict["claims"]) >= 130


def test_h200_reference_scopes_claims_by_what_they_depend_on():
    ref = load_reference(H200_REF)
    by_kind: dict[str, set[str]] = {}
    for c in ref.claims:
        by_kind.setdefault(c.kind, set()).add(c.scope.kind)
    assert by_kind["absolute"] == {"gpu_model"}
    for kind in ("ratio", "ranking", "scaling"):
        # offered to compute capability 9.0, kept there only where the H100 evidence bore it out
        assert "compute_capability" in by_kind[kind], kind
    # No efficiency share held on every H100 given as evidence (eleven runs, six machines): each is
    # the H200's alone, and its derivation says how many of those runs passed it.
    effs = [c for c in ref.claims if c.kind == "efficiency"]
    assert by_kind["efficiency"] == {"gpu_model"} and len(effs) == 30
    why = [c.tolerance.derivation["scope_evidence"] for c in effs]
    assert all("passed it: kept to the GPU model" in w or "do not have its cases" in w for w in why)
    assert sum("of 11 run(s) of NVIDIA H100 80GB HBM3 passed it" in w for w in why) >= 20
    family = [c for c in ref.claims if c.scope.kind == "compute_capability"]
    assert all((c.scope.cc_min, c.scope.cc_max) == ("9.0", "9.0") for c in family)
    assert ref.run is not None and ref.run.plan == "harness/plans/h200-artifact.yaml"


def _failed(verdict):
    return {c["claim_id"] for c in verdict["claims"] if c["status"] == "FAIL"}


def test_one_h200_case_10_percent_slower_fails_its_own_claims_only(capsys, tmp_path):
    from resultsfolders import scale_cases

    slow = scale_cases(H200_RUNS[-1], tmp_path / "slow", 1.10, backend="cudnn", seq=1024)
    code, verdict, _ = check(capsys, slow, H200_REF)
    assert code == 1
    ref = load_reference(H200_REF)
    depends = {c.id for c in ref.claims if c.depends_on(backend="cudnn", seq=1024)}
    failed = _failed(verdict)
    assert {"abs-cudnn-s1024", "eff-cudnn-s1024", "ratio-cudnn-flash-s1024"} <= failed <= depends


def test_every_h200_case_10_percent_slower_fails_the_time_and_efficiency_claims(capsys, tmp_path):
    # A slowdown of everything at once (the harness, a library, a driver): ratios, rankings and
    # exponents cannot see it, the absolute times and the shares of the run's own ceilings can.
    from resultsfolders import scale_cases

    slow = scale_cases(H200_RUNS[-1], tmp_path / "slow", 1.10)
    code, verdict, _ = check(capsys, slow, H200_REF)
    assert code == 1
    ref = load_reference(H200_REF)
    failed = _failed(verdict)
    absolute = {c.id for c in ref.claims if c.kind == "absolute"}
    efficiency = {c.id for c in ref.claims if c.kind == "efficiency"}
    assert absolute <= failed and efficiency <= failed
    assert not failed & {c.id for c in ref.claims if c.kind in ("ratio", "ranking", "scaling")}


def test_h100_results_against_the_cpu_reference_and_back_are_skips(capsys):
    code, verdict, _ = check(capsys, H100_RUNS[0], CPU_SMOKE)
    assert code == 2 and verdict["counts"]["SKIP"] == len(verdict["claims"])
    assert all("NVIDIA H100" in c["why"] for c in verdict["claims"])
    code, verdict, _ = check(capsys, CPU_RUNS / "run-1", H200_REF)
    assert code == 2 and verdict["counts"]["SKIP"] == len(verdict["claims"]) > 50
    assert all(c["why"].startswith("out of scope: claim") and "ran on CPU" in c["why"] for c in verdict["claims"])


def test_checking_never_imports_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from artifact.cli import main\n"
        f"rc = main(['check', {str(CPU_RUNS / 'run-2')!r}, '--reference', {str(CPU_SMOKE)!r}, '--json', '--out', {tempfile.mkdtemp()!r}])\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules, 'artifact check imported torch'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_an_absolute_fail_says_how_the_runs_clocks_compare_with_the_references(capsys, tmp_path):
    # The same 10% slower case twice: once timed at the reference's clocks (the kernel is slower),
    # once with the SM clock 12% lower while it was timed (the card was in a slower state).
    from dataclasses import replace as dc_replace

    from resultsfolders import scale_cases

    from harness.records import CaseResult, load_record

    same = scale_cases(H200_RUNS[-1], tmp_path / "same", 1.10, backend="cudnn", seq=4096)
    slow_card = scale_cases(H200_RUNS[-1], tmp_path / "card", 1.10, backend="cudnn", seq=4096)
    (p,) = (slow_card / "cases").glob("sdpa-cudnn-b32h8s4096*.json")
    case = load_record(p, CaseResult)
    k = case.timing.clocks
    clocks = dc_replace(k, sm_mhz_median=k.sm_mhz_median * 0.88, sm_mhz_min=k.sm_mhz_min * 0.88, sm_mhz_max=k.sm_mhz_max * 0.88)
    storage.write_record(p, dc_replace(case, timing=dc_replace(case.timing, clocks=clocks)))
    storage.write_manifest(slow_card)
    why = {}
    for name, folder in (("same", same), ("card", slow_card)):
        code, verdict, _ = check(capsys, folder, H200_REF)
        assert code == 1
        (abs_claim,) = [c for c in verdict["claims"] if c["claim_id"] == "abs-cudnn-s4096"]
        assert abs_claim["status"] == "FAIL"
        why[name] = abs_claim["why"]
    # Attributed in cycle space (time x SM clock): flat clock, cycles up -> the kernel; the
    # clock 12% lower with the time 8-10% up -> the cycles stayed flat, the clock explains it.
    assert "clocks:" in why["same"] and "it is the kernel" in why["same"] and "not the clock" in why["same"]
    assert "the cycles stayed flat, so the clock explains" in why["card"], why["card"]


def test_the_verdict_says_when_the_software_is_not_the_references(capsys, tmp_path):
    from harness.records import EnvRecord, load_record

    run = tmp_path / "run"
    shutil.copytree(H200_RUNS[0], run)
    env = load_record(run / storage.ENV_FILE, EnvRecord)
    code, verdict, _ = check(capsys, run, H200_REF)
    assert code == 0 and not any("other software" in n for n in verdict["notes"])
    env.software["torch"] = "2.12.0+cu130"
    env.cudnn_version = "91000"
    storage.write_record(run / storage.ENV_FILE, env)
    storage.write_manifest(run)
    code, verdict, _ = check(capsys, run, H200_REF)
    note = next(n for n in verdict["notes"] if "other software" in n)
    assert "torch 2.12.0+cu130 (reference 2.11.0" in note and "cudnn version 91000 (reference 91900)" in note


def test_min_checked_turns_a_mostly_skipped_pass_into_exit_2(capsys, tmp_path):
    # An H100 run against h200.yaml: only the compute-capability-9.0 claims apply and PASS; the
    # H200-only ones SKIP. Exit 0 says "all PASS" to a CI job; --min-checked says how many must apply.
    h100 = tmp_path / "h100"
    shutil.copytree(REPO / "bench" / "adversarial" / "h100" / "honest", h100)
    code, verdict, _ = check(capsys, h100, H200_REF)
    judged = verdict["counts"]["PASS"] + verdict["counts"]["FAIL"]
    total = len(verdict["claims"])
    assert code == 0 and 0 < judged < total
    code, _, err = check(capsys, h100, H200_REF, "--min-checked", "1")
    assert code == 2 and err.count("\n") == 1
    assert f"only {judged} of {total} claims of h200 were judged ({total - judged} SKIP; first skipped: " in err, err
    assert "--min-checked 1 asks for at least 100%" in err
    # A run on the reference's own hardware judges every claim: the flag changes nothing.
    code, verdict, _ = check(capsys, H200_RUNS[0], H200_REF, "--min-checked", "1", "--out", str(tmp_path / "v"))
    assert code == 0 and verdict["counts"]["SKIP"] == 0
