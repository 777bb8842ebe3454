"""run.json's record: how a results folder was produced, written by the host after every launch
(artifact/results/folder.py reads and writes it with the rest of the folder).

The harness writes what it measured (env.json, cases/, manifest.json); run.json adds what only
the host knows: the launcher and its arguments, which runtime ran and why, the image and its
base, the engine, the source commit, and every attempt (a resumed run has several). The manifest
is rewritten after run.json so that it is hashed with the rest.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from artifact.launch.docker_engine import EngineInfo
from artifact.launch.gitinfo import GitInfo
from artifact.launch.image import ImageInfo
from harness import versions
from harness.errors import RecordError
from harness.lockcheck import PackageLock

KIND_RUN = "run"  # run.json; its version and format history: harness/versions.py

STATUSES = ("completed", "interrupted", "timeout", "failed")


@dataclass
class Attempt:
    """One launch into the folder: the first run, then each --resume."""

    started_at: str
    finished_at: str
    wall_s: float
    exit_code: Optional[int]  # the harness's exit code; None if it never reported one
    status: str  # completed | interrupted | timeout | failed
    runtime: str  # docker | native
    container_id: Optional[str] = None
    resumed: bool = False
    first_result_s: Optional[float] = None  # launch to the first case file written
    error: Optional[str] = None  # the launcher's one-line error when it could not run or follow it
    notes: list[str] = field(default_factory=list)  # deviations from the plan, e.g. a ulimit the engine refused


@dataclass
class RunCost:
    """What producing the folder cost (issue 11): wall seconds per phase, summed over the cases,
    and GPU-seconds (the run's wall time times the GPUs it held). `artifact check` adds its own
    time to the verdict; the report adds both up, and prices them with --gpu-hour-price."""

    wall_s: float  # every attempt, launch to exit
    gpus: int  # GPUs held while it ran (0 on the CPU)
    gpu_seconds: float
    # startup (container or process start, imports, fingerprint, writing), ceilings, and the
    # cases' own phases: correctness, memory, warmup (warm-up, calibration, capture), sampling,
    # census.
    phases_s: dict[str, float] = field(default_factory=dict)


def run_cost(out: Path, wall_s: float) -> Optional[RunCost]:
    """The cost of what is in the folder now, from the harness's own records."""
    from harness import storage

    try:
        env = storage.load_env(out)
        cases = storage.load_cases(out)
        ceilings = storage.load_ceilings(out)
    except (RecordError, OSError):
        return None
    phases: dict[str, float] = {}
    for c in cases:
        for name, secs in (c.phases_s or {}).items():
            phases[name] = phases.get(name, 0.0) + float(secs)
    if ceilings is not None and ceilings.wall_s:
        phases["ceilings"] = float(ceilings.wall_s)
    phases = {k: round(v, 3) for k, v in phases.items()}
    phases["startup and writing"] = round(max(0.0, wall_s - sum(phases.values())), 3)
    gpus = 1 if env.device == "cuda" else 0
    return RunCost(wall_s=round(wall_s, 3), gpus=gpus, gpu_seconds=round(wall_s * gpus, 3), phases_s=phases)


@dataclass
class RunInfo:
    launcher_version: str
    argv: list[str]  # the launcher's command line as typed
    options: dict[str, Any]  # the resolved options (runtime, profile, gpus, image, timeout, ...)
    runtime: str  # docker | native
    runtime_reason: str  # why this runtime (auto's decision, or "requested")
    harness_command: list[str]  # what ran in the container or subprocess
    image: Optional[ImageInfo]  # None for native runs
    engine: Optional[EngineInfo]  # None when Docker was not used
    git: GitInfo
    host: dict[str, Any]  # python, platform of the launching host
    started_at: str  # of the first attempt
    finished_at: str  # of the last attempt
    exit_code: Optional[int]  # of the last attempt
    status: str  # of the last attempt
    attempts: list[Attempt] = field(default_factory=list)
    # Native runs: the lock the launching environment was installed from and whether it still
    # holds (the harness runs in the same Python). Docker runs: None; the image's label names its
    # lock (image.lock) and env.json has the check made inside the container.
    package_lock: Optional[PackageLock] = None
    cost: Optional[RunCost] = None  # per phase, all attempts together
    schema_version: int = versions.current(KIND_RUN)
    kind: str = KIND_RUN


def host_facts() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
