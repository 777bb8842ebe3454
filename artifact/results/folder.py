"""The results folder as the host sees it: which files belong to it, reading it for judging,
and its typed run record (torch-free).

One folder, one owner. The harness writes the results (env.json, ceilings.json,
cases/<case_id>.json) and hashes them into manifest.json; the host adds run.json and run.log
and, after the run, its outputs about the results (OUTPUTS: verdicts, reports, plots), which
are not results. Membership is harness.storage.is_member with the host's OUTPUTS passed down:
the same rule hashes the folder, verifies it, and picks what is read.

Reading (`load_results`) follows two rules (the checks are artifact/results/checks.py):
- What is read is what was verified: only files the manifest lists, each with its sha256.
- What is judged is recomputed from the raw samples (summaries, throughput).
- What is certified is possible: every ok case is held to the roofline of the folder's own
  ceilings (artifact/results/integrity.py); one faster than the GPU can do its work reads as invalid.
Anything unusable is an ArtifactError: one line naming the file and the field, exit code 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Protocol

from artifact.errors import ArtifactError
from artifact.results import integrity
from artifact.results.checks import check_case, check_ceilings
from artifact.results.runinfo import RunInfo
from harness import stats, storage
from harness.errors import HarnessError, RecordError
from harness.records import CaseResult, CaseSpec, CeilingsRecord, EnvRecord, load_record

if TYPE_CHECKING:
    from harness.stats import ConfidenceInterval

RUN_FILE = "run.json"  # RunInfo, written by the launcher after every attempt
RUN_LOG = "run.log"  # the harness's output, appended per attempt
# Top-level name prefixes of what `artifact check` and `artifact report` write into a folder.
OUTPUTS = ("verdict.", "verdict-", "report.", "report-", "side-by-side-", "time-vs-seq-", "tflops-vs-peak-", "roofline-",
           "relative-", "vs-baseline.")


# --------------------------------------------------------------------------- membership
def is_member(rel: str) -> bool:
    """Does `rel` belong to the results (hashed, verified, read)? Not an output of the host."""
    return storage.is_member(rel, OUTPUTS)


def members(folder: Path | str) -> Iterator[str]:
    return storage.members(folder, OUTPUTS)


def write_manifest(folder: Path | str) -> storage.Manifest:
    """Re-hash the folder's members (after run.json, a resume or a merge of shards)."""
    return storage.write_manifest(folder, OUTPUTS)


def verify_manifest(folder: Path | str) -> list[str]:
    return storage.verify_manifest(folder, OUTPUTS)


# --------------------------------------------------------------------------- what judges read
class Selector(Protocol):
    """What ResultSet.select needs of a claim's case selector (artifact.claims.parts.CaseSelector)."""

    case_id: Optional[str]

    def matches(self, spec: CaseSpec) -> bool: ...


def groups_of(case: CaseResult) -> list[list[float]]:
    """The raw per-sample times of a case, one list per repetition."""
    if case.timing is None or not case.timing.repetitions:
        raise ArtifactError(f"case {case.case.case_id}: status ok but no timing in its file; re-run the case")
    return [list(r.samples_ms) for r in case.timing.repetitions]


@dataclass
class ResultSet:
    """One results folder, read and hash-checked by load_results."""

    folder: str
    env: EnvRecord
    cases: list[CaseResult]
    run: Optional[RunInfo] = None  # run.json from the launcher, when present
    ceilings: Optional[CeilingsRecord] = None  # ceilings.json: the device's own ceilings, same run
    # Ratio CIs by case pair: a ratio claim and the ranking at the same shape ask for the same one.
    # init=False: dataclasses.replace (a modified copy) starts with an empty cache.
    _ratio_cis: dict[tuple[str, str], ConfidenceInterval] = field(default_factory=dict, init=False, repr=False, compare=False)

    def select(self, selector: Selector) -> list[CaseResult]:
        if selector.case_id is not None:
            return [c for c in self.cases if c.case.case_id == selector.case_id]
        return [c for c in self.cases if selector.matches(c.case)]

    def ratio_ci(self, a: CaseResult, b: CaseResult) -> ConfidenceInterval:
        """CI of median(a) / median(b) from the raw samples (fixed seed: the same folder always
        gets the same interval)."""
        key = (a.case.case_id, b.case.case_id)
        if key not in self._ratio_cis:
            self._ratio_cis[key] = stats.hierarchical_ratio_ci(
                groups_of(a), groups_of(b), n_resamples=stats.VERDICT_BOOTSTRAP.resamples, seed=stats.VERDICT_BOOTSTRAP.seed)
        return self._ratio_cis[key]


# --------------------------------------------------------------------------- reading
def load_results(folder: Path | str) -> tuple[ResultSet, str]:
    """Hash-check a results folder and read what its manifest lists. Any problem is an
    ArtifactError (exit 2): a tampered, truncated, missing or unlisted result never reaches a judge."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: results folder not found; give the --out folder of a harness run")
    manifest_path = folder / storage.MANIFEST_FILE
    if not manifest_path.exists() and not manifest_path.is_symlink():
        raise ArtifactError(f"{manifest_path}: missing; the run did not finish or this is not a results folder (re-run it)")
    try:
        problems = verify_manifest(folder)
    except HarnessError as exc:
        raise ArtifactError(f"{exc}; re-run the benchmark") from None
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ArtifactError(f"{folder}: manifest check failed: {problems[0]}{more}; re-run the benchmark, do not edit results")
    manifest = load_record(manifest_path, storage.Manifest)
    listed = sorted(rel for rel in manifest.files if is_member(rel))
    if storage.ENV_FILE not in listed:
        raise ArtifactError(f"{folder / storage.ENV_FILE}: not listed in manifest.json; not a complete results folder (re-run it)")
    env = storage.load_env(folder)
    cases = [check_case(load_record(folder / rel, CaseResult), rel) for rel in listed if storage.is_case_file(rel, OUTPUTS)]
    if not cases:
        raise ArtifactError(f"{folder / storage.CASES_DIR}: no case results; the run produced nothing to check")
    ceilings = storage.load_ceilings(folder) if storage.CEILINGS_FILE in listed else None
    if ceilings is not None:
        check_ceilings(ceilings)
    run = load_run_info(folder) if RUN_FILE in listed else None
    # Last: the roofline reads the recomputed medians and the checked ceilings.
    held = integrity.recheck(cases, ceilings, env)
    note = f"{len(manifest.files)} files match manifest.json; summaries recomputed from the raw samples"
    if held.checked:
        note += f"; {held.checked} ok case(s) held to the roofline of this run's ceilings"
    if held.tripped:
        note += f", {len(held.tripped)} faster than possible (invalid)"
    return ResultSet(folder=str(folder), env=env, cases=held.cases, run=run, ceilings=ceilings), note


def load_run_info(folder: Path | str) -> Optional[RunInfo]:
    """The folder's run.json, None if it has none; a damaged one is an error naming the file."""
    path = Path(folder) / RUN_FILE
    if not path.exists():
        return None
    try:
        return load_record(path, RunInfo)
    except RecordError as exc:
        raise ArtifactError(f"{exc}; move the folder aside and start a new --out") from None


def write_run_info(folder: Path | str, info: RunInfo) -> Path:
    """Write run.json atomically, then re-hash the folder so the manifest covers it."""
    path = Path(folder) / RUN_FILE
    storage.write_record(path, info)
    write_manifest(folder)
    return path
