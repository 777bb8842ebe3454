"""`harness`: the in-container command line.

    harness bench --profile smoke --out results/
    harness bench --profile full --out results/          (on a GPU)
    harness bench --plan plan.yaml --out results/
    harness bench --seq 128,512 --backends flash,cudnn --dtype float16 --out results/
    harness bench --workload mypkg.kernels:WORKLOAD --seq 512 --out results/   (a kernel of your own)
    harness env --out results/
    harness optimize --seq 512 --budget-s 120 --out results/opt     (the Triton kernel against SDPA)

Exit codes: 0 the sweep ran (each case's own status is in its file), 2 unusable input,
130 interrupted (every finished case is kept; --resume completes the rest).
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from harness import device as devices
from harness.envlock import prepare_process_env
from harness.errors import HarnessError
from harness.helptext import install as _plain_help
from harness.optimize.settings import OptimizeSettings, check_flags, check_kernel_supports, shape_spec

_plain_help()

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Measure GPU kernels properly: locked environment, device timing, statistics, memory.")


_INSTALL_HINT = {
    "triton": "pip install -e '.[harness,triton]' (Triton ships with CUDA builds of torch on Linux)",
    "torch": "pip install -e '.[harness]'",
}


def _config_json(text: str) -> dict[str, Any]:
    """--config: a kernel config given as a JSON object of tunables."""
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HarnessError(f"--config: not valid JSON ({exc.msg}); give e.g. '{{\"BLOCK_M\": 128, ...}}'") from None
    if not isinstance(cfg, dict):
        raise HarnessError("--config: expected a JSON object of tunables, e.g. '{\"BLOCK_M\": 128, ...}'")
    return cfg


def _on_sigterm(signum: int, frame: Any) -> None:  # noqa: ARG001
    # docker stop sends SIGTERM: treat it like Ctrl-C so finished cases and the manifest are kept.
    raise KeyboardInterrupt


@app.command()
def bench(
    out: Path = typer.Option(..., "--out", help="Output folder (env.json, cases/, manifest.json)."),
    profile: Optional[str] = typer.Option(None, help="smoke (CPU-friendly, <1 min) or full (the GPU sweep)."),
    plan_file: Optional[Path] = typer.Option(None, "--plan", help="YAML plan file (see harness/plans/)."),
    seq: Optional[list[str]] = typer.Option(None, "--seq", help="Sequence lengths, e.g. --seq 128 --seq 512 or --seq 128,512."),
    workload: str = typer.Option("sdpa", "--workload", help="sdpa, triton_attention, or your own as package.module:ATTR (docs/workload-api.md)."),
    backends: Optional[str] = typer.Option(None, help="Comma-separated backends (default: every backend of the workload)."),
    batch: int = typer.Option(32, min=1),
    heads: int = typer.Option(8, min=1),
    head_dim: int = typer.Option(64, "--head-dim", min=1),
    dtype: str = typer.Option("float16"),
    causal: bool = typer.Option(False, "--causal"),
    cache: str = typer.Option("warm", help="warm or cold (L2 flushed before each sample)."),
    device: str = typer.Option("auto", help="auto, cuda or cpu."),
    repeats: Optional[int] = typer.Option(None, min=1, help="Independent repetitions per case (fresh inputs and allocations)."),
    target_ci: Optional[float] = typer.Option(None, "--target-ci", help="Stop when the 95% CI half-width of the median is within this fraction."),
    max_time: Optional[float] = typer.Option(None, "--max-time", help="Seconds of sampling per repetition at most."),
    resume: bool = typer.Option(False, "--resume", help="Skip cases whose result file already exists."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Plain log lines instead of a progress bar."),
    no_correctness: bool = typer.Option(False, "--no-correctness", help="Skip the float64 correctness check."),
    no_census: bool = typer.Option(False, "--no-census", help="Skip the per-case kernel census (torch.profiler)."),
    no_ceilings: bool = typer.Option(False, "--no-ceilings", help="Skip measuring the device's matmul and copy ceilings."),
    shard_of: Optional[str] = typer.Option(None, "--shard", help="Measure shard I of N (I/N) of the plan: cases split by estimated work."),
    allow_shared_gpu: bool = typer.Option(False, "--allow-shared-gpu", help="Run even though another process is on the GPU (refused by default); every case timed beside it is invalid (shared GPU)."),
) -> None:
    """Measure every case of a profile, plan file or flag set; write one result file per case."""
    from harness import plan as planmod

    sources = [x for x in (profile, plan_file, seq) if x]
    if len(sources) > 1:
        raise HarnessError("give one of --profile, --plan or --seq, not several")
    if not sources:
        raise HarnessError("nothing to run: give --profile smoke|full, --plan FILE, or --seq ...")
    if dtype not in planmod.DTYPES:
        raise HarnessError(f"--dtype: unknown dtype {dtype!r}; choose from {', '.join(planmod.DTYPES)}")
    seqs = planmod.parse_positive_ints(seq, "--seq") if seq else None
    if workload != "sdpa" and not seqs:
        raise HarnessError("--workload goes with --seq (a plan file names its workloads itself)")
    from harness import workloads as workloadmod

    why = workloadmod.check_name(workload)
    if why:
        raise HarnessError(f"--workload: {why}")
    if backends is not None:
        backend_list = [b.strip() for b in backends.split(",") if b.strip()]
    else:
        # A user's workload declares its own: its module is imported (timers bound first).
        backend_list = list(workloadmod.backends_of(workload))
    # Validate everything torch-free first: bad input fails fast, before CUDA initialises.
    if profile and profile not in planmod.PROFILES:
        raise HarnessError(f"--profile: unknown profile {profile!r}; choose one of {', '.join(planmod.PROFILES)}")
    probe_device = "cpu" if device == "cpu" else "cuda"
    if plan_file:
        planmod.from_yaml(plan_file, probe_device)
    if seqs:
        planmod.from_flags(seqs=seqs, backends=backend_list, batch=batch, heads=heads, head_dim=head_dim,
                           dtype=dtype, causal=causal, cache=cache, device=probe_device, workload=workload)

    from harness.machine.gate import gate_gpu

    # Before torch and CUDA start: a GPU another process computes on is refused within seconds.
    gate = gate_gpu(device, allow_shared_gpu)
    dev = devices.resolve(device)
    if profile:
        the_plan = planmod.from_profile(profile, dev)
    elif plan_file:
        the_plan = planmod.from_yaml(plan_file, dev)
    else:
        assert seqs is not None  # one of the three sources was given (checked above)
        the_plan = planmod.from_flags(seqs=seqs, backends=backend_list, batch=batch, heads=heads, head_dim=head_dim,
                                      dtype=dtype, causal=causal, cache=cache, device=dev, workload=workload)
    from dataclasses import replace

    if repeats is not None or target_ci is not None or max_time is not None:
        t = the_plan.timing
        t = replace(t, repeats=t.repeats if repeats is None else repeats,
                    target_rel_ci=t.target_rel_ci if target_ci is None else target_ci,
                    max_time_s=t.max_time_s if max_time is None else max_time)
        the_plan.timing = planmod.check_timing(t, "timing (--repeats/--target-ci/--max-time)")
    if no_correctness:
        the_plan.check_correctness = False
    if no_census:
        the_plan.census = False
    if no_ceilings:
        the_plan.ceilings = False
    if shard_of is not None:
        from harness import shard

        index, count = shard.parse(shard_of)
        the_plan.cases = shard.select(the_plan.cases, index, count)
        the_plan.source += f" shard {index}/{count}"

    from harness.sweep import run_sweep

    raise typer.Exit(run_sweep(the_plan, dev, out, resume=resume, progress=not no_progress,
                               gate=gate if dev == "cuda" else None, allow_shared=allow_shared_gpu))


@app.command()
def env(
    out: Path = typer.Option(..., "--out", help="Folder to write env.json into."),
    device: str = typer.Option("auto", help="auto, cuda or cpu."),
    seed: int = typer.Option(1234),
) -> None:
    """Lock the environment and write env.json (and the manifest that hashes it) only."""
    from harness import storage
    from harness.sweep import start_folder

    start_folder(Path(out), devices.resolve(device), seed)
    typer.echo(f"wrote {Path(out) / storage.ENV_FILE}")


@app.command()
def scaffold(
    name: str = typer.Argument(..., help="Module name of your kernel's workload, e.g. my_attention."),
    parent: Path = typer.Option(Path("."), "--in", help="Folder to create NAME/ in (default: here)."),
) -> None:
    """Start a kernel of your own: NAME/ with the workload module, a plan and a test (docs/own-kernel.md)."""
    from harness.scaffold import scaffold as write

    for path in write(name, parent):
        typer.echo(f"wrote {path}")
    typer.echo(f"next: python -m pytest -q {parent / name}; then harness bench --plan {parent / name / 'plan.yaml'} "
               "(docs/own-kernel.md)")


@app.command()
def profile(
    case_file: Optional[Path] = typer.Argument(None, help="A case file (RESULTS/cases/<case_id>.json) to profile; or give the case by flags."),
    out: Path = typer.Option(..., "--out", help="Folder for ncu-<case_id>.ncu-rep and ncu-<case_id>.json."),
    workload: str = typer.Option("sdpa", help="With flags: sdpa or triton_attention."),
    backend: Optional[str] = typer.Option(None, help="With flags: the backend (flash, cudnn, ... or triton)."),
    seq: Optional[int] = typer.Option(None, min=1),
    batch: int = typer.Option(32, min=1),
    heads: int = typer.Option(8, min=1),
    head_dim: int = typer.Option(64, "--head-dim", min=1),
    dtype: str = typer.Option("float16"),
    causal: bool = typer.Option(False, "--causal"),
    config: Optional[str] = typer.Option(None, help="With flags: the candidate's config as JSON."),
    seed: int = typer.Option(1234),
) -> None:
    """Nsight Compute on one call of one case: throughput, occupancy, registers, the limiter ncu names."""
    from harness import ncu, storage
    from harness import plan as planmod
    from harness.errors import RecordError
    from harness.records import CaseResult, CaseSpec

    if case_file is not None:
        try:
            spec = storage.load_record(case_file, CaseResult).case
        except RecordError as exc:
            raise HarnessError(str(exc)) from None
    else:
        if backend is None or seq is None:
            raise HarnessError("give a case file, or the case by --backend and --seq (and --workload for the candidate)")
        cfg = _config_json(config) if config else None
        spec = planmod.validate_case(CaseSpec(workload=workload, backend=backend, batch=batch, heads=heads, seq=seq,
                                              head_dim=head_dim, dtype=dtype, causal=causal, device="cuda", config=cfg), "case")
    record = ncu.profile_case(spec, out, seed=seed)
    for line in ncu.summary_lines(record):
        typer.echo(line)
    typer.echo(f"wrote {out / ('ncu-' + spec.case_id + '.json')}")


@app.command()
def optimize(
    out: Path = typer.Option(..., "--out", help="Output folder (baseline.json, comparison.json, summary.md, ...)."),
    batch: int = typer.Option(32, min=1),
    heads: int = typer.Option(8, min=1),
    seq: int = typer.Option(512, min=1),
    head_dim: int = typer.Option(64, "--head-dim", min=1),
    dtype: str = typer.Option("float16", help="float16 or bfloat16."),
    causal: bool = typer.Option(False, "--causal"),
    budget_s: float = typer.Option(120.0, "--budget-s", help="Wall-clock seconds for the whole run."),
    target_speedup: float = typer.Option(1.10, "--target-speedup", help="Speedup over the best SDPA backend to aim for."),
    device: str = typer.Option("auto", help="auto, cuda or cpu (cpu: the Triton interpreter, tiny shapes only)."),
    seed: int = typer.Option(1234),
    reuse_tuned: bool = typer.Option(False, "--reuse-tuned", help="Measure the saved tuned config for this GPU and shape instead of searching."),
    tuned_file: Optional[Path] = typer.Option(None, "--tuned-file", help="A tuned_config.json to measure instead of searching."),
    config_json: Optional[str] = typer.Option(None, "--config", help="A config (JSON, every tunable) to measure instead of searching."),
    save_tuned: bool = typer.Option(False, "--save-tuned", help="Also save the winner into the harness's shipped tuned configs."),
    peak_tflops: Optional[float] = typer.Option(None, "--matmul-peak-tflops", help="Measured matmul peak, for the share-of-peak column."),
    ncu_when: str = typer.Option("target", "--ncu", help="Nsight Compute profile of the winner: target (when the target speedup is met), always, never."),
) -> None:
    """Search the Triton kernel's configs at one shape and compare the winner with the best SDPA backend."""
    import importlib.util

    if importlib.util.find_spec("triton") is None:
        # A plain `pip install -e '.[harness]'` has no Triton: say how to get it, not a traceback.
        raise HarnessError("harness optimize tunes a Triton kernel, and Triton is not installed here; "
                           "pip install -e '.[harness,triton]' (or use the benchmark image, which has it)")
    settings = OptimizeSettings(batch=batch, heads=heads, seq=seq, head_dim=head_dim, dtype=dtype, causal=causal,
                                device="cpu" if device == "cpu" else "cuda", budget_s=budget_s,
                                target_speedup=target_speedup, seed=seed, matmul_peak_tflops=peak_tflops, ncu=ncu_when)
    check_flags(settings)  # bad flags fail before torch loads
    settings.device = devices.resolve(device)
    devices.prepare_triton(settings.device)  # before the kernel module's first import
    check_flags(settings)  # again: "auto" may have become the CPU
    check_kernel_supports(settings)
    from harness import tuned

    if config_json is not None:
        settings.reuse = _config_json(config_json)
    elif tuned_file is not None:
        settings.reuse = tuned.load(tuned_file).config
    elif reuse_tuned:
        settings.reuse = _shipped_config(settings)
    if settings.reuse is not None:
        from harness.workloads.triton_attention import config_problem

        problem = config_problem(settings.reuse, shape_spec(settings))
        if problem:
            raise HarnessError(f"{tuned_file or 'tuned config'}: {problem}")
    import shlex

    from harness.optimize.run import run_optimize

    command = "harness " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    outcome = run_optimize(settings, out, log=typer.echo, source=command)
    if save_tuned:
        typer.echo(f"saved {tuned.save(outcome.tuned)}")


def _shipped_config(s: OptimizeSettings) -> dict[str, Any]:
    """--reuse-tuned: the shipped tuned config for this GPU and shape."""
    import torch

    from harness import tuned

    if s.device != "cuda":
        raise HarnessError("--reuse-tuned: tuned configs are per GPU; on the CPU give --tuned-file or search")
    name = torch.cuda.get_device_name()
    cc = ".".join(map(str, torch.cuda.get_device_capability()))
    spec = shape_spec(s)
    found = tuned.lookup(name, cc, spec)
    if found is None or (found.batch, found.heads, found.seq) != (s.batch, s.heads, s.seq):
        raise HarnessError(f"--reuse-tuned: no tuned config for {name} (sm {cc}) at {spec.shape_key} in "
                           f"{tuned.SHIPPED_DIR}; run without --reuse-tuned to search")
    return found.config


def main(argv: list[str] | None = None) -> int:
    prepare_process_env()
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        rv = app(args=argv, standalone_mode=False)
        if rv == 130:  # typer turns KeyboardInterrupt (and so our SIGTERM) into a silent Exit(130)
            print("error: interrupted; finished cases are kept, run again with --resume to complete", file=sys.stderr)
        return rv if isinstance(rv, int) else 0
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; finished cases are kept, run again with --resume to complete", file=sys.stderr)
        return 130
    except Exception as exc:
        try:
            import click
        except ImportError:  # typer >= 0.29 vendors click instead of depending on it
            from typer import _click as click

        if isinstance(exc, click.exceptions.ClickException):
            print(f"error: {exc.format_message()}", file=sys.stderr)
            return 2
        # typer's vendored click (typer >= 0.29) has no exceptions.Abort; looking it up there
        # crashed this handler and hid the real error.
        if isinstance(exc, (typer.Abort, getattr(click.exceptions, "Abort", typer.Abort))):
            print("error: interrupted; finished cases are kept, run again with --resume to complete", file=sys.stderr)
            return 130
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            print(f"error: the Python package {exc.name!r} is not installed; "
                  f"{_INSTALL_HINT.get(exc.name.split('.')[0], 'install it into this environment')}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
