"""Daemon errors become one line with the fix: known daemon messages, and an engine that is not
there (no socket), has stopped (a socket nobody listens on: what a stopped daemon leaves behind),
or answers with an error. None of these needs a running engine."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
import requests

import docker
from artifact.errors import ArtifactError
from artifact.launch import docker_engine

KNOWN = [
    ('could not select device driver "" with capabilities: [[gpu]]', "NVIDIA Container Toolkit is not installed"),
    ("Error response from daemon: unknown or invalid runtime name: nvidia", "no `nvidia` runtime"),
    ("nvidia-container-cli: requirement error: unsatisfied condition: cuda>=13.0, please update your driver",
     "needs CUDA 13.0"),
    ("nvidia-container-cli: initialization error: nvml error: driver not loaded", "driver is not loaded"),
    ("nvidia-container-cli: device error: 7: unknown device", "GPU 7 does not exist"),
    ("No such image: gpu-kernel-artifact:9.9-cpu", "gpu-kernel-artifact:9.9-cpu is not on this machine"),
    ("pull access denied for nvidia/cuda, repository does not exist", "registry refused the pull"),
    ('Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: no such host', "cannot reach the registry"),
    ("write /var/lib/docker/tmp/x: no space left on device", "disk is full"),
]


@pytest.mark.parametrize("message, expected", KNOWN)
def test_known_daemon_errors_are_explained(message, expected):
    text = docker_engine.explain(message)
    assert text is not None and expected in text and "\n" not in text


def test_unknown_errors_are_not_guessed():
    assert docker_engine.explain("something nobody has seen before") is None


def test_api_errors_inside_translated_become_one_line():
    response = requests.Response()
    response.status_code = 500
    exc = docker.errors.APIError("500 Server Error", response=response,
                                 explanation='could not select device driver "" with capabilities: [[gpu]]')
    with pytest.raises(ArtifactError) as err:
        with docker_engine.translated("starting the container"):
            raise exc
    assert str(err.value).startswith("starting the container: the NVIDIA Container Toolkit")
    with pytest.raises(ArtifactError, match="Docker said: boom happened"):
        with docker_engine.translated("doing x"):
            raise docker.errors.APIError("500", response=response, explanation="boom\nhappened")


def test_missing_socket(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    with pytest.raises(ArtifactError) as err:
        docker_engine.connect(timeout=5)
    assert "does not exist" in str(err.value) and "dockerd" in str(err.value)


@pytest.fixture
def stale_socket(tmp_path):
    """A socket file with nobody listening: what a stopped (or killed) dockerd leaves behind."""
    path = tmp_path / "docker.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()
    return path


def test_stopped_daemon(monkeypatch, stale_socket):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{stale_socket}")
    with pytest.raises(ArtifactError) as err:
        docker_engine.connect(timeout=5)
    assert "refuses connections, so the daemon has stopped" in str(err.value)


def test_stopped_daemon_through_the_cli(stale_socket, artifact_cli):
    env = {"DOCKER_HOST": f"unix://{stale_socket}"}
    for args in (["run", "--runtime", "docker", "--out", str(stale_socket.parent / "out")], ["gc"]):
        proc = artifact_cli(*args, env=env, timeout=60)
        assert proc.returncode == 2, proc.stderr
        errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
        assert len(errors) == 1 and "daemon has stopped" in errors[0] and "Traceback" not in proc.stderr
    doc = artifact_cli("doctor", env=env, timeout=60)
    assert doc.returncode == 2
    assert any(l.startswith("FAIL") and "daemon" in l and "fix:" in l for l in doc.stdout.splitlines()), doc.stdout


def test_permission_denied_is_explained(monkeypatch, tmp_path):
    # Root ignores file modes, so the kernel's answer is simulated at the one place it enters.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    (tmp_path / "docker.sock").write_text("")
    err = docker_engine._connection_error(
        docker.errors.DockerException("Error while fetching server API version: "
                                      "('Connection aborted.', PermissionError(13, 'Permission denied'))"))
    assert "permission denied" in str(err) and "usermod -aG docker" in str(err)


def test_missing_sdk_is_a_one_line_error():
    code = ("import sys; sys.modules['docker'] = None\n"
            "from artifact.launch import docker_engine\n"
            "from artifact.errors import ArtifactError\n"
            "try:\n    docker_engine.connect()\n"
            "except ArtifactError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "Docker SDK for Python is not installed" in out and "pip install docker" in out


def test_api_version_comparison():
    assert docker_engine.api_at_least("1.41") and docker_engine.api_at_least("1.40")
    assert not docker_engine.api_at_least("1.39") and not docker_engine.api_at_least(None)
    assert docker_engine.api_at_least("2.0")
