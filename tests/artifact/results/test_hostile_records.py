"""Hostile records and references that used to be misjudged (issue 19, item 6): each is refused in
one line with exit 2, within seconds, where before it passed, took minutes, or reached the
internal-error catch-all."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from testkit import H200_REF, H200_RUN

from artifact.cli import main
from artifact.results.folder import write_manifest

RUN = H200_RUN  # a fresh H200 that passes every claim of h200.yaml
CASE = "sdpa-cudnn-b32h8s1024d64-float16-full-warm-cuda.json"


def _edit_case(folder: Path, edit) -> None:  # noqa: ANN001
    p = folder / "cases" / CASE
    p.write_text(edit(p.read_text()))


def _check(capsys, folder: Path, ref: Path = H200_REF) -> tuple[int, str, float]:
    t = time.perf_counter()
    code = main(["check", str(folder), "--reference", str(ref), "--json", "--out", str(folder.parent / "v")])
    return code, capsys.readouterr().err, time.perf_counter() - t


def _duplicate_timing(text: str) -> str:
    data = json.loads(text)
    inner = json.dumps(data["timing"])
    return text.replace('"timing":', f'"timing": {inner}, "timing":', 1)


def _many_repetitions(text: str) -> str:
    data = json.loads(text)
    rep = data["timing"]["repetitions"][0]
    data["timing"]["repetitions"] = [dict(rep, samples_ms=[x]) for x in rep["samples_ms"]] * 20
    return json.dumps(data)


def _huge_sample(text: str) -> str:
    data = json.loads(text)
    data["timing"]["repetitions"][0]["samples_ms"][0] = 1e150
    return json.dumps(data)


def _no_memory(text: str) -> str:
    data = json.loads(text)
    data["memory"]["peak_allocated_bytes"] = 0
    return json.dumps(data)


@pytest.mark.parametrize("edit, words", [
    (_duplicate_timing, "the key 'timing' appears twice in one object"),
    (lambda t: t.replace('"reason": null', '"reason": "\\u001b[2J"', 1), "holds the control character U+001B"),
    (_many_repetitions, "timing.repetitions: "),
    (_huge_sample, "is not a time a kernel call takes"),
    (_no_memory, "memory.peak_allocated_bytes"),
])
def test_a_hostile_case_file_is_refused_in_one_line(tmp_path, capsys, edit, words):
    folder = tmp_path / "run"
    shutil.copytree(RUN, folder)
    _edit_case(folder, edit)
    write_manifest(folder)
    code, err, seconds = _check(capsys, folder)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert words in err and "internal error" not in err, err
    assert seconds < 30


def test_a_gpu_name_with_a_bidi_override_is_refused_not_read_as_another_gpu(tmp_path, capsys):
    folder = tmp_path / "run"
    shutil.copytree(RUN, folder)
    env = folder / "env.json"
    env.write_text(env.read_text().replace('"name": "NVIDIA H200"', '"name": "NVIDIA H200\\u202e"', 1))
    write_manifest(folder)
    code, err, _ = _check(capsys, folder)
    assert code == 2 and "U+202E" in err and err.count("\n") == 1, err


def test_a_reference_with_a_terminal_escape_in_a_claim_id_is_refused(tmp_path, capsys):
    ref = tmp_path / "ref.yaml"
    ref.write_text(H200_REF.read_text().replace("- id: abs-flash-s128", '- id: "abs-flash-s128\\e[2J"', 1))
    code, err, _ = _check(capsys, RUN, ref)
    assert code == 2 and "U+001B" in err and f"{ref}: line " in err, err


def test_out_inside_the_results_folder_is_refused_before_anything_is_written(tmp_path, capsys):
    folder = tmp_path / "run"
    shutil.copytree(RUN, folder)
    for inside in (folder / "cases", folder / "cases" / "v", folder / "sub"):
        code = main(["check", str(folder), "--reference", str(H200_REF), "--out", str(inside)])
        err = capsys.readouterr().err
        assert code == 2 and "is inside the results folder" in err and err.count("\n") == 1, err
    assert not (folder / "cases" / "verdict.json").exists() and not (folder / "sub").exists()
    # The folder itself (the default) and a folder outside it still work, and the check repeats.
    for _ in range(2):
        assert main(["check", str(folder), "--reference", str(H200_REF), "--out", str(folder)]) == 0
    capsys.readouterr()


def test_a_folder_of_runs_names_the_runs_inside(tmp_path, capsys):
    parent = tmp_path / "results"
    for name in ("20261207T1", "20261207T2"):
        shutil.copytree(RUN, parent / name)
    code = main(["check", str(parent)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"{parent}: not a results folder but a folder of 2 run(s): {parent / '20261207T1'}, {parent / '20261207T2'}" in err


def test_a_folder_a_run_is_still_writing_says_so_not_edited(tmp_path, capsys):
    from harness import storage

    folder = tmp_path / "run"
    shutil.copytree(RUN, folder)
    (folder / "run.json").unlink()  # `artifact run` writes it when the run ends
    write_manifest(folder)
    storage.write_manifest(folder, ("verdict.", "report."), in_progress=True)  # as the sweep writes it after a case
    (folder / "cases" / CASE).write_text((folder / "cases" / CASE).read_text() + " ")  # the next case being written
    code = main(["check", str(folder), "--reference", str(H200_REF)])
    err = capsys.readouterr().err
    assert code == 2 and "a run is still writing this folder" in err and "edit" not in err, err
    # The finished sweep's manifest says it is done: the same change is then an edit.
    storage.write_manifest(folder, ("verdict.", "report."))
    (folder / "cases" / CASE).write_text((folder / "cases" / CASE).read_text() + " ")
    code = main(["check", str(folder), "--reference", str(H200_REF)])
    assert code == 2 and "still writing" not in capsys.readouterr().err
