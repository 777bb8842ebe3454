"""Several results folders side by side (`artifact report A B ...`, or a sharded `--each-gpu`
folder): one table per workload family with a column per folder, the ratio of each folder's time
to the first's with its 95% CI, and one time-vs-S plot per family with a line per (folder,
backend). Same-model folders stay separate columns: the spread between two cards of one model is
the thing a cross-GPU comparison is for.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from artifact import plots
from artifact.report import _family, _family_name, _family_slug
from artifact.textfmt import num as _n
from harness import storage

REPORT_GPUS_MD = "report-gpus.md"
# The ratio's CI: the hierarchical bootstrap the claims use, fewer resamples (a display, not a verdict).
RATIO_RESAMPLES = 2000
RATIO_SEED = 20261129


@dataclass
class Column:
    label: str  # the folder as the user named it (or the shard's folder)
    hardware: str
    results: Any  # artifact.claims.ResultSet
    verdict: Optional[Any] = None  # artifact.verdict.Verdict, when a reference applied


def _groups(case: Any) -> list[list[float]]:
    return [list(r.samples_ms) for r in case.timing.repetitions]


def _ratio_text(case: Any, base: Any) -> str:
    """time(case) / time(base), with the CI of the ratio; '-' where either side has no samples."""
    from harness import stats

    if base is None or case is None or case.timing is None or base.timing is None:
        return "-"
    if not case.timing.repetitions or not base.timing.repetitions:
        return "-"
    ci = stats.hierarchical_ratio_ci(_groups(case), _groups(base), n_resamples=RATIO_RESAMPLES, seed=RATIO_SEED)
    return f"{ci.estimate:.3f} [{ci.low:.3f}, {ci.high:.3f}]"


def _ok(c: Any) -> bool:
    return c.status == "ok" and c.timing is not None


def build(columns: list[Column], out_dir: Path) -> str:
    if len(columns) < 2:
        raise ValueError("a side-by-side report needs two or more folders")
    lines = ["# Results side by side", ""]
    lines += ["| column | folder | hardware | torch | driver | verdict |", "|---|---|---|---|---|---|"]
    for i, col in enumerate(columns):
        env = col.results.env
        sw = env.software or {}
        v = col.verdict
        verdict = (f"{v.status} ({', '.join(f'{n} {k}' for k, n in sorted(v.counts.items()) if n)})" if v is not None
                   else "not judged (no reference fits)")
        lines.append(f"| {i} | `{col.label}` | {col.hardware} | {sw.get('torch', '-')} | "
                     f"{env.nvidia_driver_version or '-'} | {verdict} |")
    lines += ["", f"Ratios are time / time of column 0, with the 95% CI of the ratio (hierarchical bootstrap over "
                  f"each side's repetitions, {RATIO_RESAMPLES} resamples); a CI that excludes 1 is a difference "
                  "this run can see, one that includes it is not.", ""]
    by_family: dict[tuple, dict[tuple[str, int], list[Any]]] = defaultdict(lambda: defaultdict(lambda: [None] * len(columns)))
    for i, col in enumerate(columns):
        for c in col.results.cases:
            by_family[_family(c.case)][(c.case.backend, c.case.seq)][i] = c
    for key in sorted(by_family, key=_family_name):
        rows = by_family[key]
        lines += [f"## {_family_name(key)}", ""]
        head = ["backend", "S"] + [f"{i}: median ms [95% CI]" for i in range(len(columns))]
        head += [f"{i} / 0" for i in range(1, len(columns))]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for (backend, seq) in sorted(rows):
            cells = [backend, str(seq)]
            per = rows[(backend, seq)]
            for c in per:
                if c is None:
                    cells.append("not run")
                elif not _ok(c):
                    cells.append(f"{c.status}")
                else:
                    s = c.timing.summary
                    cells.append(f"{_n(s.median_ms)} [{_n(s.ci_low_ms)}, {_n(s.ci_high_ms)}]")
            base = per[0] if per[0] is not None and _ok(per[0]) else None
            for c in per[1:]:
                cells.append(_ratio_text(c if c is not None and _ok(c) else None, base))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        name = _plot(key, rows, columns, out_dir)
        if name:
            lines += [f"![{_family_name(key)}]({name})", "",
                      "Median time per call against S, one line per column and backend, 95% CI bars (log-log).", ""]
    return "\n".join(lines).rstrip() + "\n"


def _plot(key: tuple, rows: dict[tuple[str, int], list[Any]], columns: list[Column], out_dir: Path) -> Optional[str]:
    series = []
    backends = sorted({b for b, _ in rows})
    for i in range(len(columns)):
        for backend in backends:
            cs = sorted((c for (b, _), per in rows.items() if b == backend for c in [per[i]] if c is not None and _ok(c)),
                        key=lambda c: c.case.seq)
            if cs:
                series.append(plots.Series(f"{i}: {backend}", [float(c.case.seq) for c in cs],
                                           [c.timing.summary.median_ms for c in cs],
                                           [c.timing.summary.ci_low_ms for c in cs], [c.timing.summary.ci_high_ms for c in cs]))
    if not series:
        return None
    name = f"side-by-side-{_family_slug(key)}.svg"
    storage.atomic_write_text(out_dir / name, plots.line_chart(
        series, title=f"Median time vs S ({_family_name(key)})", x_label="sequence length S",
        y_label="median time per call (ms), 95% CI"))
    return name


def write(columns: list[Column], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_GPUS_MD
    storage.atomic_write_text(path, build(columns, out_dir))
    return path
