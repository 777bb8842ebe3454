"""What misled or annoyed a new reviewer (issue 12), one test per item: a mistaken reference,
a wall of SKIP rows, interrupted and foreign folders, advice that does not parse, noise on a
CPU-only host, and the Docker engine script's decision."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REFS = REPO / "artifact" / "references"
CPU_RUN = Path(__file__).resolve().parent / "data" / "cpu-smoke-runs" / "run-1"
H200_RUN = REPO / "bench" / "h200" / "machine-D" / "run-D1"


def cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "artifact.cli", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, cwd=REPO)


def copy_run(src: Path, tmp_path: Path, name: str = "run") -> Path:
    dst = tmp_path / name
    shutil.copytree(src, dst)
    for f in dst.glob("verdict*"):
        f.unlink()
    return dst


# --------------------------------------------------------------------------- a mistaken --reference
def test_mistaken_reference_says_so_once_and_keeps_the_earlier_verdict(tmp_path):
    run = copy_run(CPU_RUN, tmp_path)
    assert cli("check", str(run)).returncode == 0
    before = (run / "verdict.md").read_text()
    assert "## Verdict: PASS" in before

    wrong = cli("check", str(run), "--reference", str(REFS / "h100.yaml"))
    assert wrong.returncode == 2
    lines = [ln for ln in (wrong.stdout + wrong.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: no claim of h100 applies"), lines
    assert (run / "verdict.md").read_text() == before
    assert sorted(p.name for p in run.glob("verdict*")) == ["verdict.json", "verdict.md"]

    report = cli("report", str(run), "--reference", str(REFS / "h100.yaml"), "--out", str(tmp_path / "rep"))
    assert report.returncode == 2 and "no claim of h100 applies" in report.stderr
    assert not (tmp_path / "rep" / "report.md").exists()


def test_a_second_applicable_reference_gets_its_own_verdict_files(tmp_path):
    run = copy_run(H200_RUN, tmp_path)
    assert cli("check", str(run), "--reference", str(REFS / "h200.yaml")).returncode == 0
    first = (run / "verdict.json").read_text()
    assert cli("check", str(run), "--reference", str(REFS / "h100.yaml")).returncode == 0
    assert (run / "verdict.json").read_text() == first
    assert json.loads((run / "verdict-h100.json").read_text())["reference_name"] == "h100"


# --------------------------------------------------------------------------- SKIPs grouped by reason
def test_skips_are_grouped_by_reason_behind_the_judged_rows(tmp_path):
    run = copy_run(H200_RUN, tmp_path)
    res = cli("check", str(run), "--reference", str(REFS / "h100.yaml"), env={"COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    scope = "30 claims out of scope: claim is for NVIDIA H100 80GB HBM3; results ran on NVIDIA H200"
    md = (run / "verdict.md").read_text()
    head = md.split("\n\n")[1]
    assert head.startswith("Checked 19 of 49 claims of h100") and scope in head
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and "**" in ln]
    assert [r for r in rows if "**SKIP**" in r] == [rows[-1]] and "| 30 claims |" in rows[-1]
    assert len(rows) == 19 + 1
    console = res.stdout
    assert console.count("SKIP ") <= 2 and "30 claims" in console and console.lstrip().startswith("Checked 19 of 49")
    report = cli("report", str(run), "--reference", str(REFS / "h100.yaml"), "--out", str(tmp_path / "rep"))
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "rep" / "report.md").read_text()
    assert scope in text and text.count("| **SKIP** |") == 1
