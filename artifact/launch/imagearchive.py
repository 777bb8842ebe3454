"""Images as archives in `docker save` format, written by us: the deterministic base image, the
fixed config that makes a build's image id reproducible, and the archive a reviewer loads.

Docker names an image by the sha256 of its config, and the config a build leaves behind records
when it was built and by which build container. We write that config again from what matters
(architecture, os, the runtime config, the layers' digests, the history without times) with
every time set to SOURCE_DATE_EPOCH, and load it: the engine keeps the layers it already has, so
for the classic image store the archive needs no layer data at all.

Stdlib only (docker/make_base.sh runs `python3 -m artifact.launch.imagearchive base` before anything
else is installed); the functions that talk to the engine take a DockerClient.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Optional

# The runtime settings an image config carries (OCI image spec, "config"); the rest of what
# `docker inspect` shows under Config (hostname, attach flags, the parent image) describes the
# build container, not the image.
RUNTIME_KEYS = ("User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels",
                "StopSignal", "Healthcheck", "Shell", "ArgsEscaped")
DOCKER_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def config_bytes(config: dict[str, Any]) -> bytes:
    """The canonical serialisation: its sha256 is the image id."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def config_digest(config: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(config_bytes(config)).hexdigest()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_archive(out: IO[bytes], config: dict[str, Any], tags: list[str],
                  layers: Iterable[tuple[str, Optional[Path]]]) -> str:
    """A `docker load` archive: manifest.json, the config, and each layer at its path (a layer
    given as None is left out: the engine must already have it). Returns the config digest."""
    data = config_bytes(config)
    digest = hashlib.sha256(data).hexdigest()
    layers = list(layers)
    manifest = [{"Config": f"{digest}.json", "RepoTags": tags, "Layers": [name for name, _ in layers]}]
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, f"{digest}.json", data)
        for name, path in layers:
            if path is not None:
                info = tar.gettarinfo(str(path), arcname=name)
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
        _add(tar, "manifest.json", json.dumps(manifest, sort_keys=True).encode())
    return "sha256:" + digest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- the offline base
def base_config(layer_sha256: str, epoch: int, comment: str) -> dict[str, Any]:
    """What `docker import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8'` would record,
    less the import time: so the base's id is a function of its root filesystem tarball."""
    created = iso(epoch)
    return {
        "architecture": DOCKER_ARCH.get(platform.machine(), platform.machine()),
        "os": "linux",
        "config": {"Cmd": ["/bin/bash"], "Env": ["LANG=C.UTF-8"]},
        "created": created,
        "history": [{"created": created, "comment": comment}],
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_sha256}"]},
    }


# --------------------------------------------------------------------------- a build's fixed config
def normalized_config(attrs: dict[str, Any], history: list[dict[str, Any]], epoch: int) -> dict[str, Any]:
    """The image config of a built image without what records the build itself.

    `attrs` is `docker inspect`'s view, `history` the engine's history (newest first). The
    history keeps each step's command and comment; every time becomes `epoch`."""
    created = iso(epoch)
    runtime = {k: v for k, v in (attrs.get("Config") or {}).items() if k in RUNTIME_KEYS and v not in (None, "", [], {})}
    diff_ids = list((attrs.get("RootFS") or {}).get("Layers") or [])
    steps = []
    for h in reversed(history):
        step: dict[str, Any] = {"created": created}
        if h.get("CreatedBy"):
            step["created_by"] = h["CreatedBy"]
        if h.get("Comment"):
            step["comment"] = h["Comment"]
        if not h.get("Size"):
            step["empty_layer"] = True
        steps.append(step)
    if sum(not s.get("empty_layer") for s in steps) != len(diff_ids):
        # A step that made a layer of 0 bytes would read as empty: then one plain entry per layer.
        steps = [{"created": created, "created_by": f"layer {i + 1} of {len(diff_ids)}"} for i in range(len(diff_ids))]
    config = {
        "architecture": attrs.get("Architecture") or DOCKER_ARCH.get(platform.machine(), platform.machine()),
        "os": attrs.get("Os") or "linux",
        "config": runtime,
        "created": created,
        "history": steps,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    if attrs.get("Variant"):
        config["variant"] = attrs["Variant"]
    return config


def _layer_names(diff_ids: list[str]) -> list[str]:
    return [f"{d.split(':', 1)[1]}/layer.tar" for d in diff_ids]


class _Chunks(io.RawIOBase):
    """A file-like view of an iterator of byte chunks (the SDK's `image.save()`)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def load_normalized(client: Any, image_ref: str, tag: str, epoch: int, log: Callable[[str], None],
                    full: bool = False) -> tuple[str, str]:
    """Load `image_ref` again under `tag` with its normalized config; (engine id, config digest).

    First without layer data (the classic image store reuses the layers it has); an engine that
    needs the layers gets them from `docker save` (slower: the whole image passes through)."""
    img = client.images.get(image_ref)
    config = normalized_config(img.attrs, client.api.history(img.id), epoch)
    digest = config_digest(config)
    if not full:
        buf = io.BytesIO()
        write_archive(buf, config, [tag], [(name, None) for name in _layer_names(config["rootfs"]["diff_ids"])])
        try:
            loaded = client.images.load(buf.getvalue())
            return loaded[0].id, digest
        except Exception as exc:  # e.g. the containerd image store wants every layer in the archive
            log(f"build: the engine did not take the config alone ({' '.join(str(exc).split())[:200]}); "
                "passing the layers through docker save")
    with tempfile.TemporaryFile() as out:
        _rewrite_saved(img.save(named=False), config, tag, out)
        out.seek(0)
        loaded = client.images.load(out)
    return loaded[0].id, digest


def _rewrite_saved(chunks: Iterator[bytes], config: dict[str, Any], tag: str, out: IO[bytes]) -> None:
    """Copy a `docker save` stream's layers into a new archive with `config` (legacy or OCI layout)."""
    with tempfile.TemporaryDirectory() as tmp:
        kept: dict[str, Path] = {}
        manifest = None
        with tarfile.open(fileobj=io.BufferedReader(_Chunks(chunks), 1 << 20), mode="r|") as saved:
            for member in saved:
                src = saved.extractfile(member) if member.isfile() else None
                if src is None:
                    continue
                if member.name == "manifest.json":
                    manifest = json.load(src)
                elif member.name.endswith("/layer.tar") or member.name.startswith("blobs/"):
                    path = Path(tmp) / f"{len(kept)}"
                    with src, open(path, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    kept[member.name] = path
        if not manifest:
            raise ValueError("docker save gave no manifest.json")
        layers = [(name, kept[name]) for name in manifest[0]["Layers"]]
        write_archive(out, config, [tag], layers)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m artifact.launch.imagearchive", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("base", help="write the `docker load` archive of the offline base to stdout")
    b.add_argument("tarball", type=Path, help="the root filesystem tarball (docker/make_base.sh)")
    b.add_argument("ref", help="repository:tag to load it as")
    b.add_argument("epoch", type=int, help="its creation time (SOURCE_DATE_EPOCH)")
    b.add_argument("comment", help="its history comment")
    args = ap.parse_args(argv)
    config = base_config(sha256_file(args.tarball), args.epoch, args.comment)
    diff = config["rootfs"]["diff_ids"][0]
    out = sys.stdout.buffer
    write_archive(out, config, [args.ref], [(_layer_names([diff])[0], args.tarball)])
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
