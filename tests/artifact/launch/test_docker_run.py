"""`artifact run` end to end against the real engine and the real harness: the smoke profile in the
container, an interrupted run and its resume, the wall-clock timeout, the GPU request on a host
without the NVIDIA runtime, auto's fallback to native, `artifact gc` and `artifact doctor`."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testkit import REPO

from artifact import __version__
from artifact.launch import runtime_select
from artifact.launch.doctor import host_driver
from artifact.launch.runtime_docker import LABEL
from artifact.results.folder import RUN_FILE, load_run_info
from harness.storage import load_cases, load_env, verify_manifest

pytestmark = pytest.mark.docker


SMOKE_CASES = 9  # harness.plan's smoke profile on a CPU: 3 sequence lengths x 3 backends
# One tiny case for the paths where the measurement itself is not the point.
TINY = ["--", "--seq", "64", "--backends", "math", "--batch", "1", "--heads", "2", "--head-dim", "16",
        "--dtype", "float32", "--device", "cpu"]


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def _our_containers(client) -> list:
    return client.containers.list(all=True, filters={"label": LABEL})


def _assert_complete_folder(out: Path, runtime: str, n_cases: int) -> None:
    env = load_env(out)
    cases = load_cases(out)
    assert len(cases) == n_cases and all(c.status == "ok" for c in cases)
    assert all(c.timing.summary.median_ms > 0 for c in cases)
    assert verify_manifest(out) == []
    listed = set(json.loads((out / "manifest.json").read_text())["files"])
    assert {RUN_FILE, "env.json"} <= listed and sum(p.startswith("cases/") for p in listed) == n_cases
    run = load_run_info(out)
    assert run.runtime == runtime and run.status == "completed" and run.exit_code == 0
    assert run.launcher_version == __version__ and run.started_at <= run.finished_at
    if runtime == "docker":
        assert env.in_container is True  # (a native run's answer depends on where the tests run)
    # Results belong to whoever launched the run, whatever uid the container used.
    assert {p.stat().st_uid for p in out.rglob("*")} == {os.getuid()}


def test_smoke_in_docker_collects_a_self_describing_folder(docker_client, offline_image, artifact_cli, tmp_path):
    out = tmp_path / "smoke"
    proc = artifact_cli("run", "--runtime", "docker", "--profile", "smoke", "--out", str(out), timeout=600)
    assert proc.returncode == 0, proc.stderr
    _assert_complete_folder(out, "docker", SMOKE_CASES)
    run = load_run_info(out)
    image = docker_client.images.get(offline_image)
    assert run.image.id == image.id and run.image.ref == offline_image
    assert run.image.base_digest == image.labels["org.opencontainers.image.base.digest"]
    assert run.engine.engine_version == docker_client.version()["Version"]
    assert run.engine.api_version == docker_client.version()["ApiVersion"]
    assert run.runtime_reason == "requested with --runtime docker"
    assert run.harness_command[:6] == ["docker", "run", offline_image, "bench", "--out", "/results"]
    assert run.harness_command[6:8] == ["--profile", "smoke"]
    (attempt,) = run.attempts
    assert attempt.container_id and 0 < attempt.first_result_s < attempt.wall_s
    assert _our_containers(docker_client) == []


def _wait_for_cases(out: Path, n: int, proc: subprocess.Popen, limit_s: float = 300) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if len(list((out / "cases").glob("*.json"))) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before {n} cases: {proc.stderr.read()}")
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"no {n} case files in {limit_s} s")


@pytest.mark.parametrize("runtime, sig", [("docker", signal.SIGTERM), ("native", signal.SIGINT)])
def test_interrupted_run_keeps_finished_cases_and_resume_completes(docker_client, offline_image, artifact_cli,
                                                                   tmp_path, runtime, sig):
    out = tmp_path / "interrupted"
    extra = [] if runtime == "docker" else ["--", "--seq", "64,128,256", "--backends", "math,default",
                                            "--batch", "1", "--heads", "2", "--head-dim", "16", "--dtype", "float32",
                                            "--device", "cpu"]
    n_total = SMOKE_CASES if runtime == "docker" else 6
    cmd = [sys.executable, "-m", "artifact.cli", "run", "--runtime", runtime, "--out", str(out)]
    proc = subprocess.Popen(cmd + ([] if extra else ["--profile", "smoke"]) + extra, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for_cases(out, 2, proc)
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == 130
    advice = re.search(r"`(artifact run [^`]*)` completes the rest", proc.stderr.read())
    kept = {p.name: p.read_bytes() for p in (out / "cases").glob("*.json")}
    assert 2 <= len(kept) < n_total
    assert len(load_cases(out)) == len(kept)  # every kept file is whole
    assert verify_manifest(out) == []
    run = load_run_info(out)
    assert run.status == "interrupted" and run.exit_code == 130
    assert _our_containers(docker_client) == []

    # Resumed exactly as the interrupted run advised (issue 12: the advice left out --runtime docker).
    assert advice, "no resume advice printed"
    argv = shlex.split(advice.group(1))
    assert argv[argv.index("--runtime") + 1] == runtime
    proc = artifact_cli(*argv[1:], timeout=600)
    assert proc.returncode == 0, proc.stderr
    _assert_complete_folder(out, runtime, n_total)
    for name, data in kept.items():  # finished cases were kept, not measured again
        assert (out / "cases" / name).read_bytes() == data
    run = load_run_info(out)
    assert [(a.status, a.resumed) for a in run.attempts] == [("interrupted", False), ("completed", True)]


def test_existing_results_are_not_overwritten(docker_client, offline_image, artifact_cli, tmp_path):
    (tmp_path / "cases").mkdir(parents=True)
    (tmp_path / "cases" / "x.json").write_text("{}")
    proc = artifact_cli("run", "--runtime", "docker", "--out", str(tmp_path), timeout=60)
    assert proc.returncode == 2 and "--resume" in _one_error_line(proc)


def test_wall_clock_timeout_stops_and_removes_the_container(docker_client, offline_image, artifact_cli, tmp_path):
    out = tmp_path / "slow"
    proc = artifact_cli("run", "--runtime", "docker", "--profile", "smoke", "--out", str(out), "--timeout", "2",
                        timeout=300)
    assert proc.returncode == 124
    assert "exceeded --timeout 2 s" in _one_error_line(proc)
    run = load_run_info(out)
    assert run.status == "timeout" and run.attempts[0].wall_s < 60
    assert _our_containers(docker_client) == []
    assert verify_manifest(out) == []


@pytest.mark.skipif(host_driver()[0] is not None, reason="this host has an NVIDIA driver")
def test_gpu_request_without_nvidia_runtime_is_a_clear_error(docker_client, offline_image, artifact_cli, tmp_path):
    # The image we have (a GPU run would default to the CUDA image, not built here).
    proc = artifact_cli("run", "--runtime", "docker", "--gpus", "all", "--image", offline_image,
                        "--out", str(tmp_path / "gpu"), timeout=120)
    assert proc.returncode == 2
    line = _one_error_line(proc)
    assert "NVIDIA Container Toolkit is not installed" in line and "nvidia-ctk runtime configure" in line
    assert _our_containers(docker_client) == []
    run = load_run_info(tmp_path / "gpu")
    assert run.status == "failed" and "NVIDIA Container Toolkit" in run.attempts[0].error


@pytest.mark.skipif(host_driver()[0] is not None, reason="this host has an NVIDIA driver")
def test_auto_falls_back_to_native_and_says_why(docker_client, offline_image, artifact_cli, tmp_path):
    out = tmp_path / "auto"
    proc = artifact_cli("run", "--runtime", "auto", "--out", str(out), *TINY, timeout=300)
    assert proc.returncode == 0, proc.stderr
    # No NVIDIA driver here: auto says so in one line, without the toolkit advice meant for a GPU
    # host, and starts no preflight container (issue 12).
    assert f"runtime native: {runtime_select.NO_GPU_REASON}" in proc.stderr
    _assert_complete_folder(out, "native", 1)
    run = load_run_info(out)
    assert run.runtime_reason == runtime_select.NO_GPU_REASON and run.image is None and run.engine is None
    assert run.harness_command[:3] == [sys.executable, "-m", "harness.cli"]
    assert _our_containers(docker_client) == []


def test_plan_file_is_mounted_read_only(docker_client, offline_image, artifact_cli, tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text("schema_version: 1\ntiming: {max_time_s: 0.3}\n"
                    "defaults: {workload: sdpa, batch: 1, heads: 2, head_dim: 16, dtype: float32}\n"
                    "cases:\n  - {backend: [math, default], seq: 32}\n")
    out = tmp_path / "planned"
    proc = artifact_cli("run", "--runtime", "docker", "--plan", str(plan), "--device", "cpu", "--out", str(out),
                        timeout=300)
    assert proc.returncode == 0, proc.stderr
    _assert_complete_folder(out, "docker", 2)
    assert {c.case.seq for c in load_cases(out)} == {32}


def test_gc_removes_leftover_containers_by_label(docker_client, offline_image, artifact_cli):
    left = docker_client.containers.create(offline_image, ["sleep", "300"], labels={LABEL: "test-leftover"},
                                           network_mode="none")
    left.start()
    try:
        listed = artifact_cli("gc", "--dry-run", timeout=60)
        assert listed.returncode == 0 and left.name in listed.stdout
        proc = artifact_cli("gc", timeout=120)
        assert proc.returncode == 0 and left.name in proc.stdout
        assert _our_containers(docker_client) == []
    finally:
        try:
            left.remove(force=True)
        except Exception:
            pass


def test_doctor_explains_this_host(docker_client, offline_image, artifact_cli):
    proc = artifact_cli("doctor", timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = {l.split()[1]: l for l in proc.stdout.splitlines() if l.split()}
    assert lines["daemon"].startswith("OK") and docker_client.version()["Version"] in lines["daemon"]
    assert lines["image"].startswith("OK") and docker_client.images.get(offline_image).id[:19] in lines["image"]
    if host_driver()[0] is None:
        nvidia = next(l for l in proc.stdout.splitlines() if "NVIDIA runtime" in l)
        assert nvidia.startswith("WARN") and "NVIDIA Container Toolkit" in nvidia and "fix:" in nvidia


def test_gc_images_removes_only_untagged_images_of_this_project(docker_client, offline_image, artifact_cli):
    import io

    base = docker_client.images.get(offline_image).labels["org.opencontainers.image.base.name"]
    dockerfile = f"FROM {base}\nLABEL org.gpu-kernel-artifact.stage=install\nLABEL test.nonce={time.time_ns()}\n"
    stale, _ = docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), network_mode="none", rm=True)
    assert stale.tags == []  # untagged, like a superseded build stage
    # By default an untagged image younger than an hour is kept: it may be a stage of a build
    # still running on the same engine (another checkout's), which removing it would break.
    proc = artifact_cli("gc", "--images", timeout=120)
    assert proc.returncode == 0 and "older than 3600 s" in proc.stdout
    assert stale.id in {i.id for i in docker_client.images.list(all=True)}
    proc = artifact_cli("gc", "--images", "--min-age", "0", timeout=120)
    assert proc.returncode == 0 and "untagged image(s)" in proc.stdout
    remaining = {i.id for i in docker_client.images.list(all=True)}
    assert stale.id not in remaining
    assert docker_client.images.get(offline_image).id in remaining and docker_client.images.get(base).id in remaining
