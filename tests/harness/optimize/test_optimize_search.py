"""The search space's enumeration and the run's flag checks, torch-free (the shape's own limits,
which need the kernel module, are tested in tests/harness/test_optimize.py)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from harness.errors import HarnessError
from harness.optimize.search import LEADERS, candidates, config, describe
from harness.optimize.settings import CPU_MAX_MACS, OptimizeSettings, check_flags, shape_spec
from harness.records import CaseSpec

GPU = CaseSpec("triton_attention", "triton", 32, 8, 512, 64, device="cuda")
CPU = CaseSpec("triton_attention", "triton", 1, 2, 32, 16, device="cpu")


def _key(c):
    return json.dumps(c, sort_keys=True)


def test_every_candidate_sets_every_tunable_and_none_repeats():
    keys = set(config(64, 64, 4, 2))
    for spec in (GPU, CPU, replace(GPU, causal=True)):
        cands = candidates(spec)
        assert cands and all(set(c) == keys for c in cands)
        assert len({_key(c) for c in cands}) == len(cands)


def test_on_the_gpu_the_leaders_come_first_and_the_slow_corners_last():
    cands = candidates(GPU)
    assert cands[: len(LEADERS)] == LEADERS
    rest = cands[len(LEADERS):]
    slow = [i for i, c in enumerate(rest) if c["BLOCK_M"] == 64 and c["num_warps"] == 8 and not c["exp_f16"]]
    fast_grid = [i for i, c in enumerate(rest) if not (c["BLOCK_M"] == 64 and c["num_warps"] == 8) and not c["exp_f16"]]
    assert slow and max(fast_grid) < min(slow)
    # The half-precision exponential only on the first leaders, at the very end.
    e16 = [c for c in cands if c["exp_f16"]]
    assert e16 == [dict(c, exp_f16=True) for c in LEADERS[:4]] and cands[-len(e16):] == e16
    # Warp specialisation only with 8 warps (Triton 3.6 asserts with 4).
    assert all(c["num_warps"] == 8 for c in cands if c["warp_specialize"])


def test_on_the_cpu_only_block_shapes_vary():
    cands = candidates(CPU)
    assert [(c["BLOCK_M"], c["BLOCK_N"]) for c in cands] == [(32, 16), (16, 16), (32, 32), (64, 32)]
    assert {(c["num_warps"], c["num_stages"], c["use_tma"]) for c in cands} == {(4, 2, False)}


def test_a_causal_mask_tries_the_reversed_launch_order_first():
    plain = candidates(GPU)
    causal = candidates(replace(GPU, causal=True))
    assert causal[0::2] == [dict(c, reverse_m=True) for c in plain] and causal[1::2] == plain


def test_describe_names_the_config_in_one_short_column():
    assert describe(config(128, 64, 8, 3, tma=True, ws=True)) == "M128 N64 w8 s3 tma ws"
    assert describe(config(64, 32, 4, 2, rev=True, exp16=True)) == "M64 N32 w4 s2 rev e16"


@pytest.mark.parametrize("change,message", [
    ({"dtype": "fp8"}, "--dtype: unknown dtype 'fp8'"),
    ({"budget_s": 0}, "--budget-s: must be positive, got 0"),
    ({"target_speedup": -1}, "--target-speedup: must be positive"),
    ({"ncu": "sometimes"}, "--ncu: must be target, always or never, got 'sometimes'"),
    ({"device": "cpu", "seq": 4096}, "--device cpu runs the Triton kernel in its interpreter, far too slow"),
])
def test_flag_checks_name_the_flag_in_one_line(change, message):
    with pytest.raises(HarnessError) as err:
        check_flags(OptimizeSettings(**change))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_cpu_size_limit_and_the_shape():
    small = OptimizeSettings(batch=1, heads=2, seq=64, head_dim=32, device="cpu")
    assert small.batch * small.heads * small.seq**2 * small.head_dim <= CPU_MAX_MACS
    check_flags(small)
    check_flags(OptimizeSettings(seq=4096, device="cuda"))  # the limit is the interpreter's only
    spec = shape_spec(small, "sdpa", "default")
    assert (spec.workload, spec.backend, spec.seq, spec.device) == ("sdpa", "default", 64, "cpu")
