"""Which source a run came from: the git commit of the checkout and whether it had local changes."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass
class GitInfo:
    commit: Optional[str]  # None when there is no git, no repository, or no commit yet
    dirty: Optional[bool]  # tracked files differ from the commit (untracked files do not count)
    commit_time: Optional[int]  # seconds since the epoch, of the commit
    unavailable: Optional[str] = None  # why commit/dirty are None


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)


def git_info(root: Path) -> GitInfo:
    try:
        head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    except FileNotFoundError:
        return GitInfo(None, None, None, "git is not installed")
    except subprocess.TimeoutExpired:
        return GitInfo(None, None, None, "git did not answer in 30 s")
    if head.returncode != 0:
        inside = _git(root, "rev-parse", "--is-inside-work-tree")
        why = "the repository has no commit yet" if inside.returncode == 0 else f"{root} is not a git checkout"
        return GitInfo(None, None, None, why)
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    when = _git(root, "log", "-1", "--format=%ct", "HEAD")
    return GitInfo(
        commit=head.stdout.strip(),
        dirty=bool(status.stdout.strip()) if status.returncode == 0 else None,
        commit_time=int(when.stdout.strip()) if when.returncode == 0 and when.stdout.strip().isdigit() else None,
        unavailable=None if status.returncode == 0 else f"git status failed: {status.stderr.strip()[:200]}",
    )
