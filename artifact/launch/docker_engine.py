"""The Docker engine through the Docker SDK: connecting, reading its versions, and turning its
errors into one line that says what is wrong and how to fix it.

Every call into the SDK from the launcher goes through `connect()` and `translated()`, so no
daemon error reaches the user as a traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

from artifact.errors import ArtifactError

# device_requests (the API behind `docker run --gpus`) needs API 1.40 (Docker 19.03).
MIN_API_VERSION = "1.40"
DEFAULT_SOCKET = "/var/run/docker.sock"

# Known daemon messages -> what they mean and the fix. Matched in order, case-insensitively,
# against the daemon's explanation (or the exception text).
KNOWN_ERRORS: list[tuple[str, str]] = [
    (r'could not select device driver "[^"]*" with capabilities: \[\[gpu\]\]',
     "the NVIDIA Container Toolkit is not installed or not configured for Docker, so containers cannot "
     "get a GPU; install nvidia-container-toolkit, run `sudo nvidia-ctk runtime configure --runtime=docker` "
     "and restart Docker, or run without GPUs (--gpus none / --runtime native)"),
    (r"unknown or invalid runtime name: nvidia",
     "Docker has no `nvidia` runtime; install the NVIDIA Container Toolkit and run "
     "`sudo nvidia-ctk runtime configure --runtime=docker`, then restart Docker"),
    (r"nvidia-container-cli: requirement error: unsatisfied condition: cuda>=?([0-9.]+)",
     "the host NVIDIA driver is too old for the CUDA in this image (needs CUDA {0}); upgrade the driver "
     "or build the image for an older CUDA"),
    (r"nvidia-container-cli: initialization error: (?:nvml error: )?driver (?:not loaded|error)",
     "the NVIDIA driver is not loaded on the host; check `nvidia-smi` works, install or load the driver"),
    (r"nvidia-container-cli: device error: ([^:\s]+): unknown device",
     "GPU {0} does not exist on this host; list GPUs with `nvidia-smi -L` and pass existing ids to --gpus"),
    (r"No such image: (\S+)",
     "image {0} is not on this machine; build it with `artifact build --offline` (or `make image`)"),
    (r"pull access denied|manifest unknown|repository does not exist",
     "the registry refused the pull or has no such image; check the image reference, or build offline "
     "with `artifact build --offline`"),
    (r"dial tcp|no such host|TLS handshake timeout|i/o timeout|network is unreachable",
     "the Docker daemon cannot reach the registry; build offline with `artifact build --offline`"),
    (r"invalid reference format",
     "the image reference is malformed; use repository:tag or repository@sha256:digest"),
    (r"no space left on device",
     "the Docker data disk is full; free space with `docker system prune` (and `artifact gc`)"),
    (r"permission denied.*docker\.sock|docker\.sock.*permission denied",
     "permission denied on the Docker socket; add your user to the `docker` group "
     "(`sudo usermod -aG docker $USER`, then log in again) or run as root"),
]


def explain(message: str) -> Optional[str]:
    """The one-line explanation of a known daemon error, or None if it is not a known one."""
    for pattern, text in KNOWN_ERRORS:
        m = re.search(pattern, message, flags=re.IGNORECASE)
        if m:
            return text.format(*m.groups())
    return None


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def socket_path() -> Optional[str]:
    """The unix socket the SDK will use (DOCKER_HOST or the default), or None for tcp/ssh hosts."""
    host = os.environ.get("DOCKER_HOST", f"unix://{DEFAULT_SOCKET}")
    if host.startswith("unix://"):
        return host[len("unix://"):]
    return None


# Only `artifact run` can do without Docker; build, export and gc cannot, so they do not offer it.
NATIVE_ADVICE = ", or use --runtime native"


def _connection_error(exc: BaseException, native: bool = False) -> ArtifactError:
    """Why the daemon could not be reached, judged from the socket and the exception chain."""
    text = _one_line(repr(exc))
    alt = NATIVE_ADVICE if native else ""
    sock = socket_path()
    where = sock or os.environ.get("DOCKER_HOST", "")
    start = "start it (`sudo systemctl start docker`, or `sudo dockerd &` where there is no systemd)"
    if sock is not None and not os.path.exists(sock):
        return ArtifactError(f"Docker daemon not reachable: socket {sock} does not exist, so the daemon is "
                             f"not running or not installed; install docker.io and {start}{alt}")
    if "PermissionError" in text or "Permission denied" in text:
        return ArtifactError(f"Docker daemon not reachable: permission denied on {where}; add your user to the "
                             "`docker` group (`sudo usermod -aG docker $USER`, then log in again) or run as root")
    if "ConnectionRefused" in text or "Connection refused" in text:
        return ArtifactError(f"Docker daemon not reachable: {where} refuses connections, so the daemon has "
                             f"stopped; {start}{alt}")
    if "Timeout" in text or "timed out" in text:
        return ArtifactError(f"Docker daemon not reachable: {where} did not answer in time; check `docker info`, "
                             f"restart the daemon{alt}")
    return ArtifactError(f"Docker daemon not reachable at {where}: {text}; check `docker info`{alt}")


def sdk():
    """The docker module, or a one-line error saying how to install it."""
    try:
        import docker  # noqa: F401
    except ImportError:
        raise ArtifactError("the Docker SDK for Python is not installed; `pip install docker` "
                            "(it is a dependency of this package: `pip install -e .`)") from None
    return docker


def connect(timeout: float = 30.0, native: bool = False):
    """A DockerClient talking to the daemon of DOCKER_HOST (or the default socket); `native`: the
    caller can run without Docker (`artifact run`), so its errors offer --runtime native."""
    docker = sdk()
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        raise _connection_error(exc, native) from None
    except Exception as exc:  # requests' connection errors, OSError from the socket
        raise _connection_error(exc, native) from None
    return client


def error_message(exc: BaseException, doing: str) -> str:
    """One line for an SDK exception raised while `doing` something."""
    raw = getattr(exc, "explanation", None) or str(exc)
    known = explain(str(raw)) or explain(str(exc))
    if known:
        return f"{doing}: {known}"
    name = type(exc).__name__
    if name in ("ConnectionError", "ProtocolError") or "Connection aborted" in str(exc) or "Connection refused" in str(exc):
        return f"{doing}: {_connection_error(exc)}"
    return f"{doing}: Docker said: {_one_line(str(raw))}"


@contextlib.contextmanager
def translated(doing: str) -> Iterator[None]:
    """Turn any SDK or connection error inside the block into an ArtifactError naming `doing`."""
    docker = sdk()
    try:
        yield
    except ArtifactError:
        raise
    except (docker.errors.DockerException, OSError) as exc:
        raise ArtifactError(error_message(exc, doing)) from None
    except Exception as exc:
        # requests' exceptions (ConnectionError, ReadTimeout) are not DockerExceptions.
        if type(exc).__module__.startswith(("requests", "urllib3")):
            raise ArtifactError(error_message(exc, doing)) from None
        raise


@dataclass
class EngineInfo:
    """What run.json records about the engine."""

    engine_version: Optional[str]
    api_version: Optional[str]
    min_api_version: Optional[str]
    os: Optional[str]
    kernel: Optional[str]
    runtimes: list[str] = field(default_factory=list)
    default_runtime: Optional[str] = None
    host: Optional[str] = None


def engine_info(client: Any) -> EngineInfo:
    with translated("reading the Docker engine version"):
        version = client.version()
        info = client.info()
    return EngineInfo(
        engine_version=version.get("Version"),
        api_version=version.get("ApiVersion"),
        min_api_version=version.get("MinAPIVersion"),
        os=info.get("OperatingSystem"),
        kernel=info.get("KernelVersion"),
        runtimes=sorted((info.get("Runtimes") or {}).keys()),
        default_runtime=info.get("DefaultRuntime"),
        host=os.environ.get("DOCKER_HOST", f"unix://{DEFAULT_SOCKET}"),
    )


def api_at_least(version: Optional[str], minimum: str = MIN_API_VERSION) -> bool:
    def parse(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", v)[:2])

    return version is not None and parse(version) >= parse(minimum)
