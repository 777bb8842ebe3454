"""What a derivation is given (every option of `artifact derive-reference`), recorded in the file it writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from artifact.reference import Peak, RunSpec


@dataclass
class DeriveOptions:
    name: str
    description: str = ""
    k: float = 2.0  # multiplier on the observed run-to-run deviation
    floor_rel: float = 0.03  # no relative tolerance tighter than this
    floor_abs: float = 0.05  # no exponent tolerance tighter than this
    max_rel: float = 0.5  # a spread wider than this is not claimed at all (written under not_claimed)
    min_runs: int = 3
    min_machines: int = 2
    ratio_pairs: list[tuple[str, str]] = field(default_factory=lambda: [("cudnn", "flash")])
    correctness_factor: float = 4.0  # bound = factor * largest observed error (fresh random inputs each run)
    memory_margin: float = 0.05  # bound = (1 + margin) * largest observed peak
    # A ranking pair needs faster/slower <= 1/(1+gap) in every run (and below the runs' own spread).
    ranking_min_gap: float = 0.01
    ranking_rule: str = "significant"  # how a rerun is judged; "point" for noisy, shared CPUs
    portable_only: bool = False  # correctness, determinism, environment, rankings only (CPU smoke)
    peaks: list[Peak] = field(default_factory=list)
    peaks_gpu: Optional[str] = None  # the GPU model the peaks were measured on
    run: Optional[RunSpec] = None  # the plan or profile a run for this reference follows
    # Ratio, ranking, scaling and efficiency claims are offered to the compute-capability family
    # and kept there only if they hold on these runs of other GPU models of that family.
    family_evidence: list[Path] = field(default_factory=list)
    evidence_peaks: list[Peak] = field(default_factory=list)  # ceilings for evidence runs without ceilings.json
    retire_timing: Optional[str] = None  # why no time-based claim is derived (absolute, ratio, ...)
