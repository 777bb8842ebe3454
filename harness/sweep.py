"""A sweep: lock, fingerprint, run every case, write each result as it finishes.

env.json is written before the first case and again (with the GPU state after) at the end;
manifest.json is rewritten after every case, so an interrupted run leaves a folder whose every
file is finished and hashed. `start_folder` is that first step, shared with `harness env` and
`harness optimize` so every folder's env.json describes the process that measured it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from harness import ceilings, envlock, fingerprint, storage, workloads
from harness.display import console, reasons, results_table
from harness.errors import HarnessError, RecordError
from harness.machine import gate as gatemod
from harness.machine.watch import Watcher
from harness.nvml import Nvml
from harness.plan import Plan
from harness.records import CaseResult, CeilingsRecord, EnvRecord, MachineGate
from harness.runner import run_case


def _finished(out: Path, case_id: str) -> CaseResult | None:
    path = storage.case_path(out, case_id)
    if not path.exists():
        return None
    try:
        return storage.load_record(path, CaseResult)
    except RecordError:
        return None  # a damaged file is measured again


@dataclass
class StartedFolder:
    env: EnvRecord
    nvml: Optional[Nvml]  # open on a GPU, for the GPU state after the run
    lock_failures: dict[str, str]  # setting -> why it could not be locked


def start_folder(out: Path, device: str, seed: int, *, cpu_threads: Optional[int] = None,
                 in_progress: bool = False) -> StartedFolder:
    """Lock the environment, fingerprint it, write env.json and the manifest. The lock comes
    first: the fingerprint records the settings as read back, not as requested."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings, failures = envlock.lock(seed, cpu_threads)
    nvml = Nvml() if device == "cuda" else None
    env = fingerprint.collect(device, settings, failures, nvml=nvml)
    storage.write_record(out / storage.ENV_FILE, env)
    storage.write_manifest(out, in_progress=in_progress)
    return StartedFolder(env, nvml, failures)


def _check_external_workloads(plan: Plan) -> None:
    """Import each user workload the plan names (after the harness bound its timers) and check
    the plan's backends against the ones it declares, before anything is measured."""
    for name in sorted({c.workload for c in plan.cases if workloads.is_external(c.workload)}):
        known = workloads.backends_of(name)
        for c in plan.cases:
            if c.workload == name and c.backend not in known:
                raise HarnessError(f"{plan.source}: backend {c.backend!r} is not one of workload {name}'s "
                                   f"({', '.join(known)})")


def _watch(plan: Plan, env: EnvRecord, nvml: Optional[Nvml], gate: Optional[MachineGate], allow_shared: bool,
           out: Path) -> Optional[Watcher]:
    """After the first CUDA call: which listed process is this run's, recorded in env.json; then
    the watcher every batch reports to."""
    if nvml is None or not nvml.ok:
        env.machine = MachineGate(checked=False, foreign=[], gpu_util_pct=None, allowed_shared=allow_shared, shared=False,
                                  why=f"not checked: {nvml.error if nvml is not None else 'no NVML'}; another process "
                                      "on the GPU would not be seen")
        storage.write_record(out / storage.ENV_FILE, env)
        storage.write_manifest(out, in_progress=True)
        return None
    if gate is None:
        gate = gatemod.check(nvml, allow_shared)  # a caller without the early gate (cli.bench has it)
    import torch

    torch.zeros(1, device="cuda")  # this run's context: now NVML lists its own PID
    torch.cuda.synchronize()
    env.machine = gatemod.identify_own(nvml, gate, allow_shared)
    storage.write_record(out / storage.ENV_FILE, env)
    storage.write_manifest(out, in_progress=True)
    t = plan.timing
    return Watcher(nvml, env.machine, throttle_threshold=t.throttle_threshold, throttle_recovery_s=t.throttle_recovery_s,
                   shared_wait_s=t.shared_wait_s)


def run_sweep(plan: Plan, device: str, out: Path, *, resume: bool = False, progress: bool = True,
              gate: Optional[MachineGate] = None, allow_shared: bool = False) -> int:
    """`gate`: the reading of machine.gate.gate_gpu() taken before torch was imported (None: taken here)."""
    out = Path(out)
    if resume:
        from harness import resume as resumemod

        resumemod.check(out, plan, device)  # before start_folder rewrites env.json
    _check_external_workloads(plan)
    con = console()
    started = start_folder(out, device, plan.timing.seed, cpu_threads=plan.cpu_threads if device == "cpu" else None,
                           in_progress=True)
    env, nvml, failures = started.env, started.nvml, started.lock_failures
    l2 = env.gpu.l2_bytes if env.gpu else None
    where = env.gpu.name if env.gpu else (env.host.get("cpu_model") or "CPU")
    con.print(f"[bold]harness[/] {len(plan.cases)} cases on {where} ({plan.source}) -> {out}")
    for name, why in failures.items():
        con.print(f"[yellow]lock: {name}: {why}[/]")
    watch = _watch(plan, env, nvml, gate, allow_shared, out) if device == "cuda" else None
    if env.machine is not None:
        con.print(f"{'[yellow]' if env.machine.shared or not env.machine.checked else ''}GPU: {env.machine.why}")
    roofs: Optional[CeilingsRecord] = None
    if plan.ceilings and resume and (out / storage.CEILINGS_FILE).is_file():
        try:
            roofs = storage.load_record(out / storage.CEILINGS_FILE, CeilingsRecord)
        except RecordError:
            roofs = None
    if plan.ceilings and roofs is None:
        t = time.perf_counter()
        record = ceilings.measure(device, env.gpu.name if env.gpu else None, seed=plan.timing.seed, watch=watch)
        roofs = record
        record.wall_s = round(time.perf_counter() - t, 3)
        storage.write_record(out / storage.CEILINGS_FILE, record)
        storage.write_manifest(out, in_progress=True)
        found = ", ".join(f"{c.metric.split('_')[0]} {c.value:g} {c.unit}" for c in record.ceilings) or "none"
        con.print(f"ceilings: {found} ({time.perf_counter() - t:.1f} s)"
                  + "".join(f"; {k} unavailable: {v}" for k, v in record.unavailable.items()))

    results: list[CaseResult] = []
    todo = []
    for spec in plan.cases:
        done = _finished(out, spec.case_id) if resume else None
        if done is not None:
            results.append(done)
        else:
            todo.append(spec)
    if resume and results:
        con.print(f"resume: {len(results)} finished case(s) kept, {len(todo)} to run")

    t0 = time.perf_counter()
    bar = None
    if progress and todo:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TimeRemainingColumn(), console=con, transient=False)
        bar.start()
        task = bar.add_task("starting", total=len(todo))
    try:
        for i, spec in enumerate(todo):
            label = f"{spec.backend} S={spec.seq}"
            if bar is not None:
                bar.update(task, description=f"{label:<18}")
            result = run_case(spec, plan.timing, check_correctness_first=plan.check_correctness, l2_bytes=l2, nvml=nvml,
                              census=plan.census, ceilings=roofs, watch=watch)
            storage.write_case(out, result)
            storage.write_manifest(out, in_progress=True)
            results.append(result)
            if bar is not None:
                bar.advance(task)
            else:
                med = f"{result.timing.summary.median_ms:.4f} ms" if result.timing else (result.reason or "")
                con.print(f"[{i + 1}/{len(todo)}] {spec.case_id}: {result.status} {med}")
    finally:
        if bar is not None:
            bar.stop()
        if nvml is not None and nvml.ok:
            env.gpu_state_after = nvml.state(env.unavailable, "gpu_state_after")
        storage.write_record(out / storage.ENV_FILE, env)
        storage.write_manifest(out)

    con.print(results_table(results, title=f"{plan.source} on {where} ({time.perf_counter() - t0:.1f} s)"))
    for line in reasons(results):
        con.print(f"[yellow]{line}[/]")
    return 0
