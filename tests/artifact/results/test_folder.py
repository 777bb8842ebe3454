"""artifact/results/folder.py: one owner of a results folder on the host. Which files belong to it is one
rule (harness.storage.is_member, with the host's own output names passed down), read by hashing,
verifying and loading alike; run.json is read as its typed record."""

from __future__ import annotations

import json
import shutil

import pytest
from testkit import REPO

from artifact.results import folder
from artifact.results.runinfo import RunInfo
from harness import storage

H200_RUN = REPO / "bench" / "h200" / "machine-D" / "run-D1"


def test_the_harness_knows_no_host_file_names():
    assert not hasattr(storage, "DERIVED_PREFIXES") and not hasattr(storage, "is_derived")
    assert storage.is_member("verdict.json") and not folder.is_member("verdict.json")
    assert not folder.is_member("report.md") and not folder.is_member("roofline-x.svg")
    assert folder.is_member("run.json") and folder.is_member("cases/x.json") and folder.is_member("env.json")
    assert not folder.is_member("manifest.json") and not folder.is_member("cases/.x.json.tmp")


def test_hashing_and_loading_ask_the_same_membership(tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(H200_RUN, run)
    asked: list[tuple[str, tuple[str, ...]]] = []
    real = storage.is_member

    def spy(rel, outputs=()):
        asked.append((rel, outputs))
        return real(rel, outputs)

    monkeypatch.setattr(storage, "is_member", spy)
    folder.write_manifest(run)
    hashed = {rel for rel, _ in asked}
    assert {"verdict.json", "run.json", "env.json"} <= hashed and all(o == folder.OUTPUTS for _, o in asked)
    asked.clear()
    results, _ = folder.load_results(run)
    assert {rel for rel, _ in asked} >= {"run.json", "env.json"} and all(o == folder.OUTPUTS for _, o in asked)
    assert len(results.cases) == sum(1 for p in (run / "cases").glob("*.json"))


def test_run_json_is_read_as_its_typed_record():
    results, _ = folder.load_results(H200_RUN)
    assert isinstance(results.run, RunInfo)
    assert results.run.runtime in ("docker", "native") and results.run.git is not None


def test_a_damaged_run_json_is_one_line_naming_the_file(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(H200_RUN, run)
    data = json.loads((run / folder.RUN_FILE).read_text())
    (run / folder.RUN_FILE).write_text(json.dumps(data | {"runtime": 7}))
    folder.write_manifest(run)
    with pytest.raises(Exception) as exc:
        folder.load_results(run)
    assert str(exc.value).startswith(f"{run / folder.RUN_FILE}: runtime: expected a string") and "\n" not in str(exc.value)


def test_the_hosts_outputs_are_not_members_at_any_depth_but_cases():
    # A sharded --each-gpu folder gets verdict files in each shard, and `artifact report A B`
    # writes report-gpus.md and side-by-side plots: none is a result, so the next check reads on.
    from artifact.results.folder import is_member

    for rel in ("verdict.json", "shard-1/verdict.json", "shard-0/verdict-h200.md", "report-gpus.md",
                "side-by-side-flash-s.svg", "shard-1/report.md", "shard-1/roofline-sdpa.svg"):
        assert not is_member(rel), rel
    for rel in ("env.json", "shard-1/env.json", "cases/sdpa-flash-b1.json", "shard-1/cases/x.json", "ceilings.json"):
        assert is_member(rel), rel
    assert is_member("cases/verdict.json")  # inside cases/ every file is the results'
