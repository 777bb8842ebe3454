"""What to run: profiles, YAML plans and command-line flags become a validated Plan (torch-free).

A plan file looks like:

    schema_version: 1
    timing: {target_rel_ci: 0.01, max_time_s: 5, repeats: 1}
    defaults: {workload: sdpa, batch: 32, heads: 8, head_dim: 64, dtype: float16}
    cases:
      - {backend: [flash, cudnn], seq: [128, 512]}   # lists expand to their cross product

Every error names the file and the field.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Optional

from harness import versions, workloads
from harness.errors import HarnessError
from harness.records import CACHE_MODES, DTYPES, CaseSpec

KIND_PLAN = "plan"  # its version and format history: harness/versions.py
PLAN_VERSION = versions.current(KIND_PLAN)
# The bounds of a plan: the full profile has 25 cases, the artifact plans 30. Beyond these a plan
# is a typo (or hostile) and would run for days, or fail to fit in memory while being expanded.
MAX_CASES = 10_000
MAX_SAMPLES = 20_000  # per repetition (artifact.results.checks.MAX_CASE_SAMPLES bounds a case's file)
MAX_REPEATS = 20


@dataclass
class TimingConfig:
    """How each case is measured. The adaptive rule stops a repetition once the 95% CI
    half-width of the median is within target_rel_ci of the median, or a cap is hit."""

    target_rel_ci: float = 0.01
    min_samples: int = 30
    max_samples: int = 2000
    min_time_s: float = 0.25  # sample at least this long: the clocks settle under sustained load
    max_time_s: float = 3.0  # per repetition, sampling only
    repeats: int = 1  # independent repetitions: fresh inputs, allocations and graph
    sample_target_ms: float = 1.0  # a warm-cache sample replays enough calls to last about this
    # Long enough for the GPU's power and clock state to settle: with 25 ms the H100 read up
    # to 5% faster than triton's do_bench_cudagraph at S=1024-2048 (bench/h100/NOTES.md).
    warmup_ms: float = 250.0
    batch: int = 10  # samples between stopping-rule checks
    seed: int = 1234
    # The machine (harness/machine/watch.py). nvbench's rule and defaults: a batch read below
    # throttle_threshold x the maximum SM clock is discarded and sampling resumes after
    # throttle_recovery_s (0 turns the check off). A batch beside another process on the GPU is
    # discarded and the case waits up to shared_wait_s for the GPU to be free, then is invalid.
    throttle_threshold: float = 0.75
    throttle_recovery_s: float = 0.05
    shared_wait_s: float = 10.0


@dataclass
class Plan:
    cases: list[CaseSpec]
    timing: TimingConfig
    source: str  # "profile:smoke", "plan:<path>", "flags"
    check_correctness: bool = True
    # Intra-op threads for CPU cases (None: torch's default). The smoke profile pins 1: with two
    # threads on a busy 2-core machine every parallel op waited a scheduler timeslice for its
    # descheduled worker (flash read 8 ms instead of 0.17 ms), and rankings flipped.
    cpu_threads: Optional[int] = None
    census: bool = True  # a kernel census per case (harness/census.py)
    ceilings: bool = True  # measure the device's ceilings before the cases (harness/ceilings.py)


# The default full sweep of the issue: B=32, H=8, D=64, fp16, S in 128..4096, every SDPA backend.
_FULL_SEQS = (128, 512, 1024, 2048, 4096)


def _profile_full() -> Plan:
    cases = [
        CaseSpec(workload="sdpa", backend=b, batch=32, heads=8, seq=s, head_dim=64, dtype="float16", device="cuda")
        for s in _FULL_SEQS
        for b in workloads.SDPA_BACKENDS
    ]
    return Plan(cases=cases, timing=TimingConfig(), source="profile:full")


def _profile_smoke(device: str) -> Plan:
    # Small enough for a laptop CPU in well under a minute; still exercises every stage.
    backends = ("math", "flash", "default") if device == "cpu" else workloads.SDPA_BACKENDS
    dtype = "float32" if device == "cpu" else "float16"
    cases = [
        CaseSpec(workload="sdpa", backend=b, batch=2, heads=4, seq=s, head_dim=32, dtype=dtype, device=device)
        for s in (64, 128, 256)
        for b in backends
    ]
    timing = TimingConfig(target_rel_ci=0.02, min_samples=15, max_samples=400, min_time_s=0.02, max_time_s=0.6, warmup_ms=10.0)
    return Plan(cases=cases, timing=timing, source="profile:smoke", cpu_threads=1 if device == "cpu" else None)


PROFILES = ("smoke", "full")


def from_profile(name: str, device: str) -> Plan:
    if name == "smoke":
        return _profile_smoke(device)
    if name == "full":
        if device != "cuda":
            raise HarnessError("--profile full needs a CUDA GPU; on this machine use --profile smoke")
        return _profile_full()
    raise HarnessError(f"--profile: unknown profile {name!r}; choose one of {', '.join(PROFILES)}")


# --------------------------------------------------------------------------- validation
_INT_FIELDS = ("batch", "heads", "seq", "head_dim")


def validate_case(spec: CaseSpec, where: str) -> CaseSpec:
    why = workloads.check_name(spec.workload)
    if why:
        raise HarnessError(f"{where}.workload: {why}")
    why = workloads.check_backend(spec.workload, spec.backend)
    if why:
        raise HarnessError(f"{where}.backend: {why}")
    for name in _INT_FIELDS:
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise HarnessError(f"{where}.{name}: must be a positive integer, got {value!r}")
    if spec.dtype not in DTYPES:
        raise HarnessError(f"{where}.dtype: unknown dtype {spec.dtype!r}; choose from {', '.join(DTYPES)}")
    if spec.cache not in CACHE_MODES:
        raise HarnessError(f"{where}.cache: must be one of {', '.join(CACHE_MODES)}, got {spec.cache!r}")
    if spec.device not in ("cuda", "cpu"):
        raise HarnessError(f"{where}.device: must be cuda or cpu, got {spec.device!r}")
    if not isinstance(spec.causal, bool):
        raise HarnessError(f"{where}.causal: must be true or false, got {spec.causal!r}")
    if spec.config is not None and not isinstance(spec.config, dict):
        raise HarnessError(f"{where}.config: must be a mapping of tunables, got {spec.config!r}")
    return spec


_CASE_KEYS = {f.name for f in fields(CaseSpec)}
_TIMING_KEYS = {f.name: f.type for f in fields(TimingConfig)}


def expand(entry: dict[str, Any], where: str, budget: int = MAX_CASES) -> list[dict[str, Any]]:
    """{'seq': [128, 512], 'backend': 'flash'} -> one dict per combination of the list values.
    The number of combinations is counted before any is made: an 8 KB plan of long lists
    describes millions of cases (26 s and 2.3 GB to expand 5M), none of which anyone meant."""
    keys = list(entry)
    axes = [entry[k] if isinstance(entry[k], list) else [entry[k]] for k in keys]
    for k, axis in zip(keys, axes):
        if not axis:
            raise HarnessError(f"{where}.{k}: empty list")
    count = math.prod(len(a) for a in axes)
    if count > budget:
        raise HarnessError(f"{where}: expands to {count} cases, more than a plan may hold ({MAX_CASES} in all); "
                           "split the sweep into several plans")
    return [dict(zip(keys, combo)) for combo in itertools.product(*axes)]


def _make_case(values: dict[str, Any], device: str, where: str) -> CaseSpec:
    unknown = set(values) - _CASE_KEYS
    if unknown:
        raise HarnessError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; known: {', '.join(sorted(_CASE_KEYS))}")
    values = {"workload": "sdpa", "device": device, **values}
    missing = [k for k in ("backend", *_INT_FIELDS) if k not in values]
    if missing:
        raise HarnessError(f"{where}: missing field(s) {', '.join(missing)}")
    return validate_case(CaseSpec(**values), where)


_FLOAT_KEYS = ("target_rel_ci", "min_time_s", "max_time_s", "sample_target_ms", "warmup_ms", "throttle_threshold",
               "throttle_recovery_s", "shared_wait_s")
_ZERO_OK = ("throttle_threshold", "throttle_recovery_s", "shared_wait_s")  # 0 turns the rule off


def _timing_from(data: Any, where: str, base: TimingConfig) -> TimingConfig:
    if data is None:
        return base
    if not isinstance(data, dict):
        raise HarnessError(f"{where}: must be a mapping")
    updates: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _TIMING_KEYS:
            raise HarnessError(f"{where}.{key}: unknown timing setting; known: {', '.join(sorted(_TIMING_KEYS))}")
        want = float if key in _FLOAT_KEYS else int
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (want is int and not isinstance(value, int)):
            raise HarnessError(f"{where}.{key}: must be a {'number' if want is float else 'whole number'}, got {value!r}")
        if not math.isfinite(value):
            # .nan passes every "<= 0" test and .inf never stops sampling; both crashed writing the case.
            raise HarnessError(f"{where}.{key}: must be a finite number, got {value!r}")
        if value <= 0 and key not in ("seed", *_ZERO_OK):
            raise HarnessError(f"{where}.{key}: must be positive, got {value!r}")
        updates[key] = want(value)
    return check_timing(replace(base, **updates), where)


def check_timing(cfg: TimingConfig, where: str) -> TimingConfig:
    """Bounds no sensible plan exceeds, so a run always ends and its case files stay small."""
    for name, value in vars(cfg).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise HarnessError(f"{where}.{name}: must be a finite number, got {value!r}")
    if not 0 < cfg.target_rel_ci < 1:
        raise HarnessError(f"{where}.target_rel_ci: {cfg.target_rel_ci!r} is not a fraction below 1 (0.01 is 1%)")
    if not 0 <= cfg.throttle_threshold < 1:
        raise HarnessError(f"{where}.throttle_threshold: {cfg.throttle_threshold!r} is not a fraction of the maximum SM "
                           "clock in [0, 1) (0.75 is nvbench's default; 0 turns the check off)")
    for name, top in (("throttle_recovery_s", 10.0), ("shared_wait_s", 600.0)):
        if not 0 <= getattr(cfg, name) <= top:
            raise HarnessError(f"{where}.{name}: {getattr(cfg, name)!r} must be between 0 and {top:g} seconds")
    if cfg.max_samples > MAX_SAMPLES:
        raise HarnessError(f"{where}.max_samples: {cfg.max_samples} exceeds {MAX_SAMPLES} per repetition")
    if cfg.repeats > MAX_REPEATS:
        raise HarnessError(f"{where}.repeats: {cfg.repeats} exceeds {MAX_REPEATS}")
    if cfg.min_samples > cfg.max_samples:
        raise HarnessError(f"{where}.min_samples: {cfg.min_samples} exceeds max_samples {cfg.max_samples}")
    if cfg.max_time_s > 3600 or cfg.min_time_s > 3600:
        raise HarnessError(f"{where}.max_time_s: more than an hour per repetition; give seconds, e.g. 3")
    return cfg


def from_yaml(path: Path | str, device: str) -> Plan:
    import yaml

    from harness import yamlsafe

    path = Path(path)
    try:
        text = yamlsafe.read_user_file(path, noun="plan", missing_fix="", folder_fix="see harness/plans/",
                                       too_big_fix="a plan lists cases, it does not generate them")
    except yamlsafe.UnreadableFile as exc:
        raise HarnessError(str(exc)) from None
    try:
        data = yamlsafe.load(text)
    except yamlsafe.YamlTooBig as exc:
        raise HarnessError(f"{path}: {exc}; write the plan out plainly") from None
    except yamlsafe.YamlUnsafeText as exc:
        raise HarnessError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        line, column, problem = yamlsafe.syntax_error(exc)
        at = f" at line {line} column {column}" if line is not None else ""
        raise HarnessError(f"{path}: malformed YAML{at}: {problem}; fix the plan file") from None
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: a plan must be a mapping with a 'cases' list")
    why = versions.refusal(KIND_PLAN, data.get("schema_version", PLAN_VERSION))
    if why is not None:
        raise HarnessError(f"{path}: {why}")
    unknown = set(data) - {"schema_version", "timing", "defaults", "cases", "check_correctness", "cpu_threads", "census", "ceilings"}
    if unknown:
        raise HarnessError(f"{path}: unknown top-level field(s) {', '.join(sorted(map(str, unknown)))}")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise HarnessError(f"{path}: defaults: must be a mapping")
    entries = data.get("cases")
    if not isinstance(entries, list) or not entries:
        raise HarnessError(f"{path}: cases: must be a non-empty list")
    cases: list[CaseSpec] = []
    for i, entry in enumerate(entries):
        where = f"{path}: cases[{i}]"
        if not isinstance(entry, dict):
            raise HarnessError(f"{where}: must be a mapping")
        for combo in expand({**defaults, **entry}, where, MAX_CASES - len(cases)):
            cases.append(_make_case(combo, device, where))
    timing = _timing_from(data.get("timing"), f"{path}: timing", TimingConfig())
    check = data.get("check_correctness", True)
    if not isinstance(check, bool):
        raise HarnessError(f"{path}: check_correctness: must be true or false")
    threads = data.get("cpu_threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads <= 0):
        raise HarnessError(f"{path}: cpu_threads: must be a positive integer, got {threads!r}")
    switches = {}
    for key in ("census", "ceilings"):
        value = data.get(key, True)
        if not isinstance(value, bool):
            raise HarnessError(f"{path}: {key}: must be true or false, got {value!r}")
        switches[key] = value
    return Plan(cases=_dedupe(cases), timing=timing, source=f"plan:{path}", check_correctness=check, cpu_threads=threads,
                **switches)


def from_flags(
    *,
    seqs: Iterable[int],
    backends: Iterable[str],
    batch: int,
    heads: int,
    head_dim: int,
    dtype: str,
    causal: bool,
    cache: str,
    device: str,
    workload: str = "sdpa",
) -> Plan:
    cases = []
    for s in seqs:
        for b in backends:
            spec = CaseSpec(
                workload=workload, backend=b, batch=batch, heads=heads, seq=s, head_dim=head_dim,
                dtype=dtype, causal=causal, cache=cache, device=device,
            )
            flag = {"backend": "--backends", "seq": "--seq", "batch": "--batch", "heads": "--heads",
                    "head_dim": "--head-dim", "dtype": "--dtype", "cache": "--cache"}
            try:
                cases.append(validate_case(spec, "case"))
            except HarnessError as exc:
                # Name the flag rather than the record field: that is what the user typed.
                msg = str(exc)
                for fname, fl in flag.items():
                    msg = msg.replace(f"case.{fname}:", f"{fl}:")
                raise HarnessError(msg) from None
    return Plan(cases=_dedupe(cases), timing=TimingConfig(), source="flags")


def _dedupe(cases: list[CaseSpec]) -> list[CaseSpec]:
    seen: dict[str, CaseSpec] = {}
    for c in cases:
        seen.setdefault(c.case_id, c)
    return list(seen.values())


def parse_positive_ints(values: Iterable[str], flag: str) -> list[int]:
    out = []
    for v in values:
        for part in str(v).replace(",", " ").split():
            try:
                n = int(part)
            except ValueError:
                raise HarnessError(f"{flag}: {part!r} is not a positive integer") from None
            if n <= 0:
                raise HarnessError(f"{flag}: {part!r} is not a positive integer")
            out.append(n)
    if not out:
        raise HarnessError(f"{flag}: give at least one value")
    return out
