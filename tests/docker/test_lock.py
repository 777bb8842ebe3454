"""The locks under docker/: every manylinux tag the image's glibc accepts, generated from their
.in files, and the CUDA lock agreeing with the software the shipped GPU references were measured
with (their `environment:` section), less the Python minor version."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import yaml
from testkit import REPO

from harness import lockcheck

DOCKER = REPO / "docker"
# The interpreter and this project itself are recorded in env.json but are not lock entries.
NOT_LOCKED = {"python", "harness", "gpu-kernel-artifact"}
UNMATCHED_RE = re.compile(r"^# unmatched: (\S+)==(\S+) on python (\d+\.\d+): (.+)$", re.MULTILINE)


def _lock_py():
    spec = importlib.util.spec_from_file_location("docker_lock", DOCKER / "lock.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def gpu_references() -> list[tuple[Path, dict]]:
    """Every shipped reference measured on a GPU that records its environment."""
    found = []
    for path in sorted((REPO / "artifact" / "references").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text()) or {}
        env = doc.get("environment") or {}
        if (doc.get("hardware") or {}).get("device") == "cuda" and env.get("software"):
            found.append((path, env))
    return found


def differences(env: dict, lock: lockcheck.Lock, lock_text: str) -> list[str]:
    """What the lock pins differently from a reference's recorded environment, per Python it serves.

    A difference is allowed only where the lock declares it (`# unmatched: NAME==VERSION on python
    X.Y: why`), for exactly the version the reference ran, and only on a Python other than the
    reference's: the Python minor version is the one thing the image may not share with it."""
    software = env.get("software") or {}
    ref_python = ".".join(str(software.get("python") or "").split(".")[:2])
    declared = {(lockcheck.normalize(n), v, py) for n, v, py, _ in UNMATCHED_RE.findall(lock_text)}
    found = []
    for python in lock.pythons:
        pins = lock.for_python(python)
        for name, version in sorted(software.items()):
            if name in NOT_LOCKED or version is None:
                continue
            pin = pins.get(lockcheck.normalize(name))
            if pin is None:
                found.append(f"Python {python}: {name} {version} is recorded but not locked")
            elif pin.version != str(version):
                if python != ref_python and (lockcheck.normalize(name), str(version), python) in declared:
                    continue
                found.append(f"Python {python}: {name} is locked at {pin.version}, the reference ran {version}")
        runtime = next((p for n, p in pins.items() if n.startswith("nvidia-cuda-runtime")), None)
        for key in ("torch_cuda_build", "cuda_runtime_version"):
            want = env.get(key)
            if want and (runtime is None or not runtime.version.startswith(f"{want}.")):
                found.append(f"Python {python}: {key} {want}, the lock's CUDA runtime is "
                             f"{runtime.version if runtime else 'missing'}")
        cudnn = env.get("cudnn_version")
        if cudnn:
            v = int(cudnn)  # cuDNN 9: major * 10000 + minor * 100 + patch
            want = f"{v // 10000}.{v % 10000 // 100}.{v % 100}."
            pin = next((p for n, p in pins.items() if n.startswith("nvidia-cudnn")), None)
            if pin is None or not pin.version.startswith(want):
                found.append(f"Python {python}: cuDNN {cudnn} ({want[:-1]}), the lock has {pin.version if pin else 'none'}")
    return found


def test_the_cuda_lock_agrees_with_every_gpu_reference():
    references = gpu_references()
    assert references, "no shipped GPU reference records its environment: nothing to hold the CUDA lock to"
    path = DOCKER / "requirements-cuda.lock"
    lock, text = lockcheck.read(path), path.read_text()
    assert set(lock.pythons) >= {"3.11"}
    for ref, env in references:
        assert differences(env, lock, text) == [], ref.name


def test_a_difference_fails_the_comparison():
    path = DOCKER / "requirements-cuda.lock"
    lock, text = lockcheck.read(path), path.read_text()
    _, env = gpu_references()[0]
    other = {**env, "software": {**env["software"], "torch": "2.12.0", "triton": "3.7.0"}, "cudnn_version": "91000"}
    found = differences(other, lock, text)
    assert any("torch is locked at 2.11.0, the reference ran 2.12.0" in f for f in found)
    assert any("triton" in f for f in found) and any("cuDNN 91000" in f for f in found)
    # A declared mismatch covers only the Python it names, and only the version it names.
    numpy_elsewhere = {**env, "software": {**env["software"], "numpy": "2.5.3"}}
    assert any("numpy is locked at 2.4.6, the reference ran 2.5.3" in f for f in differences(numpy_elsewhere, lock, text))
    same_python = {**env, "software": {**env["software"], "python": "3.11.9"}}
    assert any(f.startswith("Python 3.11: numpy") for f in differences(same_python, lock, text))


def test_the_lock_serves_the_image_and_the_gpu_machines():
    lock = lockcheck.read(DOCKER / "requirements-cuda.lock")
    for python in ("3.11", "3.12"):  # bookworm's Python; the H200 machines' Python
        pins = {n: p.version for n, p in lock.for_python(python).items()}
        assert pins["torch"] == "2.11.0" and pins["triton"] == "3.6.0"  # PyPI's torch 2.11.0: the CUDA 13.0 build
        assert pins["nvidia-cuda-runtime"].startswith("13.0.") and pins["nvidia-cudnn-cu13"] == "9.19.0.56"


def test_every_manylinux_tag_up_to_the_images_glibc_is_accepted():
    lock_py = _lock_py()
    tags = lock_py.platform_tags()
    # bookworm's glibc is 2.36; nccl 2.28 is tagged only manylinux_2_18, cupti 13.0 only manylinux_2_25.
    assert lock_py.IMAGE_GLIBC_MINOR == 36
    assert {f"manylinux_2_{m}_x86_64" for m in range(17, 37)} <= set(tags) and "manylinux2014_x86_64" in tags
    assert "manylinux_2_37_x86_64" not in tags
    wheels = (DOCKER / "requirements-cuda.lock").read_text()
    assert "nvidia_nccl_cu13-2.28.9-py3-none-manylinux_2_18_x86_64.whl" in wheels
    assert "nvidia_cuda_cupti-13.0.85-py3-none-manylinux_2_25_x86_64.whl" in wheels
    # docker/wheelhouse.sh downloads with the same list: it asks lock.py for it.
    assert "lock.py\" --print-platform-args" in (DOCKER / "wheelhouse.sh").read_text()


@pytest.mark.parametrize("variant", ["cpu", "cuda", "host"])
def test_each_lock_is_generated_from_its_in_file(variant):
    lock_py = _lock_py()
    spec = lock_py.read_in(DOCKER / f"requirements-{variant}.in")
    lock = lockcheck.read(DOCKER / f"requirements-{variant}.lock")
    assert lock.source == f"requirements-{variant}.in"
    assert tuple(lock.pythons) == lock_py.VARIANT_PYTHONS[variant]
    for python in lock.pythons:
        pins = {n: p.version for n, p in lock.for_python(python).items()}
        for req in spec.for_python(python):
            name, version = req.split("==")
            assert pins.get(lockcheck.normalize(name)) == version, f"{variant} {python}: {req} (run `make lock VARIANT={variant}`)"
    declared = {(n, v, py) for n, v, py, _ in spec.unmatched}
    assert declared == {(n, v, py) for n, v, py, _ in UNMATCHED_RE.findall((DOCKER / f"requirements-{variant}.lock").read_text())}


def test_the_cpu_lock_is_what_the_cpu_smoke_reference_ran():
    env = yaml.safe_load((REPO / "artifact" / "references" / "cpu-smoke.yaml").read_text())["environment"]["software"]
    pins = {n: p.version for n, p in lockcheck.read(DOCKER / "requirements-cpu.lock").for_python("3.11").items()}
    for name in ("torch", "numpy", "scipy", "typer", "pyyaml", "nvidia-ml-py"):
        assert pins[lockcheck.normalize(name)] == env[name], name


def test_the_h200_machines_already_have_every_python_312_pin():
    """They cannot install anything (no registry): `make reproduce` there works offline only if
    every pin of the lock for their Python is installed there at exactly that version."""
    listing = (REPO / "bench" / "h200" / "machine-A" / "pip-list.txt").read_text().splitlines()[2:]
    installed = {lockcheck.normalize(n): v for n, v in (line.split()[:2] for line in listing if line.strip())}
    status = lockcheck.check(lockcheck.read(DOCKER / "requirements-cuda.lock"), python="3.12",
                             installed=lambda name: installed.get(lockcheck.normalize(name)))
    assert status.matches, lockcheck.summary(status)
    assert status.checked >= 40
