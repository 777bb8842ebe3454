"""Kernels that cheat the timer, each a workload through the public door (issue 16).

Every one computes attention correctly when it has to (the correctness check's call), and does
less or no work when it thinks it is being timed. `harness bench --workload
bench.adversarial.cheats:NAME` must record each as `invalid` (or `failed`) with the reason, never
`ok`. HONEST is the control: the same door, real work, and it must stay ok.

They are written the way a kernel author (or a code-generating model) could write them; none of
them knows about the harness's checks. The patched timer lives in its own module
(patched_timer.py): it patches at import, which would taint every case after it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from harness.records import CaseSpec
from harness.workloads.sdpa import AttentionWorkload


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def first_heads(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, h: int, causal: bool) -> torch.Tensor:
    """Attention over the first `h` heads only; the other heads of the output stay zero."""
    out = torch.zeros_like(q)
    out[:, :h] = attention(q[:, :h], k[:, :h], v[:, :h], causal)
    return out


class _Base(AttentionWorkload):
    backends = ("default",)
    gpu_only = False

    def check_supported(self, spec: CaseSpec) -> str | None:
        if self.gpu_only and spec.device != "cuda":
            return "this cheat needs a CUDA GPU (it games CUDA graphs or streams)"
        return super().check_supported(spec)


class Honest(_Base):
    """The control: real work on every call."""

    name = "honest"

    def make_fn(self, spec: CaseSpec, inputs: Any) -> Callable[[], torch.Tensor]:
        q, k, v = inputs
        return lambda: attention(q, k, v, spec.causal)


class Constant(_Base):
    """Computes once, then returns the same tensor whatever the input."""

    name = "constant"
    _saved: dict[str, torch.Tensor] = {}

    def make_fn(self, spec: CaseSpec, inputs: Any) -> Callable[[], torch.Tensor]:
        q, k, v = inputs

        def fn() -> torch.Tensor:
            if spec.case_id not in self._saved:
                self._saved[spec.case_id] = attention(q, k, v, spec.causal)
            return self._saved[spec.case_id]

        return fn


class PointerCache(_Base):
    """Caches its output per input tensor (by data pointer) and returns the cache later."""

    name = "pointer_cache"

    def __init__(self) -> None:
        self.cache: dict[int, torch.Tensor] = {}

    def make_fn(self, spec: CaseSpec, inputs: Any) -> Callable[[], torch.Tensor]:
        q, k, v = inputs

        def fn() -> torch.Tensor:
            key = q.data_ptr()
            if key not in self.cache:
                self.cache[key] = attention(q, k, v, spec.causal)
            return self.cache[key]

        return fn


class ContentMemo(_Base):
    """Memoises by a hash of the inputs' contents (right on every call: the cache is keyed on the
    data), so repeated calls on the same data cost only the hash."""

    name = "content_memo"

    def __init__(self) -> None:
        self.cache: dict[tuple[float, float, float], torch.Tensor] = {}

    def make_fn(self, spec: CaseSpec, inputs: Any) -> Callable[[], torch.Tensor]:
        q, k, v = inputs

        def fn() -> torch.Tensor:
            key = tuple(float(t.float().sum()) for t in (q, k, v))  # a host sync: not capturable
            if key not in self.cache:
                self.cache[key] = attention(q, k, v, spec.causal)
            return self.cache[key]

        return fn


class ProfilerShy(ContentMemo):
    """ContentMemo that refuses to run while a profiler watches (the census would show it)."""

    name = "profiler_shy"

    def make_fn(self, spec: CaseSpec, inputs: Any) -> Callable[[], torch.Tensor]:
        memo = super().make_fn(spec, inputs)

        def fn() -> torch.Tensor:
            if torch._C._autograd._profiler_enabled():
                raise RuntimeError("not while profiled")
            return memo()

        return fn


class Deferred(_Base):
    """Returns an empty tensor and fills it during the next call: every call costs one
    attention, but the output a call returns is not computed by that call."""

    name = "deferred"

    def make_fn(self, spec: CaseSpec, inputs: Any) -> Callable[[], torch.Tensor]:
        q, k, v = inputs
        pending: list[torch.Tensor] = []

        def fn() -> torch.Tensor:
            if pending:
                pending.pop().copy_(attention(q, k, v, spec.causal))
            out = torch.empty_like(q)
            pending.append(out)
            return out

        return fn


class InputAlias(_Base):
    """Writes the result over its query tensor and returns it (no output allocation)."""

    name = "input_alias"

    def make_fn(self, spec: CaseSpec, inputs: Any) -> Callable[[], torch.Tensor]:
        q, k, v = inputs

        def fn() -> torch.Tensor:
            q.copy_(attention(q, k, v, spec.causal))
            return q

        return fn


class HalfHeads(_Base):
    """Computes only the first half of the heads (the rest stays zero)."""

    name = "half_heads"

    def make_fn(self, spec: CaseSpec, inputs: Any) -> Callable[[], torch.Tensor]:
        q, k, v = inputs
        h = max(1, spec.heads // 2)

        def fn() -> torch.Tensor:
            return first_heads(q, k, v, h, spec.causal)

        return fn


class SeenInputs(_Base):
    """Honest on the first inputs it is given (the ones a checker looks at first), a quarter of
    the work on any inputs after them."""

    name = "seen_inputs"

    def __init__(self) -> None:
        self.honest_for: set[int] = set()

    def make_fn(self, spec: CaseSpec, inputs: Any) -> Callable[[], torch.Tensor]:
        q, k, v = inputs
        if not self.honest_for:
            self.honest_for.add(q.data_ptr())
        honest = q.data_ptr() in self.honest_for
        h = max(1, spec.heads // 4)

        def fn() -> torch.Tensor:
            if honest:
                return attention(q, k, v, spec.causal)
            return first_heads(q, k, v, h, spec.causal)

        return fn


class CaptureNoop(_Base):
    """Records nothing while a CUDA graph is being captured and returns its last eager output."""

    name = "capture_noop"
    gpu_only = True

    def make_fn(self, spec: CaseSpec, inputs: Any) -> Callable[[], torch.Tensor]:
        q, k, v = inputs
        last: list[torch.Tensor] = []

        def fn() -> torch.Tensor:
            if torch.cuda.is_current_stream_capturing() and last:
                return last[0]
            out = attention(q, k, v, spec.causal)
            last[:] = [out]
            return out

        return fn


class CaptureCheaper(_Base):
    """Eager calls do the work; under graph capture it records a quarter of the heads."""

    name = "capture_cheaper"
    gpu_only = True

    def make_fn(self, spec: CaseSpec, inputs: Any) -> Callable[[], torch.Tensor]:
        q, k, v = inputs
        h = max(1, spec.heads // 4)

        def fn() -> torch.Tensor:
            if torch.cuda.is_current_stream_capturing():
                return first_heads(q, k, v, h, spec.causal)
            return attention(q, k, v, spec.causal)

        return fn


class SideStream(_Base):
    """Launches the work on a stream of its own and never joins it back: the caller's stream (and
    its timing events) sees an empty call."""

    name = "side_stream"
    gpu_only = True

    def make_fn(self, spec: CaseSpec, inputs: Any) -> Callable[[], torch.Tensor]:
        q, k, v = inputs
        stream = torch.cuda.Stream()

        def fn() -> torch.Tensor:
            with torch.cuda.stream(stream):
                return attention(q, k, v, spec.causal)

        return fn


HONEST = Honest()
CONSTANT = Constant()
POINTER_CACHE = PointerCache()
CONTENT_MEMO = ContentMemo()
PROFILER_SHY = ProfilerShy()
DEFERRED = Deferred()
INPUT_ALIAS = InputAlias()
HALF_HEADS = HalfHeads()
SEEN_INPUTS = SeenInputs()
CAPTURE_NOOP = CaptureNoop()
CAPTURE_CHEAPER = CaptureCheaper()
SIDE_STREAM = SideStream()

# name -> the first check that catches it (a substring of the case's reason; others may follow).
EXPECTED: dict[str, str] = {
    "CONSTANT": "timed_outputs",
    "POINTER_CACHE": "timed_outputs",
    "CONTENT_MEMO": "census_vs_eager",
    "PROFILER_SHY": "census_vs_eager",  # raises under the profiler: that is a failed check, not "not run"
    "DEFERRED": "not finite",  # the correctness check copies the output as the call returns: unwritten
    "INPUT_ALIAS": "relative error",  # the correctness check: it overwrote its own input
    "HALF_HEADS": "relative error",
    "SEEN_INPUTS": "timed_outputs",
    "CAPTURE_NOOP": "timed_outputs",
    "CAPTURE_CHEAPER": "timed_outputs",
    "SIDE_STREAM": "timed_outputs",  # and host_clock where the side stream's work outlasts the loop (S=4096)
    "PATCHED_TIMER": "timer_tamper",
}
GPU_ONLY = ("CAPTURE_NOOP", "CAPTURE_CHEAPER", "SIDE_STREAM")
