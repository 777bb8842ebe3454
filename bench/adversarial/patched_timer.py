"""A cheat that patches the timer when its module is imported (issue 16): CUDA event times and
the host clock read 100x short from then on. Its kernel is honest; its numbers would not be."""

from __future__ import annotations

import time

import torch

from bench.adversarial.cheats import Honest

_real_ns = time.perf_counter_ns
_real_s = time.perf_counter
_t0 = _real_ns()
time.perf_counter_ns = lambda: _t0 + (_real_ns() - _t0) // 100  # type: ignore[assignment]
time.perf_counter = lambda: _real_s() / 100  # type: ignore[assignment]
_elapsed = torch.cuda.Event.elapsed_time
torch.cuda.Event.elapsed_time = lambda self, end: _elapsed(self, end) / 100  # type: ignore[method-assign]


class PatchedTimer(Honest):
    name = "patched_timer"


PATCHED_TIMER = PatchedTimer()
