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

REPO = Path(__file__).resolve().parents[1]
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
    from artifact.docker_engine import connect
    from artifact.errors import ArtifactError

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


@pytest.fixture(scope="session")
def offline_image(docker_client) -> str:
    """The benchmark image, built offline (debootstrap base + wheelhouse, network off) from this
    checkout through `artifact build --offline`. Cached layers make a rebuild take seconds."""
    from artifact.image import default_image

    ref = default_image("cpu")
    proc = run_artifact("build", "--offline", "--quiet", timeout=1800)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        if IN_CI:
            pytest.fail(f"`artifact build --offline` failed (exit {proc.returncode}): {tail}", pytrace=False)
        pytest.skip(f"`artifact build --offline` failed (exit {proc.returncode}): {tail}")
    assert f"built {ref} = sha256:" in proc.stdout, proc.stdout
    return ref


@pytest.fixture(scope="session")
def artifact_cli():
    """run_artifact(*args, env=..., timeout=...) -> CompletedProcess of the real CLI."""
    return run_artifact
