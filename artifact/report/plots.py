"""Small hand-written SVG charts for the report (no plotting library).

Two charts are needed: a line chart with CI error bars on log-log axes (time against S per
backend) and a grouped bar chart with a reference line (achieved TFLOP/s against the measured
peak). Every mark carries its data value in `data-*` attributes so tests (and readers of the SVG
source) can check what was drawn against the numbers it came from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional
from xml.sax.saxutils import escape, quoteattr

WIDTH, HEIGHT = 720, 420
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 80, 170, 40, 60
# Colour-blind-safe palette (Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


@dataclass
class Series:
    label: str
    x: list[float]
    y: list[float]
    lo: Optional[list[float]] = None  # CI ends, same length as y
    hi: Optional[list[float]] = None


class _Axis:
    def __init__(self, lo: float, hi: float, log: bool, pixel_lo: float, pixel_hi: float, exact: bool = False,
                 zero: bool = True):
        if log and lo <= 0:
            raise ValueError("a log axis needs positive values")
        if lo == hi:
            lo, hi = (lo / 2, hi * 2) if log else (lo - 1, hi + 1)
        self.log = log
        if log and exact:
            # Data axis (S): a little room either side, no rounding to decades.
            pad = (math.log10(hi) - math.log10(lo)) * 0.06 or 0.1
            self.lo, self.hi = 10 ** (math.log10(lo) - pad), 10 ** (math.log10(hi) + pad)
        elif log:
            self.lo, self.hi = _step_below(lo), _step_above(hi)
        elif zero:
            self.lo, self.hi = _nice_floor(min(lo, 0.0)), _nice_ceil(hi)
        else:
            # Values far from zero (ratios near 1): the axis spans the data, in whole ticks.
            step = _nice_step((hi - lo) / 5)
            self.lo, self.hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
        self.p0, self.p1 = pixel_lo, pixel_hi

    def __call__(self, v: float) -> float:
        if self.log:
            t = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            t = (v - self.lo) / (self.hi - self.lo)
        return self.p0 + t * (self.p1 - self.p0)

    def ticks(self) -> list[float]:
        if self.log:
            out = []
            e = math.floor(math.log10(self.lo))
            while 10**e <= self.hi * 1.0001:
                for m in (1, 2, 5):
                    v = m * 10**e
                    if self.lo * 0.9999 <= v <= self.hi * 1.0001:
                        out.append(v)
                e += 1
            return out
        step = _nice_step((self.hi - self.lo) / 5)
        n = int(round((self.hi - self.lo) / step))
        return [self.lo + i * step for i in range(n + 1)]


def _steps_around(v: float) -> list[float]:
    e = math.floor(math.log10(v))
    return [m * 10**k for k in (e - 1, e, e + 1) for m in (1, 2, 5)]


def _step_below(v: float) -> float:
    """The largest 1-2-5 value at or below v (a log axis starts there)."""
    return max(x for x in _steps_around(v) if x <= v * (1 + 1e-12))


def _step_above(v: float) -> float:
    return min(x for x in _steps_around(v) if x >= v * (1 - 1e-12))


def _nice_step(raw: float) -> float:
    if raw <= 0:
        return 1.0
    e = math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * 10**e >= raw:
            return m * 10**e
    return 10 ** (e + 1)


def _nice_ceil(v: float) -> float:
    if v <= 0:
        return 1.0
    step = _nice_step(v / 5)
    return math.ceil(v / step - 1e-9) * step


def _nice_floor(v: float) -> float:
    if v >= 0:
        return 0.0
    return -_nice_ceil(-v)


def _label(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.0e}"
    return f"{v:g}"


def _text(x: float, y: float, s: str, anchor: str = "middle", size: int = 12, extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>{escape(s)}</text>'


def _frame(title: str, x_label: str, y_label: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'font-family="sans-serif">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        _text(WIDTH / 2 - (MARGIN_R - MARGIN_L) / 2, 22, title, size=15),
        _text((MARGIN_L + WIDTH - MARGIN_R) / 2, HEIGHT - 15, x_label),
        _text(18, (MARGIN_T + HEIGHT - MARGIN_B) / 2, y_label, extra=f' transform="rotate(-90 18 {(MARGIN_T + HEIGHT - MARGIN_B) / 2:.1f})"'),
    ]


def _grid(xa: _Axis, ya: _Axis, x_ticks: Sequence[float], x_tick_labels: Sequence[str]) -> list[str]:
    out = []
    x0, x1, y0, y1 = MARGIN_L, WIDTH - MARGIN_R, HEIGHT - MARGIN_B, MARGIN_T
    for v in ya.ticks():
        y = ya(v)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(_text(x0 - 6, y + 4, _label(v), anchor="end", size=11))
    for v, lab in zip(x_ticks, x_tick_labels):
        x = xa(v)
        out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + 5}" stroke="#333"/>')
        out.append(_text(x, y0 + 18, lab, size=11))
    out.append(f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#333"/>')
    return out


def _legend(labels: Sequence[str], extra: Sequence[tuple[str, str]] = ()) -> list[str]:
    """The legend right of the plot; a label may hold newlines (one text line each), since the
    legend column is about 20 characters wide."""
    out = []
    x = WIDTH - MARGIN_R + 15
    y = MARGIN_T + 10
    for i, lab in enumerate(labels):
        out.append(f'<rect x="{x}" y="{y - 9}" width="12" height="12" fill="{PALETTE[i % len(PALETTE)]}"/>')
        for k, line in enumerate(lab.split("\n")):
            out.append(_text(x + 18, y + 1 + 14 * k, line, anchor="start"))
        y += 20 + 14 * lab.count("\n")
    for j, (lab, dash) in enumerate(extra):
        y = MARGIN_T + 10 + 20 * (len(labels) + j) + 14 * sum(lab_.count("\n") for lab_ in labels)
        out.append(f'<line x1="{x}" y1="{y - 3}" x2="{x + 12}" y2="{y - 3}" stroke="#333" stroke-dasharray="{dash}"/>')
        out.append(_text(x + 18, y + 1, lab, anchor="start"))
    return out


def line_chart(series: Sequence[Series], *, title: str, x_label: str, y_label: str, log_x: bool = True, log_y: bool = True,
               y_zero: bool = True) -> str:
    """Lines with markers and vertical CI bars, one colour per series. A linear y axis starts at
    zero unless `y_zero` is False (ratios near 1, whose differences are a few percent)."""
    if not series or not any(s.x for s in series):
        raise ValueError("line_chart: nothing to plot")
    xs = [v for s in series for v in s.x]
    ys = [v for s in series for v in (s.y + (s.lo or []) + (s.hi or []))]
    xa = _Axis(min(xs), max(xs), log_x, MARGIN_L + 20, WIDTH - MARGIN_R - 20, exact=True)
    ya = _Axis(min(ys), max(ys), log_y, HEIGHT - MARGIN_B, MARGIN_T, zero=y_zero)
    ticks = sorted(set(xs))
    out = _frame(title, x_label, y_label) + _grid(xa, ya, ticks, [_label(t) for t in ticks])
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        nones: list[Optional[float]] = [None] * len(s.x)
        pts = sorted(zip(s.x, s.y, s.lo or nones, s.hi or nones), key=lambda p: (p[0], p[1]))
        path = " ".join(f"{xa(x):.1f},{ya(y):.1f}" for x, y, _, _ in pts)
        out.append(f'<polyline class="series" data-label={quoteattr(s.label)} points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y, lo, hi in pts:
            px = xa(x)
            if lo is not None and hi is not None:
                out.append(
                    f'<g class="errorbar" data-label={quoteattr(s.label)} data-x="{x!r}" data-lo="{lo!r}" data-hi="{hi!r}" stroke="{colour}">'
                    f'<line x1="{px:.1f}" y1="{ya(lo):.2f}" x2="{px:.1f}" y2="{ya(hi):.2f}"/>'
                    f'<line x1="{px - 4:.1f}" y1="{ya(lo):.2f}" x2="{px + 4:.1f}" y2="{ya(lo):.2f}"/>'
                    f'<line x1="{px - 4:.1f}" y1="{ya(hi):.2f}" x2="{px + 4:.1f}" y2="{ya(hi):.2f}"/></g>'
                )
            out.append(f'<circle class="point" data-label={quoteattr(s.label)} data-x="{x!r}" data-y="{y!r}" '
                       f'cx="{px:.1f}" cy="{ya(y):.2f}" r="3.5" fill="{colour}"/>')
    out += _legend([s.label for s in series])
    out.append("</svg>")
    return "\n".join(out) + "\n"


def bar_chart(categories: Sequence[str], series: Sequence[tuple[str, Sequence[Optional[float]]]], *, title: str,
              y_label: str, x_label: str, reference: Optional[tuple[float, str]] = None) -> str:
    """Grouped bars (one group per category, one bar per series; None draws no bar) and an
    optional dashed horizontal reference line (e.g. the measured peak)."""
    values = [v for _, vals in series for v in vals if v is not None]
    if not values:
        raise ValueError("bar_chart: nothing to plot")
    top = max(values + ([reference[0]] if reference else []))
    ya = _Axis(0.0, top * 1.05, False, HEIGHT - MARGIN_B, MARGIN_T)
    n_cat, n_ser = len(categories), len(series)
    span = (WIDTH - MARGIN_R - MARGIN_L) / max(n_cat, 1)
    bar_w = span * 0.8 / max(n_ser, 1)

    class _Cat:  # category index -> centre pixel, for the shared grid drawer
        def __call__(self, i: float) -> float:
            return MARGIN_L + span * (i + 0.5)

    out = _frame(title, x_label, y_label) + _grid(_Cat(), ya, list(range(n_cat)), list(categories))  # type: ignore[arg-type]
    for j, (label, vals) in enumerate(series):
        colour = PALETTE[j % len(PALETTE)]
        for i, v in enumerate(vals):
            if v is None:
                continue
            x = MARGIN_L + span * i + span * 0.1 + bar_w * j
            y = ya(v)
            out.append(f'<rect class="bar" data-label={quoteattr(label)} data-category={quoteattr(categories[i])} data-value="{v!r}" '
                       f'x="{x:.1f}" y="{y:.2f}" width="{bar_w:.1f}" height="{ya(0.0) - y:.2f}" fill="{colour}"/>')
    extra = []
    if reference:
        y = ya(reference[0])
        out.append(f'<line class="reference" data-value="{reference[0]!r}" x1="{MARGIN_L}" y1="{y:.2f}" x2="{WIDTH - MARGIN_R}" '
                   f'y2="{y:.2f}" stroke="#333" stroke-dasharray="6 4"/>')
        extra.append((reference[1], "6 4"))
    out += _legend([label for label, _ in series], extra)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def roofline(points: Sequence[tuple[str, float, float, str]], *, compute_roof: float, bandwidth_roof: float,
             title: str, compute_label: str, bandwidth_label: str) -> str:
    """A roofline on log-log axes: attained TFLOP/s against arithmetic intensity (FLOP per byte
    of the fewest bytes any implementation must move), under the card's two measured roofs.

    `points`: (series label, intensity FLOP/B, TFLOP/s, point label such as "S=512").
    `compute_roof` in TFLOP/s; `bandwidth_roof` in GB/s (so the slanted roof is AI x GB/s / 1000)."""
    if not points:
        raise ValueError("roofline: nothing to plot")
    ridge = compute_roof * 1000.0 / bandwidth_roof  # FLOP/B where the two roofs meet
    xs = [p[1] for p in points] + [ridge]
    lo_x, hi_x = min(xs) / 2, max(xs) * 2
    ys = [p[2] for p in points] + [compute_roof, min(compute_roof, lo_x * bandwidth_roof / 1000.0)]
    xa = _Axis(lo_x, hi_x, True, MARGIN_L, WIDTH - MARGIN_R)
    ya = _Axis(min(ys) / 1.5, compute_roof * 1.5, True, HEIGHT - MARGIN_B, MARGIN_T)
    ticks = [t for t in xa.ticks()]
    out = _frame(title, "arithmetic intensity (FLOP per byte moved, fewest bytes)", "TFLOP/s") + \
        _grid(xa, ya, ticks, [_label(t) for t in ticks])
    # The roof: bandwidth-bound from the left edge to the ridge, then compute-bound.
    left = max(xa.lo, ya.lo * 1000.0 / bandwidth_roof)
    out.append(f'<polyline class="roof" data-compute="{compute_roof!r}" data-bandwidth="{bandwidth_roof!r}" '
               f'data-ridge="{ridge!r}" points="{xa(left):.1f},{ya(left * bandwidth_roof / 1000.0):.2f} '
               f'{xa(ridge):.1f},{ya(compute_roof):.2f} {xa(xa.hi):.1f},{ya(compute_roof):.2f}" fill="none" stroke="#333" '
               f'stroke-width="2"/>')
    out.append(_text(xa(xa.hi) - 4, ya(compute_roof) - 6, compute_label, anchor="end", size=11))
    out.append(_text(xa(left) + 4, ya(left * bandwidth_roof / 1000.0) - 6, bandwidth_label, anchor="start", size=11))
    labels = list(dict.fromkeys(p[0] for p in points))
    for label, x, y, tag in points:
        colour = PALETTE[labels.index(label) % len(PALETTE)]
        out.append(f'<circle class="point" data-label={quoteattr(label)} data-x="{x!r}" data-y="{y!r}" data-tag={quoteattr(tag)} '
                   f'cx="{xa(x):.1f}" cy="{ya(y):.2f}" r="4" fill="{colour}"><title>{escape(f"{label} {tag}: {y:.4g} TFLOP/s")}</title></circle>')
    out += _legend(labels, [("measured roofs", "0")])
    out.append("</svg>")
    return "\n".join(out) + "\n"
