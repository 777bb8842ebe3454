"""`artifact report A B --out DIR`: several folders side by side, numbers from the folders."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from testkit import REPO

from artifact.cli import main
from artifact.report.side_by_side import RATIO_RESAMPLES, RATIO_SEED
from artifact.results.folder import load_results
from harness import stats

H200 = REPO / "bench" / "h200" / "machine-D" / "run-D1"
H100 = REPO / "bench" / "h100" / "fresh-check" / "run-F1"


def test_two_gpus_side_by_side_with_the_ratio_ci_from_the_raw_samples(tmp_path, capsys):
    assert main(["report", str(H200), str(H100), "--out", str(tmp_path)]) == 0
    md = (tmp_path / "report-gpus.md").read_text()
    assert "H200" in md and "H100" in md
    a, _ = load_results(H200)
    b, _ = load_results(H100)
    key = lambda c: (c.case.backend, c.case.seq, c.case.batch, c.case.heads, c.case.head_dim, c.case.dtype,  # noqa: E731
                     c.case.causal, c.case.cache)
    common = {key(c): c for c in a.cases if c.status == "ok"}
    pair = next((common[key(c)], c) for c in b.cases if c.status == "ok" and key(c) in common and c.case.backend == "cudnn")
    h200, h100 = pair
    ci = stats.hierarchical_ratio_ci([list(r.samples_ms) for r in h100.timing.repetitions],
                                     [list(r.samples_ms) for r in h200.timing.repetitions],
                                     n_resamples=RATIO_RESAMPLES, seed=RATIO_SEED)
    row = f"| cudnn | {h200.case.seq} | "
    rows = [line for line in md.splitlines() if line.startswith(row)]
    assert any(f"{ci.estimate:.3f} [{ci.low:.3f}, {ci.high:.3f}]" in r for r in rows), rows
    # the H200 is the faster card for cuDNN attention: the ratio H100/H200 is above 1
    assert ci.estimate > 1
    svgs = sorted(tmp_path.glob("side-by-side-*.svg"))
    assert svgs and md.count("](side-by-side-") == len(svgs)
    # the cudnn plot draws the same ratio, point for point, as the table
    (svg,) = [p for p in svgs if p.name.startswith("side-by-side-cudnn-")]
    # The legend names each line by its folder and card (the GPU UUID's prefix), not "1 / 0".
    label = f"{H100.name} ({b.env.gpu.uuid[4:12]})\n/ {H200.name} ({a.env.gpu.uuid[4:12]})"
    points = {float(c.get("data-x")): float(c.get("data-y")) for c in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}circle")
              if c.get("data-label") == label}
    assert points[float(h200.case.seq)] == pytest.approx(ci.estimate)
    # each column's verdict against the reference that fits its hardware
    assert re.search(r"\| 0 \| `[^`]*run-D1` \| NVIDIA H200[^|]*\| [^|]+\| [^|]+\| PASS", md), md[:800]


def test_several_folders_need_an_out_folder(capsys):
    assert main(["report", str(H200), str(H100)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out DIR" in err[0]


def test_the_committed_h200_side_by_side_is_what_the_runs_give(tmp_path):
    """bench/h200/side-by-side/ is generated from the committed runs (bench/h200/NOTES.md has the
    command): regenerate it and compare, so it cannot drift from the data or the code."""
    import subprocess
    import sys

    runs = [f"bench/h200/machine-{m}/run-{m}1" for m in "BCDE"]
    proc = subprocess.run([sys.executable, "-m", "artifact.cli", "report", *runs, "--out", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    committed = REPO / "bench" / "h200" / "side-by-side"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in committed.iterdir())
    for p in committed.iterdir():
        assert (tmp_path / p.name).read_text() == p.read_text(), f"{p} is stale: rerun the command in bench/h200/NOTES.md"
