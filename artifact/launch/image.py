"""The benchmark image: its name, building it (online or offline), and reading back what it is.

Offline builds need no registry and no network: the base comes from docker/make_base.sh
(debootstrap + docker import) and the wheels from docker/wheelhouse.sh, both cached under
~/.cache/gpu-kernel-artifact; the build itself runs with networking off, which proves it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from artifact import __version__
from artifact.errors import ArtifactError
from artifact.launch.docker_engine import sdk, translated
from artifact.launch.gitinfo import GitInfo, git_info
from artifact.launch.imagearchive import load_normalized, sha256_file

IMAGE_REPO = "gpu-kernel-artifact"
# Which torch build the image carries: one hash-locked requirements file per variant,
# docker/requirements-<variant>.lock. "cuda" exists once `make lock VARIANT=cuda` has been run.
KNOWN_VARIANTS = ("cpu", "cuda")
LABEL_PREFIX = "org.gpu-kernel-artifact"


def check_variant(variant: str) -> None:
    if variant not in KNOWN_VARIANTS:
        raise ArtifactError(f"--variant: {variant!r} is not one of {', '.join(KNOWN_VARIANTS)}")


# The base image of online builds; the Dockerfile's default, repeated for run.json and doctor.
ONLINE_BASE = ("docker.io/library/debian:bookworm-slim@sha256:"
               "abd67ffcfa541b485a3dff59865ab629aa048a6c613e639d36e7456b0b229241")


def default_image(variant: str = "cpu") -> str:
    return f"{IMAGE_REPO}:{__version__}-{variant}"


def source_root() -> Path:
    """The checkout that holds the Dockerfile (the launcher is installed editable from it)."""
    here = Path(__file__).resolve().parents[1]
    if (here / "Dockerfile").is_file():
        return here
    cwd = Path.cwd()
    if (cwd / "Dockerfile").is_file():
        return cwd
    raise ArtifactError(f"no Dockerfile in {here} or {cwd}: building the image needs the source checkout; "
                        "run `artifact build` from the repository root")


@dataclass
class ImageInfo:
    """What run.json records about the image a container ran."""

    ref: str
    id: str
    repo_digests: list[str] = field(default_factory=list)
    size_bytes: Optional[int] = None
    version: Optional[str] = None
    revision: Optional[str] = None
    created: Optional[str] = None
    base_name: Optional[str] = None
    base_digest: Optional[str] = None
    base_rootfs: Optional[str] = None  # the base's first layer digest: content-addressed, so reproducible
    torch_variant: Optional[str] = None
    cuda_version: Optional[str] = None
    lock: Optional[str] = None  # the lock it was built from: "requirements-cuda.lock sha256:..."


def get_image(client: Any, ref: str) -> Any:
    """The engine's image object for `ref`; one line naming the build command when it is absent."""
    docker = sdk()
    with translated(f"looking up image {ref}"):
        try:
            return client.images.get(ref)
        except docker.errors.ImageNotFound:
            raise ArtifactError(f"image {ref} is not on this machine; build it with `artifact build --offline` "
                                "(no registry needed) or `make image`") from None


def image_info(client: Any, ref: str) -> ImageInfo:
    img = get_image(client, ref)
    labels = img.labels or {}
    return ImageInfo(
        ref=ref,
        id=img.id,
        repo_digests=list(img.attrs.get("RepoDigests") or []),
        size_bytes=img.attrs.get("Size"),
        version=labels.get("org.opencontainers.image.version"),
        revision=labels.get("org.opencontainers.image.revision"),
        created=labels.get("org.opencontainers.image.created"),
        base_name=labels.get("org.opencontainers.image.base.name"),
        base_digest=labels.get("org.opencontainers.image.base.digest"),
        base_rootfs=labels.get(f"{LABEL_PREFIX}.base.rootfs"),
        torch_variant=labels.get(f"{LABEL_PREFIX}.torch-variant"),
        cuda_version=labels.get(f"{LABEL_PREFIX}.cuda-version"),
        lock=labels.get(f"{LABEL_PREFIX}.lock"),
    )


def torch_variant(client: Any, ref: str) -> Optional[str]:
    """The image's torch build (its label; "unknown" if unlabelled), or None if there is no such image."""
    docker = sdk()
    with translated(f"looking up image {ref}"):
        try:
            img = client.images.get(ref)
        except docker.errors.ImageNotFound:
            return None
    return (img.labels or {}).get(f"{LABEL_PREFIX}.torch-variant", "unknown")


# --------------------------------------------------------------------------- offline inputs
def _run_script(script: Path, what: str, env: Optional[dict[str, str]] = None) -> str:
    """Run one of docker/*.sh; its last stdout line is its result, its stderr goes to ours."""
    proc = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, stderr=sys.stderr, text=True,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise ArtifactError(f"{what} failed ({script} exited {proc.returncode}; its error is above)",
                            exit_code=proc.returncode if proc.returncode == 2 else 1)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if not lines:
        raise ArtifactError(f"{what}: {script} printed no result")
    return lines[-1].strip()


def offline_base(root: Path) -> str:
    return _run_script(root / "docker" / "make_base.sh", "making the offline base image")


def locked_variants(root: Path) -> list[str]:
    return sorted(p.name[len("requirements-"):-len(".lock")] for p in (root / "docker").glob("requirements-*.lock"))


def wheelhouse(root: Path, variant: str) -> Path:
    env = {"PYTHON": sys.executable, "VARIANT": variant}
    path = Path(_run_script(root / "docker" / "wheelhouse.sh", "downloading the wheelhouse", env))
    if not path.is_dir():
        raise ArtifactError(f"docker/wheelhouse.sh named {path}, which is not a folder")
    return path


# --------------------------------------------------------------------------- build context
def _dockerignore(root: Path) -> list[str]:
    path = root / ".dockerignore"
    if not path.is_file():
        return []
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def build_context(root: Path, epoch: int, wheels: Optional[Path] = None) -> tempfile.SpooledTemporaryFile:
    """The build context as an uncompressed tar: the checkout filtered by .dockerignore, plus the
    wheelhouse under docker/wheelhouse/ when given. Names are sorted and every entry gets mtime
    `epoch` and owner 0:0, so the same sources give the same context byte for byte."""
    from docker.utils.build import exclude_paths

    files = sorted(exclude_paths(str(root), _dockerignore(root), dockerfile="Dockerfile"))
    entries: list[tuple[str, Path]] = [(rel, root / rel) for rel in files]
    if wheels is not None:
        entries += [(f"docker/wheelhouse/{p.name}", p) for p in sorted(wheels.glob("*.whl"))]
    fileobj = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    with tarfile.open(fileobj=fileobj, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for arcname, path in sorted(entries):
            info = tar.gettarinfo(str(path), arcname=arcname)
            info.mtime = epoch
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isdir():
                tar.addfile(info)
            elif info.isfile():
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
            elif info.issym():
                tar.addfile(info)
    fileobj.seek(0)
    return fileobj


def source_date_epoch(git: GitInfo) -> int:
    """SOURCE_DATE_EPOCH if set, else the commit time, else 0: never the wall clock."""
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        if not env.isdigit():
            raise ArtifactError(f"SOURCE_DATE_EPOCH={env!r} is not a whole number of seconds; unset it or fix it")
        return int(env)
    return git.commit_time or 0


def cuda_version_of_lock(lock: Path) -> str:
    """The CUDA runtime a lock installs (nvidia-cuda-runtime-cuXX==A.B...), or "none"."""
    m = re.search(r"^nvidia-cuda-runtime(?:-cu\d+)?==(\d+)\.(\d+)", lock.read_text(), flags=re.MULTILINE)
    return f"{m.group(1)}.{m.group(2)}" if m else "none"


@dataclass
class BuildRequest:
    offline: bool
    variant: str = "cpu"
    tag: Optional[str] = None
    base: Optional[str] = None  # override the base image (online: any pinned ref; offline: a local image)
    nocache: bool = False


def build(client: Any, req: BuildRequest, log: Callable[[str], None]) -> ImageInfo:
    """Build the image; stream the builder's output to `log`; return what was built."""
    check_variant(req.variant)
    root = source_root()
    lock = root / "docker" / f"requirements-{req.variant}.lock"
    if not lock.is_file():
        raise ArtifactError(f"{lock} is missing (locked variants: {', '.join(locked_variants(root)) or 'none'}); "
                            f"generate it with `make lock VARIANT={req.variant}` on a machine that reaches PyPI")
    tag = req.tag or default_image(req.variant)
    git = git_info(root)
    epoch = source_date_epoch(git)
    revision = git.commit or "unknown"
    if git.dirty:
        revision += "-dirty"

    wheels = None
    if req.offline:
        base = req.base or offline_base(root)
        wheels = wheelhouse(root, req.variant)
        with translated(f"looking up the offline base {base}"):
            base_image = client.images.get(base)
        # make_base.sh loads the base with a fixed config, so its id is a function of its root
        # filesystem tarball, whose sha256 is the layer digest.
        base_digest = base_image.id
        base_rootfs = ",".join(base_image.attrs.get("RootFS", {}).get("Layers") or []) or "unknown"
    else:
        base = req.base or ONLINE_BASE
        base_digest = base.split("@", 1)[1] if "@" in base else "unpinned"
        base_rootfs = "unknown"  # known once pulled; the index digest above pins it

    buildargs = {
        "BASE_IMAGE": base,
        "BASE_DIGEST": base_digest,
        "BASE_ROOTFS": base_rootfs,
        "WHEELS": "local" if req.offline else "online",
        "SOURCE_DATE_EPOCH": str(epoch),
        "VERSION": __version__,
        "REVISION": revision,
        "CREATED": datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "TORCH_VARIANT": req.variant,
        "CUDA_VERSION": cuda_version_of_lock(lock),
        "LOCK_SHA256": sha256_file(lock),
    }
    log(f"build: {tag} from {base} ({'offline' if req.offline else 'online'}, revision {revision})")
    # The image as built and its install stage (the venv: the slow part) are tagged, so neither
    # is a dangling image: they are the cache of the next build, and `artifact gc --images`
    # keeps them. The image under `tag` is the built one with its config fixed (below).
    context = build_context(root, epoch, wheels)
    try:
        install_id = _build_one(client, context, f"{tag}-build", None, buildargs, req.nocache, req.offline, log)
    finally:
        context.close()
    if install_id:
        with translated(f"tagging the install stage {install_id}"):
            client.api.tag(install_id, *f"{tag}-install".rsplit(":", 1))
    else:  # the builder's output did not name the stage: build it again, all cache hits
        context = build_context(root, epoch, wheels)
        try:
            _build_one(client, context, f"{tag}-install", "install", buildargs, False, req.offline, lambda line: None)
        finally:
            context.close()
    # The config the builder wrote records when and in which containers it ran; written again
    # without that, the image id depends only on the files and the settings (imagearchive.py).
    with translated(f"fixing the config of {tag}"):
        image_id, digest = load_normalized(client, f"{tag}-build", tag, epoch, log)
    log(f"build: {tag} = {image_id} (config {digest})")
    return image_info(client, tag)


# The classic builder prints " ---> <id>" after each step; the last one before the final stage's
# `FROM base` (the Dockerfile's only FROM without AS) is the install stage's image.
_STEP_ID = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
_FINAL_FROM = re.compile(r"^Step \d+/\d+ : FROM base$")


_FROM = re.compile(r"^\s*FROM\s+\S+(?:\s+AS\s+(\S+))?", re.IGNORECASE)
_ARG = re.compile(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


def declared_args(dockerfile: str, target: Optional[str]) -> set[str]:
    """The ARGs a build of `target` (None: every stage) declares: the ones before the first FROM
    and those of each stage up to the target. The builder warns about every other build-arg."""
    names: set[str] = set()
    stage: Optional[str] = None  # None: before the first FROM
    for line in dockerfile.splitlines():
        m = _FROM.match(line)
        if m:
            if target is not None and stage == target.lower():
                break
            stage = (m.group(1) or "").lower()
            continue
        a = _ARG.match(line)
        if a:
            names.add(a.group(1))
    return names


def _build_one(client: Any, context: Any, tag: str, target: Optional[str], buildargs: dict[str, str],
               nocache: bool, offline: bool, log: Callable[[str], None]) -> Optional[str]:
    """Build; the install stage's image id when the output names it."""
    # A build-arg no built stage declares only earns the builder's "were not consumed" warning.
    dockerfile = source_root() / "Dockerfile"
    if dockerfile.is_file():
        wanted = declared_args(dockerfile.read_text(encoding="utf-8"), target)
        buildargs = {k: v for k, v in buildargs.items() if k in wanted}
    tail: list[str] = []
    last_id = install_id = None
    with translated(f"building image {tag}"):
        stream = client.api.build(
            fileobj=context, custom_context=True, tag=tag, target=target, buildargs=buildargs, rm=True,
            forcerm=True, decode=True, pull=False, nocache=nocache, use_config_proxy=False,
            # Offline means offline: RUN steps get no network at all, so nothing can sneak in.
            network_mode="none" if offline else None,
        )
        for chunk in stream:
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                step = next((t for t in reversed(tail) if t.startswith("Step ")), "")
                raise ArtifactError(f"image build failed{' at ' + step if step else ''}: {' '.join(str(detail).split())}")
            text = chunk.get("stream")
            if text:
                for line in text.splitlines():
                    if line.strip():
                        tail = (tail + [line.strip()])[-50:]
                        log(line.rstrip())
                    m = _STEP_ID.match(line.rstrip())
                    if m:
                        last_id = m.group(1)
                    elif _FINAL_FROM.match(line.strip()):
                        install_id = last_id
    return install_id

