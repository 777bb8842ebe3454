"""Every command in README.md and ARTIFACT.md, as written (issue 12: the README's
`harness bench --seq 128 512` failed for a reader).

Commands come from the ```sh blocks, comments dropped and `\\` continuations joined. Cheap ones
run for real (--help, check and report on a copy of a committed CPU run, the CPU smoke profile);
the others, which need a GPU, Docker, the network or long, are parsed by the real parsers: typer's
click for `artifact` and `harness`, `make -n` for make targets. A command that does not parse fails.
A placeholder (`results/<stamp>`, `<case_id>`) is given a value; nothing else is changed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cliparse
import pytest
from testkit import REPO
from testkit import doc_commands as commands

DOCS = ("README.md", "ARTIFACT.md", "docs/expected-results.md", "docs/own-kernel.md")
CPU_RUN = Path(__file__).resolve().parent / "data" / "cpu-smoke-runs" / "run-1"
REPRO_VENV = ".venv-reproduce"
ACTIVATE = f"{REPRO_VENV}/bin/activate"
# Programs the docs may call that are not this project's: not run, and never parsed here.
EXTERNAL = {"git", "cd", "pip", "sha256sum", "source", "python"}


ALL = [(doc, n, argv) for doc in DOCS for n, argv in commands(doc)]


def _fill(argv: list[str], results: Path) -> list[str]:
    filled = []
    for a in argv:
        a = a.replace("results/<stamp>", str(results))
        filled.append(re.sub(r"<[^<>]*>", "x", a))
    return filled


def _program(argv: list[str]) -> str:
    return cliparse.program_of(argv[0]) or argv[0]


def test_the_docs_have_commands():
    programs = {_program(argv) for _, _, argv in ALL}
    assert {"make", "artifact", "harness"} <= programs
    assert sum(_program(a) == "artifact" for _, _, a in ALL) >= 10


@pytest.mark.parametrize("doc,line,argv", ALL, ids=[f"{d}:{n}:{' '.join(a)[:60]}" for d, n, a in ALL])
def test_every_doc_command_parses_or_runs(doc, line, argv, tmp_path):
    program = _program(argv)
    results = tmp_path / "results" / "stamp"
    if program in EXTERNAL:
        return
    if program == "make":
        res = subprocess.run(["make", "-n", *argv[1:]], capture_output=True, text=True, cwd=REPO, timeout=120)
        assert res.returncode == 0, f"{doc}:{line}: make -n {' '.join(argv[1:])}: {res.stderr}"
        return
    assert program in ("artifact", "harness"), f"{doc}:{line}: {argv[0]}: not a command this project provides"
    filled = _fill(argv, results)
    cliparse.parse(filled)
    # What runs for real on a CPU in seconds: the rest needs a GPU, Docker, the network or hours.
    sub = argv[1] if len(argv) > 1 else ""
    runs = "--help" in argv or (program == "artifact" and sub in ("check", "report") and "results/<stamp>" in argv[2:3])
    runs = runs or (program == "harness" and argv[1:] == ["bench", "--profile", "smoke", "--out", "results/smoke"])
    if not runs:
        return
    shutil.copytree(CPU_RUN, results)
    cwd = tmp_path  # relative outputs (results/smoke) land in tmp_path, not in the checkout
    res = subprocess.run([sys.executable, "-m", f"{program}.cli", *filled[1:]], capture_output=True, text=True,
                         cwd=cwd, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 0, f"{doc}:{line}: {' '.join(argv)}: exit {res.returncode}: {res.stderr[-2000:]}"


def test_plain_artifact_is_called_only_once_it_is_on_the_path():
    """After `make reproduce`, `artifact` is in .venv-reproduce/bin, not on PATH: a doc calls it by
    that path, or after a line that activates the venv (or installs the package)."""
    for doc in DOCS:
        on_path = False
        for line, argv in commands(doc):
            if argv[:2] == ["source", ACTIVATE] or argv[:3] == ["pip", "install", "-e"]:
                on_path = True
            if argv[0] in ("artifact", "harness"):
                assert on_path, f"{doc}:{line}: `{' '.join(argv)}` before any line that puts {argv[0]} on PATH"
            if "/" in argv[0] and cliparse.program_of(argv[0]):
                assert argv[0] == f"{REPRO_VENV}/bin/{cliparse.program_of(argv[0])}", f"{doc}:{line}: {argv[0]}"
    text = (REPO / "ARTIFACT.md").read_text(encoding="utf-8")
    assert f"source {ACTIVATE}" in text.split("## Full run")[0], "the kick-the-tires section must say how"
    # make reproduce installs artifact there, and ends by saying how to call it.
    assert re.search(r"^REPRO_VENV := \.venv-reproduce$", (REPO / "Makefile").read_text(), re.M)
    assert re.search(r"install .*--no-deps .*-e \"\$root\"", (REPO / "docker" / "reproduce_env.sh").read_text())
    dry = subprocess.run(["make", "-n", "reproduce"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert f"next: {REPRO_VENV}/bin/artifact report results/" in dry.stdout and f"source {ACTIVATE}" in dry.stdout
