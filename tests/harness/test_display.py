"""What a person reads after a sweep: the reasons of cases that are not ok, once each."""

from __future__ import annotations

from harness.display import reasons
from harness.records import CaseResult, CaseSpec

SPEC = CaseSpec("sdpa", "flash", 1, 1, 16, 16, device="cpu")


def test_a_reason_is_said_once_with_its_status():
    lines = reasons([CaseResult(SPEC, "invalid", reason="invalid: timed_outputs: wrong"),
                     CaseResult(SPEC, "skipped", reason="no CUDA GPU visible"),
                     CaseResult(SPEC, "ok")])
    assert lines == [f"{SPEC.case_id}: invalid: timed_outputs: wrong", f"{SPEC.case_id}: skipped: no CUDA GPU visible"]
