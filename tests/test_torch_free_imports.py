"""Every host-side module loads without torch: the host (artifact check, report, derive, plan and
record validation) has no torch, and loading it would also cost seconds on every command.

The modules are found by walking the packages, so a new module is covered without editing this
file; the few that legitimately import torch when loaded are listed, each with its reason.
"""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys

import pytest
from testkit import REPO

import artifact
import harness

# Harness modules that import torch when loaded, because they exist to run kernels in the
# container. Everything else in harness (records, stats, plan, storage, yamlsafe, compare,
# lockcheck, errors, shard, the optimize records and search space, ...) and all of artifact
# must load without it.
NEEDS_TORCH = {
    "harness.workloads.sdpa": "calls torch's SDPA kernels; loaded through harness.workloads.get() only",
    "harness.workloads.triton_attention": "the Triton kernel and its torch wrapper; loaded on first use",
}


def _walk(package) -> list[str]:
    return [package.__name__] + [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]


ALL_MODULES = sorted(_walk(artifact) + _walk(harness))
TORCH_FREE = [m for m in ALL_MODULES if m not in NEEDS_TORCH]


def test_the_walk_finds_the_packages_and_the_allow_list_names_real_modules():
    assert {"artifact.cli", "harness.records", "harness.stats", "harness.optimize.search"} <= set(ALL_MODULES)
    assert set(NEEDS_TORCH) <= set(ALL_MODULES), "a NEEDS_TORCH entry names no module: delete it"


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_loads_without_torch(module):
    # A fresh interpreter per module: in one process the first import would hide the others'.
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        f"assert not loaded, {module!r} + ' imported torch: ' + ', '.join(loaded[:3])\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
