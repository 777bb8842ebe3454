"""`artifact doctor`: can this machine run the benchmark in the pinned container, and if not, why
and what to do. Each check says ok, warn (the run still works, on another path) or fail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from artifact.errors import ArtifactError

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"

# Oldest driver for each CUDA major (CUDA toolkit release notes, "minor version compatibility").
MIN_DRIVER_FOR_CUDA = {11: (450, 80), 12: (525, 60), 13: (580, 0)}


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail | skip
    detail: str
    fix: Optional[str] = None


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for p in text.split("."):
        if not p.isdigit():
            break
        parts.append(int(p))
    return tuple(parts)


def driver_check(driver: Optional[str], cuda_driver: Optional[str], image_cuda: Optional[str]) -> Check:
    """Is the host driver new enough for the CUDA runtime inside the image?"""
    name = "host driver vs image"
    if not image_cuda or image_cuda == "none":
        detail = "the image's torch is a CPU build: it needs no NVIDIA driver"
        if driver:
            detail += f" (host driver {driver})"
        return Check(name, OK, detail)
    if not driver:
        return Check(name, FAIL, f"the image needs CUDA {image_cuda} but no NVIDIA driver answers on this host",
                     "install the NVIDIA driver (check with `nvidia-smi`)")
    need_major = _version_tuple(image_cuda)[:1]
    have = _version_tuple(cuda_driver or "")
    if have and need_major and have[0] < need_major[0]:
        floor = MIN_DRIVER_FOR_CUDA.get(need_major[0])
        floor_s = f" (>= {floor[0]}.{floor[1]:02d})" if floor else ""
        return Check(name, FAIL, f"driver {driver} supports CUDA {cuda_driver}, the image needs CUDA {image_cuda}",
                     f"upgrade the NVIDIA driver{floor_s}")
    floor = MIN_DRIVER_FOR_CUDA.get(need_major[0]) if need_major else None
    if floor and _version_tuple(driver)[:2] < floor:
        return Check(name, FAIL, f"driver {driver} is older than {floor[0]}.{floor[1]:02d}, the oldest for CUDA "
                     f"{need_major[0]}.x", "upgrade the NVIDIA driver")
    return Check(name, OK, f"driver {driver} (CUDA {cuda_driver or '?'}) runs the image's CUDA {image_cuda}")


# What `nvidia-smi` inside the image says when the NVIDIA Container Toolkit half-works, and the fix.
NVIDIA_SMI_FAILURES: list[tuple[str, str, str]] = [
    (r"executable file not found|nvidia-smi: not found|no such file or directory",
     "nvidia-smi is not in the container: the NVIDIA Container Toolkit mounts it only with the `utility` "
     "driver capability (the image sets NVIDIA_DRIVER_CAPABILITIES=compute,utility)",
     "rebuild the image from this checkout (artifact build --offline --variant cuda), or update nvidia-container-toolkit"),
    (r"Driver/library version mismatch",
     "the loaded NVIDIA kernel module and the driver's user-space libraries differ (a driver update without a reboot)",
     "reboot the host, or reload the nvidia kernel modules"),
    (r"Failed to initialize NVML: Unknown Error",
     "the container lost access to the GPU device nodes (a known issue with the systemd cgroup driver after "
     "`systemctl daemon-reload`)",
     "restart Docker; for good, use CDI (`nvidia-ctk cdi generate`) or set native.cgroupdriver=cgroupfs in daemon.json"),
    (r"No devices were found",
     "the container got no GPU device", "check `nvidia-smi -L` on the host and the ids given to --gpus"),
    (r"couldn't communicate with the NVIDIA driver|NVIDIA-SMI has failed",
     "the NVIDIA driver does not answer inside the container", "check that `nvidia-smi` works on the host"),
]


def nvidia_smi_check(client, image: str, gpus: Optional[list[str]]) -> Check:
    """The NVIDIA Container Toolkit's own smoke test, in this image: `nvidia-smi -L` in a container
    with the GPU request. It proves the toolkit injects the driver, its libraries and the devices."""
    from artifact.launch.runtime_docker import run_in_image

    name = "nvidia-smi in image"
    try:
        code, output = run_in_image(client, image, ["nvidia-smi", "-L"], gpus if gpus is not None else [])
    except ArtifactError as exc:
        detail, _, fix = str(exc).partition("; ")
        return Check(name, FAIL, detail, fix or None)
    text = " ".join(output.split())
    if code == 0 and "GPU " in output:
        gpus_seen = [line.strip() for line in output.splitlines() if line.startswith("GPU ")]
        return Check(name, OK, f"{len(gpus_seen)} GPU(s) visible in {image}: {gpus_seen[0][:80]}")
    for pattern, what, fix in NVIDIA_SMI_FAILURES:
        if re.search(pattern, text, flags=re.IGNORECASE):
            return Check(name, FAIL, f"{what} (exit {code}: {text[:120]})", fix)
    return Check(name, FAIL, f"nvidia-smi -L exited {code} in {image}: {text[:160] or 'no output'}",
                 "run `docker run --rm --gpus all IMAGE nvidia-smi` by hand and check the NVIDIA Container Toolkit's log")


def host_driver() -> tuple[Optional[str], Optional[str], Optional[str]]:
    """(driver version, highest CUDA it supports, why unknown) from NVML on the host."""
    try:
        import pynvml
    except ImportError:
        return None, None, "nvidia-ml-py is not installed on the host"
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return None, None, f"NVML did not initialise ({exc}): no NVIDIA driver on this host"
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        driver = driver.decode() if isinstance(driver, bytes) else driver
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        return driver, f"{cuda // 1000}.{(cuda % 1000) // 10}", None
    except Exception as exc:
        return None, None, f"NVML did not report the driver: {exc}"
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def run_checks(image: str, gpus: Optional[list[str]] = None, preflight: bool = True,
               gpu_host: Optional[bool] = None) -> list[Check]:
    """`gpu_host`: whether to run nvidia-smi in the image (default: when the host has an NVIDIA driver)."""
    from artifact.launch import docker_engine

    checks: list[Check] = []
    try:
        docker = docker_engine.sdk()
        checks.append(Check("docker SDK", OK, f"docker {docker.__version__}"))
    except ArtifactError as exc:
        checks.append(Check("docker SDK", FAIL, str(exc), "pip install docker"))
        return checks

    try:
        client = docker_engine.connect()
    except ArtifactError as exc:
        detail, _, fix = str(exc).partition("; ")
        checks.append(Check("daemon", FAIL, detail, fix or None))
        return checks
    try:
        info = docker_engine.engine_info(client)
    except ArtifactError as exc:
        checks.append(Check("daemon", FAIL, str(exc)))
        return checks
    checks.append(Check("daemon", OK, f"Docker {info.engine_version} at {info.host} ({info.os})"))

    if docker_engine.api_at_least(info.api_version):
        checks.append(Check("API version", OK, f"{info.api_version} (GPU requests need >= {docker_engine.MIN_API_VERSION})"))
    else:
        checks.append(Check("API version", FAIL, f"{info.api_version} is older than {docker_engine.MIN_API_VERSION}",
                            "upgrade Docker to 19.03 or newer"))

    from artifact.launch.image import image_info

    img = None
    try:
        img = image_info(client, image)
        size = f"{img.size_bytes / 1e9:.2f} GB" if img.size_bytes else "size unknown"
        checks.append(Check("image", OK, f"{image} = {img.id[:19]} ({size}, revision {img.revision}, "
                                         f"base {img.base_digest and img.base_digest[:19]})"))
    except ArtifactError:
        checks.append(Check("image", WARN, f"{image} is not built", "artifact build --offline (or make image)"))

    runtimes = ", ".join(info.runtimes) or "none listed"
    if img is None:
        checks.append(Check("NVIDIA runtime", SKIP, f"runtimes: {runtimes}; the GPU preflight needs the image",
                            "artifact build --offline"))
    elif not preflight:
        checks.append(Check("NVIDIA runtime", SKIP, f"runtimes: {runtimes}; preflight not run (--no-preflight)"))
    else:
        from artifact.launch.runtime_docker import preflight_gpu

        try:
            preflight_gpu(client, image, gpus if gpus is not None else [])
            checks.append(Check("NVIDIA runtime", OK, f"a container with the GPU request started (runtimes: {runtimes})"))
        except ArtifactError as exc:
            detail, _, fix = str(exc).partition("; ")
            checks.append(Check("NVIDIA runtime", WARN, f"{detail} (runtimes: {runtimes}); GPU runs use `artifact run --runtime native`",
                                fix or None))

    driver, cuda, why = host_driver()
    if gpu_host is None:
        gpu_host = driver is not None
    if not gpu_host:
        checks.append(Check("nvidia-smi in image", SKIP, "no NVIDIA driver on this host: nothing to give a container"))
    elif img is None:
        checks.append(Check("nvidia-smi in image", SKIP, f"{image} is not built", "artifact build --offline --variant cuda"))
    elif not preflight:
        checks.append(Check("nvidia-smi in image", SKIP, "not run (--no-preflight)"))
    else:
        checks.append(nvidia_smi_check(client, image, gpus))
    image_cuda = img.cuda_version if img else None
    if driver is None and (not image_cuda or image_cuda == "none"):
        checks.append(Check("host driver vs image", OK if img else SKIP,
                            f"{why}; the image's torch is a CPU build and needs none" if img else (why or "no NVIDIA driver")))
    else:
        checks.append(driver_check(driver, cuda, image_cuda))
    return checks


def exit_code(checks: list[Check]) -> int:
    """2 when something blocks the docker path (unusable setup), else 0."""
    return 2 if any(c.status == FAIL for c in checks) else 0
