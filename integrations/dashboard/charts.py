"""Charts as server-rendered SVG: no chart library, no script, nothing fetched. Bars carry a
``<title>`` (the browser's tooltip) with their bucket and figures."""

from __future__ import annotations

from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from config.admin_tools import when

__all__ = ("bars_svg",)

WIDTH, HEIGHT = 720, 90


def _bar(x: float, y: float, width: float, height: float, css: str, tip: str) -> tuple:
    return (f"{x:.1f}", f"{y:.1f}", f"{width:.1f}", f"{height:.1f}", css, tip)


def bars_svg(
    starts: list[datetime], totals: list[int], failed: list[int] | None = None, *, label: str
) -> SafeString:
    """One bar per bucket (its height: ``totals``), the failed part drawn in red on top."""
    count = max(len(totals), 1)
    top = max(totals, default=0) or 1
    step = WIDTH / count
    failed = failed or [0] * len(totals)
    bars = []
    for index, (start, total, bad) in enumerate(zip(starts, totals, failed, strict=True)):
        if not total:
            continue
        height = HEIGHT * total / top
        bad_height = HEIGHT * bad / top
        x = index * step
        tip = f"{when(start)}: {total}" + (f", {bad} failed" if bad else "")
        bars.append(_bar(x, HEIGHT - height, step * 0.85, height - bad_height, "sy-bar-ok", tip))
        if bad:
            bars.append(_bar(x, HEIGHT - bad_height, step * 0.85, bad_height, "sy-bar-bad", tip))
    rects = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" class="{}"><title>{}</title></rect>',
        bars,
    )
    return format_html(
        '<svg class="sy-chart" viewBox="0 0 {} {}" preserveAspectRatio="none" role="img" '
        'aria-label="{}"><line x1="0" y1="{}" x2="{}" y2="{}" class="sy-axis"/>{}</svg>',
        WIDTH,
        HEIGHT,
        f"{label}, highest {top}",
        HEIGHT,
        WIDTH,
        HEIGHT,
        rects,
    )
