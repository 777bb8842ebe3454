"""One plan over several devices: the GPUs of a host, CPU shards, or Slurm jobs; one folder back.

`artifact run --gpus all` (or `--gpus 0,1`) runs one `artifact run` per GPU, each pinned to its
device (Docker: a device request for that GPU; native: CUDA_VISIBLE_DEVICES), either splitting
the plan's cases between them (`harness bench --shard I/N`, cases dealt by estimated work) or, with
`--each-gpu`, the whole plan on every GPU (a cross-GPU comparison). `--shards N --gpus none` does
the same with CPU containers or processes; `--executor slurm` submits the shards as Slurm jobs
(artifact/launch/slurm_executor.py). Every shard is a complete results folder of its own, so whatever
happens to one (killed, cancelled, failed) the others keep what they measured:

    OUT/run.json         ShardedRun: the mode, and each shard's device, folder, status and exit code
    OUT/manifest.json    sha256 of every file below, the shards' own manifests included
    OUT/shard-I/         env.json (one per device), ceilings.json, cases/, run.json, manifest.json

`load` reads such a folder for judging: split shards merge into one result set (every shard on the
same GPU model, or the merge is refused); each-GPU shards are judged one by one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from artifact.errors import ArtifactError
from artifact.results import folder
from artifact.results.folder import ResultSet
from harness import storage, versions

KIND_SHARDED = "sharded_run"
MODES = ("shard", "each-gpu")
STOP_GRACE_S = 30


@dataclass
class ShardRecord:
    index: int
    folder: str  # relative to the sharded folder
    device: Optional[str]  # the GPU index it was pinned to; None on the CPU or under Slurm
    status: str  # completed | failed | interrupted | cancelled | ...
    exit_code: Optional[int] = None
    error: Optional[str] = None
    wall_s: Optional[float] = None
    job_id: Optional[str] = None  # Slurm


@dataclass
class ShardedRun:
    """OUT/run.json of a sharded run."""

    mode: str  # shard | each-gpu
    executor: str  # local | slurm
    shards: list[ShardRecord]
    concurrent: bool
    concurrency_note: str  # why the shards ran at once or one after another
    argv: list[str]
    started_at: str
    finished_at: str
    wall_s: float
    schema_version: int = versions.current(KIND_SHARDED)
    kind: str = KIND_SHARDED

    @property
    def ok(self) -> bool:
        return all(s.status == "completed" and s.exit_code == 0 for s in self.shards)


# --------------------------------------------------------------------------- which devices
def parse_devices(text: Optional[str]) -> Optional[list[str]]:
    """`all` -> every GPU NVML sees; `0,1` -> those; `none`/None -> None (CPU shards)."""
    if text is None or text.strip().lower() == "none":
        return None
    if text.strip().lower() == "all":
        from harness.nvml import device_count

        n = device_count()
        if not n:
            raise ArtifactError("--gpus all: NVML sees no GPU on this host; use --gpus none for CPU shards")
        return [str(i) for i in range(n)]
    out = [p.strip() for p in text.split(",") if p.strip()]
    if not out or not all(p.isdigit() for p in out) or len(set(out)) != len(out):
        raise ArtifactError(f"--gpus: expected all, none or distinct GPU indices like 0,1, got {text!r}")
    return out


def sharding_devices(text: Optional[str]) -> Optional[list[str]]:
    """The GPUs to shard over when --gpus names several (`all` on a host with more than one GPU,
    or a list of two or more indices); None when it names one or none, or is not a plain list
    (then `artifact run` hands it to Docker as before, and says what is wrong with it)."""
    if text is None:
        return None
    t = text.strip().lower()
    if t == "all":
        from harness.nvml import device_count

        n = device_count()
        return [str(i) for i in range(n)] if n > 1 else None
    parts = [p.strip() for p in t.split(",") if p.strip()]
    if len(parts) > 1 and all(p.isdigit() for p in parts):
        return parse_devices(text)
    return None


def shard_args(base: list[str], out: Path, index: int, count: int, *, device: Optional[str], each: bool,
               runtime: str) -> tuple[list[str], dict[str, str]]:
    """The `artifact run` command of one shard, and its environment."""
    args = list(base)
    passthrough: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, passthrough = args[:cut], args[cut + 1:]
    env = dict(os.environ)
    gpu_args: list[str] = []
    if device is not None:
        if runtime == "native":
            env["CUDA_VISIBLE_DEVICES"] = device  # the shard's process sees one GPU, as GPU 0
        else:
            gpu_args = ["--gpus", device]
    elif runtime != "native":
        gpu_args = ["--gpus", "none"]
    shard = [] if each else ["--shard", f"{index}/{count}"]
    cmd = [sys.executable, "-m", "artifact.cli", "run", "--runtime", runtime, *gpu_args, *args,
           "--out", str(out / f"shard-{index}"), "--", *passthrough, *shard]
    return cmd, env


# --------------------------------------------------------------------------- running locally
def run_local(base: list[str], out: Path, *, devices: Optional[list[str]], shards: int, each: bool, runtime: str,
              concurrent: bool, concurrency_note: str, argv: list[str], log: Callable[[str], None] = print) -> ShardedRun:
    if out.exists() and any(out.iterdir()):
        raise ArtifactError(f"--out {out}: not empty; a sharded run starts in a new folder")
    out.mkdir(parents=True, exist_ok=True)
    count = len(devices) if devices else shards
    if count < 1:
        raise ArtifactError("--shards: at least 1")
    started, t0 = storage.utc_now(), time.monotonic()
    records = [ShardRecord(i, f"shard-{i}", devices[i] if devices else None, "pending") for i in range(count)]
    procs: dict[int, tuple[subprocess.Popen, float]] = {}

    def start(i: int) -> None:
        cmd, env = shard_args(base, out, i, count, device=records[i].device, each=each, runtime=runtime)
        log_file = open(out / f"shard-{i}.log", "w", encoding="utf-8")
        procs[i] = (subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True),
                    time.monotonic())
        records[i].status = "running"
        where = f"GPU {records[i].device}" if records[i].device is not None else "the host's device"
        log(f"shard {i}/{count} on {where}: started ({'the whole plan' if each else 'its share of the cases'})")

    def finish(i: int) -> None:
        proc, t = procs.pop(i)
        r = records[i]
        r.exit_code, r.wall_s = proc.returncode, round(time.monotonic() - t, 3)
        r.status = {0: "completed", 130: "interrupted"}.get(proc.returncode, "failed")
        if r.status != "completed":
            r.error = f"artifact run exited {proc.returncode} (its output: {out / f'shard-{i}.log'})"
        log(f"shard {i}/{count}: {r.status}" + (f" ({r.error})" if r.error else f" in {r.wall_s:g} s"))

    try:
        waiting = list(range(count))
        while waiting or procs:
            while waiting and (concurrent or not procs):
                start(waiting.pop(0))
            for i, (proc, _) in list(procs.items()):
                if proc.poll() is not None:
                    finish(i)
            time.sleep(0.2)
    except KeyboardInterrupt:
        log("interrupted: stopping every shard (each keeps the cases it finished)")
        for proc, _ in list(procs.values()):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for i, (proc, _) in list(procs.items()):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            finish(i)
            records[i].status = "interrupted"
        for r in records:
            if r.status == "pending":
                r.status, r.error = "not started", "interrupted before its turn"
        _write(out, "each-gpu" if each else "shard", "local", records, concurrent, concurrency_note, argv, started, t0)
        raise
    return _write(out, "each-gpu" if each else "shard", "local", records, concurrent, concurrency_note, argv, started, t0)


def _write(out: Path, mode: str, executor: str, records: list[ShardRecord], concurrent: bool, note: str,
           argv: list[str], started: str, t0: float) -> ShardedRun:
    run = ShardedRun(mode=mode, executor=executor, shards=records, concurrent=concurrent, concurrency_note=note,
                     argv=list(argv), started_at=started, finished_at=storage.utc_now(),
                     wall_s=round(time.monotonic() - t0, 3))
    storage.write_record(out / folder.RUN_FILE, run)
    folder.write_manifest(out)
    return run


def write_slurm(out: Path, outcome: object, argv: list[str], started: str, t0: float, each: bool = False) -> ShardedRun:
    """OUT/run.json and the manifest after `--executor slurm` (slurm_executor.SlurmOutcome)."""
    records = []
    for s in outcome.shards:  # type: ignore[attr-defined]
        status = "completed" if s.ok else ("cancelled" if s.state == "CANCELLED" else "failed")
        records.append(ShardRecord(s.index, f"shard-{s.index}", None, status, s.exit_code, s.error, job_id=s.job_id))
    return _write(out, "each-gpu" if each else "shard", "slurm", records, True, "Slurm schedules the jobs", argv, started, t0)


# --------------------------------------------------------------------------- reading one back
def is_sharded(path: Path) -> bool:
    run = path / folder.RUN_FILE
    if not run.is_file():
        return False
    try:
        from harness.records import load_json

        data = load_json(run)
    except Exception:  # noqa: BLE001 - not ours to judge here; load_results says what is wrong
        return False
    return isinstance(data, dict) and data.get("kind") == KIND_SHARDED


def load(top: Path) -> tuple[ShardedRun, list[tuple[str, ResultSet, str]]]:
    """The sharded run's record and the result sets to judge: one merged set (split shards) or one
    per shard (each-gpu). The top manifest must cover everything; each shard's own must hold."""
    from harness.records import load_record

    problems = folder.verify_manifest(top)
    if problems:
        raise ArtifactError(f"{top}: manifest check failed: {problems[0]}; re-run, do not edit results")
    run = load_record(top / folder.RUN_FILE, ShardedRun)
    if run.mode not in MODES:
        raise ArtifactError(f"{top / folder.RUN_FILE}: mode {run.mode!r} is not one of {', '.join(MODES)}")
    sets = []
    for s in run.shards:
        sub = top / s.folder
        if not (sub / storage.MANIFEST_FILE).is_file():
            continue  # a shard that never started leaves nothing to judge; run.json says why
        sets.append((s.folder, *folder.load_results(sub)))
    if not sets:
        raise ArtifactError(f"{top}: no shard produced results ({'; '.join(s.error or s.status for s in run.shards)})")
    if run.mode == "each-gpu":
        return run, sets
    return run, [("merged", merge([rs for _, rs, _ in sets], top), f"{len(sets)} shards merged; " + sets[0][2])]


def merge(sets: list[ResultSet], top: Path) -> ResultSet:
    """One result set from split shards of one plan: the cases of all of them, the environment
    and ceilings of the first (every shard must have run on the same GPU model)."""
    first = sets[0]

    def model(rs: ResultSet) -> tuple[str, Optional[str], Optional[str]]:
        return (rs.env.device, rs.env.gpu.name if rs.env.gpu else None,
                rs.env.gpu.compute_capability if rs.env.gpu else None)

    others = {model(rs) for rs in sets}
    if len(others) > 1:
        raise ArtifactError(f"{top}: its shards ran on different hardware ({sorted(map(str, others))}); a split plan is "
                            "judged as one run only on one GPU model: run with --each-gpu to compare GPUs")
    seen: dict[str, str] = {}
    cases = []
    for rs in sets:
        for c in rs.cases:
            cid = c.case.case_id
            if cid in seen:
                raise ArtifactError(f"{top}: case {cid} is in two shards ({seen[cid]} and {rs.folder}); "
                                    "the shards do not split one plan")
            seen[cid] = rs.folder
            cases.append(c)
    return ResultSet(folder=str(top), env=first.env, cases=cases, run=first.run, ceilings=first.ceilings)


@dataclass
class Row:
    folder: str
    hardware: str
    reference: str
    counts: dict[str, int] = field(default_factory=dict)
    exit_code: int = 0
