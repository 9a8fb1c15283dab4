"""Small server-rendered SVG charts: bars and lines a person reads at a glance.

No JavaScript and no CDN: the page carries the chart as inline SVG (allowed by the
Content-Security-Policy, which forbids inline script and style attributes, not SVG
presentation attributes). Every chart has a <title> and a <desc> for screen readers, and the
numbers are in the table next to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Colour-blind-safe palette (Okabe and Ito), then greys.
PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#F0E442",
    "#000000",
    "#777777",
    "#AAAAAA",
)
WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 48


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    colour: str = ""


def _nice_max(value: float) -> float:
    """An axis maximum at or above `value` whose quarters are round whole numbers."""
    quarter = max(value, 1.0) / 4
    magnitude = 10.0 ** (len(str(int(quarter))) - 1) if quarter >= 1 else 1.0
    for step in (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if quarter <= step * magnitude and (step * magnitude).is_integer():
            return 4 * step * magnitude
    return 40.0 * magnitude


def _colours(series: Sequence[Series]) -> list[str]:
    return [s.colour or PALETTE[n % len(PALETTE)] for n, s in enumerate(series)]


def _frame(title: str, labels: Sequence[str], top: float, body: list[str]) -> Markup:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for n in range(5):
        value = top * n / 4
        y = TOP + plot_h - plot_h * n / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#d9dde5" stroke-width="1"/>'
        )
        shown = f"{value:g}" if value < 10 else f"{value:.0f}"
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#5b6475">{shown}</text>'
        )
    every = max(1, len(labels) // 10)
    step = plot_w / max(1, len(labels))
    for n, label in enumerate(labels):
        if n % every:
            continue
        x = LEFT + step * (n + 0.5)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11" '
            f'fill="#5b6475">{escape(label)}</text>'
        )
    parts.extend(body)
    return Markup("".join(parts) + "</svg>")  # noqa: S704 - numbers, or text through escape()


def _legend(series: Sequence[Series], colours: list[str]) -> list[str]:
    parts = []
    x = LEFT
    for s, colour in zip(series, colours, strict=True):
        parts.append(
            f'<rect x="{x}" y="{HEIGHT - 18}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{HEIGHT - 9}" font-size="11" fill="#1d2330">'
            f"{escape(s.name)}</text>"
        )
        x += 24 + 7 * len(s.name)
    return parts


def bar_chart(title: str, labels: Sequence[str], series: Sequence[Series]) -> Markup:
    """Grouped bars: one group per label, one bar per series."""
    colours = _colours(series)
    top = _nice_max(max((v for s in series for v in s.values), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    group = plot_w / max(1, len(labels))
    bar = group * 0.8 / max(1, len(series))
    body: list[str] = []
    for k, (s, colour) in enumerate(zip(series, colours, strict=True)):
        for n, value in enumerate(s.values):
            h = plot_h * value / top
            x = LEFT + group * n + group * 0.1 + bar * k
            body.append(
                f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{max(bar - 1, 1):.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(labels[n])} '
                f"{escape(s.name)}: {value:g}</title></rect>"
            )
    return _frame(title, labels, top, body + _legend(series, colours))


def line_chart(title: str, labels: Sequence[str], series: Sequence[Series]) -> Markup:
    """One line per series over the labels (days)."""
    colours = _colours(series)
    top = _nice_max(max((v for s in series for v in s.values), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(labels))
    body: list[str] = []
    for s, colour in zip(series, colours, strict=True):
        points = " ".join(
            f"{LEFT + step * (n + 0.5):.1f},{TOP + plot_h - plot_h * v / top:.1f}"
            for n, v in enumerate(s.values)
        )
        body.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2">'
            f"<title>{escape(s.name)}</title></polyline>"
        )
    return _frame(title, labels, top, body + _legend(series, colours))
