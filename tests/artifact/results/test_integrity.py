"""Certify only real work (issue 16), host side: a schema-4 case must carry integrity checks that
agree with its status; the checker holds every ok case to the roofline of the folder's own
ceilings and trusts no ok of the harness; a claim on an invalid case FAILs, required or not; an
invalid case makes the verdict INVALID, exit 3, with 3 > 1 > 2 > 0 across folders; the report
shows it; derive never claims from it; schema-3 folders read and judge as before."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from resultsfolders import as_schema4, failed_integrity, l4_run, passing_integrity, scale_cases
from testkit import H200_REF, H200_RUN, REPO

from artifact import claims as C
from artifact import derive
from artifact import verdict as verdictmod
from artifact.cli import main
from artifact.commands.check import _worst
from artifact.errors import ArtifactError
from artifact.launch import shards
from artifact.reference import load_reference
from artifact.report import side_by_side as report_gpus
from artifact.report import single as report
from artifact.results import folder as folder_mod
from artifact.results.folder import load_results
from artifact.results.integrity import case_bound, is_shared
from harness.integrity import roofline
from harness.records import CaseSpec

RUN = H200_RUN  # a fresh H200 that passes every claim of h200.yaml
CPU_RUN = REPO / "tests" / "artifact" / "data" / "cpu-smoke-runs" / "run-1"
VICTIM = {"backend": "cudnn", "seq": 1024}
VICTIM_ID = "sdpa-cudnn-b32h8s1024d64-float16-full-warm-cuda"
WHY = "invalid: timed replays' outputs wrong on a fresh input set (max rel. error 0.9, tolerance 0.002)"


def check(capsys, *folders: Path, ref: Path = H200_REF, out: Path | None = None, json_out: bool = True):
    argv = ["check", *map(str, folders), "--reference", str(ref), *(["--json"] if json_out else []),
            *(["--out", str(out)] if out else [])]
    code = main(argv)
    io = capsys.readouterr()
    verdict = json.loads(io.out) if json_out and len(folders) == 1 and io.out.strip() else None
    return code, verdict, io.err, io.out


def invalid_run(tmp_path: Path, name: str = "invalid") -> Path:
    """The fresh H200 run as schema 4: every case with passing checks, the victim invalid."""
    return as_schema4(RUN, tmp_path / name, status="invalid", integrity=failed_integrity(), reason=WHY, **VICTIM)


# --------------------------------------------------------------------------- the records (check_case)
def test_a_schema4_folder_whose_checks_passed_judges_as_the_schema3_one(tmp_path, capsys):
    code, verdict, err, _ = check(capsys, as_schema4(RUN, tmp_path / "run"), out=tmp_path / "v")
    assert code == 0, err
    assert verdict["status"] == "PASS" and verdict["counts"]["FAIL"] == 0


@pytest.mark.parametrize("status, integrity, words", [
    ("ok", None, "integrity: status ok without the integrity checks"),
    ("ok", failed_integrity("host_clock", 3.0, 1.5), "status: ok although its integrity check host_clock failed"),
    ("invalid", passing_integrity(), "integrity: status invalid but no integrity check failed"),
    ("invalid", None, "integrity: status invalid but no integrity check failed"),
])
def test_a_status_its_integrity_record_contradicts_is_refused_in_one_line(tmp_path, capsys, status, integrity, words):
    run = as_schema4(RUN, tmp_path / "run", status=status, integrity=integrity, reason=WHY if status == "invalid" else None, **VICTIM)
    code, verdict, err, _ = check(capsys, run, out=tmp_path / "v")
    assert code == 2 and verdict is None and not (tmp_path / "v").exists()
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert f"cases/{VICTIM_ID}.json: {words}" in err, err


def test_status_invalid_in_a_schema3_file_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(RUN, run)
    p = run / "cases" / f"{VICTIM_ID}.json"
    data = json.loads(p.read_text())
    data.update(status="invalid", reason=WHY)
    p.write_text(json.dumps(data, indent=1))
    folder_mod.write_manifest(run)
    code, _, err, _ = check(capsys, run, out=tmp_path / "v")
    assert code == 2 and "status: 'invalid' is not ok, skipped or failed (a schema 3 file)" in err, err


# --------------------------------------------------------------------------- the checker's own roofline
def committed_runs() -> list[Path]:
    """Every committed H100 and H200 results folder, and any other under bench/ with ceilings.json."""
    tops = {p.parent for base in ("h100", "h200") for p in (REPO / "bench" / base).rglob("manifest.json")}
    tops |= {p.parent for p in (REPO / "bench").rglob("ceilings.json")}
    # The adversarial suite's cheats are meant to be invalid; its honest plan is a committed run.
    adversarial = REPO / "bench" / "adversarial"
    tops = {t for t in tops if adversarial not in t.parents or t.name == "honest"}
    # A sharded run is judged through its top folder; its shards are read there.
    return sorted(t for t in tops if not any(shards.is_sharded(parent) for parent in t.parents if parent != REPO))


def test_the_checkers_roofline_raises_no_false_alarm_on_any_committed_run():
    checked = judged = 0
    for top in committed_runs():
        if "v0-shakedown" in top.parts:
            # Measured with a stand-in statistics module: refused on its summaries, before any roofline.
            with pytest.raises(ArtifactError, match="is not what the raw samples give"):
                load_results(top)
            continue
        sets = shards.load(top)[1] if shards.is_sharded(top) else [(str(top), *load_results(top))]
        for label, rs, _note in sets:
            judged += 1
            # A case timed beside another process on purpose (bench/machine_state/*/allowed) is the
            # machine's, judged apart (exit 4): the checker's roofline is about the kernel's.
            cases = [c for c in rs.cases if not is_shared(c)]
            assert [c.case.case_id for c in cases if c.status == "invalid"] == [], label
            # Schema 3: no integrity record, no invalid status, read exactly as before; schema 4
            # (the adversarial suite's honest run): every check passed or not run.
            assert all((c.schema_version <= 3 and c.integrity is None)
                       or (c.schema_version >= 4 and c.integrity is not None and not c.integrity.failed())
                       for c in cases), label
            for c in cases:
                b = case_bound(c, rs.ceilings, rs.env)
                if b is not None:
                    checked += 1
                    assert roofline.impossible(c.timing.summary.median_ms, b) is None, c.case.case_id
    # Not vacuous: 17 H100 and 10 H200 folders; every H200 run has ceilings (8 runs of 25-30 cases, and F's shards).
    assert judged >= 25 and checked >= 8 * 25, (judged, checked)


def test_a_case_whose_samples_are_1000x_faster_is_invalid_whatever_its_file_says(tmp_path):
    fast = scale_cases(RUN, tmp_path / "fast", 1e-3, **VICTIM)
    results, note = load_results(fast)
    by_id = {c.case.case_id: c for c in results.cases}
    victim = by_id.pop(VICTIM_ID)
    assert victim.status == "invalid"
    assert victim.reason.startswith("invalid (checker): faster than this GPU can do the work: median "), victim.reason
    assert all(c.status == "ok" for c in by_id.values())
    assert "30 ok case(s) held to the roofline" in note and "1 faster than possible (invalid)" in note
    # The harness's own verdict (schema 4, every check passed) is not taken on trust.
    s4, _ = load_results(as_schema4(fast, tmp_path / "s4"))
    assert next(c for c in s4.cases if c.case.case_id == VICTIM_ID).status == "invalid"
    # Twice as fast is still possible for this case on an H200 (the bound trips near 2.5x): no alarm.
    ten, _ = load_results(scale_cases(RUN, tmp_path / "ten", 0.5, **VICTIM))
    assert all(c.status == "ok" for c in ten.cases)


def test_an_impossible_case_exits_3_through_the_cli_with_one_line(tmp_path, capsys):
    fast = as_schema4(scale_cases(RUN, tmp_path / "fast", 1e-3, **VICTIM), tmp_path / "s4")
    code, verdict, err, _ = check(capsys, fast, out=tmp_path / "v")
    assert code == 3 and verdict["status"] == "INVALID" and verdict["exit_code"] == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"INVALID: {fast}: 1 case(s) invalid"), err
    assert VICTIM_ID in lines[0] and "the checker's own roofline: faster than this GPU can do the work" in lines[0]
    assert verdict["notes"][0] == lines[0].removeprefix(f"INVALID: {fast}: ")
    assert (tmp_path / "v" / "verdict.json").is_file()  # exit 3 is a verdict, written like exit 1


# --------------------------------------------------------------------------- claims
def _reads(claim: C.Claim, spec: CaseSpec) -> bool:
    return any(sel.case_id == spec.case_id if sel.case_id else sel.matches(spec) for sel in claim.selectors())


def test_a_claim_on_an_invalid_case_fails_required_or_not(tmp_path):
    results, _ = load_results(invalid_run(tmp_path))
    honest, _ = load_results(RUN)
    ref = load_reference(H200_REF)
    victim = next(c for c in results.cases if c.case.case_id == VICTIM_ID)
    reading = [c for c in ref.claims if _reads(c, victim.case)]
    assert {c.kind for c in reading} >= {"absolute", "ratio", "ranking", "scaling", "correctness"}
    for claim in reading:
        for variant in (claim, replace(claim, required=False)):
            v = variant.judge(results)
            assert v.status == C.FAIL, (claim.id, v.why)
            assert v.why == f"case {VICTIM_ID} is invalid: {WHY.removeprefix('invalid: ')}", v.why
            assert v.cases == [VICTIM_ID]
    others = [c for c in ref.claims if not _reads(c, victim.case)]
    assert others and all(c.judge(results).status == c.judge(honest).status for c in others)


def test_derive_never_claims_from_an_invalid_case(tmp_path):
    runs = [l4_run(tmp_path / "r0", 0), l4_run(tmp_path / "r1", 1)]
    spec = CaseSpec("sdpa", "cudnn", 32, 8, 512, 64, dtype="float16", device="cuda")
    bad = as_schema4(runs[1], tmp_path / "r1-invalid", status="invalid", integrity=failed_integrity(), reason=WHY,
                     backend="cudnn", seq=512)
    opts = derive.DeriveOptions(name="t", min_runs=2)
    honest = derive.derive(runs, opts)
    doc = derive.derive([runs[0], bad], opts)
    assert any(n["what"] == spec.case_id and f"invalid: {WHY.removeprefix('invalid: ')}" in n["why"] for n in doc["not_claimed"])
    out = tmp_path / "t.yaml"
    derive.write_reference(doc, out)
    claims = load_reference(out).claims
    assert claims and not [c.id for c in claims if _reads(c, spec)]
    assert len(claims) < len(honest["claims"])


# --------------------------------------------------------------------------- the exit contract
def test_exit_codes_combine_3_over_1_over_2_over_0():
    for combine in (verdictmod.worst, _worst):
        assert combine([0, 1, 3, 2]) == 3
        assert combine([1, 2, 0]) == 1
        assert combine([0, 2, 0]) == 2
        assert combine([0, 1, 0]) == 1
        assert combine([0, 0]) == 0
        assert combine([]) == 2


def test_several_folders_exit_by_precedence_through_the_cli(tmp_path, capsys):
    invalid = invalid_run(tmp_path)
    slow = scale_cases(RUN, tmp_path / "slow", 1.3, backend="flash")
    cpu = tmp_path / "cpu"
    shutil.copytree(CPU_RUN, cpu)
    assert check(capsys, slow)[0] == 1
    assert check(capsys, invalid)[0] == 3
    assert check(capsys, slow, invalid)[0] == 3
    code, _, err, _ = check(capsys, invalid, slow, cpu)
    assert code == 3 and f"INVALID: {invalid}:" in err
    assert check(capsys, slow, cpu)[0] == 1  # a failed claim before a folder no reference fits


def test_the_table_verdict_md_and_job_summary_show_invalid_and_why(tmp_path, capsys, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, _, err, out = check(capsys, invalid_run(tmp_path), out=tmp_path / "v", json_out=False)
    assert code == 3 and err.startswith("INVALID: ") and err.count("\n") == 1
    flat = " ".join(out.split())
    assert "INVALID: 1 case(s) invalid" in flat and VICTIM_ID in flat and "-> exit 3" in flat
    for text in (summary.read_text(), (tmp_path / "v" / "verdict.md").read_text()):
        assert "## Verdict: INVALID" in text and "**INVALID**: 1 case(s) invalid" in text
        assert f"{VICTIM_ID}: timed replays' outputs wrong" in text and "exit code 3" in text
        assert f"case {VICTIM_ID} is invalid" in text  # the claims that read it, FAIL with why
    back = verdictmod.load_verdict(tmp_path / "v" / "verdict.json")
    assert back.status == "INVALID" and back.exit_code == 3


# --------------------------------------------------------------------------- the report
def test_the_report_shows_invalid_cases_apart_and_the_integrity_of_the_others(tmp_path):
    results, note = load_results(invalid_run(tmp_path))
    ref = load_reference(H200_REF)
    v = verdictmod.judge_all(results, ref, note)
    text = report.build_report(results, note, ref, v, tmp_path / "out")
    assert "## Verdict against the reference: INVALID" in text
    assert f"| cudnn | 1024 | invalid: {WHY.removeprefix('invalid: ')} |" in text
    # Not in the comparisons or the paragraph as if it had run.
    assert not [ln for ln in text.splitlines() if ln.startswith("| 1024 |") and "cudnn" in ln]
    paragraph = text.split("## Publication paragraph", 1)[1]
    assert "at S=1024" in paragraph and "at S=1024 the fastest backend was cudnn" not in paragraph
    assert "The verdict is INVALID" in paragraph
    integrity = text.split("## Integrity", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in integrity.splitlines() if ln.startswith("| ") and not ln.startswith("| case |")]
    assert len(rows) == sum(c.status == "ok" for c in results.cases) > 20 and VICTIM_ID not in "".join(rows)
    assert "passed: max rel. error 0.0003 (tolerance 0.002)" in rows[0] and "passed: 2.4x the roofline time" in rows[0]
    assert "passed: host / events 1.01" in rows[0] and "| passed: ratio 1 |" in rows[0]
    assert f"- `{VICTIM_ID}`: timed replays' outputs wrong" in integrity and "failed: timed_outputs: FAILED" in integrity
    assert "- [ ] 1 case(s) invalid" in text


def test_the_report_of_a_schema3_run_says_once_that_integrity_was_not_recorded(tmp_path):
    results, note = load_results(RUN)
    text = report.build_report(results, note, None, None, tmp_path / "out")
    assert text.lower().count("not recorded (results predate the integrity checks, schema 3)") == 1
    assert "- [x] 0 case(s) invalid" in text


def test_the_side_by_side_report_names_the_invalid_case_and_gives_it_no_ratio(tmp_path):
    honest, _ = load_results(RUN)
    bad, _ = load_results(invalid_run(tmp_path))
    cols = [report_gpus.Column("honest", "H200", honest), report_gpus.Column("bad", "H200", bad)]
    text = report_gpus.build(cols, tmp_path / "out")
    row = next(ln for ln in text.splitlines() if ln.startswith("| cudnn | 1024 |"))
    assert row.endswith("| invalid | - |"), row
    assert f"- invalid in column 1: `{VICTIM_ID}`: timed replays' outputs wrong" in text
