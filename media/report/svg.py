"""A small, dependency-free SVG line and scatter plotter for the title report.

`figure(title, panels)` returns an SVG document: one or more panels stacked top to bottom,
each with its own axes (linear or log x, linear y), grid, ticks, axis labels, series
(polylines and/or point markers, each in its own colour) and a legend to the right.

The output is deterministic (fixed number formatting, no ids from clocks or counters
outside the document) so that a re-run of a title rewrites the same bytes, and every
piece of text is escaped: series names and titles may come from user input. Each series
is one `<g class="series" data-role=... data-name=...>`, each marker carries
`class="marker"`, so tests can read a chart back with xml.etree.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SVG_NS = "http://www.w3.org/2000/svg"
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
           "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#bab0ac")
"""Tableau 10: distinct in colour and still apart in greyscale."""

MARGIN_LEFT = 64
MARGIN_RIGHT = 176
"""Room for the legend, to the right of the plot."""
MARGIN_TOP = 16
MARGIN_BOTTOM = 44
TITLE_HEIGHT = 28
FONT = "font-family='system-ui, sans-serif' font-size='12'"
_LOG_MANTISSAS = ((1,), (1, 2, 5), (1, 2, 3, 5, 7), tuple(range(1, 10)))
_LINEAR_STEPS = (1, 2, 2.5, 5, 10)
_TICKS = 6
"""About how many ticks a linear axis gets."""


def colour(index: int) -> str:
    """The palette colour of the `index`-th series (wrapping around)."""
    return PALETTE[index % len(PALETTE)]


def esc(text: object) -> str:
    """Text made safe for SVG/HTML character data and quoted attribute values."""
    return html.escape(str(text), quote=True)


def num(value: float) -> str:
    """A coordinate: two decimals at most, no trailing zeros, no '-0'."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def tick_label(value: float) -> str:
    """A tick label: 1000, 2.5, 0.1; never an exponent for the values a report holds."""
    if abs(value) >= 1e4 or value == round(value):
        return f"{value:.0f}"
    return f"{round(value, 6):g}"


@dataclass(frozen=True)
class Axis:
    """One axis: its range, label, and whether it is logarithmic."""

    label: str
    lo: float
    """Value at the start of the axis (left or bottom)."""
    hi: float
    """Value at the end of the axis (right or top); greater than `lo`."""
    log: bool = False
    """Logarithmic (base 10) scale; `lo` must then be positive."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.hi > self.lo):
            raise ValueError(f"axis {self.label!r}: need finite lo < hi, got {self.lo}, {self.hi}")
        if self.log and self.lo <= 0:
            raise ValueError(f"axis {self.label!r}: a log axis needs lo > 0, got {self.lo}")

    @classmethod
    def fit(cls, label: str, values: Iterable[float], log: bool = False, min_span: float = 0.0,
            limits: tuple[float, float] = (-math.inf, math.inf)) -> Axis:
        """An axis covering `values` with a margin, on round numbers for a linear axis.

        A linear axis spans at least `min_span` (so that a flat series does not look like
        noise blown up) and never leaves `limits` (VMAF stops at 100, a bitrate at 0).
        """
        data = [v for v in values if v is not None and math.isfinite(v) and (v > 0 or not log)]
        if not data:
            return cls(label, 1.0, 10.0, log) if log else cls(label, 0.0, 1.0)
        lo, hi = min(data), max(data)
        if log:
            spread = max(hi / lo, 1.2) ** 0.08
            return cls(label, lo / spread, hi * spread, True)
        if hi - lo < 1e-9:  # one value: give it room either side
            min_span = max(min_span, abs(lo) * 0.2 or 2.0)
        lo, hi = _widen(lo, hi, min_span, limits)
        pad = (hi - lo) * 0.04
        step = _nice_step((hi - lo + 2 * pad) / _TICKS)
        lo = max(math.floor((lo - pad) / step) * step, limits[0])
        hi = min(math.ceil((hi + pad) / step) * step, limits[1])
        return cls(label, lo, hi)

    def fraction(self, value: float) -> float:
        """Where `value` falls along the axis, 0 at `lo` and 1 at `hi`."""
        if self.log:
            return math.log(value / self.lo) / math.log(self.hi / self.lo)
        return (value - self.lo) / (self.hi - self.lo)

    def ticks(self) -> list[float]:
        """Round values inside the axis at which to draw ticks: 3 to about 10 of them."""
        if self.log:
            for mantissas in _LOG_MANTISSAS:
                found = _log_ticks(self.lo, self.hi, mantissas)
                if len(found) >= 3:
                    return found
            return found if len(found) >= 2 else _linear_ticks(self.lo, self.hi)
        return _linear_ticks(self.lo, self.hi)


def _widen(lo: float, hi: float, span: float,
           limits: tuple[float, float]) -> tuple[float, float]:
    """lo..hi grown about its middle to at least `span`, slid back inside `limits`."""
    if hi - lo >= span:
        return lo, hi
    middle = (lo + hi) / 2
    lo, hi = middle - span / 2, middle + span / 2
    if hi > limits[1]:
        lo, hi = lo - (hi - limits[1]), limits[1]
    elif lo < limits[0]:
        lo, hi = limits[0], hi + (limits[0] - lo)
    return max(lo, limits[0]), min(hi, limits[1])


def _nice_step(rough: float) -> float:
    scale = 10 ** math.floor(math.log10(rough))
    return next(s * scale for s in _LINEAR_STEPS if s * scale >= rough * 0.999)


def _linear_ticks(lo: float, hi: float) -> list[float]:
    step = _nice_step((hi - lo) / _TICKS)
    first = math.ceil(lo / step - 1e-9)
    count = math.floor(hi / step + 1e-9) - first + 1
    return [round((first + i) * step, 10) for i in range(count)]


def _log_ticks(lo: float, hi: float, mantissas: Sequence[int]) -> list[float]:
    found = []
    for exponent in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in mantissas:
            value = m * 10.0 ** exponent
            if lo * 0.999 <= value <= hi * 1.001:
                found.append(value)
    return found


@dataclass(frozen=True)
class Series:
    """A named set of (x, y) points, drawn as a polyline, as markers, or both."""

    name: str
    """Legend text."""
    points: tuple[tuple[float, float], ...]
    colour: str
    role: str = "data"
    """What the series is (`trials`, `hull`, ...): the `data-role` of its group."""
    line: bool = True
    markers: bool = True
    line_width: float = 1.5
    step_end: float | None = None
    """Draw the line as steps: each y holds until the next x, the last one until this x."""
    dash: str = ""
    """SVG stroke-dasharray of the line, e.g. "6 4"; empty for a solid line."""
    marker: str = "circle"
    """circle, square, diamond or ring (a hollow circle)."""
    marker_size: float = 3.5
    """Radius (half the width) of a marker, px."""
    labels: tuple[str, ...] = ()
    """Optional text beside each marker, one per point."""
    legend: bool = True


@dataclass(frozen=True)
class Panel:
    """One plot: its axes and series."""

    x: Axis
    y: Axis
    series: tuple[Series, ...]
    height: int = 260
    """Height of the plot area, px."""


@dataclass(frozen=True)
class _Frame:
    """Pixel box of a panel's plot area, and the mapping from data to pixels."""

    panel: Panel
    left: float
    top: float
    width: float

    def px(self, x: float, y: float) -> tuple[float, float]:
        p = self.panel
        return (self.left + p.x.fraction(x) * self.width,
                self.top + (1 - p.y.fraction(y)) * p.height)


def figure(title: str, panels: Sequence[Panel], width: int = 760) -> str:
    """An SVG document (UTF-8) of `panels` stacked under `title`, `width` px wide."""
    plot_width = width - MARGIN_LEFT - MARGIN_RIGHT
    height = TITLE_HEIGHT + sum(MARGIN_TOP + p.height + MARGIN_BOTTOM for p in panels)
    out = ["<?xml version='1.0' encoding='UTF-8'?>",
           f"<svg xmlns='{SVG_NS}' width='{width}' height='{height}' "
           f"viewBox='0 0 {width} {height}' {FONT}>",
           f"<title>{esc(title)}</title>",
           f"<rect width='{width}' height='{height}' fill='#ffffff'/>",
           f"<text class='title' x='{num(width / 2)}' y='19' text-anchor='middle' "
           f"font-size='15' font-weight='bold'>{esc(title)}</text>"]
    top = TITLE_HEIGHT
    for panel in panels:
        frame = _Frame(panel, MARGIN_LEFT, top + MARGIN_TOP, plot_width)
        out.append("<g class='panel'>")
        out.extend(_axes(frame))
        for series in panel.series:
            out.extend(_series(frame, series))
        out.extend(_legend(frame))
        out.append("</g>")
        top += MARGIN_TOP + panel.height + MARGIN_BOTTOM
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _axes(frame: _Frame) -> list[str]:
    p, left, top = frame.panel, frame.left, frame.top
    bottom, right = top + p.height, left + frame.width
    out = ["<g class='axes' stroke='#999999'>",
           f"<rect x='{num(left)}' y='{num(top)}' width='{num(frame.width)}' "
           f"height='{p.height}' fill='none'/>"]
    for value in p.x.ticks():
        x = num(frame.px(value, p.y.lo)[0])
        out.append(f"<line class='grid' x1='{x}' y1='{num(top)}' x2='{x}' y2='{num(bottom)}' "
                   "stroke='#e4e4e4'/>")
        out.append(f"<text class='tick' x='{x}' y='{num(bottom + 15)}' text-anchor='middle' "
                   f"stroke='none' fill='#333333'>{esc(tick_label(value))}</text>")
    for value in p.y.ticks():
        y = num(frame.px(p.x.lo, value)[1])
        out.append(f"<line class='grid' x1='{num(left)}' y1='{y}' x2='{num(right)}' y2='{y}' "
                   "stroke='#e4e4e4'/>")
        out.append(f"<text class='tick' x='{num(left - 6)}' y='{y}' text-anchor='end' "
                   f"dominant-baseline='middle' stroke='none' fill='#333333'>"
                   f"{esc(tick_label(value))}</text>")
    x_label = p.x.label + (" (log scale)" if p.x.log else "")
    out.append(f"<text class='axis-label' x='{num(left + frame.width / 2)}' "
               f"y='{num(bottom + 34)}' text-anchor='middle' stroke='none' "
               f"fill='#000000'>{esc(x_label)}</text>")
    cy = num(top + p.height / 2)
    out.append(f"<text class='axis-label' x='16' y='{cy}' text-anchor='middle' stroke='none' "
               f"fill='#000000' transform='rotate(-90 16 {cy})'>{esc(p.y.label)}</text>")
    out.append("</g>")
    return out


def _series(frame: _Frame, series: Series) -> list[str]:
    pixels = [frame.px(x, y) for x, y in series.points]
    out = [f"<g class='series' data-role='{esc(series.role)}' data-name='{esc(series.name)}'>"]
    line = [frame.px(x, y) for x, y in _line_points(series)]
    if series.line and len(line) >= 2:
        dash = f" stroke-dasharray='{esc(series.dash)}'" if series.dash else ""
        coords = " ".join(f"{num(x)},{num(y)}" for x, y in line)
        out.append(f"<polyline class='line' points='{coords}' fill='none' "
                   f"stroke='{esc(series.colour)}' stroke-width='{num(series.line_width)}' "
                   f"stroke-linejoin='round'{dash}/>")
    if series.markers:
        out.extend(_marker(series.marker, x, y, series.marker_size, series.colour)
                   for x, y in pixels)
    for (x, y), text in zip(pixels, series.labels, strict=False):
        out.append(f"<text class='point-label' x='{num(x - series.marker_size - 3)}' "
                   f"y='{num(y - series.marker_size - 3)}' text-anchor='end' "
                   f"font-weight='bold' fill='{esc(series.colour)}'>{esc(text)}</text>")
    out.append("</g>")
    return out


def _line_points(series: Series) -> list[tuple[float, float]]:
    if series.step_end is None or not series.points:
        return list(series.points)
    ends = [x for x, _ in series.points[1:]] + [series.step_end]
    return [p for (x, y), end in zip(series.points, ends, strict=True) for p in ((x, y), (end, y))]


def _marker(shape: str, x: float, y: float, size: float, fill: str,
            css_class: str = "marker") -> str:
    """One point marker centred on (x, y)."""
    paint = f"class='{css_class}' fill='{esc(fill)}' stroke='#ffffff' stroke-width='1'"
    if shape == "ring":
        return (f"<circle class='{css_class}' cx='{num(x)}' cy='{num(y)}' r='{num(size)}' "
                f"fill='none' stroke='{esc(fill)}' stroke-width='2'/>")
    if shape == "square":
        return (f"<rect x='{num(x - size)}' y='{num(y - size)}' "
                f"width='{num(2 * size)}' height='{num(2 * size)}' {paint}/>")
    if shape == "diamond":
        corners = ((x, y - size), (x + size, y), (x, y + size), (x - size, y))
        coords = " ".join(f"{num(cx)},{num(cy)}" for cx, cy in corners)
        return f"<polygon points='{coords}' {paint}/>"
    if shape != "circle":
        raise ValueError(f"unknown marker shape {shape!r}: use circle, square, diamond or ring")
    return f"<circle cx='{num(x)}' cy='{num(y)}' r='{num(size)}' {paint}/>"


def _legend(frame: _Frame) -> list[str]:
    entries = [s for s in frame.panel.series if s.legend and s.points]
    left = frame.left + frame.width + 14
    out = ["<g class='legend'>"]
    for i, series in enumerate(entries):
        y = frame.top + 10 + 18 * i
        if series.line:
            dash = f" stroke-dasharray='{esc(series.dash)}'" if series.dash else ""
            out.append(f"<line x1='{num(left)}' y1='{num(y)}' x2='{num(left + 22)}' "
                       f"y2='{num(y)}' stroke='{esc(series.colour)}' "
                       f"stroke-width='{num(min(series.line_width, 4))}'{dash}/>")
        if series.markers:
            out.append(_marker(series.marker, left + 11, y, min(series.marker_size, 5),
                               series.colour, css_class="swatch"))
        out.append(f"<text x='{num(left + 28)}' y='{num(y)}' dominant-baseline='middle'>"
                   f"{esc(series.name)}</text>")
    out.append("</g>")
    return out
