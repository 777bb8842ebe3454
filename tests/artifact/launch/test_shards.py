"""One plan as several shards on one host (`artifact run --shards N`, `--gpus`): every shard a
complete results folder, one run.json naming them, one manifest over all; `artifact check` merges
split shards into one verdict; a killed shard is reported and the others keep their results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testkit import REPO

from artifact.errors import ArtifactError
from artifact.launch import shards
from harness import plan as planmod
from harness import storage

SMOKE_IDS = {c.case_id for c in planmod.from_profile("smoke", "cpu").cases}


def artifact(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "artifact.cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO)})


def ids(folder: Path) -> set[str]:
    return {p.stem for p in (folder / "cases").glob("*.json")}


def test_two_cpu_shards_split_the_plan_and_check_as_one_run(tmp_path):
    out = tmp_path / "run"
    proc = artifact("run", "--runtime", "native", "--gpus", "none", "--shards", "2", "--profile", "smoke", "--out", str(out),
                    "--", "--max-time", "0.3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((out / "run.json").read_text())
    assert record["kind"] == "sharded_run" and record["mode"] == "shard" and not record["concurrent"]
    assert [s["status"] for s in record["shards"]] == ["completed", "completed"]
    a, b = ids(out / "shard-0"), ids(out / "shard-1")
    assert a and b and not a & b and a | b == SMOKE_IDS
    assert storage.verify_manifest(out) == []  # one manifest over every shard's files
    assert (out / "shard-0" / "env.json").is_file() and (out / "shard-1" / "env.json").is_file()
    check = artifact("check", str(out))
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    again = artifact("check", str(out))  # the first check's outputs must not make the folder refuse
    assert again.returncode == 0, again.stderr[-2000:]
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["reference_name"] == "cpu-smoke" and verdict["counts"]["FAIL"] == 0
    # the report of a split run is one report of the merged cases
    report = artifact("report", str(out))
    assert report.returncode == 0, report.stderr[-2000:]
    assert artifact("check", str(out)).returncode == 0  # nor the report's
    md = (out / "report.md").read_text()
    import re

    rows = {(m[1], m[2]) for c in a | b for m in [re.match(r"sdpa-(\w+)-b\d+h\d+s(\d+)d", c)] if m}
    assert rows and all(f"| {backend} | {seq} |" in md for backend, seq in rows), md[:1500]


def test_a_killed_shard_is_reported_and_the_other_keeps_its_results(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "artifact.cli", "run", "--runtime", "native", "--gpus", "none", "--shards", "2",
           "--concurrent", "--profile", "smoke", "--out", str(out), "--", "--max-time", "0.3"]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-f", "--", f"--out {out}/shard-1"], capture_output=True, text=True).stdout.split()
        victim = int(found[0]) if found else None
        time.sleep(0.2)
    assert victim is not None, "shard 1 never started"
    os.killpg(os.getpgid(victim), signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 1, stderr[-2000:]
    assert "1 of 2 shard(s) did not complete" in stderr and "shard 1" in stderr
    record = json.loads((out / "run.json").read_text())
    good, killed = record["shards"]
    assert good["status"] == "completed" and good["exit_code"] == 0
    assert killed["status"] == "failed" and killed["exit_code"] != 0
    assert ids(out / "shard-0") and storage.verify_manifest(out / "shard-0") == []


def test_devices_are_named_or_refused():
    assert shards.parse_devices("0,1") == ["0", "1"] and shards.parse_devices("none") is None
    for bad in ("0,0", "a,b", ","):
        with pytest.raises(ArtifactError, match="--gpus"):
            shards.parse_devices(bad)


def test_each_shard_is_pinned_to_its_gpu(tmp_path):
    cmd, env = shards.shard_args(["--profile", "full"], tmp_path, 1, 2, device="1", each=False, runtime="native")
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and cmd[-2:] == ["--shard", "1/2"]
    cmd, env = shards.shard_args(["--profile", "full"], tmp_path, 1, 2, device="1", each=True, runtime="docker")
    assert "CUDA_VISIBLE_DEVICES" not in env or env.get("CUDA_VISIBLE_DEVICES") == os.environ.get("CUDA_VISIBLE_DEVICES")
    assert cmd[cmd.index("--gpus") + 1] == "1" and "--shard" not in cmd


def test_split_shards_of_different_gpus_are_not_merged(tmp_path):
    from artifact.results.folder import load_results

    a, _ = load_results(REPO / "bench" / "h200" / "machine-D" / "run-D1")
    b, _ = load_results(REPO / "bench" / "h100" / "fresh-check" / "run-F1")
    with pytest.raises(ArtifactError, match="different hardware"):
        shards.merge([a, b], tmp_path)


@pytest.mark.docker
def test_cpu_container_shards(tmp_path, offline_image):
    out = tmp_path / "run"
    proc = artifact("run", "--runtime", "docker", "--gpus", "none", "--shards", "2", "--profile", "smoke",
                    "--image", offline_image, "--out", str(out), "--", "--max-time", "0.3", timeout=1200)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((out / "run.json").read_text())
    assert [s["status"] for s in record["shards"]] == ["completed", "completed"]
    for i in (0, 1):
        run = json.loads((out / f"shard-{i}" / "run.json").read_text())
        assert run["runtime"] == "docker"
    assert ids(out / "shard-0") | ids(out / "shard-1") == SMOKE_IDS
    assert artifact("check", str(out)).returncode == 0


def test_cpu_serial_default_rests_on_the_committed_measurement():
    """The CPU default (one shard after another) and the figures in bench/shards/NOTES.md come from
    the committed concurrency measurement, not from memory."""
    import statistics

    from artifact.commands import launch as commands_launch

    data = json.loads((REPO / "bench" / "shards" / "cpu-ci" / "concurrency.json").read_text())
    notes = (REPO / "bench" / "shards" / "NOTES.md").read_text()
    assert data["distorts"] and "one after another" in commands_launch.CPU_SERIAL_NOTE
    assert f"{data['alone_noise']:.0%}" in notes
    shift = statistics.median(data["beside_another_shard_ms"]) / statistics.median(data["alone_ms"])
    assert f"{shift:.1f}x" in notes
