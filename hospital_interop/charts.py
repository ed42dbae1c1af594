"""Server-rendered SVG charts: no JavaScript library, works on every hospital workstation browser."""

from django.utils.html import escape
from django.utils.safestring import mark_safe


def bar_chart(
    series: list[dict],
    *,
    keys: tuple[tuple[str, str, str], ...],
    label_format,
    width: int = 960,
    height: int = 180,
    title: str = "",
) -> str:
    """Stacked bars. ``keys`` = ((field, Chinese label, colour), …); ``label_format(row)`` labels the x axis."""
    pad_l, pad_b, pad_t = 40, 22, 14
    n = max(len(series), 1)
    total_peak = max((sum(row[k] for k, _, _ in keys) for row in series), default=0)
    peak = max(total_peak, 1)
    bar_w = (width - pad_l) / n
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="11" font-family="sans-serif">'
    ]
    plot_h = height - pad_b - pad_t
    # grid lines at 0, half and the peak, each labelled once with a whole number (a peak of 1 has
    # no half line: "1, 0, 0" would read as nonsense); an empty chart says so
    ticks = sorted({0, peak, *((peak / 2,) if peak >= 2 and peak % 2 == 0 else ())})
    for value in ticks:
        y = pad_t + plot_h * (1 - value / peak)
        parts.append(f'<line x1="{pad_l}" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e7ee"/>')
        parts.append(
            f'<text x="{pad_l - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#6b7685">{value:g}</text>'
        )
    if not total_peak:
        parts.append(
            f'<text x="{(pad_l + width) / 2:.1f}" y="{pad_t + plot_h / 2:.1f}" text-anchor="middle" '
            f'fill="#6b7685" font-size="13">此时段暂无数据</text>'
        )
    every = max(1, n // 12)
    for i, row in enumerate(series):
        x = pad_l + i * bar_w
        base = pad_t + plot_h
        tip = []
        for field, label, colour in keys:
            h = plot_h * row[field] / peak
            if h > 0:
                base -= h
                parts.append(
                    f'<rect x="{x + 1:.1f}" y="{base:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}" fill="{colour}"/>'
                )
            tip.append(f"{label} {row[field]}")
        parts.append(
            f'<rect x="{x:.1f}" y="{pad_t}" width="{bar_w:.1f}" height="{plot_h}" fill="transparent">'
            f"<title>{escape(label_format(row))}：{escape('，'.join(tip))}</title></rect>"
        )
        if i % every == 0:
            # the last labels end at the right edge instead of being cut by it
            text, centre = label_format(row), x + bar_w / 2
            half = sum(11 if ord(c) > 255 else 6.2 for c in text) / 2  # at font-size 11
            anchor, at = ("end", width - 2) if centre + half > width else ("middle", centre)
            parts.append(
                f'<text x="{at:.1f}" y="{height - 6}" text-anchor="{anchor}" fill="#6b7685">'
                f"{escape(text)}</text>"
            )
    legend_x = pad_l
    for _, label, colour in keys:
        parts.append(
            f'<rect x="{legend_x}" y="0" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="9" fill="#1f2733">{escape(label)}</text>'
        )
        legend_x += 24 + 12 * len(label)
    parts.append("</svg>")
    return mark_safe("".join(parts))
