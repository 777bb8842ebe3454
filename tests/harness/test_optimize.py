"""`harness optimize`: the search logic on synthetic timings, and the real loop end to end on the CPU
(SDPA baselines, the Triton kernel in its interpreter) on a tiny shape."""

import os

# The CPU end-to-end run interprets the Triton kernel; triton.jit reads this when the kernel
# module is first imported (harness.optimize imports it lazily, after this line).
os.environ["TRITON_INTERPRET"] = "1"

import json  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from harness import compare, stats, storage, tuned  # noqa: E402
from harness.cli import main  # noqa: E402
from harness.compare import load_comparison  # noqa: E402
from harness.errors import HarnessError, RecordError  # noqa: E402
from harness.optimize import plans, records  # noqa: E402
from harness.optimize.halving import rung_timing  # noqa: E402
from harness.optimize.run import run_optimize  # noqa: E402
from harness.optimize.search import config, describe, search_space  # noqa: E402
from harness.optimize.settings import OptimizeSettings  # noqa: E402
from harness.records import CaseResult, CaseSpec, Correctness, Repetition, Timing, load_record  # noqa: E402

TINY = ["--device", "cpu", "--batch", "1", "--heads", "2", "--seq", "32", "--head-dim", "16"]


# --------------------------------------------------------------------------- synthetic measurements
class FakeBench:
    """Stands in for run_case: each config has a true median time; samples are lognormal around it.
    Every call advances a fake clock by `cost_s`, so budgets are exercised deterministically."""

    def __init__(self, true_ms: dict[str, float], incorrect=(), cost_s=1.0, sigma=0.02, seed=0):
        self.true_ms, self.incorrect, self.cost_s, self.sigma = true_ms, set(incorrect), cost_s, sigma
        self.rng = np.random.default_rng(seed)
        self.now = 0.0
        self.calls: list[tuple[str, float]] = []

    def key(self, spec: CaseSpec) -> str:
        return describe(spec.config) if spec.config else spec.backend

    def clock(self) -> float:
        return self.now

    def __call__(self, spec: CaseSpec, timing) -> CaseResult:
        self.now += self.cost_s
        key = self.key(spec)
        self.calls.append((key, timing.max_time_s))
        if key not in self.true_ms and key not in self.incorrect:
            return CaseResult(case=spec, status="skipped", reason=f"{key} runs on CUDA GPUs only")
        bad = key in self.incorrect
        corr = Correctness("float64", 0.5 if bad else 3e-4, 5e-3, not bad, True)
        if bad:
            return CaseResult(case=spec, status="failed", reason="relative error 0.5 exceeds tolerance", correctness=corr)
        groups = [list(self.true_ms[key] * np.exp(self.rng.normal(0, self.sigma, 60))) for _ in range(timing.repeats)]
        summary = stats.summarize_repetitions(groups, [True] * len(groups), n_resamples=500)
        reps = [Repetition(g, 1, True, "converged", summary.rel_halfwidth, 0.1) for g in groups]
        return CaseResult(case=spec, status="ok", correctness=corr,
                          timing=Timing("perf_counter", None, timing.target_rel_ci, 3, reps, summary))


def _configs(n):
    return [config(bm, bn, 4, s) for bm, bn, s in [(64, 32, 2), (64, 32, 3), (64, 64, 2), (64, 64, 3),
                                                            (32, 16, 2), (32, 16, 3), (32, 32, 2), (32, 32, 3),
                                                            (16, 16, 2)][:n]]


def _settings(**kw):
    return OptimizeSettings(batch=1, heads=2, seq=32, head_dim=16, device="cpu", **kw)


def _run(settings, out, bench: FakeBench):
    """The run on the bench's fake clock: budgets are tested without depending on real time."""
    return run_optimize(settings, out, measure=bench, log=lambda _: None, now=bench.clock)


def test_halving_picks_the_truly_fastest_and_never_times_incorrect_configs(tmp_path):
    space = _configs(9)
    rng = np.random.default_rng(3)
    true = {describe(c): float(t) for c, t in zip(space, rng.uniform(1.0, 2.0, 9))}
    fastest = min(true, key=true.get)
    broken = sorted(true, key=true.get)[1]  # the second fastest gives wrong answers
    true.update(flash=1.5, math=3.0, default=1.4)
    bench = FakeBench(true, incorrect={broken}, cost_s=0.5)
    # A generous budget: rung 0 sees every config.
    out = _run(_settings(budget_s=1000, space=space), tmp_path, bench)

    s = out.search
    assert describe(s.winner) == fastest and out.tuned.config == s.winner
    assert s.n_tried == 9 and s.n_correct == 8
    # 8 correct -> keep ceil(8/3)=3 -> keep 1: rungs of 8 then 3.
    assert s.rung_sizes == [8, 3]
    bad = next(t for t in s.trials if describe(t.config) == broken)
    assert bad.status == "incorrect" and bad.medians_ms == [] and bad.rel_error == 0.5
    # Later rungs sample ETA times longer than rung 0.
    rung0 = out.search.trials[0]
    assert rung0.rungs[0] == 0
    times = {t for k, t in bench.calls if k != "flash"}
    assert any(math.isclose(t, 3 * plans.timing_plan("cpu").quick.max_time_s) for t in times)
    # The baseline is the fastest backend that ran; efficient/cudnn are absent from the table.
    assert out.baseline.best_backend == "default"
    # Candidate 1.0-2.0 ms vs baseline 1.4 ms: the comparison's verdict follows the true ratio.
    ratio = true[fastest] / 1.4
    assert out.comparison.ratio == pytest.approx(ratio, rel=0.03)
    want = "faster" if ratio < 0.97 else "slower" if ratio > 1.03 else None
    if want:
        assert out.comparison.verdict == want


def test_budget_stops_rung_zero_and_marks_the_rest_not_tried(tmp_path):
    space = _configs(9)
    true = {describe(c): 1.0 + i / 10 for i, c in enumerate(space)}
    true.update(flash=1.5, math=3.0, default=1.4)
    bench = FakeBench(true, cost_s=1.0)
    plan = plans.timing_plan("cpu")
    reserve = plans.reserve_s(plan)
    # 5 backend calls, then 60% of what is left before the reserve goes to rung 0: 6 seconds.
    budget = 5 + 10 + reserve
    out = _run(_settings(budget_s=budget, space=space), tmp_path, bench)
    s = out.search
    tried = [t for t in s.trials if t.status != "not_tried"]
    assert len(tried) == 6 and s.n_tried == 6
    assert all(t.reason == "time budget spent before this config's turn" for t in s.trials[6:])
    assert describe(s.winner) == describe(space[0])  # the fastest, tried first
    assert bench.now <= budget + 1e-9  # the whole run, final pair included, inside the budget


def test_budget_too_short_for_baseline_and_final_pair_is_a_clear_error(tmp_path):
    true = {"flash": 1.0, "math": 1.0, "default": 1.0}
    bench = FakeBench(true, cost_s=1.0)
    # 5 backend calls take 5 s; the CPU plan's final pair needs 4.8 s more.
    with pytest.raises(HarnessError, match=r"--budget-s 8 is too short: the baseline took 5 s.*give at least 20"):
        _run(_settings(budget_s=8, space=_configs(2)), tmp_path, bench)
    assert not any(k.startswith("M") for k, _ in bench.calls)  # no config was measured


def test_no_correct_config_is_an_error_naming_search_json(tmp_path):
    space = _configs(3)
    true = {"flash": 1.0, "math": 1.0, "default": 1.0}
    bench = FakeBench(true, incorrect={describe(c) for c in space})
    with pytest.raises(HarnessError, match="no config passed the correctness gate.*search.json"):
        _run(_settings(budget_s=500, space=space), tmp_path, bench)
    record = load_record(tmp_path / "search.json", records.SearchRecord)
    assert [t.status for t in record.trials] == ["incorrect"] * 3


def test_search_space_only_holds_configs_that_can_run_the_shape():
    from harness.workloads.triton_attention import config_problem

    full = CaseSpec("triton_attention", "triton", 32, 8, 512, 64, device="cuda")
    causal = replace(full, causal=True)
    for spec in (full, causal, replace(full, seq=200), replace(full, device="cpu", seq=64)):
        space = search_space(spec)
        assert space and all(config_problem(c, spec) is None for c in space)
        assert len({json.dumps(c, sort_keys=True) for c in space}) == len(space)
    assert all(c["BLOCK_M"] % c["BLOCK_N"] == 0 for c in search_space(causal))
    assert search_space(causal)[0]["reverse_m"] is True
    assert not any(c["reverse_m"] for c in search_space(full))


def test_rung_timing_stretches_time_and_tightens_precision():
    q = plans.timing_plan("cuda").quick
    r2 = rung_timing(q, 2)
    assert r2.max_time_s == pytest.approx(9 * q.max_time_s)
    assert r2.target_rel_ci == pytest.approx(q.target_rel_ci / 3)


# --------------------------------------------------------------------------- tuned records
def _tuned(**kw):
    base = dict(gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0", batch=32, heads=8, seq=512, head_dim=64,
                dtype="float16", causal=False, config=config(128, 64, 4, 3), median_ms=0.05,
                baseline_backend="cudnn", baseline_median_ms=0.0485, ratio=1.03, ratio_ci_low=1.01,
                ratio_ci_high=1.05, verdict="slower", configs_tried=30, triton_version="3.6.0",
                torch_version="2.11.0", created_at="2026-11-24T00:00:00+00:00", source="test")
    return tuned.TunedConfig(**{**base, **kw})


def test_tuned_configs_round_trip_and_lookup_prefers_exact_then_nearest(tmp_path):
    a = tuned.save(_tuned(seq=512, config=config(128, 64, 4, 3)), tmp_path)
    tuned.save(_tuned(seq=4096, config=config(128, 128, 8, 3)), tmp_path)
    tuned.save(_tuned(seq=512, causal=True, config=config(128, 64, 4, 3, rev=True)), tmp_path)
    assert a.name == "nvidia-h100-80gb-hbm3-sm90-b32h8s512d64-float16-full.json"
    assert tuned.load(a) == _tuned(seq=512, config=config(128, 64, 4, 3))
    spec = CaseSpec("triton_attention", "triton", 32, 8, 512, 64)
    assert tuned.lookup("NVIDIA H100 80GB HBM3", "9.0", spec, tmp_path).seq == 512
    assert tuned.lookup("NVIDIA H100 80GB HBM3", "9.0", replace(spec, seq=2048), tmp_path).seq == 4096
    assert tuned.lookup("NVIDIA H100 80GB HBM3", "9.0", replace(spec, seq=1024), tmp_path).seq == 512
    assert tuned.lookup("NVIDIA H100 80GB HBM3", "9.0", replace(spec, causal=True, seq=4096), tmp_path).causal
    assert tuned.lookup("NVIDIA A100-SXM4-80GB", "8.0", spec, tmp_path) is None
    assert tuned.lookup("NVIDIA H100 80GB HBM3", "9.0", replace(spec, dtype="bfloat16"), tmp_path) is None


def test_damaged_tuned_file_names_file_and_problem(tmp_path):
    path = tuned.save(_tuned(), tmp_path)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(RecordError, match=f"{path.name}: not valid JSON at line"):
        tuned.load(path)
    data = json.loads(text)
    del data["config"]
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match="config: missing field"):
        tuned.load(path)


def test_shipped_tuned_configs_are_valid_and_runnable():
    from harness.workloads.triton_attention import config_problem

    for record in tuned.all_records():
        spec = CaseSpec("triton_attention", "triton", record.batch, record.heads, record.seq, record.head_dim,
                        dtype=record.dtype, causal=record.causal)
        assert record.compute_capability and record.median_ms > 0 and record.baseline_median_ms > 0
        assert record.ratio == pytest.approx(record.median_ms / record.baseline_median_ms, rel=0.05)
        assert record.ratio_ci_low <= record.ratio <= record.ratio_ci_high
        # TMA and warp specialisation are judged as on a GPU: only the interpreter refuses them.
        cfg = dict(record.config, use_tma=False, warp_specialize=False)
        assert config_problem(cfg, spec) is None


# --------------------------------------------------------------------------- the command, for real
@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory):
    # A fresh process without TRITON_INTERPRET, as a user would start it: the command itself must
    # switch the interpreter on before the kernel module loads.
    out = tmp_path_factory.mktemp("optimize")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "optimize", *TINY, "--budget-s", "40", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.returncode, out


def test_cpu_end_to_end_writes_typed_records_and_a_summary_from_them(cpu_run):
    rc, out = cpu_run
    assert rc == 0
    assert storage.verify_manifest(out) == []
    baseline = load_record(out / "baseline.json", records.BaselineRecord)
    statuses = {r.case.backend: r.status for r in baseline.results}
    assert statuses["math"] == "ok" and statuses["cudnn"] == "skipped" and statuses["efficient"] == "skipped"
    ok = [r for r in baseline.results if r.status == "ok"]
    assert baseline.best_median_ms == min(r.timing.summary.median_ms for r in ok)
    search = load_record(out / "search.json", records.SearchRecord)
    assert search.n_tried >= 2 and search.winner is not None
    for t in search.trials:
        if t.status == "ok":
            assert t.rel_error is not None and 1e-5 < t.rel_error < 5e-3  # the gate ran, on real output
    comparison = load_comparison(out / "comparison.json")
    cases = storage.load_cases(out)
    assert {c.case.workload for c in cases} == {"sdpa", "triton_attention"}
    cand = next(c for c in cases if c.case.workload == "triton_attention")
    assert cand.case.config == search.winner and cand.correctness.passed
    base = next(c for c in cases if c.case.workload == "sdpa")
    assert base.case.backend == baseline.best_backend and comparison.baseline_id == base.case.case_id
    assert comparison.candidate_id == cand.case.case_id and comparison.relation == "speedup"
    # No speed is asserted: how the interpreter compares with torch's CPU kernels depends on what
    # else the machine runs (a loaded 2-core CI machine once gave a ratio of 0.45). What the code
    # guarantees is asserted instead: a verdict consistent with its own interval (the rule itself
    # is tested on synthetic samples above and in test_compare), and records that agree.
    assert comparison.ratio_ci_low <= comparison.ratio <= comparison.ratio_ci_high
    assert comparison.speedup_ci_low == pytest.approx(1 / comparison.ratio_ci_high)
    if comparison.verdict == compare.VERDICT_FASTER:
        assert comparison.ratio_ci_high < 1
    elif comparison.verdict == compare.VERDICT_SLOWER:
        assert comparison.ratio_ci_low > 1
    else:
        assert comparison.verdict == compare.VERDICT_NO_DIFFERENCE
        assert comparison.ratio_ci_low <= 1 <= comparison.ratio_ci_high
    record = tuned.load(out / "tuned_config.json")
    assert record.config == search.winner and record.compute_capability == "cpu"
    assert (record.ratio, record.ratio_ci_low, record.ratio_ci_high, record.verdict) == (
        comparison.ratio, comparison.ratio_ci_low, comparison.ratio_ci_high, comparison.verdict)
    assert record.baseline_backend == baseline.best_backend
    assert (record.median_ms, record.baseline_median_ms) == (cand.timing.summary.median_ms, base.timing.summary.median_ms)
    # The summary is made from these records: its numbers and verdict are theirs.
    summary = (out / "summary.md").read_text()
    assert f"{comparison.ratio:.3f}" in summary and f"**{comparison.verdict}**" in summary
    for c in (base, cand):
        assert f"| {c.case.case_id} | {c.timing.summary.median_ms:.4f} |" in summary
    met = comparison.speedup_ci_low >= OptimizeSettings().target_speedup
    assert ("**met**" in summary) == met and ("**not met**" in summary) == (not met)
    assert f"{search.n_tried} of {search.n_configs} configs tried" in summary


def test_tuned_file_is_reused_without_searching(cpu_run, tmp_path, capsys):
    _, first = cpu_run
    rc = main(["optimize", *TINY, "--budget-s", "30", "--tuned-file", str(first / "tuned_config.json"),
               "--out", str(tmp_path)])
    assert rc == 0
    assert not (tmp_path / "search.json").exists()
    again = tuned.load(tmp_path / "tuned_config.json")
    assert again.config == tuned.load(first / "tuned_config.json").config and again.configs_tried == 0
    assert "no search" in capsys.readouterr().out


@pytest.mark.parametrize("flags,message", [
    (["--dtype", "float32"], "--dtype: the Triton kernel supports float16 and bfloat16, not float32"),
    (["--dtype", "fp8"], "--dtype: unknown dtype 'fp8'"),
    (["--head-dim", "48"], "--head-dim: the Triton kernel supports 16, 32, 64, 128, not 48"),
    (["--seq", "4096"], "far too slow"),
    (["--budget-s", "-1"], "--budget-s: must be positive"),
    (["--device", "tpu"], "--device: must be auto, cuda or cpu"),
])
def test_bad_flags_give_one_line_and_exit_2(flags, message, tmp_path, capsys):
    argv = ["optimize", *TINY, *flags, "--out", str(tmp_path / "o")]
    if "--device" in flags:
        argv = ["optimize", *TINY[2:], *flags, "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_broken_tuned_file_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "tuned.json"
    bad.write_text('{"schema_version": 1, "kind": "tuned_config", "gpu_name": ')
    assert main(["optimize", *TINY, "--tuned-file", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and "not valid JSON" in err and len(err.splitlines()) == 1


def test_bench_plan_runs_the_shipped_tuned_configs():
    # harness/plans/h100-artifact.yaml is written out from harness/tuned/: they must agree.
    from harness import plan

    path = Path(__file__).resolve().parents[2] / "harness" / "plans" / "h100-artifact.yaml"
    cases = [c for c in plan.from_yaml(path, "cuda").cases if c.workload == "triton_attention"]
    shipped = {r.seq: r.config for r in tuned.all_records() if r.gpu_name == "NVIDIA H100 80GB HBM3"}
    assert cases and {c.seq: c.config for c in cases} == shipped
