"""`artifact report`: report.md and SVG plots from one results folder (torch-free).

Every number in the report is read from the folder's records (env.json, ceilings.json,
cases/*.json), from the verdict, or, for runs that measured no ceilings, from the reference file's
measured peaks; the text around them is fixed wording (the documents' generated tables:
artifact/report/expected.py).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Optional

from artifact.claims import FAIL, PASS, SKIP
from artifact.reference import Reference
from artifact.report import integrity_section as report_integrity
from artifact.report import plots, relative
from artifact.report.family import Peaks, family, family_name, family_slug, peaks_for
from artifact.report.tables import candidate_table, census_table, ratios_table, results_table, timing_of
from artifact.results.folder import ResultSet
from artifact.textfmt import env_hardware, num
from artifact.verdict import INVALID, Verdict, to_markdown
from harness import storage
from harness.records import CaseResult

REPORT_MD = "report.md"


def _relative_plot(key: tuple, rel: dict[int, list[relative.Relative]], out_dir: Path) -> list[tuple[str, str]]:
    """Each backend's time over the fastest's at each S, with the ratio's 95% CI: close backends
    that the time-vs-S plot draws on top of each other are apart here."""
    per: dict[str, list[relative.Relative]] = defaultdict(list)
    for rows in rel.values():
        for r in rows:
            per[r.backend].append(r)
    if len(per) < 2:
        return []
    series = [plots.Series(b, [float(r.seq) for r in rs], [r.estimate for r in rs],
                           [r.low if r.low is not None else r.estimate for r in rs],
                           [r.high if r.high is not None else r.estimate for r in rs]) for b, rs in sorted(per.items())]
    name = f"relative-{family_slug(key)}.svg"
    storage.atomic_write_text(out_dir / name, plots.line_chart(
        series, title=f"Time relative to the fastest backend ({family_name(key)})", x_label="sequence length S",
        y_label="time / fastest's time at that S, 95% CI", log_y=False, y_zero=False))
    return [(name, "Each backend's median time over the fastest backend's at the same S (1 = the fastest there), "
                   "with the 95% CI of the ratio of medians.")]


def _plots(key: tuple, cases: list[CaseResult], peaks: Peaks, out_dir: Path) -> list[tuple[str, str]]:
    ok = [c for c in cases if c.status == "ok" and c.timing is not None]
    if not ok:
        return []
    slug = family_slug(key)
    made = []
    by_backend: dict[str, list[CaseResult]] = defaultdict(list)
    for c in ok:
        by_backend[c.case.backend].append(c)
    series = []
    for backend, cs in by_backend.items():
        cs.sort(key=lambda c: c.case.seq)
        series.append(plots.Series(backend, [float(c.case.seq) for c in cs], [timing_of(c).summary.median_ms for c in cs],
                                   [timing_of(c).summary.ci_low_ms for c in cs], [timing_of(c).summary.ci_high_ms for c in cs]))
    name = f"time-vs-seq-{slug}.svg"
    storage.atomic_write_text(out_dir / name, plots.line_chart(
        series, title=f"Median time vs S ({family_name(key)})", x_label="sequence length S", y_label="median time per call (ms), 95% CI"))
    made.append((name, "Median time per call against S, per backend, with 95% CI bars (log-log)."))
    seqs = sorted({c.case.seq for c in ok})
    bars = []
    for backend, cs in by_backend.items():
        at = {c.case.seq: c.throughput.tflops if c.throughput else None for c in cs}
        bars.append((backend, [at.get(s) for s in seqs]))
    ref = (peaks.tflops.value, f"measured peak {num(peaks.tflops.value)}") if peaks.tflops else None
    name = f"tflops-vs-peak-{slug}.svg"
    storage.atomic_write_text(out_dir / name, plots.bar_chart(
        [str(s) for s in seqs], bars, title=f"Achieved TFLOP/s ({family_name(key)})", x_label="sequence length S",
        y_label="TFLOP/s", reference=ref))
    made.append((name, "Achieved TFLOP/s per backend and S" + (f"; dashed: the measured peak ({peaks.tflops.source})." if peaks.tflops
                                                               else f"; no peak line: {peaks.why_missing}.")))
    points = [(c.case.backend, c.throughput.flops / c.throughput.bytes, c.throughput.tflops, f"S={c.case.seq}")
              for c in ok if c.throughput is not None and c.throughput.bytes]
    if points and peaks.tflops and peaks.gbps:
        name = f"roofline-{slug}.svg"
        storage.atomic_write_text(out_dir / name, plots.roofline(
            points, compute_roof=peaks.tflops.value, bandwidth_roof=peaks.gbps.value,
            title=f"Roofline ({family_name(key)})",
            compute_label=f"{num(peaks.tflops.value)} {peaks.tflops.unit}", bandwidth_label=f"{num(peaks.gbps.value)} {peaks.gbps.unit}"))
        made.append((name, f"Roofline: each case at its arithmetic intensity under the card's roofs ({peaks.tflops.source}; "
                           f"{peaks.gbps.source}); the table's \"% of roof\" is each point's distance to the roof."))
    return made


def _environment(results: ResultSet) -> list[str]:
    env = results.env
    sw = env.software or {}
    host = env.host or {}
    rows = [
        ("device", env.device),
        ("GPU", f"{env.gpu.name} (compute capability {env.gpu.compute_capability}, {env.gpu.sm_count} SMs, "
                f"{num((env.gpu.memory_bytes or 0) / 2**30)} GiB)" if env.gpu else "-"),
        ("NVIDIA driver", env.nvidia_driver_version or f"- ({env.unavailable.get('nvidia_driver_version', 'not recorded')})"),
        ("CUDA version the driver supports", env.cuda_driver_version or "-"),
        ("CUDA runtime loaded", env.cuda_runtime_version or "-"),
        ("CUDA torch was built with", env.torch_cuda_build or "-"),
        ("cuDNN", env.cudnn_version or "-"),
        ("software", ", ".join(f"{k} {v}" for k, v in sw.items() if v)),
        ("CPU", str(host.get("cpu_model") or "-") + (f" ({host['cpu_count']} logical CPUs)" if host.get("cpu_count") else "")),
        ("OS", str(host.get("os") or "-")),
        # Some container, as the harness saw /.dockerenv or its cgroup; whether it was the pinned
        # image is run.json's to say (the checklist), so a native run in a CI container reads plainly.
        ("harness process inside a container", {True: "yes (which image: see the checklist)", False: "no",
                                                None: "unknown"}[env.in_container]),
        ("numerics lock", ", ".join(f"{k}={v}" for k, v in (env.lock or {}).items())),
        ("lock failures", "; ".join(f"{k}: {v}" for k, v in (env.lock_failures or {}).items()) or "none"),
    ]
    if env.machine is not None:
        rows.append(("other processes on the GPU", env.machine.why))
    before = env.gpu_state_before
    if before is not None and before.power_limit_w is not None:
        rows.append(("power limit", f"{before.power_limit_w:g} W enforced" + (f", board default {before.power_default_limit_w:g} W"
                                                                              if before.power_default_limit_w else "")
                     + (f"; compute mode {before.compute_mode}" if before.compute_mode else "")))
    for label, state in (("GPU state before", env.gpu_state_before), ("GPU state after", env.gpu_state_after)):
        if state is not None:
            rows.append((label, f"SM {state.sm_clock_mhz}/{state.sm_clock_max_mhz} MHz, memory {state.mem_clock_mhz}/"
                                f"{state.mem_clock_max_mhz} MHz, {state.temperature_c} C, {state.power_draw_w}/{state.power_limit_w} W, "
                                f"persistence {state.persistence_mode}, ECC {state.ecc_enabled}, MIG {state.mig_enabled}, "
                                f"throttle: {', '.join(state.throttle_reasons) or 'none'}"))
    return ["| item | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]


def _sharing_item(results: ResultSet) -> tuple[bool, str]:
    from artifact.results.integrity import shared_cases
    from harness.integrity.roofline import contended

    gate = results.env.machine
    if gate is None:
        return results.env.device == "cpu", ("CPU run: no GPU to share" if results.env.device == "cpu"
                                             else "the GPU's other processes were not checked (a harness before issue 17)")
    shared = shared_cases(results.cases)
    if shared or contended(results.ceilings):
        return False, f"the GPU was shared: {len(shared)} case(s) timed beside another process (invalid: shared GPU)"
    if not gate.checked:
        return False, f"other processes on the GPU could not be watched: {gate.why}"
    discarded = sum(c.watch.discarded_foreign for c in results.cases if c.watch is not None)
    return True, "no other process on the GPU while cases were timed" + (
        f" ({discarded} batch(es) beside one discarded and measured again)" if discarded else "")


def _container_item(results: ResultSet) -> tuple[bool, str]:
    run = results.run
    if run is not None and run.runtime == "docker" and run.image is not None and run.image.id:
        return True, f"ran in the pinned image {run.image.ref} ({run.image.id[:19]}), per run.json"
    lock = run.package_lock if run is not None else None
    if run is not None and run.runtime == "native" and lock is not None and lock.matches and lock.file:
        # Without a GPU, native is the intended path: what matters is that its packages are the lock's.
        return True, (f"ran natively in packages that match {Path(lock.file).name} (the image's hash-locked set), "
                      "per run.json")
    if run is not None:
        return False, f"ran with runtime {run.runtime} ({run.runtime_reason or 'no reason recorded'}), per run.json"
    inside = {True: "in a container", False: "not in a container", None: "unknown whether in a container"}[results.env.in_container]
    return False, f"no run.json (not launched by `artifact run`): the pinned image is not recorded; env.json says {inside}"


def _checklist(results: ResultSet, manifest_note: str, verdict: Optional[Verdict]) -> list[str]:
    env = results.env
    ok = [c for c in results.cases if c.status == "ok" and c.timing is not None]
    lock = env.lock or {}
    throttled = sorted({r for c in ok for r in timing_of(c).throttle_reasons})
    items = [
        (True, f"results hash-checked: {manifest_note}"),
        (lock.get("matmul_allow_tf32") is False and lock.get("cudnn_allow_tf32") is False, "TF32 off for matmul and cuDNN"),
        (bool(lock.get("deterministic_algorithms")), "deterministic algorithms on"),
        (not env.lock_failures, "every lock setting applied" + (f" (failed: {', '.join(env.lock_failures)})" if env.lock_failures else "")),
        (all(timing_of(c).summary.converged for c in ok), f"{sum(timing_of(c).summary.converged for c in ok)} of {len(ok)} cases met their precision target"),
        (not throttled, "no clock throttling recorded" + (f" (seen: {', '.join(throttled)})" if throttled else "")),
        _sharing_item(results),
        (all(c.correctness is not None and c.correctness.passed for c in ok),
         f"{sum(bool(c.correctness and c.correctness.passed) for c in ok)} of {len(ok)} cases within their correctness tolerance"),
        (all(c.correctness is not None and c.correctness.bitwise_repeat for c in ok),
         f"{sum(bool(c.correctness and c.correctness.bitwise_repeat) for c in ok)} of {len(ok)} cases bitwise-identical on repeat"),
        _container_item(results),
        (env.device == "cpu" or bool(env.nvidia_driver_version), "NVIDIA driver version recorded" if env.device == "cuda" else "CPU run: no driver needed"),
        (not [c for c in results.cases if c.status == "failed"], f"{sum(c.status == 'failed' for c in results.cases)} case(s) failed"),
        (not [c for c in results.cases if c.status == "invalid"],
         f"{sum(c.status == 'invalid' for c in results.cases)} case(s) invalid (timed calls not shown to do the real work)"),
    ]
    if verdict is not None:
        items.append((verdict.status == PASS, f"verdict {verdict.status} against {verdict.reference_name} "
                                              f"({verdict.counts[PASS]} PASS, {verdict.counts[FAIL]} FAIL, {verdict.counts[SKIP]} SKIP)"))
    else:
        items.append((False, "no verdict: run `artifact check` (or pass --reference)"))
    return [f"- [{'x' if good else ' '}] {text}" for good, text in items]


def _paragraph(results: ResultSet, families: dict[tuple, list[CaseResult]], best: dict[tuple, dict[int, tuple]],
               peaks_by_family: dict[tuple, Peaks], verdict: Optional[Verdict]) -> list[str]:
    env = results.env
    sw = env.software or {}
    if env.device == "cuda" and env.gpu:
        where = (f"On an {env.gpu.name} (NVIDIA driver {env.nvidia_driver_version or 'not recorded'}, CUDA runtime "
                 f"{env.cuda_runtime_version or 'not recorded'}, PyTorch {sw.get('torch', 'unknown')})")
    else:
        where = f"On a CPU ({(env.host or {}).get('cpu_model')}; PyTorch {sw.get('torch', 'unknown')})"
    sentences = []
    for key, cases in families.items():
        ok = [c for c in cases if c.status == "ok" and c.timing is not None]
        if not ok:
            continue
        t = timing_of(ok[0])
        method = f"{t.method} timing, {t.summary.ci_method} 95% CIs of the median"
        parts = []
        for seq, (fastest, second, ci) in sorted(best[key].items()):
            s = fastest.timing.summary
            # "Fastest" only when the CI of the ratio to the runner-up excludes 1 (never from
            # overlapping CIs); otherwise the two are tied at this precision and the text says so.
            tied = second is not None and ci.low <= 1.0
            lead = (f"{fastest.case.backend} and {second.case.backend} were the fastest, indistinguishable at this precision"
                    if tied else f"the fastest backend was {fastest.case.backend}")
            text = (f"at S={seq} {lead}; {fastest.case.backend} had a median of {num(s.median_ms)} ms "
                    f"(95% CI {num(s.ci_low_ms)}-{num(s.ci_high_ms)} ms, {s.n_samples} samples in {s.n_repetitions} repetition(s))")
            if second is not None:
                text += (f"; {second.case.backend} took {num(ci.estimate)}x as long "
                         f"(95% CI of the ratio of medians {num(ci.low)}-{num(ci.high)})")
            if fastest.throughput is not None:
                text += f"; it reached {num(fastest.throughput.tflops, 3)} TFLOP/s"
                pk = peaks_by_family[key].tflops
                if pk is not None:
                    text += f", {100 * fastest.throughput.tflops / pk.value:.1f}% of the measured {num(pk.value)} {pk.unit} peak"
            parts.append(text)
        sentences.append(f"For {family_name(key)} ({method}), " + "; ".join(parts) + ".")
    tail = ""
    if verdict is not None:
        applicable = verdict.counts[PASS] + verdict.counts[FAIL]
        tail = (f" Against the reference {verdict.reference_name}, {verdict.counts[PASS]} of {applicable} applicable claims "
                f"passed ({verdict.counts[SKIP]} out of scope or optional).")
        if verdict.status == INVALID:
            tail += (f" The verdict is {INVALID}: {sum(c.status == 'invalid' for c in results.cases)} case(s) were not "
                     "shown to do the real work (see Integrity); they are in none of the sentences above.")
    return [where + ": " + " ".join(sentences) + tail]


# --------------------------------------------------------------------------- the report
def _cost(results: ResultSet, verdict: Optional[Verdict], gpu_hour_price: Optional[float]) -> list[str]:
    """What this reproduction cost, from run.json (the launcher's per-phase times) and the check."""
    cost = results.run.cost if results.run is not None else None
    if cost is None:
        return ["No run.json with a cost (the folder was not produced by `artifact run`): the time per phase is in "
                "each case's `phases_s`.", ""]
    phases = cost.phases_s
    wall, gpus, gpu_s = cost.wall_s, cost.gpus, cost.gpu_seconds
    lines = ["| phase | wall s |", "|---|---|"]
    lines += [f"| {name} | {num(secs, 3)} |" for name, secs in sorted(phases.items(), key=lambda kv: -kv[1])]
    lines.append(f"| **the run** | **{num(wall, 4)}** |")
    check_s = verdict.wall_s if verdict is not None and verdict.wall_s is not None else None
    if check_s is not None:
        lines.append(f"| the check (host, no GPU) | {num(check_s, 3)} |")
    text = (f"The run held {gpus} GPU(s): {num(gpu_s, 4)} GPU-seconds ({num(gpu_s / 3600, 3)} GPU-hours)"
            + (f"; at {gpu_hour_price:g} per GPU-hour that is {gpu_s / 3600 * gpu_hour_price:.4f}." if gpu_hour_price is not None and gpus
               else "." if gpus else "; on the CPU, no GPU time.")
            + " Building the image is not part of a run: cached it takes seconds, cold minutes (bench/image_build.md).")
    return [*lines, "", text, ""]


def build_report(results: ResultSet, manifest_note: str, reference: Optional[Reference], verdict: Optional[Verdict],
                 out_dir: Path, gpu_hour_price: Optional[float] = None) -> str:
    """report.md's text; the SVG plots are written into out_dir as a side effect."""
    out_dir.mkdir(parents=True, exist_ok=True)
    families: dict[tuple, list[CaseResult]] = defaultdict(list)
    for c in sorted(results.cases, key=lambda c: (c.case.backend, c.case.seq)):
        families[family(c.case)].append(c)
    lines = [
        f"# Benchmark report: {env_hardware(results.env)}",
        "",
        f"Results folder `{results.folder}` ({manifest_note}); environment recorded {results.env.created_at}; "
        f"harness {results.env.harness_version}.",
        "",
    ]
    if verdict is not None:
        lines += [to_markdown(verdict).replace("## Verdict", "## Verdict against the reference", 1), ""]
    best: dict[tuple, dict[int, tuple]] = {}
    peaks_by_family: dict[tuple, Peaks] = {}
    for key, cases in families.items():
        peaks = peaks_for(results, reference, key[3])  # the dtype
        peaks_by_family[key] = peaks
        lines += [f"## {family_name(key)}", ""]
        lines += results_table(cases, peaks)
        notes = []
        if peaks.tflops:
            notes.append(f"Peak TFLOP/s: {num(peaks.tflops.value)} {peaks.tflops.unit}, measured ({peaks.tflops.source}).")
        if peaks.gbps:
            notes.append(f"Peak GB/s: {num(peaks.gbps.value)} {peaks.gbps.unit}, measured ({peaks.gbps.source}).")
        if peaks.why_missing:
            notes.append(f"Share of peak not shown: {peaks.why_missing}.")
        lines += ["", *notes, ""]
        ratio_lines, best[key], rel = ratios_table(cases)
        if ratio_lines:
            lines += ["Time of each backend over the fastest one's at the same S (ratio of medians, bootstrap CI):", "", *ratio_lines, ""]
        lines += candidate_table(cases)
        lines += census_table(cases)
        for name, caption in _plots(key, cases, peaks, out_dir) + _relative_plot(key, rel, out_dir):
            lines += [f"![{caption}]({name})", "", f"*{caption}*", ""]
    lines += report_integrity.section(results.cases)
    lines += ["## What this reproduction cost", "", *_cost(results, verdict, gpu_hour_price)]
    lines += ["## Environment", "", *_environment(results), ""]
    lines += ["## Reproducibility checklist", "", *_checklist(results, manifest_note, verdict), ""]
    lines += ["## Publication paragraph", "", "Written from the measured values above only:", "",
              *_paragraph(results, families, best, peaks_by_family, verdict), ""]
    return "\n".join(lines)


def write_report(results: ResultSet, manifest_note: str, reference: Optional[Reference], verdict: Optional[Verdict],
                 out_dir: Path, gpu_hour_price: Optional[float] = None) -> Path:
    text = build_report(results, manifest_note, reference, verdict, out_dir, gpu_hour_price)
    storage.atomic_write_text(out_dir / REPORT_MD, text)
    return out_dir / REPORT_MD
