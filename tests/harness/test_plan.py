import pytest

from harness import plan
from harness.errors import HarnessError
from harness.workloads import SDPA_BACKENDS


def test_full_profile_is_the_issue_sweep():
    p = plan.from_profile("full", "cuda")
    assert len(p.cases) == 25
    assert {c.seq for c in p.cases} == {128, 512, 1024, 2048, 4096}
    assert {c.backend for c in p.cases} == set(SDPA_BACKENDS) and len(SDPA_BACKENDS) == 5
    assert all((c.batch, c.heads, c.head_dim, c.dtype) == (32, 8, 64, "float16") for c in p.cases)
    with pytest.raises(HarnessError, match="needs a CUDA GPU"):
        plan.from_profile("full", "cpu")


def test_yaml_plan_expands_lists(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("schema_version: 1\ntiming: {repeats: 3}\ndefaults: {batch: 2, heads: 2, head_dim: 16}\n"
                 "cases:\n  - {backend: [math, flash], seq: [64, 128], causal: [false, true]}\n")
    p = plan.from_yaml(f, "cpu")
    assert len(p.cases) == 8 and p.timing.repeats == 3
    assert {c.causal for c in p.cases} == {False, True}


@pytest.mark.parametrize("text, match", [
    ("cases: [ {backend: flash, seq: 1", r"p\.yaml: malformed YAML at line"),
    ("cases:\n  - {backend: warp, seq: 64, batch: 1, heads: 1, head_dim: 8}\n", r"cases\[0\]\.backend: unknown backend 'warp'"),
    ("cases:\n  - {backend: math, seq: -4, batch: 1, heads: 1, head_dim: 8}\n", r"cases\[0\]\.seq: must be a positive integer"),
    ("cases:\n  - {backend: math, seq: 64, batch: 1, heads: 1}\n", r"cases\[0\]: missing field\(s\) head_dim"),
    ("cases:\n  - {backend: math, seqlen: 64}\n", r"unknown field\(s\) seqlen"),
    ("timing: {target_rel_ci: fast}\ncases:\n  - {backend: math, seq: 64, batch: 1, heads: 1, head_dim: 8}\n", r"timing\.target_rel_ci: must be a number"),
    ("[1, 2]", "a plan must be a mapping"),
])
def test_bad_plans_name_file_and_field(tmp_path, text, match):
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(HarnessError, match=match):
        plan.from_yaml(f, "cpu")


def test_flags_name_the_flag():
    with pytest.raises(HarnessError, match="--backends: unknown backend 'flashy'"):
        plan.from_flags(seqs=[64], backends=["flashy"], batch=1, heads=1, head_dim=8, dtype="float16", causal=False, cache="warm", device="cpu")
    with pytest.raises(HarnessError, match="--seq: '0' is not a positive integer"):
        plan.parse_positive_ints(["128,0"], "--seq")
    assert plan.parse_positive_ints(["128,512", "1024"], "--seq") == [128, 512, 1024]


def test_smoke_pins_one_cpu_thread_and_plans_may_set_it(tmp_path):
    assert plan.from_profile("smoke", "cpu").cpu_threads == 1
    assert plan.from_profile("smoke", "cuda").cpu_threads is None
    f = tmp_path / "p.yaml"
    f.write_text("cpu_threads: 3\ncases:\n  - {backend: math, seq: 64, batch: 1, heads: 1, head_dim: 8}\n")
    assert plan.from_yaml(f, "cpu").cpu_threads == 3
    f.write_text("cpu_threads: 0\ncases:\n  - {backend: math, seq: 64, batch: 1, heads: 1, head_dim: 8}\n")
    with pytest.raises(HarnessError, match=r"p\.yaml: cpu_threads: must be a positive integer"):
        plan.from_yaml(f, "cpu")
