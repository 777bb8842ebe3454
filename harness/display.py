"""What a person sees: a progress bar while cases run and a table when they are done (torch-free)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.table import Table

from harness.records import CaseResult


def fmt_ms(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.4f}" if x < 1 else f"{x:.3f}"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 2**20:.1f} MiB"


def fmt_err(r: CaseResult) -> str:
    if r.correctness is None:
        return "-"
    return "not finite" if r.correctness.rel_error is None else f"{r.correctness.rel_error:.1e}"


def results_table(results: Iterable[CaseResult], title: str = "Results") -> Table:
    t = Table(title=title, show_lines=False)
    for col in ("backend", "S", "B×H×D dtype", "status", "median ms", "95% CI ms", "±%", "conv", "TFLOP/s", "GB/s", "peak mem", "rel err", "bitwise"):
        t.add_column(col, justify="left" if col in ("backend", "B×H×D dtype", "status") else "right")
    for r in results:
        c = r.case
        backend = c.backend if c.workload == "sdpa" else f"{c.workload}:{c.backend}"
        shape = f"{c.batch}×{c.heads}×{c.head_dim} {c.dtype}{' causal' if c.causal else ''}{' cold' if c.cache == 'cold' else ''}"
        name = (backend, str(c.seq), shape)
        if r.status not in ("ok", "invalid") or r.timing is None:
            t.add_row(*name, f"[yellow]{r.status}[/]" if r.status == "skipped" else f"[red]{r.status}[/]", "-", "-", "-", "-", "-", "-", "-",
                      fmt_err(r), "-")
            continue
        s = r.timing.summary
        t.add_row(
            *name,
            "[green]ok[/]" if r.status == "ok" else "[red]invalid[/]",
            fmt_ms(s.median_ms),
            f"[{fmt_ms(s.ci_low_ms)}, {fmt_ms(s.ci_high_ms)}]",
            f"{100 * s.rel_halfwidth:.2f}",
            "yes" if s.converged else "[red]no[/]",
            f"{r.throughput.tflops:.3g}" if r.throughput else "-",
            f"{r.throughput.gbps:.4g}" if r.throughput else "-",
            fmt_bytes(r.memory.peak_allocated_bytes) if r.memory else "-",
            fmt_err(r),
            ("yes" if r.correctness.bitwise_repeat else "[red]no[/]") if r.correctness else "-",
        )
    return t


def reasons(results: Iterable[CaseResult]) -> list[str]:
    # An invalid case's reason begins with its status ("invalid: <check>: ..."): not said twice.
    lines = [f"{r.case.case_id}: " + (r.reason if r.reason and r.reason.startswith(f"{r.status}:") else f"{r.status}: {r.reason}")
             for r in results if r.status != "ok"]
    for r in results:
        if r.timing is not None and r.timing.fallback_reason:
            flags = f" [{', '.join(r.timing.summary.flags)}]" if r.timing.summary.flags else ""
            lines.append(f"{r.case.case_id}: {r.timing.fallback_reason}{flags}")
    return lines


def console(stderr: bool = False) -> Console:
    con = Console(stderr=stderr, highlight=False)
    if not con.is_terminal:
        # Logs and CI: wide enough that the table is not folded into unreadable columns.
        con = Console(stderr=stderr, highlight=False, width=160)
    return con
