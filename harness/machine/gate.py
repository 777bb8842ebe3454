"""Before the run: is another process computing on this GPU? (torch-free)

NVML lists every process with a compute context on the GPU (and MPS clients), with host PIDs, also
inside a container. Before this run touches the GPU it has no context of its own, so every process
listed is another's; after its first CUDA call the one new PID is this run's (`own_pids`), which is
how the watch tells them apart inside a container, where os.getpid() is not the host's PID.

A GPU that another process is on is refused by default, in one line naming it (PID, memory, SM
use) and the fix, exit code 4; `--allow-shared-gpu` runs anyway, and every case timed beside it is
then invalid (`shared GPU`), never a FAIL: contention slows kernels unequally, so neither
absolute times nor ratios survive it (H200, 2026-12-02: 46 FAILs blaming the kernels).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Optional

from harness.errors import HarnessError
from harness.records import GpuProcess, MachineGate

EXIT_SHARED_GPU = 4  # the exit code of a refusal, and of a verdict on a run beside another process
SHARED_PREFIX = "shared GPU: "  # how an invalid case's reason starts when the machine, not the kernel, was at fault
# GPU utilisation at or above this with no process listed means work NVML cannot attribute (another
# container or VM). The reading covers NVML's last sample period, so a run that just ended still
# shows: it is read again for up to BUSY_SETTLE_S before it counts.
BUSY_UTIL_PCT = 10
BUSY_SETTLE_S = 2.0
FIX = ("wait until it ends (nvidia-smi lists it), run on another GPU (CUDA_VISIBLE_DEVICES), or pass "
       "--allow-shared-gpu to measure anyway (every case timed beside it is then invalid: shared GPU)")


class SharedGpuError(HarnessError):
    """The gate refused the GPU: another process is on it."""

    exit_code = EXIT_SHARED_GPU


def describe(p: GpuProcess) -> str:
    bits = [f"{p.used_memory_mib:g} MiB" if p.used_memory_mib is not None else "memory not reported"]
    if p.sm_util_pct is not None:
        bits.append(f"{p.sm_util_pct}% of the SMs")
    who = f"PID {p.pid}" + (f" ({p.name})" if p.name else "") + (" [MPS client]" if p.mps_client else "")
    return f"{who}: {', '.join(bits)}"


def describe_all(procs: list[GpuProcess], shown: int = 3) -> str:
    """The first `shown` processes described, and how many more ("" for none)."""
    more = f" (and {len(procs) - shown} more)" if len(procs) > shown else ""
    return "; ".join(describe(p) for p in procs[:shown]) + more


def check(nvml: Any, allow_shared: bool, *, sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], float] = time.monotonic) -> MachineGate:
    """Read the GPU before this run uses it. Raises SharedGpuError (exit 4) when another process
    is on it and sharing was not allowed; otherwise returns what was found (env.json `machine`)."""
    if not nvml.ok:
        return MachineGate(checked=False, foreign=[], gpu_util_pct=None, allowed_shared=allow_shared, shared=False,
                           why=f"not checked: {nvml.error}")
    try:
        procs = nvml.processes()
    except Exception as exc:  # noqa: BLE001 - any NVML failure means "could not list", never "none"
        return MachineGate(checked=False, foreign=[], gpu_util_pct=nvml.utilization(), allowed_shared=allow_shared,
                           shared=False, why=f"not checked: NVML could not list the GPU's processes ({exc})")
    me = os.getpid()
    foreign = [p for p in procs if p.pid != me]
    util = nvml.utilization()
    t0 = clock()
    while not foreign and util is not None and util >= BUSY_UTIL_PCT and clock() - t0 < BUSY_SETTLE_S:
        sleep(0.2)
        util = nvml.utilization()
    gate = MachineGate(checked=True, foreign=foreign, gpu_util_pct=util, allowed_shared=allow_shared, shared=False)
    found = _found(foreign, util)
    if found is None:
        gate.why = "idle: no other process on the GPU" + (f", utilisation {util}%" if util is not None else "")
        return gate
    if not allow_shared:
        raise SharedGpuError(f"the GPU is shared: {found}; timings beside it measure the contention, not the kernel. Fix: {FIX}")
    gate.shared = True
    gate.why = f"shared (--allow-shared-gpu): {found}"
    return gate


def _found(foreign: list[GpuProcess], util: Optional[int]) -> Optional[str]:
    if foreign:
        return f"{len(foreign)} other process(es) on it: {describe_all(foreign)}" + (f"; GPU utilisation {util}%" if util is not None else "")
    if util is not None and util >= BUSY_UTIL_PCT:
        return (f"GPU utilisation {util}% before this run started, with no process NVML can list "
                "(another container or VM)")
    return None


def gate_gpu(device: str, allow_shared: bool) -> Optional[MachineGate]:
    """The gate for `harness bench --device DEVICE`, before this process touches the GPU (so every
    process NVML lists is another's) and before torch is imported: a refusal comes within seconds.
    None where there is nothing to gate (a CPU run, or no NVML: env.json then says why)."""
    from harness.nvml import Nvml

    if device == "cpu":
        return None
    nvml = Nvml()
    return check(nvml, allow_shared) if nvml.ok else None


def identify_own(nvml: Any, gate: MachineGate, allow_shared: bool) -> MachineGate:
    """After this run's first CUDA call: which listed PID is this run's. Natively it is
    os.getpid(); in a container the one PID that was not there before. A list in which this run
    does not appear cannot show another process either: the watch is then off, and says why."""
    if not gate.checked:
        return gate
    try:
        procs = nvml.processes()
    except Exception as exc:  # noqa: BLE001
        gate.checked = False
        gate.why += f"; the watch is off: NVML could not list the processes again ({exc})"
        return gate
    pids = {p.pid for p in procs}
    before = {p.pid for p in gate.foreign}
    if os.getpid() in pids:
        gate.own_pids = [os.getpid()]
    else:
        new = sorted(pids - before)
        if not new:
            gate.checked = False
            gate.why += ("; the watch is off: NVML does not list this run's own process (a PID namespace it "
                         "cannot see across), so it would not list another's either")
            return gate
        if len(new) > 1:
            others = [p for p in procs if p.pid in new]
            if not allow_shared:
                raise SharedGpuError(f"the GPU is shared: {len(new)} processes appeared on it as this run started "
                                     f"({describe_all(others)}), and which is this run's cannot be "
                                     f"told. Fix: {FIX}")
            gate.shared = True
            gate.foreign += others  # expected from here on: each case is shared, none is waited for
            gate.why += f"; {len(new)} processes appeared as this run started, so each is counted as another's"
            return gate
        gate.own_pids = new
    return gate
