"""A kernel of one's own through the whole door (issue 18, item 2): a reference can hold claims on a
user's workload ("package.module:ATTR", in a case_id "package.module.ATTR"), derive-reference writes
them, and check judges them. Read on the committed H100 run of the adversarial suite, whose HONEST
workload is a user module (bench/adversarial/cheats.py) measured ok beside the cheats (invalid)."""

from __future__ import annotations

import pytest
from testkit import REPO, copy_run

from artifact import derive, verdict
from artifact.errors import ArtifactError
from artifact.reference import load_reference

RUN = REPO / "bench" / "adversarial" / "h100" / "cheats"
HONEST = "bench.adversarial.cheats:HONEST"


def reference_text(case: str) -> str:
    return f"""schema_version: 2
kind: reference
name: mine
hardware: {{device: cuda, gpu_name: NVIDIA H100 80GB HBM3}}
claims:
  - id: mine
    kind: correctness
    scope: {{kind: any_gpu}}
    cases: {case}
    max_rel_error: 0.01
"""


@pytest.mark.parametrize("case", [
    f"{{workload: '{HONEST}', backend: default, batch: 32, heads: 8, seq: 512, head_dim: 64}}",
    "{case_id: bench.adversarial.cheats.HONEST-default-b32h8s512d64-float16-full-warm-cuda}",
])
def test_a_claim_on_a_users_workload_is_read(tmp_path, case):
    ref = tmp_path / "mine.yaml"
    ref.write_text(reference_text(case))
    assert [c.id for c in load_reference(ref).claims] == ["mine"]


@pytest.mark.parametrize("case,why", [
    ("{workload: sdpaa, backend: default, batch: 32, heads: 8, seq: 512, head_dim: 64}", "unknown workload 'sdpaa'"),
    ("{workload: 'bench.cheats:', backend: default, batch: 32, heads: 8, seq: 512, head_dim: 64}",
     "is not of the form package.module:ATTR"),
    (f"{{workload: '{HONEST}', backend: 'a b', batch: 32, heads: 8, seq: 512, head_dim: 64}}", "is not a name"),
    ("{workload: sdpa, backend: triton, batch: 32, heads: 8, seq: 512, head_dim: 64}", "unknown backend 'triton'"),
])
def test_a_workload_or_backend_no_run_can_produce_is_still_refused(tmp_path, case, why):
    ref = tmp_path / "bad.yaml"
    ref.write_text(reference_text(case))
    with pytest.raises(ArtifactError, match=why):
        load_reference(ref)


def test_derive_then_check_a_users_workload(tmp_path):
    run = copy_run(RUN, tmp_path / "run")
    doc = derive.derive([run], derive.DeriveOptions(name="mine", min_runs=1, min_machines=1, ratio_pairs=[]))
    out = tmp_path / "mine.yaml"
    derive.write_reference(doc, out)  # read back and validated before it is written
    # Every case claimed is the user's workload, so it is the file's default workload.
    assert doc["defaults"]["workload"] == HONEST and {"absolute", "correctness", "memory"} <= {c["kind"] for c in doc["claims"]}
    # The cheats were invalid in the run: none of them is claimed, each is named under not_claimed.
    assert not any("POINTER_CACHE" in str(c) for c in doc["claims"])
    assert any("POINTER_CACHE" in n["what"] and "invalid" in n["why"] for n in doc["not_claimed"])
    v = verdict.check(run, load_reference(out))
    honest = [c for c in v.claims if "HONEST" in " ".join(c.cases)]
    assert honest and all(c.status == "PASS" for c in honest)
    assert v.status == "INVALID" and v.exit_code == 3  # the folder still holds the cheats' invalid cases
