"""summary.md: a run's records as a page a reader can check against them (torch-free)."""

from __future__ import annotations

from typing import Optional

from harness import ncu
from harness.optimize.records import (
    BASELINE_FILE,
    COMPARISON_FILE,
    SEARCH_FILE,
    Outcome,
    SearchRecord,
    median_ms,
    timing_summary,
)
from harness.optimize.search import describe
from harness.optimize.settings import OptimizeSettings
from harness.records import CaseResult


def _ci(r: CaseResult) -> str:
    s = timing_summary(r)
    return f"[{s.ci_low_ms:.4f}, {s.ci_high_ms:.4f}]"


def _tflops(r: CaseResult, peak: Optional[float]) -> str:
    if r.throughput is None:
        return "-"
    share = f" ({r.throughput.tflops / peak:.0%} of {peak:g})" if peak else ""
    return f"{r.throughput.tflops:.3g}{share}"


def _fmt(x: Optional[float], spec: str) -> str:
    return "undefined" if x is None else format(x, spec)


def _search_lines(s: SearchRecord) -> list[str]:
    lines = ["", "## Search", "",
             f"{s.n_tried} of {s.n_configs} configs tried, {s.n_correct} passed the float64 gate; rung sizes "
             f"{s.rung_sizes} (keep 1/{s.eta} per rung); stopped: {s.stop_reason}.", "",
             "| config | status | rung medians ms | rel. error |", "| --- | --- | --- | --- |"]
    ranked = sorted(s.trials, key=lambda x: (x.status != "ok", -len(x.medians_ms), x.medians_ms[-1] if x.medians_ms else 0))
    for x in ranked[:15]:
        meds = ", ".join(f"{m:.4f}" for m in x.medians_ms) or "-"
        err = f"{x.rel_error:.1e}" if x.rel_error is not None else "-"
        lines.append(f"| {describe(x.config)} | {x.status} | {meds} | {err} |")
    dropped = [x for x in s.trials if x.status not in ("ok", "not_tried")]
    if dropped:
        lines += ["", f"{len(dropped)} config(s) dropped:"]
        lines += [f"- {describe(x.config)}: {x.status}: {x.reason}" for x in dropped[:10]]
    return lines


def summary_markdown(o: Outcome, settings: OptimizeSettings, spent_s: float) -> str:
    c = o.comparison
    t = o.tuned
    peak = settings.matmul_peak_tflops
    # Same shape on both sides, so harness.compare always gives a speedup (never a scaling
    # result); a missing speedup is shown as undefined rather than failing the whole page.
    speedup_lo, speedup_hi = c.speedup_ci_low, c.speedup_ci_high
    met = speedup_lo is not None and speedup_lo >= settings.target_speedup
    lines = [
        f"# harness optimize: {o.baseline.shape_key}",
        "",
        f"On {t.gpu_name}" + (f" (compute capability {t.compute_capability})" if t.compute_capability != "cpu" else "")
        + f", triton {t.triton_version}, "
        f"torch {t.torch_version}; {spent_s:.0f} s of a {settings.budget_s:.0f} s budget.",
        "",
        "## Verdict",
        "",
        f"**{c.verdict}**: the Triton kernel ({describe(t.config)}) against SDPA `{t.baseline_backend}`, "
        f"time ratio candidate/baseline {c.ratio:.3f}, {c.level:.0%} CI [{c.ratio_ci_low:.3f}, {c.ratio_ci_high:.3f}] "
        f"(speedup {_fmt(c.speedup, '.3f')}x, CI [{_fmt(speedup_lo, '.3f')}, {_fmt(speedup_hi, '.3f')}]; {c.ci_method}, "
        f"{c.baseline_repetitions}+{c.candidate_repetitions} repetitions).",
        "",
        f"Target speedup {settings.target_speedup:g}x: "
        + ("**met** (the whole CI of the speedup is at or above it)." if met else
           "**not met** (the lower end of the speedup's CI is below it)."),
        "",
        f"Effect sizes (negative: the candidate is faster): Hedges' g {_fmt(c.hedges_g, '.2f')}, "
        f"Cliff's delta {c.cliffs_delta:.3f} ({c.cliffs_magnitude}), "
        f"Mann-Whitney U {c.mannwhitney_u:.0f}, p = {c.mannwhitney_p:.3g}.",
        *(f"- {n}" for n in c.notes),
        "",
        *(["## Why (Nsight Compute on the candidate)", "", *(f"- {line}" for line in ncu.summary_lines(c.ncu)), ""]
          if c.ncu is not None else []),
        "## Final measurements (fresh, full timing)",
        "",
        "| case | median ms | 95% CI ms | samples | TFLOP/s | rel. error |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in (o.final_baseline, o.final_candidate):
        s = timing_summary(r)
        err = f"{r.correctness.rel_error:.1e}" if r.correctness and r.correctness.rel_error is not None else "-"
        lines.append(f"| {r.case.case_id} | {s.median_ms:.4f} | {_ci(r)} | {s.n_samples} | {_tflops(r, peak)} | {err} |")
    lines += ["", "## Baseline selection (every SDPA backend)", "",
              "| backend | status | median ms | TFLOP/s | note |", "| --- | --- | --- | --- | --- |"]
    for r in o.baseline.results:
        med = f"{median_ms(r):.4f}" if r.status == "ok" else "-"
        mark = " (baseline)" if r.case.backend == o.baseline.best_backend else ""
        lines.append(f"| {r.case.backend}{mark} | {r.status} | {med} | {_tflops(r, peak)} | {r.reason or ''} |")
    if o.search is not None:
        lines += _search_lines(o.search)
    else:
        lines += ["", "## Search", "", "None: a tuned config was reused."]
    lines += ["", f"Numbers above are read from {BASELINE_FILE}, {SEARCH_FILE}, {COMPARISON_FILE} and cases/.", ""]
    return "\n".join(lines)
