"""`artifact run`: choose the runtime, run the harness there, and leave a self-describing folder.

Whatever happens after the harness has started (success, failure, timeout, Ctrl-C, SIGTERM),
the folder gets run.json and a manifest that covers it; finished cases are never removed.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from artifact import __version__
from artifact.errors import ArtifactError
from artifact.launch.gitinfo import git_info
from artifact.results.folder import load_run_info, write_run_info
from artifact.results.runinfo import Attempt, RunInfo, host_facts, run_cost
from harness.machine.gate import EXIT_SHARED_GPU
from harness.storage import CASES_DIR, ENV_FILE, utc_now

EXIT_TIMEOUT = 124  # as coreutils' timeout
EXIT_INTERRUPTED = 130
LOG_FILE = "run.log"


@dataclass
class RunOptions:
    runtime: str = "auto"
    out: Optional[Path] = None
    profile: Optional[str] = None
    plan: Optional[Path] = None
    resume: bool = False
    gpus: Optional[str] = None  # as typed: all | none | 0,1 | None (not given)
    image: Optional[str] = None
    timeout_s: Optional[float] = 7200.0
    shm_size: str = "1g"
    device: Optional[str] = None
    harness_args: list[str] = field(default_factory=list)  # passed through after `--`
    argv: list[str] = field(default_factory=list)


def default_out() -> Path:
    return Path("results") / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def validate(opts: RunOptions) -> None:
    """Catch bad input on the host, before any container starts (torch-free)."""
    from harness import plan as planmod
    from harness.errors import HarnessError

    if opts.profile is not None and opts.profile not in planmod.PROFILES:
        raise ArtifactError(f"--profile: unknown profile {opts.profile!r}; choose one of {', '.join(planmod.PROFILES)}")
    if opts.plan is not None:
        if opts.profile is not None:
            raise ArtifactError("give --profile or --plan, not both")
        try:
            planmod.from_yaml(opts.plan, "cuda")
        except HarnessError as exc:
            raise ArtifactError(str(exc)) from None
    if opts.device is not None and opts.device not in ("auto", "cuda", "cpu"):
        raise ArtifactError(f"--device: must be auto, cuda or cpu, got {opts.device!r}")
    if opts.timeout_s is not None and opts.timeout_s <= 0:
        raise ArtifactError(f"--timeout: must be positive seconds (or 0 for none), got {opts.timeout_s:g}")


def check_out_folder(out: Path, resume: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ArtifactError(f"--out {out}: exists and is not a folder; choose another --out")
    has_results = (out / ENV_FILE).exists() or any((out / CASES_DIR).glob("*.json"))
    if has_results and not resume:
        raise ArtifactError(f"--out {out}: already holds results; add --resume to complete them, or choose a new --out")


def resume_command(opts: RunOptions, runtime: str, out: Path, image: Optional[str] = None) -> str:
    """The command line that completes this run: the same runtime, plan, GPUs and image, since a
    resume under other settings is refused (one folder, one environment); `auto` could choose
    another runtime on the second call, so the one used is named."""
    import shlex

    argv = ["artifact", "run", "--runtime", runtime, "--resume", "--out", str(out)]
    if opts.plan is not None:
        argv += ["--plan", str(opts.plan)]
    elif opts.profile is not None:
        argv += ["--profile", opts.profile]
    if opts.gpus is not None:
        argv += ["--gpus", opts.gpus]
    if runtime == "docker" and (image or opts.image):
        argv += ["--image", str(image or opts.image)]
    if opts.device is not None:
        argv += ["--device", opts.device]
    if opts.timeout_s != RunOptions.timeout_s:
        argv += ["--timeout", f"{opts.timeout_s or 0:g}"]
    if opts.shm_size != RunOptions.shm_size:
        argv += ["--shm-size", opts.shm_size]
    if opts.harness_args:
        argv += ["--", *opts.harness_args]
    return shlex.join(argv)


def resume_command_of(info: RunInfo) -> str:
    """resume_command for a folder's run.json (what `artifact check` advises for a cut-short run)."""
    o = info.options or {}
    opts = RunOptions(profile=o.get("profile"), plan=Path(o["plan"]) if o.get("plan") else None, gpus=o.get("gpus"),
                      image=o.get("image"), device=o.get("device"), timeout_s=o.get("timeout_s", RunOptions.timeout_s),
                      shm_size=o.get("shm_size") or RunOptions.shm_size, harness_args=list(o.get("harness_args") or []))
    return resume_command(opts, info.runtime, Path(o.get("out") or "OUT"))


def host_gate(gpus: list[str], allow_shared: bool) -> None:
    """The shared-GPU gate on the host, before a container starts: seconds, not a container
    start and an import later, and with the host's view of every process (inside a container
    NVML may list none but the container's). The harness gates again inside. The harness
    measures on the container's first GPU, so that one is checked."""
    from harness.machine.gate import SharedGpuError, check
    from harness.nvml import Nvml

    first = gpus[0] if gpus else "0"
    if first.startswith("MIG-"):
        return  # a MIG slice: NVML's process list is per parent GPU; the harness's gate decides
    nvml = Nvml(uuid=first) if first.startswith("GPU-") else Nvml(int(first))
    if not nvml.ok:
        return  # no NVML on the host: the harness's own gate still runs
    try:
        check(nvml, allow_shared)
    except SharedGpuError as exc:
        raise ArtifactError(str(exc), exit_code=EXIT_SHARED_GPU) from None


def harness_args(opts: RunOptions, out_arg: str, plan_arg: Optional[str], progress: bool) -> list[str]:
    args = ["bench", "--out", out_arg]
    if plan_arg is not None:
        args += ["--plan", plan_arg]
    elif opts.profile is not None:
        args += ["--profile", opts.profile]
    elif not opts.harness_args:
        args += ["--profile", "smoke"]
    if opts.device is not None:
        args += ["--device", opts.device]
    if opts.resume:
        args.append("--resume")
    if not progress:
        args.append("--no-progress")
    return args + list(opts.harness_args)


def wanted_variant(opts: RunOptions, gpus: Optional[list[str]]) -> str:
    """The image variant to default to: cuda when GPUs are asked for, or when auto runs on a host
    with an NVIDIA driver; cpu otherwise."""
    if gpus is not None:
        return "cuda"
    if opts.gpus is None and opts.runtime == "auto":
        from artifact.launch.doctor import host_driver

        return "cuda" if host_driver()[0] else "cpu"
    return "cpu"


class _Log:
    """Harness output to the terminal and, appended, to <out>/run.log."""

    def __init__(self, out: Path, echo: Callable[[str], None]):
        self.fh = open(out / LOG_FILE, "a", encoding="utf-8")
        self.echo = echo

    def __call__(self, line: str) -> None:
        self.echo(line)
        self.fh.write(line + "\n")
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


def _native_lock(note: Callable[[str], None]) -> tuple[Any, Optional[Path]]:
    """The lock this environment was installed from and the check of it, said once up front: a
    native run on packages that differ from the lock is allowed, but never silently."""
    from artifact.launch.runtime_native import installed_lock
    from harness import lockcheck

    path = installed_lock()
    if path is None:
        note("artifact: this Python was not installed from a lock (no ARTIFACT_LOCK_FILE, no requirements-*.lock "
             "in its venv): its packages are recorded in env.json but not checked; `make reproduce` installs the "
             "hash-locked set")
        return None, None
    try:
        status = lockcheck.check(lockcheck.read(path))
    except lockcheck.LockError as exc:
        raise ArtifactError(str(exc)) from None
    note(f"artifact: {lockcheck.summary(status)}")
    return status, path


def _sigterm_as_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def launch(opts: RunOptions, echo: Callable[[str], None] = print,
           note: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> int:
    """Run the harness; return the launcher's exit code (0, 2, 124, 130, or the harness's)."""
    from artifact.launch import runtime_select
    from artifact.launch.image import default_image

    t0 = time.monotonic()
    validate(opts)
    out = (opts.out or default_out()).resolve()
    check_out_folder(out, opts.resume)
    previous = load_run_info(out) if opts.resume else None

    from artifact.launch.runtime_docker import parse_gpus

    gpus = parse_gpus(opts.gpus)
    image = opts.image or default_image(wanted_variant(opts, gpus))
    choice = runtime_select.choose(opts.runtime, image, gpus, gpus_given=opts.gpus is not None)
    note(f"artifact: runtime {choice.runtime}: {choice.reason}")
    if previous is not None and previous.runtime != choice.runtime:
        raise ArtifactError(f"--resume: {out} was measured with runtime {previous.runtime}, this run would use "
                            f"{choice.runtime} ({choice.reason}); resume with --runtime {previous.runtime} "
                            "so one folder holds one environment, or start a new --out")

    if choice.runtime == "docker" and choice.gpus is not None and opts.device != "cpu":
        host_gate(choice.gpus, "--allow-shared-gpu" in opts.harness_args)

    image_info = engine = None
    if choice.runtime == "docker":
        from artifact.launch.docker_engine import engine_info
        from artifact.launch.image import image_info as read_image

        engine = engine_info(choice.client)
        image_info = read_image(choice.client, image)
        if previous is not None and previous.image is not None and previous.image.id != image_info.id:
            raise ArtifactError(f"--resume: {out} was measured with image {previous.image.id[:19]}, but {image} is now "
                                f"{image_info.id[:19]}; start a new --out (one folder, one image)")
    else:
        from artifact.launch.runtime_native import check_native_python

        check_native_python()
    package_lock, native_lock = _native_lock(note) if choice.runtime == "native" else (None, None)

    out.mkdir(parents=True, exist_ok=True)
    log = _Log(out, echo)
    started_at = utc_now()
    old_term = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    outcome: Any = None
    interrupted = False
    error: Optional[ArtifactError] = None
    if choice.runtime == "docker":
        from artifact.launch import runtime_docker

        cmd = harness_args(opts, runtime_docker.RESULTS, runtime_docker.PLAN_IN_CONTAINER if opts.plan else None,
                           progress=False)
        harness_command = ["docker", "run", image, *cmd]
    else:
        from artifact.launch import runtime_native

        cmd = harness_args(opts, str(out), str(opts.plan.resolve()) if opts.plan else None,
                           progress=sys.stdout.isatty())
        harness_command = runtime_native.harness_command(cmd)
    try:
        if choice.runtime == "docker":
            plan = runtime_docker.ContainerPlan(
                image=image, command=cmd, out=out, gpus=choice.gpus, shm_size=opts.shm_size,
                plan_file=opts.plan, user=runtime_docker.container_user())
            outcome = runtime_docker.run_container(choice.client, plan, timeout_s=opts.timeout_s, log=log, t0=t0)
        else:
            outcome = runtime_native.run_native(cmd, out, timeout_s=opts.timeout_s, log=log, t0=t0, lock=native_lock)
    except KeyboardInterrupt as exc:
        interrupted = True
        outcome = getattr(exc, "outcome", None)
    except ArtifactError as exc:  # could not start, or lost the engine: recorded, then reported
        error = exc
    finally:
        signal.signal(signal.SIGTERM, old_term)
        log.close()

    finished_at = utc_now()
    exit_code = outcome.exit_code if outcome else None
    status = "interrupted" if interrupted else (outcome.status if outcome else "failed")
    attempt = Attempt(started_at=started_at, finished_at=finished_at, wall_s=round(time.monotonic() - t0, 3),
                      exit_code=exit_code, status=status, runtime=choice.runtime,
                      container_id=getattr(outcome, "container_id", None), resumed=previous is not None,
                      first_result_s=outcome.first_result_s if outcome else None,
                      error=str(error) if error else None, notes=list(getattr(outcome, "notes", []) or []))
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items() if k != "argv"}
    options.update(out=str(out), image=image if choice.runtime == "docker" else None, gpus_requested=choice.gpus)
    info = RunInfo(
        launcher_version=__version__, argv=list(opts.argv), options=options, runtime=choice.runtime,
        runtime_reason=choice.reason, harness_command=harness_command, image=image_info, engine=engine,
        git=git_info(Path(__file__).resolve().parents[1]), host=host_facts(),
        started_at=previous.started_at if previous else started_at, finished_at=finished_at,
        exit_code=exit_code, status=status, attempts=(previous.attempts if previous else []) + [attempt],
        package_lock=package_lock,
    )
    info.cost = run_cost(out, sum(a.wall_s for a in info.attempts))
    write_run_info(out, info)

    if error is not None:
        raise error
    n_cases = len(list((out / CASES_DIR).glob("*.json")))
    if status == "completed":
        note(f"artifact: done: {n_cases} case file(s), env.json, run.json and manifest.json in {out}")
        return 0
    if status == "interrupted":
        note(f"artifact: interrupted: {n_cases} finished case(s) kept in {out}; "
             f"`{resume_command(opts, choice.runtime, out, image)}` completes the rest")
        return EXIT_INTERRUPTED
    if status == "timeout":
        raise ArtifactError(f"the run exceeded --timeout {opts.timeout_s:g} s and was stopped; {n_cases} finished "
                            f"case(s) kept in {out}; complete them with a longer limit: "
                            f"`{resume_command(replace(opts, timeout_s=2 * opts.timeout_s if opts.timeout_s else None), choice.runtime, out, image)}`",
                            exit_code=EXIT_TIMEOUT)
    if exit_code == 2:
        raise ArtifactError(f"the harness rejected its input (its error line is above); run.json in {out}")
    if exit_code == EXIT_SHARED_GPU:
        raise ArtifactError("the harness refused a GPU another process is on (its error line is above, and in "
                            f"{out / LOG_FILE}); rerun when it is idle, or pass --allow-shared-gpu", exit_code=EXIT_SHARED_GPU)
    raise ArtifactError(f"the harness exited with code {exit_code} (its output is above and in {out / LOG_FILE})",
                        exit_code=exit_code if isinstance(exit_code, int) and exit_code > 0 else 1)
