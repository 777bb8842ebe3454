"""The shipped reference files, and which of them fit a machine or a results folder (torch-free).

A reference fits the hardware it was measured on (the same GPU model, or a CPU for a CPU
reference) and, for the claims it scopes to a compute capability, every GPU of that capability.
`select` orders the fitting references: the same model first (the primary: its plan is the one
`artifact reproduce` runs), then those that fit by compute capability alone (their
family-scoped claims are checked too). Every choice carries its reason, printed and recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from artifact.errors import ArtifactError
from artifact.reference import Reference, RunSpec, load_reference
from artifact.textfmt import hardware

REFERENCES_DIR = Path(__file__).resolve().parent / "references"
REPO_ROOT = Path(__file__).resolve().parents[1]
# Plans and profiles when no shipped reference names one for this hardware: on a GPU, the
# library backends and the candidate with a config every GPU Triton supports can run.
PORTABLE_GPU_RUN = RunSpec(plan="harness/plans/artifact-portable.yaml")
CPU_RUN = RunSpec(profile="smoke")


@dataclass
class Hardware:
    """What a machine or a results folder ran on, as the selection needs it."""

    device: str  # cuda | cpu
    gpu_name: Optional[str] = None
    compute_capability: Optional[str] = None

    def describe(self) -> str:
        return hardware(self.device, self.gpu_name, self.compute_capability or "unknown")


@dataclass
class Fit:
    reference: Reference
    how: str  # "model" | "family" | "portable"
    why: str


@dataclass
class Selection:
    hardware: Hardware
    fits: list[Fit] = field(default_factory=list)
    run: RunSpec = field(default_factory=lambda: CPU_RUN)
    run_why: str = ""

    @property
    def primary(self) -> Optional[Fit]:
        return self.fits[0] if self.fits else None


def shipped(folder: Path = REFERENCES_DIR) -> list[Reference]:
    """Every reference file in the folder (files without claims, such as peaks files, are skipped)."""
    out = []
    for path in sorted(folder.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        if "\nclaims:" not in text:
            continue
        out.append(load_reference(path))
    return out


def _family_claims(ref: Reference, cc: Optional[str]) -> int:
    if cc is None:
        return 0
    from artifact.claims.parts import cc_tuple

    return sum(1 for c in ref.claims if c.scope.kind == "compute_capability"
               and cc_tuple(c.scope.cc_min) <= cc_tuple(cc) <= cc_tuple(c.scope.cc_max))


def select(hw: Hardware, references: Optional[list[Reference]] = None) -> Selection:
    refs = shipped() if references is None else references
    sel = Selection(hardware=hw)
    if hw.device != "cuda":
        for r in refs:
            if r.hardware.device == "cpu":
                sel.fits.append(Fit(r, "model", f"{r.name} was measured on a CPU and these results are from a CPU"))
        sel.run = _run_of(sel.primary.reference) if sel.primary else CPU_RUN
        sel.run_why = (f"the {sel.run.describe()} of {sel.primary.reference.name}" if sel.primary
                       else "no CPU reference is shipped: the smoke profile")
        return sel
    for r in refs:
        if r.hardware.device == "cuda" and r.hardware.gpu_name == (hw.gpu_name or "").strip():
            sel.fits.append(Fit(r, "model", f"{r.name} was measured on this GPU model ({hw.gpu_name})"))
    for r in refs:
        if r.hardware.device != "cuda" or any(f.reference is r for f in sel.fits):
            continue
        n = _family_claims(r, hw.compute_capability)
        if n:
            sel.fits.append(Fit(r, "family", f"{r.name} was measured on {r.hardware.gpu_name}; {n} of its claims apply to "
                                             f"every GPU of compute capability {hw.compute_capability}"))
    primary = sel.primary
    if primary is not None:
        sel.run = _run_of(primary.reference)
        sel.run_why = f"the {sel.run.describe()} of {primary.reference.name} ({primary.how} fit)"
        if primary.how == "family" and sel.run.plan and not _plan_runs_here(hw):
            sel.run, sel.run_why = PORTABLE_GPU_RUN, "the portable plan (the reference's plan needs Hopper-only features)"
    else:
        # No reference for this model or family: its portable claims (correctness, determinism,
        # environment on any GPU) are still worth checking.
        for r in refs:
            if r.hardware.device == "cuda" and any(c.scope.kind == "any_gpu" for c in r.claims):
                sel.fits.append(Fit(r, "portable", f"no reference for {hw.describe()}; the portable claims of {r.name} "
                                                   "(correctness, determinism, environment) apply to any GPU"))
                break
        sel.run, sel.run_why = PORTABLE_GPU_RUN, "the portable plan (no reference plan fits this GPU)"
    return sel


def _run_of(ref: Reference) -> RunSpec:
    if ref.run is None:
        return PORTABLE_GPU_RUN if ref.hardware.device == "cuda" else CPU_RUN
    return ref.run


def _plan_runs_here(hw: Hardware) -> bool:
    # The shipped plans' candidate configs use TMA descriptors: compute capability 9.0 and newer.
    try:
        return tuple(int(p) for p in (hw.compute_capability or "0.0").split(".")) >= (9, 0)
    except ValueError:
        return False


def plan_path(spec: RunSpec) -> Optional[Path]:
    if spec.plan is None:
        return None
    path = Path(spec.plan)
    return path if path.is_absolute() else REPO_ROOT / path


def from_env(env) -> Hardware:  # noqa: ANN001 - harness.records.EnvRecord
    if env.device == "cuda" and env.gpu is not None:
        return Hardware("cuda", (env.gpu.name or "").strip(), env.gpu.compute_capability)
    return Hardware("cpu")


def this_machine() -> Hardware:
    """The GPU this host would run on, through NVML (no torch): GPU 0, or the CPU when none."""
    from harness.nvml import Nvml

    nv = Nvml()
    if not nv.ok:
        return Hardware("cpu")
    name, cc = nv.identity()
    if name is None:
        return Hardware("cpu")
    return Hardware("cuda", name, cc)


def require_fit(sel: Selection) -> None:
    if not sel.fits:
        raise ArtifactError(f"no shipped reference in {REFERENCES_DIR} fits results from {sel.hardware.describe()}; "
                            "give one with --reference")
