"""`artifact run --executor slurm`: one Slurm job per shard, through submitit.

Each job runs `artifact run ... -- --shard I/N` on its node (the pinned container where the node
has Docker and its NVIDIA runtime, else the pinned native set, exactly as on a workstation) into
OUT/shard-I; the submitting process waits with progress, cancels every job on Ctrl-C, and
reports each shard: done, failed (with its exit code or error) or cancelled. Shards that finished
are kept whatever happens to the others.

submitit submits the jobs and returns their results. It reads job states from `sacct`, which
needs Slurm's accounting database; clusters without one (and the single-node test cluster) answer
"accounting storage is disabled", so the state is then read from `scontrol show job`, which
keeps finished jobs for MinJobAge seconds (slurm/ensure_slurm.sh sets an hour).
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from artifact.errors import ArtifactError

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL",
            "DEADLINE", "REVOKED"}


@dataclass
class ShardJob:
    index: int
    job_id: str
    folder: str
    state: str = "PENDING"
    exit_code: Optional[int] = None
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETED" and self.exit_code == 0


@dataclass
class SlurmOutcome:
    shards: list[ShardJob] = field(default_factory=list)
    interrupted: bool = False


def run_shard(cmd: list[str], cwd: str) -> int:
    """What each job runs on its node (module level, so submitit pickles it by reference)."""
    return subprocess.run(cmd, cwd=cwd).returncode


def shard_command(base: list[str], out: Path, index: int, count: int) -> list[str]:
    """`artifact run` for one shard: the caller's options, its own --out, and --shard I/N for the
    harness (after `--`, where `artifact run` passes arguments through to `harness bench`)."""
    args = list(base)
    passthrough: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, passthrough = args[:cut], args[cut + 1:]
    return [sys.executable, "-m", "artifact.cli", "run", *args, "--out", str(out / f"shard-{index}"), "--",
            *passthrough, "--shard", f"{index}/{count}"]


def _scontrol_state(job_id: str) -> Optional[str]:
    try:
        proc = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"\bJobState=(\S+)", proc.stdout)
    return m.group(1) if m else None


_SACCT: dict[str, bool] = {}


def sacct_works() -> bool:
    """Whether this cluster has the accounting database submitit's state queries need (asked once)."""
    if "ok" not in _SACCT:
        try:
            proc = subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True, text=True, timeout=30)
            _SACCT["ok"] = proc.returncode == 0 and "disabled" not in (proc.stderr + proc.stdout)
        except (OSError, subprocess.TimeoutExpired):
            _SACCT["ok"] = False
    return _SACCT["ok"]


def state_of(job: Any) -> str:
    """The job's Slurm state: submitit's (sacct) where accounting exists, else scontrol's."""
    if sacct_works():
        try:
            st = str(job.state).split()[0].upper()
            if st and st != "UNKNOWN":
                return st
        except Exception:  # noqa: BLE001 - submitit raises on odd sacct output; fall back below
            pass
    return (_scontrol_state(job.job_id) or "UNKNOWN").upper()


def submit(shards: int, base_args: list[str], out: Path, *, partition: Optional[str], timeout_min: int = 120,
           cpus_per_task: int = 2, gpus_per_node: int = 0, cwd: Optional[Path] = None) -> tuple[Any, list[Any]]:
    """One job per shard, each running `artifact run ... -- --shard I/N` into OUT/shard-I."""
    cmds = [shard_command(base_args, out, i, shards) for i in range(shards)]
    return submit_commands(cmds, out, partition=partition, timeout_min=timeout_min, cpus_per_task=cpus_per_task,
                           gpus_per_node=gpus_per_node, cwd=cwd)


def submit_commands(cmds: list[list[str]], out: Path, *, partition: Optional[str], timeout_min: int = 120,
                    cpus_per_task: int = 2, gpus_per_node: int = 0, cwd: Optional[Path] = None) -> tuple[Any, list[Any]]:
    try:
        import submitit
    except ImportError:
        raise ArtifactError("--executor slurm needs submitit: pip install 'gpu-kernel-artifact[slurm]' "
                            "(or pip install submitit)") from None
    if subprocess.run(["which", "sbatch"], capture_output=True).returncode != 0:
        raise ArtifactError("--executor slurm: sbatch is not on PATH; run on a Slurm login node "
                            "(or start the test cluster: bash slurm/ensure_slurm.sh)")
    logs = out / "slurm"
    logs.mkdir(parents=True, exist_ok=True)
    executor = submitit.AutoExecutor(folder=str(logs / "%j"), cluster="slurm")
    params: dict[str, Any] = {"timeout_min": timeout_min, "cpus_per_task": cpus_per_task, "slurm_job_name": "artifact-shard"}
    if partition:
        params["slurm_partition"] = partition
    if gpus_per_node:
        params["gpus_per_node"] = gpus_per_node
    executor.update_parameters(**params)
    where = str((cwd or Path.cwd()).resolve())
    jobs = [executor.submit(run_shard, cmd, where) for cmd in cmds]
    return executor, jobs


def wait(jobs: list[Any], out: Path, *, poll_s: float = 2.0, log: Callable[[str], None] = print,
         timeout_s: Optional[float] = None) -> SlurmOutcome:
    """Poll until every job is in a terminal state; Ctrl-C cancels them all (and is re-raised
    after the outcome is recorded on the exception)."""
    outcome = SlurmOutcome([ShardJob(i, str(j.job_id), str(out / f"shard-{i}")) for i, j in enumerate(jobs)])
    quiet = logging.getLogger("submitit")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # submitit warns on every poll when sacct has no database
    t0 = time.monotonic()
    seen: dict[int, str] = {}
    try:
        while True:
            for shard, job in zip(outcome.shards, jobs):
                if shard.state in TERMINAL:
                    continue
                shard.state = state_of(job)
                if seen.get(shard.index) != shard.state:
                    seen[shard.index] = shard.state
                    log(f"slurm: shard {shard.index} (job {shard.job_id}): {shard.state}")
                if shard.state in TERMINAL:
                    _collect(shard, job)
            if all(s.state in TERMINAL for s in outcome.shards):
                return outcome
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                log(f"slurm: waited {timeout_s:g} s; cancelling what is still running")
                cancel(jobs, outcome)
                return outcome
            time.sleep(poll_s)
    except KeyboardInterrupt as exc:
        log("slurm: interrupted; cancelling every job (finished shards are kept)")
        cancel(jobs, outcome)
        outcome.interrupted = True
        exc.outcome = outcome  # type: ignore[attr-defined]
        raise
    finally:
        quiet.setLevel(level)


def cancel(jobs: list[Any], outcome: SlurmOutcome) -> None:
    for shard, job in zip(outcome.shards, jobs):
        if shard.state in TERMINAL:
            continue
        try:
            job.cancel(check=False)
        except Exception as exc:  # noqa: BLE001 - one job that cannot be cancelled must not stop the others
            shard.error = f"scancel failed: {exc}"
        shard.state = "CANCELLED"


def _has_result(job: Any) -> bool:
    try:
        return Path(job.paths.result_pickle).exists()
    except Exception:  # noqa: BLE001
        return False


def _collect(shard: ShardJob, job: Any) -> None:
    """Exit code and error of a job in a terminal state. A cancelled job may still have written a
    result: `artifact run` stops its harness on SIGTERM, keeps the finished cases, exits 130."""
    if _has_result(job):
        try:
            shard.exit_code = int(job.result())
        except Exception as exc:  # noqa: BLE001 - submitit's FailedJobError and the like
            shard.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
            if shard.state == "COMPLETED":
                shard.state = "FAILED"
            return
    if shard.state != "COMPLETED":
        shard.error = shard.error or (f"the job ended {shard.state}"
                                      + (f"; artifact run exited {shard.exit_code}, finished cases kept in {shard.folder}"
                                         if shard.exit_code is not None else " without a result"))
    elif shard.exit_code is None:
        shard.state, shard.error = "FAILED", "the job ended COMPLETED without a result"
    elif shard.exit_code != 0:
        shard.error = f"artifact run exited {shard.exit_code} on the node (see {shard.folder}/run.log)"
