"""`artifact report`: every number in report.md and in the SVG plots comes from the files; the
expected-results tables of ARTIFACT.md are generated from the reference files."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from resultsfolders import cpu_run, l4_run
from testkit import REPO

from artifact import derive
from artifact.cli import main
from artifact.reference import Peak, load_reference
from artifact.report import plots
from artifact.report.expected import expected_results_markdown, headline_markdown, update_document
from harness import storage

SVG = "{http://www.w3.org/2000/svg}"
PEAK_TFLOPS = 121.0  # a stand-in "measured" L4 peak for these tests, written into the reference file


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    runs = [l4_run(root / f"run-{i}", i) for i in (0, 1)]
    opts = derive.DeriveOptions(name="l4-test", min_runs=2, peaks_gpu="NVIDIA L4", peaks=[
        Peak(metric="tflops", dtype="float16", value=PEAK_TFLOPS, unit="TFLOP/s", source="measured: test fixture"),
        Peak(metric="gbps", value=300.0, unit="GB/s", source="measured: test fixture copy")])
    ref = root / "l4.yaml"
    derive.write_reference(derive.derive(runs, opts), ref)
    return runs[0], ref


def test_report_tables_plots_and_paragraph_come_from_the_files(folder, tmp_path, capsys):
    results, ref = folder
    out = tmp_path / "report"
    assert main(["report", str(results), "--reference", str(ref), "--out", str(out)]) == 0, capsys.readouterr().err
    md = (out / "report.md").read_text()
    cases = storage.load_cases(results)
    for c in cases:
        s, tp = c.timing.summary, c.throughput
        row = next(line for line in md.splitlines() if line.startswith(f"| {c.case.backend} | {c.case.seq} | "))
        cells = [x.strip() for x in row.strip("|").split("|")]
        assert float(cells[2]) == pytest.approx(s.median_ms, rel=5e-4)
        lo, hi = map(float, cells[3].strip("[]").split(","))
        assert (lo, hi) == pytest.approx((s.ci_low_ms, s.ci_high_ms), rel=5e-4)
        assert float(cells[7]) == pytest.approx(tp.tflops, rel=5e-4)
        assert float(cells[8].rstrip("%")) == pytest.approx(100 * tp.tflops / PEAK_TFLOPS, abs=0.051)
        assert float(cells[10].rstrip("%")) == pytest.approx(100 * tp.gbps / 300.0, abs=0.051)
    for section in ("## Verdict against the reference: PASS", "## Environment", "## Reproducibility checklist",
                    "## Publication paragraph", "measured: test fixture"):
        assert section in md
    # The paragraph names the fastest backend at each S as the files have it.
    paragraph = md.split("## Publication paragraph")[1]
    for seq in (256, 512, 1024):
        fastest = min((c for c in cases if c.case.seq == seq), key=lambda c: c.timing.summary.median_ms)
        b = fastest.case.backend
        assert (f"at S={seq} the fastest backend was {b};" in paragraph
                or (f"at S={seq} {b} and " in paragraph and "indistinguishable at this precision" in paragraph))
        assert f"{b} had a median of {fastest.timing.summary.median_ms:.4g} ms" in paragraph
    assert "- [x] TF32 off for matmul and cuDNN" in md

    line = ET.parse(next(out.glob("time-vs-seq-*.svg"))).getroot()
    bars = line.findall(f".//{SVG}g[@class='errorbar']")
    points = line.findall(f".//{SVG}circle[@class='point']")
    assert len(bars) == len(points) == len(cases)
    by_key = {(c.case.backend, float(c.case.seq)): c.timing.summary for c in cases}
    for b in bars:
        s = by_key[(b.get("data-label"), float(b.get("data-x")))]
        assert (float(b.get("data-lo")), float(b.get("data-hi"))) == (s.ci_low_ms, s.ci_high_ms)
    # Longer times are drawn higher up (smaller y), on one shared axis.
    ordered = sorted(points, key=lambda p: float(p.get("data-y")))
    ys = [float(p.get("cy")) for p in ordered]
    assert ys == sorted(ys, reverse=True)
    bar = ET.parse(next(out.glob("tflops-vs-peak-*.svg"))).getroot()
    assert float(bar.find(f".//{SVG}line[@class='reference']").get("data-value")) == PEAK_TFLOPS
    assert len(bar.findall(f".//{SVG}rect[@class='bar']")) == len(cases)


def test_no_peak_share_without_a_matching_reference(folder, tmp_path, capsys):
    results, _ = folder
    out = tmp_path / "r"
    assert main(["report", str(results), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    # Without --reference the report judges against the shipped reference that fits (here only
    # h100.yaml's portable claims fit an L4): its peaks are another model's, so none is shown.
    assert "Share of peak not shown: the reference's peaks were measured on NVIDIA H100 80GB HBM3" in md
    assert "## Verdict against the reference: " in md and "Against the reference h100" in md
    bar = ET.parse(next(out.glob("tflops-vs-peak-*.svg"))).getroot()
    assert bar.find(f".//{SVG}line[@class='reference']") is None
    cpu = cpu_run(tmp_path / "cpu")
    # A reference none of whose claims applies is a mistake, not a report (issue 12).
    assert main(["report", str(cpu), "--reference", str(folder[1]), "--out", str(out / "cpu")]) == 2
    assert not (out / "cpu" / "report.md").exists()
    assert "no claim of " in capsys.readouterr().err


def test_report_reads_the_verdict_that_check_wrote(folder, tmp_path, capsys):
    import shutil

    results = tmp_path / "results"
    shutil.copytree(folder[0], results)
    assert main(["check", str(results), "--reference", str(folder[1])]) == 0
    assert main(["report", str(results)]) == 0
    capsys.readouterr()
    md = (results / "report.md").read_text()
    verdict_md = (results / "verdict.md").read_text()
    assert verdict_md.replace("## Verdict", "## Verdict against the reference", 1) in md


def test_report_refuses_a_tampered_folder(folder, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(folder[0], bad)
    (bad / "env.json").write_text((bad / "env.json").read_text().replace("550.90.07", "999.0"))
    assert main(["report", str(bad)]) == 2
    assert "env.json: sha256 differs" in capsys.readouterr().err
    assert not (bad / "report.md").exists()


def test_bar_heights_are_proportional_to_the_values():
    svg = plots.bar_chart(["a", "b"], [("x", [3.0, None]), ("y", [1.5, 6.0])], title="t", y_label="v", x_label="c",
                          reference=(7.0, "peak"))
    root = ET.fromstring(svg)
    rects = {(r.get("data-label"), r.get("data-category")): float(r.get("height")) for r in root.findall(f".//{SVG}rect[@class='bar']")}
    assert set(rects) == {("x", "a"), ("y", "a"), ("y", "b")}
    assert rects[("x", "a")] / rects[("y", "a")] == pytest.approx(2.0, rel=1e-3)
    assert rects[("y", "b")] / rects[("y", "a")] == pytest.approx(4.0, rel=1e-3)


def test_expected_results_are_generated_from_the_reference():
    ref = load_reference(REPO / "artifact" / "references" / "cpu-smoke.yaml")
    md = expected_results_markdown(ref)
    for claim in ref.claims:
        assert f"| {claim.id} | {claim.kind} |" in md
    bound = ref.claim("correct-flash").max_rel_error
    assert f"<= {bound:.4g}" in md


@pytest.mark.parametrize("doc", ["ARTIFACT.md", "docs/expected-results.md"])
def test_the_documents_generated_blocks_are_up_to_date(doc):
    path = REPO / doc
    new, used = update_document(path)  # block files are named from the project's root, wherever the document is
    assert new == path.read_text(encoding="utf-8"), f"run: artifact expected-results --update {doc}"
    # Nothing between the markers was typed: the generated block is the whole block.
    for m in re.finditer(r"<!-- BEGIN expected-results: (\S+) -->\n(.*?)<!-- END expected-results -->", new, re.S):
        assert m.group(2) == expected_results_markdown(load_reference(REPO / m.group(1)))
    for m in re.finditer(r"<!-- BEGIN headline: (\S+) -->\n(.*?)<!-- END headline -->", new, re.S):
        assert m.group(2) == headline_markdown(load_reference(REPO / m.group(1)))
    assert used


def test_artifact_md_opens_with_the_headline_and_leaves_the_claim_rows_to_the_appendix():
    # issue 19: a 30-minute read (about 250 words a minute) that opens with the results.
    text = (REPO / "ARTIFACT.md").read_text(encoding="utf-8")
    assert len(text.split()) <= 30 * 250
    sections = re.findall(r"^## (.+)$", text, re.M)
    assert sections[0] == "Headline results" and "<!-- BEGIN expected-results" not in text
    appendix = (REPO / "docs" / "expected-results.md").read_text(encoding="utf-8")
    for ref in ("cpu-smoke", "h200", "h100"):
        assert f"<!-- BEGIN expected-results: artifact/references/{ref}.yaml -->" in appendix


def test_the_headline_comes_from_the_reference_claims():
    ref = load_reference(REPO / "artifact" / "references" / "h200.yaml")
    md = headline_markdown(ref)
    rows = {int(r.split("|")[1]): r for r in md.splitlines() if re.match(r"\| \d+ \|", r)}
    assert sorted(rows) == [128, 512, 1024, 2048, 4096]
    for seq, row in rows.items():
        for cid in (f"abs-cudnn-s{seq}", f"abs-triton-s{seq}"):
            c = ref.claim(cid)
            assert f"{c.reference:.4g} (±{c.tolerance.width:.0%})" in row
        assert f"{ref.claim(f'ratio-triton-cudnn-s{seq}').reference:.3g} (" in row
    assert f"{len(ref.claims)} claims in all" in md
    # A reference without rankings has no headline to give: said, not an empty table.
    from artifact.errors import ArtifactError

    with pytest.raises(ArtifactError, match="no ranking claim"):
        headline_markdown(load_reference(REPO / "artifact" / "references" / "h100.yaml"))


def test_paragraph_calls_a_backend_fastest_only_when_the_ratio_ci_excludes_one(tmp_path):
    # The fresh H100 run: at S=128 the Triton candidate is 1.57x ahead of flash (CI well above 1);
    # at S=2048 default and cudnn differ by 0.1% with a ratio CI that contains 1.
    import shutil

    from artifact.cli import main

    run = tmp_path / "run"
    shutil.copytree(REPO / "bench" / "h100" / "fresh-check" / "run-F1", run)
    assert main(["report", str(run), "--reference", str(REPO / "artifact" / "references" / "h100.yaml")]) == 0
    paragraph = (run / "report.md").read_text().split("## Publication paragraph")[1]
    assert "at S=128 the fastest backend was triton;" in paragraph
    assert "at S=2048 default and cudnn were the fastest, indistinguishable at this precision" in paragraph


def test_h200_report_has_the_roofline_census_and_candidate_standing_from_the_run(tmp_path, capsys):
    # A committed H200 run: the roofs are the ceilings measured in that same run, every point
    # sits at its case's intensity and TFLOP/s, and the census and candidate tables are there.
    import json
    import re

    run = REPO / "bench" / "h200" / "machine-C" / "run-C1"
    assert main(["report", str(run), "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    text = (tmp_path / "report.md").read_text()
    (svg,) = list(tmp_path.glob("roofline-*.svg"))
    drawing = svg.read_text()
    ceil = json.loads((run / "ceilings.json").read_text())
    got = {c["metric"]: c["value"] for c in ceil["ceilings"]}
    roof = re.search(r'class="roof" data-compute="([^"]+)" data-bandwidth="([^"]+)"', drawing)
    assert float(roof.group(1)) == got["matmul_tflops"]
    assert float(roof.group(2)) == max(got["copy_gbps"], got["memcpy_gbps"])
    points = re.findall(r'class="point" data-label="([^"]+)" data-x="([^"]+)" data-y="([^"]+)" data-tag="S=(\d+)"', drawing)
    cases = {(c["case"]["backend"], c["case"]["seq"]): c for c in
             (json.loads(p.read_text()) for p in (run / "cases").glob("*.json"))}
    assert len(points) == len(cases) == 30
    for label, x, y, seq in points:
        tp = cases[(label, int(seq))]["throughput"]
        assert float(x) == tp["flops"] / tp["bytes"] and float(y) == tp["tflops"]
    assert "% of roof" in text and "kernel census" in text and "cudnn_generated_fort_native_sdpa" in text
    assert re.search(r"\| 128 \| triton \| cudnn \| [\d.]+ \| \[[\d.]+, [\d.]+\] \| faster \|", text)
    assert re.search(r"\| 2048 \| triton \| cudnn \| [\d.]+ \| \[[\d.]+, [\d.]+\] \| slower \|", text)


def test_the_cost_of_a_reproduction_is_summed_from_the_runs_own_phases(tmp_path, capsys):
    # run_cost on a real H200 run: the cases' phases and the ceilings' time, the rest is startup.
    import json
    import shutil

    from artifact.results.runinfo import run_cost

    run = REPO / "bench" / "h200" / "machine-D" / "run-D1"
    cost = run_cost(run, wall_s=80.0)
    cases = [json.loads(p.read_text()) for p in (run / "cases").glob("*.json")]
    sampling = sum(c["phases_s"]["sampling"] for c in cases)
    assert cost.gpus == 1 and cost.gpu_seconds == 80.0
    assert abs(cost.phases_s["sampling"] - sampling) < 1e-2
    assert cost.phases_s["ceilings"] == json.loads((run / "ceilings.json").read_text())["wall_s"]
    assert abs(sum(cost.phases_s.values()) - 80.0) < 1e-2
    # The report prices it: 80 GPU-seconds at 3.6 per GPU-hour is 0.08.
    folder = tmp_path / "run"
    shutil.copytree(run, folder)
    data = json.loads((folder / "run.json").read_text())
    data["cost"] = {"wall_s": cost.wall_s, "gpus": cost.gpus, "gpu_seconds": cost.gpu_seconds, "phases_s": cost.phases_s}
    (folder / "run.json").write_text(json.dumps(data))
    from harness import storage

    storage.write_manifest(folder)
    assert main(["report", str(folder), "--out", str(tmp_path / "rep"), "--gpu-hour-price", "3.6"]) == 0
    capsys.readouterr()
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "80 GPU-seconds" in text and "that is 0.0800." in text and "| sampling |" in text


def test_an_out_of_date_verdict_is_named_by_what_differs_not_by_a_contradiction(tmp_path):
    import json
    import shutil

    from artifact import verdict as verdictmod
    from artifact.commands.report import stale_verdict
    from artifact.reference import load_reference
    from artifact.results.folder import load_results

    repo = REPO
    run = tmp_path / "run"
    shutil.copytree(repo / "bench" / "h200" / "machine-D" / "run-D1", run)
    results, note = load_results(run)
    fresh = verdictmod.judge_all(results, load_reference(repo / "artifact" / "references" / "h200.yaml"), note)
    verdictmod.write(fresh, run)
    assert stale_verdict(run, fresh) is None
    data = json.loads((run / "verdict.json").read_text())
    data["reference_sha256"] = "0" * 64  # the same PASS, judged against an older reference file
    (run / "verdict.json").write_text(json.dumps(data))
    why = stale_verdict(run, fresh)
    assert why is not None and "another version of h200 (sha256 000000000000" in why
    assert "says PASS" not in why and "judge PASS" not in why


def test_the_relative_plot_draws_each_backend_against_the_fastest_at_each_length(tmp_path, capsys):
    # issue 21: per family, time / the fastest backend's time at each S with the ratio's CI; the
    # fastest at each S sits at exactly 1, and every mark is the number the table prints.
    from artifact.report import relative
    from artifact.results.folder import load_results

    run = REPO / "bench" / "h200" / "machine-C" / "run-C1"
    assert main(["report", str(run), "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    (svg,) = list(tmp_path.glob("relative-*.svg"))
    drawing = svg.read_text()
    points = {(lab, int(float(x))): float(y) for lab, x, y in
              re.findall(r'class="point" data-label="([^"]+)" data-x="([^"]+)" data-y="([^"]+)"', drawing)}
    rel = relative.to_fastest(load_results(run)[0].cases)
    assert len(points) == 30 and sorted(rel) == [128, 512, 1024, 2048, 4096]
    for seq, rows in rel.items():
        assert rows[0].estimate == 1.0 and points[(rows[0].backend, seq)] == 1.0
        for r in rows[1:]:
            assert points[(r.backend, seq)] == r.estimate > 1.0 and r.low <= r.estimate <= r.high
    assert points[("triton", 128)] == 1.0 and points[("math", 4096)] > 20  # the candidate leads at 128 (bench/h200)
    text = (tmp_path / "report.md").read_text()
    assert f"]({svg.name})" in text and "1 = the fastest there" in text
