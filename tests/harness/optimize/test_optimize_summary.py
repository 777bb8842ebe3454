"""summary.md is made from the run's records: every number on it is read back from the files
(synthetic measurements on a fake clock: no kernel runs, nothing depends on real speed)."""

from __future__ import annotations

from harness import compare, storage, tuned
from harness.optimize import records
from harness.optimize.run import run_optimize
from harness.optimize.search import config, describe
from harness.optimize.settings import OptimizeSettings
from harness.records import CaseResult, CaseSpec, Correctness, Repetition, Timing, load_record
from harness.stats import summarize_repetitions

SPACE = [config(16, 16, 4, 2), config(32, 16, 4, 2), config(32, 32, 4, 2)]
TIMES = {"flash": 2.0, "math": 3.0, "default": 2.1, **{describe(c): t for c, t in zip(SPACE, (1.2, 1.0, 1.5))}}


class Bench:
    def __init__(self):
        self.now = 0.0

    def __call__(self, spec: CaseSpec, timing) -> CaseResult:
        self.now += 0.5
        key = describe(spec.config) if spec.config else spec.backend
        if key not in TIMES:
            return CaseResult(case=spec, status="skipped", reason="runs on CUDA GPUs only")
        # Two spread-out values per repetition, so every statistic is defined.
        groups = [[TIMES[key] * f for f in (0.99, 1.01) * 10] for _ in range(timing.repeats)]
        summary = summarize_repetitions(groups, [True] * len(groups), n_resamples=200)
        reps = [Repetition(g, 1, True, "converged", summary.rel_halfwidth, 0.1) for g in groups]
        return CaseResult(case=spec, status="ok", correctness=Correctness("float64", 2e-4, 5e-3, True, True),
                          timing=Timing("perf_counter", None, timing.target_rel_ci, 3, reps, summary))


def _run(tmp_path, **kw):
    bench = Bench()
    settings = OptimizeSettings(batch=1, heads=2, seq=32, head_dim=16, device="cpu", budget_s=500, space=SPACE, **kw)
    run_optimize(settings, tmp_path, measure=bench, log=lambda _: None, now=lambda: bench.now)
    return (tmp_path / records.SUMMARY_FILE).read_text()


def test_the_summary_shows_the_records_numbers_and_verdict(tmp_path):
    summary = _run(tmp_path, target_speedup=1.5)
    baseline = load_record(tmp_path / records.BASELINE_FILE, records.BaselineRecord)
    search = load_record(tmp_path / records.SEARCH_FILE, records.SearchRecord)
    cmp = compare.load_comparison(tmp_path / records.COMPARISON_FILE)
    saved = tuned.load(tmp_path / records.TUNED_FILE)
    assert baseline.best_backend == "flash" and search.winner == SPACE[1] == saved.config
    assert cmp.verdict == compare.VERDICT_FASTER and f"**{cmp.verdict}**" in summary
    assert f"time ratio candidate/baseline {cmp.ratio:.3f}" in summary
    assert f"CI [{cmp.ratio_ci_low:.3f}, {cmp.ratio_ci_high:.3f}]" in summary
    for case in storage.load_cases(tmp_path):
        assert f"| {case.case.case_id} | {case.timing.summary.median_ms:.4f} |" in summary
    for r in baseline.results:
        mark = " (baseline)" if r.case.backend == "flash" else ""
        assert f"| {r.case.backend}{mark} | {r.status} |" in summary
    assert f"{search.n_tried} of {search.n_configs} configs tried" in summary and describe(SPACE[1]) in summary
    assert storage.verify_manifest(tmp_path) == []
    # Speedup 2.0/1.0 with a CI that excludes 1.5: the target is met; at 3x it is not.
    assert "**met**" in summary
    assert "**not met**" in _run(tmp_path / "again", target_speedup=3.0)


def test_a_reused_config_says_no_search_was_made(tmp_path):
    summary = _run(tmp_path, reuse=SPACE[2])
    assert not (tmp_path / records.SEARCH_FILE).exists()
    assert "None: a tuned config was reused." in summary and describe(SPACE[2]) in summary
    assert tuned.load(tmp_path / records.TUNED_FILE).configs_tried == 0


def test_the_output_file_names_are_the_documented_ones():
    # Readers (artifact, bench/ notes, earlier runs' folders) know the files by these names.
    assert (records.BASELINE_FILE, records.SEARCH_FILE, records.COMPARISON_FILE, records.TUNED_FILE,
            records.SUMMARY_FILE) == ("baseline.json", "search.json", "comparison.json", "tuned_config.json", "summary.md")


def test_the_committed_h100_and_h200_optimize_folders_load_with_these_records():
    # The split kept the JSON format: every baseline.json and search.json of the committed runs
    # (bench/triton_attention/) loads as the typed records.
    from pathlib import Path

    bench = Path(__file__).resolve().parents[3] / "bench" / "triton_attention"
    found = 0
    for path in sorted(bench.glob("*/*/baseline.json")):
        assert load_record(path, records.BaselineRecord).best_backend
        found += 1
    for path in sorted(bench.glob("*/*/search.json")):
        assert load_record(path, records.SearchRecord).trials
        found += 1
    assert found >= 4
