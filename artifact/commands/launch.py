"""The launcher's commands: `artifact doctor | build | run | gc`. Thin: each parses its options
and calls the module that does the work. No torch on this side."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from artifact.errors import ArtifactError


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def doctor(
    image: Optional[str] = typer.Option(None, help="Image to check (default: this version's CUDA image on a host with "
                                                   "an NVIDIA driver, else the CPU image)."),
    gpus: str = typer.Option("all", help="GPU request for the preflight: all, or ids like 0,1."),
    preflight: bool = typer.Option(True, "--preflight/--no-preflight", help="Start a GPU preflight container."),
) -> None:
    """Check Docker, the NVIDIA runtime, the driver and the image; explain each problem with its fix."""
    from artifact.launch import doctor as doc
    from artifact.launch.image import default_image
    from artifact.launch.runtime_docker import parse_gpus

    variant = "cuda" if doc.host_driver()[0] else "cpu"
    checks = doc.run_checks(image or default_image(variant), parse_gpus(gpus), preflight=preflight)
    width = max(len(c.name) for c in checks)
    for c in checks:
        line = f"{c.status.upper():<4}  {c.name:<{width}}  {c.detail}"
        if c.fix and c.status != doc.OK:
            line += f"  -> fix: {c.fix}"
        print(line)
    code = doc.exit_code(checks)
    if code:
        failed = ", ".join(c.name for c in checks if c.status == doc.FAIL)
        raise ArtifactError(f"the docker path is not usable ({failed}); see the fixes above, or run natively: `artifact run --runtime native`",
                            exit_code=code)


def build(
    offline: bool = typer.Option(False, "--offline", help="No registry: debootstrap base + local wheelhouse."),
    variant: str = typer.Option("cpu", help="Which torch build (the lock docker/requirements-<variant>.lock)."),
    tag: Optional[str] = typer.Option(None, help="Image tag (default gpu-kernel-artifact:<version>-<variant>)."),
    base: Optional[str] = typer.Option(None, help="Base image instead of the pinned/debootstrapped one."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Rebuild every layer."),
    from_archive: Optional[Path] = typer.Option(None, "--from-archive",
                                                help="Load an image `artifact export` wrote (verified) instead of building."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not stream the builder's output."),
) -> None:
    """Build the benchmark image from this checkout's Dockerfile (online, or --offline), or load
    an exported one (--from-archive)."""
    from artifact.launch import docker_engine, image

    image.check_variant(variant)  # a wrong option, or a bad archive, is named before any engine is asked
    if from_archive is not None:
        from artifact.launch import archive

        if offline or tag or base or no_cache:
            raise ArtifactError("--from-archive loads an exported image as it is: leave out --offline, --tag, --base "
                                "and --no-cache")
        log = (lambda s: None) if quiet else _err
        verified = archive.verify(from_archive, log)
        record = archive.load(docker_engine.connect(timeout=600), from_archive, log=log, verified=verified)
        print(f"loaded {record.image_ref} = {record.image_id} from {from_archive} (sha256 {record.sha256} and labels "
              "verified)")
        return
    client = docker_engine.connect(timeout=600)
    req = image.BuildRequest(offline=offline, variant=variant, tag=tag, base=base, nocache=no_cache)
    info = image.build(client, req, log=(lambda s: None) if quiet else _err)
    size = f"{info.size_bytes / 1e9:.2f} GB" if info.size_bytes else "size unknown"
    print(f"built {info.ref} = {info.id} ({size}; base {info.base_name} {info.base_digest}; revision {info.revision})")


def export(
    image: Optional[str] = typer.Option(None, help="Image to export (default gpu-kernel-artifact:<version>-<variant>)."),
    variant: str = typer.Option("cuda", help="Which image, when --image is not given: cpu or cuda."),
    out: Optional[Path] = typer.Option(None, "--out", help="Archive file (default dist/<image>.tar.gz)."),
    level: int = typer.Option(6, "--level", min=1, max=9, help="gzip level: 1 is fastest, 9 smallest."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
) -> None:
    """Write the image as a compressed archive with its sha256 and labels, for a machine without
    network or registry: `artifact build --from-archive FILE` loads it there."""
    from artifact.launch import archive, docker_engine
    from artifact.launch.image import check_variant, default_image

    if image is None:
        check_variant(variant)
    ref = image or default_image(variant)
    path = out or archive.default_archive_path(ref)
    client = docker_engine.connect(timeout=600)
    record = archive.export(client, ref, path, log=(lambda s: None) if quiet else _err, level=level)
    print(f"exported {ref} = {record.image_id} to {path} ({record.size_bytes / 1e9:.2f} GB, sha256 {record.sha256}); "
          f"{archive.record_path(path).name} and {path.name}.sha256 beside it")


def run(
    ctx: typer.Context,
    runtime: str = typer.Option("auto", help="auto (docker if it can give a GPU, else native), docker, or native."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default results/<UTC time>)."),
    profile: Optional[str] = typer.Option(None, help="smoke or full (default smoke unless --plan or harness args)."),
    plan: Optional[Path] = typer.Option(None, "--plan", help="YAML plan file (mounted read-only into the container)."),
    resume: bool = typer.Option(False, "--resume", help="Complete an interrupted folder: finished cases are kept."),
    gpus: Optional[str] = typer.Option(None, help="GPUs for the container: all, none, or ids (0,1). auto: all if usable."),
    image: Optional[str] = typer.Option(None, help="Image to run (default gpu-kernel-artifact:<version>-cpu)."),
    timeout: float = typer.Option(7200.0, help="Wall-clock limit in seconds; the run is stopped after it (0: none)."),
    shm_size: str = typer.Option("1g", "--shm-size", help="Container /dev/shm size."),
    device: Optional[str] = typer.Option(None, help="Passed to the harness: auto, cuda or cpu."),
    shards: int = typer.Option(1, "--shards", min=1, help="Split the plan into N shards (with --gpus none: N CPU containers or processes; with --executor slurm: N jobs)."),
    each_gpu: bool = typer.Option(False, "--each-gpu", help="With several GPUs: the whole plan on every GPU (a cross-GPU comparison) instead of splitting it."),
    executor: str = typer.Option("local", "--executor", help="local, or slurm (one job per shard, through submitit)."),
    partition: Optional[str] = typer.Option(None, "--partition", help="Slurm partition for --executor slurm."),
    serial: Optional[bool] = typer.Option(None, "--serial/--concurrent", help="Run local shards one after another, or at once (default: at once on separate GPUs, one after another on the CPU)."),
) -> None:
    """Run the harness (in the pinned container or natively) and collect a self-describing folder.
    Arguments after `--` go to `harness bench` unchanged."""
    from artifact.launch.run import RunOptions, launch

    if executor not in ("local", "slurm"):
        raise ArtifactError(f"--executor: expected local or slurm, got {executor!r}")
    from artifact.launch import shards as shardmod

    devices = shardmod.sharding_devices(gpus)
    if executor == "slurm" or shards > 1 or each_gpu or (devices is not None and len(devices) > 1):
        raise typer.Exit(_run_sharded(list(ctx.args), runtime=runtime, out=out, profile=profile, plan=plan, resume=resume,
                                      devices=devices, shards=shards, each_gpu=each_gpu, executor=executor,
                                      partition=partition, serial=serial, timeout=timeout, image=image, device=device))
    opts = RunOptions(runtime=runtime, out=out, profile=profile, plan=plan, resume=resume, gpus=gpus, image=image,
                      timeout_s=None if timeout == 0 else timeout, shm_size=shm_size, device=device,
                      harness_args=list(ctx.args), argv=list(sys.argv))
    code = launch(opts, echo=lambda s: print(s, flush=True), note=_err)
    if code:
        raise typer.Exit(code)


# Measured on the 2-core CI machine (bench/shards/NOTES.md): a second CPU shard running at the same
# time moved a case's median by more than its run-to-run noise, so CPU shards run one after another
# unless --concurrent is given. Separate GPUs run at once: their interference is not measured here
# (no machine with several GPUs was lent), and run.json says so.
CPU_SERIAL_NOTE = ("the shards share one device (the CPU, or the one GPU a run without a --gpus list uses), so they run one "
                   "after another: on the 2-core CI machine a second CPU shard at the same time moved medians beyond "
                   "their noise (bench/shards/NOTES.md); --concurrent overrides")
GPU_CONCURRENT_NOTE = ("one shard per GPU, at once; how much a shard's times move while the other GPUs are busy was not "
                       "measured (no multi-GPU machine was available, issue 13): --serial rules it out")


def _run_sharded(harness_args: list[str], *, runtime: str, out: Optional[Path], profile: Optional[str],
                 plan: Optional[Path], resume: bool, devices: Optional[list[str]], shards: int, each_gpu: bool,
                 executor: str, partition: Optional[str], serial: Optional[bool], timeout: float,
                 image: Optional[str], device: Optional[str]) -> int:
    import time

    from artifact.launch import shards as shardmod
    from artifact.launch.run import RunOptions, default_out, validate
    from harness import storage

    if resume:
        raise ArtifactError("--resume: a sharded run is resumed shard by shard: "
                            "`artifact run --resume --out OUT/shard-I ... -- --shard I/N`")
    if each_gpu and not devices:
        raise ArtifactError("--each-gpu: give the GPUs (--gpus all or --gpus 0,1)")
    validate(RunOptions(runtime=runtime, profile=profile, plan=plan, device=device))
    out = (out or default_out()).resolve()
    base: list[str] = []
    if plan is not None:
        base += ["--plan", str(plan.resolve())]
    elif profile is not None:
        base += ["--profile", profile]
    if image is not None:
        base += ["--image", image]
    if device is not None:
        base += ["--device", device]
    base += ["--timeout", f"{timeout:g}"]
    base += ["--", *harness_args] if harness_args else []
    argv = list(sys.argv)
    if executor == "slurm":
        from artifact.launch import slurm_executor

        if devices is not None:
            raise ArtifactError("--executor slurm: Slurm gives each job its GPU; leave --gpus out")
        if out.exists() and any(out.iterdir()):
            raise ArtifactError(f"--out {out}: not empty; a sharded run starts in a new folder")
        out.mkdir(parents=True, exist_ok=True)
        started, t0 = storage.utc_now(), time.monotonic()
        run_base = ["--runtime", runtime, *base]
        _, jobs = slurm_executor.submit(shards, run_base, out, partition=partition)
        print(f"artifact: {shards} Slurm job(s) submitted: {', '.join(str(j.job_id) for j in jobs)}; waiting "
              "(Ctrl-C cancels them; finished shards are kept)", flush=True)
        try:
            outcome = slurm_executor.wait(jobs, out, log=lambda s: print(s, flush=True))
        except KeyboardInterrupt as exc:
            partial = getattr(exc, "outcome", None)
            if partial is not None:
                shardmod.write_slurm(out, partial, argv, started, t0)
            _err(f"artifact: interrupted; the jobs were cancelled; finished shards are in {out}")
            return 130
        record = shardmod.write_slurm(out, outcome, argv, started, t0)
    else:
        concurrent = (devices is not None) if serial is None else not serial
        note = GPU_CONCURRENT_NOTE if devices is not None else CPU_SERIAL_NOTE
        if serial is not None:
            note = "one after another (--serial)" if serial else "at once (--concurrent)"
        try:
            record = shardmod.run_local(base, out, devices=devices, shards=shards, each=each_gpu, runtime=runtime,
                                        concurrent=concurrent, concurrency_note=note, argv=argv,
                                        log=lambda s: print(f"artifact: {s}", flush=True))
        except KeyboardInterrupt:
            _err(f"artifact: interrupted; each shard kept the cases it finished, in {out}")
            return 130
    bad = [s for s in record.shards if not (s.status == "completed" and s.exit_code == 0)]
    if bad:
        _err(f"artifact: {len(bad)} of {len(record.shards)} shard(s) did not complete ("
             + "; ".join(f"shard {s.index}: {s.error or s.status}" for s in bad)
             + f"); the others' results are kept in {out}")
        return 1
    print(f"artifact: done: {len(record.shards)} shard(s) in {out} (run.json names each; `artifact check {out}`)", flush=True)
    return 0


def gc(
    dry_run: bool = typer.Option(False, "--dry-run", help="List, do not remove."),
    images: bool = typer.Option(False, "--images", help="Also remove this project's untagged (superseded) images."),
    min_age: float = typer.Option(3600.0, "--min-age", min=0.0, help="With --images: only those older than this many seconds (a younger one may be a stage of a build still running on the engine)."),
) -> None:
    """Remove containers the launcher left behind (found by their label), and with --images the
    project's superseded image builds."""
    from artifact.launch import docker_engine, runtime_docker

    client = docker_engine.connect()
    names = runtime_docker.gc(client, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    print(f"{verb} {len(names)} container(s){': ' + ', '.join(names) if names else ''}")
    if images:
        ids, size = runtime_docker.gc_images(client, dry_run=dry_run, min_age_s=min_age)
        print(f"{verb} {len(ids)} untagged image(s) of this project older than {min_age:g} s "
              f"({size / 1e9:.2f} GB before layer sharing)")


def register(app: typer.Typer) -> None:
    app.command()(doctor)
    app.command()(build)
    app.command()(export)
    # Only what follows `--` reaches the harness; an unknown option before it is a usage error.
    app.command(context_settings={"allow_extra_args": True})(run)
    app.command()(gc)
