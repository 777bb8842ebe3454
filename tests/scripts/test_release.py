"""`make release` (scripts/release.sh): a citable snapshot of one commit, the same bytes every time,
with its checksum; a tree with changes or versions that disagree are refused (issue 19, item 8)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path

from testkit import tree_repo

GIT = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]


def release(repo: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "release"] if out.name == "dist" else ["bash", "scripts/release.sh", str(out)],
                          cwd=repo, capture_output=True, text=True, timeout=300)


def test_the_archive_is_the_commit_with_its_checksum_and_the_same_bytes_twice(tmp_path):
    repo = tmp_path / "repo"
    commit = tree_repo(repo)
    first = release(repo, repo / "dist")
    assert first.returncode == 0, first.stderr
    meta = json.loads(next((repo / "dist").glob("*-src.json")).read_text())
    archive = repo / "dist" / meta["archive"]
    assert meta["commit"] == commit and meta["version"] == "0.1.0" and archive.name == "gpu-kernel-artifact-0.1.0-src.tar.gz"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert meta["sha256"] == digest and meta["size_bytes"] == archive.stat().st_size
    assert (repo / "dist" / "SHA256SUMS").read_text() == f"{digest}  {archive.name}\n"
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=repo / "dist", capture_output=True, text=True)
    assert check.returncode == 0 and "OK" in check.stdout
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        files = [m.name for m in tar.getmembers() if m.isfile()]
    assert {"gpu-kernel-artifact-0.1.0/CITATION.cff", "gpu-kernel-artifact-0.1.0/LICENSE",
            "gpu-kernel-artifact-0.1.0/Makefile"} <= set(names)
    assert len(files) == meta["files"]
    assert not any("/dist/" in n for n in names)  # only the commit, not what the release wrote
    # Reproducible: another folder, the same bytes.
    again = release(repo, tmp_path / "again")
    assert again.returncode == 0 and (tmp_path / "again" / archive.name).read_bytes() == archive.read_bytes()


def test_a_tree_with_changes_and_disagreeing_versions_are_refused(tmp_path):
    repo = tmp_path / "repo"
    tree_repo(repo)
    (repo / "README.md").write_text("changed\n")
    proc = release(repo, tmp_path / "out")
    assert proc.returncode == 2 and "the working tree has changes" in proc.stderr and not (tmp_path / "out").exists()
    subprocess.run(["git", "-C", str(repo), "checkout", "-q", "README.md"], check=True)
    cff = repo / "CITATION.cff"
    cff.write_text(cff.read_text().replace('version: "0.1.0"', 'version: "0.2.0"'))
    subprocess.run(["git", "-C", str(repo), *GIT, "commit", "-qam", "bump one"], check=True)
    proc = release(repo, tmp_path / "out")
    assert proc.returncode == 2 and 'CITATION.cff: version "0.2.0", pyproject.toml "0.1.0"' in proc.stderr
