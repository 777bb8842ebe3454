"""Rotated input sets: refreshed in place between batches, each set's last timed output kept and
checked against float64; outputs that alias inputs refused (CPU, real tensors, a fake clock)."""

from __future__ import annotations

import torch

from harness.integrity import outputs
from harness.plan import TimingConfig
from harness.records import CaseSpec
from harness.timing import Slots, measure_cpu
from harness.workloads.sdpa import AttentionWorkload

SPEC = CaseSpec(workload="x:Y", backend="default", batch=1, heads=2, seq=16, head_dim=8, dtype="float32", device="cpu")
CFG = TimingConfig(target_rel_ci=0.5, min_samples=4, max_samples=40, min_time_s=0.0, max_time_s=1.0, batch=4,
                   warmup_ms=0.0, sample_target_ms=0.01)


class Honest(AttentionWorkload):
    backends = ("default",)

    def make_fn(self, spec, inputs):
        q, k, v = inputs
        return lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v)


def test_batches_rotate_the_sets_refresh_each_before_its_batch_and_keep_each_sets_last_output():
    w = Honest()
    slots, inputs = outputs.make_slots(w, SPEC, 2)
    seen = []
    refresh = slots.refresh

    def spy(j):
        seen.append(j)
        refresh(j)

    before = [x[0].clone() for x in inputs]
    rep = measure_cpu(Slots(slots.fns, spy), CFG)
    assert seen == [j % 2 for j in range(len(seen))] and rep.refreshes == len(seen) >= 2
    assert all(not torch.equal(b, x[0]) for b, x in zip(before, inputs))  # same buffers, new contents
    check = outputs.timed_outputs(w, SPEC, inputs, rep.outputs, refreshed=True)
    assert check.passed and check.value < 1e-5
    assert outputs.aliasing(inputs, rep.outputs).passed


def test_a_stale_output_an_alias_and_a_shared_buffer_are_each_refused():
    w = Honest()
    slots, inputs = outputs.make_slots(w, SPEC, 2)
    stale = [f() for f in slots.fns]
    for j in range(2):
        slots.refresh(j)
    check = outputs.timed_outputs(w, SPEC, inputs, stale, refreshed=True)
    assert check.passed is False and "the timed calls did not compute them" in check.detail
    alias = outputs.aliasing(inputs, [inputs[0][0], stale[1]])
    assert alias.passed is False and "input set 0's output shares memory with its inputs" in alias.detail
    shared = outputs.aliasing(inputs, [stale[0], stale[0][0:1]])
    assert shared.passed is False and "got the same output buffer" in shared.detail
    none = outputs.timed_outputs(w, SPEC, inputs, [None, stale[1]], refreshed=True)
    assert none.passed is False


def test_relative_error_over_structures():
    a = (torch.ones(3), {"x": torch.zeros(2)})
    assert outputs.rel_error(a, (torch.ones(3).double(), {"x": torch.zeros(2).double()})) == 0.0
    assert outputs.rel_error(torch.ones(3), torch.ones(4)) != outputs.rel_error(torch.ones(3), torch.ones(3))
    assert outputs.copy_into([torch.zeros(2)], [torch.ones(2)]) == 1
