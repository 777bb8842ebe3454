"""`artifact report`: report.md and plots of one folder, or several side by side (report-gpus.md).

    artifact report RESULTS_DIR [--reference FILE] [--out DIR]
    artifact report RUN_A RUN_B ... --out DIR          (side by side: report-gpus.md)

The report judges the results now (a verdict.json found in the folder is compared, never trusted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from artifact.errors import ArtifactError


def _report(
    results_dirs: list[Path] = typer.Argument(..., help="A results folder; several (or a sharded --each-gpu folder) for a side-by-side report."),
    reference: Optional[Path] = typer.Option(None, "--reference", "-r", help="Reference file: adds the verdict and the measured peaks."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for report.md and the SVG plots (default: RESULTS_DIR)."),
    gpu_hour_price: Optional[float] = typer.Option(None, "--gpu-hour-price", min=0.0, help="Price of one GPU-hour (any currency): the report states what this reproduction cost."),
) -> None:
    """Write report.md and SVG plots: tables, plots, verdict, environment, checklist, paragraph.
    Several folders: report-gpus.md, every folder side by side."""
    from artifact import shipped
    from artifact import verdict as verdictmod
    from artifact.launch import shards as shardmod
    from artifact.reference import load_reference
    from artifact.report import single as report

    ref = load_reference(reference) if reference else None
    sets = _report_sets(results_dirs)
    if len(sets) > 1:
        _report_side_by_side(sets, ref, out, results_dirs)
        return
    (results_dir,) = results_dirs
    (_label, results, note) = sets[0]
    if shardmod.is_sharded(results_dir) and ref is None:
        sel = shipped.select(shipped.from_env(results.env))
        ref = sel.primary.reference if sel.primary is not None else None
    if ref is None:
        # A verdict.json lying in the folder is not evidence about the folder (one copied from a
        # passing run was reported as PASS on results that fail): the verdict is judged now,
        # against the reference that verdict.json names when that file is still there unchanged,
        # else against the shipped reference that fits (as `artifact check` without --reference).
        ref, why = reference_of_verdict(results_dir)
        if ref is None:
            sel = shipped.select(shipped.from_env(results.env))
            if sel.primary is not None:
                ref, why = sel.primary.reference, sel.primary.why
        if ref is not None:
            typer.echo(f"reference {ref.path}: {why}; the verdict is judged now, not read from the folder")
    import time

    t0 = time.perf_counter()
    v = verdictmod.judge_all(results, ref, note) if ref is not None else None
    if v is not None:
        v.wall_s = round(time.perf_counter() - t0, 3)
        if reference is not None and v.status == verdictmod.NOT_APPLICABLE:
            raise ArtifactError(f"--reference {reference}: {v.notes[0]}; no report was written")
    stale = stale_verdict(results_dir, v)
    if stale:
        typer.echo(f"warning: {stale}", err=True)
        if v is not None:
            v.notes.append(stale)
    path = report.write_report(results, note, ref, v, out or results_dir, gpu_hour_price=gpu_hour_price)
    typer.echo(f"wrote {path}")


def _report_sets(folders: list[Path]) -> list[tuple[str, Any, str]]:
    """(label, result set, manifest note) per column: a sharded folder gives one per GPU
    (--each-gpu) or one merged set (split shards)."""
    from artifact.launch import shards as shardmod
    from artifact.results import folder as folder_mod

    sets: list[tuple[str, Any, str]] = []
    for folder in folders:
        if shardmod.is_sharded(folder):
            _run, parts = shardmod.load(folder)
            sets += [(str(folder / label) if label != "merged" else str(folder), rs, note) for label, rs, note in parts]
        else:
            sets.append((str(folder), *folder_mod.load_results(folder)))
    return sets


def _report_side_by_side(sets: list[tuple[str, Any, str]], ref: Any, out: Optional[Path], folders: list[Path]) -> None:
    from artifact import shipped
    from artifact import verdict as verdictmod
    from artifact.report import side_by_side as report_gpus
    from artifact.textfmt import env_hardware

    if out is None:
        if len(folders) > 1:
            raise ArtifactError("artifact report with several folders writes one side-by-side report: name its folder with --out DIR")
        out = folders[0]
    columns = []
    for label, rs, note in sets:
        r = ref
        if r is None:
            sel = shipped.select(shipped.from_env(rs.env))
            r = sel.primary.reference if sel.primary is not None else None
        v = verdictmod.judge_all(rs, r, note) if r is not None else None
        columns.append(report_gpus.Column(label=label, hardware=env_hardware(rs.env), results=rs, verdict=v))
    path = report_gpus.write(columns, out)
    typer.echo(f"wrote {path}")


def reference_of_verdict(results_dir: Path):  # noqa: ANN201 - (Reference | None, why)
    """The reference the folder's verdict.json was judged against, if that file still exists
    with the same sha256 (only to judge again: the stored verdict itself is never shown)."""
    from artifact import verdict as verdictmod
    from artifact.reference import load_reference

    path = results_dir / verdictmod.VERDICT_JSON
    if not path.is_file() or path.is_symlink():
        return None, ""
    try:
        old = verdictmod.load_verdict(path)
        ref_path = Path(old.reference_file)
        if ref_path.suffix not in (".yaml", ".yml") or not ref_path.is_file():
            return None, ""
        ref = load_reference(ref_path)
    except (ArtifactError, OSError, TypeError, ValueError):
        return None, ""
    if ref.sha256 != old.reference_sha256:
        return None, ""
    return ref, f"the reference {verdictmod.VERDICT_JSON} names (unchanged since)"


def stale_verdict(results_dir: Path, fresh) -> Optional[str]:  # noqa: ANN001 - verdict.Verdict
    """Say so when the folder's verdict.json disagrees with the verdict judged now."""
    from artifact import verdict as verdictmod

    path = results_dir / verdictmod.VERDICT_JSON
    if not path.is_file() or path.is_symlink():
        return None
    try:
        old = verdictmod.load_verdict(path)
    except ArtifactError:
        return f"{path} is not a readable verdict; it was ignored"
    if fresh is None:
        return (f"{path} says {old.status} against {old.reference_name}, but no reference fits these results now: "
                "it was ignored")
    if (old.status, old.counts, old.reference_sha256) == (fresh.status, fresh.counts, fresh.reference_sha256):
        return None

    def counts(v) -> str:  # noqa: ANN001
        return ", ".join(f"{v.counts.get(k, 0)} {k}" for k in ("PASS", "FAIL", "SKIP"))

    # Name only what differs: "says PASS ... but these results judge PASS" read as a contradiction.
    diffs = []
    if old.status != fresh.status:
        diffs.append(f"it says {old.status}, these results judge {fresh.status}")
    if old.counts != fresh.counts:
        diffs.append(f"it counts {counts(old)}, now {counts(fresh)}")
    if old.reference_sha256 != fresh.reference_sha256:
        diffs.append(f"it was judged against another version of {old.reference_name} "
                     f"(sha256 {old.reference_sha256[:12]}, now {fresh.reference_sha256[:12]})")
    return f"{path} is out of date ({'; '.join(diffs)}): it was ignored, and the verdict here is judged now"


def register(app: typer.Typer) -> None:
    app.command("report")(_report)
