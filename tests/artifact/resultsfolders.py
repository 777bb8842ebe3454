"""Results folders for the artifact tests, built from records (no GPU, no torch).

Timings are the seed system's real per-sample L4 latencies (tests/data/seed-l4-data, B=32 H=8 D=64
fp16, two independent runs: the baseline sweep and the "full_enhanced" runs). Each backend's
samples are a seeded bootstrap resample of that run's samples at the same S, scaled by a fixed
per-backend factor, so every case keeps the real distribution (1.024 us ties, warm-up outliers)
and the runs differ by the real run-to-run spread of the L4 (2.7% at S=512, 5% at S=256, 3.7% at
S=1024). Summaries are computed by harness.stats exactly as the harness does.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from harness import stats, storage
from harness.records import (
    CaseResult,
    CaseSpec,
    CeilingsRecord,
    Correctness,
    EnvRecord,
    GpuInfo,
    GpuProcess,
    GpuState,
    Integrity,
    IntegrityCheck,
    Memory,
    Repetition,
    Throughput,
    Timing,
    Watch,
    load_record,
)

SEED_DATA = Path(__file__).resolve().parents[1] / "data" / "seed-l4-data"  # real L4 data, see its README
L4 = "NVIDIA L4"
SEQS = (256, 512, 1024)
# Relative speeds chosen to resemble SDPA backends on one GPU: cudnn a little faster than flash,
# efficient slower, math far slower. Only the L4 "auto" backend was measured by the seed.
BACKEND_FACTOR = {"flash": 1.0, "cudnn": 0.88, "efficient": 1.3, "math": 2.7}
_BASELINE_FILE = {128: "01", 256: "02", 512: "03", 1024: "04", 2048: "05"}
_RUN_SOURCE = ("baseline", "full")
BOOTSTRAP_SEED = 1234


def seed_samples(seq: int, source: str) -> np.ndarray:
    """Raw per-call L4 latencies (ms) of one seed run at this S."""
    name = f"baseline_config_{_BASELINE_FILE[seq]}.json" if source == "baseline" else f"{source}_enhanced_s{seq}.json"
    data = json.loads((SEED_DATA / name).read_text())
    raw = data["raw_latencies"] if "raw_latencies" in data else data["results"]["raw_latencies"]
    return np.asarray(raw, dtype=float)


def throughput(spec: CaseSpec, median_ms: float) -> Throughput:
    elem = {"float16": 2, "bfloat16": 2, "float32": 4}[spec.dtype]
    flops = 4.0 * spec.batch * spec.heads * spec.seq * spec.seq * spec.head_dim * (0.5 if spec.causal else 1.0)
    nbytes = 4.0 * spec.batch * spec.heads * spec.seq * spec.head_dim * elem
    return Throughput(flops=flops, bytes=nbytes, tflops=flops / (median_ms * 1e-3) / 1e12, gbps=nbytes / (median_ms * 1e-3) / 1e9)


def case_result(spec: CaseSpec, groups: list[np.ndarray], rng: np.random.Generator, bitwise: bool = True) -> CaseResult:
    # As harness.runner summarises (10,000 resamples, the plan's seed, recorded): the checker
    # recomputes the summary from the samples and must find the same one.
    summary = stats.summarize_repetitions([list(g) for g in groups], [True] * len(groups), seed=BOOTSTRAP_SEED)
    reps = [Repetition(samples_ms=[float(x) for x in g], inner_iters=1, converged=True, stop_reason="converged",
                       rel_halfwidth=summary.rel_halfwidth, wall_s=0.5) for g in groups]
    elem = {"float16": 2, "bfloat16": 2, "float32": 4}[spec.dtype]
    io = 4 * spec.batch * spec.heads * spec.seq * spec.head_dim * elem
    # math materialises the S x S score matrix; the fused kernels stay linear in S.
    extra = spec.batch * spec.heads * spec.seq * spec.seq * elem * 2 if spec.backend == "math" else io // 8
    peak = io + extra if spec.device == "cuda" else None
    return CaseResult(
        case=spec,
        status="ok",
        timing=Timing(method="cuda_graph" if spec.device == "cuda" else "perf_counter", fallback_reason=None,
                      target_rel_ci=0.01, warmup_calls=20, repetitions=reps, summary=summary, bootstrap_seed=BOOTSTRAP_SEED),
        throughput=throughput(spec, summary.median_ms),
        memory=Memory(predicted_bytes=io, peak_allocated_bytes=peak, peak_reserved_bytes=None if peak is None else peak * 2,
                      free_bytes_before=None, total_bytes=None),
        correctness=Correctness(reference="float64", rel_error=float(rng.uniform(2e-4, 6e-4)) if spec.dtype == "float16"
                                else float(rng.uniform(1e-7, 4e-7)), tolerance=2e-3, passed=True, bitwise_repeat=bitwise),
        integrity=passing_integrity(), started_at="2025-10-13T20:25:25+00:00", finished_at="2025-10-13T20:25:26+00:00",
        harness_version="0.1.0",
    )


# --------------------------------------------------------------------------- integrity (schema 4)
def passing_integrity(rel_error: float = 3e-4, tolerance: float = 2e-3, roofline: float = 2.4, host: float = 1.01) -> Integrity:
    """What the harness records for an honest case: every check passed, with its numbers."""
    return Integrity(checks=[
        IntegrityCheck("timed_outputs", True, f"timed replays' outputs on 3 input sets: max rel. error {rel_error:g}",
                       value=rel_error, bound=tolerance),
        IntegrityCheck("output_alias", True, "outputs not aliased to inputs"),
        IntegrityCheck("census_vs_eager", True, "same kernels and launches as an eager call", value=1.0, bound=1.0),
        IntegrityCheck("roofline", True, f"median {roofline:g}x the roofline time", value=roofline, bound=1 / 1.5),
        IntegrityCheck("host_clock", True, f"host per call / event median {host:g}", value=host, bound=1.5),
        IntegrityCheck("timer_tamper", True, "timers unchanged"),
    ], input_sets=3, refreshes=2)


def failed_integrity(name: str = "timed_outputs", value: float = 0.9, bound: float = 2e-3) -> Integrity:
    """A passing record but for one check, failed: the case is invalid."""
    good = passing_integrity()
    checks = [IntegrityCheck(c.name, False, f"{c.name}: {value:g} against the bound {bound:g}", value=value, bound=bound)
              if c.name == name else c for c in good.checks]
    return replace(good, checks=checks)


def as_schema4(src: Path, dst: Path, *, status: str = "ok", integrity: Integrity | None = None,
               reason: str | None = None, backend: str | None = None, seq: int | None = None,
               ok_integrity: Integrity | None = None) -> Path:
    """Copy a results folder (e.g. a committed schema-3 run) as the harness writes it from schema 4:
    every case file at version 4 with a passing integrity record (`ok_integrity`), and the selected
    cases (backend and/or seq; none when neither is given) given `status`, `integrity` and `reason`
    instead. The manifest is rewritten, the host's outputs (verdict.*, report.*) left out of it."""
    from artifact.results.folder import write_manifest

    shutil.copytree(src, dst)
    selected = backend is not None or seq is not None
    for p in sorted((dst / storage.CASES_DIR).glob("*.json")):
        case = replace(load_record(p, CaseResult), schema_version=4)
        if case.status == "ok":
            case = replace(case, integrity=ok_integrity if ok_integrity is not None else passing_integrity())
        if selected and (backend is None or case.case.backend == backend) and (seq is None or case.case.seq == seq):
            case = replace(case, status=status, integrity=integrity, reason=reason)
        storage.write_record(p, case)
    write_manifest(dst)
    return dst


def env_record(device: str = "cuda", gpu_name: str = L4, cc: str = "8.9", machine: str = "m1",
               driver: str = "550.90.07", tf32: bool = False) -> EnvRecord:
    gpu = GpuInfo(name=gpu_name, uuid=f"GPU-{machine}", compute_capability=cc, sm_count=58, memory_bytes=23_000_000_000) if device == "cuda" else None
    return EnvRecord(
        created_at="2025-10-13T20:25:00+00:00", harness_version="0.1.0", device=device, gpu=gpu,
        nvidia_driver_version=driver if device == "cuda" else None, cuda_driver_version="12.4" if device == "cuda" else None,
        cuda_runtime_version="12.1" if device == "cuda" else None, torch_cuda_build="12.1" if device == "cuda" else None,
        cudnn_version="8902" if device == "cuda" else None, gpu_state_before=None, gpu_state_after=None,
        software={"python": "3.11.7", "torch": "2.2.1+cu121"},
        host={"cpu_model": "AMD EPYC", "hostname_sha256_8": machine},
        in_container=True,
        lock={"matmul_allow_tf32": tf32, "cudnn_allow_tf32": False, "deterministic_algorithms": True, "cudnn_deterministic": True},
        lock_failures={},
        unavailable={} if device == "cuda" else {"nvidia_driver_version": "run on the CPU"},
    )


def write_folder(out: Path, env: EnvRecord, cases: list[CaseResult]) -> Path:
    storage.write_record(out / storage.ENV_FILE, env)
    for c in cases:
        storage.write_case(out, c)
    storage.write_manifest(out)
    return out


def l4_run(out: Path, run: int, seqs=SEQS, backends=tuple(BACKEND_FACTOR), machine: str | None = None, **env_kw) -> Path:
    """Run `run` (0: the seed's baseline sweep, 1: its full_enhanced runs) as a results folder."""
    source = _RUN_SOURCE[run]
    rng = np.random.default_rng(1000 + run)
    cases = []
    for s in seqs:
        base = seed_samples(s, source)
        for b in backends:
            spec = CaseSpec(workload="sdpa", backend=b, batch=32, heads=8, seq=s, head_dim=64, dtype="float16", device="cuda")
            draw = rng.choice(base, size=base.size, replace=True) * BACKEND_FACTOR[b]
            cases.append(case_result(spec, [draw], rng))
    return write_folder(out, env_record(machine=machine or f"m{run}", **env_kw), cases)


def cpu_run(out: Path, run: int = 0) -> Path:
    """A CPU run shaped like `harness bench --profile smoke --device cpu`, timings from the L4
    samples stretched to CPU scale (only its shape matters where this is used)."""
    rng = np.random.default_rng(2000 + run)
    cases = []
    for s, src in ((256, 256), (512, 512), (1024, 1024)):
        base = seed_samples(src, _RUN_SOURCE[run]) * 40.0
        for b in ("math", "flash", "default"):
            spec = CaseSpec(workload="sdpa", backend=b, batch=2, heads=4, seq=s // 4, head_dim=32, dtype="float32", device="cpu")
            draw = rng.choice(base, size=base.size, replace=True) * {"math": 1.0, "flash": 0.4, "default": 0.4}[b]
            cases.append(case_result(spec, [draw], rng))
    return write_folder(out, env_record(device="cpu", machine=f"c{run}"), cases)


def scale_cases(src: Path, dst: Path, factor: float, *, backend: str | None = None, seq: int | None = None) -> Path:
    """Copy a results folder and make the selected cases (all when neither is given) `factor`
    times slower, samples, summary and throughput alike, with the manifest rewritten. Other files
    (ceilings.json above all) are left as measured."""
    shutil.copytree(src, dst)
    for p in sorted((dst / storage.CASES_DIR).glob("*.json")):
        case = load_record(p, CaseResult)
        if (backend is not None and case.case.backend != backend) or (seq is not None and case.case.seq != seq):
            continue
        if case.timing is None:
            continue
        reps = [replace(r, samples_ms=[x * factor for x in r.samples_ms]) for r in case.timing.repetitions]
        s = case.timing.summary
        summary = replace(s, median_ms=s.median_ms * factor, mean_ms=s.mean_ms * factor, std_ms=s.std_ms * factor,
                          min_ms=s.min_ms * factor, max_ms=s.max_ms * factor, ci_low_ms=s.ci_low_ms * factor,
                          ci_high_ms=s.ci_high_ms * factor)
        t = case.throughput
        case = replace(case, timing=replace(case.timing, repetitions=reps, summary=summary),
                       throughput=replace(t, tflops=t.tflops / factor, gbps=t.gbps / factor))
        storage.write_record(p, case)
    storage.write_manifest(dst)
    return dst


def shared_watch(pid: int = 424242, mib: float = 714.0, sm: int | None = 62) -> Watch:
    """What the harness's watch records for a case timed beside another process (issue 17)."""
    return Watch(batches=12, discarded_foreign=1, discarded_throttled=0,
                 foreign=[GpuProcess(pid=pid, used_memory_mib=mib, sm_util_pct=sm, name="python3")],
                 shared=True, throttled=False, waited_s=10.0, sm_mhz_threshold=1485.0)


SHARED_WHY = "shared GPU: timed while another process was on the GPU (PID 424242 (python3): 714 MiB, 62% of the SMs)"


def with_machine(folder: Path, *, backend: str | None = None, seq: int | None = None, watch: Watch | None = None,
                 status: str | None = None, reason: str | None = None, ceilings_watch: Watch | None = None,
                 power_limit_w: float | None = None) -> Path:
    """Give a schema-4 folder's selected cases (backend and/or seq) a watch record and, when given,
    a status and reason; its ceilings a watch; its env.json another enforced power limit. Every
    record becomes schema 5; the manifest is rewritten."""
    from artifact.results.folder import write_manifest

    for p in sorted((folder / storage.CASES_DIR).glob("*.json")):
        case = replace(load_record(p, CaseResult), schema_version=5)
        if (backend is None or case.case.backend == backend) and (seq is None or case.case.seq == seq) and watch is not None:
            case = replace(case, watch=watch, status=status or case.status, reason=reason if status else case.reason)
        storage.write_record(p, case)
    ceil = folder / storage.CEILINGS_FILE
    if ceilings_watch is not None and ceil.is_file():
        storage.write_record(ceil, replace(load_record(ceil, CeilingsRecord), watch=ceilings_watch, schema_version=5))
    if power_limit_w is not None:
        env = load_record(folder / storage.ENV_FILE, EnvRecord)
        state = replace(env.gpu_state_before or GpuState(), power_limit_w=power_limit_w, power_default_limit_w=700.0)
        storage.write_record(folder / storage.ENV_FILE, replace(env, gpu_state_before=state))
    write_manifest(folder)
    return folder
