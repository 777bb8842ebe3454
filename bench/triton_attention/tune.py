"""Landscape of the Triton attention kernel's tunables on a GPU, next to the SDPA backends.

Run on the GPU machine, from the repository root (one call, a few minutes on an H100):

    PYTHONPATH=. python3 bench/triton_attention/tune.py --out DIR [--workers 12]

Phase A: every config of the D=64 fp16 space at the seed shape (B=32 H=8 S=512) and at S=4096,
non-causal. Phase B: the best few of phase A at every sweep length (128..4096), causal, bf16 and
D=128 with their own small spaces, and the SDPA backends at each of those shapes.

Every config passes the float64 correctness gate on fresh random inputs (its own seed) before it
is timed; timing is triton.testing.do_bench_cudagraph's median (warm L2, as the harness's warm
cases). Kernels are compiled first, in parallel worker processes that fill Triton's on-disk
cache, so the timed process only loads them.

Writes DIR/tune.json (every row) and prints one table per phase.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BATCH, HEADS = 32, 8
SEQS = (128, 512, 1024, 2048, 4096)
# fp16 matmul ceiling for the share column: the H100 lead's 687 (issue 5); the H200 sweep
# passes its own, measured in the same call (--matmul-peak).
MATMUL_PEAK_TFLOPS = float(os.environ.get("MATMUL_PEAK_TFLOPS", "687.0"))


def space_d64() -> list[dict]:
    out = []
    for bm, bn, w, s, tma in itertools.product((64, 128), (32, 64, 128), (4, 8), (2, 3, 4), (False, True)):
        out.append(dict(BLOCK_M=bm, BLOCK_N=bn, num_warps=w, num_stages=s, use_tma=tma, warp_specialize=False, reverse_m=False, exp_f16=False))
    for bn, w, s, tma in itertools.product((64, 128), (4, 8), (2, 3), (False, True)):
        out.append(dict(BLOCK_M=128, BLOCK_N=bn, num_warps=w, num_stages=s, use_tma=tma, warp_specialize=True, reverse_m=False, exp_f16=False))
    return out


def space_d128() -> list[dict]:
    return [dict(BLOCK_M=bm, BLOCK_N=bn, num_warps=w, num_stages=s, use_tma=tma, warp_specialize=False, reverse_m=False, exp_f16=False)
            for bm, bn, w, s, tma in itertools.product((64, 128), (32, 64, 128), (4, 8), (2, 3), (False, True))]


def _spec(seq, config=None, *, dtype="float16", causal=False, head_dim=64, batch=BATCH, backend="triton", workload="triton_attention"):
    from harness.records import CaseSpec

    return CaseSpec(workload, backend, batch, HEADS, seq, head_dim, dtype=dtype, causal=causal, device="cuda", config=config)


def _compile_job(job):
    """Worker: launch each config once on a small tensor set so Triton compiles and caches it."""
    import torch

    from harness.workloads import triton_attention as ta

    out = []
    for spec_kw, config in job:
        spec = _spec(**spec_kw, config=config)
        spec.batch, spec.heads = 1, 1  # same specialisations as the full shape, less memory
        try:
            q, k, v = ta.WORKLOAD.make_inputs(spec, 0)
            ta.attention(q, k, v, causal=spec.causal, config=config)
            torch.cuda.synchronize()
            out.append(None)
        except Exception as exc:  # noqa: BLE001 - a config that does not compile is a result
            out.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
    return out


def compile_all(items: list[tuple[dict, dict]], workers: int) -> list[str | None]:
    t0 = time.perf_counter()
    chunks = [items[i::workers] for i in range(workers)]
    with mp.get_context("spawn").Pool(workers) as pool:
        results = pool.map(_compile_job, chunks)
    errors: list[str | None] = [None] * len(items)
    for w, res in enumerate(results):
        for j, err in enumerate(res):
            errors[w + j * workers] = err
    print(f"compiled {len(items)} configs in {time.perf_counter() - t0:.1f} s "
          f"({sum(e is not None for e in errors)} failed)", flush=True)
    return errors


def gate(spec, seed) -> tuple[float, bool]:
    """Relative error against float64 on fresh inputs; long sequences gated at batch 2 (same code path)."""
    import torch

    from harness import workloads

    small = _spec(spec.seq, spec.config, dtype=spec.dtype, causal=spec.causal, head_dim=spec.head_dim,
                  batch=2 if spec.seq >= 2048 else spec.batch, backend=spec.backend, workload=spec.workload)
    w = workloads.get(small.workload)
    inputs = w.make_inputs(small, seed)
    out = w.make_fn(small, inputs)()
    ref = w.reference(small, inputs)
    rel = float(torch.linalg.vector_norm((out.double() - ref).flatten()) / torch.linalg.vector_norm(ref.flatten()))
    ok = rel == rel and rel <= w.tolerance(small)
    return rel, ok


def time_case(spec, seed, rep=30) -> float:
    import triton.testing

    from harness import workloads

    w = workloads.get(spec.workload)
    fn = w.make_fn(spec, w.make_inputs(spec, seed))
    return float(triton.testing.do_bench_cudagraph(fn, rep=rep, return_mode="median"))


def measure(spec, seed, rows, phase, compile_error=None):
    from harness import workloads

    w = workloads.get(spec.workload)
    row = dict(phase=phase, workload=spec.workload, backend=spec.backend, seq=spec.seq, head_dim=spec.head_dim,
               dtype=spec.dtype, causal=spec.causal, batch=spec.batch, heads=spec.heads, config=spec.config)
    if compile_error:
        row.update(status="compile_failed", reason=compile_error)
    else:
        try:
            rel, ok = gate(spec, seed)
            row.update(rel_error=rel)
            if not ok:
                row.update(status="incorrect", reason=f"rel error {rel:.3g} > {w.tolerance(spec):.3g}")
            else:
                ms = time_case(spec, seed + 1)
                tf = w.flops(spec) / (ms / 1e3) / 1e12
                row.update(status="ok", median_ms=ms, tflops=tf, peak_share=tf / MATMUL_PEAK_TFLOPS)
        except Exception as exc:  # noqa: BLE001
            msg = str(exc).splitlines()[0][:200] if str(exc) else ""
            row.update(status="error", reason=f"{type(exc).__name__}: {msg}")
    rows.append(row)
    return row


def cfg_str(c):
    if not c:
        return ""
    s = f"M{c['BLOCK_M']} N{c['BLOCK_N']} w{c['num_warps']} s{c['num_stages']}"
    s += " tma" if c["use_tma"] else ""
    s += " ws" if c["warp_specialize"] else ""
    s += " rev" if c["reverse_m"] else ""
    s += " e16" if c.get("exp_f16") else ""
    return s


def table(rows, title):
    print(f"\n== {title}")
    for r in rows:
        what = r["backend"] if r["workload"] == "sdpa" else cfg_str(r["config"])
        mask = "causal" if r["causal"] else "full"
        head = f"S={r['seq']:5d} D={r['head_dim']} {r['dtype'][:4]} {mask:6s} {what:28s}"
        if r["status"] == "ok":
            print(f"{head} {r['median_ms']:.4f} ms {r['tflops']:6.1f} TF/s ({r['peak_share']:.0%})  err {r['rel_error']:.1e}")
        else:
            print(f"{head} {r['status']}: {r.get('reason', '')[:90]}")
    sys.stdout.flush()


def sdpa_rows(shape_kw, rows, phase, seed):
    out = []
    for b in ("flash", "efficient", "cudnn", "default"):
        spec = _spec(**shape_kw, backend=b, workload="sdpa")
        out.append(measure(spec, seed, rows, phase))
    return out


def best(rows, n):
    ok = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: r["median_ms"])
    return ok[:n]


def gpu_state() -> str:
    try:
        return subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw,power.limit",
             "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception as exc:  # noqa: BLE001
        return f"nvidia-smi failed: {exc}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--topk", type=int, default=4)
    ap.add_argument("--phase", choices=("landscape", "exp", "sweep", "final"), default="landscape",
                    help="landscape: run 1 (phases A, B1, B2); exp: the leaders with and without exp_f16; "
                         "sweep: the H200 search (issue 11), every S, causal, bf16, D=128; final: the plan's config per S")
    ap.add_argument("--budget-s", type=float, default=330.0, help="sweep: stop starting new phases after this")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    import torch
    import triton

    from harness import envlock

    envlock.prepare_process_env()
    envlock.lock(1234)
    meta = dict(started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), device=torch.cuda.get_device_name(),
                capability=".".join(map(str, torch.cuda.get_device_capability())), torch=torch.__version__,
                triton=triton.__version__, cuda=torch.version.cuda, gpu_state_before=gpu_state(),
                command=" ".join(sys.argv))
    print(json.dumps(meta), flush=True)
    rows: list[dict] = []
    seed = 1000
    t0 = time.perf_counter()
    if args.phase == "exp":
        return exp_phase(args, meta, rows, seed, t0)
    if args.phase == "sweep":
        return sweep_phase(args, meta, rows, seed, t0)
    if args.phase == "final":
        return final_phase(args, meta, rows, seed, t0)

    # ---- phase A: the D=64 fp16 space at the seed shape and at S=4096
    space = space_d64()
    errs = compile_all([(dict(seq=512), c) for c in space], args.workers)
    a_rows = {}
    for seq in (512, 4096):
        a_rows[seq] = [measure(_spec(seq, c), seed := seed + 1, rows, "A", e) for c, e in zip(space, errs)]
        a_rows[seq] += sdpa_rows(dict(seq=seq), rows, "A", seed := seed + 1)
        table(sorted(a_rows[seq], key=lambda r: r.get("median_ms", 1e9))[:12] + [r for r in a_rows[seq] if r["workload"] == "sdpa"],
              f"phase A, S={seq}: fastest 12 configs and SDPA ({time.perf_counter() - t0:.0f} s)")
        table([r for r in a_rows[seq] if r["status"] != "ok"][:8], f"phase A, S={seq}: failures (first 8)")
        (args.out / "tune.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))

    tri = lambda rs: [r for r in rs if r["workload"] == "triton_attention"]  # noqa: E731
    top = []
    for seq in (512, 4096):
        for r in best(tri(a_rows[seq]), args.topk):
            if r["config"] not in top:
                top.append(r["config"])

    # ---- phase B1: the top configs at every sweep length, D=64 fp16 non-causal
    b_rows = []
    for seq in SEQS:
        for c in top:
            b_rows.append(measure(_spec(seq, c), seed := seed + 1, rows, "B1"))
        b_rows += sdpa_rows(dict(seq=seq), rows, "B1", seed := seed + 1)
    table(b_rows, f"phase B1: top configs across the sweep ({time.perf_counter() - t0:.0f} s)")

    # ---- phase B2: causal, bf16, D=128
    causal_space = []
    for c in top + [r["config"] for r in best(tri(a_rows[512]), 12)]:
        if c["BLOCK_M"] % c["BLOCK_N"] == 0:
            for rev in (False, True):
                cc = {**c, "reverse_m": rev}
                if cc not in causal_space:
                    causal_space.append(cc)
    d128 = space_d128()
    jobs = ([(dict(seq=512, causal=True), c) for c in causal_space]
            + [(dict(seq=512, dtype="bfloat16"), c) for c in top]
            + [(dict(seq=512, head_dim=128), c) for c in d128])
    errs = compile_all(jobs, args.workers)
    e_causal = errs[: len(causal_space)]
    e_bf16 = errs[len(causal_space): len(causal_space) + len(top)]
    e_d128 = errs[len(causal_space) + len(top):]
    for title, kw, cfgs, es in (("causal", dict(causal=True), causal_space, e_causal),
                                ("bf16", dict(dtype="bfloat16"), top, e_bf16),
                                ("D=128", dict(head_dim=128), d128, e_d128)):
        for seq in (512, 4096):
            rs = [measure(_spec(seq, c, **kw), seed := seed + 1, rows, "B2", e) for c, e in zip(cfgs, es)]
            rs_s = sdpa_rows(dict(seq=seq, **kw), rows, "B2", seed := seed + 1)
            table(best(rs, 6) + rs_s, f"phase B2 {title} S={seq}: fastest 6 and SDPA ({time.perf_counter() - t0:.0f} s)")
            (args.out / "tune.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))

    # ---- the same best config timed again: how large is run-to-run noise next to config gaps?
    again = []
    for seq in (512, 4096):
        c = best(tri(a_rows[seq]), 1)[0]["config"]
        for _ in range(3):
            again.append(measure(_spec(seq, c), seed := seed + 1, rows, "repeat"))
    table(again, "repeat: the phase-A winner timed three more times")

    meta["gpu_state_after"] = gpu_state()
    meta["wall_s"] = round(time.perf_counter() - t0, 1)
    (args.out / "tune.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    print(f"\nwall {meta['wall_s']} s; after: {meta['gpu_state_after']}")
    return 0


def exp_phase(args, meta, rows, seed, t0) -> int:
    """Run 2: each leader of run 1 with exp_f16 off and on, per shape group, plus SDPA."""
    from harness.optimize.search import LEADERS

    groups = [("D=64 fp16", {}, (128, 512, 1024, 2048, 4096)), ("causal", dict(causal=True), (512, 4096)),
              ("bf16", dict(dtype="bfloat16"), (512, 4096)), ("D=128", dict(head_dim=128), (512, 4096))]
    pairs = [dict(c, exp_f16=e) for c in LEADERS for e in (False, True)]
    jobs = [(dict(seq=512, **kw), c) for _, kw, _ in groups for c in pairs]
    errs = compile_all(jobs, args.workers)
    for g, (title, kw, seqs) in enumerate(groups):
        es = errs[g * len(pairs):(g + 1) * len(pairs)]
        for seq in seqs:
            rs = [measure(_spec(seq, c, **kw), seed + 13 * i, rows, "exp", e) for i, (c, e) in enumerate(zip(pairs, es))]
            seed += 997
            rs_s = sdpa_rows(dict(seq=seq, **kw), rows, "exp", seed)
            table(best(rs, 8) + rs_s + [r for r in rs if r["status"] != "ok"][:4],
                  f"exp {title} S={seq}: fastest 8, SDPA, failures ({time.perf_counter() - t0:.0f} s)")
            (args.out / "tune.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    meta["gpu_state_after"] = gpu_state()
    meta["wall_s"] = round(time.perf_counter() - t0, 1)
    (args.out / "tune.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    print(f"\nwall {meta['wall_s']} s; after: {meta['gpu_state_after']}")
    return 0


def space_sweep() -> list[dict]:
    """The D=64 fp16 space of the H200 search: the run-1 grid without its slow corner (64-row
    blocks on 8 warps) and the warp-specialised variants that compile (8 warps). Run 5 also had
    each config with a hand-pipelined loop (`pipeline_qk`, kernel of commit 8184c9a); it lost
    1.1-4.5x everywhere and was removed from the kernel."""
    out = []
    for bm, bn, w, s, tma in itertools.product((128, 64), (128, 64), (4, 8), (3, 2, 4), (True, False)):
        if bm == 64 and w == 8:
            continue
        out.append(dict(BLOCK_M=bm, BLOCK_N=bn, num_warps=w, num_stages=s, use_tma=tma, warp_specialize=False,
                        reverse_m=False, exp_f16=False))
    for bn, s in itertools.product((64, 128), (2, 3)):
        out.append(dict(BLOCK_M=128, BLOCK_N=bn, num_warps=8, num_stages=s, use_tma=True, warp_specialize=True,
                        reverse_m=False, exp_f16=False))
    return out


def sweep_phase(args, meta, rows, seed, t0) -> int:
    """Issue 11 on the H200: (1) every config of space_sweep() at S=1024 and S=4096; (2) the best
    of both at every S, twice, next to flash and cudnn twice (the noise is visible); (3) causal,
    bf16 and D=128 at S=512 and 4096 over the leaders, so each group gets a tuned config."""
    space = space_sweep()
    save = lambda: (args.out / "tune.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))  # noqa: E731
    errs = compile_all([(dict(seq=1024), c) for c in space], args.workers)
    a_rows = {}
    for seq in (1024, 4096):
        a_rows[seq] = [measure(_spec(seq, c), seed := seed + 1, rows, "S1", e) for c, e in zip(space, errs)]
        a_rows[seq] += sdpa_rows(dict(seq=seq), rows, "S1", seed := seed + 1)
        table(sorted(a_rows[seq], key=lambda r: r.get("median_ms", 1e9))[:14] + [r for r in a_rows[seq] if r["workload"] == "sdpa"],
              f"sweep 1, S={seq}: fastest 14 configs and SDPA ({time.perf_counter() - t0:.0f} s)")
        table([r for r in a_rows[seq] if r["status"] != "ok"][:6], f"sweep 1, S={seq}: failures (first 6)")
        save()
    tri = lambda rs: [r for r in rs if r["workload"] == "triton_attention"]  # noqa: E731
    top: list[dict] = []
    for seq in (1024, 4096):
        for r in best(tri(a_rows[seq]), 4):
            if r["config"] not in top:
                top.append(r["config"])
    b_rows = []
    for seq in SEQS:
        for rnd in range(2):
            for c in top:
                b_rows.append(measure(_spec(seq, c), seed := seed + 1, rows, f"S2r{rnd}"))
            for b in ("flash", "cudnn"):
                b_rows.append(measure(_spec(seq, backend=b, workload="sdpa"), seed := seed + 1, rows, f"S2r{rnd}"))
        save()
    table(b_rows, f"sweep 2: leaders across the sweep, two rounds ({time.perf_counter() - t0:.0f} s)")
    if time.perf_counter() - t0 > args.budget_s:
        print("budget spent: no group phase", flush=True)
        return _finish(args, meta, rows, t0)
    leaders = top + [r["config"] for r in best(tri(a_rows[1024]), 10) if r["config"] not in top]
    groups = (("causal", dict(causal=True)), ("bf16", dict(dtype="bfloat16")), ("D=128", dict(head_dim=128)))
    jobs, owners = [], []
    for title, kw in groups:
        cfgs = []
        for c in leaders:
            if kw.get("causal") and c["BLOCK_M"] % c["BLOCK_N"]:
                continue
            if c not in cfgs:
                cfgs.append(c)
        for c in cfgs:
            jobs.append((dict(seq=512, **kw), c))
            owners.append(title)
    errs = compile_all(jobs, args.workers)
    for title, kw in groups:
        mine = [(j[1], e) for j, e, o in zip(jobs, errs, owners) if o == title]
        for seq in (512, 4096):
            if time.perf_counter() - t0 > args.budget_s:
                print(f"budget spent before {title} S={seq}", flush=True)
                return _finish(args, meta, rows, t0)
            rs = [measure(_spec(seq, c, **kw), seed := seed + 1, rows, f"G-{title}", e) for c, e in mine]
            rs_s = [measure(_spec(seq, backend=b, workload="sdpa", **kw), seed := seed + 1, rows, f"G-{title}") for b in ("flash", "cudnn")]
            table(best(rs, 5) + rs_s, f"group {title} S={seq}: fastest 5 and SDPA ({time.perf_counter() - t0:.0f} s)")
            save()
    return _finish(args, meta, rows, t0)


def _c(bm, bn, w, s, tma=True, ws=False):
    return dict(BLOCK_M=bm, BLOCK_N=bn, num_warps=w, num_stages=s, use_tma=tma, warp_specialize=ws,
                reverse_m=False, exp_f16=False)


# The leaders of run5 (sweep, H200) and 256-row blocks on two warpgroups, which share each K/V
# tile between 256 query rows as cuDNN's kernel shares it between its two consumer warpgroups
# (ncu, run A: cudnn 384 threads = 3 warpgroups, one CTA per SM; Triton 2 CTAs of 4 warps).
FINAL_CANDIDATES = [
    _c(128, 128, 4, 3), _c(128, 64, 8, 3, ws=True), _c(128, 64, 8, 3), _c(128, 64, 8, 3, tma=False), _c(128, 64, 8, 4),
    _c(256, 128, 8, 2), _c(256, 128, 8, 3), _c(256, 64, 8, 3), _c(256, 64, 8, 4), _c(256, 128, 8, 2, ws=True),
    _c(256, 128, 16, 2),
]


def final_phase(args, meta, rows, seed, t0) -> int:
    """Pick the config per S for the H200 artifact plan: every candidate, 3 rounds at every S,
    interleaved with cudnn and default; the lowest median of the rounds wins. Writes
    DIR/winners.json {seq: config} for `harness optimize --config` and make_plan."""
    cands = FINAL_CANDIDATES
    errs = compile_all([(dict(seq=1024), c) for c in cands], args.workers)
    winners = {}
    for seq in SEQS:
        per: dict[int, list[float]] = {}
        for rnd in range(3):
            for i, (c, e) in enumerate(zip(cands, errs)):
                if rnd and i not in per:
                    continue  # failed in round 0
                r = measure(_spec(seq, c), seed := seed + 1, rows, f"F{rnd}", e)
                if r["status"] == "ok":
                    per.setdefault(i, []).append(r["median_ms"])
            for b in ("cudnn", "default"):
                measure(_spec(seq, backend=b, workload="sdpa"), seed := seed + 1, rows, f"F{rnd}")
        ranked = sorted(per.items(), key=lambda kv: statistics.median(kv[1]))
        base = {b: statistics.median(r["median_ms"] for r in rows if r["workload"] == "sdpa" and r["backend"] == b
                                     and r["seq"] == seq and r["phase"].startswith("F") and r["status"] == "ok")
                for b in ("cudnn", "default")}
        print(f"\n== final S={seq}: cudnn {base['cudnn']:.5f} default {base['default']:.5f} ms "
              f"({time.perf_counter() - t0:.0f} s)")
        for i, ms in ranked[:6]:
            print(f"   {cfg_str(cands[i]):28s} median of rounds {statistics.median(ms):.5f} ms  "
                  f"/cudnn {statistics.median(ms) / base['cudnn']:.4f}  rounds {', '.join(f'{m:.5f}' for m in ms)}")
        winners[seq] = cands[ranked[0][0]]
        (args.out / "winners.json").write_text(json.dumps({str(k): v for k, v in winners.items()}, indent=1))
        (args.out / "tune.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    return _finish(args, meta, rows, t0)


def _finish(args, meta, rows, t0) -> int:
    meta["gpu_state_after"] = gpu_state()
    meta["wall_s"] = round(time.perf_counter() - t0, 1)
    (args.out / "tune.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    print(f"\nwall {meta['wall_s']} s; after: {meta['gpu_state_after']}")
    return 0


if __name__ == "__main__":
    os.environ.pop("TRITON_INTERPRET", None)
    sys.exit(main())
