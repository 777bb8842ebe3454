"""A stand-in for the pynvml module: one GPU whose processes, clocks, power and utilisation a
test sets (and changes between calls), so the gate and the watch are tested without a GPU."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Optional


class NVMLError(Exception):
    pass


class FakeNvml:
    NVML_CLOCK_SM, NVML_CLOCK_MEM = 1, 2

    def __init__(self, *, sm: int = 1980, max_sm: int = 1980, mem: int = 3201, power_w: float = 650.0,
                 limit_w: float = 700.0, default_limit_w: float = 700.0, util: int = 0,
                 procs: Optional[dict[int, int]] = None, proc_util: Optional[dict[int, int]] = None,
                 list_fails: bool = False):
        self.sm, self.max_sm, self.mem = sm, max_sm, mem
        self.power_w, self.limit_w, self.default_limit_w = power_w, limit_w, default_limit_w
        self.util = util
        self.procs: dict[int, int] = dict(procs or {})  # pid -> used bytes
        self.proc_util: dict[int, int] = dict(proc_util or {})  # pid -> SM %
        self.list_fails = list_fails
        self.calls: dict[str, int] = {}
        self.on_list: Optional[Callable[[FakeNvml], None]] = None  # called before each process listing

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    # --- what harness/nvml.py calls
    def nvmlInit(self) -> None:
        pass

    def nvmlDeviceGetHandleByIndex(self, i: int) -> str:
        return f"gpu{i}"

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> str:
        return uuid

    def nvmlDeviceGetComputeRunningProcesses(self, h: Any) -> list[SimpleNamespace]:
        self._count("processes")
        if self.on_list is not None:
            self.on_list(self)
        if self.list_fails:
            raise NVMLError("Not Supported")
        return [SimpleNamespace(pid=p, usedGpuMemory=b) for p, b in self.procs.items()]

    def nvmlDeviceGetMPSComputeRunningProcesses(self, h: Any) -> list[SimpleNamespace]:
        return []

    def nvmlDeviceGetProcessUtilization(self, h: Any, ts: int) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=p, smUtil=u) for p, u in self.proc_util.items()]

    def nvmlDeviceGetUtilizationRates(self, h: Any) -> SimpleNamespace:
        return SimpleNamespace(gpu=self.util, memory=0)

    def nvmlDeviceGetClockInfo(self, h: Any, kind: int) -> int:
        return self.sm if kind == self.NVML_CLOCK_SM else self.mem

    def nvmlDeviceGetMaxClockInfo(self, h: Any, kind: int) -> int:
        return self.max_sm if kind == self.NVML_CLOCK_SM else self.mem

    def nvmlDeviceGetPowerUsage(self, h: Any) -> int:
        return int(self.power_w * 1000)

    def nvmlDeviceGetEnforcedPowerLimit(self, h: Any) -> int:
        return int(self.limit_w * 1000)

    def nvmlDeviceGetPowerManagementLimit(self, h: Any) -> int:
        return int(self.limit_w * 1000)

    def nvmlDeviceGetPowerManagementDefaultLimit(self, h: Any) -> int:
        return int(self.default_limit_w * 1000)

    def nvmlDeviceGetTemperature(self, h: Any, sensor: int) -> int:
        return 40

    def nvmlDeviceGetEccMode(self, h: Any) -> tuple[int, int]:
        return 1, 1

    def nvmlDeviceGetMigMode(self, h: Any) -> tuple[int, int]:
        return 0, 0

    def nvmlDeviceGetPersistenceMode(self, h: Any) -> int:
        return 1

    def nvmlDeviceGetComputeMode(self, h: Any) -> int:
        return 0

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: Any) -> int:
        return 0x4 if self.sm < self.max_sm else 0

    def nvmlSystemGetDriverVersion(self) -> str:
        return "580.159.04"

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return 13000

    def nvmlDeviceGetName(self, h: Any) -> str:
        return "NVIDIA H200"

    def nvmlDeviceGetCudaComputeCapability(self, h: Any) -> tuple[int, int]:
        return 9, 0

    def nvmlDeviceGetUUID(self, h: Any) -> str:
        return "GPU-fake"


class FakeClock:
    """time.monotonic and time.sleep for the watch: sleeping advances the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s
