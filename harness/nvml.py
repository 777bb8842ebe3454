"""GPU state through NVML (nvidia-ml-py), torch-free. Every reading that fails becomes None with
the reason, never a made-up zero."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from harness.records import GpuProcess, GpuState

# Clock-event ("throttle") reason bits, from nvml.h. Idle is normal between kernels and is
# not a throttle; the rest mean the clocks were held below what the kernel asked for.
_REASONS = {
    0x0000000000000001: "gpu_idle",
    0x0000000000000002: "applications_clocks_setting",
    0x0000000000000004: "sw_power_cap",
    0x0000000000000008: "hw_slowdown",
    0x0000000000000010: "sync_boost",
    0x0000000000000020: "sw_thermal_slowdown",
    0x0000000000000040: "hw_thermal_slowdown",
    0x0000000000000080: "hw_power_brake_slowdown",
    0x0000000000000100: "display_clock_setting",
}
BENIGN_REASONS = {"gpu_idle", "applications_clocks_setting"}


def decode_reasons(mask: int) -> list[str]:
    names = [name for bit, name in _REASONS.items() if mask & bit]
    unknown = mask & ~sum(_REASONS)
    if unknown:
        names.append(f"unknown_0x{unknown:x}")
    return names


def device_count() -> int:
    """How many GPUs NVML sees (0 without NVML or a driver)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return int(pynvml.nvmlDeviceGetCount())
    except Exception:
        return 0


class Nvml:
    """A handle on GPU `index`, or an unavailable stub that says why."""

    def __init__(self, index: int | None = None, module: Any = None, uuid: str | None = None):
        """GPU `index` in NVML's numbering; None: the GPU CUDA calls device 0 in this process
        (NVML ignores CUDA_VISIBLE_DEVICES, so a shard pinned to GPU 3 natively must ask for 3).
        `module`: a stand-in for pynvml (the tests' fake NVML)."""
        self.error: str | None = None
        self._nv: Any = None
        self._h: Any = None
        try:
            if module is None:
                import pynvml
            else:
                pynvml = module

            pynvml.nvmlInit()
            self._nv = pynvml
            first = (os.environ.get("CUDA_VISIBLE_DEVICES") or "").split(",")[0].strip()
            if uuid is not None or (index is None and first.startswith("GPU-")):
                self._h = pynvml.nvmlDeviceGetHandleByUUID(uuid or first)
            else:
                self._h = pynvml.nvmlDeviceGetHandleByIndex(index if index is not None else (int(first) if first.isdigit() else 0))
        except Exception as exc:  # missing library, no driver, no device: all mean "no NVML"
            self.error = f"NVML unavailable: {type(exc).__name__}: {exc}".strip()

    @property
    def ok(self) -> bool:
        return self.error is None

    def _read(self, fn: Callable[[], Any], field: str, unavailable: dict[str, str]) -> Any:
        if not self.ok:
            unavailable.setdefault(field, self.error or "NVML unavailable")
            return None
        try:
            return fn()
        except Exception as exc:
            unavailable[field] = f"NVML: {exc}"
            return None

    def driver_version(self, unavailable: dict[str, str]) -> str | None:
        v = self._read(lambda: self._nv.nvmlSystemGetDriverVersion(), "nvidia_driver_version", unavailable)
        return v.decode() if isinstance(v, bytes) else v

    def cuda_driver_version(self, unavailable: dict[str, str]) -> str | None:
        v = self._read(lambda: self._nv.nvmlSystemGetCudaDriverVersion_v2(), "cuda_driver_version", unavailable)
        return None if v is None else f"{v // 1000}.{(v % 1000) // 10}"

    def uuid(self, unavailable: dict[str, str]) -> str | None:
        v = self._read(lambda: self._nv.nvmlDeviceGetUUID(self._h), "gpu.uuid", unavailable)
        return v.decode() if isinstance(v, bytes) else v

    def throttle_reasons(self) -> list[str]:
        if not self.ok:
            return []
        try:
            get = getattr(self._nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or self._nv.nvmlDeviceGetCurrentClocksThrottleReasons
            return decode_reasons(int(get(self._h)))
        except Exception:
            return []

    def identity(self) -> tuple[str | None, str | None]:
        """(name, compute capability "9.0") of this GPU, as torch would report them."""
        if not self.ok:
            return None, None
        try:
            name = self._nv.nvmlDeviceGetName(self._h)
            name = name.decode() if isinstance(name, bytes) else str(name)
        except Exception:
            return None, None
        try:
            major, minor = self._nv.nvmlDeviceGetCudaComputeCapability(self._h)
            cc = f"{major}.{minor}"
        except Exception:
            cc = None
        return name, cc

    def clocks(self) -> tuple[int | None, int | None]:
        """(SM clock, memory clock) in MHz now; None where NVML cannot read it."""
        if not self.ok:
            return None, None
        out: list[int | None] = []
        for kind in (getattr(self._nv, "NVML_CLOCK_SM", 1), getattr(self._nv, "NVML_CLOCK_MEM", 2)):
            try:
                out.append(int(self._nv.nvmlDeviceGetClockInfo(self._h, kind)))
            except Exception:
                out.append(None)
        return out[0], out[1]

    def sample(self) -> tuple[list[str], int | None, int | None]:
        """What the timer reads after every batch: clock-event reasons and the two clocks."""
        sm, mem = self.clocks()
        return self.throttle_reasons(), sm, mem

    def _try(self, fn: Callable[[], Any]) -> Any:
        """One reading, or None where there is no NVML or the reading fails."""
        if not self.ok:
            return None
        try:
            return fn()
        except Exception:
            return None

    def max_sm_clock(self) -> int | None:
        return self._try(lambda: int(self._nv.nvmlDeviceGetMaxClockInfo(self._h, getattr(self._nv, "NVML_CLOCK_SM", 1))))

    def power_w(self) -> float | None:
        """Board power now (NVML averages it over about a second on recent boards), W."""
        return self._try(lambda: int(self._nv.nvmlDeviceGetPowerUsage(self._h)) / 1000.0)

    def utilization(self) -> int | None:
        """GPU utilisation, %: the share of NVML's last sample period in which a kernel ran."""
        return self._try(lambda: int(self._nv.nvmlDeviceGetUtilizationRates(self._h).gpu))

    def processes(self) -> list[GpuProcess]:
        """Every process with a compute context on this GPU, and MPS clients, as NVML lists them
        (host PIDs, also inside a container). Raises when NVML cannot list them: the caller must
        not read "no process" into a failure."""
        if not self.ok:
            raise RuntimeError(self.error or "NVML unavailable")
        nv, h = self._nv, self._h
        seen: dict[int, GpuProcess] = {}
        lists = [(False, nv.nvmlDeviceGetComputeRunningProcesses(h))]
        mps = getattr(nv, "nvmlDeviceGetMPSComputeRunningProcesses", None)
        if mps is not None:
            try:
                lists.append((True, mps(h)))
            except Exception:
                pass  # not supported without MPS on some drivers: the compute list still counts
        for is_mps, procs in lists:
            for p in procs:
                pid = int(p.pid)
                used = getattr(p, "usedGpuMemory", None)
                mib = None if not isinstance(used, int) or used < 0 or used >= 2**63 else round(used / 2**20, 1)
                if pid not in seen:
                    seen[pid] = GpuProcess(pid=pid, used_memory_mib=mib, name=_comm(pid), mps_client=is_mps)
        if seen:
            for pid, util in self._process_sm_util().items():
                if pid in seen:
                    seen[pid].sm_util_pct = util
        return [seen[p] for p in sorted(seen)]

    def _process_sm_util(self) -> dict[int, int]:
        """Per-process SM use over NVML's recent samples, where the driver reports it."""
        try:
            samples = self._nv.nvmlDeviceGetProcessUtilization(self._h, 0)
        except Exception:
            return {}
        out: dict[int, int] = {}
        for s in samples:
            out[int(s.pid)] = max(out.get(int(s.pid), 0), int(s.smUtil))
        return out

    def compute_mode(self) -> str | None:
        mode = self._try(lambda: int(self._nv.nvmlDeviceGetComputeMode(self._h)))
        if mode is None:
            return None
        return {0: "Default", 1: "Exclusive_Thread", 2: "Prohibited", 3: "Exclusive_Process"}.get(mode, f"unknown_{mode}")

    def state(self, unavailable: dict[str, str], prefix: str) -> GpuState:
        nv, h = self._nv, self._h
        r = lambda fn, name: self._read(fn, f"{prefix}.{name}", unavailable)  # noqa: E731
        clk = lambda kind: (lambda: nv.nvmlDeviceGetClockInfo(h, kind))  # noqa: E731
        mx = lambda kind: (lambda: nv.nvmlDeviceGetMaxClockInfo(h, kind))  # noqa: E731
        sm = getattr(nv, "NVML_CLOCK_SM", 1)
        mem = getattr(nv, "NVML_CLOCK_MEM", 2)
        power_limit = r(lambda: nv.nvmlDeviceGetEnforcedPowerLimit(h), "power_limit_w")
        power_draw = r(lambda: nv.nvmlDeviceGetPowerUsage(h), "power_draw_w")
        ecc = r(lambda: nv.nvmlDeviceGetEccMode(h)[0], "ecc_enabled")
        mig = r(lambda: nv.nvmlDeviceGetMigMode(h)[0], "mig_enabled")
        persistence = r(lambda: nv.nvmlDeviceGetPersistenceMode(h), "persistence_mode")
        pm_limit = r(lambda: nv.nvmlDeviceGetPowerManagementLimit(h), "power_management_limit_w")
        pm_default = r(lambda: nv.nvmlDeviceGetPowerManagementDefaultLimit(h), "power_default_limit_w")
        return GpuState(
            sm_clock_mhz=r(clk(sm), "sm_clock_mhz"),
            sm_clock_max_mhz=r(mx(sm), "sm_clock_max_mhz"),
            mem_clock_mhz=r(clk(mem), "mem_clock_mhz"),
            mem_clock_max_mhz=r(mx(mem), "mem_clock_max_mhz"),
            power_limit_w=None if power_limit is None else power_limit / 1000.0,
            power_draw_w=None if power_draw is None else power_draw / 1000.0,
            temperature_c=r(lambda: nv.nvmlDeviceGetTemperature(h, 0), "temperature_c"),
            persistence_mode=None if persistence is None else bool(persistence),
            ecc_enabled=None if ecc is None else bool(ecc),
            mig_enabled=None if mig is None else bool(mig),
            throttle_reasons=self.throttle_reasons(),
            power_management_limit_w=None if pm_limit is None else pm_limit / 1000.0,
            power_default_limit_w=None if pm_default is None else pm_default / 1000.0,
            compute_mode=self.compute_mode(),
        )


def _comm(pid: int) -> str | None:
    """The process's name where this process can see it: not from inside a container, whose
    /proc numbers another PID namespace than NVML's host PIDs."""
    if os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"):
        return None
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() or None
    except OSError:
        return None
