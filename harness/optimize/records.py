"""baseline.json and search.json: what `harness optimize` writes besides the cases (torch-free).

The final pair is written as ordinary cases, the comparison by harness.compare and the winner by
harness.tuned; the file names of all of them are here, so the run and the summary agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from harness.compare import Comparison
from harness.errors import HarnessError
from harness.records import SCHEMA_VERSION, CaseResult, TimingSummary
from harness.tuned import TunedConfig

KIND_BASELINE = "optimize_baseline"
KIND_SEARCH = "optimize_search"

BASELINE_FILE = "baseline.json"
SEARCH_FILE = "search.json"
COMPARISON_FILE = "comparison.json"
TUNED_FILE = "tuned_config.json"
SUMMARY_FILE = "summary.md"


@dataclass
class BaselineRecord:
    """baseline.json: every SDPA backend at the shape, and which one is the baseline."""

    shape_key: str
    best_backend: Optional[str]
    best_median_ms: Optional[float]
    selection: str  # how the best was chosen
    results: list[CaseResult]  # one per backend, selection timing
    schema_version: int = SCHEMA_VERSION
    kind: str = KIND_BASELINE


@dataclass
class Trial:
    """One config's measurements, rung by rung (a rung is skipped once the config is dropped)."""

    config: dict[str, Any]
    rungs: list[int] = field(default_factory=list)
    medians_ms: list[float] = field(default_factory=list)
    rel_halfwidths: list[float] = field(default_factory=list)
    rel_error: Optional[float] = None  # the correctness gate's ||out-ref||/||ref||, rung 0
    status: str = "pending"  # ok | incorrect | failed | skipped | not_tried
    reason: Optional[str] = None


@dataclass
class SearchRecord:
    """search.json: the space, each config's fate, and how the budget went."""

    shape_key: str
    budget_s: float
    spent_s: float
    eta: int
    n_configs: int
    n_tried: int
    n_correct: int
    rung_sizes: list[int]
    winner: Optional[dict[str, Any]]
    stop_reason: str
    trials: list[Trial]
    schema_version: int = SCHEMA_VERSION
    kind: str = KIND_SEARCH


@dataclass
class Outcome:
    """A run's records in memory, as written to its folder (the summary is made from these)."""

    baseline: BaselineRecord
    search: Optional[SearchRecord]  # None: a given config was measured instead of searching
    final_baseline: CaseResult
    final_candidate: CaseResult
    comparison: Comparison
    tuned: TunedConfig
    out: Path


def timing_summary(r: CaseResult) -> TimingSummary:
    """The timing summary of a case that ran ok (the runner times every ok case)."""
    if r.timing is None:
        raise HarnessError(f"{r.case.case_id}: status {r.status!r} but no timing; the runner must time every ok case")
    return r.timing.summary


def median_ms(r: CaseResult) -> float:
    return timing_summary(r).median_ms
