"""The results folder: atomic writes, the manifest of hashes, and reading a folder back (torch-free).

Layout of an output folder:
    env.json                 EnvRecord
    ceilings.json            CeilingsRecord: the device's ceilings, measured before the cases
    cases/<case_id>.json     CaseResult, one per case, written as each case finishes
    manifest.json            Manifest: sha256 of every other file, rewritten after each case
    run.json                 (host side) how the run was launched
    run.log                  (host side) the harness's output, appended per attempt

Which files belong to the folder is decided once, by `is_member`: hashing (write_manifest),
verifying (verify_manifest) and reading (load_cases, and the host's artifact/results/folder.py) all ask
it. Files the host writes about the results afterwards (verdicts, reports, plots) are not
results; the harness does not know their names, the host passes them down as `outputs`.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import RecordError
from harness.records import CaseResult, CeilingsRecord, EnvRecord, Manifest, load_record, to_json

ENV_FILE = "env.json"
CEILINGS_FILE = "ceilings.json"
MANIFEST_FILE = "manifest.json"
CASES_DIR = "cases"

# Bounds on what verifying a folder may cost: a results folder of the largest plan holds a few
# hundred files of under 1 MiB; anything far beyond is not a harness folder and must not make the
# checker hash or list without end.
MAX_FILES = 20_000
MAX_DEPTH = 8
MAX_FILE_BYTES = 256 * 2**20
MAX_TOTAL_BYTES = 2 * 2**30


def is_member(rel: str, outputs: tuple[str, ...] = ()) -> bool:
    """Does the file at `rel` (posix, relative to the folder) belong to the results?

    Not the manifest (it lists the members), not hidden files (the half-written temp files of
    atomic writes), and not the outputs about the results written into the folder after the run
    (names starting with one of `outputs`, at any depth but inside cases/: the host's verdict.*,
    report.*, plots, also in each shard of a sharded folder). A check rewrites those; a manifest
    that hashed them would refuse the folder at the next check."""
    parts = rel.split("/")
    if rel == MANIFEST_FILE or any(part.startswith(".") for part in parts):
        return False
    return not (outputs and parts[0] != CASES_DIR and parts[-1].startswith(outputs))


def is_case_file(rel: str, outputs: tuple[str, ...] = ()) -> bool:
    """A member that is a case result: cases/<case_id>.json, one level deep."""
    return rel.startswith(CASES_DIR + "/") and rel.count("/") == 1 and rel.endswith(".json") and is_member(rel, outputs)


def unsafe_rel(rel: object) -> str | None:
    """Why `rel` (a manifest key) is not a plain relative path inside the folder, or None."""
    if not isinstance(rel, str) or not rel:
        return "not a path"
    if "\\" in rel or "\0" in rel or rel.startswith("/"):
        return "absolute or not a posix path"
    parts = rel.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            return "leaves the results folder or has an empty part"
        if part.startswith("."):
            return "a hidden file"
        if len(part) > 255:
            return "a name longer than 255 characters"
    if len(parts) > MAX_DEPTH:
        return "nested too deeply"
    return None


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write via a temporary file in the same folder and rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes 0600 files; results are meant to be read by others (and out of containers).
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_record(path: Path | str, record: Any) -> None:
    atomic_write_text(path, to_json(record))


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def members(out: Path | str, outputs: tuple[str, ...] = ()) -> Iterator[str]:
    """The folder's members (relative posix paths, sorted) found on disk: plain files, no
    symbolic links, each one `is_member` accepts. What write_manifest hashes and load_cases reads."""
    out = Path(out)
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if not p.is_symlink() and p.is_file() and is_member(rel, outputs):
            yield rel


def write_manifest(out: Path | str, outputs: tuple[str, ...] = (), in_progress: bool = False) -> Manifest:
    out = Path(out)
    files = {rel: sha256_file(out / rel) for rel in members(out, outputs)}
    manifest = Manifest(files=files, created_at=utc_now(), harness_version=__version__, in_progress=in_progress)
    write_record(out / MANIFEST_FILE, manifest)
    return manifest


def scan_folder(out: Path | str) -> tuple[dict[str, int], list[str]]:
    """Every plain file under `out` (relative posix path -> size), and the problems with the
    folder itself: symbolic links (a results folder holds plain files only: a link could point
    anywhere), special files (a FIFO would block whoever reads it), hidden entries (the harness
    writes none that last), and more entries or depth than a results folder has."""
    out = Path(out)
    files: dict[str, int] = {}
    problems: list[str] = []
    stack: list[tuple[Path, str, int]] = [(out, "", 0)]
    seen = 0
    while stack:
        folder, prefix, depth = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            problems.append(f"{prefix or '.'}: cannot list ({exc.strerror})")
            continue
        for entry in entries:
            seen += 1
            if seen > MAX_FILES:
                problems.append(f"more than {MAX_FILES} entries: not a results folder the harness wrote")
                return files, problems
            rel = prefix + entry.name
            if entry.name.startswith("."):
                problems.append(f"{rel}: hidden entry, not written by the harness (an interrupted write leaves "
                                ".*.tmp files); remove it")
                continue
            if entry.is_symlink():
                problems.append(f"{rel}: a symbolic link; a results folder holds plain files only (copy the target in, "
                                "or re-run)")
                continue
            if entry.is_dir(follow_symlinks=False):
                if depth + 1 >= MAX_DEPTH:
                    problems.append(f"{rel}: nested deeper than a results folder is")
                    continue
                stack.append((Path(entry.path), rel + "/", depth + 1))
            elif entry.is_file(follow_symlinks=False):
                files[rel] = entry.stat(follow_symlinks=False).st_size
            else:
                problems.append(f"{rel}: not a plain file (a FIFO, socket or device); remove it")
    return files, problems


def _sha256_plain(path: Path) -> str:
    """sha256 of a plain file opened without following a link (the scan saw a plain file; it must
    still be one when it is read)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(f"{path}: not a plain file")
        h = hashlib.sha256()
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_manifest(out: Path | str, outputs: tuple[str, ...] = ()) -> list[str]:
    """Problems with the folder against its manifest (empty list: every file matches).

    Every manifest entry must be a plain relative path inside the folder (no '..', no absolute
    path, no hidden file), name a plain file found by scan_folder (no symbolic link), and match
    its sha256; every member the scan finds must be listed (the `outputs` the caller names are
    not members: neither results nor read back)."""
    out = Path(out)
    files, problems = scan_folder(out)
    if any(p.startswith(MANIFEST_FILE + ":") for p in problems):
        return problems
    manifest = load_record(out / MANIFEST_FILE, Manifest)
    if len(manifest.files) > MAX_FILES:
        return problems + [f"{MANIFEST_FILE}: lists {len(manifest.files)} files, more than a results folder has"]
    total = 0
    for rel, digest in sorted(manifest.files.items()):
        why = unsafe_rel(rel)
        if why is not None:
            problems.append(f"{MANIFEST_FILE}: entry {str(rel)[:80]!r} is {why}; a manifest lists files inside its folder only")
            continue
        if not is_member(rel, outputs):
            continue  # a harness that resumed into a checked folder hashed the host's outputs; not results
        if not isinstance(digest, str) or len(digest) != 64:
            problems.append(f"{rel}: manifest.json has no sha256 for it")
            continue
        if rel not in files:
            problems.append(f"{rel}: listed in manifest.json but missing (or not a plain file)")
            continue
        size = files[rel]
        total += size
        if size > MAX_FILE_BYTES or total > MAX_TOTAL_BYTES:
            problems.append(f"{rel}: {size >> 20} MiB, beyond what a results folder holds; not checked")
            continue
        try:
            same = _sha256_plain(out / rel) == digest
        except OSError:
            problems.append(f"{rel}: could not be read as a plain file")
            continue
        if not same:
            problems.append(f"{rel}: sha256 differs from manifest.json (modified or truncated)")
    # Members the manifest does not know were added afterwards.
    for rel in sorted(files):
        if rel not in manifest.files and is_member(rel, outputs):
            problems.append(f"{rel}: not listed in manifest.json (added after the run)")
    return problems


def case_path(out: Path | str, case_id: str) -> Path:
    return Path(out) / CASES_DIR / f"{case_id}.json"


def write_case(out: Path | str, result: CaseResult) -> Path:
    path = case_path(out, result.case.case_id)
    write_record(path, result)
    return path


def load_cases(out: Path | str) -> list[CaseResult]:
    """Every case result in the folder: the members write_manifest hashes that are case files."""
    folder = Path(out) / CASES_DIR
    if not folder.is_dir():
        raise RecordError(f"{out}: no {CASES_DIR}/ folder: is this a harness output folder?")
    return [load_record(Path(out) / rel, CaseResult) for rel in members(out) if is_case_file(rel)]


def load_env(out: Path | str) -> EnvRecord:
    return load_record(Path(out) / ENV_FILE, EnvRecord)


def load_ceilings(out: Path | str) -> CeilingsRecord | None:
    """ceilings.json, or None when the run did not measure them (older runs, ceilings: false)."""
    path = Path(out) / CEILINGS_FILE
    if not path.is_file():
        return None
    return load_record(path, CeilingsRecord)
