"""`artifact check`: judge results folders against the references that fit them, or a run against
a base run (the pull-request gate).

    artifact check RESULTS_DIR --reference artifact/references/h100.yaml [--json] [--out DIR]
    artifact check RUN --baseline BASE_RUN          (the pull-request gate: artifact/baseline.py)

check exits 0 when every applicable claim passes, 1 when a claim fails, 2 when the inputs are
unusable (tampered results, a bad reference, a reference that applies to none of the claims,
results of another kind than the reference describes, or an unfinished run), 3 (INVALID) when a
case's timed calls were not shown to do the real work, 4 (INVALID) when the GPU was shared with
another process while cases were timed; exit 2 writes no verdict file, so a mistaken check never
replaces the folder's verdict. Several folders: the worst, 3 > 4 > 1 > 2 > 0. With --baseline the
same codes: 1 a case slower beyond its tolerance or less correct than in the base run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from artifact.errors import ArtifactError


def _check(
    results_dirs: list[Path] = typer.Argument(..., help="Results folders (env.json, cases/, manifest.json), or sharded ones (OUT of `artifact run --gpus all|--shards N`)."),
    reference: Optional[Path] = typer.Option(None, "--reference", "-r", help="Reference tolerance file, e.g. artifact/references/h200.yaml (default: the shipped references that fit each folder's hardware)."),
    json_out: bool = typer.Option(False, "--json", help="Print the verdict as JSON instead of the table."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for verdict.json and verdict.md (default: each RESULTS_DIR)."),
    min_checked: float = typer.Option(0.0, "--min-checked", min=0.0, max=1.0, help="Share of each reference's claims that must be judged (PASS or FAIL, not SKIP) for exit 0; fewer: exit 2 (e.g. 1.0 in CI: every claim applies)."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="Judge RESULTS_DIR against this base run of the same GPU model instead of a reference: each case faster, slower or equivalent with a CI; exit 1 on a slowdown beyond the tolerance or a correctness change (the pull-request gate)."),
    tolerance: float = typer.Option(0.03, "--tolerance", min=0.0, max=0.9, help="With --baseline: the smallest tolerance on a case's time ratio (default 0.03, derive-reference's floor)."),
) -> None:
    """Verify the results' hashes, then judge every claim of the reference: PASS, FAIL or SKIP."""
    from artifact import verdict as verdictmod
    from artifact.launch import shards

    if baseline is not None:
        if reference is not None or len(results_dirs) != 1 or min_checked:
            raise ArtifactError("--baseline: give one results folder, and no --reference or --min-checked (the base run is the reference)")
        raise typer.Exit(check_baseline(results_dirs[0], baseline, out or results_dirs[0], tolerance, json_out=json_out))

    if out is not None and len(results_dirs) > 1:
        raise ArtifactError("--out: give one results folder with it; with several, each gets its own verdict files")
    if out is not None and out.resolve() != results_dirs[0].resolve() and out.resolve().is_relative_to(results_dirs[0].resolve()):
        # Verdict files inside the folder's cases/ (or any folder of it) become files its manifest
        # does not list: the next check of the folder refused it (issue 19).
        raise ArtifactError(f"--out: {out} is inside the results folder {results_dirs[0]}; give the folder itself "
                            "(the default) or a folder outside it")
    if reference is not None:
        from artifact.reference import load_reference

        load_reference(reference)  # a broken reference is named first: no folder can be judged with it
    todo = []  # (label, ResultSet, manifest note, where the verdict goes)
    for folder in results_dirs:
        if shards.is_sharded(folder):
            run, sets = shards.load(folder)
            for label, rs, note in sets:
                where = out or (folder if label == "merged" else folder / label)
                todo.append((f"{folder}" + ("" if label == "merged" else f"/{label}"), rs, note, where))
        else:
            rs, note = _load_finished(folder, "results")
            todo.append((str(folder), rs, note, out or folder))
    rows, codes = [], []
    for label, rs, note, where in todo:
        verdicts = judge_set(rs, note, where, reference=reference, json_out=json_out, min_checked=min_checked)
        codes.append(_worst([v.exit_code for i, v in enumerate(verdicts) if v.status != verdictmod.NOT_APPLICABLE or i == 0]))
        for v in verdicts:
            rows.append((v.hardware, label, v.reference_name, v.counts, v.exit_code))
    if len(todo) > 1 and not json_out:
        print_by_gpu(rows)
    raise typer.Exit(_worst(codes))


def _load_finished(folder: Path, what: str):  # noqa: ANN202 - (ResultSet, note)
    from artifact.launch import shards
    from artifact.results import folder as folder_mod

    if shards.is_sharded(folder):
        raise ArtifactError(f"{what} {folder}: a sharded run; give one shard's folder, or merge the shards first")
    refuse_unfinished(folder)
    try:
        return folder_mod.load_results(folder)
    except ArtifactError as exc:
        raise in_progress(folder) or exc from None


def check_baseline(run_dir: Path, base_dir: Path, out: Path, tolerance: float, *, json_out: bool = False) -> int:
    """`artifact check RUN --baseline BASE`: vs-baseline.json/md in `out`, the table in the job
    summary (GITHUB_STEP_SUMMARY) when there is one; returns the exit code."""
    import os

    from artifact import baseline as gate

    if run_dir.resolve() == base_dir.resolve():
        raise ArtifactError(f"--baseline {base_dir}: the same folder as the run; give the base branch's run")
    run, _ = _load_finished(run_dir, "results")
    base, _ = _load_finished(base_dir, "--baseline")
    v = gate.compare(run, base, gate.GateOptions(floor=tolerance))
    js, md = gate.write(v, run, out)
    if json_out:
        sys.stdout.write(js.read_text(encoding="utf-8"))
    else:
        for c in v.cases:
            if c.outcome in gate.FAILING + (gate.MACHINE, gate.INVALID):
                typer.echo(f"{c.outcome:8} {c.case_id}: {c.why}")
        counts = ", ".join(f"{k} {n}" for k, n in v.counts.items())
        typer.echo(f"{v.status}: {run_dir} against the baseline {base_dir} ({counts}); wrote {md} and {js.name}")
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(md.read_text(encoding="utf-8") + "\n")
    return v.exit_code


def _worst(codes: list[int]) -> int:
    """The exit code of several folders, shards or references: 3 > 4 > 1 > 2 > 0 (verdict.worst)."""
    from artifact import verdict as verdictmod

    return verdictmod.worst(codes)


def print_by_gpu(rows: list[tuple]) -> None:
    """One table for several folders, grouped by the hardware they ran on."""
    from rich.console import Console
    from rich.table import Table

    from artifact import verdict as verdictmod

    console = Console() if sys.stdout.isatty() else Console(width=160)
    table = Table(title="every folder, by GPU model")
    for col in ("hardware", "results", "reference", "PASS", "FAIL", "SKIP", "exit"):
        table.add_column(col, overflow="fold")
    md = ["## Every folder, by GPU model", "", "| hardware | results | reference | PASS | FAIL | SKIP | exit |",
          "|---|---|---|---|---|---|---|"]
    for hw, label, ref, counts, code in sorted(rows, key=lambda r: (r[0], r[1])):
        # The reason is in the folder's own verdict table, above.
        shown = f"{code} ({verdictmod.INVALID})" if code in (verdictmod.EXIT_INVALID, verdictmod.EXIT_SHARED_GPU) else str(code)
        cells = (hw, label, ref, str(counts.get("PASS", 0)), str(counts.get("FAIL", 0)), str(counts.get("SKIP", 0)), shown)
        table.add_row(*cells)
        md.append("| " + " | ".join(cells) + " |")
    console.print(table)
    import os

    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write("\n".join(md) + "\n\n")


def judge_set(results, note: str, out: Path, *, reference: Optional[Path] = None, json_out: bool = False,  # noqa: ANN001
              say=print, min_checked: float = 0.0) -> list:
    """Judge one result set against --reference, or against every shipped reference that fits
    its hardware (the same GPU model first, then those whose claims cover its compute
    capability), saying which and why. The first verdict is verdict.json/md; the others
    verdict-<reference name>.json/md."""
    import time

    from artifact import shipped
    from artifact import verdict as verdictmod
    from artifact.reference import load_reference

    if reference is not None:
        refs: list[tuple[Any, Optional[str]]] = [(load_reference(reference), None)]
    else:
        sel = shipped.select(shipped.from_env(results.env))
        shipped.require_fit(sel)
        refs = [(fit.reference, fit.why) for fit in sel.fits]
    verdicts = []
    for i, (ref, why) in enumerate(refs):
        if why:
            say(f"reference {ref.path}: {why}")
        t1 = time.perf_counter()
        v = verdictmod.judge_all(results, ref, note)
        v.wall_s = round(time.perf_counter() - t1, 3)
        other = other_kind(v, ref) or too_few_judged(v, min_checked)
        if other:
            v.status, v.exit_code = verdictmod.NOT_APPLICABLE, verdictmod.EXIT_UNUSABLE
            v.notes.insert(0, other)
        verdicts.append(v)
        if v.status == verdictmod.NOT_APPLICABLE:
            # A reference for other hardware says nothing about these results: one line, and the
            # folder's verdict files (of a reference that does apply) are left as they were.
            if json_out:
                sys.stdout.write(verdictmod.to_json(v))
            if i == 0:
                print(f"error: {v.notes[0]}; nothing was written", file=sys.stderr)
            continue
        verdictmod.write(v, out, name=verdict_name(out, v, first=i == 0))
        verdictmod.append_step_summary(v)
        if json_out:
            sys.stdout.write(verdictmod.to_json(v))
        else:
            verdictmod.print_table(v)
    invalid = next((v for v in verdicts if v.status == verdictmod.INVALID), None)
    if invalid is not None:
        # One line on stderr whatever the output mode: exit 3 or 4 must say why where exit 2 would.
        print(f"{verdictmod.INVALID}: {results.folder}: {invalid.notes[0]}", file=sys.stderr)
    return verdicts


def too_few_judged(v, min_checked: float) -> Optional[str]:  # noqa: ANN001 - verdict.Verdict
    """A PASS that judged fewer claims than --min-checked asks for: an exit 0 a CI job would read as
    "every claim holds" when most were skipped (out of scope, optional and absent)."""
    from artifact import verdict as verdictmod

    total = len(v.claims)
    judged = v.counts.get("PASS", 0) + v.counts.get("FAIL", 0)
    if v.status != verdictmod.PASS or not total or judged >= min_checked * total:
        return None
    skipped = [c for c in v.claims if c.status == "SKIP"]
    first = f"; first skipped: {skipped[0].claim_id}: {skipped[0].why}" if skipped else ""
    return (f"only {judged} of {total} claims of {v.reference_name} were judged ({len(skipped)} SKIP{first}); "
            f"--min-checked {min_checked:g} asks for at least {min_checked:.0%}: check against the reference for this "
            "hardware, or run what it describes")


# How artifact/claims.py says a needed case is not in the folder at all.
_ABSENT = ("is not in the results folder", "matches no case in the results folder")


def other_kind(v, ref) -> Optional[str]:  # noqa: ANN001 - verdict.Verdict, reference.Reference
    """When most judged claims fail only because their cases are absent, the folder is not a run
    of what the reference describes (another profile or plan), or not a finished one: saying
    "1 PASS, 9 FAIL" would blame the measurements for a mismatch of inputs."""
    from artifact.claims import FAIL, PASS

    fails = [c for c in v.claims if c.status == FAIL]
    judged = len(fails) + sum(c.status == PASS for c in v.claims)
    # Absent, not skipped: a case the harness skipped (a backend this GPU lacks) is a real failure.
    absent = [c for c in fails if c.missing and any(w in c.why for w in _ABSENT)]
    if not fails or len(absent) < len(fails) or 2 * len(fails) < judged:
        return None
    how = f" (measured with {ref.run.describe()})" if ref.run is not None else ""
    return (f"these results are not of the kind {ref.name} describes{how}: {len(fails)} of {judged} applicable claims "
            f"need cases the folder does not have (first: {fails[0].claim_id}: {fails[0].why.removeprefix('missing: ')}); "
            "check against the reference of the run that made them, or complete an interrupted run with --resume")


def in_progress(folder: Path) -> Optional[ArtifactError]:
    """A folder a sweep is still writing (its manifest says in_progress): the manifest trails the
    case being written, which read as "the results were edited" (issue 19)."""
    from harness import storage
    from harness.errors import RecordError
    from harness.records import load_json

    try:
        data = load_json(folder / storage.MANIFEST_FILE)
    except RecordError:
        return None
    if not isinstance(data, dict) or data.get("in_progress") is not True:
        return None
    return ArtifactError(f"{folder}: a run is still writing this folder (its manifest says so), or was killed before it "
                         "finished; check it when the run has ended, or complete it with `harness bench ... --resume` "
                         "(`artifact run --resume`)")


def refuse_unfinished(folder: Path) -> None:
    """A folder whose run.json says the run stopped early is completed with --resume, not judged:
    its absent cases would read as failed claims, and before the first case there is nothing."""
    from artifact.launch.run import resume_command_of
    from artifact.results.folder import load_run_info
    from harness import storage

    if not (folder / storage.MANIFEST_FILE).is_file() and folder.is_dir():
        # A parent of runs (results/): name the runs inside instead of "re-run it" (issue 19).
        runs = sorted(p for p in folder.iterdir() if p.is_dir() and (p / storage.MANIFEST_FILE).is_file())
        if runs:
            named = ", ".join(str(p) for p in runs[:4]) + (f" (and {len(runs) - 4} more)" if len(runs) > 4 else "")
            raise ArtifactError(f"{folder}: not a results folder but a folder of {len(runs)} run(s): {named}; "
                                f"check one, or several at once: `artifact check {runs[-1]}`")
    info = load_run_info(folder)
    if info is None or info.status == "completed":
        return
    n = len(list((folder / storage.CASES_DIR).glob("*.json")))
    raise ArtifactError(f"{folder / 'run.json'}: the run stopped before it finished (status {info.status}, {n} case(s) "
                        f"kept); complete it with `{resume_command_of(info)}`, then check again")


def verdict_name(out: Path, v, *, first: bool) -> Optional[str]:  # noqa: ANN001 - verdict.Verdict
    """None for verdict.json/md; the reference's name for verdict-<name>.json/md. A check against
    one reference never overwrites the verdict of another: the folder's verdict.json stays the
    first reference's, and a later one gets its own files."""
    from artifact import verdict as verdictmod

    if not first:
        return str(v.reference_name)
    path = out / verdictmod.VERDICT_JSON
    if not path.is_file() or path.is_symlink():
        return None
    try:
        old = verdictmod.load_verdict(path)
    except ArtifactError:
        return None  # not a verdict this tool can read: nothing of value is replaced
    return None if old.reference_name == v.reference_name else str(v.reference_name)


def check_selected(results_dir: Path, out: Path, *, json_out: bool = False, say=print) -> int:
    """`artifact check RESULTS_DIR` without --reference, for one folder (artifact reproduce)."""
    from artifact import verdict as verdictmod
    from artifact.launch import shards
    from artifact.results import folder as folder_mod

    if shards.is_sharded(results_dir):
        _, sets = shards.load(results_dir)
        codes = []
        for label, rs, note in sets:
            vs = judge_set(rs, note, results_dir if label == "merged" else results_dir / label, json_out=json_out, say=say)
            codes.append(_worst([v.exit_code for i, v in enumerate(vs) if v.status != verdictmod.NOT_APPLICABLE or i == 0]))
        return _worst(codes)
    refuse_unfinished(results_dir)
    results, note = folder_mod.load_results(results_dir)
    vs = judge_set(results, note, out, json_out=json_out, say=say)
    return _worst([v.exit_code for i, v in enumerate(vs) if v.status != verdictmod.NOT_APPLICABLE or i == 0])
















def register(app: typer.Typer) -> None:
    app.command("check")(_check)
