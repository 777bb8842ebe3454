"""What the tests share, in one home: the repository's paths and the committed runs they read, and
copying a results folder (torch-free; tests/ is on sys.path through tests/conftest.py)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCES = REPO / "artifact" / "references"
H200_REF = REFERENCES / "h200.yaml"
# A fresh H200 run that passes every claim of h200.yaml (not one the reference was derived from).
H200_RUN = REPO / "bench" / "h200" / "machine-D" / "run-D1"


def copy_run(src: Path, dst: Path) -> Path:
    """A copy of the results folder `src` at `dst` without the host's outputs (verdict.*,
    report.*), so a test judges the measurements and never a verdict file left in the folder."""
    from artifact.results.folder import OUTPUTS

    shutil.copytree(src, dst)
    for f in dst.iterdir():
        if f.is_file() and f.name.startswith(OUTPUTS):
            f.unlink()
    return dst


def tree_repo(dst: Path) -> str:
    """This checkout's files (committed or not) as a fresh git repository with one commit; its sha."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], capture_output=True, cwd=REPO,
                           check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file() and not src.is_symlink():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    git = ["git", "-C", str(dst), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", str(dst)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()


def doc_commands(doc: str) -> list[tuple[int, list[str]]]:
    """(line number, argv) of every command in the doc's sh blocks, in order."""
    out: list[tuple[int, list[str]]] = []
    lines = (REPO / doc).read_text(encoding="utf-8").splitlines()
    in_block, pending, start = False, "", 0
    for i, line in enumerate(lines, 1):
        if line.startswith("```"):
            in_block = line.strip() == "```sh" and not in_block
            continue
        if not in_block:
            continue
        if not pending:
            start = i
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text, pending = pending + line, ""
        argv = shlex.split(text, comments=True)
        while argv:  # `a && b`: two commands
            cut = argv.index("&&") if "&&" in argv else len(argv)
            out.append((start, argv[:cut]))
            argv = argv[cut + 1:]
    return out
