"""A disturbed machine is not a slow kernel (issue 17), host side: a case timed beside another
process is INVALID with exit code 4 and the evidence, its claims not judged (never 46 FAILs);
ceilings measured beside one judge nothing; a lower power limit and a throttled clock are named;
a time FAIL is attributed in cycle space; forged watch records are refused."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from resultsfolders import SHARED_WHY, as_schema4, failed_integrity, passing_integrity, shared_watch, with_machine
from test_integrity import H200_REF, RUN, VICTIM, VICTIM_ID, WHY, check

from artifact import verdict as verdictmod
from artifact.reference import load_reference
from artifact.results.folder import load_results
from artifact.results.machine_state import attribution


def shared_run(tmp_path: Path, name: str = "shared", **select) -> Path:
    folder = as_schema4(RUN, tmp_path / name)
    return with_machine(folder, watch=shared_watch(), status="invalid", reason=SHARED_WHY, **(select or VICTIM))


def test_a_case_timed_beside_another_process_makes_the_verdict_invalid_exit_4_not_fail(tmp_path, capsys):
    code, verdict, err, _ = check(capsys, shared_run(tmp_path), out=tmp_path / "v")
    assert code == 4 == verdictmod.EXIT_SHARED_GPU, err
    assert verdict["status"] == "INVALID" and verdict["cause"] == "shared_gpu"
    assert verdict["counts"]["FAIL"] == 0 and verdict["counts"]["PASS"] > 100
    on_victim = [c for c in verdict["claims"] if VICTIM_ID in c.get("cases", [])]
    assert on_victim and all(c["status"] == "SKIP" and c["why"].startswith("not judged: case ") for c in on_victim)
    note = verdict["notes"][0]
    assert note.startswith("the GPU was shared: another process ran on it (PID 424242 (python3): 714 MiB, 62% of the SMs)")
    assert "1 case(s)" in note and "Rerun on an idle GPU" in note
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("INVALID: ") and "the GPU was shared" in lines[0]
    md = (tmp_path / "v" / "verdict.md").read_text()
    assert "## Verdict: INVALID" in md and "exit code 4" in md


def test_every_case_shared_judges_no_claim_and_still_exits_4(tmp_path, capsys):
    folder = with_machine(as_schema4(RUN, tmp_path / "all"), watch=shared_watch(), status="invalid", reason=SHARED_WHY,
                          ceilings_watch=shared_watch())
    code, verdict, _, _ = check(capsys, folder)
    assert code == 4 and verdict["counts"]["FAIL"] == 0
    timed = {"absolute", "ratio", "scaling", "ranking", "efficiency"}
    assert all(c["status"] == "SKIP" for c in verdict["claims"] if c["kind"] in timed)
    assert "the ceilings (so no roofline or efficiency claim is judged)" in verdict["notes"][0]


def test_ceilings_measured_beside_another_process_judge_no_efficiency_claim(tmp_path, capsys):
    folder = with_machine(as_schema4(RUN, tmp_path / "roofs"), ceilings_watch=shared_watch())
    code, verdict, _, _ = check(capsys, folder)
    assert code == 4
    eff = [c for c in verdict["claims"] if c["kind"] == "efficiency"]
    assert eff and all(c["status"] == "SKIP" and "ceilings were measured while another process" in c["why"] for c in eff)
    # Contended ceilings are not the card's: the checker holds no case to them (an honest run's
    # 30 ok cases are held to the roofline otherwise).
    assert "30 ok case(s) held to the roofline" in load_results(as_schema4(RUN, tmp_path / "plain"))[1]
    assert "held to the roofline" not in load_results(folder)[1]


def test_the_kernel_comes_before_the_machine_exit_3_then_4_then_1_then_2_then_0(tmp_path, capsys):
    both = with_machine(as_schema4(RUN, tmp_path / "both", status="invalid", integrity=failed_integrity(), reason=WHY,
                                   backend="flash", seq=512),
                        watch=shared_watch(), status="invalid", reason=SHARED_WHY, **VICTIM)
    code, verdict, _, _ = check(capsys, both)
    assert code == 3 and verdict["cause"] == "integrity"
    assert verdict["notes"][0].startswith("1 case(s) invalid") and verdict["notes"][1].startswith("the GPU was shared")
    for combine in (verdictmod.worst,):
        assert combine([0, 1, 4, 2]) == 4 and combine([4, 3]) == 3 and combine([1, 2]) == 1
    shared = shared_run(tmp_path)
    assert check(capsys, shared, both)[0] == 3


def test_forged_watch_records_are_refused(tmp_path, capsys):
    ok_but_shared = with_machine(as_schema4(RUN, tmp_path / "a"), watch=shared_watch(), **VICTIM)
    code, _, err, _ = check(capsys, ok_but_shared)
    assert code == 2 and "ok although its watch saw another process" in err
    no_evidence = with_machine(as_schema4(RUN, tmp_path / "b", status="invalid", integrity=passing_integrity(),
                                          reason=SHARED_WHY, **VICTIM))
    code, _, err, _ = check(capsys, no_evidence)
    assert code == 2 and "its watch saw no other process" in err


def test_a_card_capped_below_the_references_power_limit_is_named_with_the_claims_it_touches(tmp_path, capsys):
    # h200.yaml records the enforced limit its runs ran under (derive-reference, from their env.json).
    ref = H200_REF
    assert load_reference(ref).hardware.power_limit_w == 700.0
    capped = with_machine(as_schema4(RUN, tmp_path / "capped"), power_limit_w=500.0)
    code, verdict, _, _ = check(capsys, capped, ref=ref)
    note = next(n for n in verdict["notes"] if n.startswith("power:"))
    assert code == 0 and "enforced power limit is 500 W" in note and "the reference runs' 700 W (71%)" in note
    assert "default is 700 W: lowered with nvidia-smi -pl" in note and re.search(r"its \d+ time claim\(s\) \(absolute, ", note)
    same = with_machine(as_schema4(RUN, tmp_path / "same"), power_limit_w=700.0)
    assert not any(n.startswith("power:") for n in check(capsys, same, ref=ref)[1]["notes"])


def test_a_throttled_case_is_named(tmp_path, capsys):
    w = shared_watch()
    w.shared, w.foreign, w.throttled, w.discarded_throttled = False, [], True, 50
    folder = with_machine(as_schema4(RUN, tmp_path / "hot"), watch=w, **VICTIM)
    code, verdict, _, _ = check(capsys, folder)
    assert code == 0
    assert any("1 case(s) kept samples with the SM clock below the throttle threshold (1485 MHz)" in n for n in verdict["notes"])


def test_attribution_in_cycle_space():
    assert "the clock explains 100%" in attribution(1.3, 1 / 1.3)  # flat cycles: the clock
    assert "it is the kernel" in attribution(1.3, 1.0)  # cycles rose with the time
    mixed = attribution(1.3, 0.88)
    assert "the clock explains 49% of it, the cycles the rest" in mixed, mixed
    assert attribution(1.0, 1.0).startswith("cycles per call 1x the reference's, time 1x")


def test_a_folder_without_watch_records_reads_as_before(tmp_path, capsys):
    # The committed schema-3/4 runs: no watch, no machine gate, judged exactly as before.
    folder = tmp_path / "old"
    shutil.copytree(RUN, folder)
    code, verdict, _, _ = check(capsys, folder)
    assert code == 0 and verdict["cause"] is None
