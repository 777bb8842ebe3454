"""The reference tolerance file: where it was measured, and the claims a rerun must meet (torch-free).

A reference file is YAML:

    schema_version: 1
    kind: reference
    name: h100
    hardware:                       # what the reference runs ran on
      device: cuda
      gpu_name: NVIDIA H100 80GB HBM3
      compute_capability: "9.0"
      peaks:                        # measured figures with their source, used by the report
        - {metric: tflops, dtype: float16, value: 687.0, unit: TFLOP/s, source: "..."}
    defaults: {workload: sdpa, batch: 32, heads: 8, head_dim: 64, dtype: float16}
    claims:
      - id: abs-flash-s512
        kind: absolute
        scope: {kind: gpu_model, gpu_name: NVIDIA H100 80GB HBM3}
        case: {backend: flash, seq: 512}
        metric: median_ms
        reference: 0.1234
        tolerance: {rel: 0.06, rule: equivalence, derivation: {...}}

Every error names the file, the line and the field, and exits with code 2. The claim kinds and
their fields live in artifact/claims.py; this module reads the file and the parts claims share
(scope, tolerance, case selectors, hardware).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

import yaml

from artifact.errors import ArtifactError
from harness import workloads
from harness.records import CACHE_MODES, DTYPES, CaseSpec, EnvRecord

# Format history (readers accept every older version):
#   1  first release
#   2  `timing`: how the reference's cases were timed; a case timed otherwise is not comparable
REFERENCE_SCHEMA_VERSION = 2
KIND_REFERENCE = "reference"
TIMING_METHODS = ("cuda_graph", "cuda_events", "perf_counter")

SCOPE_KINDS = ("any", "any_gpu", "gpu_model", "compute_capability", "cpu")
NUMERIC_RULES = ("point", "equivalence")
DEVICES = ("cuda", "cpu")
PEAK_METRICS = ("tflops", "gbps")

# The CaseSpec fields a claim may select on; `config` is reached through case_id only.
CASE_FIELDS = ("workload", "backend", "batch", "heads", "seq", "head_dim", "dtype", "causal", "cache", "device")
_INT_FIELDS = ("batch", "heads", "seq", "head_dim")
_CASE_DEFAULTS = {f.name: f.default for f in fields(CaseSpec) if f.name in ("dtype", "causal", "cache")}

# What CaseSpec.case_id produces, so a case_id that no run could write is caught when the file is read.
_CASE_ID = re.compile(
    r"^(?P<workload>[a-z0-9_]+)-(?P<backend>[a-z0-9_]+)-b(?P<batch>\d+)h(?P<heads>\d+)s(?P<seq>\d+)d(?P<head_dim>\d+)"
    r"-(?P<dtype>[a-z0-9]+)-(?P<mask>full|causal)-(?P<cache>[a-z]+)-(?P<device>[a-z]+)(?:-cfg[0-9a-f]{8})?$"
)


class ReferenceFileError(ArtifactError):
    """The reference file cannot be used: printed as `FILE:LINE: FIELD: problem; fix`, exit 2."""


# --------------------------------------------------------------------------- YAML with line numbers
class _LineDict(dict):
    line: int = 0
    key_lines: dict


class _LineList(list):
    line: int = 0
    item_lines: list


# libyaml's parser when PyYAML has it (10x faster on the 80 KB H200 reference); the constructors,
# and so what a file may contain, are SafeLoader's either way.
_SafeBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeBase):  # type: ignore[misc,valid-type]
    """SafeLoader whose mappings and lists remember the line of every key and item."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    out = _LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            # `? [a, b]` makes a list a key: unhashable, it crashed the loader with a TypeError.
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain name, not a list or a mapping", key_node.start_mark
            )
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {out.key_lines[key]})", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


class Node:
    """A value from the file with where it came from, and typed accessors that raise
    ReferenceFileError naming file, line and field path."""

    def __init__(self, value: Any, path: str, file: Path, line: int):
        self.value = value
        self.path = path
        self.file = file
        self.line = line

    def error(self, problem: str, fix: str = "") -> ReferenceFileError:
        where = f"{self.path}: " if self.path else ""
        return ReferenceFileError(f"{self.file}:{self.line}: {where}{problem}" + (f"; {fix}" if fix else ""))

    def _sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    # -- structure
    def mapping(self) -> dict:
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {_describe(self.value)}")
        return self.value

    def has(self, key: str) -> bool:
        return key in self.mapping()

    def get(self, key: str, required: bool = True) -> Optional[Node]:
        m = self.mapping()
        if key not in m:
            if required:
                raise self.error(f"missing field '{key}'", f"add '{key}:' to this entry")
            return None
        lines = getattr(m, "key_lines", {})
        return Node(m[key], self._sub(key), self.file, lines.get(key, self.line))

    def only_keys(self, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        m = self.mapping()
        for key in m:
            if key not in allowed:
                line = getattr(m, "key_lines", {}).get(key, self.line)
                raise Node(m[key], self._sub(str(key)), self.file, line).error(
                    "unknown field", f"allowed here: {', '.join(allowed)}"
                )

    def items(self) -> list[Node]:
        if not isinstance(self.value, list):
            raise self.error(f"expected a list, got {_describe(self.value)}")
        lines = getattr(self.value, "item_lines", [self.line] * len(self.value))
        return [Node(v, f"{self.path}[{i}]", self.file, lines[i]) for i, v in enumerate(self.value)]

    # -- scalars
    def text(self) -> str:
        if not isinstance(self.value, str) or not self.value.strip():
            raise self.error(f"expected a non-empty string, got {_describe(self.value)}")
        return self.value

    def number(self, positive: bool = False, nonnegative: bool = False) -> float:
        v = self.value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
            raise self.error(f"expected a finite number, got {_describe(v)}")
        if positive and v <= 0:
            raise self.error(f"must be positive, got {v!r}")
        if nonnegative and v < 0:
            raise self.error(f"must not be negative, got {v!r}")
        return float(v)

    def integer(self, positive: bool = False) -> int:
        v = self.value
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(f"expected a whole number, got {_describe(v)}")
        if positive and v <= 0:
            raise self.error(f"must be positive, got {v!r}")
        return v

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.error(f"expected true or false, got {_describe(self.value)}")
        return self.value

    def choice(self, options: Iterable[str]) -> str:
        options = tuple(options)
        if self.value not in options:
            raise self.error(f"{self.value!r} is not one of {', '.join(options)}")
        return self.value


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{value!r}"


def load_yaml(path: Path) -> tuple[Node, str]:
    """The file's top-level node and its text; bad YAML names the line and column. Bounded in
    size, depth and aliases (harness.yamlsafe) before anything is built."""
    from harness import yamlsafe

    try:
        text = yamlsafe.read_text(path)
    except FileNotFoundError:
        raise ReferenceFileError(f"{path}: reference file not found; give an existing file to --reference") from None
    except IsADirectoryError:
        raise ReferenceFileError(f"{path}: is a folder; give a reference file (artifact/references/*.yaml)") from None
    except OSError as exc:
        raise ReferenceFileError(f"{path}: cannot read the reference file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ReferenceFileError(f"{path}: not UTF-8 text (byte {exc.start}); a reference is a YAML text file") from None
    except yamlsafe.YamlTooBig as exc:
        raise ReferenceFileError(f"{path}: {exc}; not a reference file") from None
    try:
        data = yamlsafe.load(text, _Loader)
    except yamlsafe.YamlTooBig as exc:
        raise ReferenceFileError(f"{path}: {exc}; a reference file is written out plainly (no anchors needed)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{mark.line + 1}: column {mark.column + 1}: " if mark else "1: "
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ReferenceFileError(f"{path}:{at}malformed YAML: {problem}; fix the syntax at that line") from None
    return Node(data, "", path, getattr(data, "line", 1)), text


# --------------------------------------------------------------------------- shared parts of claims
@dataclass
class Scope:
    """Where a claim applies. Out of scope, a claim is SKIP with the reason."""

    kind: str  # any | any_gpu | gpu_model | compute_capability | cpu
    gpu_name: Optional[str] = None
    cc_min: Optional[str] = None
    cc_max: Optional[str] = None

    def describe(self) -> str:
        if self.kind == "gpu_model":
            return f"GPU model {self.gpu_name}"
        if self.kind == "compute_capability":
            if self.cc_min == self.cc_max:
                return f"compute capability {self.cc_min}"
            return f"compute capability {self.cc_min}..{self.cc_max}"
        return {"any": "any hardware", "any_gpu": "any GPU", "cpu": "CPU runs"}[self.kind]

    def applies(self, env: EnvRecord) -> tuple[bool, str]:
        """(in scope, why not) for the hardware recorded in env.json."""
        on = _hardware_words(env)
        if self.kind == "any":
            return True, ""
        if self.kind == "cpu":
            return (env.device == "cpu", f"claim is for CPU runs; results ran on {on}")
        if env.device != "cuda" or env.gpu is None:
            return False, f"claim needs {self.describe()}; results ran on {on}"
        if self.kind == "any_gpu":
            return True, ""
        if self.kind == "gpu_model":
            name = (env.gpu.name or "").strip()
            return (name == self.gpu_name, f"claim is for {self.gpu_name}; results ran on {on}")
        cc = env.gpu.compute_capability
        if cc is None:
            return False, "claim needs a compute-capability range, but env.json has no gpu.compute_capability"
        inside = _cc_tuple(self.cc_min) <= _cc_tuple(cc) <= _cc_tuple(self.cc_max)
        return inside, f"claim needs {self.describe()}; results ran on {on} (compute capability {cc})"


def _hardware_words(env: EnvRecord) -> str:
    if env.device == "cuda" and env.gpu is not None:
        return env.gpu.name or "an unnamed GPU"
    cpu = (env.host or {}).get("cpu_model")
    return f"the CPU ({cpu})" if cpu else "the CPU"


def _cc_tuple(cc: Optional[str]) -> tuple[int, ...]:
    return tuple(int(p) for p in str(cc).split("."))


def parse_scope(node: Node) -> Scope:
    if isinstance(node.value, str):
        kind = node.choice(SCOPE_KINDS)
        if kind in ("gpu_model", "compute_capability"):
            raise node.error(f"scope {kind} needs its details", "write it as a mapping, e.g. {kind: gpu_model, gpu_name: NVIDIA H100 80GB HBM3}")
        return Scope(kind)
    kind = node.get("kind").choice(SCOPE_KINDS)
    if kind == "gpu_model":
        node.only_keys(("kind", "gpu_name"))
        return Scope(kind, gpu_name=node.get("gpu_name").text().strip())
    if kind == "compute_capability":
        node.only_keys(("kind", "min", "max"))
        lo, hi = (_parse_cc(node.get(k)) for k in ("min", "max"))
        if _cc_tuple(lo) > _cc_tuple(hi):
            raise node.error(f"min {lo} exceeds max {hi}", "swap them")
        return Scope(kind, cc_min=lo, cc_max=hi)
    node.only_keys(("kind",))
    return Scope(kind)


def _parse_cc(node: Node) -> str:
    text = str(node.value) if isinstance(node.value, (int, float, str)) and not isinstance(node.value, bool) else ""
    if not re.fullmatch(r"\d+\.\d+", text):
        raise node.error(f"expected a compute capability like \"9.0\", got {_describe(node.value)}", "quote it: \"9.0\"")
    return text


@dataclass
class Tolerance:
    """How far a measured value may be from the reference, how that is judged, and where the
    number came from (the derivation is recorded, not used)."""

    rule: str  # point: the estimate inside the band; equivalence: the whole CI inside the band
    rel: Optional[float] = None  # band reference/(1+rel) .. reference*(1+rel) (log-symmetric)
    abs: Optional[float] = None  # band reference-abs .. reference+abs (exponents)
    derivation: Any = None

    def describe(self) -> str:
        width = f"rel {self.rel:.3g}" if self.rel is not None else f"abs {self.abs:.3g}"
        return f"{width} ({self.rule})"

    def band(self, reference: float) -> tuple[float, float]:
        if self.rel is not None:
            return reference / (1.0 + self.rel), reference * (1.0 + self.rel)
        return reference - self.abs, reference + self.abs  # type: ignore[operator]


def parse_tolerance(node: Node, kind: str) -> Tolerance:
    """`kind` is "rel" (relative band on a positive value) or "abs" (absolute, for exponents)."""
    node.only_keys(("rule", kind, "derivation"))
    rule = node.get("rule").choice(NUMERIC_RULES)
    width = node.get(kind).number(positive=True)
    if kind == "rel" and width >= 1.0:
        raise node.get(kind).error(f"{width} is a tolerance of {width:.0%} or more", "a relative tolerance is a fraction, e.g. 0.05 for 5%")
    derivation = node.get("derivation", required=False)
    if derivation is None or derivation.value in (None, "", {}):
        raise node.error("missing field 'derivation'", "record how the tolerance was obtained (artifact derive-reference writes it)")
    return Tolerance(rule=rule, derivation=_plain(derivation.value), **{kind: width})


def _plain(value: Any) -> Any:
    """Strip the line-tracking types so records serialise as ordinary JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass
class CaseSelector:
    """Which result cases a claim reads: CaseSpec field -> allowed values, or one case_id."""

    values: dict[str, list[Any]] = field(default_factory=dict)
    case_id: Optional[str] = None
    given: tuple[str, ...] = ()  # the fields the claim itself wrote (the rest came from defaults)

    def matches(self, spec: CaseSpec) -> bool:
        if self.case_id is not None:
            return spec.case_id == self.case_id
        return all(getattr(spec, k) in allowed for k, allowed in self.values.items())

    def with_values(self, **values: Any) -> CaseSelector:
        given = self.given + tuple(k for k in values if k not in self.given)
        return CaseSelector({**self.values, **{k: [v] for k, v in values.items()}}, self.case_id, given)

    def single(self, key: str) -> Any:
        return self.values[key][0]

    def describe(self) -> str:
        if self.case_id is not None:
            return self.case_id
        parts = []
        for k in CASE_FIELDS:
            if k in self.values and (not self.given or k in self.given):
                vals = self.values[k]
                parts.append(f"{k}={vals[0] if len(vals) == 1 else '|'.join(map(str, vals))}")
        return " ".join(parts)


def parse_selector(
    node: Node,
    defaults: dict[str, Any],
    device: str,
    *,
    single: bool,
    not_required: tuple[str, ...] = (),
) -> CaseSelector:
    """A case selector. `single`: every identity field must have exactly one value (one case),
    except the fields in `not_required` (the axis a scaling or ranking claim varies).
    Reference-level defaults fill missing fields; dtype/causal/cache take CaseSpec's defaults and
    device the reference hardware's. A case that no run could produce is an error here."""
    if node.has("case_id"):
        node.only_keys(("case_id",))
        cid_node = node.get("case_id")
        cid = cid_node.text()
        m = _CASE_ID.match(cid)
        if not m:
            raise cid_node.error(f"{cid!r} is not a case id the harness writes", "copy it from a cases/<case_id>.json file name")
        _check_backend(cid_node, [m["workload"]], [m["backend"]])
        return CaseSelector(case_id=cid)
    node.only_keys(CASE_FIELDS)
    values: dict[str, list[Any]] = {}
    lines: dict[str, Node] = {}
    for key in CASE_FIELDS:
        sub = node.get(key, required=False)
        if sub is None:
            if key in defaults:
                values[key] = list(defaults[key]) if isinstance(defaults[key], list) else [defaults[key]]
            elif key in _CASE_DEFAULTS:
                values[key] = [_CASE_DEFAULTS[key]]
            elif key == "device":
                values[key] = [device]
            elif key == "workload":
                values[key] = ["sdpa"]
            continue
        raw = sub.value
        if isinstance(raw, list):
            if single and key not in not_required:
                raise sub.error("expected one value, got a list", "this claim is about one case; write a single value")
            if not raw:
                raise sub.error("empty list")
            values[key] = [_case_value(item, key) for item in sub.items()]
        else:
            values[key] = [_case_value(sub, key)]
        lines[key] = sub
    if single:
        for key in ("workload", "backend", *_INT_FIELDS):
            if key in not_required:
                continue
            if key not in values:
                raise node.error(f"missing field '{key}'", f"name the case fully (or set '{key}' under the file's defaults)")
            if len(values[key]) != 1:
                raise node.error(f"{key}: expected one value, got {values[key]}", "this claim is about one case")
    _check_backend(lines.get("backend", lines.get("workload", node)), values.get("workload", []), values.get("backend", []))
    return CaseSelector(values, given=tuple(lines))


def _case_value(node: Node, key: str) -> Any:
    if key in _INT_FIELDS:
        return node.integer(positive=True)
    if key == "causal":
        return node.boolean()
    if key == "dtype":
        return node.choice(DTYPES)
    if key == "cache":
        return node.choice(CACHE_MODES)
    if key == "device":
        return node.choice(DEVICES)
    return node.text()


def _check_backend(node: Node, workload_names: list[str], backends: list[str]) -> None:
    for w in workload_names:
        if w not in workloads.BACKENDS:
            raise node.error(f"unknown workload {w!r}: no run can produce this case", f"known workloads: {', '.join(workloads.names())}")
    known = sorted({b for w in (workload_names or list(workloads.BACKENDS)) for b in workloads.BACKENDS[w]})
    for b in backends:
        if b not in known:
            raise node.error(f"unknown backend {b!r}: no run can produce this case", f"choose from {', '.join(known)}")


def check_backend_names(node: Node, workload_names: list[str], backends: list[str]) -> None:
    """Public for the claim kinds that list backends outside a selector (ranking orders)."""
    _check_backend(node, workload_names, backends)


# --------------------------------------------------------------------------- hardware
@dataclass
class Peak:
    """A measured peak of the reference hardware (not a datasheet number), with its source."""

    metric: str  # tflops | gbps
    value: float
    unit: str
    source: str
    dtype: Optional[str] = None


@dataclass
class Hardware:
    device: str
    gpu_name: Optional[str] = None
    compute_capability: Optional[str] = None
    nvidia_driver_version: Optional[str] = None
    cpu_model: Optional[str] = None
    peaks: list[Peak] = field(default_factory=list)

    def describe(self) -> str:
        if self.device == "cuda":
            cc = f", compute capability {self.compute_capability}" if self.compute_capability else ""
            return f"{self.gpu_name}{cc}"
        return f"CPU ({self.cpu_model})" if self.cpu_model else "CPU"

    def matches(self, env: EnvRecord) -> bool:
        """Same hardware as the reference runs: the same GPU model, or both on a CPU."""
        if self.device != env.device:
            return False
        if self.device == "cpu":
            return True
        return env.gpu is not None and (env.gpu.name or "").strip() == self.gpu_name

    def peak(self, metric: str, dtype: Optional[str] = None) -> Optional[Peak]:
        for p in self.peaks:
            if p.metric == metric and (p.dtype is None or dtype is None or p.dtype == dtype):
                return p
        return None


def parse_hardware(node: Node) -> Hardware:
    node.only_keys(("device", "gpu_name", "compute_capability", "nvidia_driver_version", "cpu_model", "peaks"))
    device = node.get("device").choice(DEVICES)
    hw = Hardware(device=device)
    if device == "cuda":
        hw.gpu_name = node.get("gpu_name").text().strip()
        cc = node.get("compute_capability", required=False)
        hw.compute_capability = _parse_cc(cc) if cc is not None else None
    for key in ("nvidia_driver_version", "cpu_model"):
        sub = node.get(key, required=False)
        if sub is not None and sub.value is not None:
            setattr(hw, key, str(sub.value))
    peaks = node.get("peaks", required=False)
    for p in peaks.items() if peaks is not None and peaks.value is not None else []:
        p.only_keys(("metric", "dtype", "value", "unit", "source"))
        dtype = p.get("dtype", required=False)
        hw.peaks.append(
            Peak(
                metric=p.get("metric").choice(PEAK_METRICS),
                value=p.get("value").number(positive=True),
                unit=p.get("unit").text(),
                source=p.get("source").text(),
                dtype=dtype.choice(DTYPES) if dtype is not None else None,
            )
        )
    return hw


# --------------------------------------------------------------------------- how the cases were timed
_METHOD_WORDS = {"cuda_graph": "CUDA-graph replays between CUDA events",
                 "cuda_events": "eager launches between CUDA events",
                 "perf_counter": "host perf_counter"}


@dataclass
class TimingSpec:
    """How the reference's timed cases were measured. A time measured another way is another
    quantity: eager launches include the host's launch overhead that CUDA-graph replays do not,
    and several repetitions give a between-run aware CI that one does not. The cache mode is part
    of each case's identity (its case_id), so a cold-cache case never matches a warm one."""

    method: str  # cuda_graph | cuda_events | perf_counter
    repeats: int  # independent repetitions per case
    cache: list[str] = field(default_factory=list)  # cache modes of the claimed cases (recorded)
    target_rel_ci: Optional[float] = None  # recorded; a tighter target measures the same thing longer

    def describe(self) -> str:
        return f"{self.method}, {self.repeats} repetition(s)"

    def differences(self, timing: Any) -> list[str]:
        """What differs between a case's Timing and this spec (empty: comparable)."""
        out = []
        if timing.method != self.method:
            why = f" ({timing.fallback_reason})" if timing.fallback_reason else ""
            out.append(f"timed with {timing.method} ({_METHOD_WORDS.get(timing.method, timing.method)}){why}, "
                       f"the reference with {self.method} ({_METHOD_WORDS.get(self.method, self.method)})")
        reps = timing.summary.n_repetitions
        if reps != self.repeats:
            out.append(f"{reps} repetition(s), the reference {self.repeats}")
        return out


def parse_timing(node: Optional[Node]) -> Optional[TimingSpec]:
    if node is None or node.value is None:
        return None
    node.only_keys(("method", "repeats", "cache", "target_rel_ci"))
    cache_node = node.get("cache", required=False)
    cache = [c.choice(CACHE_MODES) for c in cache_node.items()] if cache_node is not None else []
    target = node.get("target_rel_ci", required=False)
    return TimingSpec(method=node.get("method").choice(TIMING_METHODS), repeats=node.get("repeats").integer(positive=True),
                      cache=cache, target_rel_ci=target.number(positive=True) if target is not None else None)


# --------------------------------------------------------------------------- the file
@dataclass
class RunSpec:
    """How a run must be made for its results to be checked against this reference: the plan file
    (relative to the repository root) or the profile `artifact reproduce` runs."""

    plan: Optional[str] = None
    profile: Optional[str] = None

    def harness_args(self) -> list[str]:
        return ["--plan", self.plan] if self.plan else ["--profile", self.profile or "smoke"]

    def describe(self) -> str:
        return f"plan {self.plan}" if self.plan else f"profile {self.profile}"


def parse_run(node: Optional[Node]) -> Optional[RunSpec]:
    if node is None or node.value is None:
        return None
    node.only_keys(("plan", "profile"))
    if node.has("plan") == node.has("profile"):
        raise node.error("give either plan (a plan file) or profile (smoke or full)", "not both, not neither")
    if node.has("plan"):
        return RunSpec(plan=node.get("plan").text())
    return RunSpec(profile=node.get("profile").choice(("smoke", "full")))


@dataclass
class Reference:
    path: str
    sha256: str
    name: str
    description: str
    hardware: Hardware
    claims: list[Any]  # claims.Claim subclasses, in file order
    environment: dict[str, Any] = field(default_factory=dict)  # software of the reference runs (recorded)
    derived_from: Any = None  # provenance written by derive-reference (recorded)
    not_claimed: list[Any] = field(default_factory=list)  # what derive left out and why (recorded)
    run: Optional[RunSpec] = None  # how a run for this reference is made (artifact reproduce)
    timing: Optional[TimingSpec] = None  # how its cases were timed (None in schema 1 files: not compared)
    schema_version: int = REFERENCE_SCHEMA_VERSION
    kind: str = KIND_REFERENCE

    def claim(self, claim_id: str) -> Any:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(claim_id)


_TOP_KEYS = ("schema_version", "kind", "name", "description", "hardware", "run", "timing", "environment", "defaults",
             "claims", "derived_from", "not_claimed")


def load_reference(path: Path | str) -> Reference:
    """Read and validate a reference file. Raises ReferenceFileError (exit 2) naming file:line: field."""
    from artifact import claims as claim_kinds  # the kinds import this module's parts

    path = Path(path)
    root, text = load_yaml(path)
    if not isinstance(root.value, dict):
        raise root.error(f"a reference file is a mapping with 'claims', got {_describe(root.value)}")
    root.only_keys(_TOP_KEYS)
    version = root.get("schema_version").integer(positive=True)
    if version > REFERENCE_SCHEMA_VERSION:
        raise root.get("schema_version").error(
            f"version {version} is newer than this tool reads ({REFERENCE_SCHEMA_VERSION})", "upgrade the artifact tool"
        )
    kind = root.get("kind", required=False)
    if kind is not None and kind.value != KIND_REFERENCE:
        raise kind.error(f"expected {KIND_REFERENCE!r}, got {_describe(kind.value)}", "is this a reference file?")
    name = root.get("name").text()
    desc = root.get("description", required=False)
    hardware = parse_hardware(root.get("hardware"))
    defaults_node = root.get("defaults", required=False)
    defaults: dict[str, Any] = {}
    if defaults_node is not None and defaults_node.value is not None:
        defaults_node.only_keys(CASE_FIELDS)
        for key in defaults_node.mapping():
            sub = defaults_node.get(key)
            defaults[key] = [_case_value(i, key) for i in sub.items()] if isinstance(sub.value, list) else _case_value(sub, key)
    timing = parse_timing(root.get("timing", required=False))
    claims_node = root.get("claims")
    items = claims_node.items()
    if not items:
        raise claims_node.error("no claims", "a reference needs at least one claim")
    ctx = claim_kinds.ParseContext(defaults=defaults, hardware=hardware, timing=timing)
    parsed = []
    seen: dict[str, int] = {}
    for item in items:
        claim = claim_kinds.parse_claim(item, ctx)
        if claim.id in seen:
            raise item.get("id").error(f"duplicate claim id {claim.id!r} (first on line {seen[claim.id]})", "give every claim its own id")
        seen[claim.id] = claim.line
        parsed.append(claim)
    env_node = root.get("environment", required=False)
    nc = root.get("not_claimed", required=False)
    df = root.get("derived_from", required=False)
    return Reference(
        path=str(path),
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        name=name,
        description=desc.text() if desc is not None and desc.value else "",
        hardware=hardware,
        claims=parsed,
        environment=_plain(env_node.mapping()) if env_node is not None and env_node.value is not None else {},
        derived_from=_plain(df.value) if df is not None else None,
        not_claimed=[_plain(i.value) for i in nc.items()] if nc is not None and nc.value is not None else [],
        run=parse_run(root.get("run", required=False)),
        timing=timing,
        schema_version=version,
    )
