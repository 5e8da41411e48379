"""The statistics snapshots over time, drawn on the server as inline SVG (the admin's
statistics page): no JavaScript, nothing fetched, and only SVG presentation attributes
(never a ``style`` attribute or element), so the site's Content-Security-Policy holds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from reports.models import StatsSnapshot

WIDTH, HEIGHT = 340, 150
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 28, 26


def _count(n: float) -> str:
    return f"{n:,.0f}".replace(",", " ")


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


@dataclass(frozen=True)
class Series:
    title: str
    value: Callable[[StatsSnapshot], float]
    label: Callable[[float], str] = _count
    colour: str = "#417690"


SERIES: tuple[Series, ...] = (
    Series("Units", lambda s: s.units),
    Series("Users (active)", lambda s: s.users_total),
    Series("Researchers", lambda s: s.users_researcher),
    Series("Active projects", lambda s: s.projects_active, colour="#5b8c3a"),
    Series("Deliveries released", lambda s: s.deliveries_released, colour="#5b8c3a"),
    Series("Stored", lambda s: s.bytes_stored, _bytes, "#b35c00"),
    Series("Uploaded in the month", lambda s: s.bytes_uploaded, _bytes, "#b35c00"),
    Series("Downloaded in the month", lambda s: s.bytes_downloaded, _bytes, "#b35c00"),
)


def _panel(series: Series, snapshots: Sequence[StatsSnapshot]) -> SafeString:
    values = [float(series.value(s)) for s in snapshots]
    months = [f"{s.month:%Y-%m}" for s in snapshots]
    top = max(values) if values and max(values) > 0 else 1.0
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = inner_w / (len(values) - 1) if len(values) > 1 else 0.0

    def xy(i: int, v: float) -> tuple[float, float]:
        x = LEFT + (i * step if len(values) > 1 else inner_w / 2)
        return round(x, 1), round(TOP + inner_h - v / top * inner_h, 1)

    points = [xy(i, v) for i, v in enumerate(values)]
    line = " ".join(f"{x},{y}" for x, y in points)
    dots = format_html_join(
        "", '<circle class="point" cx="{}" cy="{}" r="3" fill="{}">'
            "<title>{}: {}</title></circle>",
        ((x, y, series.colour, m, series.label(v))
         for (x, y), m, v in zip(points, months, values, strict=True)))
    x_labels = format_html(
        '<text x="{}" y="{}" font-size="10" fill="#666">{}</text>'
        '<text x="{}" y="{}" font-size="10" fill="#666" text-anchor="end">{}</text>',
        LEFT, HEIGHT - 8, months[0] if months else "", WIDTH - RIGHT, HEIGHT - 8,
        months[-1] if months else "")
    latest = series.label(values[-1]) if values else "–"
    return format_html(
        '<svg class="dds-chart" xmlns="http://www.w3.org/2000/svg" width="{w}" '
        'height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{title}">'
        "<title>{title}</title>"
        '<text x="4" y="16" font-size="13" font-weight="bold" fill="#333">{title}</text>'
        '<text x="{right}" y="16" font-size="12" fill="#333" text-anchor="end">'
        "latest {latest}</text>"
        '<text x="{lx}" y="{ty}" font-size="10" fill="#666" text-anchor="end">{max}</text>'
        '<text x="{lx}" y="{by}" font-size="10" fill="#666" text-anchor="end">0</text>'
        '<line x1="{left}" y1="{by}" x2="{right}" y2="{by}" stroke="#ccc"/>'
        '<line x1="{left}" y1="{top}" x2="{left}" y2="{by}" stroke="#ccc"/>'
        '<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>'
        "{dots}{x_labels}</svg>",
        w=WIDTH, h=HEIGHT, title=series.title, latest=latest, right=WIDTH - RIGHT,
        lx=LEFT - 4, ty=TOP + 4, max=series.label(top), by=TOP + inner_h, left=LEFT,
        top=TOP, line=line, colour=series.colour, dots=dots, x_labels=x_labels)


def stats_chart(snapshots: Sequence[StatsSnapshot]) -> SafeString:
    """One small chart per figure, the months on the x axis (oldest first)."""
    if not snapshots:
        return SafeString("")
    return format_html_join("", "{}", ((_panel(s, snapshots),) for s in SERIES))
