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
their fields live in the artifact.claims package (the parts they share in artifact/claims/parts.py,
the YAML reader in artifact/yamlnode.py); this module reads the file around them: hardware, run,
timing, defaults. Imports go one way: reference -> claims -> parts -> yamlnode.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from artifact.claims import Claim, ParseContext, parse_claim
from artifact.claims.parts import CASE_FIELDS, DEVICES, TimingSpec, case_value, parse_cc, parse_timing
from artifact.textfmt import hardware
from artifact.yamlnode import Node, describe, load_yaml, plain
from harness import versions
from harness.records import DTYPES, EnvRecord

KIND_REFERENCE = "reference"  # its version and format history: harness/versions.py
REFERENCE_VERSION = versions.current(KIND_REFERENCE)
PEAK_METRICS = ("tflops", "gbps")


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
    # The enforced power limit the reference runs ran under (the lowest of them), W: a card
    # capped lower is named in the verdict (artifact/results/machine_state.py).
    power_limit_w: Optional[float] = None

    def describe(self) -> str:
        return hardware(self.device, self.gpu_name, self.compute_capability, self.cpu_model)

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
    node.only_keys(("device", "gpu_name", "compute_capability", "nvidia_driver_version", "cpu_model", "peaks", "power_limit_w"))
    device = node.get("device").choice(DEVICES)
    hw = Hardware(device=device)
    if device == "cuda":
        hw.gpu_name = node.get("gpu_name").text().strip()
        cc = node.get("compute_capability", required=False)
        hw.compute_capability = parse_cc(cc) if cc is not None else None
    for key in ("nvidia_driver_version", "cpu_model"):
        sub = node.get(key, required=False)
        if sub is not None and sub.value is not None:
            setattr(hw, key, str(sub.value))
    power = node.get("power_limit_w", required=False)
    if power is not None and power.value is not None:
        hw.power_limit_w = power.number(positive=True)
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
    claims: list[Claim]  # in file order
    environment: dict[str, Any] = field(default_factory=dict)  # software of the reference runs (recorded)
    derived_from: Any = None  # provenance written by derive-reference (recorded)
    not_claimed: list[Any] = field(default_factory=list)  # what derive left out and why (recorded)
    run: Optional[RunSpec] = None  # how a run for this reference is made (artifact reproduce)
    timing: Optional[TimingSpec] = None  # how its cases were timed (None in schema 1 files: not compared)
    schema_version: int = REFERENCE_VERSION
    kind: str = KIND_REFERENCE

    def claim(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(claim_id)


_TOP_KEYS = ("schema_version", "kind", "name", "description", "hardware", "run", "timing", "environment", "defaults",
             "claims", "derived_from", "not_claimed")


def load_reference(path: Path | str) -> Reference:
    """Read and validate a reference file. Raises ReferenceFileError (exit 2) naming file:line: field."""
    path = Path(path)
    root, text = load_yaml(path)
    if not isinstance(root.value, dict):
        raise root.error(f"a reference file is a mapping with 'claims', got {describe(root.value)}")
    root.only_keys(_TOP_KEYS)
    version = root.get("schema_version").integer(positive=True)
    if versions.refusal(KIND_REFERENCE, version) is not None:
        raise root.get("schema_version").error(
            f"version {version} is newer than this tool reads ({REFERENCE_VERSION})", "upgrade the artifact tool"
        )
    kind = root.get("kind", required=False)
    if kind is not None and kind.value != KIND_REFERENCE:
        raise kind.error(f"expected {KIND_REFERENCE!r}, got {describe(kind.value)}", "is this a reference file?")
    name = root.get("name").text()
    desc = root.get("description", required=False)
    hardware = parse_hardware(root.get("hardware"))
    defaults_node = root.get("defaults", required=False)
    defaults: dict[str, Any] = {}
    if defaults_node is not None and defaults_node.value is not None:
        defaults_node.only_keys(CASE_FIELDS)
        for key in defaults_node.mapping():
            sub = defaults_node.get(key)
            defaults[key] = [case_value(i, key) for i in sub.items()] if isinstance(sub.value, list) else case_value(sub, key)
    timing = parse_timing(root.get("timing", required=False))
    claims_node = root.get("claims")
    items = claims_node.items()
    if not items:
        raise claims_node.error("no claims", "a reference needs at least one claim")
    ctx = ParseContext(defaults=defaults, device=hardware.device, timing=timing)
    parsed = []
    seen: dict[str, int] = {}
    for item in items:
        claim = parse_claim(item, ctx)
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
        environment=plain(env_node.mapping()) if env_node is not None and env_node.value is not None else {},
        derived_from=plain(df.value) if df is not None else None,
        not_claimed=[plain(i.value) for i in nc.items()] if nc is not None and nc.value is not None else [],
        run=parse_run(root.get("run", required=False)),
        timing=timing,
        schema_version=version,
    )
