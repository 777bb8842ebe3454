"""`artifact reproduce`: the reviewer's one command after set-up (`make reproduce` calls it).

It looks at this machine's GPU (NVML, no torch), picks the shipped references that fit it and the
plan the primary one names (artifact/shipped.py), runs that plan through `artifact run` (the pinned
container when Docker can give it a GPU, else natively), and checks the results against every
fitting reference. It says at each step what it chose and why.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from artifact.errors import ArtifactError


def this_command() -> str:
    """How the user reached this CLI: `artifact` when that is on PATH, else the path they ran
    (`make reproduce` runs .venv-reproduce/bin/artifact, which is not on PATH)."""
    import shutil

    argv0 = sys.argv[0] if sys.argv else ""
    found = shutil.which("artifact")
    if Path(argv0).name == "artifact" and (found is None or Path(found).resolve() != Path(argv0).resolve()):
        return argv0
    return "artifact"


def reproduce(
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default results/<UTC time>)."),
    runtime: str = typer.Option("auto", help="auto (docker if it can give a GPU, else native), docker, or native."),
    image: Optional[str] = typer.Option(None, help="Image to run in (default: this version's image for the hardware)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would run and be checked; run nothing."),
    gpu_hour_price: Optional[float] = typer.Option(None, "--gpu-hour-price", min=0.0, help="Price of one GPU-hour: say what the run cost."),
    resume: bool = typer.Option(False, "--resume", help="Complete an interrupted reproduction in --out (finished cases kept), then check it."),
    allow_shared_gpu: bool = typer.Option(False, "--allow-shared-gpu", help="Measure even though another process is on the GPU (refused by default, exit 4); the cases timed beside it are invalid and the verdict INVALID, exit 4."),
) -> None:
    """Measure what the shipped reference for this machine describes, then check every fitting reference."""
    from artifact import shipped
    from artifact.commands.check import check_selected
    from artifact.launch.run import EXIT_INTERRUPTED, RunOptions, default_out, launch

    hw = shipped.this_machine()
    sel = shipped.select(hw)
    say = lambda s: print(f"reproduce: {s}", flush=True)  # noqa: E731
    say(f"hardware: {hw.describe()}")
    for fit in sel.fits:
        say(f"reference {Path(fit.reference.path).name}: {fit.why}")
    if not sel.fits:
        say("no shipped reference fits this machine: the results will be measured but not checked")
    say(f"measuring {sel.run_why}")
    if dry_run:
        return
    plan = shipped.plan_path(sel.run)
    if plan is not None and not plan.is_file():
        raise ArtifactError(f"{plan}: the plan named by {sel.primary.reference.path if sel.primary else 'the selection'} "
                            "is missing; restore it from the repository")
    if resume and out is None:
        raise ArtifactError("--resume: give the interrupted run's folder with --out (results/<time>)")
    out = out or default_out()
    opts = RunOptions(runtime=runtime, out=out, plan=plan, profile=sel.run.profile if plan is None else None, resume=resume,
                      image=image, argv=list(sys.argv), harness_args=["--allow-shared-gpu"] if allow_shared_gpu else [])
    code = launch(opts, echo=lambda s: print(s, flush=True), note=lambda s: print(s, file=sys.stderr, flush=True))
    if code == EXIT_INTERRUPTED:
        # The reviewer's next step completes the run and checks it, with the command they ran.
        again = [this_command(), "reproduce", "--resume", "--out", str(out)] + (["--allow-shared-gpu"] if allow_shared_gpu else [])
        say(f"interrupted: `{shlex.join(again)}` completes the run and checks it")
    if code:
        raise typer.Exit(code)
    from artifact.results.folder import load_run_info

    info = load_run_info(out)
    if info is not None and info.cost is not None:
        c = info.cost
        price = f", {c.gpu_seconds / 3600 * gpu_hour_price:.4f} at {gpu_hour_price:g} per GPU-hour" if gpu_hour_price is not None else ""
        say(f"the run took {c.wall_s:g} s and {c.gpu_seconds:g} GPU-seconds{price} (per phase: run.json, and the report)")
    if not sel.fits:
        say(f"measurements are in {out}, unchecked; `artifact report {out}` summarises them")
        return
    raise typer.Exit(check_selected(out, out, say=say))


def register(app: typer.Typer) -> None:
    app.command()(reproduce)
