"""The report's tables of one family: results (time, CI, TFLOP/s, share of the roof, clocks, power),
each backend over the fastest, the candidate against every library backend, the kernel census."""

from __future__ import annotations

from typing import Optional

from artifact.report import relative
from artifact.report.family import Peaks
from artifact.results.folder import groups_of
from artifact.results.integrity import why_invalid
from artifact.textfmt import num
from harness.records import CaseResult, Timing


def timing_of(c: CaseResult) -> Timing:
    """The timing of a case already filtered to those that ran (for the type checker)."""
    assert c.timing is not None
    return c.timing



def roof_tflops(c: CaseResult, peaks: Peaks) -> Optional[float]:
    """The roofline's ceiling at this case's arithmetic intensity: min(compute roof, AI x bandwidth)."""
    if c.throughput is None or not c.throughput.bytes or peaks.tflops is None or peaks.gbps is None:
        return None
    intensity = c.throughput.flops / c.throughput.bytes
    return min(peaks.tflops.value, intensity * peaks.gbps.value / 1000.0)



def _clock_text(c: CaseResult) -> str:
    k = c.timing.clocks if c.timing is not None else None
    if k is None or k.sm_mhz_median is None:
        return "-"
    spread = f" ({k.sm_mhz_min:g}-{k.sm_mhz_max:g})" if k.sm_mhz_min != k.sm_mhz_max else ""
    return f"{k.sm_mhz_median:g}{spread}"



def _power_text(c: CaseResult) -> str:
    """Board power while timing (median), and the batches the watch discarded (issue 17)."""
    k = c.timing.clocks if c.timing is not None else None
    text = f"{k.power_w_median:.0f}" if k is not None and k.power_w_median is not None else "-"
    w = c.watch
    if w is not None and (w.discarded_foreign or w.discarded_throttled):
        text += f" ({w.discarded_foreign + w.discarded_throttled} batch(es) discarded)"
    return text



def results_table(cases: list[CaseResult], peaks: Peaks) -> list[str]:
    lines = [
        "| backend | S | median ms | 95% CI ms | ±% | samples x reps | converged | TFLOP/s | % of peak TFLOP/s | GB/s | "
        "% of peak GB/s | FLOP/B | % of roof | SM MHz (range) | board W | rel. error | bitwise repeat | peak alloc MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cases:
        if c.status != "ok" or c.timing is None:
            reason = (why_invalid(c) if c.status == "invalid" else c.reason or "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {c.case.backend} | {c.case.seq} | {c.status}: {reason} |" + " |" * 15)
            continue
        s = c.timing.summary
        tp = c.throughput
        pt = f"{100 * tp.tflops / peaks.tflops.value:.1f}%" if tp and peaks.tflops else "-"
        pg = f"{100 * tp.gbps / peaks.gbps.value:.1f}%" if tp and peaks.gbps else "-"
        roof = roof_tflops(c, peaks)
        ai = f"{tp.flops / tp.bytes:.4g}" if tp and tp.bytes else "-"
        mem = c.memory.peak_allocated_bytes if c.memory else None
        corr = c.correctness
        lines.append(
            f"| {c.case.backend} | {c.case.seq} | {num(s.median_ms)} | [{num(s.ci_low_ms)}, {num(s.ci_high_ms)}] | "
            f"{100 * s.rel_halfwidth:.2f} | {s.n_samples} x {s.n_repetitions} | {'yes' if s.converged else 'no'} | "
            f"{num(tp.tflops) if tp else '-'} | {pt} | {num(tp.gbps) if tp else '-'} | {pg} | {ai} | "
            f"{f'{100 * tp.tflops / roof:.1f}%' if roof and tp else '-'} | {_clock_text(c)} | {_power_text(c)} | "
            f"{num(corr.rel_error, 2) if corr else '-'} | {('yes' if corr.bitwise_repeat else 'no') if corr else '-'} | "
            f"{num(mem / 2**20) if mem is not None else '-'} |"
        )
    return lines



def census_table(cases: list[CaseResult]) -> list[str]:
    """What ran in each timed call (the kernel census), and whether the lock added anything."""
    from harness.census import short_name

    rows = []
    for c in cases:
        cen = c.census
        if cen is None:
            why = c.unavailable.get("census") if c.unavailable else None
            if why:
                rows.append(f"| {c.case.backend} | {c.case.seq} | not taken: {why} | | | | |")
            continue
        acts = "; ".join(f"{short_name(e.name, 70)} x{e.launches_per_call:g} ({num(e.ms_per_call * 1e3, 3)} us)"
                         for e in cen.entries[:4]) + (f"; +{len(cen.entries) - 4} more" if len(cen.entries) > 4 else "")
        lock = {True: "no", False: "YES: " + "; ".join(cen.differences[:2]), None: "-"}[cen.matches_unlocked]
        clocks = f"{cen.sm_mhz}" if cen.sm_mhz else "-"
        rows.append(f"| {c.case.backend} | {c.case.seq} | {acts} | {num(cen.ms_per_call)} | "
                    f"{num(cen.share_of_median, 3) if cen.share_of_median is not None else '-'} | {lock} | {clocks} / {_clock_text(c)} |")
    if not rows:
        return []
    return ["What ran in each timed call (kernel census: one profiled CUDA-graph replay; on the CPU, the ATen operators) "
            "and whether the lock added or changed anything against the same call with the lock lifted:", "",
            "| backend | S | activities per call (longest first) | device ms / call | share of the median | lock adds or changes kernels | SM MHz at census / while timing |",
            "|---|---|---|---|---|---|---|", *rows, ""]



def candidate_table(cases: list[CaseResult]) -> list[str]:
    """Each candidate kernel (any workload but the library's) against every library backend at
    its S: the ratio of medians with its CI; "faster" only when the whole CI is below 1."""
    from harness import stats

    ok = [c for c in cases if c.status == "ok" and c.timing is not None]
    cands = [c for c in ok if c.case.workload != "sdpa"]
    if not cands:
        return []
    rows = []
    for cand in sorted(cands, key=lambda c: c.case.seq):
        for lib in sorted((c for c in ok if c.case.workload == "sdpa" and c.case.seq == cand.case.seq),
                          key=lambda c: c.case.backend):
            ci = stats.hierarchical_ratio_ci(groups_of(cand), groups_of(lib), n_resamples=stats.VERDICT_BOOTSTRAP.resamples,
                                            seed=stats.VERDICT_BOOTSTRAP.seed)
            word = stats.direction(ci.low, ci.high)
            rows.append(f"| {cand.case.seq} | {cand.case.backend} | {lib.case.backend} | {num(ci.estimate)} | "
                        f"[{num(ci.low)}, {num(ci.high)}] | {word} |")
    return ["The candidate against every library backend at the same S (time of the candidate over the backend's; "
            "\"faster\" only when the whole 95% CI of the ratio is below 1):", "",
            "| S | candidate | backend | ratio | 95% CI | verdict |", "|---|---|---|---|---|---|", *rows, ""]



def ratios_table(cases: list[CaseResult]) -> tuple[list[str], dict[int, tuple], dict[int, list[relative.Relative]]]:
    """Each backend against the fastest one at the same S (the only comparison called a ratio
    here: same shape, different backend). Returns the lines, per S (fastest, runner-up, CI), and
    the ratios themselves (for the relative plot)."""
    rel = relative.to_fastest(cases)
    by_key = {(c.case.seq, c.case.backend): c for c in cases if c.status == "ok" and c.timing is not None}
    lines = ["| S | fastest | backend | time / fastest's time | 95% CI |", "|---|---|---|---|---|"]
    best: dict[int, tuple] = {}
    for seq, rows in rel.items():
        fastest = by_key[(seq, rows[0].backend)]
        for r in rows[1:]:
            lines.append(f"| {seq} | {r.fastest} | {r.backend} | {num(r.estimate)} | [{num(r.low)}, {num(r.high)}] |")
        second = rows[1] if len(rows) > 1 else None
        best[seq] = ((fastest, by_key[(seq, second.backend)], second) if second is not None else (fastest, None, None))
    return (lines if len(lines) > 2 else []), best, rel

