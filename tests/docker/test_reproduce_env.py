"""`make reproduce`'s environment (docker/reproduce_env.sh, docker/reproduce_image.sh): the
hash-locked set on every host, the CPU lock without a GPU, the CUDA lock with one (here a faked
nvidia-smi on a host whose Docker has no NVIDIA runtime), and what pip does and does not check
when the locked packages are installed already (the H200 machines: no network, packages
installed system-wide)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from testkit import REPO

from artifact.launch import runtime_select
from harness import lockcheck

BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)  # the interpreter the test venv was made from
IN_CI = os.environ.get("CI", "").lower() == "true"
# One tiny native case: the environment is the point here, not the measurement.
TINY = ["--", "--seq", "64", "--backends", "math", "--batch", "1", "--heads", "2", "--head-dim", "16",
        "--dtype", "float32", "--device", "cpu"]


def _run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 900, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, **kw)


# --------------------------------------------------------------------------- pip's checks
def _wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel, made here so the test needs no index."""
    files = {f"{name}/__init__.py": f"VERSION = {version!r}\n".encode(),
             f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    files[f"{name}-{version}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


def test_pip_takes_installed_packages_without_rehashing_them(tmp_path):
    """The H200 path: the locked packages are installed system-wide and there is no network.
    A venv that sees the system's packages satisfies `pip install --no-index --require-hashes`
    from them; pip checks their versions but does not hash them again (a wrong hash passes), so
    the versions are checked again by harness/lockcheck.py and recorded."""
    wheel = _wheel(tmp_path, "gkalocked", "1.0")
    good = hashlib.sha256(wheel.read_bytes()).hexdigest()
    # "System-wide": the base interpreter's user site, which a --system-site-packages venv sees.
    env = {"PYTHONUSERBASE": str(tmp_path / "system"), "PIP_FIND_LINKS": "", "PIP_CONSTRAINT": "",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONPATH": str(REPO)}
    pip = ["-m", "pip", "--isolated"]
    proc = _run([BASE_PYTHON, *pip, "install", "--no-index", "--user", str(wheel)], env)
    assert proc.returncode == 0, proc.stderr
    venv = tmp_path / "venv"
    assert _run([BASE_PYTHON, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], env).returncode == 0
    python = str(venv / "bin" / "python")

    def install(pin: str, digest: str) -> subprocess.CompletedProcess:
        lock = tmp_path / "requirements.lock"
        lock.write_text(f"# pythons: {sys.version_info[0]}.{sys.version_info[1]}\n{pin} \\\n    --hash=sha256:{digest}\n")
        # The venv has no pip of its own: the system's runs in it (as on a host without ensurepip).
        return _run([python, *pip, "install", "--no-index", "--require-hashes", "-r", str(lock)], env)

    proc = install("gkalocked==1.0", good)
    assert proc.returncode == 0 and "Requirement already satisfied: gkalocked==1.0" in proc.stdout, proc.stdout + proc.stderr
    proc = install("gkalocked==1.0", "0" * 64)  # not the wheel's hash: pip does not look
    assert proc.returncode == 0 and "already satisfied" in proc.stdout, proc.stdout + proc.stderr
    proc = install("gkalocked==2.0", good)  # another version is not taken: no index, so no install
    assert proc.returncode != 0 and "gkalocked==2.0" in proc.stderr
    check = _run([python, "-m", "harness.lockcheck", "check", str(tmp_path / "requirements.lock")], env)
    assert check.returncode == 1 and "gkalocked 1.0 (locked 2.0)" in check.stderr


# --------------------------------------------------------------------------- make reproduce's venv
def _fake_gpu_host(tmp_path: Path) -> dict[str, str]:
    """An nvidia-smi that lists an H200: what reproduce_env.sh and reproduce_image.sh ask."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\ncase \"$*\" in\n"
                   "  *-L*) echo 'GPU 0: NVIDIA H200 (UUID: GPU-00000000-0000-0000-0000-000000000000)' ;;\n"
                   "  *name*) echo 'NVIDIA H200' ;;\n  *) echo 'NVIDIA-SMI (fake)' ;;\nesac\n")
    smi.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def _native_tiny_run(venv: Path, out: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return _run([str(venv / "bin" / "artifact"), "run", "--out", str(out), *args], env, cwd=REPO)


@pytest.fixture
def venv_path(tmp_path):
    """Where make reproduce's venv goes; removed afterwards (the CUDA one is 5 GB)."""
    path = tmp_path / "venv-reproduce"
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_cpu_host_gets_the_cpu_lock(tmp_path, venv_path):
    venv = venv_path
    proc = _run(["make", "-C", str(REPO), f"{venv}/.installed", f"REPRO_VENV={venv}", f"PYTHON={BASE_PYTHON}"],
                {"PATH": os.environ["PATH"]}, timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "requirements-cpu.lock (cpu host)" in proc.stderr and "venv size:" in proc.stderr
    assert sorted(p.name for p in venv.glob("requirements-*.lock")) == ["requirements-cpu.lock"]
    pins = lockcheck.read(REPO / "docker" / "requirements-cpu.lock").for_python("3.11")
    freeze = _run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"]).stdout
    installed = {lockcheck.normalize(p["name"]): p["version"] for p in json.loads(freeze)}
    assert installed["torch"] == pins["torch"].version == "2.13.0+cpu"
    assert not any(n.startswith("nvidia-cu") for n in installed)  # no CUDA libraries on a CPU host
    out = tmp_path / "run"
    proc = _native_tiny_run(venv, out, {}, "--runtime", "native", *TINY)
    assert proc.returncode == 0, proc.stderr
    assert "installed packages match requirements-cpu.lock" in proc.stderr
    run = json.loads((out / "run.json").read_text())
    env = json.loads((out / "env.json").read_text())
    for record in (run["package_lock"], env["package_lock"]):
        assert record["source"] == "requirements-cpu.in" and record["matches"] is True and record["python"] == "3.11"
        assert record["file"].endswith("requirements-cpu.lock")


@pytest.mark.slow
@pytest.mark.docker
def test_gpu_host_without_nvidia_runtime_gets_the_cuda_lock_and_runs_it_natively(tmp_path, venv_path, docker_client,
                                                                                  offline_image, cuda_wheelhouse):
    """A GPU host (a faked nvidia-smi) whose Docker has no NVIDIA Container Toolkit: no image is
    built, the venv is the CUDA lock (its wheels from the wheelhouse the CUDA image was built
    from: no network), and the run is native on exactly those packages, and says so."""
    env = {**_fake_gpu_host(tmp_path), "PIP_FIND_LINKS": str(cuda_wheelhouse)}
    venv = venv_path
    proc = _run(["make", "-C", str(REPO), "reproduce-image", f"REPRO_VENV={venv}", f"PYTHON={BASE_PYTHON}"],
                env, timeout=1500)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "requirements-cuda.lock (cuda host)" in proc.stderr
    assert "Docker has no NVIDIA Container Toolkit" in proc.stderr and "building the CUDA image" not in proc.stderr
    out = tmp_path / "run"
    proc = _native_tiny_run(venv, out, env, "--runtime", "auto", "--profile", "smoke")
    assert proc.returncode == 0, proc.stderr
    # The fake nvidia-smi does not fool NVML, which the launcher reads: on a real GPU host the
    # reason names the missing toolkit, here that the host has no NVIDIA GPU.
    assert "runtime native: auto: " in proc.stderr
    assert "installed packages match requirements-cuda.lock" in proc.stderr
    run = json.loads((out / "run.json").read_text())
    envrec = json.loads((out / "env.json").read_text())
    reason = run["runtime_reason"]
    assert run["runtime"] == "native" and ("NVIDIA Container Toolkit" in reason or reason == runtime_select.NO_GPU_REASON)
    for record in (run["package_lock"], envrec["package_lock"]):
        assert record["source"] == "requirements-cuda.in" and record["matches"] is True, record
    assert envrec["software"]["torch"] == "2.11.0" and envrec["torch_cuda_build"] == "13.0"
    check = _run([str(venv / "bin" / "artifact"), "check", str(out), "--reference",
                  str(REPO / "artifact" / "references" / "cpu-smoke.yaml")], cwd=REPO)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_python_the_lock_does_not_serve_is_a_one_line_error(tmp_path):
    fake = tmp_path / "python3.9"
    fake.write_text("#!/bin/sh\necho 3.9\n")
    fake.chmod(0o755)
    proc = _run(["bash", str(REPO / "docker" / "reproduce_env.sh"), str(tmp_path / "v")],
                {"PYTHON": str(fake), "REPRO_VARIANT": "cuda"})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: requirements-cuda.lock pins packages for Python 3.11, 3.12 and")
    assert "make reproduce PYTHON=python3.11" in proc.stderr and not (tmp_path / "v").exists()
