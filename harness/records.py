"""Typed, versioned records that pass between the stages (torch-free).

Every record serialises to JSON with a `schema_version` and a `kind`, and is read back with
`load_record`, which names the file and the field when something is wrong. Which versions a
reader accepts is one policy for every kind of record (harness/versions.py: older ones, never
newer ones).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import stat
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, TypeVar, Union

from harness import versions
from harness.errors import RecordError
from harness.lockcheck import PackageLock

# The version of the harness's records; every kind's version and the format history are in
# harness/versions.py.
SCHEMA_VERSION = versions.HARNESS_VERSION

# The kinds of record, as written in each file's "kind" field.
KIND_CASE = "case_result"
KIND_ENV = "env"
KIND_MANIFEST = "manifest"
KIND_CEILINGS = "ceilings"

DTYPES = ("float16", "bfloat16", "float32")
# A case's status. `invalid`: it ran, but the timed calls were not shown to do the real work (an
# integrity check failed: their outputs, their kernels against an eager call's, the roofline,
# the host clock, a replaced timer); no claim on it can pass (issue 16).
STATUSES = ("ok", "skipped", "failed", "invalid")
CACHE_MODES = ("warm", "cold")


# --------------------------------------------------------------------------- case identity
@dataclass
class CaseSpec:
    """What to measure: one workload at one shape. Its `case_id` names the result file."""

    workload: str  # registry key: "sdpa", "triton_attention", ...
    backend: str  # sdpa: flash|efficient|cudnn|math|default; candidates: their own name
    batch: int
    heads: int
    seq: int
    head_dim: int
    dtype: str = "float16"
    causal: bool = False
    cache: str = "warm"  # warm: back-to-back replays; cold: L2 flushed before each sample
    device: str = "cuda"  # cuda | cpu
    # Tunables of a candidate kernel (block sizes, warps, stages). None for library backends.
    config: Optional[dict[str, Any]] = None

    @property
    def case_id(self) -> str:
        mask = "causal" if self.causal else "full"
        # A user's workload "package.module:ATTR" is named "package.module.ATTR" (file names).
        cid = (
            f"{self.workload.replace(':', '.')}-{self.backend}-b{self.batch}h{self.heads}s{self.seq}d{self.head_dim}"
            f"-{self.dtype}-{mask}-{self.cache}-{self.device}"
        )
        if self.config:
            digest = hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()
            cid += f"-cfg{digest[:8]}"
        return cid

    @property
    def shape_key(self) -> str:
        """Shape and numerics without the backend: cases with equal keys are comparable."""
        mask = "causal" if self.causal else "full"
        return f"b{self.batch}h{self.heads}s{self.seq}d{self.head_dim}-{self.dtype}-{mask}-{self.cache}-{self.device}"


# --------------------------------------------------------------------------- timing
@dataclass
class Repetition:
    """One independent repetition of a case: fresh inputs, fresh allocations, fresh graph."""

    samples_ms: list[float]  # per-kernel-call device time of each sample, in order
    inner_iters: int  # kernel calls per sample (a sample = one graph replay of this many calls)
    converged: bool
    stop_reason: str  # "converged" | "max_time" | "max_samples"
    rel_halfwidth: Optional[float]  # 95% CI half-width of the median over the median, at stop
    wall_s: float
    # The SM clock NVML read after each kept batch (schema 5): samples [i*batch, (i+1)*batch) were
    # timed at batch_sm_mhz[i]; time x clock is the batch's cycles per call. Empty on the CPU.
    batch_sm_mhz: list[Optional[int]] = field(default_factory=list)


@dataclass
class TimingSummary:
    """Statistics over all repetitions (between-run aware when there are several)."""

    n_samples: int
    n_repetitions: int
    median_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    ci_low_ms: float  # CI of the median (hierarchical bootstrap when n_repetitions > 1)
    ci_high_ms: float
    ci_level: float
    ci_method: str
    rel_halfwidth: float
    converged: bool  # every repetition met the precision target
    flags: list[str] = field(default_factory=list)  # e.g. "ties", "bca_fallback_percentile"


@dataclass
class ClockStats:
    """NVML clocks read after every batch of samples while the case was timed: a slower card
    state (a power cap pulling the SM clock down) is told apart from a slower kernel by these."""

    readings: int
    sm_mhz_median: Optional[float]
    sm_mhz_min: Optional[float]
    sm_mhz_max: Optional[float]
    mem_mhz_median: Optional[float]
    mem_mhz_min: Optional[float]
    mem_mhz_max: Optional[float]
    # Board power NVML read after each batch, W (schema 5), and the median's cycles per call
    # (median time x median SM clock): a time that rose with flat cycles is the clock, not the code.
    power_w_median: Optional[float] = None
    power_w_min: Optional[float] = None
    power_w_max: Optional[float] = None
    cycles_per_call: Optional[float] = None


@dataclass
class Timing:
    method: str  # "cuda_graph" | "cuda_events" | "perf_counter"
    fallback_reason: Optional[str]  # why the preferred method was not used, else None
    target_rel_ci: float
    warmup_calls: int
    repetitions: list[Repetition]
    summary: TimingSummary
    throttle_reasons: list[str] = field(default_factory=list)  # NVML clock-event reasons seen
    clocks: Optional[ClockStats] = None  # None on the CPU or without NVML (CaseResult.unavailable)
    # The lock's fill setting read in the timing process right before sampling (issue 8: it must
    # be off there, not only where the lock was applied).
    fill_uninitialized_memory: Optional[bool] = None
    # The seed of the summary's bootstrap: the checker recomputes the summary from the raw samples
    # and, with the same seed, gets the same CI (None in files before schema 3: the plan default).
    bootstrap_seed: Optional[int] = None
    # What state of the machine the numbers describe (schema 5), in words: warm-up, sample
    # length, what runs between batches, whether the clock was free or locked.
    regime: Optional[str] = None


# --------------------------------------------------------------------------- kernel census
@dataclass
class CensusEntry:
    """One GPU activity (or, on the CPU, one ATen operator) of a case's call."""

    name: str  # the kernel's full name as the profiler reports it
    kind: str  # kernel | memset | memcpy | cpu_op
    launches_per_call: float
    ms_per_call: float  # device time per call (CPU: self time per call)
    share_of_median: Optional[float]  # ms_per_call / the case's median


@dataclass
class Census:
    """What ran in a case's call, from one profiled graph replay (harness/census.py)."""

    method: str
    calls: int  # calls in the profiled replay
    entries: list[CensusEntry]
    ms_per_call: float  # all device activities (CPU: all operators' self time) per call
    share_of_median: Optional[float]
    unlocked_entries: list[CensusEntry] = field(default_factory=list)  # the same call, lock lifted
    matches_unlocked: Optional[bool] = None  # same activities and launches per call
    differences: list[str] = field(default_factory=list)
    # NVML's SM clock right after the profiled replay: a short replay after a pause can run at a
    # higher clock than the sustained sampling did (Timing.clocks), so its kernel times can be
    # shorter than the median by that ratio.
    sm_mhz: Optional[int] = None


# --------------------------------------------------------------------------- integrity
@dataclass
class IntegrityCheck:
    """One piece of evidence that the timed calls did the real work (harness/integrity/)."""

    name: str  # timed_outputs | output_alias | census_vs_eager | census_time | roofline | host_clock | timer_tamper
    passed: Optional[bool]  # None: not run here (`detail` says why)
    detail: str  # what was compared, with the numbers
    value: Optional[float] = None  # the measured quantity (an error, a ratio, a time)
    bound: Optional[float] = None  # the bound it was held to


@dataclass
class Integrity:
    """Why an ok case is not a cheat: the outputs of the timed replays checked on input sets the
    kernel had not seen, its timed kernels an eager call's, its speed within the roofline, its
    event times the host clock's. A failed check makes the case `invalid`."""

    checks: list[IntegrityCheck]
    input_sets: int  # distinct input buffers rotated between timed batches
    refreshes: int  # times their contents were replaced with fresh data during timing

    def failed(self) -> list[IntegrityCheck]:
        return [c for c in self.checks if c.passed is False]


# --------------------------------------------------------------------------- the other parts
@dataclass
class Throughput:
    flops: float  # 4*B*H*S*S*D forward, halved when causal
    bytes: float  # q, k, v read once, o written once
    tflops: float
    gbps: float


@dataclass
class Memory:
    predicted_bytes: int
    # The case's own peak: max allocated during one call (inputs, output, workspaces allocated
    # on first use) above what was allocated before the case began. None on the CPU.
    peak_allocated_bytes: Optional[int]
    peak_reserved_bytes: Optional[int]
    free_bytes_before: Optional[int]
    total_bytes: Optional[int]


@dataclass
class Correctness:
    reference: str  # "float64"
    # ||out - ref|| / ||ref|| on fresh random inputs; None when it is not a finite number (the
    # output held NaN or inf): JSON cannot hold those, and such a case fails correctness.
    rel_error: Optional[float]
    tolerance: float
    passed: bool
    bitwise_repeat: bool  # same inputs twice gave the same bytes


@dataclass
class GpuProcess:
    """A process other than this run's with a compute context on the GPU, as NVML lists it."""

    pid: int  # as NVML reports it: the host's PID, also inside a container
    used_memory_mib: Optional[float] = None
    sm_util_pct: Optional[int] = None  # its SM share in NVML's latest per-process sample, where reported
    name: Optional[str] = None  # /proc/<pid>/comm where this process can see it
    mps_client: bool = False  # listed as an MPS client


@dataclass
class Watch:
    """The machine while a case (or the ceilings) was timed: NVML read after every sampling batch
    (harness/machine/watch.py). A batch that ran beside another process's compute context, or
    below the throttle threshold, is discarded and measured again; when waiting does not help
    the samples are kept and the case says so here (schema 5)."""

    batches: int  # batches read (kept and discarded)
    discarded_foreign: int  # discarded: another process was on the GPU during the batch
    discarded_throttled: int  # discarded: SM clock below throttle_threshold x the maximum
    foreign: list[GpuProcess]  # every other process seen on the GPU while timing, first reading each
    shared: bool  # samples were kept while another process was on the GPU: the case is invalid
    throttled: bool  # samples were kept below the threshold (the retries ran out)
    waited_s: float  # time spent waiting for the GPU to be free or the clock to recover
    sm_mhz_threshold: Optional[float]  # throttle_threshold x the maximum SM clock
    unavailable: Optional[str] = None  # why NVML could not watch (then nothing was checked)


@dataclass
class CaseResult:
    case: CaseSpec
    status: str  # "ok" | "skipped" | "failed" | "invalid" (STATUSES)
    reason: Optional[str] = None  # why skipped/failed/invalid
    timing: Optional[Timing] = None
    throughput: Optional[Throughput] = None
    memory: Optional[Memory] = None
    correctness: Optional[Correctness] = None
    census: Optional[Census] = None
    # The integrity checks (schema 4 on); None before schema 4, or when the case was not timed.
    integrity: Optional[Integrity] = None
    watch: Optional[Watch] = None  # the machine while it was timed (schema 5; None on the CPU)
    unavailable: dict[str, str] = field(default_factory=dict)  # field -> why it is None
    # Wall seconds per phase of this case: correctness, memory, warmup (warm-up, calibration,
    # capture), sampling, census. Summed by the launcher into run.json's cost of a reproduction.
    phases_s: dict[str, float] = field(default_factory=dict)
    started_at: str = ""
    finished_at: str = ""
    harness_version: str = ""
    schema_version: int = SCHEMA_VERSION
    kind: str = KIND_CASE


# --------------------------------------------------------------------------- environment
@dataclass
class GpuState:
    """NVML reading at one moment; None fields could not be read (see EnvRecord.unavailable)."""

    sm_clock_mhz: Optional[int] = None
    sm_clock_max_mhz: Optional[int] = None
    mem_clock_mhz: Optional[int] = None
    mem_clock_max_mhz: Optional[int] = None
    power_limit_w: Optional[float] = None
    power_draw_w: Optional[float] = None
    temperature_c: Optional[int] = None
    persistence_mode: Optional[bool] = None
    ecc_enabled: Optional[bool] = None
    mig_enabled: Optional[bool] = None
    throttle_reasons: list[str] = field(default_factory=list)
    # Schema 5: the limit set by the administrator (nvidia-smi -pl), the board's default, and
    # the compute mode (Default | Exclusive_Process | Prohibited).
    power_management_limit_w: Optional[float] = None
    power_default_limit_w: Optional[float] = None
    compute_mode: Optional[str] = None


@dataclass
class MachineGate:
    """What the harness found on the GPU before it ran anything (env.json `machine`, schema 5;
    harness/machine/gate.py)."""

    checked: bool  # False: NVML could not list the GPU's processes (`why` says why)
    foreign: list[GpuProcess]  # other processes with a compute context (or MPS clients)
    gpu_util_pct: Optional[int]  # GPU utilisation before this run used the GPU
    allowed_shared: bool  # --allow-shared-gpu was given
    shared: bool  # the run went ahead with another process on the GPU (allowed)
    own_pids: list[int] = field(default_factory=list)  # the PID(s) NVML lists for this run
    why: str = ""  # what was found, in words


@dataclass
class GpuInfo:
    name: Optional[str] = None
    uuid: Optional[str] = None
    compute_capability: Optional[str] = None  # "9.0"
    sm_count: Optional[int] = None
    memory_bytes: Optional[int] = None
    l2_bytes: Optional[int] = None


@dataclass
class EnvRecord:
    """env.json: what ran, on what, with which settings in force."""

    created_at: str
    harness_version: str
    device: str  # "cuda" | "cpu"
    gpu: Optional[GpuInfo]
    nvidia_driver_version: Optional[str]  # e.g. "580.159.04" (NVML / nvidia-smi)
    cuda_driver_version: Optional[str]  # highest CUDA the driver supports, e.g. "13.0"
    cuda_runtime_version: Optional[str]  # the runtime actually loaded
    torch_cuda_build: Optional[str]  # torch.version.cuda: what torch was compiled against
    cudnn_version: Optional[str]
    gpu_state_before: Optional[GpuState]
    gpu_state_after: Optional[GpuState]
    software: dict[str, Optional[str]]  # python, torch, triton, numpy, scipy, ... versions
    host: dict[str, Any]  # cpu_model, cpu_count, governor, os, kernel, hostname_hash
    in_container: Optional[bool]
    lock: dict[str, Any]  # the lock settings as read back after locking
    lock_failures: dict[str, str]  # setting -> why it could not be locked
    unavailable: dict[str, str]  # field -> why it is None
    # The hash-locked requirements the environment was installed from (ARTIFACT_LOCK_FILE) and
    # whether the installed versions match them; None (with the reason in `unavailable`) if none.
    package_lock: Optional[PackageLock] = None
    machine: Optional[MachineGate] = None  # the shared-GPU gate (schema 5; None on the CPU)
    schema_version: int = SCHEMA_VERSION
    kind: str = KIND_ENV


@dataclass
class Manifest:
    """manifest.json: sha256 of every file under the output folder except itself."""

    files: dict[str, str]  # relative posix path -> sha256 hex
    created_at: str
    harness_version: str
    # Schema 5: written true while a sweep runs (after each case), false when it ends: a check of a
    # folder still being written says so instead of "the results were edited".
    in_progress: bool = False
    schema_version: int = SCHEMA_VERSION
    kind: str = KIND_MANIFEST


# --------------------------------------------------------------------------- the card's ceilings
@dataclass
class Ceiling:
    """A ceiling of the device measured in the same run as the cases: share of peak needs no
    peaks file from another machine."""

    metric: str  # matmul_tflops | copy_gbps (an elementwise kernel) | memcpy_gbps (Tensor.copy_)
    value: float  # at the median time
    unit: str  # TFLOP/s | GB/s
    dtype: Optional[str]
    what: str  # the operation and its size
    median_ms: float
    ci_low_ms: float
    ci_high_ms: float
    work: float  # FLOP or bytes per call (bytes read + written for the copy)
    n_samples: int


@dataclass
class CeilingsRecord:
    """ceilings.json: the device's compute and memory ceilings, measured before the cases."""

    created_at: str
    device: str
    gpu_name: Optional[str]
    ceilings: list[Ceiling]
    unavailable: dict[str, str] = field(default_factory=dict)
    wall_s: Optional[float] = None  # what measuring them cost
    watch: Optional[Watch] = None  # the machine while they were timed (schema 5): shared -> not used
    schema_version: int = SCHEMA_VERSION
    kind: str = KIND_CEILINGS

    def get(self, metric: str) -> Optional[Ceiling]:
        for c in self.ceilings:
            if c.metric == metric:
                return c
        return None

    def bandwidth(self) -> Optional[Ceiling]:
        """The memory roof: the faster of the measured copies."""
        copies = [c for c in self.ceilings if c.metric in ("copy_gbps", "memcpy_gbps")]
        return max(copies, key=lambda c: c.value) if copies else None


# --------------------------------------------------------------------------- (de)serialisation
T = TypeVar("T")


def to_dict(record: Any) -> dict[str, Any]:
    return dataclasses.asdict(record)


def to_json(record: Any) -> str:
    return json.dumps(to_dict(record), indent=2, sort_keys=False, allow_nan=False) + "\n"


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _build(tp: Any, value: Any, where: str) -> Any:
    tp, optional = _strip_optional(tp)
    if value is None:
        if optional or tp is Any:
            return None
        raise RecordError(f"{where}: is null but must be set")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise RecordError(f"{where}: expected an object, got {type(value).__name__}")
        return from_dict(typing.cast(type, tp), value, where)
    origin = typing.get_origin(tp)
    if origin is list:
        if not isinstance(value, list):
            raise RecordError(f"{where}: expected a list, got {type(value).__name__}")
        (item_tp,) = typing.get_args(tp) or (Any,)
        return [_build(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise RecordError(f"{where}: expected an object, got {type(value).__name__}")
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecordError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            # load_json refuses NaN and Infinity; a record built in memory must not carry them either.
            raise RecordError(f"{where}: {value!r} is not a finite number; re-run the case")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecordError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise RecordError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise RecordError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build a dataclass from a dict, checking types and naming the bad field."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(typing.cast(Any, cls)):
        path = f"{where}.{f.name}" if where else f.name
        if f.name not in data:
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                continue
            raise RecordError(f"{path}: missing field")
        kwargs[f.name] = _build(hints[f.name], data[f.name], path)
    return cls(**kwargs)


_KIND_TO_CLASS: dict[str, type[Any]] = {KIND_CASE: CaseResult, KIND_ENV: EnvRecord, KIND_MANIFEST: Manifest, KIND_CEILINGS: CeilingsRecord}


# A case of the harness's largest plan (2000 samples x a few repetitions) is well under 1 MiB; a
# bigger record is not one the harness wrote, and parsing it would cost memory in proportion.
MAX_RECORD_BYTES = 16 * 2**20


def _not_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as inf
        raise ValueError(f"{text[:20]} is not a finite number")
    return value


# Characters no record holds: C0/C1 controls but tab and newlines (a terminal escape sequence in a
# GPU name or a reason reaches the reviewer's terminal and verdict.md) and the Unicode bidi
# controls (U+202E made "NVIDIA H200" + U+202E display as H200 while matching no claim).
_UNSAFE_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class _Unsafe(ValueError):
    pass


def unsafe_text(value: str) -> Optional[str]:
    """The first control or bidi character in `value` as U+XXXX, None when there is none."""
    m = _UNSAFE_CHARS.search(value)
    return None if m is None else f"U+{ord(m.group(0)):04X}"


def _strict_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique (json keeps the last of a duplicated key silently, so a
    second "timing" would replace the first unseen) and whose strings hold no control character."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Unsafe(f"the key {key!r} appears twice in one object (a record has each field once)")
        texts = [key]
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list):
            texts += [v for v in value if isinstance(v, str)]
        for text in texts:
            bad = unsafe_text(text)
            if bad:
                raise _Unsafe(f"field {key!r} holds the control character {bad} (no record holds one)")
        out[key] = value
    return out


def parse_json_text(text: str, where: str) -> Any:
    """Strict JSON: NaN, Infinity and numbers beyond float range are refused (no record holds
    them), as are duplicated keys and control characters in strings, and nesting deeper than the
    parser's recursion limit is a RecordError, not a crash."""
    try:
        return json.loads(text, parse_constant=_not_json_constant, parse_float=_finite_float,
                          object_pairs_hook=_strict_object)
    except _Unsafe as exc:
        raise RecordError(f"{where}: {exc}; not a file the harness wrote") from None
    except json.JSONDecodeError as exc:
        cut = exc.pos >= len(text.rstrip()) - 1 or exc.msg.startswith("Unterminated string")
        hint = " (truncated? re-run the case, or use --resume)" if cut else ""
        raise RecordError(f"{where}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}{hint}") from None
    except RecursionError:
        raise RecordError(f"{where}: JSON nested too deeply to be a record; re-run the benchmark") from None
    except ValueError as exc:  # NaN/Infinity, huge integers (Python's digit limit)
        raise RecordError(f"{where}: not valid JSON: {str(exc).splitlines()[0][:120]}; re-run the case") from None


def load_json(path: Path | str, max_bytes: int = MAX_RECORD_BYTES) -> Any:
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO planted where a record should be must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise RecordError(f"{path}: not a regular file; a record is a plain JSON file")
            raw = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise RecordError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise RecordError(f"{path}: is a folder, not a record file") from None
    except OSError as exc:
        raise RecordError(f"{path}: cannot read ({exc.strerror})") from None
    if len(raw) > max_bytes:
        raise RecordError(f"{path}: larger than {max_bytes // 2**20} MiB, which no harness record is; "
                          "this is not a file the harness wrote")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"{path}: not UTF-8 text (byte {exc.start}); not a file the harness wrote") from None
    return parse_json_text(text, str(path))


@typing.overload
def load_record(path: Path | str, cls: type[T]) -> T: ...
@typing.overload
def load_record(path: Path | str, cls: None = None) -> Any: ...
def load_record(path: Path | str, cls: type[Any] | None = None) -> Any:
    """Read a record file; `cls` defaults to the class named by the file's `kind`."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected a JSON object at the top level")
    if "schema_version" not in data:
        raise RecordError(f"{path}: schema_version: missing; not a record this project wrote")
    if cls is None:
        kind = data.get("kind")
        if kind not in _KIND_TO_CLASS:
            raise RecordError(f"{path}: kind: unknown record kind {kind!r}")
        cls = _KIND_TO_CLASS[kind]
    versions.check(path, record_kind(cls, data), data["schema_version"])
    try:
        return from_dict(cls, data)
    except RecordError as exc:
        raise RecordError(f"{path}: {exc}") from None


def record_kind(cls: type, data: dict[str, Any]) -> str:
    """The registered kind a file is read as: the class's own (its `kind` field's default), else
    the file's `kind`, else the harness's records' (whose version they share)."""
    for f in dataclasses.fields(cls):
        if f.name == "kind" and isinstance(f.default, str) and f.default in versions.KINDS:
            return f.default
    kind = data.get("kind")
    return kind if isinstance(kind, str) and kind in versions.KINDS else KIND_CASE
