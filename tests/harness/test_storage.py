from harness import storage
from harness.records import CaseResult, CaseSpec


def test_manifest_detects_tampering_and_truncation(tmp_path):
    r = CaseResult(case=CaseSpec("sdpa", "math", 1, 1, 8, 8, device="cpu"), status="skipped", reason="x")
    storage.write_case(tmp_path, r)
    (tmp_path / "env.json").write_text('{"a": 1}\n')
    m = storage.write_manifest(tmp_path)
    assert set(m.files) == {"env.json", f"cases/{r.case.case_id}.json"}
    assert storage.verify_manifest(tmp_path) == []
    (tmp_path / "env.json").write_text('{"a": 2}\n')
    p = storage.case_path(tmp_path, r.case.case_id)
    p.write_text(p.read_text()[:10])
    problems = storage.verify_manifest(tmp_path)
    assert len(problems) == 2 and all("sha256 differs" in x for x in problems)
    p.unlink()
    assert any("missing" in x for x in storage.verify_manifest(tmp_path))


def test_atomic_write_leaves_no_temp_files(tmp_path):
    for i in range(5):
        storage.atomic_write_text(tmp_path / "x.json", f"{i}\n")
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    assert (tmp_path / "x.json").read_text() == "4\n"


# What the host writes into a folder after the run; the harness knows no such names, the host
# passes them down (artifact/results/folder.py OUTPUTS).
OUTPUTS = ("verdict.", "verdict-", "report.", "time-vs-seq-")


def test_manifest_catches_added_files_but_not_the_outputs_its_caller_names(tmp_path):
    (tmp_path / "env.json").write_text("{}\n")
    storage.write_manifest(tmp_path, OUTPUTS)
    (tmp_path / "verdict.json").write_text("{}\n")
    (tmp_path / "report.md").write_text("# r\n")
    assert storage.verify_manifest(tmp_path, OUTPUTS) == []
    # Without the names, they are files added after the run, as anything else would be.
    assert len(storage.verify_manifest(tmp_path)) == 2
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "smuggled.json").write_text("{}\n")
    assert storage.verify_manifest(tmp_path, OUTPUTS) == ["cases/smuggled.json: not listed in manifest.json (added after the run)"]


def test_membership_is_one_rule_for_hashing_verifying_and_reading(tmp_path, monkeypatch):
    r = CaseResult(case=CaseSpec("sdpa", "math", 1, 1, 8, 8, device="cpu"), status="skipped", reason="x")
    storage.write_case(tmp_path, r)
    (tmp_path / "cases" / "notes.json").write_text("{}\n")
    asked: list[str] = []
    real = storage.is_member

    def spy(rel, outputs=()):
        asked.append(rel)
        return real(rel, outputs) and rel != "cases/notes.json"

    monkeypatch.setattr(storage, "is_member", spy)
    assert set(storage.write_manifest(tmp_path).files) == {f"cases/{r.case.case_id}.json"}
    assert "cases/notes.json" in asked
    asked.clear()
    assert [c.case.case_id for c in storage.load_cases(tmp_path)] == [r.case.case_id]
    assert "cases/notes.json" in asked
    asked.clear()
    assert storage.verify_manifest(tmp_path) == []
    assert "cases/notes.json" in asked


def test_written_files_are_readable_by_others(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        storage.atomic_write_text(tmp_path / "x.json", "{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o644


def test_the_manifest_never_hashes_derived_outputs_hidden_files_or_links(tmp_path):
    # After `harness bench --resume` the manifest hashed verdict.json; the next check rewrote it
    # and the one after refused the folder ("verdict.json: sha256 differs"): issue 10, finding 7.
    r = CaseResult(case=CaseSpec("sdpa", "math", 1, 1, 8, 8, device="cpu"), status="skipped", reason="x")
    storage.write_case(tmp_path, r)
    for name in ("verdict.json", "verdict.md", "verdict-h100.json", "report.md", "time-vs-seq-x.svg", ".x.json.1.tmp"):
        (tmp_path / name).write_text("{}\n")
    (tmp_path / "cases" / ".hidden.json").write_text("{}\n")
    (tmp_path / "cases" / "link.json").symlink_to(storage.case_path(tmp_path, r.case.case_id))
    m = storage.write_manifest(tmp_path, OUTPUTS)
    assert set(m.files) == {f"cases/{r.case.case_id}.json"}
    assert [c.case.case_id for c in storage.load_cases(tmp_path)] == [r.case.case_id]
    (tmp_path / "verdict.json").write_text('{"rewritten": true}\n')
    problems = storage.verify_manifest(tmp_path, OUTPUTS)
    assert not any("verdict" in p for p in problems)
    assert any(".x.json.1.tmp: hidden entry" in p for p in problems) and any("link.json: a symbolic link" in p for p in problems)
