"""The launcher's logic without a daemon: the container's lockdown, GPU requests, the runtime
decision, run.json, git facts, the out-folder rules, the build context, the driver check, and the
image's entrypoint."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import tarfile
from pathlib import Path

import pytest
from testkit import REPO

from artifact.errors import ArtifactError
from artifact.launch import doctor, image, runtime_docker, runtime_select
from artifact.launch import run as launch
from artifact.launch.docker_engine import EngineInfo
from artifact.launch.gitinfo import GitInfo, git_info
from artifact.launch.image import ImageInfo
from artifact.results.folder import RUN_FILE, load_run_info, write_run_info
from artifact.results.runinfo import Attempt, RunInfo
from harness import versions
from harness.storage import MANIFEST_FILE, verify_manifest, write_record


# --------------------------------------------------------------------------- GPU requests
@pytest.mark.parametrize("spec, expected", [
    (None, None), ("none", None), ("", None), ("all", []), ("0", ["0"]), ("0,1", ["0", "1"]),
    ("GPU-8f1c2e4a-1111-2222-3333-444455556666", ["GPU-8f1c2e4a-1111-2222-3333-444455556666"]),
])
def test_parse_gpus(spec, expected):
    assert runtime_docker.parse_gpus(spec) == expected


@pytest.mark.parametrize("bad", ["al", "0,,1", "gpu0", "1;rm"])
def test_parse_gpus_rejects_bad_specs(bad):
    with pytest.raises(ArtifactError, match="--gpus"):
        runtime_docker.parse_gpus(bad)


def test_device_requests_match_docker_run_gpus():
    (all_req,) = runtime_docker.device_requests([])
    assert all_req["Count"] == -1 and all_req["Capabilities"] == [["gpu"]] and not all_req["DeviceIDs"]
    (some,) = runtime_docker.device_requests(["1", "3"])
    assert some["DeviceIDs"] == ["1", "3"] and some["Capabilities"] == [["gpu"]]
    assert some["Count"] in (None, 0)
    assert runtime_docker.device_requests(None) == []


# --------------------------------------------------------------------------- the container's lockdown
def test_container_is_locked_down(tmp_path):
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text("cases: []\n")
    plan = runtime_docker.ContainerPlan(image="img:tag", command=["bench", "--out", "/results"], out=tmp_path,
                                        gpus=["0"], plan_file=plan_file, user="1000:1000", shm_size="2g")
    kw = plan.create_kwargs()
    assert kw["network_mode"] == "none" and kw["network_disabled"] is True
    assert kw["read_only"] is True and "/tmp" in kw["tmpfs"]
    assert kw["cap_drop"] == ["ALL"]
    assert any(opt.startswith("no-new-privileges") for opt in kw["security_opt"])
    assert kw["init"] is True and kw["user"] == "1000:1000" and kw["shm_size"] == "2g"
    limits = {u["Name"]: (u["Soft"], u["Hard"]) for u in kw["ulimits"]}
    assert limits == {"memlock": (-1, -1), "stack": (67108864, 67108864)}
    assert kw["labels"][runtime_docker.LABEL] and kw["labels"][runtime_docker.LABEL_RUN] == plan.run_id
    assert kw["volumes"][str(tmp_path.resolve())] == {"bind": "/results", "mode": "rw"}
    assert kw["volumes"][str(plan_file.resolve())] == {"bind": runtime_docker.PLAN_IN_CONTAINER, "mode": "ro"}
    assert kw["device_requests"][0]["DeviceIDs"] == ["0"]
    assert kw["name"] == f"gka-{plan.run_id}"


def test_container_without_gpu_requests_none_and_keeps_image_user(tmp_path):
    kw = runtime_docker.ContainerPlan(image="i", command=["true"], out=tmp_path).create_kwargs()
    assert kw["device_requests"] == [] and "user" not in kw


def test_refused_rlimit_is_recognised():
    msg = ("OCI runtime create failed: runc create failed: unable to start container process: error during "
           "container init: error setting rlimits for ready process: error setting rlimit type 8: operation not permitted")
    assert runtime_docker._refused_rlimit(Exception(msg)) == "memlock"
    assert runtime_docker._refused_rlimit(Exception("error setting rlimit type 3: operation not permitted")) == "stack"
    assert runtime_docker._refused_rlimit(Exception("no such image")) is None


# --------------------------------------------------------------------------- the runtime decision
class FakeProbes:
    def __init__(self, connect_error=None, variant="cuda", preflight_error=None):
        self.connect_error, self.variant, self.preflight_error = connect_error, variant, preflight_error
        self.preflights = []

    def probes(self):
        return runtime_select.Probes(connect=self.connect, torch_variant=lambda c, i: self.variant,
                                     preflight_gpu=self.preflight)

    def connect(self):
        if self.connect_error:
            raise ArtifactError(self.connect_error)
        return "client"

    def preflight(self, client, image, gpus):
        self.preflights.append(gpus)
        if self.preflight_error:
            raise ArtifactError(self.preflight_error)


def test_auto_without_daemon_runs_native_and_says_why():
    f = FakeProbes(connect_error="Docker daemon not reachable: socket /x does not exist")
    c = runtime_select.choose("auto", "img", None, False, f.probes())
    assert c.runtime == "native" and "socket /x does not exist" in c.reason


def test_auto_without_image_runs_native():
    c = runtime_select.choose("auto", "img:1", None, False, FakeProbes(variant=None).probes())
    assert c.runtime == "native" and "img:1 is not built" in c.reason


def test_auto_without_nvidia_runtime_runs_native_after_a_gpu_preflight():
    f = FakeProbes(preflight_error="starting a GPU preflight container: the NVIDIA Container Toolkit is not installed")
    c = runtime_select.choose("auto", "img", None, False, f.probes())
    assert c.runtime == "native" and "NVIDIA Container Toolkit" in c.reason and f.preflights == [[]]


def test_auto_with_cpu_image_on_gpu_host_runs_native():
    c = runtime_select.choose("auto", "img", None, False, FakeProbes(variant="cpu").probes())
    assert c.runtime == "native" and "CPU-only torch" in c.reason


def test_auto_with_everything_runs_docker_with_all_gpus():
    f = FakeProbes()
    c = runtime_select.choose("auto", "img", None, False, f.probes())
    assert (c.runtime, c.gpus, c.client) == ("docker", [], "client") and f.preflights == [[]]
    c = runtime_select.choose("auto", "img", ["2"], True, f.probes())
    assert c.gpus == ["2"] and f.preflights[-1] == ["2"]


def test_auto_with_gpus_none_skips_the_preflight():
    f = FakeProbes(variant="cpu")
    c = runtime_select.choose("auto", "img", None, True, f.probes())
    assert c.runtime == "docker" and c.gpus is None and f.preflights == []


def test_explicit_runtimes():
    assert runtime_select.choose("native", "img", None, False, FakeProbes().probes()).runtime == "native"
    with pytest.raises(ArtifactError, match="refuses connections"):
        runtime_select.choose("docker", "img", None, False, FakeProbes(connect_error="x refuses connections").probes())
    with pytest.raises(ArtifactError, match="artifact build --offline"):
        runtime_select.choose("docker", "img", None, False, FakeProbes(variant=None).probes())
    with pytest.raises(ArtifactError, match="--runtime"):
        runtime_select.choose("podman", "img", None, False, FakeProbes().probes())


# --------------------------------------------------------------------------- run.json
def _run_info(rng: random.Random, attempts: int = 2) -> RunInfo:
    stamp = lambda: f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T0{rng.randint(0, 9)}:00:00+00:00"  # noqa: E731
    return RunInfo(
        launcher_version="0.1.0", argv=["artifact", "run", "--out", "x"], options={"runtime": "auto", "timeout_s": 7200.0},
        runtime="docker", runtime_reason="auto: all there", harness_command=["docker", "run", "img", "bench"],
        image=ImageInfo(ref="img", id="sha256:" + f"{rng.getrandbits(256):064x}", size_bytes=rng.randint(1, 10**10),
                        base_digest="sha256:" + f"{rng.getrandbits(256):064x}", torch_variant="cpu"),
        engine=EngineInfo(engine_version="20.10.24", api_version="1.41", min_api_version="1.12", os="Debian",
                          kernel="6.1", runtimes=["runc"]),
        git=GitInfo(commit=f"{rng.getrandbits(160):040x}", dirty=rng.random() < 0.5, commit_time=rng.randint(1, 2**31)),
        host={"python": "3.11.2"}, started_at=stamp(), finished_at=stamp(), exit_code=0, status="completed",
        attempts=[Attempt(started_at=stamp(), finished_at=stamp(), wall_s=rng.uniform(1, 100), exit_code=rng.choice([0, 130]),
                          status=rng.choice(["completed", "interrupted"]), runtime="docker",
                          first_result_s=rng.uniform(0.5, 9), notes=["memlock refused"]) for _ in range(attempts)],
    )


def test_run_json_round_trips_and_is_hashed(tmp_path):
    rng = random.Random(7)
    info = _run_info(rng)
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "a.json").write_text(json.dumps({"x": rng.random()}))
    write_run_info(tmp_path, info)
    assert load_run_info(tmp_path) == info
    data = json.loads((tmp_path / RUN_FILE).read_text())
    assert data["schema_version"] == versions.current("run") and data["kind"] == "run"
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert set(manifest["files"]) == {"cases/a.json", RUN_FILE}
    assert verify_manifest(tmp_path) == []
    (tmp_path / RUN_FILE).write_text((tmp_path / RUN_FILE).read_text().replace('"docker"', '"native"', 1))
    assert verify_manifest(tmp_path) == ["run.json: sha256 differs from manifest.json (modified or truncated)"]


def test_damaged_run_json_is_a_one_line_error_naming_the_file(tmp_path):
    info = _run_info(random.Random(3))
    write_record(tmp_path / RUN_FILE, info)
    text = (tmp_path / RUN_FILE).read_text()
    (tmp_path / RUN_FILE).write_text(text[: len(text) // 2])
    with pytest.raises(ArtifactError) as exc:
        load_run_info(tmp_path)
    assert str(tmp_path / RUN_FILE) in str(exc.value) and "\n" not in str(exc.value)
    assert load_run_info(tmp_path / "nothing-here") is None


# --------------------------------------------------------------------------- git facts
def _git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "GIT_AUTHOR_DATE": "@1700000123 +0000",
                        "GIT_COMMITTER_DATE": "@1700000123 +0000"})


def test_git_info_commit_and_dirty_flag(tmp_path):
    assert git_info(tmp_path).commit is None and "not a git checkout" in git_info(tmp_path).unavailable
    _git(tmp_path, "init", "-q")
    (tmp_path / "f.txt").write_text("one\n")
    assert git_info(tmp_path).unavailable == "the repository has no commit yet"
    _git(tmp_path, "add", "f.txt")
    _git(tmp_path, "commit", "-q", "-m", "c")
    clean = git_info(tmp_path)
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert (clean.commit, clean.dirty, clean.commit_time) == (head, False, 1700000123)
    (tmp_path / "untracked.txt").write_text("x")
    assert git_info(tmp_path).dirty is False
    (tmp_path / "f.txt").write_text("two\n")
    assert git_info(tmp_path).dirty is True


# --------------------------------------------------------------------------- out folder and arguments
def test_existing_results_need_resume(tmp_path):
    launch.check_out_folder(tmp_path / "new", resume=False)
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "x.json").write_text("{}")
    with pytest.raises(ArtifactError, match="--resume"):
        launch.check_out_folder(tmp_path, resume=False)
    launch.check_out_folder(tmp_path, resume=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(ArtifactError, match="not a folder"):
        launch.check_out_folder(tmp_path / "file", resume=True)


def test_harness_arguments():
    opts = launch.RunOptions(profile="smoke", resume=True, device="cpu")
    assert launch.harness_args(opts, "/results", None, progress=False) == [
        "bench", "--out", "/results", "--profile", "smoke", "--device", "cpu", "--resume", "--no-progress"]
    opts = launch.RunOptions(harness_args=["--seq", "64", "--backends", "math"])
    assert launch.harness_args(opts, "o", None, progress=True) == ["bench", "--out", "o", "--seq", "64", "--backends", "math"]
    assert launch.harness_args(launch.RunOptions(), "o", None, True)[3:5] == ["--profile", "smoke"]
    assert launch.harness_args(launch.RunOptions(plan=Path("p.yaml")), "o", "/input/plan.yaml", True)[3:5] == [
        "--plan", "/input/plan.yaml"]


def test_bad_input_is_refused_before_anything_starts(tmp_path):
    with pytest.raises(ArtifactError, match="--profile: unknown profile 'huge'"):
        launch.validate(launch.RunOptions(profile="huge"))
    bad = tmp_path / "plan.yaml"
    bad.write_text("cases: [ {backend: flash, seq: 128\n")
    with pytest.raises(ArtifactError, match=r"plan.yaml: malformed YAML"):
        launch.validate(launch.RunOptions(plan=bad))
    with pytest.raises(ArtifactError, match="--device"):
        launch.validate(launch.RunOptions(device="tpu"))


# --------------------------------------------------------------------------- build context
def test_build_context_is_reproducible_and_filtered(tmp_path):
    rng = random.Random(11)
    wheels = tmp_path / "wh"
    wheels.mkdir()
    for name in ("a-1.0-py3-none-any.whl", "b-2.0-py3-none-any.whl"):
        (wheels / name).write_bytes(rng.randbytes(4096))
    first = image.build_context(REPO, 1700000000, wheels).read()
    os.utime(wheels / "a-1.0-py3-none-any.whl", (1, 1))  # mtimes must not matter
    second = image.build_context(REPO, 1700000000, wheels).read()
    assert first == second
    names = tarfile.open(fileobj=io.BytesIO(first)).getnames()
    assert "Dockerfile" in names and "docker/entrypoint.sh" in names and "harness/cli.py" in names
    assert "docker/wheelhouse/a-1.0-py3-none-any.whl" in names
    assert not any(n.startswith((".venv", "tests/", "artifact/", ".git/", "results/")) for n in names)
    assert not any("__pycache__" in n for n in names)
    members = tarfile.open(fileobj=io.BytesIO(first)).getmembers()
    assert {m.mtime for m in members} == {1700000000} and {m.uid for m in members} == {0}


def test_cuda_version_is_read_from_the_lock(tmp_path):
    lock = tmp_path / "requirements-cuda.lock"
    lock.write_text("numpy==2.4.6 \\\n    --hash=sha256:00\nnvidia-cuda-runtime-cu13==13.0.96 \\\n    --hash=sha256:11\n")
    assert image.cuda_version_of_lock(lock) == "13.0"
    assert image.cuda_version_of_lock(REPO / "docker" / "requirements-cpu.lock") == "none"


def test_locks_hash_every_requirement():
    from harness import lockcheck

    for lock in (REPO / "docker").glob("*.lock"):
        lines = [l for l in lock.read_text().splitlines() if "==" in l and not l.startswith("#")]
        parsed = lockcheck.read(lock).pins  # refuses a requirement without --hash=sha256:
        assert lines and len(parsed) == len(lines) and all(p.hashes for p in parsed), lock


# --------------------------------------------------------------------------- driver check
def test_driver_check():
    assert doctor.driver_check(None, None, "none").status == doctor.OK
    assert doctor.driver_check(None, None, "13.0").status == doctor.FAIL
    old = doctor.driver_check("535.104.05", "12.2", "13.0")
    assert old.status == doctor.FAIL and "580" in old.fix
    assert doctor.driver_check("580.95.05", "13.0", "13.0").status == doctor.OK
    assert doctor.driver_check("520.61.05", "12.0", "12.4").status == doctor.FAIL  # below 525.60 for 12.x
    assert doctor.driver_check("550.54.15", "12.4", "12.8").status == doctor.OK  # minor version compatibility


# --------------------------------------------------------------------------- the image's entrypoint
@pytest.fixture
def fake_harness_path(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "harness").write_text('#!/bin/sh\necho "harness $*"\n')
    (bin_dir / "harness").chmod(0o755)
    return f"{bin_dir}:/usr/bin:/bin"


@pytest.mark.parametrize("args, expected", [
    (["--profile", "smoke"], "harness bench --out /results --profile smoke"),
    ([], "harness bench --out /results"),
    (["--out", "/elsewhere", "--seq", "64"], "harness bench --out /elsewhere --seq 64"),
    (["env", "--out", "/results"], "harness env --out /results"),
    (["bench", "--profile", "full"], "harness bench --profile full"),
])
def test_entrypoint_dispatch(fake_harness_path, args, expected):
    proc = subprocess.run(["sh", str(REPO / "docker" / "entrypoint.sh"), *args], capture_output=True, text=True,
                          env={"PATH": fake_harness_path, "ARTIFACT_RESULTS": "/results"})
    assert proc.returncode == 0 and proc.stdout.strip() == expected


def test_entrypoint_runs_other_commands_as_given(fake_harness_path):
    proc = subprocess.run(["sh", str(REPO / "docker" / "entrypoint.sh"), "sh", "-c", "exit 7"],
                          env={"PATH": fake_harness_path})
    assert proc.returncode == 7


# --------------------------------------------------------------------------- the command line
@pytest.mark.parametrize("args, expected", [
    (["run", "--no-such-flag"], "--no-such-flag"),
    (["run", "--runtime", "native", "--profile", "huge"], "--profile: unknown profile 'huge'"),
    (["run", "--runtime", "podman"], "--runtime: 'podman' is not one of auto, docker, native"),
    (["run", "--runtime", "native", "--gpus", "zz"], "--gpus: 'zz' is not all, none"),
    (["run", "--runtime", "native", "--timeout", "-5"], "--timeout: must be positive"),
    (["build", "--variant", "rocm"], "--variant: 'rocm' is not one of cpu, cuda"),
])
def test_bad_command_lines_are_one_line_errors(artifact_cli, tmp_path, args, expected):
    proc = artifact_cli(*args, "--out", str(tmp_path / "o"), timeout=120) if args[0] == "run" else artifact_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], proc.stderr
    assert not (tmp_path / "o").exists()  # nothing was started, nothing was written


def test_gc_images_keeps_untagged_images_younger_than_min_age():
    # A stage of a build still running on the same engine is young; removing it broke that build.
    from datetime import datetime, timedelta, timezone
    from types import SimpleNamespace

    from artifact.launch import runtime_docker

    now = datetime.now(timezone.utc)
    stamp = lambda age: (now - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # noqa: E731
    images = {"old": SimpleNamespace(id="old", attrs={"Created": stamp(7200), "Size": 10}),
              "young": SimpleNamespace(id="young", attrs={"Created": stamp(60), "Size": 20}),
              "garbled": SimpleNamespace(id="garbled", attrs={"Created": "yesterday", "Size": 30})}
    removed: list[str] = []
    client = SimpleNamespace(images=SimpleNamespace(list=lambda filters: list(images.values()),
                                                    remove=lambda image_id, noprune: removed.append(image_id)))
    ids, size = runtime_docker.gc_images(client)
    assert ids == removed == ["old"] and size == 10
    removed.clear()
    ids, _ = runtime_docker.gc_images(client, min_age_s=30)
    assert sorted(ids) == ["old", "young"]  # an unreadable age counts as new: kept


def test_the_reproduce_resume_hint_names_the_command_that_was_run(monkeypatch, tmp_path):
    # `make reproduce` runs .venv-reproduce/bin/artifact, which is not on PATH: the hint names it.
    import shutil

    from artifact.commands import reproduce as commands_reproduce

    venv_exe = tmp_path / ".venv-reproduce" / "bin" / "artifact"
    venv_exe.parent.mkdir(parents=True)
    venv_exe.write_text("")
    monkeypatch.setattr(commands_reproduce.sys, "argv", [str(venv_exe), "reproduce"])
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert commands_reproduce.this_command() == str(venv_exe)
    monkeypatch.setattr(shutil, "which", lambda name: str(venv_exe))
    assert commands_reproduce.this_command() == "artifact"


def test_reproduce_resume_needs_the_folder(capsys):
    from artifact.cli import main

    assert main(["reproduce", "--resume"]) == 2
    assert "--resume: give the interrupted run's folder with --out" in capsys.readouterr().err
