"""The runs a reference is derived from: read, checked to be one hardware model on enough separately
started machines, and the numbers every claim kind needs from them."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Optional

from artifact.derive.options import DeriveOptions
from artifact.errors import ArtifactError
from artifact.results.folder import ResultSet, load_results
from artifact.textfmt import env_hardware, hardware_model
from harness.records import CaseResult, CaseSpec, Timing
from harness.workloads import SDPA_BACKENDS


def sig(x: float, digits: int = 6) -> float:
    return float(f"{x:.{digits}g}")


def timed_of(case: CaseResult) -> Timing:
    """The timing of a case every run measured ok (the harness writes timing with status ok)."""
    if case.timing is None:
        raise ArtifactError(f"case {case.case.case_id}: status ok but no timing in its file; re-run the case")
    return case.timing


def order_key(spec: CaseSpec) -> tuple:
    b = SDPA_BACKENDS.index(spec.backend) if spec.backend in SDPA_BACKENDS else len(SDPA_BACKENDS)
    return (spec.workload, spec.dtype, spec.causal, spec.cache, spec.batch, spec.heads, spec.head_dim, b, spec.backend, spec.seq)


# --------------------------------------------------------------------------- reading the runs
def read_runs(folders: list[Path], opts: DeriveOptions, loaded: Optional[list[ResultSet]] = None) -> list[ResultSet]:
    """The runs, read and checked (`loaded`: already read by load_results, in the same order)."""
    if len(folders) < opts.min_runs:
        raise ArtifactError(
            f"{len(folders)} result folder(s) given; tolerances need at least {opts.min_runs} independent runs "
            "(pass more folders, or --min-runs to accept fewer for a test reference)"
        )
    runs = loaded if loaded is not None else [load_results(f)[0] for f in folders]
    first = runs[0]
    for r in runs[1:]:
        if hardware_model(r.env) != hardware_model(first.env):
            raise ArtifactError(
                f"{r.folder}: ran on {env_hardware(r.env)}, but {first.folder} ran on {env_hardware(first.env)}; derive one reference per hardware model"
            )
    machines = machines_of(runs)
    if len(machines) < opts.min_machines:
        raise ArtifactError(
            f"the {len(runs)} runs come from {len(machines)} machine(s); tolerances need runs on at least "
            f"{opts.min_machines} separately started machines (or --min-machines to accept fewer)"
        )
    return runs


def machine_id(r: ResultSet) -> str:
    # A GPU's UUID and the host's hashed name together tell separately started machines apart.
    gpu = (r.env.gpu.uuid or "") if r.env.gpu else ""
    host = str((r.env.host or {}).get("hostname_sha256_8", ""))
    return f"{gpu}/{host}"


def machines_of(runs: list[ResultSet]) -> set[str]:
    return {machine_id(r) for r in runs}


# --------------------------------------------------------------------------- helpers
def reach(estimates: list[tuple[float, float, float]], relative: bool) -> tuple[float, float, float]:
    """(reference, max deviation of a run's estimate from it, max far-side CI half-width of a run).

    Relative quantities are measured on the log scale, where the band ref/(1+t)..ref*(1+t) is
    symmetric; CIs of medians are often lopsided, so the far side is what must fit in the band.
    """
    ref = float(statistics.median(e for e, _, _ in estimates))
    if relative:
        dev = max(abs(math.log(e / ref)) for e, _, _ in estimates)
        half = max(max(math.log(e / lo), math.log(hi / e)) for e, lo, hi in estimates)
    else:
        dev = max(abs(e - ref) for e, _, _ in estimates)
        half = max(max(e - lo, hi - e) for e, lo, hi in estimates)
    return ref, dev, half
