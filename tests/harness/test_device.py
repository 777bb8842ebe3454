"""One device resolution for every harness command (harness/device.py), and the folder start
that bench, env and optimize share (sweep.start_folder)."""

from __future__ import annotations

import os
import sys
import types

import pytest

from harness import device, storage
from harness.errors import HarnessError
from harness.records import EnvRecord, load_record
from harness.sweep import start_folder


def test_an_unknown_device_names_the_flag_and_the_choices():
    with pytest.raises(HarnessError, match=r"^--device: must be auto, cuda or cpu, got 'tpu'$"):
        device.resolve("tpu")


def test_cpu_is_cpu_and_auto_follows_what_torch_sees():
    import torch

    assert device.resolve("cpu") == "cpu"
    assert device.resolve("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


def test_asking_for_a_gpu_that_is_not_there_is_an_error_not_a_cpu_run():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(HarnessError, match="--device cuda: no CUDA GPU is visible to torch; run on a GPU host"):
        device.resolve("cuda")


def test_triton_is_interpreted_on_the_cpu_and_compiled_on_a_gpu(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.delitem(sys.modules, "harness.workloads.triton_attention", raising=False)
    device.prepare_triton("cuda")
    assert "TRITON_INTERPRET" not in os.environ
    device.prepare_triton("cpu")
    assert os.environ["TRITON_INTERPRET"] == "1"
    with pytest.raises(HarnessError, match="TRITON_INTERPRET=1 is set: on a GPU the kernel must be compiled; unset it"):
        device.prepare_triton("cuda")


def test_a_kernel_already_compiled_for_the_gpu_cannot_be_interpreted(monkeypatch):
    compiled = types.ModuleType("harness.workloads.triton_attention")
    compiled.INTERPRETED = False  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "harness.workloads.triton_attention", compiled)
    with pytest.raises(HarnessError, match="already compiled for the GPU in this process; run with TRITON_INTERPRET=1"):
        device.prepare_triton("cpu")


def test_start_folder_locks_then_writes_env_json_and_a_manifest_that_hashes_it(tmp_path):
    out = tmp_path / "new" / "folder"
    started = start_folder(out, "cpu", 7)
    assert started.nvml is None and isinstance(started.lock_failures, dict)
    env = load_record(out / storage.ENV_FILE, EnvRecord)
    assert env.device == "cpu" and env == started.env
    assert storage.verify_manifest(out) == []
    assert env.lock  # the settings as read back after locking
