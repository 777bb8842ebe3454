"""Regenerate the hash-locked requirements of the image: `make lock [VARIANT=cuda]`
(or `python3 docker/lock.py --variant cpu|cuda|host`): docker/requirements-VARIANT.in -> .lock.

pip resolves the .in file for Linux x86_64 and each CPython the variant serves without installing
anything (`pip install --dry-run --report`), and the report names the exact wheel of every
package and its sha256. One resolution per Python version, each run by an interpreter of that
version: pip evaluates environment markers (a dependency's `; python_version < "3.12"`) with the
interpreter that runs it, whatever --python-version says. Pins shared by every Python get one
line with each Python's hash; pins that differ get a `; python_version == "X.Y"` marker.

Lines of the .in may carry such a marker too (the only marker this script reads), and
`# unmatched: NAME==VERSION on python X.Y: why` comments declare where a reference machine's
version cannot be pinned for that Python; they are checked (the version must really not resolve
there) and copied into the lock, where tests/docker/test_lock.py reads them.

pip itself is locked separately (docker/pip.lock) because the build runs pip from its wheel to
install the rest and the image does not keep it. No pip-tools: pip's own report has everything.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

HERE = Path(__file__).resolve().parent
# Debian bookworm's glibc, the image's: a wheel tagged manylinux_2_X loads on glibc >= 2.X, so the
# image accepts every tag up to this one. pip does not widen an explicit --platform list to older
# tags (nvidia-nccl-cu13 is tagged only manylinux_2_18, nvidia-cuda-cupti 13.x only manylinux_2_25),
# so every one is listed; manylinux2014 also brings pip's legacy aliases manylinux2010 and manylinux1.
IMAGE_GLIBC_MINOR = 36
OLDEST_GLIBC_MINOR = 5  # manylinux_2_5 is manylinux1, the oldest tag there is
IMAGE_PYTHON = "3.11"  # bookworm's python3
# The Pythons each variant's lock serves: the image's, and for cuda the GPU machines' (3.12), so
# the native fallback there is installed from the same pins.
VARIANT_PYTHONS = {"cpu": ("3.11",), "cuda": ("3.11", "3.12"), "host": ("3.11", "3.12")}
TORCH_CPU_INDEX = os.environ.get("TORCH_INDEX_URL", "https://download.pytorch.org/whl/cpu")
PYPI = os.environ.get("PYPI_INDEX_URL", "https://pypi.org/simple")
PIP_VERSION = "26.3"

MARKER_RE = re.compile(r'^python_version\s*==\s*"(\d+\.\d+)"$')
UNMATCHED_RE = re.compile(r"^#\s*unmatched:\s*(\S+)==(\S+)\s+on python\s+(\d+\.\d+):\s*(.+)$")


def platform_tags() -> list[str]:
    tags = [f"manylinux_2_{m}_x86_64" for m in range(IMAGE_GLIBC_MINOR, OLDEST_GLIBC_MINOR - 1, -1)]
    return tags + ["manylinux2014_x86_64"]


def platform_args(python: str = IMAGE_PYTHON) -> list[str]:
    cp = "cp" + python.replace(".", "")
    args = ["--only-binary=:all:", "--python-version", python, "--implementation", "cp",
            "--abi", cp, "--abi", "abi3", "--abi", "none"]
    for tag in platform_tags():
        args += ["--platform", tag]
    return args


def die(message: str) -> NoReturn:
    sys.exit(f"error: {message}")


@dataclass
class InFile:
    """A requirements-VARIANT.in: pins per Python, and the declared mismatches."""

    path: Path
    pins: list[tuple[str, str | None]] = field(default_factory=list)  # (requirement, python or None: all)
    unmatched: list[tuple[str, str, str, str]] = field(default_factory=list)  # name, version, python, why

    def for_python(self, python: str) -> list[str]:
        return [req for req, only in self.pins if only in (None, python)]


def read_in(path: Path) -> InFile:
    parsed = InFile(path)
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        m = UNMATCHED_RE.match(raw.strip())
        if m:
            parsed.unmatched.append(m.groups())  # type: ignore[arg-type]
            continue
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req, _, marker = (part.strip() for part in line.partition(";"))
        only = None
        if marker:
            mm = MARKER_RE.match(marker)
            if not mm:
                die(f'{path}:{n}: marker {marker!r}: only python_version == "X.Y" is supported')
            only = mm.group(1)
        parsed.pins.append((req, only))
    return parsed


def interpreter(python: str) -> str:
    """An interpreter of exactly this version (markers are evaluated by the running Python)."""
    if "{}.{}".format(*sys.version_info[:2]) == python:
        return sys.executable
    env = f"PYTHON_{python.replace('.', '_')}"
    candidates = [os.environ.get(env), shutil.which(f"python{python}"),
                  # pyenv's shims answer only for the selected versions; its installs work directly.
                  *sorted(str(p) for p in Path.home().glob(f".pyenv/versions/{python}*/bin/python{python}"))]
    for exe in filter(None, candidates):
        probe = subprocess.run([exe, "-c", "import sys, pip; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == python:
            return exe
    die(f"resolving for Python {python} needs a python{python} with pip (on PATH, or {env}=/path/to/python): "
        "pip evaluates dependency markers with the interpreter that runs it")


def resolve(requirements: list[str], variant: str, python: str) -> list[dict]:
    if variant == "cuda":
        # Only PyPI: a local wheel folder or mirror in pip.conf could offer torch 2.x+cpu, which
        # satisfies ==2.x and would silently lock a CPU build into the GPU image.
        try:
            items = _resolve(requirements, ["--isolated", "--index-url", PYPI], python)
        except LookupError as exc:
            die(f"pip could not resolve {requirements} for Python {python} from {PYPI}: {exc}")
        check_cuda(items)
        return items
    # pip's own sources first (PyPI, plus any local mirror in pip.conf); the PyTorch index only
    # when they cannot satisfy a +cpu pin, because every lookup on an unreachable extra index
    # costs retries for every package.
    try:
        return _resolve(requirements, [], python)
    except LookupError:
        pass
    try:
        return _resolve(requirements, ["--extra-index-url", TORCH_CPU_INDEX], python)
    except LookupError as exc:
        die(f"pip could not resolve {requirements} for Python {python}: {exc}")


def _resolve(requirements: list[str], extra: list[str], python: str) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "req.in"
        req.write_text("\n".join(requirements) + "\n")
        report = Path(tmp) / "report.json"
        cmd = [
            interpreter(python), "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
            "--disable-pip-version-check", "--report", str(report), "--target", str(Path(tmp) / "t"),
            *extra, *platform_args(python), "-r", str(req),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = [l for l in proc.stderr.splitlines() if l.startswith("ERROR")][-1:] or ["(no message)"]
            raise LookupError(last[0])
        return json.loads(report.read_text())["install"]


def check_cuda(items: list[dict]) -> None:
    """A CUDA lock must hold a CUDA torch and its CUDA runtime wheel; refuse anything else."""
    versions = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in items}
    torch = versions.get("torch", "")
    if "+" in torch and not torch.split("+", 1)[1].startswith("cu"):
        die(f"the cuda lock resolved torch {torch}, not a CUDA build")
    if not any(name.startswith("nvidia-cuda-runtime") for name in versions):
        die("the cuda lock has no nvidia-cuda-runtime wheel: torch would not find CUDA in the image")


def check_unmatched(spec: InFile, variant: str) -> None:
    """A declared mismatch must stay true: that version must not resolve for that Python."""
    for name, version, python, _why in spec.unmatched:
        try:
            _resolve([f"{name}=={version}"], ["--no-deps"] + (["--isolated", "--index-url", PYPI] if variant == "cuda" else []),
                     python)
        except LookupError:
            continue
        die(f"{spec.path}: '# unmatched: {name}=={version} on python {python}' is no longer true: that version "
            f"resolves for Python {python}; pin it and remove the comment")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_entry(item: dict) -> tuple[str, str, str, str]:
    """(name, version, sha256, wheel file name) of one item of pip's report."""
    meta, info = item["metadata"], item["download_info"]
    digest = info.get("archive_info", {}).get("hashes", {}).get("sha256")
    if not digest:
        die(f"pip reported no sha256 for {meta['name']} ({info['url']}): cannot lock it")
    wheel = info["url"].rsplit("/", 1)[-1].replace("%2B", "+")
    return meta["name"], meta["version"], digest, wheel


def lock_text(per_python: dict[str, list[dict]], source: str, variant: str | None,
              unmatched: list[tuple[str, str, str, str]] = ()) -> str:
    """One requirement per (package, version); a marker where it is not the same for every Python."""
    pythons = list(per_python)
    merged: dict[tuple[str, str], dict] = {}
    for python, items in per_python.items():
        for item in items:
            name, version, digest, wheel = wheel_entry(item)
            entry = merged.setdefault((_norm(name), version), {"name": name, "pythons": [], "hashes": []})
            entry["pythons"].append(python)
            if (digest, wheel) not in entry["hashes"]:
                entry["hashes"].append((digest, wheel))
    lines = [
        f"# Generated by docker/lock.py from {source}: do not edit; run `make lock"
        + (f" VARIANT={variant}`." if variant else "`."),
        f"# Wheels for Linux x86_64 (manylinux up to glibc 2.{IMAGE_GLIBC_MINOR}) and CPython "
        + ", ".join(pythons) + f" ({IMAGE_PYTHON}: the image); checked by --require-hashes.",
        "# pythons: " + " ".join(pythons),  # read by harness/lockcheck.py
    ]
    for name, version, python, why in unmatched:
        lines.append(f"# unmatched: {name}=={version} on python {python}: {why}")
    for (_key, version), entry in sorted(merged.items()):
        marker = ""
        if sorted(entry["pythons"]) != sorted(pythons):
            if len(entry["pythons"]) != 1:
                die(f"{entry['name']}=={version} is in the resolution of {entry['pythons']} but not of every Python: "
                    "add a marker-free pin or one per Python to the .in file")
            marker = f' ; python_version == "{entry["pythons"][0]}"'
        lines.append("# " + ", ".join(wheel for _, wheel in entry["hashes"]))
        hashes = [f"    --hash=sha256:{digest}" for digest, _ in entry["hashes"]]
        lines.append(f"{entry['name']}=={version}{marker} \\")
        lines.append(" \\\n".join(hashes))
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="cpu", help="cpu, cuda or host: reads requirements-VARIANT.in")
    ap.add_argument("--pip-output", type=Path, default=HERE / "pip.lock")
    ap.add_argument("--print-platform-args", action="store_true",
                    help="print pip's platform options for the image, one per line (docker/wheelhouse.sh reads them)")
    args = ap.parse_args()
    if args.print_platform_args:
        print("\n".join(platform_args()))
        return 0
    args.input = HERE / f"requirements-{args.variant}.in"
    args.output = HERE / f"requirements-{args.variant}.lock"
    if not args.input.is_file():
        die(f"{args.input} not found; variants: "
            + ", ".join(p.stem.split("-", 1)[1] for p in sorted(HERE.glob("requirements-*.in"))))
    spec = read_in(args.input)
    pythons = VARIANT_PYTHONS.get(args.variant, (IMAGE_PYTHON,))
    for _, only in spec.pins:
        if only is not None and only not in pythons:
            die(f"{args.input}: a pin for Python {only}, which the {args.variant} lock does not serve ({', '.join(pythons)})")
    check_unmatched(spec, args.variant)
    per_python = {py: resolve(spec.for_python(py), args.variant, py) for py in pythons}
    args.output.write_text(lock_text(per_python, args.input.name, args.variant, spec.unmatched))
    pip_items = {IMAGE_PYTHON: resolve([f"pip=={PIP_VERSION}"], "cpu", IMAGE_PYTHON)}
    args.pip_output.write_text(lock_text(pip_items, f"pip=={PIP_VERSION}", None))
    print(f"wrote {args.output} and {args.pip_output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
