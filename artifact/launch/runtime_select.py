"""Which runtime runs the harness, and why: `--runtime auto|docker|native`.

auto picks docker only when the measurement can run there on a GPU: the daemon answers, the
image is built, and a preflight container with the GPU request starts. Otherwise it picks native
and keeps the reason, which goes into run.json and is printed, so a reviewer knows which path
produced the numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from artifact.errors import ArtifactError

RUNTIMES = ("auto", "docker", "native")


@dataclass
class Choice:
    runtime: str  # docker | native
    reason: str
    client: Any = None  # the DockerClient when runtime is docker
    gpus: Optional[list[str]] = None  # what to request from Docker; None: no GPU


@dataclass
class Probes:
    """The checks auto runs, injectable so the decision can be tested without a daemon."""

    connect: Callable[[], Any]
    torch_variant: Callable[[Any, str], Optional[str]]  # the image's torch build; None: no such image
    preflight_gpu: Callable[[Any, str, Optional[list[str]]], None]
    host_gpu: Callable[[], bool] = lambda: True  # an NVIDIA driver answers on the host


def _host_gpu() -> bool:
    from artifact.launch.doctor import host_driver

    return bool(host_driver()[0])


def default_probes() -> Probes:
    from artifact.launch import docker_engine, image, runtime_docker

    return Probes(connect=lambda: docker_engine.connect(native=True), torch_variant=image.torch_variant,
                  preflight_gpu=runtime_docker.preflight_gpu, host_gpu=_host_gpu)


# On a host without an NVIDIA driver the GPU preflight can only fail, and its toolkit install
# advice is for a machine that has a GPU: the reason says what matters in one short line.
NO_GPU_REASON = ("auto: no NVIDIA GPU on this host, so the run is native on the CPU "
                 "(`artifact run --runtime docker --gpus none` measures in the CPU image)")


def choose(requested: str, image: str, gpus: Optional[list[str]], gpus_given: bool,
           probes: Optional[Probes] = None) -> Choice:
    """`gpus` is the parsed --gpus (None: none); `gpus_given` says whether the user set it."""
    if requested not in RUNTIMES:
        raise ArtifactError(f"--runtime: {requested!r} is not one of {', '.join(RUNTIMES)}")
    probes = probes or default_probes()
    if requested == "native":
        return Choice("native", "requested with --runtime native")
    if requested == "docker":
        client = probes.connect()  # its error is the clear one-liner
        if probes.torch_variant(client, image) is None:
            raise ArtifactError(f"image {image} is not on this machine; build it with `artifact build --offline` "
                                "or `make image`")
        return Choice("docker", "requested with --runtime docker", client, gpus)

    # auto
    if not gpus_given and not probes.host_gpu():
        return Choice("native", NO_GPU_REASON)
    try:
        client = probes.connect()
    except ArtifactError as exc:
        return Choice("native", f"auto: {exc}")
    try:
        variant = probes.torch_variant(client, image)
    except ArtifactError as exc:
        return Choice("native", f"auto: {exc}")
    if variant is None:
        return Choice("native", f"auto: Docker is reachable but image {image} is not built "
                                "(`artifact build --offline` or `make image`)")
    if gpus_given and gpus is None:
        return Choice("docker", "auto: Docker is reachable, the image is built, and --gpus none was given",
                      client, None)
    request = gpus if gpus is not None else []
    try:
        probes.preflight_gpu(client, image, request)
    except ArtifactError as exc:
        return Choice("native", f"auto: Docker is reachable but cannot give a container a GPU ({exc})")
    if variant == "cpu":
        return Choice("native", f"auto: image {image} carries a CPU-only torch, so a GPU measurement would not "
                                "use the GPU; build the CUDA image (`make image VARIANT=cuda`) to measure in Docker")
    return Choice("docker", "auto: Docker is reachable, the image is built, and a GPU preflight container "
                            "started", client, request)
