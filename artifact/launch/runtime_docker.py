"""Run the harness in the pinned image through the Docker SDK, locked down, and always clean up.

Lifecycle: create -> start -> stream logs (a thread) -> wait with our own wall-clock timeout ->
collect -> remove, the removal in a `finally`. Ctrl-C or SIGTERM to the launcher stops the
container with SIGTERM first (the harness then keeps every finished case and exits 130), and
removes it either way. Results never live in the container: the output folder is bind-mounted.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from artifact import __version__
from artifact.errors import ArtifactError
from artifact.launch.docker_engine import sdk, translated

LABEL = "org.gpu-kernel-artifact.launcher"  # on every container we create; `artifact gc` keys on it
LABEL_RUN = "org.gpu-kernel-artifact.run-id"
LABEL_OUT = "org.gpu-kernel-artifact.out"
RESULTS = "/results"
PLAN_IN_CONTAINER = "/input/plan.yaml"
IMAGE_UID = 10001  # the image's unprivileged user (Dockerfile)
STOP_GRACE_S = 20  # SIGTERM to SIGKILL: enough for the harness to finish writing a case
# NVIDIA's recommended limits for PyTorch in containers (NGC user guide): unlimited locked memory
# for pinned host buffers, a 64 MiB stack; and shared memory larger than Docker's 64 MiB default,
# because DataLoader workers and NCCL use /dev/shm.
ULIMITS = (("memlock", -1, -1), ("stack", 67108864, 67108864))
DEFAULT_SHM = "1g"


def parse_gpus(spec: Optional[str]) -> Optional[list[str]]:
    """--gpus: "all" -> [] (every GPU), "0,1" / "GPU-uuid" -> those ids, "none"/None -> None (no GPU)."""
    if spec is None:
        return None
    spec = spec.strip()
    if spec in ("", "none"):
        return None
    if spec == "all":
        return []
    ids = [part.strip() for part in spec.split(",")]
    for part in ids:
        if not part or not (part.isdigit() or part.startswith(("GPU-", "MIG-"))):
            raise ArtifactError(f"--gpus: {spec!r} is not all, none, or a comma-separated list of GPU indices "
                                "or UUIDs (e.g. --gpus 0,1)")
    return ids


def device_requests(gpus: Optional[list[str]]) -> list[Any]:
    """The SDK form of `docker run --gpus`: count -1 means every GPU."""
    if gpus is None:
        return []
    docker = sdk()
    if gpus == []:
        return [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
    return [docker.types.DeviceRequest(device_ids=list(gpus), capabilities=[["gpu"]])]


@dataclass
class ContainerPlan:
    """Everything `containers.create` gets; built without a daemon, so it can be checked in tests."""

    image: str
    command: list[str]
    out: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    gpus: Optional[list[str]] = None
    shm_size: str = DEFAULT_SHM
    plan_file: Optional[Path] = None
    user: Optional[str] = None  # uid:gid; None: the image's own unprivileged user
    environment: dict[str, str] = field(default_factory=dict)
    # NVIDIA's limits are for CUDA's pinned buffers: a CPU container needs none, and asking for
    # them there only earned a warning on every run from engines that may not raise them.
    ulimits: Optional[tuple[tuple[str, int, int], ...]] = None  # None: ULIMITS with a GPU, else none
    mount_out: bool = True  # False for the preflight, which writes nothing

    def __post_init__(self) -> None:
        if self.ulimits is None:
            self.ulimits = ULIMITS if self.gpus is not None else ()

    @property
    def name(self) -> str:
        return f"gka-{self.run_id}"

    def create_kwargs(self) -> dict[str, Any]:
        docker = sdk()
        volumes = {str(self.out.resolve()): {"bind": RESULTS, "mode": "rw"}} if self.mount_out else {}
        if self.plan_file is not None:
            volumes[str(self.plan_file.resolve())] = {"bind": PLAN_IN_CONTAINER, "mode": "ro"}
        kwargs: dict[str, Any] = dict(
            image=self.image,
            command=self.command,
            name=self.name,
            labels={LABEL: __version__, LABEL_RUN: self.run_id, LABEL_OUT: str(self.out.resolve())},
            detach=True,
            # A measurement needs no network, and must not be able to fetch anything.
            network_mode="none",
            network_disabled=True,
            read_only=True,
            tmpfs={"/tmp": "rw,nosuid,nodev,size=2g"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            shm_size=self.shm_size,
            ulimits=[docker.types.Ulimit(name=n, soft=s, hard=h) for n, s, h in self.ulimits or ()],
            # docker-init as PID 1 forwards SIGTERM to the harness and reaps; the harness is not PID 1.
            init=True,
            pids_limit=4096,
            volumes=volumes,
            device_requests=device_requests(self.gpus),
            environment={"ARTIFACT_RUN_ID": self.run_id, **self.environment},
        )
        if self.user is not None:
            kwargs["user"] = self.user
        return kwargs


def container_user() -> Optional[str]:
    """Run as the invoking user so the results belong to them; as the image's user when that is root."""
    uid = os.getuid()
    if uid == 0:
        return None
    return f"{uid}:{os.getgid()}"


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for p in path.rglob("*"):
        os.lchown(p, uid, gid)


@dataclass
class ContainerOutcome:
    exit_code: Optional[int]
    status: str  # completed | interrupted | timeout | failed
    container_id: Optional[str]
    first_result_s: Optional[float]
    started_at_monotonic: float
    notes: list[str] = field(default_factory=list)  # what the launcher had to change, and why


# runc's "error setting rlimit type N": N is the RLIMIT_* number of Linux.
_RLIMIT_NAMES = {3: "stack", 8: "memlock"}


def _refused_rlimit(exc: BaseException) -> Optional[str]:
    m = re.search(r"error setting rlimit type (\d+)", str(getattr(exc, "explanation", None) or exc))
    return _RLIMIT_NAMES.get(int(m.group(1))) if m else None


def _create_and_start(client: Any, plan: ContainerPlan, notes: list[str], log: Callable[[str], None]) -> Any:
    """Create and start; if the engine may not raise a ulimit (a daemon without CAP_SYS_RESOURCE,
    as in some sandboxes and rootless setups), run with its default for that one and say so."""
    docker = sdk()
    while True:
        container = None
        try:
            with translated(f"creating the container from {plan.image}"):
                container = client.containers.create(**plan.create_kwargs())
            try:
                container.start()
            except docker.errors.APIError as exc:
                refused = _refused_rlimit(exc)
                if refused is None or not any(n == refused for n, _, _ in plan.ulimits or ()):
                    raise
                container.remove(force=True)
                container = None
                plan.ulimits = tuple(u for u in plan.ulimits or () if u[0] != refused)
                note = (f"the Docker engine was not allowed to raise the {refused} ulimit (a daemon without CAP_SYS_RESOURCE); "
                        f"ran with the engine's default {refused} limit instead of NVIDIA's recommendation")
                notes.append(note)
                log(f"launcher: {note}")
                continue
            return container
        except BaseException:
            if container is not None:
                try:
                    container.remove(force=True)
                except Exception:
                    pass
            raise


class _LogPump(threading.Thread):
    """Copies the container's output to the terminal (and a log) while the main thread waits."""

    def __init__(self, container: Any, sink: Callable[[str], None]):
        super().__init__(daemon=True, name="container-logs")
        self.container = container
        self.sink = sink
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        buf = b""
        try:
            for chunk in self.container.logs(stream=True, follow=True, stdout=True, stderr=True):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self.sink(line.decode("utf-8", "replace"))
            if buf:
                self.sink(buf.decode("utf-8", "replace"))
        except Exception as exc:  # the container went away under us: the wait reports that
            self.error = exc


def _first_result_watch(out: Path, t0: float, known: set[str]) -> Callable[[], Optional[float]]:
    """A poll function: seconds from t0 to the first new case file, once one exists."""
    seen: list[float] = []

    def poll() -> Optional[float]:
        if not seen:
            cases = out / "cases"
            if cases.is_dir() and any(p.name not in known for p in cases.glob("*.json")):
                seen.append(time.monotonic() - t0)
        return seen[0] if seen else None

    return poll


def run_container(client: Any, plan: ContainerPlan, *, timeout_s: Optional[float],
                  log: Callable[[str], None], t0: Optional[float] = None) -> ContainerOutcome:
    """Create, start, follow and remove one container; KeyboardInterrupt stops it and re-raises
    after cleanup, with the outcome attached as `exc.outcome`."""
    docker = sdk()
    t0 = time.monotonic() if t0 is None else t0
    out = plan.out
    hand_back = plan.user is None and os.getuid() == 0
    owner = (out.stat().st_uid, out.stat().st_gid)
    if hand_back:
        # Root on the host, unprivileged in the container: lend it the folder for the run.
        _chown_tree(out, IMAGE_UID, IMAGE_UID)
    known = {p.name for p in (out / "cases").glob("*.json")} if (out / "cases").is_dir() else set()
    first_result = _first_result_watch(out, t0, known)
    container = None
    exit_code: Optional[int] = None
    status = "failed"
    notes: list[str] = []
    try:
        with translated("starting the container"):
            container = _create_and_start(client, plan, notes, log)
        pump = _LogPump(container, log)
        pump.start()
        result: dict[str, Any] = {}

        def wait() -> None:
            try:
                result["value"] = container.wait()
            except Exception as exc:  # reported below, in the main thread
                result["error"] = exc

        waiter = threading.Thread(target=wait, daemon=True, name="container-wait")
        waiter.start()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while waiter.is_alive():
                waiter.join(0.2)
                first_result()
                if deadline is not None and time.monotonic() > deadline:
                    status = "timeout"
                    log(f"launcher: wall-clock timeout of {timeout_s:g} s reached; stopping the container")
                    with translated("stopping the container after the timeout"):
                        container.stop(timeout=STOP_GRACE_S)
                        result["value"] = container.wait(timeout=STOP_GRACE_S + 10)
                    break
        except KeyboardInterrupt as exc:
            status = "interrupted"
            log("launcher: interrupted; stopping the container (finished cases are kept)")
            # The exit code comes from a fresh wait on the stopped container, not from the waiter
            # thread: a join() that an exception interrupted can report a live thread as finished.
            try:
                container.stop(timeout=STOP_GRACE_S)
                exit_code = container.wait(timeout=STOP_GRACE_S + 10).get("StatusCode")
            except Exception as err:
                log(f"launcher: could not stop the container cleanly ({err}); removing it")
            exc.outcome = ContainerOutcome(exit_code, status, container.id, first_result(), t0, notes)  # type: ignore[attr-defined]
            raise
        if "error" in result:
            with translated("waiting for the container"):
                raise result["error"]
        if "value" in result:
            exit_code = result["value"].get("StatusCode")
        pump.join(5)
        first_result()
        if status != "timeout":
            status = "completed" if exit_code == 0 else ("interrupted" if exit_code == 130 else "failed")
        return ContainerOutcome(exit_code, status, container.id, first_result(), t0, notes)
    finally:
        if container is not None:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
            except Exception as exc:
                log(f"launcher: could not remove container {container.name}: {exc}; `artifact gc` removes it")
        if hand_back:
            _chown_tree(out, *owner)


def leftover_containers(client: Any) -> list[Any]:
    with translated("listing the launcher's containers"):
        return client.containers.list(all=True, filters={"label": LABEL})


def gc(client: Any, dry_run: bool = False) -> list[str]:
    """Remove every container the launcher made (by label), running or not; their names."""
    names = []
    for c in leftover_containers(client):
        names.append(c.name)
        if not dry_run:
            with translated(f"removing container {c.name}"):
                c.remove(force=True)
    return names


# Labels that only this project's images carry (the final image, and the build's install stage).
IMAGE_LABELS = ("org.opencontainers.image.title=gpu-kernel-artifact", "org.gpu-kernel-artifact.stage=install")


# An untagged image younger than this may be a stage of a build still running on the same engine
# (another checkout's, another session's): removing it broke that build ("unknown parent image
# ID", issue 19). Superseded builds are older than any build in progress.
GC_MIN_AGE_S = 3600.0


def _age_s(img: Any, now: float) -> float:
    from datetime import datetime

    created = str(img.attrs.get("Created") or "")
    try:
        # Docker writes RFC 3339 with nanoseconds; Python reads microseconds.
        head, _, frac = created.rstrip("Z").partition(".")
        stamp = datetime.fromisoformat(head + ("." + frac[:6] if frac else "") + "+00:00").timestamp()
    except ValueError:
        return 0.0  # unknown age: treated as new, so kept
    return now - stamp


def gc_images(client: Any, dry_run: bool = False, min_age_s: float = GC_MIN_AGE_S) -> tuple[list[str], int]:
    """Untagged images of this project (superseded builds and their install stages) older than
    `min_age_s`: ids, bytes. Younger ones may belong to a build in progress and are kept."""
    import time

    now = time.time()
    found: dict[str, int] = {}
    with translated("listing the project's untagged images"):
        for label in IMAGE_LABELS:
            for img in client.images.list(filters={"dangling": True, "label": label}):
                if _age_s(img, now) >= min_age_s:
                    found[img.id] = img.attrs.get("Size") or 0
    removed = []
    for image_id in found:
        if dry_run:
            removed.append(image_id)
            continue
        try:
            client.images.remove(image_id, noprune=False)
            removed.append(image_id)
        except sdk().errors.APIError:
            pass  # still used by a container or a child image: leave it
    return removed, sum(found[i] for i in removed)


def preflight_gpu(client: Any, image: str, gpus: Optional[list[str]] = None) -> None:
    """Start a throwaway container with the GPU request and the run's settings: the only reliable
    test that the NVIDIA runtime works (docker info can list a runtime that is broken).
    Raises ArtifactError with the daemon's explanation."""
    code, _ = run_in_image(client, image, ["true"], gpus if gpus is not None else [], label="preflight",
                           what="starting a GPU preflight container")
    if code != 0:
        raise ArtifactError(f"the GPU preflight container exited {code}; run `artifact doctor` for details")


def run_in_image(client: Any, image: str, command: list[str], gpus: Optional[list[str]],
                 timeout_s: float = 120, *, label: str = "check", what: Optional[str] = None) -> tuple[Optional[int], str]:
    """Run one short command in a throwaway container with the launcher's settings and the GPU
    request; (exit code, its output). Raises ArtifactError when the engine refuses to start it,
    prefixed with `what` (what was being done)."""
    plan = ContainerPlan(image=image, command=command, out=Path("/nonexistent"), mount_out=False, gpus=gpus)
    plan.run_id = f"{label}-{plan.run_id}"
    container = None
    try:
        with translated(what or f"starting a container of {image} with the GPU request"):
            container = _create_and_start(client, plan, [], lambda line: None)
            code = container.wait(timeout=timeout_s).get("StatusCode")
            output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        return code, output
    finally:
        if container is not None:
            try:
                container.remove(force=True)
            except Exception:
                pass
