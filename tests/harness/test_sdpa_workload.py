import math

import pytest
import torch
import torch.nn.functional as F

from harness.records import CaseSpec
from harness.workloads import SDPA_BACKENDS, get


def _spec(**kw):
    base = dict(workload="sdpa", backend="math", batch=2, heads=3, seq=40, head_dim=16, dtype="float32", device="cpu")
    base.update(kw)
    return CaseSpec(**base)


@pytest.mark.parametrize("causal", [False, True])
def test_reference_matches_textbook_attention(causal):
    w = get("sdpa")
    spec = _spec(causal=causal)
    q, k, v = w.make_inputs(spec, seed=3)
    assert q.abs().sum() > 0 and not torch.equal(q, k)  # random, never zeros
    ref = w.reference(spec, (q, k, v))
    # independent float64 computation through torch's own SDPA
    direct = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), is_causal=causal)
    torch.testing.assert_close(ref, direct, rtol=1e-12, atol=1e-12)
    # and row 0 by hand: softmax over the (masked) scores
    s = (q[0, 0, 5].double() @ k[0, 0].double().T) / math.sqrt(16)
    if causal:
        s[6:] = float("-inf")
    by_hand = torch.softmax(s, -1) @ v[0, 0].double()
    torch.testing.assert_close(ref[0, 0, 5], by_hand)


def test_fresh_inputs_differ_by_seed_and_repeat_by_seed():
    w = get("sdpa")
    spec = _spec()
    a, b, c = w.make_inputs(spec, 1)[0], w.make_inputs(spec, 1)[0], w.make_inputs(spec, 2)[0]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_flop_and_byte_counts():
    w = get("sdpa")
    spec = _spec(batch=32, heads=8, seq=512, head_dim=64, dtype="float16")
    assert w.flops(spec) == 4 * 32 * 8 * 512 * 512 * 64
    assert w.flops(_spec(batch=32, heads=8, seq=512, head_dim=64, causal=True)) == 2 * 32 * 8 * 512 * 512 * 64
    assert w.bytes_moved(spec) == 4 * 32 * 8 * 512 * 64 * 2
    # the math path materialises S x S scores: its predicted footprint grows with S^2
    small, big = _spec(seq=256), _spec(seq=512)
    assert w.predicted_bytes(big) - w.bytes_moved(big) > 3.5 * (w.predicted_bytes(small) - w.bytes_moved(small))


def test_backends_compute_the_same_function_on_cpu():
    w = get("sdpa")
    outs = {}
    for backend in ("math", "flash", "default"):
        spec = _spec(backend=backend)
        inputs = w.make_inputs(spec, 11)
        outs[backend] = w.make_fn(spec, inputs)()
        ref = w.reference(spec, inputs)
        rel = float((outs[backend].double() - ref).norm() / ref.norm())
        assert rel < w.tolerance(spec), (backend, rel)
    assert w.check_supported(_spec(backend="cudnn")) == "SDPA backend 'cudnn' runs on CUDA GPUs only"


def test_the_torch_free_backend_list_names_every_sdpa_backend_torch_maps():
    # harness.workloads.SDPA_BACKENDS is the one list; the torch-side mapping must not drift from it.
    from harness.workloads.sdpa import _sdpa_backends

    assert set(_sdpa_backends()) | {"default"} == set(SDPA_BACKENDS)
    assert len(set(SDPA_BACKENDS)) == len(SDPA_BACKENDS)
