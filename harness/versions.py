"""Every kind of record this project writes, its format version, and the one reading policy
(torch-free; a table, no record classes, so the harness and the host both read it).

Policy: a reader accepts a file of its kind whose `schema_version` is at most the version this
tool writes (older formats stay readable: new fields have defaults), and refuses a newer one with
one line naming the file and the fix (upgrade the tool). A file without a version is refused,
except plans, whose version may be left out (it is then the current one).

Format history, newest last per kind (as pyperf keeps in its _bench.py):
  harness records (case_result, env, manifest, ceilings; and ncu_profile, optimize_*, which
  follow them):
    1  2026-11-24  first release (H100 references)
    2  2026-11-29  lock without the NaN fill (timings of version 1 include it); CaseResult.census,
                   CaseResult.unavailable, CaseResult.phases_s, Timing.clocks,
                   Timing.fill_uninitialized_memory; ceilings.json (CeilingsRecord)
    3  2026-11-30  Correctness.rel_error may be null (the output was not finite: NaN or inf cannot
                   be written as JSON); Timing.bootstrap_seed (the summary's bootstrap seed, so a
                   checker recomputes the same CI from the raw samples)
    4  2026-12-07  status `invalid` and CaseResult.integrity (the timed replays' outputs checked on
                   rotated, refreshed input sets; census against an eager call; roofline; host
                   clock; timer tampering); a CaseSpec.workload may name a user module
                   ("package.module:ATTR")
    5  2026-12-07  the machine judged apart (issue 17): env.json `machine` (the shared-GPU gate),
                   GpuState power limits and compute mode; CaseResult.watch and CeilingsRecord.watch
                   (other processes and throttled clocks per sampling batch, batches discarded);
                   Repetition.batch_sm_mhz; ClockStats power and cycles per call; Timing.regime;
                   Manifest.in_progress (true while a sweep writes the folder)
  run, sharded_run, image_archive (host records):
    3  2026-11-30  a kind of its own in this table (numbered with the harness records before);
                   RunInfo.cost (wall and GPU-seconds per phase) may be null
  reference (YAML):
    1  first release
    2  `timing`: how the reference's cases were timed; a case timed otherwise is not comparable
  verdict:
    1  first release
    2  ClaimVerdict.not_comparable (what differed from the reference's timing), timing notes
    3  status INVALID with exit code 3 (the folder holds an invalid case; issue 16)
    4  exit code 4: INVALID because the GPU was shared (issue 17); `cause` (integrity | shared_gpu);
       a claim on a case timed beside another process is SKIP (not judged), never PASS or FAIL
  comparison:
    1  first release
    2  `ncu`: the candidate's Nsight Compute profile when one was taken (issue 11)
    3  `relation` ("speedup" | "scaling") replaces `kind`, which now names the record kind
       ("comparison") as in every other record; version 2 files are read with kind -> relation
  tuned_config:
    1  first release
  baseline_comparison (vs-baseline.json, `artifact check RUN --baseline BASE`):
    1  2026-12-07  first release (issue 21)
  plan (YAML):
    1  first release
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from harness.errors import RecordError


@dataclass(frozen=True)
class RecordKind:
    kind: str  # the file's "kind" field
    version: int  # the format this tool writes and the newest it reads


HARNESS_VERSION = 5  # case_result, env, manifest, ceilings and the records that follow them
INTEGRITY_SINCE = 4  # the first case_result format with `integrity` and status `invalid`

KINDS: dict[str, RecordKind] = {k.kind: k for k in (
    RecordKind("case_result", HARNESS_VERSION),
    RecordKind("env", HARNESS_VERSION),
    RecordKind("manifest", HARNESS_VERSION),
    RecordKind("ceilings", HARNESS_VERSION),
    RecordKind("ncu_profile", HARNESS_VERSION),
    RecordKind("optimize_baseline", HARNESS_VERSION),
    RecordKind("optimize_search", HARNESS_VERSION),
    RecordKind("run", 3),
    RecordKind("sharded_run", 3),
    RecordKind("image_archive", 3),
    RecordKind("reference", 2),
    RecordKind("verdict", 4),
    RecordKind("comparison", 3),
    RecordKind("tuned_config", 1),
    RecordKind("baseline_comparison", 1),
    RecordKind("plan", 1),
)}


def current(kind: str) -> int:
    """The version this tool writes for `kind`."""
    return KINDS[kind].version


def refusal(kind: str, version: object) -> Optional[str]:
    """Why a `kind` file of `version` cannot be read (None: it can), without the file name;
    the caller adds where, as its messages do."""
    newest = KINDS[kind].version
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return f"schema_version: {version!r} is not a format version (a positive integer); this is not a {kind} record"
    if version > newest:
        return (f"schema_version {version} is newer than this tool reads for a {kind} record ({newest}); "
                "upgrade the tool")
    return None


def check(path: object, kind: str, version: object) -> None:
    """Raise RecordError `path: why; fix` when a `kind` file of `version` cannot be read."""
    why = refusal(kind, version)
    if why is not None:
        raise RecordError(f"{path}: {why}")
