"""Several results folders side by side (`artifact report A B ...`, or a sharded `--each-gpu`
folder): one table per workload family with a column per folder, the ratio of each folder's time
to the first's with its 95% CI, and per backend one plot of those ratios against S, a line per
folder. Same-model folders stay separate columns: the spread between two cards of one model is
the thing a cross-GPU comparison is for.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from artifact.report import plots
from artifact.report.family import family, family_name, family_slug
from artifact.results.integrity import why_invalid
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


def _ratio_ci(case: Any, base: Any) -> Any:
    """CI of time(case) / time(base) (stats.ConfidenceInterval), None where either side has no samples."""
    from harness import stats

    if base is None or case is None or not _ok(case) or not _ok(base):
        return None
    if not case.timing.repetitions or not base.timing.repetitions:
        return None
    return stats.hierarchical_ratio_ci(_groups(case), _groups(base), n_resamples=RATIO_RESAMPLES, seed=RATIO_SEED)


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
            by_family[family(c.case)][(c.case.backend, c.case.seq)][i] = c
    for key in sorted(by_family, key=family_name):
        rows = by_family[key]
        ratios = {(b, s): [_ratio_ci(c, per[0]) for c in per[1:]] for (b, s), per in rows.items()}
        lines += [f"## {family_name(key)}", ""]
        head = ["backend", "S"] + [f"{i}: median ms [95% CI]" for i in range(len(columns))]
        head += [f"{i} / 0" for i in range(1, len(columns))]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for (backend, seq) in sorted(rows):
            cells = [backend, str(seq)]
            for c in rows[(backend, seq)]:
                if c is None:
                    cells.append("not run")
                elif not _ok(c):
                    cells.append(f"{c.status}")
                else:
                    s = c.timing.summary
                    cells.append(f"{_n(s.median_ms)} [{_n(s.ci_low_ms)}, {_n(s.ci_high_ms)}]")
            cells += [f"{ci.estimate:.3f} [{ci.low:.3f}, {ci.high:.3f}]" if ci is not None else "-"
                      for ci in ratios[(backend, seq)]]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        # An invalid case has no ratio and no point on a plot; its reason is said once, here.
        invalid = [(i, c) for (_b, _s), per in sorted(rows.items()) for i, c in enumerate(per) if c is not None and c.status == "invalid"]
        if invalid:
            lines += [f"- invalid in column {i}: `{c.case.case_id}`: {why_invalid(c)}" for i, c in invalid] + [""]
        plots_made = _plots(key, ratios, columns, out_dir)
        if plots_made:
            lines += ["Each plot: one backend's time on every column relative to column 0, against S, with the "
                      "ratio's 95% CI (1 = the same time as column 0).", ""]
            lines += [f"![{backend}]({name})" for backend, name in plots_made] + [""]
    return "\n".join(lines).rstrip() + "\n"


def legend_name(col: Column) -> str:
    """A column as a plot legend names it: its folder and the card it ran on (the GPU's UUID
    prefix tells two cards of one model apart)."""
    env = col.results.env
    uuid = (env.gpu.uuid or "") if env.gpu is not None else ""
    card = uuid.removeprefix("GPU-")[:8] if uuid else (env.host or {}).get("hostname_sha256_8", "")
    return f"{Path(col.label).name} ({card})" if card else Path(col.label).name


def _plots(key: tuple, ratios: dict[tuple[str, int], list[Any]], columns: list[Column], out_dir: Path) -> list[tuple[str, str]]:
    """One plot per backend: time / time of column 0 against S, a line per other column, named by
    folder and card. The spread between cards is a few percent, invisible on a plot of the times."""
    n_columns = len(columns)
    names = [legend_name(c) for c in columns]
    made = []
    for backend in sorted({b for b, _ in ratios}):
        seqs = sorted(s for b, s in ratios if b == backend)
        series = []
        for j in range(n_columns - 1):
            pts = [(s, ratios[(backend, s)][j]) for s in seqs if ratios[(backend, s)][j] is not None]
            if pts:
                series.append(plots.Series(f"{names[j + 1]}\n/ {names[0]}", [float(s) for s, _ in pts], [ci.estimate for _, ci in pts],
                                           [ci.low for _, ci in pts], [ci.high for _, ci in pts]))
        if not series:
            continue
        name = f"side-by-side-{backend}-{family_slug(key)}.svg"
        storage.atomic_write_text(out_dir / name, plots.line_chart(
            series, title=f"{backend}: time relative to column 0", x_label="sequence length S",
            y_label="time / time of column 0, 95% CI", log_y=False, y_zero=False))
        made.append((backend, name))
    return made


def write(columns: list[Column], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_GPUS_MD
    storage.atomic_write_text(path, build(columns, out_dir))
    return path
