"""Generate bench/h200/SUMMARY.md from the files under bench/h200/ (no number typed by hand).

    python3 bench/h200/summarize.py            # rewrites bench/h200/SUMMARY.md
    python3 bench/h200/summarize.py --check    # exit 1 if SUMMARY.md is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from harness import stats, storage  # noqa: E402
from harness.workloads import SDPA_BACKENDS  # noqa: E402

SEQS = (128, 512, 1024, 2048, 4096)
BACKENDS = (*SDPA_BACKENDS, "triton")


def _runs() -> list[Path]:
    return sorted(p.parent for p in HERE.glob("machine-*/run-*/env.json"))


def _fidelities() -> list[Path]:
    return sorted(HERE.glob("machine-*/fidelity-*/fidelity.json"))


def _walls() -> dict[str, float]:
    """`/usr/bin/time` lines in the logs, matched to the step that printed them."""
    out: dict[str, float] = {}
    for log in HERE.glob("machine-*/log*.txt"):
        step = None
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            m = re.match(r"=== (\S+) \d", line)
            if m:
                step = m.group(1)
            m = re.match(r"([\d.]+) s wall$", line.strip())
            if m and step:
                out[f"{log.parent.name}/{step}"] = float(m.group(1))
    return out


def _case_map(run: Path) -> dict[tuple[str, int], object]:
    return {(c.case.backend, c.case.seq): c for c in storage.load_cases(run)}


def machines_table(lines: list[str]) -> None:
    walls = _walls()
    lines += ["## Runs", "",
              "| run | machine (GPU UUID) | plan | cases ok / converged | wall s | ceilings: matmul TFLOP/s, copy GB/s (memcpy) | SM clock MHz while timing (median of cases) |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for run in _runs():
        env = storage.load_env(run)
        cases = storage.load_cases(run)
        ok = [c for c in cases if c.status == "ok"]
        conv = sum(1 for c in ok if c.timing.summary.converged)
        ceil = storage.load_ceilings(run)
        if ceil is not None:
            got = {c.metric: c.value for c in ceil.ceilings}
            ceil_text = f"{got.get('matmul_tflops', '-')}, {got.get('copy_gbps', '-')}" + (
                f" ({got['memcpy_gbps']})" if "memcpy_gbps" in got else "")
        else:
            ceil_text = "-"
        clocks = [c.timing.clocks.sm_mhz_median for c in ok if c.timing.clocks and c.timing.clocks.sm_mhz_median]
        wall = walls.get(f"{run.parent.name}/{run.name.replace('run-', 'run-')}") or walls.get(f"{run.parent.name}/{_step_of(run)}")
        plan = env_plan(run)
        lines.append(f"| {run.parent.name}/{run.name} | {env.gpu.uuid[:12] if env.gpu else '-'} | {plan} | {len(ok)}/{len(cases)} ok, "
                     f"{conv} converged | {wall if wall else '-'} | {ceil_text} | "
                     f"{statistics.median(clocks) if clocks else '-'} |")
    lines.append("")


def _step_of(run: Path) -> str:
    return {"run-A1": "plan", "fill-A1": "fillrun"}.get(run.name, run.name)


def env_plan(run: Path) -> str:
    # The harness prints its plan in run.log only under the launcher; the case ids tell the plan.
    ids = [c.case.case_id for c in storage.load_cases(run) if c.case.workload == "triton_attention"]
    if not ids:
        return "full profile"
    h200 = (REPO / "harness" / "plans" / "h200-artifact.yaml").read_text()
    from harness import plan as planmod

    h200_ids = {c.case_id for c in planmod.from_yaml(REPO / "harness" / "plans" / "h200-artifact.yaml", "cuda").cases}
    del h200
    return "h200-artifact" if set(ids) <= h200_ids else "h100-artifact"


def fidelity_tables(lines: list[str]) -> None:
    docs = [(p.parent.parent.name + "/" + p.parent.name, json.loads(p.read_text())) for p in _fidelities()]
    lines += ["## The independent fidelity check", "",
              "`bench/fidelity.py`: every case of the run, timed again in a separate process with no lock and its own "
              "inputs by triton's `do_bench_cudagraph` (3 rounds; 2 for the fill run); the harness's median must be "
              "within 3% of the median of the rounds.", "",
              "| check | harness lock's fill | cases within 3% | harness / unlocked: min .. max | verdict |",
              "| --- | --- | --- | --- | --- |"]
    for name, d in docs:
        lines.append(f"| {name} | {d['harness_lock'].get('fill_uninitialized_memory')} | {d['n_cases'] - d['n_outside']} of "
                     f"{d['n_cases']} | {d['ratio_min']:.4f} .. {d['ratio_max']:.4f} | {'PASS' if d['passed'] else 'FAIL'} |")
    lines += ["", "Per case, harness median / unlocked median (and the unlocked rounds' spread):", "",
              "| case | " + " | ".join(n for n, _ in docs) + " |", "|---" * (len(docs) + 1) + "|"]
    keys = sorted({(r["backend"], r["seq"]) for _, d in docs for r in d["rows"]}, key=lambda k: (BACKENDS.index(k[0]), k[1]))
    for b, s in keys:
        cells = []
        for _, d in docs:
            row = next((r for r in d["rows"] if (r["backend"], r["seq"]) == (b, s)), None)
            cells.append("-" if row is None else f"{row['ratio']:.3f}{'' if row['within_tol'] else ' **'} ({row['unlocked_round_spread']:.1%})")
        lines.append(f"| {b} S={s} | " + " | ".join(cells) + " |")
    lines += ["", "`**`: outside 3%.", ""]
    # CUPTI
    lines += ["## What the kernels explain (CUPTI, the census)", "",
              "Device time per call of every GPU activity in one profiled graph replay, over the harness's median; "
              "for S < 1024 the gap per graph node (harness median minus device time, over the activities per call).", "",
              "| case | " + " | ".join(f"{n}: share (gap us/node)" for n, d in docs if d['harness_lock'].get('fill_uninitialized_memory') is False) + " |",
              "|---" * (1 + sum(1 for _, d in docs if d['harness_lock'].get('fill_uninitialized_memory') is False)) + "|"]
    clean = [(n, d) for n, d in docs if d["harness_lock"].get("fill_uninitialized_memory") is False]
    for b, s in keys:
        cells = []
        for _, d in clean:
            row = next((r for r in d["rows"] if (r["backend"], r["seq"]) == (b, s)), None)
            if row is None or row["census_share_of_median"] is None:
                cells.append("-")
            else:
                gap = f" ({row['gap_us_per_node']:.2f})" if s < 1024 and row["gap_us_per_node"] is not None else ""
                cells.append(f"{row['census_share_of_median']:.3f}{gap}")
        lines.append(f"| {b} S={s} | " + " | ".join(cells) + " |")
    shares = [r["census_share_of_median"] for _, d in clean for r in d["rows"] if r["seq"] >= 1024 and r["census_share_of_median"]]
    within = sum(1 for x in shares if abs(x - 1) <= 0.03)
    lines += ["", f"From S=1024 up: {within} of {len(shares)} case-runs within 3% of the median; all in "
              f"[{min(shares):.3f}, {max(shares):.3f}].", ""]


def candidate_table(lines: list[str]) -> None:
    runs = [r for r in _runs() if env_plan(r) == "h200-artifact" and r.parent.name in ("machine-B", "machine-C")]
    lines += ["## The candidate against every SDPA backend (H200, fill off)", "",
              "Triton kernel time over each backend's, per run of the H200 plan, with the 95% CI of the ratio "
              "(hierarchical bootstrap over the raw samples). \"faster\" only where the whole CI is below 1.", "",
              "| S | vs | " + " | ".join(f"{r.parent.name}/{r.name}" for r in runs) + " |", "|---" * (2 + len(runs)) + "|"]
    maps = [_case_map(r) for r in runs]
    for s in SEQS:
        for b in ("flash", "efficient", "cudnn", "math", "default"):
            cells = []
            for m in maps:
                t, o = m.get(("triton", s)), m.get((b, s))
                if t is None or o is None:
                    cells.append("-")
                    continue
                ci = stats.hierarchical_ratio_ci([r.samples_ms for r in t.timing.repetitions],
                                                 [r.samples_ms for r in o.timing.repetitions], n_resamples=2000, seed=1)
                word = "faster" if ci.high < 1 else ("slower" if ci.low > 1 else "no difference")
                cells.append(f"{ci.estimate:.3f} [{ci.low:.3f}, {ci.high:.3f}] {word}")
            lines.append(f"| {s} | {b} | " + " | ".join(cells) + " |")
    lines.append("")


def fresh_check(lines: list[str]) -> None:
    """The fresh machines (D, and E after issue 12's restructuring: `make reproduce` on machines not
    in the reference) against h200.yaml,
    judged again here with the shipped checker, with the margins: how much of each tolerance it used."""
    from artifact import verdict as verdictmod
    from artifact.reference import load_reference

    runs = sorted(HERE.glob("machine-[DE]/run-*"))
    if not runs:
        return
    ref = load_reference(REPO / "artifact" / "references" / "h200.yaml")
    lines += ["## The fresh machines", "",
              "`make reproduce` on separately started H200s (machines D and E) that are not among the reference's runs, "
              "judged against artifact/references/h200.yaml:", "",
              "| run | PASS | FAIL | SKIP | largest share of a time claim's tolerance used (claim) | median share used |",
              "| --- | --- | --- | --- | --- | --- |"]
    for run in runs:
        v = verdictmod.check(run, ref)
        # Time claims only: for memory and correctness claims "used" is the value over its bound.
        used = sorted((c.tolerance_used, c.claim_id) for c in v.claims
                      if c.tolerance_used is not None and c.kind in ("absolute", "ratio", "scaling", "efficiency"))
        mid = statistics.median(u for u, _ in used) if used else None
        top = f"{used[-1][0]:.0%} ({used[-1][1]})" if used else "-"
        lines.append(f"| {run.parent.name}/{run.name} | {v.counts['PASS']} | {v.counts['FAIL']} | {v.counts['SKIP']} | {top} | "
                     f"{mid:.0%} |" if mid is not None else "-")
    lines.append("")


def census_clocks(lines: list[str]) -> None:
    rows = []
    for run in _runs():
        for c in storage.load_cases(run):
            if c.census is None or c.census.sm_mhz is None or c.case.seq < 1024 or c.timing is None or c.timing.clocks is None:
                continue
            rows.append((run, c))
    if not rows:
        return
    lines += ["## The census's SM clock against the clock while timing (S >= 1024)", "",
              "NVML's SM clock read right after the census replay (runs that record it), next to the median clock "
              "of the timed samples and the census's share of the median:", "",
              "| run | case | census MHz | timing MHz (median) | share of the median |", "| --- | --- | --- | --- | --- |"]
    for run, c in rows:
        lines.append(f"| {run.parent.name}/{run.name} | {c.case.backend} S={c.case.seq} | {c.census.sm_mhz} | "
                     f"{c.timing.clocks.sm_mhz_median:g} | {c.census.share_of_median:.3f} |")
    lines.append("")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    lines = ["# H200 runs: generated summary", "",
             "Generated by `python3 bench/h200/summarize.py` from the files under bench/h200/; see NOTES.md for the "
             "machines, the commands and what each run was for.", ""]
    machines_table(lines)
    fidelity_tables(lines)
    census_clocks(lines)
    candidate_table(lines)
    fresh_check(lines)
    text = "\n".join(lines).rstrip("\n") + "\n"
    target = HERE / "SUMMARY.md"
    if args.check:
        if not target.is_file() or target.read_text() != text:
            print(f"{target}: out of date; run python3 bench/h200/summarize.py", file=sys.stderr)
            return 1
        return 0
    storage.atomic_write_text(target, text)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
