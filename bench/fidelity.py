"""The independent fidelity check of a harness run (issue 8): does the harness time the kernel and
nothing else?

For every ok case of a results folder, a separate Python process that never imports the harness's
lock (no deterministic algorithms, no fill, no seeds of the harness) builds its own random inputs
and times the same call with triton's `do_bench_cudagraph` (median of its replays), `--rounds`
times. The harness's median must lie within `--tol` (3%) of the median of those rounds for every
case. Next to it, the case's kernel census (CUPTI device time per call, recorded by the harness)
over the harness's median: from S=1024 up the kernels explain the median to within a few percent;
below, the difference is the gap between the kernel nodes of a graph replay.

    PYTHONPATH=. python3 bench/fidelity.py --results RESULTS_DIR --out DIR [--rounds 3] [--tol 0.03]

Writes DIR/fidelity.json and DIR/fidelity.md; exits 0 when every case is within the tolerance,
1 when one is not (the check fails on the old behaviour: run it on a results folder measured
with the fill on, bench/h200/with_fill.py), 2 on unusable input.

The worker half (`--worker`) is what runs in the separate process; it reads a JSON list of case
specs and writes one row per case.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _worker(cases_file: Path, out_file: Path, rounds: int, rep_ms: int) -> int:
    """Runs in its own process: no harness lock is imported or applied here."""
    import torch
    import triton
    import triton.testing

    from harness import workloads
    from harness.records import CaseSpec

    state = {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "fill_uninitialized_memory": getattr(getattr(torch.utils, "deterministic", None), "fill_uninitialized_memory", None),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "pid": os.getpid(),
        "torch": torch.__version__, "triton": triton.__version__, "gpu": torch.cuda.get_device_name(0),
    }
    rows = []
    for i, spec_fields in enumerate(json.loads(cases_file.read_text())):
        spec = CaseSpec(**spec_fields)
        w = workloads.get(spec.workload)
        times = []
        for r in range(rounds):
            # Inputs of its own: a seed the harness never uses, a new draw every round.
            fn = w.make_fn(spec, w.make_inputs(spec, 900_001 + 7 * i + 1_000 * r))
            times.append(float(triton.testing.do_bench_cudagraph(fn, rep=rep_ms, return_mode="median")))
            del fn
            torch.cuda.empty_cache()
        rows.append({"case_id": spec.case_id, "rounds_ms": times})
        print(f"  unlocked {spec.case_id}: {statistics.median(times):.5f} ms", flush=True)
    out_file.write_text(json.dumps({"worker": state, "rows": rows}, indent=1))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rep-ms", type=int, default=100)
    ap.add_argument("--tol", type=float, default=0.03)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cases", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return _worker(args.cases, args.out, args.rounds, args.rep_ms)
    if args.results is None or args.out is None:
        ap.error("--results and --out are required")

    from harness import storage
    from harness.errors import RecordError
    from harness.records import to_dict

    try:
        env = storage.load_env(args.results)
        cases = [c for c in storage.load_cases(args.results) if c.status == "ok" and c.case.device == "cuda"]
    except RecordError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not cases:
        print(f"error: {args.results}: no ok CUDA case to check", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    spec_file = args.out / "cases.json"
    spec_file.write_text(json.dumps([to_dict(c.case) for c in cases]))
    raw_file = args.out / "unlocked.json"
    t0 = time.perf_counter()
    # A clean environment for the worker: nothing the harness's CLI would have set.
    env_vars = {k: v for k, v in os.environ.items() if k not in ("CUBLAS_WORKSPACE_CONFIG",)}
    env_vars["PYTHONPATH"] = str(REPO) + os.pathsep + env_vars.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, __file__, "--worker", "--cases", str(spec_file), "--out", str(raw_file),
                           "--rounds", str(args.rounds), "--rep-ms", str(args.rep_ms)], env=env_vars)
    if proc.returncode != 0 or not raw_file.is_file():
        print(f"error: the unlocked worker failed (exit {proc.returncode})", file=sys.stderr)
        return 2
    raw = json.loads(raw_file.read_text())
    unlocked = {r["case_id"]: r["rounds_ms"] for r in raw["rows"]}
    rows = []
    for c in cases:
        s = c.timing.summary
        rounds = unlocked[c.case.case_id]
        ref = statistics.median(rounds)
        census = c.census
        kernel_ms = sum(e.ms_per_call for e in census.entries if e.kind == "kernel") if census else None
        device_ms = census.ms_per_call if census else None
        n_nodes = sum(e.launches_per_call for e in census.entries if e.kind != "cpu_op") if census else None
        rows.append({
            "case_id": c.case.case_id, "backend": c.case.backend, "seq": c.case.seq,
            "harness_median_ms": s.median_ms, "harness_ci_ms": [s.ci_low_ms, s.ci_high_ms],
            "unlocked_rounds_ms": rounds, "unlocked_median_ms": ref,
            "unlocked_round_spread": (max(rounds) - min(rounds)) / ref,
            "ratio": s.median_ms / ref, "within_tol": abs(s.median_ms / ref - 1) <= args.tol,
            "census_device_ms_per_call": device_ms, "census_kernel_ms_per_call": kernel_ms,
            "census_share_of_median": (device_ms / s.median_ms) if device_ms else None,
            "census_nodes_per_call": n_nodes,
            "gap_us_per_node": ((s.median_ms - device_ms) * 1e3 / n_nodes) if device_ms and n_nodes else None,
            "census_matches_unlocked": census.matches_unlocked if census else None,
            "census_kernels": [f"{e.kind} x{e.launches_per_call:g} {e.name[:120]}" for e in census.entries] if census else [],
        })
    bad = [r for r in rows if not r["within_tol"]]
    doc = {
        "kind": "fidelity_check", "schema_version": 1, "created_at": storage.utc_now(),
        "results": str(args.results), "gpu": env.gpu.name if env.gpu else None,
        "gpu_uuid": env.gpu.uuid if env.gpu else None,
        "harness_lock": env.lock, "worker": raw["worker"], "rounds": args.rounds, "rep_ms": args.rep_ms,
        "tol": args.tol, "wall_s": round(time.perf_counter() - t0, 1),
        "passed": not bad, "n_cases": len(rows), "n_outside": len(bad),
        "ratio_min": min(r["ratio"] for r in rows), "ratio_max": max(r["ratio"] for r in rows),
        "rows": rows,
    }
    storage.atomic_write_text(args.out / "fidelity.json", json.dumps(doc, indent=1) + "\n")
    storage.atomic_write_text(args.out / "fidelity.md", markdown(doc))
    print(markdown(doc))
    return 0 if not bad else 1


def markdown(doc: dict) -> str:
    lines = [
        f"# Fidelity check: {doc['results']}",
        "",
        f"{doc['gpu']}; harness lock: fill_uninitialized_memory={doc['harness_lock'].get('fill_uninitialized_memory')}; "
        f"unlocked worker (pid {doc['worker']['pid']}): deterministic={doc['worker']['deterministic_algorithms']}, "
        f"torch {doc['worker']['torch']}, triton {doc['worker']['triton']}; {doc['rounds']} rounds of "
        f"do_bench_cudagraph(rep={doc['rep_ms']} ms) per case.",
        "",
        "Regime: triton's do_bench_cudagraph sizes a graph of about rep ms of calls from five eager calls, then "
        "replays it ten times back to back, per round, with no warm-up of its own beyond those calls; the harness "
        "warms each case for 250 ms of kernel time and samples in about 1 ms replays (ARTIFACT.md, \"The machine\"). "
        "Both describe a loaded GPU at the clock its power limit allows; the shortest kernels read the difference.",
        "",
        f"**{'PASS' if doc['passed'] else 'FAIL'}**: {doc['n_cases'] - doc['n_outside']} of {doc['n_cases']} cases within "
        f"{doc['tol']:.0%} of the unlocked median; harness/unlocked ratio {doc['ratio_min']:.4f} .. {doc['ratio_max']:.4f}.",
        "",
        "| case | harness ms | unlocked ms (rounds) | ratio | round spread | census device ms/call | share of median | gap us/node | lock adds kernels |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in doc["rows"]:
        rounds = ", ".join(f"{x:.5f}" for x in r["unlocked_rounds_ms"])
        share = f"{r['census_share_of_median']:.3f}" if r["census_share_of_median"] else "-"
        dev = f"{r['census_device_ms_per_call']:.5f}" if r["census_device_ms_per_call"] else "-"
        gap = f"{r['gap_us_per_node']:.2f}" if r["gap_us_per_node"] is not None else "-"
        adds = {None: "-", True: "no", False: "YES"}[r["census_matches_unlocked"]]
        mark = "" if r["within_tol"] else " **outside**"
        lines.append(f"| {r['case_id']} | {r['harness_median_ms']:.5f} | {rounds} | {r['ratio']:.4f}{mark} | "
                     f"{r['unlocked_round_spread']:.2%} | {dev} | {share} | {gap} | {adds} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
