"""`harness bench --resume`: complete a folder only with the configuration that started it.

A resumed sweep keeps the finished cases and measures the rest; a folder begun with another
profile, plan, device or precision target would come out as one folder of two configurations,
judged as if it were one. The first difference is named in one line, before anything is written.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness import storage
from harness.errors import HarnessError
from harness.plan import Plan


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # damaged: the sweep measures that case again


def check(out: Path, plan: Plan, device: str) -> None:
    """Raise HarnessError (exit 2) when `out` holds results of another configuration than `plan`."""
    fix = "resume with the options that started this folder, or give a new --out"
    env = _read(out / storage.ENV_FILE)
    if isinstance(env, dict) and env.get("device") not in (None, device):
        raise HarnessError(f"--resume: {out / storage.ENV_FILE}: device is {env['device']}, this run's is {device}; {fix}")
    specs = {spec.case_id: spec for spec in plan.cases}
    cases_dir = out / storage.CASES_DIR
    for path in sorted(cases_dir.glob("*.json")) if cases_dir.is_dir() else []:
        data = _read(path)
        if not isinstance(data, dict) or not isinstance(data.get("case"), dict):
            continue
        spec = specs.get(path.stem)
        if spec is None:
            raise HarnessError(f"--resume: {path}: case {path.stem} is not in this run's plan ({plan.source}); {fix}")
        want = asdict(spec)
        for key, have in data["case"].items():
            if key in want and want[key] != have:
                raise HarnessError(f"--resume: {path}: case.{key} is {have!r}, this run's plan ({plan.source}) has "
                                   f"{want[key]!r}; {fix}")
        timing = data.get("timing")
        have_ci = timing.get("target_rel_ci") if isinstance(timing, dict) else None
        if have_ci is not None and have_ci != plan.timing.target_rel_ci:
            raise HarnessError(f"--resume: {path}: timing.target_rel_ci is {have_ci:g}, this run's is "
                               f"{plan.timing.target_rel_ci:g} ({plan.source}); {fix}")
