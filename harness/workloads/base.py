"""The interface every workload implements: the public door for a kernel of one's own
(docs/workload-api.md). Attention workloads share harness.workloads.sdpa.AttentionWorkload.

A workload is any object with these attributes; the harness finds a user's through
CaseSpec.workload "package.module:ATTR" (given to harness bench by --workload, or as `workload:` in a plan).
It is untrusted: whatever its callable returns is checked (harness/integrity/), and its module is
imported only after the harness bound its timers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from harness.records import CaseSpec


class Workload(Protocol):
    name: str
    backends: tuple[str, ...]  # the backend names a case may give (CaseSpec.backend)

    def check_supported(self, spec: CaseSpec) -> str | None:
        """None when the spec can run here, else the reason it cannot (the case is SKIPPED)."""

    def make_inputs(self, spec: CaseSpec, seed: int) -> Any:
        """Fresh random inputs on spec.device (never zeros): a tensor, or a tuple, list or dict
        of tensors, the same shapes for every seed."""

    def make_fn(self, spec: CaseSpec, inputs: Any) -> Callable[[], Any]:
        """A no-argument callable that runs the kernel once on `inputs` and returns its output:
        a tensor (or a tuple, list or dict of tensors) of its own memory, finished in stream
        order when the call returns. Backend selection happens here, outside the timed region;
        the callable must be CUDA-graph capturable where the backend allows it. It must read
        `inputs` on every call: the harness replaces their contents in place while timing."""

    def reference(self, spec: CaseSpec, inputs: Any) -> Any:
        """The float64 reference output for `inputs` (may be computed in chunks)."""

    def flops(self, spec: CaseSpec) -> float: ...

    def bytes_moved(self, spec: CaseSpec) -> float: ...

    def predicted_bytes(self, spec: CaseSpec) -> int:
        """Device memory the case needs at peak (inputs, output, workspace), for the fit check."""

    def tolerance(self, spec: CaseSpec) -> float:
        """Largest acceptable relative error against the float64 reference."""
