"""Write bench/h100/SUMMARY.md from the measured files under bench/h100/ (nothing typed by hand).

    python3 bench/h100/summarize.py
"""

from __future__ import annotations

import json
import statistics
import sys
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from harness.storage import load_cases, load_env  # noqa: E402


def _sweep_seconds(cases) -> float:
    t = lambda s: datetime.fromisoformat(s)  # noqa: E731
    return (max(t(c.finished_at) for c in cases) - min(t(c.started_at) for c in cases)).total_seconds()


def crosscheck_section(path: Path) -> list[str]:
    doc = json.loads(path.read_text())
    rows = [r for r in doc["rows"] if "ratio" in r]
    out = [f"### {path.relative_to(HERE)}",
           f"{doc['gpu']}, torch {doc['torch']}, triton {doc['triton']}, {doc['rounds']} rounds, created {doc['created_at']}", "",
           "| backend | S | harness median ms | do_bench_cudagraph median ms | ratio | harness round spread | triton round spread |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        out.append(f"| {r['backend']} | {r['seq']} | {r['harness_median_ms']:.5f} | {r['triton_median_ms']:.5f} | {r['ratio']:.4f} | "
                   f"{r['harness_round_spread']:.2%} | {r['triton_round_spread']:.2%} |")
    ratios = [r["ratio"] for r in rows]
    worst = max(rows, key=lambda r: abs(r["ratio"] - 1))
    out += ["", f"Ratio harness/do_bench_cudagraph: min {min(ratios):.4f}, max {max(ratios):.4f} over {len(rows)} cases; "
            f"within 3%: {sum(abs(x - 1) <= 0.03 for x in ratios)}/{len(rows)}; largest deviation {worst['backend']} S={worst['seq']} "
            f"({worst['ratio']:.4f}).", ""]
    return out


def runs_section(folder: Path) -> list[str]:
    runs = sorted(p for p in folder.glob("run-*") if (p / "env.json").exists())
    if not runs:
        return []
    out = [f"### {folder.relative_to(HERE)}: {len(runs)} full sweeps", "",
           "| run | GPU uuid | started | sweep s (first case start to last case end) | cases ok | converged |", "| --- | --- | --- | ---: | ---: | ---: |"]
    per_case: dict[str, list[float]] = {}
    for run in runs:
        env, cases = load_env(run), load_cases(run)
        ok = [c for c in cases if c.status == "ok"]
        conv = sum(c.timing.summary.converged for c in ok)
        out.append(f"| {run.name} | {env.gpu.uuid if env.gpu else '-'} | {env.created_at} | {_sweep_seconds(cases):.0f} | {len(ok)}/{len(cases)} | {conv}/{len(ok)} |")
        for c in ok:
            per_case.setdefault(c.case.case_id, []).append(c.timing.summary.median_ms)
    out += ["", "| case | medians ms | spread (max-min)/min |", "| --- | --- | ---: |"]
    for cid, meds in sorted(per_case.items()):
        out.append(f"| {cid} | {', '.join(f'{m:.5f}' for m in meds)} | {(max(meds) - min(meds)) / min(meds):.2%} |")
    spreads = [(max(m) - min(m)) / min(m) for m in per_case.values() if len(m) > 1]
    if spreads:
        out += ["", f"Between-process spread of the median: median {statistics.median(spreads):.2%}, max {max(spreads):.2%}.", ""]
    return out


def verdict_section(path: Path) -> list[str]:
    v = json.loads(path.read_text())
    # Memory claims are bounds (max peak x 1.05) on a peak that came out byte-identical in every
    # run, so their "used" is measured/bound, not a spread: listed apart.
    mem = [c for c in v["claims"] if c["kind"] == "memory"]
    claims = sorted((c for c in v["claims"] if c["kind"] != "memory"), key=lambda c: -(c.get("tolerance_used") or 0))
    c = v["counts"]
    out = [f"### {path.relative_to(HERE)}",
           f"{v['hardware']} against `{v['reference_file']}` (sha256 {v['reference_sha256'][:12]}): "
           f"{c['PASS']} PASS, {c['FAIL']} FAIL, {c['SKIP']} SKIP, exit {v['exit_code']}.", "",
           "Margins: the ten time, ratio and scaling claims that used the most of their tolerance (100% = at the edge of the band).", "",
           "| claim | measured | reference | tolerance | used |", "| --- | ---: | ---: | --- | ---: |"]
    for cl in claims[:10]:
        used = cl.get("tolerance_used")
        out.append(f"| {cl['claim_id']} | {cl.get('measured'):.5g} | {cl.get('reference'):.5g} | {cl.get('tolerance')} | "
                   f"{'-' if used is None else f'{used:.0%}'} |")
    used = [cl["tolerance_used"] for cl in claims if cl.get("tolerance_used") is not None]
    if used:
        out += ["", f"Tolerance used over {len(used)} time, ratio and scaling claims: median {statistics.median(used):.0%}, "
                f"max {max(used):.0%}."]
    if mem:
        same = sum(abs(c["measured"] * 1.05 - c["reference"]) <= 1 + 1e-9 * c["reference"] for c in mem)
        out += [f"Memory: {len(mem)} peak-memory claims, {same} of them at exactly the reference runs' peak (bound = 1.05 x it).", ""]
    return out


def modes_section(path: Path) -> list[str]:
    doc = json.loads(path.read_text())
    out = [f"### {path.relative_to(HERE)}", f"{doc['gpu']}, created {doc['created_at']} (bench/h100/modes.py)", "",
           "| mode | case | method | median ms | 95% CI ms | repetition medians | flags |", "| --- | --- | --- | ---: | --- | --- | --- |"]
    for r in doc["rows"]:
        reps = ", ".join(f"{m:.5f}" for m in r["rep_medians"] or [])
        out.append(f"| {r['label']} | {r['case_id']} | {r['method']} | {r['median_ms']:.5f} | "
                   f"[{r['ci'][0]:.5f}, {r['ci'][1]:.5f}] | {reps} | {', '.join(r.get('flags') or [])} |")
    return out + [""]


def main() -> int:
    lines = ["# H100 measurements (generated by bench/h100/summarize.py from the files here)", ""]
    for cc in sorted(HERE.rglob("crosscheck.json")):
        lines += crosscheck_section(cc)
    folders = sorted({p.parent for p in HERE.rglob("run-*") if (p / "env.json").exists()})
    for folder in folders:
        lines += runs_section(folder)
    for m in sorted(HERE.rglob("modes.json")):
        lines += modes_section(m)
    for v in sorted(HERE.rglob("verdict.json")):
        lines += verdict_section(v)
    (HERE / "SUMMARY.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {HERE / 'SUMMARY.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
