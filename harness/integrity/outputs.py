"""Rotated input sets and the check of what the timed replays returned (needs torch).

`make_slots` gives the timer INPUT_SETS input sets of the case, each with the kernel's callable
on it, and a `refresh(j)` that replaces set j's contents in place with fresh random inputs from
a seed drawn from the OS (the kernel cannot know them in advance, nor have seen them: they are
drawn while timing runs). After timing, `timed_outputs` compares the output each set's last timed
call wrote with the float64 reference of that set's current contents, and `aliasing` refuses an
output that shares memory with an input or with another set's output.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator
from typing import Any

from harness.integrity.checks import OUTPUT_ALIAS, TIMED_OUTPUTS
from harness.records import CaseSpec, IntegrityCheck
from harness.timing import Slots


def tensors(obj: Any) -> Iterator[Any]:
    """Every tensor in a workload's inputs or output (tuples, lists, dicts of them)."""
    import torch

    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for x in obj:
            yield from tensors(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            yield from tensors(x)


def copy_into(dst: Any, src: Any) -> int:
    """Copy `src`'s tensors into `dst`'s (same structure) in place; the number copied."""
    a, b = list(tensors(dst)), list(tensors(src))
    if len(a) != len(b):
        raise ValueError(f"make_inputs returned {len(b)} tensors, earlier {len(a)}")
    for x, y in zip(a, b):
        x.copy_(y)
    return len(a)


def snapshot(obj: Any) -> Any:
    """A copy of every tensor of an output, taken now (stream-ordered on a GPU)."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.clone()
    if isinstance(obj, (tuple, list)):
        return type(obj)(snapshot(x) for x in obj)
    if isinstance(obj, dict):
        return {k: snapshot(v) for k, v in obj.items()}
    return obj


def rel_error(out: Any, ref: Any) -> float:
    """||out - ref|| / ||ref|| over every tensor of the output (float64), NaN when out is missing."""
    import torch

    outs, refs = list(tensors(out)), list(tensors(ref))
    if not outs or len(outs) != len(refs):
        return math.nan
    num = den = 0.0
    for o, r in zip(outs, refs):
        if tuple(o.shape) != tuple(r.shape):
            return math.nan
        num += float(torch.linalg.vector_norm((o.double() - r.double()).flatten())) ** 2
        den += float(torch.linalg.vector_norm(r.double().flatten())) ** 2
    return math.sqrt(num) / math.sqrt(den) if den > 0 else (0.0 if num == 0 else math.inf)


def fresh_seed() -> int:
    return secrets.randbits(31)


def make_slots(workload: Any, spec: CaseSpec, count: int) -> tuple[Slots, list[Any]]:
    """`count` input sets, each with the kernel's callable on it, and a refresh that replaces a
    set's contents with fresh random inputs (same buffers)."""
    inputs = [workload.make_inputs(spec, fresh_seed()) for _ in range(count)]
    fns = [workload.make_fn(spec, x) for x in inputs]
    refreshable = all(list(tensors(x)) for x in inputs)

    def refresh(j: int) -> None:
        copy_into(inputs[j], workload.make_inputs(spec, fresh_seed()))

    return Slots(fns, refresh if refreshable else None), inputs


def timed_outputs(workload: Any, spec: CaseSpec, inputs: list[Any], outputs: list[Any], refreshed: bool) -> IntegrityCheck:
    """The output of each input set's last timed call against the float64 reference of its contents."""
    tol = float(workload.tolerance(spec))
    if any(o is None for o in outputs):
        return IntegrityCheck(TIMED_OUTPUTS, False, "a timed call returned no output to check", bound=tol)
    errors = [rel_error(o, workload.reference(spec, x)) for o, x in zip(outputs, inputs)]
    worst = max(errors, key=lambda e: math.inf if math.isnan(e) else e)
    finite = all(math.isfinite(e) for e in errors)
    how = (f"{len(inputs)} input sets, contents replaced with fresh data during timing" if refreshed
           else f"{len(inputs)} input sets (inputs hold no tensor: contents not replaced)")
    shown = ", ".join("not finite" if not math.isfinite(e) else f"{e:.3g}" for e in errors)
    if finite and worst <= tol:
        return IntegrityCheck(TIMED_OUTPUTS, True,
                              f"the timed replays' outputs match float64 within {tol:g} (relative errors {shown}; {how})",
                              value=worst, bound=tol)
    return IntegrityCheck(TIMED_OUTPUTS, False,
                          f"the outputs of the timed replays are wrong: relative errors {shown} against float64 "
                          f"(tolerance {tol:g}; {how}): the timed calls did not compute them",
                          value=worst if math.isfinite(worst) else None, bound=tol)


def _spans(obj: Any) -> list[tuple[int, int]]:
    out = []
    for t in tensors(obj):
        if t.numel() == 0:
            continue
        storage = t.untyped_storage()
        start = storage.data_ptr()
        out.append((start, start + storage.nbytes()))
    return out


def _overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> bool:
    return any(x0 < y1 and y0 < x1 for x0, x1 in a for y0, y1 in b)


def aliasing(inputs: list[Any], outputs: list[Any]) -> IntegrityCheck:
    """An output must be memory of its own: not an input's, not another input set's output."""
    problems = []
    spans_out = [_spans(o) for o in outputs]
    for j, (x, so) in enumerate(zip(inputs, spans_out)):
        if _overlap(_spans(x), so):
            problems.append(f"input set {j}'s output shares memory with its inputs")
    for i in range(len(outputs)):
        for j in range(i + 1, len(outputs)):
            if _overlap(spans_out[i], spans_out[j]):
                problems.append(f"input sets {i} and {j} got the same output buffer")
    if problems:
        return IntegrityCheck(OUTPUT_ALIAS, False, "; ".join(problems) + ": the output is not the kernel's own result")
    return IntegrityCheck(OUTPUT_ALIAS, True, "each input set's output is memory of its own")
