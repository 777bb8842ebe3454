import json

import pytest

from harness.errors import RecordError
from harness.records import (
    SCHEMA_VERSION,
    CaseResult,
    CaseSpec,
    Correctness,
    Repetition,
    Timing,
    TimingSummary,
    from_dict,
    load_record,
    to_dict,
    to_json,
)


def _result() -> CaseResult:
    spec = CaseSpec(workload="sdpa", backend="flash", batch=2, heads=4, seq=128, head_dim=32, dtype="float16", device="cuda")
    summary = TimingSummary(n_samples=3, n_repetitions=1, median_ms=0.5, mean_ms=0.51, std_ms=0.01, min_ms=0.49, max_ms=0.53,
                            ci_low_ms=0.49, ci_high_ms=0.52, ci_level=0.95, ci_method="bca", rel_halfwidth=0.02, converged=True)
    timing = Timing(method="cuda_graph", fallback_reason=None, target_rel_ci=0.01, warmup_calls=4,
                    repetitions=[Repetition([0.49, 0.5, 0.53], 10, True, "converged", 0.02, 0.1)], summary=summary)
    return CaseResult(case=spec, status="ok", timing=timing,
                      correctness=Correctness("float64", 1e-4, 5e-3, True, True))


def test_round_trip_keeps_every_field(tmp_path):
    r = _result()
    p = tmp_path / "r.json"
    p.write_text(to_json(r))
    back = load_record(p)
    assert isinstance(back, CaseResult)
    assert to_dict(back) == to_dict(r)
    assert back.timing.repetitions[0].samples_ms == [0.49, 0.5, 0.53]
    assert json.loads(p.read_text())["schema_version"] == SCHEMA_VERSION


def test_case_id_names_every_axis_and_config_changes_it():
    a = CaseSpec("sdpa", "flash", 32, 8, 512, 64)
    assert a.case_id == "sdpa-flash-b32h8s512d64-float16-full-warm-cuda"
    b = CaseSpec("triton_attention", "triton", 32, 8, 512, 64, config={"BLOCK_M": 128})
    c = CaseSpec("triton_attention", "triton", 32, 8, 512, 64, config={"BLOCK_M": 64})
    assert b.case_id != c.case_id and b.case_id.startswith("triton_attention-triton-b32h8s512d64")
    assert a.shape_key == CaseSpec("sdpa", "cudnn", 32, 8, 512, 64).shape_key


def test_truncated_file_names_file_and_says_truncated(tmp_path):
    p = tmp_path / "r.json"
    p.write_text(to_json(_result())[:200])
    with pytest.raises(RecordError, match=r"r\.json: not valid JSON.*truncated"):
        load_record(p)


def test_missing_and_mistyped_fields_are_named(tmp_path):
    d = to_dict(_result())
    del d["case"]["seq"]
    with pytest.raises(RecordError, match=r"case\.seq: missing field"):
        from_dict(CaseResult, d)
    d = to_dict(_result())
    d["timing"]["summary"]["median_ms"] = "fast"
    with pytest.raises(RecordError, match=r"timing\.summary\.median_ms: expected a number"):
        from_dict(CaseResult, d)


def test_newer_schema_is_refused(tmp_path):
    d = to_dict(_result())
    d["schema_version"] = SCHEMA_VERSION + 1
    p = tmp_path / "r.json"
    p.write_text(json.dumps(d))
    with pytest.raises(RecordError, match="newer than this tool reads"):
        load_record(p)


def test_nan_is_never_written():
    r = _result()
    r.timing.summary.median_ms = float("nan")
    with pytest.raises(ValueError):
        to_json(r)
