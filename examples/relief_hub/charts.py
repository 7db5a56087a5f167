"""Server-rendered inline SVG charts: no JavaScript, no CDN, readable without colour."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from decimal import Decimal

from markupsafe import Markup, escape

COLOURS = ("#0f6b62", "#e0a526", "#5b7fbf", "#b5523b", "#6d9c4a", "#8a5aa8")


#: Room for a label line, counted in half-ems: a CJK character takes 2, anything else 1.
LABEL_LINE = 18
LABEL_LINES = 2
LINE_PX = 20  # the text is the page's body size (16 px): a line of it with some air


def _number(value: Decimal | int) -> str:
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    return str(value)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _cut(text: str, room: int) -> tuple[str, str]:
    """The longest start of ``text`` that fits ``room``, and the rest."""
    used = 0
    for i, char in enumerate(text):
        used += _width(char)
        if used > room:
            return text[:i], text[i:]
    return text, ""


def wrap_label(label: str, *, line: int = LABEL_LINE, lines: int = LABEL_LINES) -> list[str]:
    """``label`` in at most ``lines`` lines of ``line`` half-ems, broken at spaces where it
    can; what does not fit ends in an ellipsis (the chart keeps the whole label as a tooltip)."""
    found: list[str] = []
    rest = " ".join(label.split())
    while rest and len(found) < lines:
        head, tail = _cut(rest, line)
        if tail and " " in head and not tail.startswith(" "):
            head, tail = head.rsplit(" ", 1)[0], rest[len(head.rsplit(" ", 1)[0]) :]
        found.append(head.strip())
        rest = tail.strip()
    if rest:
        last, _ = _cut(found[-1], line - 1)
        found[-1] = last.rstrip() + "…"
    return found or [""]


def _svg_open(testid: str, title: str, height: int) -> str:
    # No viewBox: the drawing is as wide as its box and its text is the page's body text,
    # whatever the width; bars are drawn in percentages of the width.
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'data-testid="{escape(testid)}" width="100%" height="{height}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )


def bar_chart(
    rows: Sequence[tuple[str, Decimal | int]], *, testid: str, title: str, colon: str = ": "
) -> Markup:
    """Horizontal bars, one per ``(label, value)``, each with its value written at its end.

    Labels take the left 38 % (wrapped onto two lines, then cut with an ellipsis, the whole
    label as a tooltip); bars take at most 44 % after them, so the value always fits.
    """
    label_end, bar_start, bar_room = 38, 40, 44
    wrapped = [wrap_label(label) for label, _ in rows]
    heights = [max(28, LINE_PX * len(lines) + 8) for lines in wrapped]
    top = max((float(v) for _, v in rows), default=0.0) or 1.0
    clip = f"{testid}-labels"
    parts = [
        _svg_open(testid, title, 34 + sum(heights)),
        f'<defs><clipPath id="{escape(clip)}"><rect x="0" y="0" width="{label_end}%" '
        f'height="100%"/></clipPath></defs>',
        f'<text x="0" y="20" font-weight="bold">{escape(title)}</text>',
    ]
    y = 34
    for i, ((label, value), lines, row_h) in enumerate(zip(rows, wrapped, heights, strict=True)):
        share = bar_room * float(value) / top if float(value) > 0 else 0.0
        colour = COLOURS[i % len(COLOURS)]
        first = y + (row_h - LINE_PX * len(lines)) / 2 + 15
        spans = "".join(
            f'<tspan x="{label_end}%" dx="-6" y="{first + LINE_PX * j:.0f}">{escape(text)}</tspan>'
            for j, text in enumerate(lines)
        )
        parts.append(
            f'<g clip-path="url(#{escape(clip)})"><text text-anchor="end">'
            f"<title>{escape(label)}</title>{spans}</text></g>"
            f'<rect x="{bar_start}%" y="{y + (row_h - 20) / 2:.0f}" width="{share:.2f}%" '
            f'height="20" fill="{colour}"><title>{escape(label)}{colon}{escape(_number(value))}'
            f"</title></rect>"
            f'<text x="{bar_start + share:.2f}%" dx="6" y="{y + row_h / 2 + 5:.0f}">'
            f"{escape(_number(value))}</text>"
        )
        y += row_h
    parts.append("</svg>")
    return Markup("".join(parts))


def split_bar(
    parts: Sequence[tuple[str, Decimal | int]], *, testid: str, title: str, colon: str = ": "
) -> Markup:
    """One bar split into parts (received = distributed + on hand + ...), with a legend;
    ``colon`` follows each label (": " in English, "：" in Chinese)."""
    total = sum(float(v) for _, v in parts if float(v) > 0) or 1.0
    svg = [_svg_open(testid, title, 36 + 26 * len(parts))]
    x = 0.0
    for i, (label, value) in enumerate(parts):
        share = 100 * max(0.0, float(value)) / total
        colour = COLOURS[i % len(COLOURS)]
        if share > 0:
            svg.append(
                f'<rect x="{x:.2f}%" y="0" width="{share:.2f}%" height="24" fill="{colour}">'
                f"<title>{escape(label)}{colon}{escape(_number(value))}</title></rect>"
            )
        x += share
        y = 36 + 26 * i
        svg.append(
            f'<rect x="0" y="{y}" width="14" height="14" fill="{colour}"/>'
            f'<text x="22" y="{y + 13}">{escape(label)}{colon}{escape(_number(value))}</text>'
        )
    svg.append("</svg>")
    return Markup("".join(svg))


def qr_svg(text: str, label: str, *, scale: int = 4) -> Markup:
    """``text`` as an inline SVG QR code (segno, the library the volunteer module uses), an
    image named ``label`` for screen readers."""
    import io

    import segno

    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=scale, xmldecl=False, svgns=True)
    svg = out.getvalue().decode("utf-8")
    named = f'<svg role="img" aria-label="{escape(label)}" '
    return Markup(svg.replace("<svg ", named, 1))
