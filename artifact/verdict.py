"""The verdict of a results folder against a reference: verdict.json, verdict.md, the console
table, the GitHub job summary, and the exit code (torch-free).

Exit codes are a contract:
    0  every applicable claim passed (and at least one applied)
    1  at least one claim failed (a required case that was not produced is a failure)
    2  the inputs are unusable: a tampered or truncated result, a bad reference file, or a
       reference none of whose claims applies to these results (all SKIP: wrong reference)
    3  INVALID: the folder holds a case whose timed calls were not shown to do the real work
       (status invalid, from the harness's integrity checks or artifact/results/integrity.py's roofline),
       whatever its claims say: a kernel that skips work must not read as a failed or passed claim
    4  INVALID because the GPU was shared: another process ran on it while cases (or the
       ceilings) were timed (the harness's watch, harness/machine/); their claims are not judged.
       The harness exits 4 too when it refuses a shared GPU before measuring (issue 17). The
       machine, not the kernel: rerun on an idle GPU
Where several verdicts are combined (folders, shards, references), the worst by 3 > 4 > 1 > 2 > 0:
a result that certifies nothing comes first (a kernel that skipped work before a machine that
was shared); then, as before issue 16, a failed claim anywhere before an input that could not be
judged.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from artifact import __version__
from artifact.claims import FAIL, PASS, SKIP, ClaimVerdict
from artifact.errors import ArtifactError
from artifact.reference import Reference
from artifact.results.folder import ResultSet, load_results
from artifact.results.integrity import invalid_cases, shared_note, why_invalid
from artifact.textfmt import env_hardware, num
from harness import storage, versions
from harness.errors import RecordError
from harness.machine import gate
from harness.records import from_dict, load_json

KIND_VERDICT = "verdict"  # its version and format history: harness/versions.py
VERDICT_JSON = "verdict.json"
VERDICT_MD = "verdict.md"

EXIT_PASS, EXIT_FAIL, EXIT_UNUSABLE, EXIT_INVALID = 0, 1, 2, 3
EXIT_SHARED_GPU = gate.EXIT_SHARED_GPU  # 4, as the harness's refusal of a shared GPU
NOT_APPLICABLE = "NOT_APPLICABLE"
INVALID = "INVALID"
# Combining exit codes: the first of these present wins.
EXIT_PRECEDENCE = (EXIT_INVALID, EXIT_SHARED_GPU, EXIT_FAIL, EXIT_UNUSABLE, EXIT_PASS)
# Why a verdict is INVALID: the kernel (integrity, exit 3) or the machine (shared_gpu, exit 4).
CAUSE_INTEGRITY, CAUSE_SHARED_GPU = "integrity", "shared_gpu"
INVALID_LISTED = 3  # invalid cases named in the note; the rest are counted


def worst(codes: list[int]) -> int:
    """The exit code of several verdicts (3 > 4 > 1 > 2 > 0); no verdict at all could not be judged."""
    for code in EXIT_PRECEDENCE:
        if code in codes:
            return code
    return EXIT_UNUSABLE


@dataclass
class Verdict:
    status: str  # PASS | FAIL | INVALID | NOT_APPLICABLE
    exit_code: int
    counts: dict[str, int]
    claims: list[ClaimVerdict]
    results_dir: str
    hardware: str  # what the results ran on, from env.json
    reference_file: str
    reference_name: str
    reference_sha256: str
    reference_hardware: str
    manifest: str  # what the hash check found
    created_at: str
    tool_version: str = __version__
    schema_version: int = versions.current(KIND_VERDICT)
    kind: str = KIND_VERDICT
    notes: list[str] = field(default_factory=list)
    wall_s: Optional[float] = None  # reading the folder and judging every claim: the check's cost
    cause: Optional[str] = None  # INVALID only: integrity (the kernel) | shared_gpu (the machine)


# --------------------------------------------------------------------------- judging
def judge_all(results: ResultSet, reference: Reference, manifest_note: str) -> Verdict:
    verdicts = [claim.judge(results) for claim in reference.claims]
    counts = {s: sum(v.status == s for v in verdicts) for s in (PASS, FAIL, SKIP)}
    notes = []
    if reference.timing is None and any(getattr(c, "TIMED", False) for c in reference.claims):
        notes.append(f"{reference.name} does not record how its cases were timed (a schema {reference.schema_version} "
                     "file): the timing method and repetitions of the results were not compared with it; "
                     "regenerate it with artifact derive-reference")
    drift = software_differences(results, reference)
    if drift:
        notes.append("measured with other software than the reference: " + "; ".join(drift)
                     + " (the claims are judged all the same; a difference in a time claim may come from it)")
    incomparable = [v for v in verdicts if v.not_comparable]
    if incomparable:
        notes.append(f"{len(incomparable)} claim(s) read a case measured otherwise than the reference "
                     f"({reference.timing.describe() if reference.timing else 'its cache mode'}): not judged as comparable; "
                     f"first: {incomparable[0].claim_id}: {incomparable[0].not_comparable[0]}")
    invalid = invalid_note(results)
    shared = shared_note(results.cases, results.ceilings, results.env)
    notes += machine_notes(results, reference)
    if counts[FAIL]:
        status, code = FAIL, EXIT_FAIL
    elif counts[PASS]:
        status, code = PASS, EXIT_PASS
    else:
        status, code = NOT_APPLICABLE, EXIT_UNUSABLE
        notes.insert(0,
            f"no claim of {reference.name} applies to results from {env_hardware(results.env)}; "
            f"the reference was measured on {reference.hardware.describe()}: check against a reference for this hardware"
        )
    cause = None
    if status == NOT_APPLICABLE:
        # No claim of this reference applies: nothing was judged (exit 2, no verdict file), but
        # the invalid cases and the shared GPU are still named.
        notes += [n for n in (invalid, shared) if n]
    elif invalid:
        # An invalid case says the folder certifies nothing, whichever claims happened to read it.
        status, code, cause = INVALID, EXIT_INVALID, CAUSE_INTEGRITY
        notes.insert(0, invalid)
        if shared:
            notes.insert(1, shared)
    elif shared:
        # The machine was shared: no claim on what it touched was judged, and none may pass for it.
        status, code, cause = INVALID, EXIT_SHARED_GPU, CAUSE_SHARED_GPU
        notes.insert(0, shared)
    return Verdict(
        status=status, exit_code=code, counts=counts, claims=verdicts, results_dir=results.folder,
        hardware=env_hardware(results.env), reference_file=reference.path, reference_name=reference.name,
        reference_sha256=reference.sha256, reference_hardware=reference.hardware.describe(),
        manifest=manifest_note, created_at=storage.utc_now(), notes=notes, cause=cause,
    )


def machine_notes(results: ResultSet, reference: Reference) -> list[str]:
    """The card's state against the reference's: a lower power limit, throttled cases."""
    from artifact.results.machine_state import power_note, throttled_note

    return [n for n in (power_note(results, reference), throttled_note(results.cases)) if n]


def invalid_note(results: ResultSet) -> Optional[str]:
    """One line naming the invalid cases (the first few) and why, None when there is none."""
    bad = invalid_cases(results.cases)
    if not bad:
        return None
    named = "; ".join(f"{c.case.case_id}: {why_invalid(c)}" for c in bad[:INVALID_LISTED])
    more = f" (and {len(bad) - INVALID_LISTED} more)" if len(bad) > INVALID_LISTED else ""
    return (f"{len(bad)} case(s) invalid, their timed calls not shown to do the real work: {named}{more}; "
            "fix the kernel (the integrity record in cases/<id>.json has the numbers)")


# What a time depends on besides the card: the libraries that run the kernels.
_SOFTWARE = ("torch", "triton")
_CUDA_FIELDS = ("cuda_runtime_version", "torch_cuda_build", "cudnn_version")


def _release(version: object) -> str:
    # "2.11.0+cu130" and "2.11.0" are the same release of torch; the build is torch_cuda_build's.
    return str(version).split("+", 1)[0]


def software_differences(results: ResultSet, reference: Reference) -> list[str]:
    """torch, triton, the CUDA runtime, torch's CUDA build and cuDNN of the results against the
    reference's recorded environment (issue 9: a pinned run says so when it is not the reference's)."""
    ref_env = reference.environment or {}
    ref_sw = ref_env.get("software") or {}
    env = results.env
    out = []
    for name in _SOFTWARE:
        have, want = (env.software or {}).get(name), ref_sw.get(name)
        if want and have and _release(have) != _release(want):
            out.append(f"{name} {have} (reference {want})")
    if env.device == "cuda":
        for name in _CUDA_FIELDS:
            have, want = getattr(env, name, None), ref_env.get(name)
            if want and have and str(have) != str(want):
                out.append(f"{name.replace('_', ' ')} {have} (reference {want})")
    return out


def check(results_dir: Path | str, reference: Reference) -> Verdict:
    import time

    t0 = time.perf_counter()
    results, note = load_results(results_dir)
    v = judge_all(results, reference, note)
    v.wall_s = round(time.perf_counter() - t0, 3)
    return v


def load_verdict(path: Path | str) -> Verdict:
    data = load_json(path)
    if not isinstance(data, dict) or data.get("kind") != KIND_VERDICT:
        raise ArtifactError(f"{path}: not a verdict file (kind is not {KIND_VERDICT!r}); run artifact check again")
    why = versions.refusal(KIND_VERDICT, data.get("schema_version"))
    if why is not None:
        raise ArtifactError(f"{path}: {why}, or run artifact check again")
    # Typed and checked field by field, as every record: a verdict read back is shown to a reviewer.
    try:
        return from_dict(Verdict, data)
    except RecordError as exc:
        raise ArtifactError(f"{path}: {exc}; run artifact check again") from None


# --------------------------------------------------------------------------- output
def to_json(verdict: Verdict) -> str:
    return json.dumps(asdict(verdict), indent=2, allow_nan=False, default=_no_inf) + "\n"


def _no_inf(obj: Any) -> Any:
    raise TypeError(f"cannot serialise {obj!r}")


def _safe(v: ClaimVerdict) -> ClaimVerdict:
    # JSON has no infinity; a tolerance that could not be measured is reported as None.
    if v.tolerance_used is not None and v.tolerance_used == float("inf"):
        v.tolerance_used = None
    return v


def measured_text(v: ClaimVerdict) -> str:
    if v.measured is None:
        return ""
    ci = f" [{num(v.ci_low, none='')}, {num(v.ci_high, none='')}]" if v.ci_low is not None else ""
    return f"{num(v.measured, none='')}{ci} {v.unit}".strip()


def reference_text(v: ClaimVerdict) -> str:
    if v.reference is None:
        return ""
    band = ""
    if v.band_low is not None and v.band_high is not None:
        band = f" (band {num(v.band_low, none='')}..{num(v.band_high, none='')})"
    return f"{num(v.reference, none='')}{band}"


def _other_notes(verdict: Verdict) -> list[str]:
    """The notes less the INVALID one, which the renderings put first on its own line."""
    return verdict.notes[1:] if verdict.status == INVALID else verdict.notes


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def skip_groups(verdict: Verdict) -> list[tuple[str, list[str]]]:
    """The SKIP claims by reason, most frequent first: on another GPU most claims skip for one
    reason, and a row per claim buries the few that were judged."""
    groups: dict[str, list[str]] = {}
    for v in verdict.claims:
        if v.status == SKIP:
            groups.setdefault(v.why, []).append(v.claim_id)
    return sorted(groups.items(), key=lambda kv: -len(kv[1]))


def _claims(n: int) -> str:
    return f"{n} claim{'' if n == 1 else 's'}"


def scope_sentence(verdict: Verdict) -> str:
    """One sentence on what was judged and what was not, for the top of every rendering."""
    c = verdict.counts
    total = c[PASS] + c[FAIL] + c[SKIP]
    judged = c[PASS] + c[FAIL]
    head = (f"Checked {judged} of {_claims(total)} of {verdict.reference_name} on {verdict.hardware} "
            f"({c[PASS]} PASS, {c[FAIL]} FAIL)") if judged else \
        f"Checked none of the {_claims(total)} of {verdict.reference_name} on {verdict.hardware}"
    groups = skip_groups(verdict)
    if not groups:
        return head + "."
    return head + "; not checked: " + "; ".join(f"{_claims(len(ids))} {why}" for why, ids in groups) + "."


def _skip_label(ids: list[str]) -> str:
    return ids[0] if len(ids) == 1 else _claims(len(ids))


def to_markdown(verdict: Verdict) -> str:
    c = verdict.counts
    lines = [f"## Verdict: {verdict.status}", ""]
    if verdict.status == INVALID:
        lines += [f"**{INVALID}**: {_md_escape(verdict.notes[0])}", ""]
    lines += [
        scope_sentence(verdict),
        "",
        f"- Results: `{verdict.results_dir}` on {verdict.hardware} ({verdict.manifest})",
        f"- Reference: `{verdict.reference_file}` ({verdict.reference_name}, measured on {verdict.reference_hardware}), "
        f"sha256 `{verdict.reference_sha256[:12]}`",
        f"- Claims: {c[PASS]} PASS, {c[FAIL]} FAIL, {c[SKIP]} SKIP; exit code {verdict.exit_code}",
    ]
    lines += [f"- Note: {n}" for n in _other_notes(verdict)]
    lines += [
        "",
        "Columns: *rule* is how the band is judged (point: the estimate inside it; equivalence: the whole "
        "CI inside it; significant, for rankings: each CI of a ratio clear of 1); *used* is how much of the tolerance the measurement took (over 100%: outside the "
        "band); a *share* in a claim is a fraction of this run's measured ceiling (ceilings.json).",
        "",
        "| claim | kind | status | measured [95% CI] | reference (band) | tolerance | rule | used | why |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for v in verdict.claims:
        if v.status == SKIP:
            continue
        used = f"{v.tolerance_used:.0%}" if v.tolerance_used is not None else ""
        lines.append(
            f"| {v.claim_id} | {v.kind} | **{v.status}** | {_md_escape(measured_text(v))} | {_md_escape(reference_text(v))} | "
            f"{_md_escape(v.tolerance or '')} | {v.rule or ''} | {used} | {_md_escape(v.why)} |"
        )
    for why, ids in skip_groups(verdict):
        lines.append(f"| {_skip_label(ids)} | | **{SKIP}** | | | | | | {_md_escape(why)} |")
    groups = [(why, ids) for why, ids in skip_groups(verdict) if len(ids) > 1]
    if groups:
        # The ids stay findable (verdict.json has each claim), without a row each.
        lines += ["", "<details><summary>which claims were skipped</summary>", ""]
        lines += [f"- {_md_escape(why)}: {', '.join(ids)}" for why, ids in groups]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def write(verdict: Verdict, out_dir: Path | str, name: Optional[str] = None) -> tuple[Path, Path]:
    """verdict.json/md, or verdict-<name>.json/md for a second reference checked on the same folder."""
    out = Path(out_dir)
    verdict.claims = [_safe(v) for v in verdict.claims]
    stem = "verdict" if name is None else f"verdict-{name}"
    try:
        storage.atomic_write_text(out / f"{stem}.json", to_json(verdict))
        storage.atomic_write_text(out / f"{stem}.md", to_markdown(verdict))
    except OSError as exc:
        raise ArtifactError(f"{out / stem}.json: cannot write the verdict ({exc.strerror or exc}); "
                            "give a writable folder to --out") from None
    return out / f"{stem}.json", out / f"{stem}.md"


def append_step_summary(verdict: Verdict) -> Optional[Path]:
    """Append the verdict table to $GITHUB_STEP_SUMMARY when GitHub Actions sets it."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    try:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(to_markdown(verdict) + "\n")
    except OSError as exc:
        raise ArtifactError(f"$GITHUB_STEP_SUMMARY={target}: cannot append ({exc.strerror})") from None
    return Path(target)


_STYLE = {PASS: "bold green", FAIL: "bold red", SKIP: "yellow"}


def print_table(verdict: Verdict, console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=160)  # CI logs: rich would otherwise wrap at 80 columns
    table = Table(title=f"{verdict.reference_name} vs {verdict.hardware}: {verdict.status}")
    for col in ("claim", "status", "measured [95% CI]", "reference (band)", "rule", "used", "why (full text in verdict.md)"):
        table.add_column(col, overflow="fold")
    for v in verdict.claims:
        if v.status == SKIP:
            continue
        used = f"{v.tolerance_used:.0%}" if v.tolerance_used is not None else ""
        # A PASS row's numbers say it all; the reasons that need reading are FAIL and SKIP.
        why = v.why if v.status != PASS else ""
        table.add_row(v.claim_id, f"[{_STYLE[v.status]}]{v.status}[/]", measured_text(v), reference_text(v),
                      v.rule or "", used, why)
    for why, ids in skip_groups(verdict):
        table.add_row(_skip_label(ids), f"[{_STYLE[SKIP]}]{SKIP}[/]", "", "", "", "", why)
    if verdict.status == INVALID:
        from rich.markup import escape

        console.print(f"[bold red]{INVALID}[/]: {escape(verdict.notes[0])}", highlight=False)
    console.print(scope_sentence(verdict))
    console.print(table)
    c = verdict.counts
    console.print(f"{c[PASS]} PASS, {c[FAIL]} FAIL, {c[SKIP]} SKIP -> exit {verdict.exit_code}")
    for n in _other_notes(verdict):
        console.print(f"note: {n}")
