"""How numbers and machines are written in every verdict, report and message (torch-free)."""

from __future__ import annotations

from typing import Optional

from harness.records import EnvRecord


def num(x: Optional[float], digits: int = 4, none: str = "-") -> str:
    """A measured number to `digits` significant digits; `none` where there is none."""
    if x is None:
        return none
    return f"{x:.{digits}g}"


def hardware(device: str, gpu_name: Optional[str] = None, compute_capability: Optional[str] = None,
             cpu_model: Optional[str] = None) -> str:
    """'NVIDIA H100 80GB HBM3, compute capability 9.0' or 'CPU (AMD EPYC 7B13)': the one wording
    of a machine, whether it comes from env.json, a reference's hardware or this host."""
    if device == "cuda":
        name = (gpu_name or "").strip() or "an unnamed GPU"
        return f"{name}, compute capability {compute_capability}" if compute_capability else name
    return f"CPU ({cpu_model})" if cpu_model else "CPU"


def env_hardware(env: EnvRecord) -> str:
    """What a run ran on, from its env.json."""
    if env.device == "cuda" and env.gpu is not None:
        return hardware("cuda", env.gpu.name, env.gpu.compute_capability)
    return hardware("cpu", cpu_model=(env.host or {}).get("cpu_model"))


def hardware_model(env: EnvRecord) -> str:
    """What runs must share to be compared or derived together: the GPU's name, or the device."""
    return (env.gpu.name or "") if env.device == "cuda" and env.gpu is not None else env.device
