"""Nsight Compute on one case: the hardware counters that say *why* a kernel takes its time (torch-free).

`profile_case` runs `ncu` on a separate process (harness/ncu_target.py) that calls the case once
between cudaProfilerStart/Stop, under the same lock as a timed run, with `--clock-control none`
(the card's clocks are left as found). It keeps the report file (open it in the Nsight Compute
GUI) and reads the key metrics of every kernel from the report's raw page:

- SM and memory throughput as % of peak (the Speed-of-Light pair), tensor and XU (exponential)
  pipe utilisation, issue-slot use;
- achieved and theoretical occupancy, registers per thread, shared memory per block, grid and
  block size, waves per SM;
- the limiter in ncu's own words: the SOLBottleneck rule, and which pipeline is the busiest
  (HighPipeUtilization), with every other rule ncu fired.

Without ncu, or without permission to read the counters, the profile is recorded with
`unavailable` set to the reason and no kernels: never a crash.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from harness.records import SCHEMA_VERSION, CaseSpec, to_dict

KIND_NCU = "ncu_profile"
SECTIONS = ("SpeedOfLight", "Occupancy", "LaunchStats", "ComputeWorkloadAnalysis", "MemoryWorkloadAnalysis",
            "WarpStateStats", "SchedulerStats")
TIMEOUT_S = 300.0

# Report metric -> (field, scale). Values in the raw page carry thousands separators.
_METRICS = {
    "gpu__time_duration.sum": ("duration_us", 1.0),
    "sm__throughput.avg.pct_of_peak_sustained_elapsed": ("sm_throughput_pct", 1.0),
    "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed": ("memory_throughput_pct", 1.0),
    "dram__throughput.avg.pct_of_peak_sustained_elapsed": ("dram_throughput_pct", 1.0),
    "sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active": ("tensor_pipe_pct", 1.0),
    "sm__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active": ("xu_pipe_pct", 1.0),
    "sm__issue_active.avg.pct_of_peak_sustained_elapsed": ("issue_active_pct", 1.0),
    "sm__warps_active.avg.pct_of_peak_sustained_active": ("achieved_occupancy_pct", 1.0),
    "sm__maximum_warps_per_active_cycle_pct": ("theoretical_occupancy_pct", 1.0),
    "launch__registers_per_thread": ("registers_per_thread", 1.0),
    "launch__grid_size": ("grid_size", 1.0),
    "launch__block_size": ("block_size", 1.0),
    "launch__waves_per_multiprocessor": ("waves_per_sm", 1.0),
}


@dataclass
class NcuRule:
    name: str
    type: str  # OPT (an optimisation opportunity), INF (information), WRN
    section: str
    description: str
    estimated_speedup_pct: Optional[float] = None


@dataclass
class NcuKernel:
    """One kernel of the profiled call, with the metrics a kernel author reads first."""

    name: str
    duration_us: Optional[float] = None
    sm_throughput_pct: Optional[float] = None
    memory_throughput_pct: Optional[float] = None
    dram_throughput_pct: Optional[float] = None
    tensor_pipe_pct: Optional[float] = None
    xu_pipe_pct: Optional[float] = None
    issue_active_pct: Optional[float] = None
    achieved_occupancy_pct: Optional[float] = None
    theoretical_occupancy_pct: Optional[float] = None
    registers_per_thread: Optional[float] = None
    shared_mem_per_block_bytes: Optional[float] = None
    grid_size: Optional[float] = None
    block_size: Optional[float] = None
    waves_per_sm: Optional[float] = None
    limiter: Optional[str] = None  # ncu's SOLBottleneck rule, first sentence
    busiest_pipe: Optional[str] = None  # from the HighPipeUtilization rule
    rules: list[NcuRule] = field(default_factory=list)


@dataclass
class NcuProfile:
    """ncu-<case_id>.json: the profile of one call of one case."""

    case_id: str
    report_file: Optional[str]  # the .ncu-rep beside this record (relative name), None if none
    command: list[str]
    ncu_version: Optional[str]
    created_at: str
    kernels: list[NcuKernel] = field(default_factory=list)
    main_kernel: Optional[str] = None  # the longest kernel of the call
    unavailable: Optional[str] = None  # why there are no metrics (no ncu, no permission, ...)
    schema_version: int = SCHEMA_VERSION
    kind: str = KIND_NCU

    def main(self) -> Optional[NcuKernel]:
        for k in self.kernels:
            if k.name == self.main_kernel:
                return k
        return None


# --------------------------------------------------------------------------- parsing (pure)
def _number(text: str) -> Optional[float]:
    text = (text or "").strip().replace(",", "")
    if not text or text in ("n/a", "no data"):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _bytes(value: Optional[float], unit: str) -> Optional[float]:
    if value is None:
        return None
    scale = {"byte": 1, "kbyte": 1e3, "mbyte": 1e6, "kibyte": 1024, "mibyte": 1 << 20}
    return value * scale.get(unit.split("/")[0].strip().lower(), 1)


def parse_raw(text: str) -> list[dict[str, Any]]:
    """`ncu --import R --page raw --csv`: one row per kernel, a units row after the header."""
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if r and not r[0].startswith("==")]
    if len(rows) < 3 or "Kernel Name" not in rows[0]:
        return []
    header, units = rows[0], rows[1]
    out = []
    for r in rows[2:]:
        if len(r) != len(header):
            continue
        values = dict(zip(header, r))
        unit_of = dict(zip(header, units))
        k: dict[str, Any] = {"id": values.get("ID", ""), "name": values["Kernel Name"]}
        for metric, (fname, scale) in _METRICS.items():
            v = _number(values.get(metric, ""))
            k[fname] = None if v is None else v * scale
        dyn = _bytes(_number(values.get("launch__shared_mem_per_block_dynamic", "")),
                     unit_of.get("launch__shared_mem_per_block_dynamic", "byte"))
        static = _bytes(_number(values.get("launch__shared_mem_per_block_static", "")),
                        unit_of.get("launch__shared_mem_per_block_static", "byte"))
        k["shared_mem_per_block_bytes"] = None if dyn is None and static is None else (dyn or 0) + (static or 0)
        out.append(k)
    return out


def parse_rules(text: str) -> dict[str, list[NcuRule]]:
    """`ncu --import R --page details --csv`: rule rows carry a Rule Name; keyed by kernel ID."""
    rows = list(csv.DictReader(io.StringIO("\n".join(l for l in text.splitlines() if not l.startswith("==")))))
    out: dict[str, list[NcuRule]] = {}
    for r in rows:
        name = (r.get("Rule Name") or "").strip()
        if not name:
            continue
        speedup = _number(r.get("Estimated Speedup") or "")
        out.setdefault(r.get("ID", ""), []).append(NcuRule(
            name=name, type=(r.get("Rule Type") or "").strip(), section=(r.get("Section Name") or "").strip(),
            description=" ".join((r.get("Rule Description") or "").split()), estimated_speedup_pct=speedup))
    return out


def _first_sentence(text: str) -> str:
    m = re.match(r"(.+?\.)(\s|$)", text)
    return m.group(1) if m else text


def kernels_from(raw_text: str, details_text: str) -> list[NcuKernel]:
    rules = parse_rules(details_text)
    kernels = []
    for row in parse_raw(raw_text):
        mine = rules.get(row.pop("id"), [])
        k = NcuKernel(**row, rules=mine)
        for rule in mine:
            if rule.name == "SOLBottleneck":
                k.limiter = _first_sentence(rule.description)
            elif rule.name == "HighPipeUtilization":
                m = re.match(r"(\S+(?: \S+)?) is the highest-utilized pipeline \(([\d.]+)%\)", rule.description)
                k.busiest_pipe = f"{m.group(1)} ({m.group(2)}%)" if m else _first_sentence(rule.description)
        kernels.append(k)
    return kernels


# --------------------------------------------------------------------------- running ncu
def ncu_binary() -> Optional[str]:
    found = shutil.which("ncu")
    if found:
        return found
    for candidate in ("/usr/local/cuda/bin/ncu", "/opt/nvidia/nsight-compute/ncu"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


_PERMISSION = re.compile(r"ERR_NVGPUCTRPERM|does not have permission to access NVIDIA GPU Performance Counters", re.I)


def _why_failed(log: str, code: int) -> str:
    if _PERMISSION.search(log):
        return ("ncu may not read the GPU's performance counters here (ERR_NVGPUCTRPERM); run as root or set "
                "NVreg_RestrictProfilingToAdminUsers=0 for the driver")
    lines = [l.strip() for l in log.splitlines() if "ERROR" in l or "error" in l]
    return f"ncu exited with code {code}: {(lines[-1] if lines else log.strip().splitlines()[-1:] or ['no output'])[0][:300]}"


def profile_case(spec: CaseSpec, out_dir: Path | str, *, seed: int = 1234, timeout_s: float = TIMEOUT_S,
                 sections: tuple[str, ...] = SECTIONS, ncu: Optional[str] = None) -> NcuProfile:
    """Profile one call of `spec`; the report and the record land in `out_dir`."""
    from harness.storage import utc_now, write_record

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"ncu-{spec.case_id}"
    ncu = ncu or ncu_binary()
    target = [sys.executable, "-m", "harness.ncu_target", "--spec", json.dumps(to_dict(spec)), "--seed", str(seed)]
    cmd = [ncu or "ncu", "--clock-control", "none", "--profile-from-start", "off", "--target-processes", "all",
           *[a for s in sections for a in ("--section", s)], "-f", "-o", str(out_dir / stem), *target]
    record = NcuProfile(case_id=spec.case_id, report_file=None, command=cmd, ncu_version=None, created_at=utc_now())
    if spec.device != "cuda":
        record.unavailable = "a CPU case: Nsight Compute profiles GPU kernels only"
    elif ncu is None:
        record.unavailable = "ncu (Nsight Compute) not found on PATH or in /usr/local/cuda/bin; install Nsight Compute"
    else:
        record.ncu_version = _version(ncu)
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[1])  # the target imports this harness
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired:
            record.unavailable = f"ncu did not finish within {timeout_s:g} s"
        except OSError as exc:
            record.unavailable = f"could not start ncu: {exc.strerror or exc}"
        else:
            log = (proc.stdout or "") + (proc.stderr or "")
            report = out_dir / f"{stem}.ncu-rep"
            if proc.returncode != 0 or not report.is_file():
                record.unavailable = _why_failed(log, proc.returncode)
            else:
                record.report_file = report.name
                raw = _export(ncu, report, "raw")
                details = _export(ncu, report, "details")
                record.kernels = kernels_from(raw, details)
                if not record.kernels:
                    record.unavailable = ("ncu profiled no kernel (did the call launch one between "
                                          f"cudaProfilerStart/Stop?): {log.strip().splitlines()[-1:] or ''}")
    if record.kernels:
        record.main_kernel = max(record.kernels, key=lambda k: k.duration_us or 0.0).name
    write_record(out_dir / f"{stem}.json", record)
    return record


def _export(ncu: str, report: Path, page: str) -> str:
    try:
        proc = subprocess.run([ncu, "--import", str(report), "--page", page, "--csv"], capture_output=True, text=True,
                              timeout=120)
        return proc.stdout
    except (subprocess.TimeoutExpired, OSError):
        return ""


def _version(ncu: str) -> Optional[str]:
    try:
        text = subprocess.run([ncu, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (subprocess.TimeoutExpired, OSError):
        return None
    m = re.search(r"Version\s+(\S+)", text)
    return m.group(1) if m else None


def summary_lines(p: NcuProfile) -> list[str]:
    """The few lines a summary shows: the main kernel's metrics, or why there are none."""
    if p.unavailable:
        return [f"Nsight Compute: not available ({p.unavailable})"]
    k = p.main()
    if k is None:
        return ["Nsight Compute: no kernel"]

    def pct(x: Optional[float]) -> str:
        return "-" if x is None else f"{x:.1f}%"

    smem = "-" if k.shared_mem_per_block_bytes is None else f"{k.shared_mem_per_block_bytes / 1024:.1f} KiB"
    return [
        f"Nsight Compute {p.ncu_version or ''} on `{k.name[:80]}` ({k.duration_us or 0:.1f} us; report `{p.report_file}`):",
        f"SM throughput {pct(k.sm_throughput_pct)} and memory throughput {pct(k.memory_throughput_pct)} of peak; "
        f"tensor pipe {pct(k.tensor_pipe_pct)}, exponential (XU) pipe {pct(k.xu_pipe_pct)}, issue slots {pct(k.issue_active_pct)};",
        f"occupancy {pct(k.achieved_occupancy_pct)} achieved of {pct(k.theoretical_occupancy_pct)} theoretical; "
        f"{k.registers_per_thread or 0:.0f} registers/thread, {smem} shared memory/block, grid {k.grid_size or 0:.0f} x "
        f"block {k.block_size or 0:.0f}, {k.waves_per_sm or 0:.2f} waves/SM;",
        f"limiter (ncu): {(k.limiter or '-').rstrip('.')}; busiest pipe: {(k.busiest_pipe or '-').rstrip('.')}.",
    ]
