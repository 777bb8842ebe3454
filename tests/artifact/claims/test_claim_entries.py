"""Each claim kind writes its own reference-file entry (Claim.entry, what derive-reference writes)
and parses it back to an equal claim: a kind's schema lives once, in its module."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from testkit import REPO

from artifact import claims as C
from artifact import derive
from artifact.claims.parts import CASE_FIELDS, CaseSelector, Scope, Tolerance
from artifact.reference import load_reference

DEFAULTS = {"workload": "sdpa", "batch": 32, "heads": 8, "head_dim": 64, "dtype": "float16", "causal": False,
            "cache": "warm", "device": "cuda"}
H100 = "NVIDIA H100 80GB HBM3"


def one(**values) -> CaseSelector:
    """A selector of one case that writes only what differs from DEFAULTS, as derive builds them."""
    full = {**DEFAULTS, **values}
    return CaseSelector.of(full, given=tuple(k for k in CASE_FIELDS if k not in DEFAULTS or k in values))


def rel(width, rule="equivalence") -> Tolerance:
    return Tolerance(rule, rel=width, derivation={"method": "test", "runs": 3})


def absolute_tol(width, rule="equivalence") -> Tolerance:
    return Tolerance(rule, abs=width, derivation={"method": "test"})


SAME = Scope("gpu_model", gpu_name=H100)
FAMILY = Scope("compute_capability", cc_min="9.0", cc_max="9.0")
ANY_GPU = Scope("any_gpu")

CLAIMS = [
    C.AbsoluteClaim(id="abs", scope=SAME, case=one(backend="flash", seq=512), metric="median_ms", reference=0.125,
                    tolerance=rel(0.06)),
    C.RatioClaim(id="ratio", scope=FAMILY, numerator=one(backend="cudnn", seq=1024), denominator=one(backend="flash", seq=1024),
                 reference=0.91, tolerance=rel(0.04)),
    C.RankingClaim(id="rank", scope=FAMILY, shape=one(seq=2048), order=[["cudnn"], ["flash", "efficient"], ["math"]],
                   rule="point", description="fastest first"),
    C.ScalingClaim(id="scaling", scope=FAMILY, case=one(backend="flash"), seqs=[512, 1024, 2048], reference=1.87,
                   tolerance=absolute_tol(0.05)),
    C.EfficiencyClaim(id="eff", scope=FAMILY, case=one(backend="cudnn", seq=4096), ceiling="matmul_tflops",
                      reference=0.61, tolerance=rel(0.05, "point")),
    C.CorrectnessClaim(id="correct", scope=ANY_GPU, required=False,
                       cases=CaseSelector.of({**DEFAULTS, "backend": "flash", "seq": [512, 1024]}, given=("backend", "seq")),
                       max_rel_error=0.002, description="4 x the largest error seen"),
    C.MemoryBoundClaim(id="mem", scope=SAME, case=one(backend="math", seq=1024), max_peak_bytes=123_456_789),
    C.MemoryGrowthClaim(id="memgrowth", scope=ANY_GPU, required=False, case=one(backend="math"), seqs=[256, 512, 1024],
                        reference=2.0, tolerance=absolute_tol(0.05, "point")),
    C.DeterminismClaim(id="determinism", scope=ANY_GPU, cases=CaseSelector(case_id="sdpa-math-b32h8s512d64-float16-full-warm-cuda")),
    C.EnvironmentClaim(id="env", scope=ANY_GPU, tf32_off=True, fill_off=True, min_nvidia_driver="550.54",
                       description="the numerics lock"),
]


def reference_with(entries: list[dict], tmp_path: Path) -> Path:
    doc = {"schema_version": 2, "kind": "reference", "name": "entries",
           "hardware": {"device": "cuda", "gpu_name": H100, "compute_capability": "9.0"},
           "defaults": dict(DEFAULTS), "claims": entries}
    path = tmp_path / "ref.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_every_kind_is_covered():
    assert {c.kind for c in CLAIMS} == set(C.CLAIM_KINDS)
    assert {type(c) for c in CLAIMS} >= {C.MemoryBoundClaim, C.MemoryGrowthClaim}


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_each_kind_writes_an_entry_that_parses_back_to_an_equal_claim(claim, tmp_path):
    entry = claim.entry()
    assert list(entry)[:3] == ["id", "kind", "scope"] and entry["kind"] == claim.KIND
    parsed = load_reference(reference_with([entry], tmp_path)).claims[0]
    assert type(parsed) is type(claim)
    assert parsed == claim
    assert parsed.entry() == entry


def test_an_entry_writes_only_what_the_file_does_not_default():
    entry = CLAIMS[0].entry()
    assert entry["case"] == {"backend": "flash", "seq": 512}
    assert "required" not in entry and "description" not in entry  # the defaults: required, the summary
    assert CLAIMS[5].entry()["required"] is False


def test_derive_writes_each_kind_through_its_own_entry(monkeypatch):
    """derive-reference builds typed claims; no dict literal of a claim is left in it."""
    written: list[str] = []
    real = C.Claim.entry

    def spy(self):
        written.append(self.kind)
        return real(self)

    monkeypatch.setattr(C.Claim, "entry", spy)
    runs = sorted((REPO / "bench" / "h200").glob("machine-[BC]/run-*"))
    doc = derive.derive(runs, derive.DeriveOptions(name="t", ratio_pairs=[("cudnn", "flash")]))
    assert len(written) == len(doc["claims"]) and {c["kind"] for c in doc["claims"]} == set(written)
    assert {"absolute", "ratio", "ranking", "scaling", "efficiency", "correctness", "memory", "determinism",
            "environment"} <= set(written)
