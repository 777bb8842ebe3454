"""`harness scaffold` and docs/own-kernel.md: every command of the tutorial, run as written on the
CPU in a fresh folder, ends in a derived reference and a PASS (issue 18, item 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import doc_commands

from harness.errors import HarnessError
from harness.scaffold import scaffold

PROGRAMS = {"harness": [sys.executable, "-m", "harness.cli"], "artifact": [sys.executable, "-m", "artifact.cli"],
            "python": [sys.executable]}


def test_the_tutorial_runs_as_written(tmp_path):
    steps = [argv for _, argv in doc_commands("docs/own-kernel.md") if argv[0] != "source"]
    assert [a[0] for a in steps][:2] == ["harness", "python"] and steps[-1][:2] == ["artifact", "check"]
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    outputs = []
    for argv in steps:
        proc = subprocess.run([*PROGRAMS[argv[0]], *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"{' '.join(argv)}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        outputs.append(proc.stdout + proc.stderr)
    assert "PASS" in outputs[-1]
    # The runs measured the scaffolded kernel through the public door, every case ok with its checks.
    cases = [json.loads(p.read_text()) for p in (tmp_path / "results" / "mykernel-new" / "cases").glob("*.json")]
    mine = [c for c in cases if c["case"]["workload"] == "mykernel:WORKLOAD"]
    assert len(mine) == 2 and all(c["status"] == "ok" and c["correctness"]["passed"] for c in mine)
    assert all(all(ch["passed"] is not False for ch in c["integrity"]["checks"]) for c in mine)
    reference = (tmp_path / "mykernel" / "reference.yaml").read_text()
    assert "mykernel:WORKLOAD" in reference and "kind: correctness" in reference


def test_scaffold_refuses_a_bad_name_and_an_existing_folder(tmp_path):
    with pytest.raises(HarnessError, match="not a module name"):
        scaffold("My-Kernel", tmp_path)
    with pytest.raises(HarnessError, match="not a module name"):
        scaffold("class", tmp_path)
    written = scaffold("k", tmp_path)
    assert sorted(p.name for p in written) == ["__init__.py", "plan.yaml", "test_k.py"]
    before = {p: p.read_text() for p in written}
    with pytest.raises(HarnessError, match="already exists"):
        scaffold("k", tmp_path)
    assert {p: p.read_text() for p in written} == before  # nothing overwritten


def test_the_cli_says_a_bad_name_in_one_line(tmp_path):
    proc = subprocess.run([*PROGRAMS["harness"], "scaffold", "9lives", "--in", str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "not a module name" in proc.stderr and "Traceback" not in proc.stderr
    assert not any(Path(tmp_path).iterdir())
