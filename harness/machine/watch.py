"""During the run: the machine after every sampling batch (torch-free).

After each batch of samples the timer asks `Watcher.after_batch()`, which reads NVML (the
processes on the GPU, the SM and memory clocks, clock-event reasons, board power) and answers keep
or discard:

- Another process on the GPU (one that was not there when the run was allowed to share it):
  the batch is discarded and the watcher waits, polling, for the GPU to be free again, up to
  `shared_wait_s` per case (TimingConfig); then the recovery delay, and sampling goes on. When
  the wait runs out, or the process was there from the start (--allow-shared-gpu), samples are
  kept and the case is `shared`: the runner makes it invalid, never a slow kernel.
  A process is listed from the moment it creates its context, before its first kernel, so a
  neighbour that starts computing during a batch is seen at that batch's end; one that starts
  and exits within a single batch (about 10 ms) can be missed.
- The SM clock below `throttle_threshold` x the maximum SM clock (nvbench's rule, 0.75 by
  default): the batch is discarded and sampling resumes after `throttle_recovery_s` (nvbench:
  0.05 s), at most MAX_THROTTLED_DISCARDS times a case; after that samples are kept and the case
  says `throttled`. NVML's clock is read once, right after the batch, not averaged over it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from harness.records import GpuProcess, MachineGate, Watch

POLL_S = 0.05
MAX_THROTTLED_DISCARDS = 50


@dataclass
class BatchReading:
    keep: bool
    reasons: list[str]
    sm_mhz: Optional[int]
    mem_mhz: Optional[int]
    power_w: Optional[float]
    waited_s: float = 0.0  # spent waiting for the GPU or the clock: not sampling time


class Watcher:
    def __init__(self, nvml: Any, gate: Optional[MachineGate], *, throttle_threshold: float = 0.75,
                 throttle_recovery_s: float = 0.05, shared_wait_s: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.nvml = nvml
        self.sleep, self.clock = sleep, clock
        self.recovery_s, self.wait_s = throttle_recovery_s, shared_wait_s
        self.listing = gate is not None and gate.checked and nvml.ok
        self.own = set(gate.own_pids) if gate is not None else set()
        # Processes there when the run was allowed to share the GPU: expected, not waited for.
        self.expected = {p.pid for p in gate.foreign} if gate is not None and gate.shared else set()
        # Shared with work NVML could not attribute to a process: every case is shared.
        self.invisible = gate is not None and gate.shared and not gate.foreign
        top = nvml.max_sm_clock() if nvml.ok else None
        self.threshold = None if top is None or throttle_threshold <= 0 else throttle_threshold * top
        self.why_off: Optional[str] = None
        if not nvml.ok:
            self.why_off = nvml.error or "NVML unavailable"
        elif not self.listing:
            self.why_off = ("the GPU's processes could not be listed: " + gate.why) if gate is not None else "no gate reading"
        self.start()

    def start(self) -> None:
        """A new case (or ceilings measurement): counters from zero."""
        self.batches = self.discarded_foreign = self.discarded_throttled = 0
        self.seen: dict[int, GpuProcess] = {}
        self.shared = self.invisible
        self.throttled = False
        self.waited = 0.0
        self.listing_failed: Optional[str] = None

    def _others(self) -> list[GpuProcess]:
        if not self.listing:
            return []
        try:
            procs = self.nvml.processes()
        except Exception as exc:  # noqa: BLE001 - a failed listing is said, not read as "none"
            self.listing_failed = f"NVML could not list the processes during the run ({exc})"
            return []
        others = [p for p in procs if p.pid not in self.own]
        for p in others:
            self.seen.setdefault(p.pid, p)
        return others

    def after_batch(self) -> BatchReading:
        reasons, sm, mem = self.nvml.sample()
        reading = BatchReading(True, reasons, sm, mem, self.nvml.power_w())
        waited = self.waited
        self.batches += 1
        left = self._wait_out()
        if left is not None:  # another process was on the GPU during the batch
            self.discarded_foreign += 1
            reading.keep = False
            if left:
                self._pause(self.recovery_s)
        elif self.threshold is not None and sm is not None and sm < self.threshold:
            if self.discarded_throttled < MAX_THROTTLED_DISCARDS:
                self.discarded_throttled += 1
                reading.keep = False
                self._pause(self.recovery_s)
            else:
                self.throttled = True
        reading.waited_s = self.waited - waited
        return reading

    def settle(self) -> None:
        """Before the census's profiled replay (whose time the integrity checks compare with the
        median): wait for a process that appeared to leave, as for a batch."""
        self._wait_out()

    def _wait_out(self) -> Optional[bool]:
        """None: no process to wait for (none, only those allowed at the start, or the case is
        shared already). True: one appeared and left within the wait. False: it stayed, and the
        case is shared from here on (its samples kept, the case invalid)."""
        others = self._others()
        if not others or self.shared:
            return None
        if {p.pid for p in others} <= self.expected:
            self.shared = True
            return None
        if self._wait_until_free():
            return True
        self.shared = True
        return False

    def _wait_until_free(self) -> bool:
        while self.waited < self.wait_s:
            self._pause(min(POLL_S, self.wait_s - self.waited))
            if not self._others():
                return True
        return False

    def _pause(self, s: float) -> None:
        t = self.clock()
        self.sleep(s)
        self.waited += self.clock() - t

    def record(self) -> Watch:
        why = self.why_off or self.listing_failed
        return Watch(batches=self.batches, discarded_foreign=self.discarded_foreign,
                     discarded_throttled=self.discarded_throttled, foreign=[self.seen[p] for p in sorted(self.seen)],
                     shared=self.shared, throttled=self.throttled,
                     waited_s=round(self.waited, 3),
                     sm_mhz_threshold=None if self.threshold is None else round(self.threshold, 1),
                     unavailable=why)
