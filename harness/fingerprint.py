"""env.json: what ran, on which hardware, with which settings in force.

The NVIDIA driver version, the CUDA version the driver supports, the CUDA runtime actually loaded,
and the CUDA version torch was built against are four different things and four fields (the seed
system wrote torch's build into "driver_version")."""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata as md
import os
import platform
import socket
from pathlib import Path
from typing import Any

from harness import __version__, lockcheck
from harness.nvml import Nvml
from harness.records import EnvRecord, GpuInfo
from harness.storage import utc_now

_PACKAGES = ("torch", "triton", "numpy", "scipy", "typer", "pyyaml", "nvidia-ml-py", "gpu-kernel-artifact")


def package_versions(unavailable: dict[str, str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
            unavailable[f"software.{name}"] = "not installed"
    out["harness"] = __version__
    return out


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def in_container() -> bool | None:
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return True
    cgroup = _read("/proc/1/cgroup")
    if cgroup is None:
        return None
    return any(tag in cgroup for tag in ("docker", "containerd", "kubepods", "libpod"))


def host_info(unavailable: dict[str, str]) -> dict[str, Any]:
    governor = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    if governor is None:
        unavailable["host.cpu_governor"] = "no cpufreq in /sys (VM or container without it)"
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_governor": governor,
        "os": platform.platform(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        # Hashed: identifies "same host" across runs without publishing the name.
        "hostname_sha256_8": hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8],
    }


def _loaded_cudart_version(unavailable: dict[str, str]) -> str | None:
    """Ask the libcudart this process actually mapped (not the one torch was built with)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        unavailable["cuda_runtime_version"] = "cannot read /proc/self/maps"
        return None
    paths = sorted({line.split()[-1] for line in maps.splitlines() if "libcudart.so" in line})
    if not paths:
        unavailable["cuda_runtime_version"] = "no libcudart mapped (torch may link it statically)"
        return None
    try:
        lib = ctypes.CDLL(paths[0])
        v = ctypes.c_int()
        if lib.cudaRuntimeGetVersion(ctypes.byref(v)) != 0:
            raise OSError("cudaRuntimeGetVersion failed")
        return f"{v.value // 1000}.{(v.value % 1000) // 10}"
    except (OSError, AttributeError) as exc:
        unavailable["cuda_runtime_version"] = f"{paths[0]}: {exc}"
        return None


def collect(device: str, lock: dict[str, Any], lock_failures: dict[str, str], nvml: Nvml | None = None) -> EnvRecord:
    """The fingerprint, with the GPU state read now as `gpu_state_before`."""
    import torch

    unavailable: dict[str, str] = {}
    gpu = driver = cuda_driver = runtime = cudnn = None
    state_before = None
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        nvml = nvml or Nvml()
        l2 = getattr(props, "L2_cache_size", None)
        if l2 is None:
            unavailable["gpu.l2_bytes"] = "this torch does not report L2_cache_size"
        gpu = GpuInfo(
            name=props.name,
            uuid=nvml.uuid(unavailable) if nvml.ok else str(getattr(props, "uuid", "")) or None,
            compute_capability=f"{props.major}.{props.minor}",
            sm_count=props.multi_processor_count,
            memory_bytes=props.total_memory,
            l2_bytes=l2,
        )
        driver = nvml.driver_version(unavailable)
        cuda_driver = nvml.cuda_driver_version(unavailable)
        runtime = _loaded_cudart_version(unavailable)
        v = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        cudnn = None if v is None else str(v)
        if cudnn is None:
            unavailable["cudnn_version"] = "cuDNN not available to torch"
        state_before = nvml.state(unavailable, "gpu_state_before")
    else:
        for f in ("gpu", "nvidia_driver_version", "cuda_driver_version", "cuda_runtime_version", "cudnn_version", "gpu_state_before", "gpu_state_after"):
            unavailable[f] = "run on the CPU"
    return EnvRecord(
        created_at=utc_now(),
        harness_version=__version__,
        device=device,
        gpu=gpu,
        nvidia_driver_version=driver,
        cuda_driver_version=cuda_driver,
        cuda_runtime_version=runtime,
        torch_cuda_build=torch.version.cuda,
        cudnn_version=cudnn,
        gpu_state_before=state_before,
        gpu_state_after=None,
        software=package_versions(unavailable),
        host=host_info(unavailable),
        in_container=in_container(),
        lock=lock,
        lock_failures=lock_failures,
        unavailable=unavailable,
        package_lock=lockcheck.from_environment(unavailable),
    )
