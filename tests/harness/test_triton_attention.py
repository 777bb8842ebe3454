"""The Triton attention kernel on the CPU, through Triton's interpreter, on tiny shapes."""

import os
import zlib

# triton.jit decides between compiling and interpreting when a kernel is defined, so this must
# precede the first import of the kernel module in this process.
os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from harness.records import CaseSpec  # noqa: E402
from harness.workloads import triton_attention as ta  # noqa: E402

assert ta.INTERPRETED, "harness.workloads.triton_attention was imported before TRITON_INTERPRET=1 was set"


def _spec(seq, head_dim, *, dtype="float16", causal=False, batch=1, heads=2, **cfg):
    config = {**ta.DEFAULT_CONFIG, "BLOCK_M": 32, "BLOCK_N": 16, **cfg}
    return CaseSpec("triton_attention", "triton", batch, heads, seq, head_dim, dtype=dtype, causal=causal,
                    device="cpu", config=config)


def _rel_error(out, ref):
    return float(torch.linalg.vector_norm((out.double() - ref).flatten()) / torch.linalg.vector_norm(ref.flatten()))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seq,head_dim", [(64, 16), (40, 32)])  # 40: partial last tiles in M and N
def test_matches_float64_reference_on_fresh_random_inputs(dtype, causal, seq, head_dim):
    spec = _spec(seq, head_dim, dtype=dtype, causal=causal)
    seed = zlib.crc32(f"{dtype}-{causal}-{seq}-{head_dim}".encode())  # a different draw per case
    inputs = ta.WORKLOAD.make_inputs(spec, seed)
    assert all(t.abs().max() > 0.5 for t in inputs)  # random, not zeros
    out = ta.WORKLOAD.make_fn(spec, inputs)()
    assert out.shape == inputs[0].shape and out.dtype == inputs[0].dtype
    assert torch.isfinite(out).all()  # every element written, none from an uninitialised buffer
    rel = _rel_error(out, ta.WORKLOAD.reference(spec, inputs))
    # Input rounding alone puts fp16 near 3e-4 and bf16 near 4e-3 (METHOD.md); far below means
    # the output was not computed in the input dtype, far above means it is wrong.
    lo, hi = (5e-5, 2e-3) if dtype == "float16" else (1e-3, 1.5e-2)
    assert lo < rel < hi
    assert rel < ta.WORKLOAD.tolerance(spec)


@pytest.mark.parametrize("head_dim", [64, 128])
def test_issue_head_dims_with_both_masks(head_dim):
    for causal in (False, True):
        spec = _spec(32, head_dim, causal=causal, heads=1, BLOCK_M=16, BLOCK_N=16)
        inputs = ta.WORKLOAD.make_inputs(spec, 7 + head_dim + causal)
        rel = _rel_error(ta.WORKLOAD.make_fn(spec, inputs)(), ta.WORKLOAD.reference(spec, inputs))
        assert rel < 2e-3


def test_the_check_catches_a_wrong_mask():
    # The causal kernel's output against the full-attention reference must fail the tolerance:
    # proof that the comparison above can fail.
    causal = _spec(48, 16, causal=True)
    inputs = ta.WORKLOAD.make_inputs(causal, 11)
    out = ta.WORKLOAD.make_fn(causal, inputs)()
    full = CaseSpec(**{**causal.__dict__, "causal": False})
    assert _rel_error(out, ta.WORKLOAD.reference(full, inputs)) > 10 * ta.WORKLOAD.tolerance(full)
    assert _rel_error(out, ta.WORKLOAD.reference(causal, inputs)) < ta.WORKLOAD.tolerance(causal)


def test_reversed_launch_order_computes_the_same_function():
    base = _spec(64, 16, causal=True)
    rev = _spec(64, 16, causal=True, reverse_m=True)
    inputs = ta.WORKLOAD.make_inputs(base, 5)
    a = ta.WORKLOAD.make_fn(base, inputs)()
    b = ta.WORKLOAD.make_fn(rev, inputs)()
    assert torch.equal(a, b)  # each row block is computed by one program either way


def test_block_shapes_change_rounding_not_the_result():
    a_spec, b_spec = _spec(64, 32, BLOCK_M=16, BLOCK_N=16), _spec(64, 32, BLOCK_M=64, BLOCK_N=32)
    inputs = ta.WORKLOAD.make_inputs(a_spec, 9)
    a = ta.WORKLOAD.make_fn(a_spec, inputs)().double()
    b = ta.WORKLOAD.make_fn(b_spec, inputs)().double()
    assert 0 < float((a - b).norm() / a.norm()) < 2e-3  # different tilings round differently


def test_config_problems_are_named():
    s = _spec(64, 16, causal=True)
    bad = {**s.config, "BLOCK_M": 32, "BLOCK_N": 64}
    assert "multiple of BLOCK_N" in ta.config_problem(bad, s)
    assert "unknown tunable(s) BLOCK_K" in ta.config_problem({**s.config, "BLOCK_K": 32}, s)
    missing = dict(s.config)
    del missing["num_stages"]
    assert ta.config_problem(missing, s).startswith("config.num_stages: missing")
    assert "must be one of" in ta.config_problem({**s.config, "BLOCK_M": 48}, s)
    assert "true or false" in ta.config_problem({**s.config, "use_tma": 1}, s)
    assert "CUDA GPU" in ta.config_problem({**s.config, "use_tma": True}, s)
    full = _spec(64, 16)
    assert "only changes causal" in ta.config_problem({**full.config, "reverse_m": True}, full)
    assert ta.config_problem(s.config, s) is None


def test_unsupported_cases_say_why():
    w = ta.WORKLOAD
    assert "float16 and bfloat16" in w.check_supported(_spec(32, 16, dtype="float32"))
    assert "head_dim" in w.check_supported(_spec(32, 48))
    if not torch.cuda.is_available():
        gpu = CaseSpec(**{**_spec(32, 16).__dict__, "device": "cuda"})
        assert w.check_supported(gpu) == "no CUDA GPU visible"
    with pytest.raises(Exception, match="multiple of BLOCK_N"):
        w.make_fn(_spec(32, 16, causal=True, BLOCK_M=16, BLOCK_N=32), w.make_inputs(_spec(32, 16), 1))


def test_default_config_shrinks_to_tile_small_sequences():
    spec = CaseSpec("triton_attention", "triton", 1, 1, 20, 16, device="cpu")
    cfg = ta.resolve_config(spec)
    assert cfg["BLOCK_M"] == 32 and cfg["BLOCK_N"] == 32 and ta.config_problem(cfg, spec) is None
    long = CaseSpec("triton_attention", "triton", 1, 1, 4096, 64, device="cpu")
    assert ta.resolve_config(long) == ta.DEFAULT_CONFIG


def test_interpreter_index_fix_is_idempotent():
    from triton.runtime import interpreter

    ta._fix_interpreter_scalar_index()
    patched = interpreter._patch_lang_tensor
    ta._fix_interpreter_scalar_index()
    assert interpreter._patch_lang_tensor is patched


def test_a_case_without_config_runs_the_tuned_one_for_its_gpu(monkeypatch):
    from harness import tuned

    h100 = [r for r in tuned.all_records() if r.gpu_name == "NVIDIA H100 80GB HBM3" and r.seq == 512]
    assert h100, "the shipped H100 tuned config for the seed shape is missing from harness/tuned/"
    monkeypatch.setattr(ta, "_gpu_identity", lambda: ("NVIDIA H100 80GB HBM3", "9.0"))
    monkeypatch.setattr(ta, "INTERPRETED", False)  # judge the config as a compiled kernel would
    seed = CaseSpec("triton_attention", "triton", 32, 8, 512, 64, device="cuda")
    assert ta.resolve_config(seed) == h100[0].config
    # Another GPU has no tuned record: the default, never another GPU's config.
    monkeypatch.setattr(ta, "_gpu_identity", lambda: ("NVIDIA A100-SXM4-80GB", "8.0"))
    assert ta.resolve_config(seed) == ta.DEFAULT_CONFIG
    # Under the interpreter a TMA config cannot run: the default again, not a failing case.
    monkeypatch.setattr(ta, "_gpu_identity", lambda: ("NVIDIA H100 80GB HBM3", "9.0"))
    monkeypatch.setattr(ta, "INTERPRETED", True)
    assert h100[0].config["use_tma"] and ta.resolve_config(seed) == ta.DEFAULT_CONFIG
