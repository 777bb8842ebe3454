"""The CUDA image, built offline (debootstrap base, wheelhouse, no network in the build), on a
machine without a GPU: it runs the smoke profile through the launcher with --gpus none and passes
the CPU smoke reference; its torch is the CUDA 13.0 build of the CUDA lock and carries Hopper
(sm_90) code; and a GPU request to an engine without the NVIDIA runtime is the mapped one-line
error, from `artifact run` and from `artifact doctor`'s nvidia-smi check. What it cannot show
here is a container on a GPU: ARTIFACT.md says which hardware verified what."""

from __future__ import annotations

import json

import pytest
from testkit import REPO

from artifact.launch import doctor
from artifact.launch.image import image_info
from artifact.launch.runtime_docker import LABEL, run_in_image
from artifact.results.folder import load_run_info
from harness import lockcheck
from harness.storage import load_env

pytestmark = [pytest.mark.docker, pytest.mark.slow]


CPU_SMOKE = REPO / "artifact" / "references" / "cpu-smoke.yaml"

# Inside the image: the archs torch was compiled for, and the cubins libtorch_cuda.so really
# carries (its .nv_fatbin section: containers of 16-byte headers, entries of type 2/0x10 = ELF
# with the SM number at byte 28; the layout cuobjdump reads).
SM_PROBE = r"""
import json, mmap, os, struct, torch
lib = os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cuda.so")
with open(lib, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
    shoff, = struct.unpack_from("<Q", m, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", m, 0x3A)
    def section(i):
        return struct.unpack_from("<IIQQQQ", m, shoff + i * shentsize)
    strtab = section(shstrndx)[4]
    fatbin = None
    for i in range(shnum):
        name_off, _, _, _, off, size = section(i)
        if m[strtab + name_off: m.find(b"\0", strtab + name_off)] == b".nv_fatbin":
            fatbin = (off, size)
    elf_arch = {}
    p, end = fatbin
    end += p
    while p + 16 <= end:
        magic, _, hsize, fat = struct.unpack_from("<IHHQ", m, p)
        if magic != 0xBA55ED50:
            p += 8
            continue
        q, cend = p + hsize, p + hsize + fat
        while q + 64 <= cend:
            kind, _, esize, padded = struct.unpack_from("<HHIQ", m, q)
            sm, = struct.unpack_from("<I", m, q + 28)
            if esize == 0:
                break
            if kind in (2, 16):
                elf_arch[sm] = elf_arch.get(sm, 0) + 1
            q += esize + padded
        p = cend
print("SM " + json.dumps({"arch_flags": torch._C._cuda_getArchFlags(), "cuda": torch.version.cuda,
                          "elf_per_sm": {str(k): v for k, v in sorted(elf_arch.items())}}))
"""


def test_smoke_profile_in_the_cuda_image_passes_the_cpu_smoke_reference(docker_client, offline_cuda_image,
                                                                        artifact_cli, tmp_path):
    out = tmp_path / "cuda-smoke"
    proc = artifact_cli("run", "--runtime", "docker", "--gpus", "none", "--image", offline_cuda_image,
                        "--profile", "smoke", "--out", str(out), timeout=900)
    assert proc.returncode == 0, proc.stderr
    env = load_env(out)
    # The CUDA build of torch (on no GPU: the smoke profile ran on the CPU), the lock's versions.
    assert env.torch_cuda_build == "13.0" and env.software["torch"] == "2.11.0" and env.device == "cpu"
    assert env.in_container is True
    lock = env.package_lock
    assert lock is not None and lock.matches and lock.source == "requirements-cuda.in" and lock.python == "3.11"
    assert lock.sha256 == lockcheck.read(REPO / "docker" / "requirements-cuda.lock").sha256
    run = load_run_info(out)
    assert run.runtime == "docker" and run.image.torch_variant == "cuda" and run.image.cuda_version == "13.0"
    assert run.image.lock == f"requirements-cuda.lock sha256:{lock.sha256}"
    check = artifact_cli("check", str(out), "--reference", str(CPU_SMOKE), "--out", str(tmp_path / "verdict"),
                         timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    verdict = json.loads((tmp_path / "verdict" / "verdict.json").read_text())
    assert verdict["status"] == "PASS" and verdict["counts"]["FAIL"] == 0
    assert docker_client.containers.list(all=True, filters={"label": LABEL}) == []


def test_the_cuda_image_carries_hopper_code(docker_client, offline_cuda_image):
    code, output = run_in_image(docker_client, offline_cuda_image, ["python3", "-c", SM_PROBE], None, timeout_s=300)
    assert code == 0, output
    facts = json.loads(next(l for l in output.splitlines() if l.startswith("SM "))[3:])
    assert facts["cuda"] == "13.0"
    assert "sm_90" in facts["arch_flags"]  # what torch was compiled for ...
    assert facts["elf_per_sm"].get("90", 0) > 100  # ... and the sm_90 cubins really in libtorch_cuda.so


def test_the_cuda_image_is_within_its_budget_and_labelled(docker_client, offline_cuda_image):
    info = image_info(docker_client, offline_cuda_image)
    assert info.torch_variant == "cuda" and info.cuda_version == "13.0"
    assert info.size_bytes <= 5.5e9, f"{info.size_bytes / 1e9:.2f} GB"  # bench/image_build.md has the figures
    layers = docker_client.images.get(offline_cuda_image).attrs["RootFS"]["Layers"]
    assert len(layers) == 3  # the debootstrapped base, the venv, the harness


@pytest.mark.parametrize("gpus", ["all", "0"])
def test_a_gpu_request_without_the_nvidia_runtime_is_the_mapped_error(docker_client, offline_cuda_image, artifact_cli,
                                                                      tmp_path, gpus):
    if doctor.host_driver()[0] is not None:
        pytest.skip("this host has an NVIDIA driver")
    proc = artifact_cli("run", "--runtime", "docker", "--gpus", gpus, "--image", offline_cuda_image,
                        "--out", str(tmp_path / "gpu"), timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1
    assert "NVIDIA Container Toolkit is not installed" in errors[0] and "nvidia-ctk runtime configure" in errors[0]
    assert docker_client.containers.list(all=True, filters={"label": LABEL}) == []


def test_doctor_runs_nvidia_smi_in_the_image_and_explains_the_failure(docker_client, offline_cuda_image):
    if doctor.host_driver()[0] is not None:
        pytest.skip("this host has an NVIDIA driver")
    check = doctor.nvidia_smi_check(docker_client, offline_cuda_image, [])
    assert check.status == doctor.FAIL and check.name == "nvidia-smi in image"
    assert "NVIDIA Container Toolkit is not installed" in check.detail
    assert "nvidia-ctk runtime configure --runtime=docker" in check.fix
    # On this host (no driver) doctor itself skips it and says why.
    checks = doctor.run_checks(offline_cuda_image, [], preflight=True)
    smi = next(c for c in checks if c.name == "nvidia-smi in image")
    assert smi.status == doctor.SKIP and "no NVIDIA driver" in smi.detail


@pytest.mark.parametrize("output, code, expected", [
    ("Failed to initialize NVML: Driver/library version mismatch", 18, "reboot the host"),
    ("Failed to initialize NVML: Unknown Error", 255, "CDI"),
    ("exec: \"nvidia-smi\": executable file not found in $PATH", 127, "utility"),
    ("No devices were found", 6, "nvidia-smi -L"),
    ("GPU 0: NVIDIA H200 (UUID: GPU-1)\n", 0, None),
])
def test_nvidia_smi_outcomes_are_explained(monkeypatch, output, code, expected):
    from artifact.launch import runtime_docker

    monkeypatch.setattr(runtime_docker, "run_in_image", lambda *a, **k: (code, output))
    check = doctor.nvidia_smi_check(None, "img", [])
    if expected is None:
        assert check.status == doctor.OK and "1 GPU(s)" in check.detail
    else:
        assert check.status == doctor.FAIL and expected in (check.fix or "") + check.detail
