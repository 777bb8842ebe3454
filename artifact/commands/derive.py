"""`artifact derive-reference` (a reference file from runs) and `artifact expected-results` (the
documents' tables generated from the reference files).

    artifact derive-reference bench/h100/run-* --out artifact/references/h100.yaml
    artifact expected-results --update ARTIFACT.md (and docs/expected-results.md)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from artifact.errors import ArtifactError


def _derive(
    folders: list[Path] = typer.Argument(..., help="Independent result folders of one hardware model (e.g. bench/h100/run-*)."),
    out: Path = typer.Option(..., "--out", help="Reference file to write, e.g. artifact/references/h100.yaml."),
    name: Optional[str] = typer.Option(None, help="Reference name (default: the output file's stem)."),
    description: str = typer.Option("", help="One line on what the reference covers."),
    k: float = typer.Option(2.0, min=1.0, help="Tolerance = max(k * observed run-to-run deviation + widest CI half, floor)."),
    floor_rel: float = typer.Option(0.03, "--floor-rel", min=0.0, help="Smallest relative tolerance."),
    floor_abs: float = typer.Option(0.05, "--floor-abs", min=0.0, help="Smallest tolerance of an exponent."),
    min_runs: int = typer.Option(3, "--min-runs", min=1, help="Refuse fewer independent runs than this."),
    min_machines: int = typer.Option(2, "--min-machines", min=1, help="Refuse runs from fewer separately started machines."),
    ratio: list[str] = typer.Option(["cudnn/flash"], "--ratio", help="Backend ratio claims to derive, NUM/DEN (repeatable)."),
    portable_only: bool = typer.Option(False, "--portable-only", help="Only correctness, determinism, environment and rankings (CPU smoke)."),
    ranking_min_gap: float = typer.Option(0.01, "--ranking-min-gap", min=0.0, help="Keep a ranking pair only if faster/slower <= 1/(1+gap) in every run (besides the runs' own spread)."),
    ranking_rule: str = typer.Option("significant", "--ranking-rule", help="How reruns judge rankings: significant (CI below 1) or point."),
    correctness_factor: float = typer.Option(4.0, "--correctness-factor", min=1.0, help="Correctness bound = this x the largest error seen."),
    peaks_from: Optional[Path] = typer.Option(None, "--peaks-from", help="Copy hardware.peaks from this reference (default: --out if it exists)."),
    plan: Optional[str] = typer.Option(None, "--plan", help="The plan file runs for this reference follow (recorded as run.plan; artifact reproduce runs it)."),
    profile: Optional[str] = typer.Option(None, "--profile", help="Or the profile they follow (smoke or full)."),
    family_evidence: list[Path] = typer.Option([], "--family-evidence", help="Runs of other GPU models of the same compute capability: family-scoped claims must hold on them (repeatable)."),
    evidence_peaks: Optional[Path] = typer.Option(None, "--evidence-peaks", help="Peaks file of the evidence hardware, for evidence runs that measured no ceilings."),
    retire_timing: Optional[str] = typer.Option(None, "--retire-timing", help="Derive no time-based claim; the reason is recorded under not_claimed."),
) -> None:
    """Derive a reference file with tolerances from the measured run-to-run spread."""
    from artifact import derive

    if out.is_dir():
        raise ArtifactError(f"--out {out}: is a folder; give the reference file to write, e.g. {out / 'name.yaml'}")
    if ranking_rule not in ("significant", "point"):
        raise ArtifactError(f"--ranking-rule: expected significant or point, got {ranking_rule!r}")
    pairs = []
    for r in ratio:
        num, sep, den = r.partition("/")
        if not sep or not num or not den:
            raise ArtifactError(f"--ratio: expected NUM/DEN such as cudnn/flash, got {r!r}")
        pairs.append((num, den))
    source = peaks_from or (out if out.is_file() else None)
    peaks_gpu, peaks = derive.peaks_from(source) if source else (None, [])
    if plan and profile:
        raise ArtifactError("give --plan or --profile, not both")
    from artifact.reference import RunSpec

    run_spec = RunSpec(plan=plan) if plan else (RunSpec(profile=profile) if profile else None)
    ev_peaks = derive.peaks_from(evidence_peaks)[1] if evidence_peaks else []
    opts = derive.DeriveOptions(
        name=name or out.stem, description=description, k=k, floor_rel=floor_rel, floor_abs=floor_abs, min_runs=min_runs,
        min_machines=min_machines, ratio_pairs=pairs, portable_only=portable_only, ranking_min_gap=ranking_min_gap, peaks=peaks, peaks_gpu=peaks_gpu,
        correctness_factor=correctness_factor, ranking_rule=ranking_rule, run=run_spec,
        family_evidence=list(family_evidence), evidence_peaks=ev_peaks, retire_timing=retire_timing,
    )
    doc = derive.derive(folders, opts)
    derive.write_reference(doc, out)
    typer.echo(f"wrote {out}: {len(doc['claims'])} claims from {len(folders)} runs"
               + (f", {len(doc['not_claimed'])} left out (see not_claimed)" if doc["not_claimed"] else "")
               + (f"; peaks from {source}" if peaks else "; no measured peaks recorded"))


def _expected(
    update: Optional[Path] = typer.Option(None, "--update", help="Rewrite the generated blocks (expected results, headline) of this document in place."),
    reference: Optional[Path] = typer.Option(None, "--reference", "-r", help="Print the expected-results table of one reference."),
    check: bool = typer.Option(False, "--check", help="With --update: exit 1 if the document is out of date, change nothing."),
) -> None:
    """Generate the documents' tables (ARTIFACT.md's headline, docs/expected-results.md) from the reference files."""
    from artifact.reference import load_reference
    from artifact.report import expected
    from harness import storage

    if reference is not None:
        sys.stdout.write(expected.expected_results_markdown(load_reference(reference)))
        return
    if update is None:
        raise ArtifactError("give --reference FILE to print a table, or --update FILE (ARTIFACT.md, docs/expected-results.md) to refresh a document")
    if not update.is_file():
        raise ArtifactError(f"{update}: document not found")
    new, used = expected.update_document(update)
    if check:
        if new != update.read_text(encoding="utf-8"):
            typer.echo(f"{update}: expected results are out of date; run artifact expected-results --update {update}", err=True)
            raise typer.Exit(1)
        typer.echo(f"{update}: up to date with {', '.join(used)}")
        return
    storage.atomic_write_text(update, new)
    typer.echo(f"updated {update} from {', '.join(used)}")


def register(app: typer.Typer) -> None:
    app.command("derive-reference")(_derive)
    app.command("expected-results")(_expected)
