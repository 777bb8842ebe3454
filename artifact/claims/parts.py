"""The parts every claim kind shares: where it applies (Scope), how far a value may be (Tolerance),
which cases it reads (CaseSelector), and how the reference's cases were timed (TimingSpec).
Each parses from a Node of the reference file and writes itself back with `entry()` for
derive-reference, so its schema lives here once (torch-free)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from artifact.textfmt import env_hardware
from artifact.yamlnode import Node, describe, plain
from harness import workloads
from harness.records import CACHE_MODES, DTYPES, CaseSpec, EnvRecord

TIMING_METHODS = ("cuda_graph", "cuda_events", "perf_counter")
SCOPE_KINDS = ("any", "any_gpu", "gpu_model", "compute_capability", "cpu")
NUMERIC_RULES = ("point", "equivalence")
DEVICES = ("cuda", "cpu")

# The CaseSpec fields a claim may select on; `config` is reached through case_id only.
CASE_FIELDS = ("workload", "backend", "batch", "heads", "seq", "head_dim", "dtype", "causal", "cache", "device")
_INT_FIELDS = ("batch", "heads", "seq", "head_dim")
_CASE_DEFAULTS = {f.name: f.default for f in fields(CaseSpec) if f.name in ("dtype", "causal", "cache")}

# What CaseSpec.case_id produces, so a case_id that no run could write is caught when the file is read.
# A user's workload "package.module:ATTR" appears as "package.module.ATTR", its backend as it names it.
_CASE_ID = re.compile(
    r"^(?P<workload>[a-z0-9_]+|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)-(?P<backend>[A-Za-z0-9_][A-Za-z0-9_.+]*)"
    r"-b(?P<batch>\d+)h(?P<heads>\d+)s(?P<seq>\d+)d(?P<head_dim>\d+)"
    r"-(?P<dtype>[a-z0-9]+)-(?P<mask>full|causal)-(?P<cache>[a-z]+)-(?P<device>[a-z]+)(?:-cfg[0-9a-f]{8})?$"
)



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

    def entry(self) -> dict[str, Any]:
        """As written in a reference file (parse_scope reads it back)."""
        if self.kind == "gpu_model":
            return {"kind": self.kind, "gpu_name": self.gpu_name}
        if self.kind == "compute_capability":
            return {"kind": self.kind, "min": self.cc_min, "max": self.cc_max}
        return {"kind": self.kind}

    def applies(self, env: EnvRecord) -> tuple[bool, str]:
        """(in scope, why not) for the hardware recorded in env.json."""
        on = env_hardware(env)
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
        inside = cc_tuple(self.cc_min) <= cc_tuple(cc) <= cc_tuple(self.cc_max)
        return inside, f"claim needs {self.describe()}; results ran on {on}"


def cc_tuple(cc: Optional[str]) -> tuple[int, ...]:
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
        lo, hi = (parse_cc(node.get(k)) for k in ("min", "max"))
        if cc_tuple(lo) > cc_tuple(hi):
            raise node.error(f"min {lo} exceeds max {hi}", "swap them")
        return Scope(kind, cc_min=lo, cc_max=hi)
    node.only_keys(("kind",))
    return Scope(kind)


def parse_cc(node: Node) -> str:
    text = str(node.value) if isinstance(node.value, (int, float, str)) and not isinstance(node.value, bool) else ""
    if not re.fullmatch(r"\d+\.\d+", text):
        raise node.error(f"expected a compute capability like \"9.0\", got {describe(node.value)}", "quote it: \"9.0\"")
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

    @property
    def width(self) -> float:
        """rel or abs, whichever the tolerance has (parse_tolerance sets exactly one)."""
        width = self.rel if self.rel is not None else self.abs
        assert width is not None
        return width

    def band(self, reference: float) -> tuple[float, float]:
        if self.rel is not None:
            return reference / (1.0 + self.rel), reference * (1.0 + self.rel)
        return reference - self.width, reference + self.width

    def entry(self) -> dict[str, Any]:
        """As written in a reference file (parse_tolerance reads it back)."""
        return {"rule": self.rule, "rel" if self.rel is not None else "abs": self.width, "derivation": self.derivation}


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
    return Tolerance(rule=rule, derivation=plain(derivation.value), **{kind: width})


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

    @classmethod
    def of(cls, values: dict[str, Any], given: tuple[str, ...]) -> CaseSelector:
        """A selector of every field in `values` (a list: any of them) that writes only `given`
        (the rest are the reference's defaults), as parse_selector would read its entry back."""
        listed = {k: list(v) if isinstance(v, list) else [v] for k, v in values.items()}
        return cls(listed, given=tuple(k for k in CASE_FIELDS if k in given and k in listed))

    def entry(self) -> dict[str, Any]:
        """As written in a reference file: the case_id, or the fields the claim gives itself."""
        if self.case_id is not None:
            return {"case_id": self.case_id}
        return {k: self.values[k][0] if len(self.values[k]) == 1 else list(self.values[k]) for k in self.given}

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
        # The dots of a user's workload hide which one was the colon: only its backend's form is checked.
        if "." in m["workload"]:  # a user's workload: its backend's form is all the host can check
            _check_user_backends(cid_node, m["workload"], [m["backend"]])
        else:
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
            values[key] = [case_value(item, key) for item in sub.items()]
        else:
            values[key] = [case_value(sub, key)]
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


def case_value(node: Node, key: str) -> Any:
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


def _check_user_backends(node: Node, workload: str, backends: list[str]) -> None:
    for b in backends:
        why = workloads.check_backend(workload, b)
        if why is not None:
            raise node.error(why, "a backend is named with letters, digits, _ . +")


def _check_backend(node: Node, workload_names: list[str], backends: list[str]) -> None:
    """A case no run can produce is an error: an unknown bundled workload or backend. A user's
    workload ("package.module:ATTR") declares its own backends; the host (no torch) checks only
    the forms, the harness the rest when it imports the module."""
    for w in workload_names:
        why = workloads.check_name(w)
        if why is not None:
            if workloads.is_external(w):
                raise node.error(f"workload {why}", "name a workload of your own as package.module:ATTR")
            raise node.error(f"unknown workload {w!r}: no run can produce this case",
                             f"known workloads: {', '.join(workloads.names())}, or package.module:ATTR (docs/workload-api.md)")
    bundled = [w for w in workload_names if not workloads.is_external(w)]
    if workload_names and not bundled:
        return _check_user_backends(node, workload_names[0], backends)
    known = sorted({b for w in (bundled or list(workloads.BACKENDS)) for b in workloads.BACKENDS[w]})
    for b in backends:
        if b not in known:
            raise node.error(f"unknown backend {b!r}: no run can produce this case", f"choose from {', '.join(known)}")


def check_backend_names(node: Node, workload_names: list[str], backends: list[str]) -> None:
    """Public for the claim kinds that list backends outside a selector (ranking orders)."""
    _check_backend(node, workload_names, backends)


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
