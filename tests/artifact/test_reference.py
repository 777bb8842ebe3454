"""The reference file: valid files parse into typed claims; every malformed file is one error line
naming file, line and field, with exit code 2."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from resultsfolders import env_record
from testkit import REPO

from artifact import claims as C
from artifact.claims.parts import Scope
from artifact.cli import main
from artifact.reference import REFERENCE_VERSION, load_reference
from artifact.yamlnode import ReferenceFileError
from harness.records import CaseSpec

GOOD = """\
schema_version: 1
kind: reference
name: test-ref
hardware:
  device: cuda
  gpu_name: NVIDIA L4
  compute_capability: "8.9"
  peaks:
    - {metric: tflops, dtype: float16, value: 121.0, unit: TFLOP/s, source: "measured: test"}
defaults: {workload: sdpa, batch: 32, heads: 8, head_dim: 64, dtype: float16}
claims:
  - id: abs-flash-s512
    kind: absolute
    scope: {kind: gpu_model, gpu_name: NVIDIA L4}
    case: {backend: flash, seq: 512}
    metric: median_ms
    reference: 0.33
    tolerance: {rel: 0.05, rule: equivalence, derivation: "hand-set for this test"}
  - id: ratio-cudnn-flash-s512
    kind: ratio
    scope: {kind: compute_capability, min: "8.0", max: "9.0"}
    numerator: {backend: cudnn, seq: 512}
    denominator: {backend: flash, seq: 512}
    reference: 0.88
    tolerance: {rel: 0.05, rule: point, derivation: {k: 2}}
  - id: rank-s512
    kind: ranking
    scope: any_gpu
    shape: {seq: 512}
    order: [cudnn, flash, [efficient, default], math]
  - id: scaling-flash
    kind: scaling
    scope: {kind: gpu_model, gpu_name: NVIDIA L4}
    case: {backend: flash}
    seqs: [1024, 256, 512]
    reference: 1.9
    tolerance: {abs: 0.1, rule: equivalence, derivation: test}
  - id: correct-all
    kind: correctness
    scope: any_gpu
    cases: {backend: [flash, cudnn]}
    max_rel_error: 0.002
  - id: mem-math-s512
    kind: memory
    scope: any_gpu
    case: {backend: math, seq: 512}
    max_peak_bytes: 400000000
  - id: det
    kind: determinism
    scope: any_gpu
    required: false
    cases: {case_id: sdpa-flash-b32h8s512d64-float16-full-warm-cuda}
  - id: env
    kind: environment
    scope: any
    require: {tf32_off: true, deterministic: true, min_nvidia_driver: "535.104"}
"""


def write(tmp_path: Path, text: str, name: str = "ref.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def replace_line(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def line_of(text: str, needle: str) -> int:
    """The last line holding needle (a duplicate is reported where it repeats)."""
    return [i + 1 for i, line in enumerate(text.splitlines()) if needle in line][-1]


def test_a_valid_file_parses_into_typed_claims(tmp_path):
    ref = load_reference(write(tmp_path, GOOD))
    assert ref.schema_version == 1 < REFERENCE_VERSION and ref.name == "test-ref"  # older files still load
    assert [type(c) for c in ref.claims] == [C.AbsoluteClaim, C.RatioClaim, C.RankingClaim, C.ScalingClaim,
                                            C.CorrectnessClaim, C.MemoryBoundClaim, C.DeterminismClaim, C.EnvironmentClaim]
    absolute = ref.claim("abs-flash-s512")
    # The file's defaults and CaseSpec's defaults complete the selector, device from the hardware.
    spec = CaseSpec(workload="sdpa", backend="flash", batch=32, heads=8, seq=512, head_dim=64, dtype="float16", device="cuda")
    assert absolute.case.matches(spec)
    assert not absolute.case.matches(CaseSpec(**{**vars(spec), "seq": 256}))
    assert absolute.tolerance.rule == "equivalence" and absolute.tolerance.rel == 0.05
    assert absolute.line == line_of(GOOD, "id: abs-flash-s512")
    assert ref.claim("rank-s512").order == [["cudnn"], ["flash"], ["efficient", "default"], ["math"]]
    assert ref.claim("scaling-flash").seqs == [256, 512, 1024]
    assert ref.claim("det").required is False
    assert ref.claim("det").cases.matches(spec)
    env = ref.claim("env")
    assert (env.tf32_off, env.deterministic, env.min_nvidia_driver) == (True, True, "535.104")
    assert ref.hardware.peak("tflops", "float16").value == 121.0
    assert len(ref.sha256) == 64


def test_every_claim_depends_on_the_cases_it_names(tmp_path):
    ref = load_reference(write(tmp_path, GOOD))
    on_cudnn = {c.id for c in ref.claims if c.depends_on(backend="cudnn")}
    assert on_cudnn == {"ratio-cudnn-flash-s512", "rank-s512", "correct-all"}
    assert {c.id for c in ref.claims if c.depends_on(backend="math")} == {"rank-s512", "mem-math-s512"}


@pytest.mark.parametrize(
    "old, new, needle, expect",
    [
        ("kind: ratio", "kind: speedup", "kind: speedup", "claims[1].kind: 'speedup' is not one of absolute"),
        ("case: {backend: flash, seq: 512}", "case: {backend: flashy, seq: 512}", "backend: flashy",
         "unknown backend 'flashy': no run can produce this case"),
        ("    metric: median_ms\n", "", "id: abs-flash-s512", "claims[0]: missing field 'metric'"),
        ("    reference: 0.33\n", "    reference: 0.33\n    colour: red\n", "colour: red", "claims[0].colour: unknown field"),
        ("denominator: {backend: flash, seq: 512}", "denominator: {backend: flash, seq: 256}", "denominator:",
         "numerator and denominator differ in seq"),
        ("{rel: 0.05, rule: equivalence, derivation: \"hand-set for this test\"}", "{rel: 0.05, rule: equivalence}",
         "tolerance: {rel: 0.05, rule: equivalence}", "missing field 'derivation'"),
        ("rel: 0.05, rule: point", "rel: 1.5, rule: point", "rel: 1.5", "tolerance.rel: 1.5 is a tolerance of 150% or more"),
        ("rule: point", "rule: roughly", "rule: roughly", "'roughly' is not one of point, equivalence"),
        ("seqs: [1024, 256, 512]", "seqs: [256, 512]", "seqs: [256, 512]", "an exponent needs at least three points"),
        ("id: det", "id: env", "id: env", "duplicate claim id 'env'"),
        ("{case_id: sdpa-flash-b32h8s512d64-float16-full-warm-cuda}", "{case_id: flash-512}", "case_id: flash-512",
         "is not a case id the harness writes"),
        ("scope: {kind: compute_capability, min: \"8.0\", max: \"9.0\"}", "scope: {kind: compute_capability, min: \"9.0\", max: \"8.0\"}",
         "min: \"9.0\"", "min 9.0 exceeds max 8.0"),
        ("schema_version: 1", "schema_version: 7", "schema_version: 7", "newer than this tool reads"),
        ("min_nvidia_driver: \"535.104\"", "min_nvidia_driver: recent", "min_nvidia_driver: recent", "expected a version"),
        ("order: [cudnn, flash, [efficient, default], math]", "order: [cudnn, flash, cudnn]", "order:", "a backend appears twice"),
        ("max_peak_bytes: 400000000", "max_peak_bytes: -3", "max_peak_bytes: -3", "must be positive"),
        ("dtype: float16}", "dtype: float8}", "defaults:", "'float8' is not one of"),
    ],
)
def test_malformed_claims_name_file_line_and_field(tmp_path, old, new, needle, expect):
    text = replace_line(GOOD, old, new)
    path = write(tmp_path, text)
    with pytest.raises(ReferenceFileError) as err:
        load_reference(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:{line_of(text, needle)}:"), msg
    assert expect in msg, msg
    assert "\n" not in msg and err.value.exit_code == 2


def test_bad_yaml_names_the_line_and_column(tmp_path):
    text = replace_line(GOOD, "    metric: median_ms", "    metric: [median_ms")
    path = write(tmp_path, text)
    with pytest.raises(ReferenceFileError) as err:
        load_reference(path)
    assert f"{path}:" in str(err.value) and "malformed YAML" in str(err.value)
    # The parser stops at the line after the unclosed bracket; the message points there.
    assert f":{line_of(text, 'metric: [median_ms') + 1}: column" in str(err.value)


def test_not_a_mapping_and_missing_file(tmp_path):
    with pytest.raises(ReferenceFileError, match=r"ref.yaml:1: a reference file is a mapping"):
        load_reference(write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(ReferenceFileError, match="reference file not found"):
        load_reference(tmp_path / "nope.yaml")
    with pytest.raises(ReferenceFileError, match="no claims"):
        load_reference(write(tmp_path, GOOD.split("claims:")[0] + "claims: []\n"))


def test_the_cli_reports_a_bad_reference_in_one_line_with_exit_2(tmp_path, capsys):
    path = write(tmp_path, replace_line(GOOD, "kind: ratio", "kind: speedup"))
    results = tmp_path / "results"
    results.mkdir()
    assert main(["check", str(results), "--reference", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: {path}:") and "Traceback" not in err


@pytest.mark.parametrize(
    "scope, device, gpu, cc, inside",
    [
        (Scope("any"), "cpu", None, None, True),
        (Scope("cpu"), "cpu", None, None, True),
        (Scope("cpu"), "cuda", "NVIDIA L4", "8.9", False),
        (Scope("any_gpu"), "cpu", None, None, False),
        (Scope("any_gpu"), "cuda", "NVIDIA A100-SXM4-80GB", "8.0", True),
        (Scope("gpu_model", gpu_name="NVIDIA H100 80GB HBM3"), "cuda", "NVIDIA H100 80GB HBM3", "9.0", True),
        (Scope("gpu_model", gpu_name="NVIDIA H100 80GB HBM3"), "cuda", "NVIDIA H100 PCIe", "9.0", False),
        (Scope("compute_capability", cc_min="8.0", cc_max="8.9"), "cuda", "NVIDIA L4", "8.9", True),
        (Scope("compute_capability", cc_min="8.0", cc_max="8.9"), "cuda", "NVIDIA H100 80GB HBM3", "9.0", False),
        (Scope("compute_capability", cc_min="7.5", cc_max="12.0"), "cuda", "NVIDIA H100 80GB HBM3", "9.0", True),
    ],
)
def test_scope_matches_hardware(scope, device, gpu, cc, inside):
    env = env_record(device=device, gpu_name=gpu or "x", cc=cc or "0.0")
    ok, why = scope.applies(env)
    assert ok is inside
    if not inside:
        assert ("CPU" in why) if device == "cpu" else (gpu in why)


@pytest.mark.parametrize("name", ["cpu-smoke.yaml", "h100.yaml"])
def test_the_shipped_references_parse(name):
    path = REPO / "artifact" / "references" / name
    if not path.exists():
        pytest.fail(f"{path} is not shipped yet: derive it with `artifact derive-reference` (see ARTIFACT.md)")
    ref = load_reference(path)
    assert ref.claims
    for claim in ref.claims:
        tol = getattr(claim, "tolerance", None)
        if tol is not None:
            # Tolerances come from measured spread: the file says how, per claim.
            assert isinstance(tol.derivation, dict) and tol.derivation["runs"] >= 3, claim.id
    if ref.hardware.device == "cuda":
        # The issue: at least three runs on at least two separately started machines.
        assert ref.derived_from["machines"] >= 2, f"{name} comes from {ref.derived_from['machines']} machine(s); re-derive it"
