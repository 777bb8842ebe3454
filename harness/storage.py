"""The results folder: atomic writes, the manifest of hashes, and reading a folder back (torch-free).

Layout of an output folder:
    env.json                 EnvRecord
    ceilings.json            CeilingsRecord: the device's ceilings, measured before the cases
    cases/<case_id>.json     CaseResult, one per case, written as each case finishes
    manifest.json            Manifest: sha256 of every other file, rewritten after each case
    run.json                 (host side) how the run was launched
    run.log                  (host side) the harness's output, appended per attempt
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from harness import __version__
from harness.errors import RecordError
from harness.records import CaseResult, CeilingsRecord, EnvRecord, Manifest, load_record, to_json

ENV_FILE = "env.json"
CEILINGS_FILE = "ceilings.json"
MANIFEST_FILE = "manifest.json"
CASES_DIR = "cases"
# Written into a results folder after the run by `artifact check` / `artifact report`.
DERIVED_PREFIXES = ("verdict.", "verdict-", "report.", "time-vs-seq-", "tflops-vs-peak-", "roofline-")


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


def _hashed_files(out: Path) -> Iterator[Path]:
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.name != MANIFEST_FILE and not p.name.startswith("."):
            yield p


def write_manifest(out: Path | str) -> Manifest:
    out = Path(out)
    files = {p.relative_to(out).as_posix(): sha256_file(p) for p in _hashed_files(out)}
    manifest = Manifest(files=files, created_at=utc_now(), harness_version=__version__)
    write_record(out / MANIFEST_FILE, manifest)
    return manifest


def verify_manifest(out: Path | str) -> list[str]:
    """Problems with the folder against its manifest (empty list: every file matches)."""
    out = Path(out)
    manifest = load_record(out / MANIFEST_FILE, Manifest)
    problems = []
    for rel, digest in sorted(manifest.files.items()):
        p = out / rel
        if not p.is_file():
            problems.append(f"{rel}: listed in manifest.json but missing")
        elif sha256_file(p) != digest:
            problems.append(f"{rel}: sha256 differs from manifest.json (modified or truncated)")
    # Files the manifest does not know were added afterwards; derived outputs a checker or
    # report writes into the folder (verdict.*, report.*) are allowed.
    for p in _hashed_files(out):
        rel = p.relative_to(out).as_posix()
        if rel not in manifest.files and not rel.startswith(DERIVED_PREFIXES):
            problems.append(f"{rel}: not listed in manifest.json (added after the run)")
    return problems


def case_path(out: Path | str, case_id: str) -> Path:
    return Path(out) / CASES_DIR / f"{case_id}.json"


def write_case(out: Path | str, result: CaseResult) -> Path:
    path = case_path(out, result.case.case_id)
    write_record(path, result)
    return path


def load_cases(out: Path | str) -> list[CaseResult]:
    folder = Path(out) / CASES_DIR
    if not folder.is_dir():
        raise RecordError(f"{out}: no {CASES_DIR}/ folder: is this a harness output folder?")
    return [load_record(p, CaseResult) for p in sorted(folder.glob("*.json"))]


def load_env(out: Path | str) -> EnvRecord:
    return load_record(Path(out) / ENV_FILE, EnvRecord)


def load_ceilings(out: Path | str) -> CeilingsRecord | None:
    """ceilings.json, or None when the run did not measure them (older runs, ceilings: false)."""
    path = Path(out) / CEILINGS_FILE
    if not path.is_file():
        return None
    return load_record(path, CeilingsRecord)
