"""Device-time measurement of one repetition of a kernel.

GPU, warm cache: the kernel is captured `inner` times into a CUDA graph and each sample is one
replay bracketed by CUDA events, divided by `inner`. Host overhead (Python, the SDPA dispatcher,
the backend-selection context) happens at capture and is not in the numbers: on an H100 at
B=32,H=8,S=128,D=64 fp16, one eager call between events read 0.088 ms, graph replay 0.0077 ms.
If capture fails, samples are `inner` eager launches between events and the record says so.

GPU, cold cache: each sample writes a buffer several times the L2 size, then times one replay;
the flush is queued ahead of the start event so the GPU never idles waiting for the host.

CPU: perf_counter_ns around `inner` calls.

Input sets (issue 16): the kernel is untrusted, so a repetition may be given several input sets
(`Slots`), each with its own graph. Batches rotate among them and, before a set's batch, its
contents are replaced with fresh data in place (same buffers, new values, drawn after timing
began): a kernel that caches by pointer, shape or contents, or that captured nothing and returns a
stale tensor, returns wrong values, and the caller checks the output each set's last timed replay
wrote (harness/integrity/outputs.py). After the samples, a host-clock loop (device-wide
synchronize, back-to-back replays, the bound perf_counter) times the same graph again: event times
far below it mean the timer was fooled or work ran outside the timed stream.

Sampling is adaptive: after every `cfg.batch` samples the distribution-free 95% CI of the median is
computed; the repetition stops once its half-width is within `cfg.target_rel_ci` of the median
(and at least `cfg.min_samples` were taken over at least `cfg.min_time_s`), or at `cfg.max_time_s` / `cfg.max_samples`, recorded
as not converged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from harness.integrity.guard import bind
from harness.machine.watch import Watcher
from harness.plan import TimingConfig
from harness.records import Repetition
from harness.stats import median_ci_distribution_free, median_ci_min_samples

MAX_INNER = 4096  # bounds graph size (and capture time) for the tiniest kernels
# The host-clock loop lasts at least this long (sync latency, tens of microseconds, is then under 1%)
# and replays at most HOST_LOOP_MAX times.
HOST_LOOP_MS = 10.0
HOST_LOOP_MAX = 200
# Warm-up ends after at most this much host time (x warmup_ms, at least the minimum), whatever
# the events say.
WARMUP_HOST_CAP_FACTOR = 4.0
WARMUP_HOST_CAP_MIN_MS = 1000.0
# Events that cover less than 1/10 of the host time around a device-wide synchronize (beyond
# 5 ms of launch and sync overhead) missed the work: the batch's host time is used instead, and
# sampling stops after such a batch (the host-clock check then fails the case).
HOST_EVENT_MISMATCH = 0.1
HOST_EVENT_SLACK_MS = 5.0


@dataclass
class Slots:
    """Input sets for one repetition: `fns[j]` runs the kernel on set j; `refresh(j)` replaces set
    j's contents with fresh data in place (None: the contents stay, e.g. the ceilings' own ops)."""

    fns: list[Callable[[], Any]]
    refresh: Optional[Callable[[int], None]] = None

    @classmethod
    def of(cls, fn: Callable[[], Any] | Slots) -> Slots:
        return fn if isinstance(fn, Slots) else cls([fn])


@dataclass
class HostClock:
    """The device-synchronised host-clock loop after the samples (per kernel call)."""

    host_ms: float  # host time per call over `calls` back-to-back calls, device-wide sync around
    event_ms: float  # the repetition's median per call from the CUDA events
    calls: int


@dataclass
class RepetitionTiming:
    repetition: Repetition
    method: str
    fallback_reason: str | None
    warmup_calls: int
    throttle_reasons: set[str] = field(default_factory=set)
    flags: set[str] = field(default_factory=set)
    clock_readings: list[tuple[Optional[int], Optional[int]]] = field(default_factory=list)
    setup_s: float = 0.0  # warm-up, calibration and graph capture before the first sample
    power_readings: list[Optional[float]] = field(default_factory=list)
    # Per input set, what its last timed call returned, copied right after that set's batch (a
    # later graph sharing the memory pool may reuse the buffer as scratch), and the buffers
    # themselves (for the aliasing check).
    outputs: list[Any] = field(default_factory=list)
    output_buffers: list[Any] = field(default_factory=list)
    refreshes: int = 0  # input-set contents replaced during sampling
    host_clock: Optional[HostClock] = None
    # One timed sample's work on the last input set (the graph replay, or the eager loop): the
    # integrity census profiles exactly what was timed. The caller drops it when done.
    replay: Optional[Callable[[], None]] = None


def rel_halfwidth(samples: list[float], level: float = 0.95) -> float | None:
    if len(samples) < median_ci_min_samples(level):
        return None
    x = np.asarray(samples)
    lo, hi = median_ci_distribution_free(x, level)
    mid = float(np.median(x))
    if mid <= 0:
        return None
    return max(mid - lo, hi - mid) / mid


class _Stopper:
    def __init__(self, cfg: TimingConfig):
        self.cfg = cfg
        self.clock = bind().perf_counter
        self.t0 = self.clock()
        self.reason = ""
        self.rel: float | None = None
        self.paused = 0.0  # waits for the machine (harness/machine/watch.py): not sampling time

    def pause(self, seconds: float) -> None:
        self.t0 += seconds
        self.paused += seconds

    def done(self, samples: list[float]) -> bool:
        cfg = self.cfg
        self.rel = rel_halfwidth(samples)
        elapsed = self.clock() - self.t0
        if (len(samples) >= cfg.min_samples and elapsed >= cfg.min_time_s
                and self.rel is not None and self.rel <= cfg.target_rel_ci):
            self.reason = "converged"
        elif len(samples) >= cfg.max_samples:
            # min_time_s only delays the stop; precision reached by the cap is convergence.
            met = self.rel is not None and self.rel <= cfg.target_rel_ci
            self.reason = "converged" if met else "max_samples"
        elif elapsed >= cfg.max_time_s and (len(samples) >= cfg.min_samples or elapsed >= 3 * cfg.max_time_s):
            # A one-off stall (first-use initialisation) must not end a repetition with a
            # handful of samples; only a persistently slow kernel reaches 3x the cap.
            self.reason = "max_time"
        else:
            return False
        return True

    def repetition(self, samples: list[float], inner: int, batch_sm_mhz: Sequence[Optional[int]] = ()) -> Repetition:
        return Repetition(
            samples_ms=samples,
            inner_iters=inner,
            converged=self.reason == "converged",
            stop_reason=self.reason,
            rel_halfwidth=self.rel,
            wall_s=round(self.clock() - self.t0 + self.paused, 4),
            batch_sm_mhz=list(batch_sm_mhz),
        )


# --------------------------------------------------------------------------- CPU
def measure_cpu(fn: Callable[[], Any] | Slots, cfg: TimingConfig) -> RepetitionTiming:
    from harness.integrity.outputs import snapshot  # imports this module: not at the top

    slots = Slots.of(fn)
    clock = bind().perf_counter_ns
    cycle = _cycler(slots.fns)
    # Warm-up until warmup_ms have passed (and at least 3 calls): first-call allocations and
    # lazy initialisation stay out of the samples.
    calls, t0 = 0, clock()
    while calls < 3 or (clock() - t0) / 1e6 < cfg.warmup_ms:
        cycle()
        calls += 1
    est_ms = max((clock() - t0) / 1e6 / calls, 1e-6)
    inner = int(min(MAX_INNER, max(1, round(cfg.sample_target_ms / est_ms))))
    setup_s = (clock() - t0) / 1e9
    stop = _Stopper(cfg)
    samples: list[float] = []
    outputs: list[Any] = [None] * len(slots.fns)
    kept: list[Any] = [None] * len(slots.fns)
    refreshes, batch_no = 0, 0
    while True:
        j = batch_no % len(slots.fns)
        if slots.refresh is not None:
            slots.refresh(j)
            refreshes += 1
        f = slots.fns[j]
        for _ in range(cfg.batch):
            s = clock()
            for _ in range(inner):
                out = f()
            samples.append((clock() - s) / 1e6 / inner)
        outputs[j] = out
        kept[j] = snapshot(out)
        del out
        batch_no += 1
        if batch_no >= len(slots.fns) and stop.done(samples):
            break

    def replay() -> None:
        for _ in range(inner):
            f()

    return RepetitionTiming(stop.repetition(samples, inner), "perf_counter", None, calls, setup_s=setup_s,
                            outputs=kept, output_buffers=outputs, refreshes=refreshes, replay=replay)


def _cycler(fns: list[Callable[[], Any]]) -> Callable[[], Any]:
    state = [0]

    def call() -> Any:
        f = fns[state[0] % len(fns)]
        state[0] += 1
        return f()

    return call


# --------------------------------------------------------------------------- CUDA
def _warmup_cuda(fn: Callable[[], Any], cfg: TimingConfig) -> tuple[int, float]:
    """Warm up for warmup_ms of event time; the estimate per call is the larger of the events'
    and the host clock's around a device-wide synchronize. A kernel whose work escapes the events
    (another stream) would otherwise read ~0 ms, double its batches without end and be given
    MAX_INNER calls a sample; the host clock bounds both."""
    t = bind()
    fn()
    t.device_synchronize()
    start, end = t.new_event(), t.new_event()
    calls, elapsed, host_elapsed = 1, 0.0, 0.0
    cap_ms = max(WARMUP_HOST_CAP_FACTOR * cfg.warmup_ms, WARMUP_HOST_CAP_MIN_MS)
    while (calls < 4 or elapsed < cfg.warmup_ms) and host_elapsed < cap_ms:
        h = t.perf_counter()
        t.record(start)
        n = max(1, calls)  # doubling batches reach warmup_ms quickly even for tiny kernels
        for _ in range(n):
            fn()
        t.record(end)
        t.device_synchronize()
        host_ms = (t.perf_counter() - h) * 1e3
        batch_ms = t.elapsed_ms(start, end)
        elapsed += batch_ms
        host_elapsed += host_ms
        calls += n
        est = batch_ms / n
        if batch_ms < HOST_EVENT_MISMATCH * host_ms - HOST_EVENT_SLACK_MS:
            est = max(est, host_ms / n)
    return calls, est


def capture_graph(fn: Callable[[], Any], inner: int):
    return capture_graph_keeping_output(fn, inner)[0]


def capture_graph_keeping_output(fn: Callable[[], Any], inner: int, pool: Any = None) -> tuple[Any, Any]:
    """A CUDA graph of `inner` calls, and the output its last call returned (every replay writes
    that tensor again: it is the output of the timed replays, checked afterwards). `pool`: another
    graph's memory pool to share (graphs replayed one at a time need one pool, not one each)."""
    import torch

    graph = torch.cuda.CUDAGraph()
    # Capture on a side stream (torch.cuda.graph does this); outputs but the last are dropped at
    # once so the graph's private pool reuses one output buffer for the other calls.
    out = None
    with torch.cuda.graph(graph, pool=pool):
        for _ in range(inner):
            out = None
            out = fn()
    graph.replay()
    bind().device_synchronize()
    return graph, out


def measure_cuda(
    fn: Callable[[], Any] | Slots,
    cfg: TimingConfig,
    *,
    cache: str = "warm",
    l2_bytes: int | None = None,
    watch: Watcher | None = None,
) -> RepetitionTiming:
    """`watch`: NVML after every batch; a batch it does not keep (another process on the GPU, a
    throttled clock) is discarded and sampling goes on after its wait, which the stopping rule
    does not count as sampling time."""
    import torch

    from harness.integrity.outputs import snapshot  # imports this module: not at the top

    t = bind()
    slots = Slots.of(fn)
    n = len(slots.fns)
    t_setup = t.perf_counter()
    warmup_calls, est_ms = _warmup_cuda(_cycler(slots.fns), cfg)
    cold = cache == "cold"
    inner = 1 if cold else int(min(MAX_INNER, max(1, round(cfg.sample_target_ms / max(est_ms, 1e-4)))))
    method, fallback = "cuda_graph", None
    outputs: list[Any] = [None] * n
    runs: list[Callable[[], None]] = []
    try:
        graph, outputs[0] = capture_graph_keeping_output(slots.fns[0], inner)
        if not cold:
            # Eager launches of a ~10 us kernel are host-bound, so the warm-up estimate can be
            # 10x too long; re-derive `inner` from a replay of the graph itself.
            start, end = t.new_event(), t.new_event()
            t.record(start)
            graph.replay()
            t.record(end)
            t.event_synchronize(end)
            per_call = max(t.elapsed_ms(start, end) / inner, 1e-5)
            want = int(min(MAX_INNER, max(1, round(cfg.sample_target_ms / per_call))))
            if want > 1.5 * inner:
                del graph
                outputs[0] = None
                inner = want
                graph, outputs[0] = capture_graph_keeping_output(slots.fns[0], inner)
        graphs = [graph]
        for j in range(1, n):
            # One pool for all: the sets' graphs never run at once, and a pool each would hold
            # the math backend's intermediates twice (50 GB predicted at S=4096). A later graph
            # may use an earlier one's output buffer as scratch: outputs are copied per batch.
            g, outputs[j] = capture_graph_keeping_output(slots.fns[j], inner, pool=graph.pool())
            graphs.append(g)
        runs = [g.replay for g in graphs]
    except Exception as exc:  # capture refused (e.g. a host sync inside the kernel wrapper)
        t.device_synchronize()
        method = "cuda_events"
        fallback = f"CUDA graph capture failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); timed {inner} back-to-back launches per sample instead"
        outputs = [None] * n

        def eager(j: int) -> Callable[[], None]:
            f = slots.fns[j]

            def run() -> None:
                out = None
                for _ in range(inner):
                    out = None
                    out = f()
                outputs[j] = out

            return run

        runs = [eager(j) for j in range(n)]

    flush = None
    if cold:
        # Several times the L2 so no line of the inputs survives; int32 fill is one write pass.
        size = max(4 * (l2_bytes or 64 << 20), 256 << 20) // 4
        flush = torch.empty(size, dtype=torch.int32, device="cuda")

    throttles: set[str] = set()
    flags: set[str] = set()
    clocks: list[tuple[Optional[int], Optional[int]]] = []
    powers: list[Optional[float]] = []
    setup_s = t.perf_counter() - t_setup
    stop = _Stopper(cfg)
    samples: list[float] = []
    events = [(t.new_event(), t.new_event()) for _ in range(cfg.batch)]
    kept: list[Any] = [None] * n
    refreshes, batch_no = 0, 0
    host_per_replay = 0.0
    while True:
        j = batch_no % n
        if slots.refresh is not None:
            # Queued ahead of the batch on the same stream, outside every event pair.
            slots.refresh(j)
            refreshes += 1
        run = runs[j]
        batch_t0 = t.perf_counter()
        if flush is None:
            # After the last batch's synchronize the GPU is idle, so the first timed replay would
            # include the launch latency (seen on the H100: +3% on that sample). One untimed
            # replay keeps the GPU busy while the timed ones are queued behind it.
            run()
        host_s = 0.0
        for start, end in events:
            if flush is not None:
                flush.fill_(len(samples))
            t.record(start)
            h = t.perf_counter()
            run()
            host_s += t.perf_counter() - h
            t.record(end)
        # Device-wide: work a kernel left on another stream is finished before the batch ends
        # (it is not in the events; the host-clock loop below shows it).
        t.device_synchronize()
        batch_host_ms = (t.perf_counter() - batch_t0) * 1e3
        # Copied now: the next set's graph shares the pool and may use this buffer as scratch.
        kept[j] = snapshot(outputs[j])
        batch = [t.elapsed_ms(s_, e_) for s_, e_ in events]
        replays = len(events) + (1 if flush is None else 0)
        host_per_replay = max(host_per_replay, batch_host_ms / replays)
        escaped = sum(batch) < HOST_EVENT_MISMATCH * batch_host_ms - HOST_EVENT_SLACK_MS
        if method == "cuda_events" and host_s * 1e3 >= 0.9 * sum(batch):
            # Enqueuing took as long as the GPU ran: it waited on the host between launches, so
            # these "device" times include launch overhead (on the H100, eager flash at S=128
            # read several times its graph-replay time; bench/h100/modes/).
            flags.add("host_bound")
        keep = True
        if watch is not None:
            # Read right after the batch's last event: the clocks have not had time to fall back
            # from their loaded state (they take milliseconds, the read microseconds).
            r = watch.after_batch()
            stop.pause(r.waited_s)
            keep = r.keep
            if keep:
                throttles.update(r.reasons)
                clocks.append((r.sm_mhz, r.mem_mhz))
                powers.append(r.power_w)
        if keep or (escaped and not samples):
            samples.extend(x / inner for x in batch)
        batch_no += 1
        if escaped:
            # The work is not in the events; more samples of nothing would only cost time.
            flags.add("host_clock_disagrees")
            stop.done(samples)
            stop.reason = stop.reason or "max_time"
            break
        # Every input set is timed at least once, so each one's output is a timed replay's.
        if batch_no >= n and samples and stop.done(samples):
            break
    del flush
    rep = stop.repetition(samples, inner, [sm for sm, _ in clocks])
    last = runs[(batch_no - 1) % n]
    host = _host_clock(last, inner, float(np.median(samples)), host_per_replay, t)
    return RepetitionTiming(rep, method, fallback, warmup_calls, throttles, flags, clocks, setup_s, power_readings=powers,
                            outputs=kept, output_buffers=outputs, refreshes=refreshes, host_clock=host, replay=last)


def _host_clock(run: Callable[[], None], inner: int, event_ms: float, host_per_replay: float, t: Any) -> HostClock:
    """Time back-to-back replays of the last input set's graph with the host clock between two
    device-wide synchronizes: nothing a kernel does can hide from this, not a patched event timer
    nor work left on another stream. Sized by the larger of the events' and the batches' host
    time per replay, so work that escaped the events does not make the loop long."""
    per_replay = max(event_ms * inner, host_per_replay, 1e-4)
    reps = int(min(HOST_LOOP_MAX, max(3, round(HOST_LOOP_MS / per_replay))))
    run()
    t.device_synchronize()
    h = t.perf_counter()
    for _ in range(reps):
        run()
    t.device_synchronize()
    host_ms = (t.perf_counter() - h) * 1e3
    return HostClock(host_ms=host_ms / (reps * inner), event_ms=event_ms, calls=reps * inner)
