"""The report's Integrity section: for each ok case, the evidence that its timed calls did the
real work, as the harness recorded it (CaseResult.integrity, schema 4 on); and each invalid case
with its reason and the check that failed (torch-free).

The numbers are the records' own: `value` and `bound` of each IntegrityCheck (harness/records.py).
timed_outputs: the largest relative error of the timed replays' outputs, against the tolerance;
census_vs_eager: the timed graph's kernels against an eager call's; roofline: the median over the
roofline time (at least 1/SLACK); host_clock: the host's time per call over the event median.
"""

from __future__ import annotations

from typing import Optional

from artifact.results.checks import INTEGRITY_SCHEMA
from artifact.results.integrity import why_invalid
from artifact.textfmt import num
from harness.records import CaseResult, IntegrityCheck

# The checks that get a column; any other (output_alias, timer_tamper, census_time) is summed up in the last.
_COLUMNS = ("timed_outputs", "census_vs_eager", "roofline", "host_clock")


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _find(checks: list[IntegrityCheck], name: str) -> Optional[IntegrityCheck]:
    return next((c for c in checks if c.name == name), None)


def _cell(check: Optional[IntegrityCheck]) -> str:
    if check is None:
        return "not recorded"
    if check.passed is None:
        return f"not run ({_esc(check.detail)})" if check.detail else "not run"
    word = "passed" if check.passed else "FAILED"
    if check.name == "timed_outputs" and check.value is not None:
        return f"{word}: max rel. error {num(check.value, 2)} (tolerance {num(check.bound, 2)})"
    if check.name == "roofline" and check.value is not None:
        return f"{word}: {num(check.value, 3)}x the roofline time (bound {num(check.bound, 3)}x)"
    if check.name == "host_clock" and check.value is not None:
        return f"{word}: host / events {num(check.value, 3)}" + (f" (bound {num(check.bound, 3)})" if check.bound is not None else "")
    if check.value is not None:
        return f"{word}: ratio {num(check.value, 3)}"
    return word


def _others(checks: list[IntegrityCheck]) -> str:
    rest = [c for c in checks if c.name not in _COLUMNS]
    if not rest:
        return "-"
    return ", ".join(f"{c.name} {'not run' if c.passed is None else 'passed' if c.passed else 'FAILED'}" for c in rest)


def section(cases: list[CaseResult]) -> list[str]:
    """The lines of `## Integrity` (none when the folder has no ok or invalid case)."""
    ok = [c for c in cases if c.status == "ok"]
    invalid = [c for c in cases if c.status == "invalid"]
    if not ok and not invalid:
        return []
    lines = ["## Integrity", "",
             "Whether each case's timed calls were shown to do the real work: the outputs of the timed replays checked, "
             "the timed kernels against an eager call's, the median against the roofline of this run's ceilings, the "
             "event times against the host clock.", ""]
    recorded = [c for c in ok if c.integrity is not None]
    old = sorted({c.schema_version for c in ok if c.schema_version < INTEGRITY_SCHEMA})
    if old:
        lines += [f"Not recorded (results predate the integrity checks, schema {', '.join(map(str, old))}) for "
                  f"{sum(c.schema_version < INTEGRITY_SCHEMA for c in ok)} ok case(s).", ""]
    if recorded:
        lines += ["| case | timed outputs checked | census vs eager | times above the roofline | host clock agreement | "
                  "other checks | input sets (refreshes) |",
                  "|---|---|---|---|---|---|---|"]
        for c in recorded:
            assert c.integrity is not None
            checks = c.integrity.checks
            cells = [c.case.case_id, *(_cell(_find(checks, n)) for n in _COLUMNS), _others(checks),
                     f"{c.integrity.input_sets} ({c.integrity.refreshes})"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if invalid:
        lines += ["Invalid cases (in no comparison, plot or sentence of this report):", ""]
        for c in invalid:
            failed = c.integrity.failed() if c.integrity is not None else []
            how = f" (failed: {', '.join(f'{f.name}: {_cell(f)}' for f in failed)})" if failed else ""
            lines.append(f"- `{c.case.case_id}`: {_esc(why_invalid(c))}{_esc(how)}")
        lines.append("")
    return lines
