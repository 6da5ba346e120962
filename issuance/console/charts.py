"""Bar charts as inline SVG, drawn on the server (no script, no chart library)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH = 640
HEIGHT = 200
PAD = 28


def bar_chart(title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float],
                                                                        str]],
              *, dates: bool = True) -> str:
    """One group of bars per label; `series` is (name, values, colour). Date labels
    (YYYY-MM-DD) are shown as MM-DD."""
    top = max([v for _, values, _ in series for v in values] + [1.0])
    n = max(len(labels), 1)
    group = (WIDTH - 2 * PAD) / n
    bar = max(group / (len(series) + 1), 1.0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'viewBox="0 0 {WIDTH} {HEIGHT + 40}" width="{WIDTH}" height="{HEIGHT + 40}">',
             f"<title>{escape(title)}</title>",
             f'<line x1="{PAD}" y1="{HEIGHT}" x2="{WIDTH - PAD}" y2="{HEIGHT}" '
             'stroke="#888"/>',
             f'<text x="{PAD}" y="14" font-size="12">{escape(title)} (max {top:g})</text>']
    for i, label in enumerate(labels):
        x0 = PAD + i * group
        for j, (name, values, colour) in enumerate(series):
            value = values[i] if i < len(values) else 0
            h = (HEIGHT - 30) * (value / top)
            parts.append(f'<rect x="{x0 + j * bar:.1f}" y="{HEIGHT - h:.1f}" '
                         f'width="{bar * 0.9:.1f}" height="{h:.1f}" fill="{colour}">'
                         f"<title>{escape(name)} {escape(label)}: {value:g}</title></rect>")
        if n <= 16 or i % 2 == 0:
            parts.append(f'<text x="{x0:.1f}" y="{HEIGHT + 14}" font-size="9">'
                         f"{escape(label[5:] if dates else label)}</text>")
    for j, (name, _, colour) in enumerate(series):
        parts.append(f'<rect x="{PAD + j * 150}" y="{HEIGHT + 24}" width="10" height="10" '
                     f'fill="{colour}"/><text x="{PAD + j * 150 + 14}" y="{HEIGHT + 33}" '
                     f'font-size="11">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
