"""Shared fixtures: the repository root, a real Docker engine, and the image built offline from
this checkout's Dockerfile (once per session).

Docker-backed tests must not quietly vanish in CI: when CI=true and the engine (or the offline
build) is unavailable, they fail; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import REPO  # noqa: E402 - tests/ is on sys.path here

IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"CI=true needs a working Docker engine for this test: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def docker_client():
    """A DockerClient for the engine `make test` started (docker/ensure_engine.sh)."""
    from artifact.errors import ArtifactError
    from artifact.launch.docker_engine import connect

    try:
        client = connect()
    except ArtifactError as exc:
        _unavailable(f"no Docker engine ({exc}); `bash docker/ensure_engine.sh` starts one")
    yield client
    client.close()


def run_artifact(*args: str, env: dict[str, str] | None = None, timeout: float = 900,
                 cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real `artifact` command line, in a subprocess, as a user would run it."""
    return subprocess.run([sys.executable, "-m", "artifact.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or REPO, env={**os.environ, **(env or {})})


def _built(ref: str, args: list[str], timeout: float) -> str:
    """Build an image with `artifact ARGS --quiet`; a failed build fails the run in CI (the Docker
    tests must not silently skip there) and skips elsewhere, saying why."""
    proc = run_artifact(*args, "--quiet", timeout=timeout)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        what = f"`artifact {' '.join(args)}` failed (exit {proc.returncode}): {tail}"
        if IN_CI:
            pytest.fail(what, pytrace=False)
        pytest.skip(what)
    assert f"built {ref} = sha256:" in proc.stdout, proc.stdout
    return ref


@pytest.fixture(scope="session")
def offline_image(docker_client) -> str:
    """The benchmark image, built offline (debootstrap base + wheelhouse, network off) from this
    checkout through `artifact build --offline`. Cached layers make a rebuild take seconds."""
    from artifact.launch.image import default_image

    return _built(default_image("cpu"), ["build", "--offline"], timeout=1800)


@pytest.fixture(scope="session")
def offline_cuda_image(docker_client) -> str:
    """The CUDA image (torch 2.11.0, CUDA 13.0), built offline like the CPU one. The first build on
    a machine downloads its wheels (2.6 GB) and takes minutes; then the cache makes it seconds."""
    from artifact.launch.image import default_image

    return _built(default_image("cuda"), ["build", "--offline", "--variant", "cuda"], timeout=3600)


@pytest.fixture(scope="session")
def cuda_wheelhouse() -> Path:
    """The CUDA lock's wheels for the image's Python (docker/wheelhouse.sh; cached, as the image build uses it)."""
    proc = subprocess.run(["bash", str(REPO / "docker" / "wheelhouse.sh")], capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "VARIANT": "cuda", "PYTHON": sys.executable})
    if proc.returncode != 0:
        _unavailable(f"docker/wheelhouse.sh VARIANT=cuda failed: {proc.stderr.strip().splitlines()[-1:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def own_daemon():
    """A second dockerd of the test's own (own socket, data and exec roots, no networking setup),
    stopped and removed afterwards: an empty engine, or one to stop, without touching the suite's."""
    import shutil
    import signal
    import time

    dockerd = shutil.which("dockerd")
    if dockerd is None or os.getuid() != 0:
        reason = "needs dockerd and root to start a private daemon"
        if IN_CI:
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    # A short path: unix socket paths are limited to 107 bytes.
    tempfile_dir = f"/tmp/gka-dockerd-{os.getpid()}"
    root = Path(tempfile_dir)
    root.mkdir(exist_ok=True)
    sock = root / "docker.sock"
    log = open(root / "dockerd.log", "w")
    proc = subprocess.Popen([dockerd, "--host", f"unix://{sock}", "--data-root", str(root / "data"),
                             "--exec-root", str(root / "exec"), "--pidfile", str(root / "dockerd.pid"),
                             "--bridge", "none", "--iptables=false", "--ip-masq=false"],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not sock.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    try:
        yield {"proc": proc, "socket": sock, "env": {"DOCKER_HOST": f"unix://{sock}"}}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        shutil.rmtree(tempfile_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def artifact_cli():
    """run_artifact(*args, env=..., timeout=...) -> CompletedProcess of the real CLI."""
    return run_artifact
