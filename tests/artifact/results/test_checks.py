"""What `artifact check` reads and judges (issue 10): the raw samples, not the summary beside them;
only files the manifest lists, inside the folder; derived outputs never hashed; a NaN or negative
error never passes; a case timed otherwise than the reference's is not judged as comparable; and
`artifact report` shows the verdict of the results it reports on, judged now."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from resultsfolders import scale_cases
from testkit import H200_REF, REPO, copy_run

from artifact import claims as C
from artifact import derive
from artifact.claims.parts import CaseSelector, Scope
from artifact.cli import main
from artifact.errors import ArtifactError
from artifact.reference import load_reference
from artifact.results import folder
from artifact.results.folder import load_results
from harness import stats, storage
from harness.records import CaseResult, CaseSpec, Correctness, load_record

H200_RUN = REPO / "bench" / "h200" / "machine-C" / "run-C2"
CASE = "cases/sdpa-cudnn-b32h8s1024d64-float16-full-warm-cuda.json"


def check(capsys, folder, ref=H200_REF, out=None):
    code = main(["check", str(folder), "--reference", str(ref), "--json", *(["--out", str(out)] if out else [])])
    io = capsys.readouterr()
    return code, (json.loads(io.out) if io.out.strip() else None), io.err



def edit(folder: Path, rel: str, fn) -> None:
    p = folder / rel
    data = json.loads(p.read_text())
    fn(data)
    p.write_text(json.dumps(data, indent=1))
    storage.write_manifest(folder)


# --------------------------------------------------------------------------- finding 2: the raw samples
def test_samples_scaled_with_the_summary_left_alone_are_refused(tmp_path, capsys):
    run = copy_run(H200_RUN, tmp_path / "run")
    edit(run, CASE, lambda d: [r.__setitem__("samples_ms", [x * 1.2 for x in r["samples_ms"]])
                               for r in d["timing"]["repetitions"]])
    code, verdict, err = check(capsys, run, out=tmp_path / "v")
    assert code == 2 and verdict is None
    assert f"{CASE}: timing.summary.median_ms" in err and "do not belong together" in err


def test_a_summary_edited_with_the_samples_left_alone_is_refused(tmp_path, capsys):
    run = copy_run(H200_RUN, tmp_path / "run")
    edit(run, CASE, lambda d: d["timing"]["summary"].__setitem__("median_ms", d["timing"]["summary"]["median_ms"] / 1.2))
    code, _, err = check(capsys, run, out=tmp_path / "v")
    assert code == 2 and "timing.summary.median_ms" in err
    run2 = copy_run(H200_RUN, tmp_path / "ci")
    edit(run2, CASE, lambda d: d["timing"]["summary"].__setitem__("ci_high_ms", d["timing"]["summary"]["ci_high_ms"] * 1.5))
    code, _, err = check(capsys, run2, out=tmp_path / "v2")
    assert code == 2 and "is not the CI of the raw samples" in err


def test_work_and_throughput_must_be_what_the_shape_and_times_give(tmp_path, capsys):
    run = copy_run(H200_RUN, tmp_path / "run")
    edit(run, CASE, lambda d: d["throughput"].__setitem__("flops", d["throughput"]["flops"] * 2))
    code, _, err = check(capsys, run, out=tmp_path / "v")
    assert code == 2 and "throughput.flops" in err


def test_judges_read_statistics_recomputed_from_the_samples():
    results, note = load_results(H200_RUN)
    assert "recomputed from the raw samples" in note
    for c in results.cases:
        groups = [r.samples_ms for r in c.timing.repetitions]
        fresh = stats.summarize_repetitions(groups, [r.converged for r in c.timing.repetitions], seed=1234)
        assert c.timing.summary.median_ms == fresh.median_ms
        assert (c.timing.summary.ci_low_ms, c.timing.summary.ci_high_ms) == (fresh.ci_low_ms, fresh.ci_high_ms)
        assert c.throughput.tflops == pytest.approx(c.throughput.flops / (fresh.median_ms * 1e-3) / 1e12, rel=1e-12)


def test_the_torch_free_work_formula_is_the_workloads_own():
    from artifact.results.checks import attention_work
    from harness.workloads import get

    for workload, backend in (("sdpa", "flash"), ("triton_attention", "triton")):
        for causal in (False, True):
            for dtype in ("float16", "bfloat16", "float32"):
                spec = CaseSpec(workload, backend, 3, 5, 96, 64, dtype=dtype, causal=causal)
                wl = get(workload)
                assert attention_work(workload, spec) == (wl.flops(spec), wl.bytes_moved(spec))


# --------------------------------------------------------------------------- finding 4: NaN errors
def _corr_claim(bound: float) -> C.CorrectnessClaim:
    return C.CorrectnessClaim(id="c", kind="correctness", scope=Scope("any_gpu"), max_rel_error=bound,
                              cases=CaseSelector({"backend": ["flash"]}))


@pytest.mark.parametrize("error", [float("nan"), -1e-4, None, float("inf")])
def test_a_correctness_error_that_is_not_a_finite_nonnegative_number_fails(error):
    results, _ = load_results(H200_RUN)
    cases = [replace(c, correctness=replace(c.correctness, rel_error=error)) if c.case.backend == "flash" and c.case.seq == 512
             else c for c in results.cases]
    v = _corr_claim(1e-2).judge(replace(results, cases=cases))
    assert v.status == C.FAIL and "sdpa-flash-b32h8s512" in v.why, v.why
    honest = _corr_claim(1e-2).judge(results)
    assert honest.status == C.PASS and honest.measured == max(c.correctness.rel_error for c in results.cases
                                                               if c.case.backend == "flash")


def test_a_record_with_a_negative_error_or_a_contradiction_is_refused():
    from artifact.results.checks import check_case

    results, _ = load_results(H200_RUN)
    case = next(c for c in results.cases if c.correctness is not None)
    rel = f"cases/{case.case.case_id}.json"
    with pytest.raises(ArtifactError, match="correctness.rel_error"):
        check_case(replace(case, correctness=replace(case.correctness, rel_error=-0.1)), rel)
    with pytest.raises(ArtifactError, match="correctness.passed"):
        check_case(replace(case, correctness=replace(case.correctness, rel_error=1.0)), rel)
    # A null error (the output was not finite) is a failed case, and a readable record.
    failed = replace(case, status="failed", reason="output is not finite", timing=None, throughput=None,
                     correctness=Correctness("float64", None, case.correctness.tolerance, False, True))
    assert check_case(failed, rel).correctness.rel_error is None


# --------------------------------------------------------------------------- finding 5: inside the folder only
def test_every_manifest_entry_must_be_a_plain_path_inside_the_folder(tmp_path):
    run = copy_run(H200_RUN, tmp_path / "run")
    m = json.loads((run / "manifest.json").read_text())
    for entry, why in (("../env.json", "leaves the results folder"), ("/etc/hostname", "absolute"),
                       ("cases/../env.json", "leaves the results folder"), (".hidden", "a hidden file"),
                       ("cases\\\\x.json", "not a posix path"), ("a//b", "empty part")):
        bad = dict(m, files={**m["files"], entry: "0" * 64})
        (run / "manifest.json").write_text(json.dumps(bad))
        problems = storage.verify_manifest(run)
        assert problems and why in problems[0], (entry, problems)
    (run / "manifest.json").write_text(json.dumps(m))
    assert storage.verify_manifest(run) == []


def test_links_and_hidden_files_inside_the_folder_are_refused_too(tmp_path):
    run = copy_run(H200_RUN, tmp_path / "run")
    # A link to a file inside the folder is still a link: the folder holds plain files only.
    (run / "cases" / "alias.json").symlink_to(run / CASE)
    assert any("cases/alias.json: a symbolic link" in p for p in storage.verify_manifest(run))
    (run / "cases" / "alias.json").unlink()
    (run / ".notes").write_text("x\n")
    storage.write_manifest(run)  # the harness never hashes hidden files ...
    assert any(".notes: hidden entry" in p for p in storage.verify_manifest(run))  # ... and check refuses them


# --------------------------------------------------------------------------- finding 7: derived outputs
def test_a_resumed_run_does_not_hash_the_verdict_so_checks_can_repeat(tmp_path, capsys):
    run = copy_run(H200_RUN, tmp_path / "run")
    assert check(capsys, run)[0] == 0  # verdict.json and verdict.md now lie in the folder
    folder.write_manifest(run)  # what the launcher does after each attempt (run.json)
    listed = json.loads((run / "manifest.json").read_text())["files"]
    assert not any(k.startswith("verdict") for k in listed)
    # `harness bench --resume` knows no host outputs and hashes them; the check ignores them.
    storage.write_manifest(run)
    for _ in range(2):
        code, _, err = check(capsys, run)
        assert code == 0, err
    folder.write_manifest(run)
    for _ in range(3):
        code, _, err = check(capsys, run)
        assert code == 0, err
    # A manifest an older harness wrote after --resume did hash them: they are not results.
    m = json.loads((run / "manifest.json").read_text())
    m["files"]["verdict.json"] = "0" * 64
    (run / "manifest.json").write_text(json.dumps(m))
    assert check(capsys, run)[0] == 0


# --------------------------------------------------------------------------- finding 11: like with like
@pytest.fixture(scope="module")
def timed_ref(tmp_path_factory):
    """A reference from the four H200 runs (derive records how they were timed)."""
    root = tmp_path_factory.mktemp("timed")
    runs = sorted((REPO / "bench" / "h200").glob("machine-[BC]/run-*"))
    doc = derive.derive(runs, derive.DeriveOptions(name="timed", ratio_pairs=[("cudnn", "flash")]))
    path = root / "timed.yaml"
    derive.write_reference(doc, path)
    return path, doc


def test_derive_records_how_the_cases_were_timed(timed_ref):
    from artifact.claims.parts import TimingSpec

    path, doc = timed_ref
    assert doc["timing"] == {"method": "cuda_graph", "repeats": 1, "cache": ["warm"], "target_rel_ci": 0.01}
    ref = load_reference(path)
    assert ref.schema_version == 2 and ref.timing == TimingSpec("cuda_graph", 1, ["warm"], 0.01)
    assert {c.timing_spec is not None for c in ref.claims if c.kind in ("absolute", "ratio", "ranking", "scaling")} == {True}


def test_a_case_whose_graph_capture_failed_is_not_judged_as_comparable(timed_ref, tmp_path, capsys):
    run = copy_run(H200_RUN, tmp_path / "run")
    edit(run, CASE, lambda d: d["timing"].update(method="cuda_events", fallback_reason="graph capture failed: operation not permitted"))
    code, verdict, _ = check(capsys, run, timed_ref[0], tmp_path / "v")
    assert code == 1
    ref = load_reference(timed_ref[0])
    reading = {c.id for c in ref.claims if c.depends_on(backend="cudnn", seq=1024) and c.kind in C.CLAIM_KINDS
               and C.CLAIM_KINDS[c.kind].TIMED}
    bad = {c["claim_id"]: c for c in verdict["claims"] if c["not_comparable"]}
    assert set(bad) == reading and {"abs-cudnn-s1024", "ratio-cudnn-flash-s1024"} <= set(bad)
    for c in bad.values():
        assert c["status"] == "FAIL" and c["why"].startswith("not comparable: sdpa-cudnn-b32h8s1024")
        assert "timed with cuda_events (eager launches between CUDA events) (graph capture failed" in c["why"]
        assert "the reference with cuda_graph" in c["why"]
    # correctness, memory and the claims on other cases are judged as usual
    assert all(c["status"] == "PASS" for c in verdict["claims"] if c["claim_id"] not in bad)
    assert any("measured otherwise than the reference" in n for n in verdict["notes"])


def test_another_number_of_repetitions_is_not_comparable(timed_ref, tmp_path, capsys):
    run = copy_run(H200_RUN, tmp_path / "run")
    p = run / CASE
    case = load_record(p, CaseResult)
    s = case.timing.repetitions[0].samples_ms
    reps = [replace(case.timing.repetitions[0], samples_ms=s[i::3]) for i in range(3)]
    summary = stats.summarize_repetitions([r.samples_ms for r in reps], [True] * 3, seed=1234)
    case = replace(case, timing=replace(case.timing, repetitions=reps, summary=summary),
                   throughput=replace(case.throughput, tflops=case.throughput.flops / summary.median_ms / 1e9,
                                      gbps=case.throughput.bytes / summary.median_ms / 1e6))
    storage.write_record(p, case)
    storage.write_manifest(run)
    code, verdict, _ = check(capsys, run, timed_ref[0], tmp_path / "v")
    assert code == 1
    bad = [c for c in verdict["claims"] if c["not_comparable"]]
    assert bad and all("3 repetition(s), the reference 1" in c["why"] for c in bad)


def test_a_cold_cache_run_is_named_as_such(timed_ref, tmp_path, capsys):
    run = copy_run(H200_RUN, tmp_path / "run")
    p = run / CASE
    case = load_record(p, CaseResult)
    p.unlink()
    storage.write_case(run, replace(case, case=replace(case.case, cache="cold")))
    storage.write_manifest(run)
    code, verdict, _ = check(capsys, run, timed_ref[0], tmp_path / "v")
    assert code == 1
    abs_claim = next(c for c in verdict["claims"] if c["claim_id"] == "abs-cudnn-s1024")
    assert abs_claim["status"] == "FAIL" and "measured with a cold cache" in abs_claim["why"]


def test_an_older_reference_without_timing_still_loads_and_says_so(tmp_path, capsys):
    import yaml

    old = tmp_path / "old.yaml"
    doc = yaml.safe_load(H200_REF.read_text())
    doc.pop("timing", None)
    doc["schema_version"] = 1
    old.write_text(yaml.safe_dump(doc, sort_keys=False))
    ref = load_reference(old)
    assert ref.timing is None and ref.schema_version == 1
    code, verdict, _ = check(capsys, H200_RUN, old, tmp_path / "v")
    assert code == 0
    assert any("does not record how its cases were timed" in n for n in verdict["notes"])


def test_derive_gives_no_time_claim_to_a_case_timed_otherwise_in_one_run(tmp_path):
    runs = []
    for i, src in enumerate(sorted((REPO / "bench" / "h200").glob("machine-[BC]/run-*"))):
        dst = tmp_path / f"r{i}"
        shutil.copytree(src, dst)
        runs.append(dst)
    edit(runs[1], CASE, lambda d: d["timing"].update(method="cuda_events", fallback_reason="capture failed"))
    doc = derive.derive(runs, derive.DeriveOptions(name="t"))
    ids = {c["id"] for c in doc["claims"]}
    assert "abs-cudnn-s1024" not in ids and "mem-cudnn-s1024" in ids
    assert any(n["what"] == f"time claims on {Path(CASE).stem}" and "cuda_events (capture failed)" in n["why"]
               for n in doc["not_claimed"])


# --------------------------------------------------------------------------- finding 1: report
def test_report_shows_the_verdict_of_these_results_not_a_verdict_json_it_finds(tmp_path, capsys):
    good = copy_run(H200_RUN, tmp_path / "good")
    slow = scale_cases(good, tmp_path / "slow", 1.10, backend="cudnn", seq=1024)
    assert check(capsys, good)[0] == 0  # good/verdict.json: PASS
    assert check(capsys, slow, out=tmp_path / "elsewhere")[0] == 1
    shutil.copy(good / "verdict.json", slow / "verdict.json")
    shutil.copy(good / "verdict.md", slow / "verdict.md")
    assert main(["report", str(slow), "--out", str(tmp_path / "rep")]) == 0
    io = capsys.readouterr()
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Verdict against the reference: FAIL" in md and "## Verdict against the reference: PASS" not in md
    assert "verdict.json is out of date (it says PASS, these results judge FAIL" in io.err and "was ignored" in io.err
    assert "- [ ] verdict FAIL against h200" in md


def test_report_rejudges_against_the_reference_check_used(tmp_path, capsys, timed_ref):
    run = copy_run(H200_RUN, tmp_path / "run")
    assert check(capsys, run, timed_ref[0])[0] == 0
    assert main(["report", str(run)]) == 0
    io = capsys.readouterr()
    assert f"reference {timed_ref[0]}: the reference verdict.json names" in io.out
    md = (run / "report.md").read_text()
    assert "## Verdict against the reference: PASS" in md and "(timed, measured on NVIDIA H200" in md


def test_a_ceiling_must_be_its_work_over_its_time(tmp_path, capsys):
    # A lower matmul ceiling raises every efficiency share: it is derived data like a summary.
    run = copy_run(H200_RUN, tmp_path / "run")
    edit(run, "ceilings.json", lambda d: d["ceilings"][0].__setitem__("value", d["ceilings"][0]["value"] * 0.8))
    code, _, err = check(capsys, run, out=tmp_path / "v")
    assert code == 2 and "ceilings.json: ceilings[0] (matmul_tflops).value" in err
