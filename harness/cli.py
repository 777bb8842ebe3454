"""`harness`: the in-container command line.

    harness bench --profile smoke --out results/
    harness bench --profile full --out results/          (on a GPU)
    harness bench --plan plan.yaml --out results/
    harness bench --seq 128,512 --backends flash,cudnn --dtype float16 --out results/
    harness env --out results/

Exit codes: 0 the sweep ran (each case's own status is in its file), 2 unusable input,
130 interrupted (every finished case is kept; --resume completes the rest).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Optional

import typer

from harness.envlock import prepare_process_env
from harness.errors import HarnessError
from harness.helptext import install as _plain_help

_plain_help()

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Measure GPU kernels properly: locked environment, device timing, statistics, memory.")


_INSTALL_HINT = {
    "triton": "pip install -e '.[harness,triton]' (Triton ships with CUDA builds of torch on Linux)",
    "torch": "pip install -e '.[harness]'",
}


def _resolve_device(requested: str) -> str:
    import torch

    if requested not in ("auto", "cuda", "cpu"):
        raise HarnessError(f"--device: must be auto, cuda or cpu, got {requested!r}")
    has_gpu = torch.cuda.is_available()
    if requested == "cuda" and not has_gpu:
        raise HarnessError("--device cuda: no CUDA GPU is visible to torch; run on a GPU host (docker: --gpus all) or use --device cpu")
    if requested == "auto":
        return "cuda" if has_gpu else "cpu"
    return requested


def _on_sigterm(signum, frame):  # noqa: ARG001
    # docker stop sends SIGTERM: treat it like Ctrl-C so finished cases and the manifest are kept.
    raise KeyboardInterrupt


@app.command()
def bench(
    out: Path = typer.Option(..., "--out", help="Output folder (env.json, cases/, manifest.json)."),
    profile: Optional[str] = typer.Option(None, help="smoke (CPU-friendly, <1 min) or full (the GPU sweep)."),
    plan_file: Optional[Path] = typer.Option(None, "--plan", help="YAML plan file (see harness/plans/)."),
    seq: Optional[list[str]] = typer.Option(None, "--seq", help="Sequence lengths, e.g. --seq 128 --seq 512 or --seq 128,512."),
    backends: str = typer.Option("flash,efficient,cudnn,math,default", help="Comma-separated SDPA backends."),
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
    backend_list = [b.strip() for b in backends.split(",") if b.strip()]
    # Validate everything torch-free first: bad input fails fast, before CUDA initialises.
    if profile and profile not in planmod.PROFILES:
        raise HarnessError(f"--profile: unknown profile {profile!r}; choose one of {', '.join(planmod.PROFILES)}")
    probe_device = "cpu" if device == "cpu" else "cuda"
    if plan_file:
        planmod.from_yaml(plan_file, probe_device)
    if seqs:
        planmod.from_flags(seqs=seqs, backends=backend_list, batch=batch, heads=heads, head_dim=head_dim,
                           dtype=dtype, causal=causal, cache=cache, device=probe_device)

    dev = _resolve_device(device)
    if profile:
        the_plan = planmod.from_profile(profile, dev)
    elif plan_file:
        the_plan = planmod.from_yaml(plan_file, dev)
    else:
        the_plan = planmod.from_flags(seqs=seqs, backends=backend_list, batch=batch, heads=heads, head_dim=head_dim,
                                      dtype=dtype, causal=causal, cache=cache, device=dev)
    from dataclasses import replace

    updates = {k: v for k, v in (("repeats", repeats), ("target_rel_ci", target_ci), ("max_time_s", max_time)) if v is not None}
    if updates:
        the_plan.timing = planmod.check_timing(replace(the_plan.timing, **updates), "timing (--repeats/--target-ci/--max-time)")
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

    raise typer.Exit(run_sweep(the_plan, dev, out, resume=resume, progress=not no_progress))


@app.command()
def env(
    out: Path = typer.Option(..., "--out", help="Folder to write env.json into."),
    device: str = typer.Option("auto", help="auto, cuda or cpu."),
    seed: int = typer.Option(1234),
) -> None:
    """Lock the environment and write env.json only."""
    from harness import envlock, fingerprint, storage

    dev = _resolve_device(device)
    settings, failures = envlock.lock(seed)
    record = fingerprint.collect(dev, settings, failures)
    storage.write_record(Path(out) / storage.ENV_FILE, record)
    typer.echo(f"wrote {Path(out) / storage.ENV_FILE}")


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
    import json

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
        cfg = None
        if config:
            try:
                cfg = json.loads(config)
            except json.JSONDecodeError as exc:
                raise HarnessError(f"--config: not valid JSON ({exc.msg}); give e.g. '{{\"BLOCK_M\": 128, ...}}'") from None
        spec = planmod.validate_case(CaseSpec(workload=workload, backend=backend, batch=batch, heads=heads, seq=seq,
                                              head_dim=head_dim, dtype=dtype, causal=causal, device="cuda", config=cfg), "case")
    record = ncu.profile_case(spec, out, seed=seed)
    for line in ncu.summary_lines(record):
        typer.echo(line)
    typer.echo(f"wrote {out / ('ncu-' + spec.case_id + '.json')}")


def _register_optional() -> None:
    try:
        from harness import optimize
    except ImportError:
        return
    if hasattr(optimize, "register"):
        optimize.register(app)


def main(argv: list[str] | None = None) -> int:
    prepare_process_env()
    signal.signal(signal.SIGTERM, _on_sigterm)
    _register_optional()
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
