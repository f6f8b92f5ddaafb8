"""Small bar charts as inline SVG, drawn on the server: no JavaScript library, no build step."""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT, BAR_GAP = 600, 160, 4


def bars(points: list[tuple[str, float]], label: str) -> str:
    """One bar per (label, value), scaled to the largest; each bar has a <title> with its value."""
    top = max((value for _, value in points), default=0.0) or 1.0
    slot = WIDTH / max(1, len(points))
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT + 20}" role="img" aria-label="{escape(label)}" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for index, (name, value) in enumerate(points):
        height = HEIGHT * value / top
        x = index * slot + BAR_GAP / 2
        parts.append(
            f'<rect x="{x:.1f}" y="{HEIGHT - height:.1f}" width="{max(1.0, slot - BAR_GAP):.1f}" '
            f'height="{height:.1f}"><title>{escape(name)}: {value:g}</title></rect>'
        )
        if len(points) <= 16 or index % max(1, len(points) // 8) == 0:
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT + 14}">{escape(name[-5:])}</text>')
    parts.append("</svg>")
    return "".join(parts)
