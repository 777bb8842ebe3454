"""How long harness.stats takes at the sizes the harness uses (CPU only, torch-free).

Done criterion of the stats module: a 10,000-resample bootstrap CI (BCa and percentile) of the
median of 1,000 samples in under 50 ms on the 2-core CI machine. Also timed, for context: the same
for the mean (which still resamples indices), the textbook (n_resamples, n) index resampling +
np.median that the median path replaces, and the distribution-free median CI that the timer's
stopping rule calls after every batch.

    python bench/bootstrap_speed.py [--repeats 21] [--out bench/bootstrap_speed.json]

Prints a table, writes the JSON atomically, exits 1 if the criterion is missed.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy

from harness import stats
from harness.records import to_json
from harness.storage import atomic_write_text, utc_now

BENCH_SCHEMA_VERSION = 1
BUDGET_MS = 50.0


@dataclass
class Measurement:
    name: str
    statistic: str
    method: str
    n_samples: int
    n_resamples: int
    repeats: int
    median_ms: float
    min_ms: float
    max_ms: float
    budget_ms: float | None  # None: context only, not part of the criterion
    within_budget: bool | None


@dataclass
class BenchReport:
    created_at: str
    command: str
    machine: dict[str, str | int | None]
    measurements: list[Measurement]
    criterion: str
    criterion_met: bool
    schema_version: int = BENCH_SCHEMA_VERSION
    kind: str = "bench_bootstrap_speed"
    notes: list[str] = field(default_factory=list)


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def time_ms(fn: Callable[[], object], repeats: int, calls: int) -> list[float]:
    """Per-call milliseconds of `repeats` timings, each of `calls` back-to-back calls (several
    calls per timing for functions too quick for one perf_counter pair)."""
    fn()  # warm caches and lazy imports outside the measurement
    out = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append((time.perf_counter() - t0) * 1e3 / calls)
    return out


def measure(name, statistic, method, n, b, repeats, fn, budget, calls=1) -> Measurement:
    ts = time_ms(fn, repeats, calls)
    med = statistics.median(ts)
    return Measurement(
        name=name, statistic=statistic, method=method, n_samples=n, n_resamples=b, repeats=repeats,
        median_ms=round(med, 4), min_ms=round(min(ts), 4), max_ms=round(max(ts), 4),
        budget_ms=budget, within_budget=None if budget is None else med < budget,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--n", type=int, default=1000, help="samples per bootstrap")
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"))
    args = ap.parse_args(argv)
    n, b, r = args.n, args.resamples, args.repeats

    # GPU-like timings: lognormal around 0.3 ms on a 1.024 us tick grid, as the L4 data.
    rng = np.random.default_rng(2025)
    x = np.round(rng.lognormal(np.log(0.3), 0.05, n) / 1.024e-3) * 1.024e-3
    x_cont = rng.lognormal(np.log(0.3), 0.05, n)

    results = []
    for method in stats.METHODS:
        results.append(measure(f"bootstrap_ci median {method}", "median", method, n, b, r,
                               lambda m=method: stats.bootstrap_ci(x_cont, "median", b, 0.95, m), BUDGET_MS))
        results.append(measure(f"bootstrap_ci median {method} (tick-quantized)", "median", method, n, b, r,
                               lambda m=method: stats.bootstrap_ci(x, "median", b, 0.95, m), BUDGET_MS))
    for method in stats.METHODS:
        results.append(measure(f"bootstrap_ci mean {method}", "mean", method, n, b, r,
                               lambda m=method: stats.bootstrap_ci(x_cont, "mean", b, 0.95, m), None))

    def brute_median() -> np.ndarray:
        idx = np.random.default_rng(0).integers(0, n, size=(b, n))
        return np.median(x_cont[idx], axis=1)

    results.append(measure("reference: (n_resamples, n) indices + np.median, percentile only", "median",
                           "percentile", n, b, max(3, r // 4), brute_median, None))
    big = rng.lognormal(np.log(0.3), 0.05, 10 * n)
    results.append(measure("ratio_of_medians_ci bca, 10x n per side", "median", "bca", 10 * n, b, r,
                           lambda: stats.ratio_of_medians_ci(big, big * 0.9, b), None))
    stop = rng.lognormal(np.log(0.3), 0.05, 2000)
    stop_list = list(stop)
    results.append(measure("median_ci_distribution_free, n=2000 numpy array (per call)", "median", "order-statistic",
                           2000, 0, r, lambda: stats.median_ci_distribution_free(stop), None, calls=1000))
    results.append(measure("median_ci_distribution_free, n=2000 Python list (per call)", "median", "order-statistic",
                           2000, 0, r, lambda: stats.median_ci_distribution_free(stop_list), None, calls=1000))

    gated = [m for m in results if m.budget_ms is not None]
    met = all(m.within_budget for m in gated)
    report = BenchReport(
        created_at=utc_now(),
        command="python " + " ".join([sys.argv[0]] + (argv if argv is not None else sys.argv[1:])),
        machine={
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        measurements=results,
        criterion=(
            f"bootstrap_ci of the median, {b} resamples over {n} samples, BCa and percentile: "
            f"median < {BUDGET_MS} ms"
        ),
        criterion_met=met,
        notes=["times are wall-clock medians over repeats, after one warm-up call; other processes may share the CPU"],
    )
    atomic_write_text(args.out, to_json(report))

    width = max(len(m.name) for m in results)
    print(f"{'what'.ljust(width)}  median_ms   min_ms   max_ms  budget")
    for m in results:
        budget = "-" if m.budget_ms is None else ("ok" if m.within_budget else "MISSED")
        print(f"{m.name.ljust(width)}  {m.median_ms:9.4f} {m.min_ms:8.4f} {m.max_ms:8.4f}  {budget}")
    print(f"criterion {'met' if met else 'MISSED'}: {report.criterion}; wrote {args.out}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
