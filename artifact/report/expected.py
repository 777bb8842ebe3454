"""The documents' generated blocks: the expected results of every shipped reference (the appendix,
docs/expected-results.md) and the headline results that open ARTIFACT.md, both from the reference
files (`artifact expected-results --update FILE`; a test fails when a document is out of date).
No number in them is typed by hand.

A block is `<!-- BEGIN <what>: <reference file> -->` ... `<!-- END <what> -->`, <what> being
expected-results or headline.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Optional

from artifact.claims import AbsoluteClaim, RankingClaim, RatioClaim
from artifact.errors import ArtifactError
from artifact.reference import Reference
from artifact.textfmt import num

_HOW = {
    "correctness": "largest error <= the bound",
    "determinism": "every repeat bitwise-identical",
    "memory": "peak <= the bound",
    "environment": "as read back in env.json",
}


def expected_results_markdown(reference: Reference) -> str:
    """The table of what a rerun must show, generated from a reference file."""
    lines = [
        f"Reference `{Path(reference.path).name}` ({reference.name}): measured on {reference.hardware.describe()}. "
        f"{reference.description}".rstrip(),
        "",
        "| claim | kind | scope | expected | how it passes |",
        "|---|---|---|---|---|",
    ]
    for c in reference.claims:
        tol = getattr(c, "tolerance", None)
        how = tol.describe() if tol is not None else _HOW.get(c.kind, "")
        if isinstance(c, RankingClaim):
            how = ("the 95% CI of each adjacent ratio of medians below 1" if c.rule == "significant"
                   else "each adjacent ratio of medians below 1 (point estimates)")
        if tol is not None and isinstance(tol.derivation, dict) and "runs" in tol.derivation:
            d = tol.derivation
            how += f"; from {d['runs']} runs on {d.get('machines', '?')} machine(s), k={d.get('k')}, floor {d.get('floor')}"
        lines.append(f"| {c.id} | {c.kind} | {c.scope.describe()} | {c.summary().replace('|', '/')} | {how} |")
    for p in reference.hardware.peaks:
        lines.append(f"\nMeasured peak: {p.value:g} {p.unit}{f' ({p.dtype})' if p.dtype else ''}, {p.source}.")
    return "\n".join(lines) + "\n"


_BLOCK = re.compile(r"(<!-- BEGIN (?P<what>expected-results|headline): (?P<file>[^ ]+) -->\n)(?P<body>.*?)(<!-- END (?P=what) -->)", re.S)


def project_root(doc: Path) -> Path:
    """The folder the blocks' file names are relative to: the nearest one above `doc` holding
    pyproject.toml (ARTIFACT.md at the top, the appendix in docs/), else the document's own."""
    for d in doc.resolve().parents:
        if (d / "pyproject.toml").is_file():
            return d
    return doc.resolve().parent


def update_document(doc: Path, repo_root: Optional[Path] = None) -> tuple[str, list[str]]:
    """Regenerate every block of `doc` from the reference file its marker names.
    Returns the new text and the reference files used."""
    from artifact.reference import load_reference

    repo_root = repo_root or project_root(doc)
    text = doc.read_text(encoding="utf-8")
    used: list[str] = []

    def fill(m: re.Match) -> str:
        path = repo_root / m["file"]
        used.append(m["file"])
        ref = load_reference(path)
        return m.group(1) + (headline_markdown(ref) if m["what"] == "headline" else expected_results_markdown(ref)) + m.group(5)

    new = _BLOCK.sub(fill, text)
    if not used:
        raise ArtifactError(f"{doc}: no '<!-- BEGIN expected-results: FILE -->' or '<!-- BEGIN headline: FILE -->' block to fill")
    return new, used


def _by_id(reference: Reference) -> dict[str, object]:
    return {c.id: c for c in reference.claims}


def headline_markdown(reference: Reference) -> str:
    """The few numbers a reader wants first, from a reference's claims as derive-reference names
    them (abs-<backend>-s<S>, ratio-<a>-<b>-s<S>, rank-s<S>): per S the backends fastest first, the
    best library backend's and the candidate's times, and their ratio, each with its tolerance."""
    claims = _by_id(reference)
    seqs = sorted(int(m[1]) for cid in claims if (m := re.fullmatch(r"rank-s(\d+)", cid)))
    if not seqs:
        raise ArtifactError(f"{reference.path}: no ranking claim (rank-s<S>) to build the headline from")

    def value(cid: str, digits: int = 4) -> str:
        c = claims.get(cid)
        if isinstance(c, (AbsoluteClaim, RatioClaim)):
            return f"{num(c.reference, digits)} (±{c.tolerance.width:.0%})"
        return "-"

    def order(cid: str) -> str:
        c = claims.get(cid)
        if not isinstance(c, RankingClaim):
            return "-"
        return " < ".join(g[0] if len(g) == 1 else "(" + " = ".join(g) + ")" for g in c.order)

    first = claims.get(f"abs-cudnn-s{seqs[0]}")
    d = {k: v[0] for k, v in first.case.values.items() if len(v) == 1} if isinstance(first, AbsoluteClaim) else {}
    shape = f"B={d.get('batch')} H={d.get('heads')} D={d.get('head_dim')} {d.get('dtype')}" + (" causal" if d.get("causal") else "")
    derived = reference.derived_from if isinstance(reference.derived_from, dict) else {}
    runs = derived.get("runs") or []
    lines = [f"On {reference.hardware.describe()}, {shape}: medians of {len(runs)} runs on {derived.get('machines', '?')} "
             f"machines (`{Path(reference.path).name}`), with the tolerance a rerun must meet.", "",
             "| S | SDPA backends, fastest first | cuDNN ms | candidate (Triton) ms | candidate / cuDNN | cuDNN / flash (FlashAttention-2) |",
             "|---|---|---|---|---|---|"]
    for s in seqs:
        lines.append(f"| {s} | {order(f'rank-s{s}')} | {value(f'abs-cudnn-s{s}')} | {value(f'abs-triton-s{s}')} | "
                     f"{value(f'ratio-triton-cudnn-s{s}', 3)} | {value(f'ratio-cudnn-flash-s{s}', 3)} |")
    kinds = Counter(c.kind for c in reference.claims)
    lines += ["", f"{len(reference.claims)} claims in all: " + ", ".join(f"{n} {k}" for k, n in kinds.most_common())
              + "; a ratio below 1 means the numerator is faster."]
    return "\n".join(lines) + "\n"
