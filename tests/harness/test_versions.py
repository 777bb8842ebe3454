"""One registry of record kinds and their versions (harness/versions.py), one reading policy for
all of them: an older version reads, a newer one is refused in one line naming the file and the fix."""

from __future__ import annotations

import json

import pytest
from test_records import _result
from testkit import REPO

from harness import plan, versions
from harness.errors import HarnessError, RecordError
from harness.records import to_dict


def test_every_record_kind_written_anywhere_is_registered():
    from artifact import reference, verdict
    from artifact.launch import archive, shards
    from artifact.results import runinfo
    from harness import compare, ncu, records, tuned

    kinds = {records.KIND_CASE, records.KIND_ENV, records.KIND_MANIFEST, records.KIND_CEILINGS, runinfo.KIND_RUN,
             shards.KIND_SHARDED, archive.KIND_ARCHIVE, reference.KIND_REFERENCE, verdict.KIND_VERDICT,
             compare.KIND_COMPARISON, tuned.KIND_TUNED, ncu.KIND_NCU, plan.KIND_PLAN}
    assert kinds <= set(versions.KINDS)
    # Each record's own default is its registered version: the table is the only place to bump one.
    assert verdict.Verdict.schema_version == versions.current("verdict")
    assert runinfo.RunInfo.schema_version == versions.current("run")
    assert compare.Comparison.kind == "comparison"


@pytest.mark.parametrize("kind", sorted(versions.KINDS))
def test_one_policy_older_reads_newer_is_refused(kind):
    newest = versions.current(kind)
    assert all(versions.refusal(kind, v) is None for v in range(1, newest + 1))
    why = versions.refusal(kind, newest + 1)
    assert why is not None and "newer than this tool reads" in why and why.endswith("upgrade the tool")
    assert versions.refusal(kind, "2") is not None and versions.refusal(kind, True) is not None


def test_an_older_record_reads_and_a_newer_one_names_the_file_and_the_fix(tmp_path):
    from harness.records import load_record

    d = to_dict(_result())
    d["schema_version"] = 2
    (tmp_path / "old.json").write_text(json.dumps(d))
    assert load_record(tmp_path / "old.json").case == _result().case
    d["schema_version"] = versions.current("case_result") + 1
    (tmp_path / "new.json").write_text(json.dumps(d))
    with pytest.raises(RecordError) as exc:
        load_record(tmp_path / "new.json")
    msg = str(exc.value)
    assert msg.startswith(f"{tmp_path / 'new.json'}: schema_version") and "upgrade the tool" in msg and "\n" not in msg


def test_a_record_is_checked_against_its_own_kind(tmp_path):
    """run.json is checked against the run record's version, not the case records'."""
    from artifact.results.folder import RUN_FILE, load_run_info

    info = json.loads((REPO / "bench" / "h200" / "machine-D" / "run-D1" / "run.json").read_text())
    (tmp_path / RUN_FILE).write_text(json.dumps(info | {"schema_version": versions.current("run") + 1}))
    with pytest.raises(Exception, match=r"run\.json: schema_version \d+ is newer than this tool reads for a run record"):
        load_run_info(tmp_path)


def test_plans_follow_the_same_policy(tmp_path):
    p = tmp_path / "plan.yaml"
    p.write_text("schema_version: 2\ncases:\n  - {backend: math, batch: 1, heads: 1, seq: 8, head_dim: 8}\n")
    with pytest.raises(HarnessError, match=r"plan.yaml: schema_version 2 is newer than this tool reads for a plan record"):
        plan.from_yaml(p, "cpu")


def test_the_verdict_file_is_read_back_checked(tmp_path):
    from artifact.errors import ArtifactError
    from artifact.verdict import load_verdict

    data = json.loads((REPO / "bench" / "h200" / "machine-D" / "run-D1" / "verdict.json").read_text())
    (tmp_path / "ok.json").write_text(json.dumps(data))
    assert load_verdict(tmp_path / "ok.json").status == data["status"]
    older = data | {"schema_version": 1}
    (tmp_path / "v1.json").write_text(json.dumps(older))
    assert load_verdict(tmp_path / "v1.json").schema_version == 1
    (tmp_path / "v9.json").write_text(json.dumps(data | {"schema_version": 9}))
    with pytest.raises(ArtifactError, match=r"v9.json: schema_version 9 is newer .* upgrade the tool"):
        load_verdict(tmp_path / "v9.json")
    # A field of the wrong type is refused, naming it (it was shown to a reviewer as it stood).
    bad = json.loads(json.dumps(data))
    bad["claims"][0]["measured"] = "fast"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ArtifactError, match=r"bad.json: claims\[0\]\.measured: expected a number"):
        load_verdict(tmp_path / "bad.json")

