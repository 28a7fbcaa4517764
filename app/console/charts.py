"""Charts drawn on the server as inline SVG: no JavaScript chart library, nothing to download,
readable without scripts (each bar carries a <title> tooltip with its figure)."""

from __future__ import annotations

from datetime import date

from markupsafe import Markup, escape

PALETTE = ("#1f6feb", "#2e7d32", "#b26a00", "#8e24aa", "#00838f", "#c62828", "#5d4037", "#546e7a")
WIDTH, HEIGHT = 960, 180
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 10, 24


def color(index: int) -> str:
    """The colour of the ``index``-th series (legends use the same)."""
    return PALETTE[index % len(PALETTE)]


def stacked_bars(days: list[date], series: dict[str, list[int]], *, label: str, testid: str) -> Markup:
    """One bar per day, stacked by series, with a y-axis top figure and a few day labels."""
    n = max(len(days), 1)
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    top = _nice_max(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n
    bar_w = max(slot * 0.7, 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}" '
        f'data-testid="{escape(testid)}" data-max="{top}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
        _axis(top, plot_w, plot_h),
    ]
    for i, day in enumerate(days):
        x = LEFT + i * slot + (slot - bar_w) / 2
        y = TOP + plot_h
        for s, (name, values) in enumerate(series.items()):
            value = values[i]
            if not value:
                continue
            h = plot_h * value / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{color(s)}" '
                f'data-day="{day.isoformat()}" data-series="{escape(name)}" data-value="{value}">'
                f"<title>{day.isoformat()} · {escape(name)}: {value}</title></rect>"
            )
    parts.append(_day_labels(days, slot))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text above is escaped


def legend(series: dict[str, list[int]]) -> Markup:
    """The series' colours and totals, as HTML under a chart."""
    items = "".join(
        f'<span data-testid="legend-item" data-series="{escape(name)}"><span class="swatch" '
        f'style="background:{color(i)}"></span>{escape(name)} ({sum(values)})</span>'
        for i, (name, values) in enumerate(series.items())
    )
    return Markup(f'<div class="legend">{items}</div>')  # noqa: S704 - names escaped above


def _nice_max(value: int) -> int:
    """A round top for the y axis (1, 2, 5 × 10ⁿ) at or above ``value``."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _axis(top: int, plot_w: float, plot_h: float) -> str:
    base = TOP + plot_h
    return (
        f'<line x1="{LEFT}" y1="{base}" x2="{LEFT + plot_w}" y2="{base}" stroke="#bcccdc"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT + plot_w}" y2="{TOP}" stroke="#eef2f6"/>'
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{top}</text>'
        f'<text x="{LEFT - 4}" y="{base}" text-anchor="end">0</text>'
    )


def _day_labels(days: list[date], slot: float) -> str:
    # About eight labels whatever the range, always including the last day.
    every = max(len(days) // 8, 1)
    labels = []
    for i, day in enumerate(days):
        if i % every and i != len(days) - 1:
            continue
        x = LEFT + i * slot + slot / 2
        labels.append(f'<text x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="middle">{day.strftime("%m-%d")}</text>')
    return "".join(labels)
