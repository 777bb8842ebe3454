"""The image as a file, for reviewers without network or registry (artifact evaluations archive
the image with the artifact): `artifact export` writes it, `artifact build --from-archive FILE` loads
it back and refuses anything that is not exactly what was exported.

    gpu-kernel-artifact-0.1.0-cuda.tar.gz          `docker save` of the image, gzip-compressed
    gpu-kernel-artifact-0.1.0-cuda.tar.gz.sha256   its sha256, in `sha256sum -c` format
    gpu-kernel-artifact-0.1.0-cuda.tar.gz.json     the record below: digest, image id, labels

Loading checks, in order: the file's sha256 against the record (a damaged or altered archive
stops here, before the engine sees it); the image config inside the archive against the
record's image id and labels; after the load, the engine's image id and labels again.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Optional

from artifact import __version__
from artifact.errors import ArtifactError
from artifact.launch.docker_engine import translated
from harness import versions
from harness.errors import RecordError
from harness.records import load_record
from harness.storage import utc_now, write_record

KIND_ARCHIVE = "image_archive"
CHUNK = 1 << 20


@dataclass
class ImageArchive:
    """<archive>.json: what an exported image archive holds, to verify it before loading it."""

    file: str  # the archive's file name (it is looked for beside this record)
    sha256: str  # of the archive file as written
    size_bytes: int
    image_ref: str  # the tag it was exported from, and is loaded back as
    image_id: str  # sha256 of the image config: the engine's id for it
    labels: dict[str, str]
    compression: str  # gzip
    exported_at: str
    exported_by: str  # artifact <version>
    schema_version: int = versions.current(KIND_ARCHIVE)
    kind: str = KIND_ARCHIVE


def default_archive_path(ref: str) -> Path:
    return Path("dist") / (ref.replace("/", "_").replace(":", "-") + ".tar.gz")


def record_path(archive: Path) -> Path:
    return archive.with_name(archive.name + ".json")


class _HashingWriter(io.RawIOBase):
    def __init__(self, fh: IO[bytes]):
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.sha.update(b)
        self.size += len(b)
        return self.fh.write(b)


def export(client: Any, ref: str, out: Path, log: Callable[[str], None], level: int = 6) -> ImageArchive:
    """Write `ref` as a gzip-compressed `docker save` archive, its .sha256 and its record."""
    from artifact.launch.image import get_image

    img = get_image(client, ref)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    size = img.attrs.get("Size") or 0
    log(f"export: {ref} = {img.id} ({size / 1e9:.2f} GB unpacked) -> {out}")
    try:
        with open(partial, "wb") as raw, translated(f"saving image {ref}"):
            hashing = _HashingWriter(raw)
            # mtime 0 and no file name in the gzip header: the same image gives the same bytes.
            with gzip.GzipFile(filename="", mode="wb", fileobj=hashing, compresslevel=level, mtime=0) as gz:
                for chunk in img.save(chunk_size=CHUNK, named=True):
                    gz.write(chunk)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    record = ImageArchive(file=out.name, sha256=hashing.sha.hexdigest(), size_bytes=hashing.size, image_ref=ref,
                          image_id=img.id, labels=dict(img.labels or {}), compression="gzip",
                          exported_at=utc_now(), exported_by=f"artifact {__version__}")
    out.with_name(out.name + ".sha256").write_text(f"{record.sha256}  {out.name}\n")
    write_record(record_path(out), record)
    return record


def read_record(archive: Path) -> ImageArchive:
    path = record_path(archive)
    if not path.is_file():
        raise ArtifactError(f"{path} is missing: it holds the digest and labels an archive is checked against; "
                            "keep it beside the archive as `artifact export` wrote it")
    try:
        record = load_record(path, ImageArchive)
    except RecordError as exc:
        raise ArtifactError(f"{exc}; export the image again (`artifact export`)") from None
    if record.kind != KIND_ARCHIVE:
        raise ArtifactError(f"{path}: kind: {record.kind!r} is not {KIND_ARCHIVE!r}; is this an `artifact export` record?")
    return record


class _HashingReader(io.RawIOBase):
    def __init__(self, fh: IO[bytes]):
        self.fh, self.sha = fh, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.fh.read(len(b))
        self.sha.update(data)
        b[: len(data)] = data
        return len(data)


def _inspect(archive: Path) -> tuple[str, Optional[dict[str, Any]]]:
    """One pass over the file: its sha256, and the image config inside it (None if unreadable)."""
    config = None
    configs: dict[str, bytes] = {}
    manifest = None
    with open(archive, "rb") as raw:
        hashing = _HashingReader(raw)
        try:
            with gzip.GzipFile(fileobj=io.BufferedReader(hashing, CHUNK), mode="rb") as gz, \
                    tarfile.open(fileobj=gz, mode="r|") as tar:
                for member in tar:
                    data = tar.extractfile(member) if member.isfile() else None
                    if data is None:
                        continue
                    if member.name == "manifest.json":
                        manifest = json.load(data)
                    elif (member.name.endswith(".json") or member.name.startswith("blobs/")) and member.size < (1 << 20):
                        configs[member.name] = data.read()
        except (OSError, EOFError, zlib.error, tarfile.TarError, json.JSONDecodeError, UnicodeDecodeError):
            pass  # a damaged archive (zlib.error is not an OSError): the digest says so below
        for _block in iter(lambda: hashing.read(CHUNK), b""):
            pass  # the rest of the file (gzip's trailer) for the digest
    if isinstance(manifest, list) and manifest and manifest[0].get("Config") in configs:
        try:
            config = json.loads(configs[manifest[0]["Config"]])
            config["_digest"] = "sha256:" + hashlib.sha256(configs[manifest[0]["Config"]]).hexdigest()
        except json.JSONDecodeError:
            config = None
    return hashing.sha.hexdigest(), config


def verify(archive: Path, log: Callable[[str], None]) -> ImageArchive:
    """The archive checked against its record (sha256, image id, labels), without an engine: a
    damaged or altered archive is named before anything is asked of Docker."""
    if not archive.is_file():
        raise ArtifactError(f"--from-archive {archive}: no such file; `artifact export` writes one")
    record = read_record(archive)
    log(f"load: checking {archive} against {record_path(archive).name}")
    digest, config = _inspect(archive)
    if digest != record.sha256:
        raise ArtifactError(f"{archive}: sha256 {digest[:16]}... is not the recorded {record.sha256[:16]}... "
                            f"({record_path(archive).name}): the archive is damaged or was altered; export it again "
                            "or copy it again")
    if config is None:
        raise ArtifactError(f"{archive}: not a gzip-compressed `docker save` archive with an image config; "
                            "export it again (`artifact export`)")
    labels = (config.get("config") or {}).get("Labels") or {}
    if config["_digest"] != record.image_id:
        raise ArtifactError(f"{archive}: holds image {config['_digest'][:19]}, the record says {record.image_id[:19]}; "
                            "export it again")
    if labels != record.labels:
        diff = sorted(k for k in set(labels) | set(record.labels) if labels.get(k) != record.labels.get(k))
        raise ArtifactError(f"{archive}: image labels differ from the record ({', '.join(diff)}); export it again")
    log(f"load: sha256 {digest} and image {record.image_id[:19]} match")
    return record


def load(client: Any, archive: Path, log: Callable[[str], None], verified: Optional[ImageArchive] = None) -> ImageArchive:
    """Verify (unless `verified` is the record verify() returned), then load the archive through
    the SDK; the record of what was loaded."""
    record = verified or verify(archive, log)
    log(f"load: loading {record.image_ref}")
    with translated(f"loading {archive}"):
        with open(archive, "rb") as fh:
            loaded = client.images.load(fh)
        img = client.images.get(loaded[0].id) if loaded else client.images.get(record.image_ref)
        if record.image_ref not in (img.tags or []):
            img.tag(record.image_ref)
    if img.id != record.image_id or dict(img.labels or {}) != record.labels:
        raise ArtifactError(f"the engine loaded {img.id[:19]} from {archive}, not the recorded {record.image_id[:19]} "
                            "with its labels; remove it (`docker rmi`) and report this")
    return record
