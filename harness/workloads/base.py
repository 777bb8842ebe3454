"""The interface every workload implements (attention workloads share AttentionWorkload)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from harness.records import CaseSpec


class Workload(Protocol):
    name: str

    def check_supported(self, spec: CaseSpec) -> str | None:
        """None when the spec can run here, else the reason it cannot (the case is SKIPPED)."""

    def make_inputs(self, spec: CaseSpec, seed: int) -> Any:
        """Fresh random inputs on spec.device (never zeros)."""

    def make_fn(self, spec: CaseSpec, inputs: Any) -> Callable[[], Any]:
        """A no-argument callable that runs the kernel once and returns its output.
        Backend selection happens here, outside the timed region; the callable must be
        CUDA-graph capturable where the backend allows it."""

    def reference(self, spec: CaseSpec, inputs: Any) -> Any:
        """The float64 reference output for `inputs` (may be computed in chunks)."""

    def flops(self, spec: CaseSpec) -> float: ...

    def bytes_moved(self, spec: CaseSpec) -> float: ...

    def predicted_bytes(self, spec: CaseSpec) -> int:
        """Device memory the case needs at peak (inputs, output, workspace), for the fit check."""

    def tolerance(self, spec: CaseSpec) -> float:
        """Largest acceptable relative error against the float64 reference."""
