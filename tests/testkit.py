"""What the tests share, in one home: the repository's paths and the committed runs they read, and
copying a results folder (torch-free; tests/ is on sys.path through tests/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCES = REPO / "artifact" / "references"
H200_REF = REFERENCES / "h200.yaml"
# A fresh H200 run that passes every claim of h200.yaml (not one the reference was derived from).
H200_RUN = REPO / "bench" / "h200" / "machine-D" / "run-D1"


def copy_run(src: Path, dst: Path) -> Path:
    """A copy of the results folder `src` at `dst` without the host's outputs (verdict.*,
    report.*), so a test judges the measurements and never a verdict file left in the folder."""
    from artifact.folder import OUTPUTS

    shutil.copytree(src, dst)
    for f in dst.iterdir():
        if f.is_file() and f.name.startswith(OUTPUTS):
            f.unlink()
    return dst
