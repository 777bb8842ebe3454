"""`--executor slurm` against a real single-node Slurm cluster (slurm/ensure_slurm.sh, started by
`make test`): CPU jobs run shards of the smoke profile natively; a failing job and a cancelled
job are each reported, and nothing is lost from the other shards."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from testkit import REPO

from harness import plan as planmod
from harness import storage

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="module")
def slurm():
    if shutil.which("sinfo") is None or subprocess.run(["sinfo", "-h"], capture_output=True).returncode != 0:
        msg = "no Slurm cluster (bash slurm/ensure_slurm.sh starts one)"
        if IN_CI:
            pytest.fail(f"CI=true needs the single-node Slurm cluster: {msg}", pytrace=False)
        pytest.skip(msg)
    pytest.importorskip("submitit")
    from artifact.launch import slurm_executor

    return slurm_executor


BASE = ["--runtime", "native", "--profile", "smoke", "--"]


def _ids(folder: Path) -> set[str]:
    return {p.stem for p in (folder / "cases").glob("*.json")}


def test_two_shards_measure_the_whole_plan_once(slurm, tmp_path):
    _, jobs = slurm.submit(2, BASE + ["--max-time", "0.2"], tmp_path, partition=None, cpus_per_task=1, cwd=REPO)
    outcome = slurm.wait(jobs, tmp_path, poll_s=1, log=lambda s: None, timeout_s=600)
    assert [s.state for s in outcome.shards] == ["COMPLETED", "COMPLETED"]
    assert all(s.ok for s in outcome.shards), [(s.exit_code, s.error) for s in outcome.shards]
    a, b = _ids(tmp_path / "shard-0"), _ids(tmp_path / "shard-1")
    want = {c.case_id for c in planmod.from_profile("smoke", "cpu").cases}
    assert a and b and not a & b and a | b == want
    for shard in ("shard-0", "shard-1"):
        assert storage.verify_manifest(tmp_path / shard) == []


def test_a_failing_job_is_reported_and_the_other_shard_is_kept(slurm, tmp_path):
    # Shard 1 asks the harness for an impossible setting: it exits 2 on its node.
    cmds = [slurm.shard_command(BASE + ["--max-time", "0.2"], tmp_path, 0, 2),
            slurm.shard_command(BASE + ["--dtype", "float64"], tmp_path, 1, 2)]
    _, jobs = slurm.submit_commands(cmds, tmp_path, partition=None, cpus_per_task=1, cwd=REPO)
    outcome = slurm.wait(jobs, tmp_path, poll_s=1, log=lambda s: None, timeout_s=600)
    good, failed = outcome.shards
    assert good.ok and _ids(tmp_path / "shard-0")
    assert not failed.ok and failed.exit_code == 2 and "exited 2" in failed.error, (failed.state, failed.error)


def test_a_cancelled_job_is_reported_and_the_other_shard_is_kept(slurm, tmp_path):
    # Shard 1 would sample for a long time; it is cancelled once it runs.
    _, jobs = slurm.submit(2, BASE + ["--max-time", "0.2"], tmp_path, partition=None, cpus_per_task=1, cwd=REPO)
    deadline = time.monotonic() + 120
    while slurm.state_of(jobs[1]) not in ("RUNNING",) + tuple(slurm.TERMINAL) and time.monotonic() < deadline:
        time.sleep(0.5)
    jobs[1].cancel(check=False)
    outcome = slurm.wait(jobs, tmp_path, poll_s=1, log=lambda s: None, timeout_s=600)
    good, cancelled = outcome.shards
    assert good.ok and _ids(tmp_path / "shard-0")
    assert cancelled.state == "CANCELLED" and not cancelled.ok and "ended CANCELLED" in cancelled.error
