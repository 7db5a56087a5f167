"""relief_hub's inline SVG charts: text at the page's size whatever the width, long labels
wrapped or cut with the whole label as a tooltip."""

from __future__ import annotations

import re
from decimal import Decimal

from examples.relief_hub.charts import bar_chart, split_bar, wrap_label


def test_charts_are_not_scaled_so_their_text_stays_the_body_size() -> None:
    for chart in (
        bar_chart([("Blanket", 180)], testid="chart-stock", title="Stock"),
        split_bar([("On hand", Decimal(20))], testid="chart-RS-004", title="RS-004"),
    ):
        svg = re.search(r"<svg [^>]*>", str(chart))
        assert svg is not None
        assert "viewBox" not in svg.group(0)  # a viewBox scales text with the width
        assert 'width="100%"' in svg.group(0)
        assert "font-size" not in str(chart)  # the text inherits the page's size


def test_a_long_label_wraps_onto_two_lines_then_ends_in_an_ellipsis() -> None:
    assert wrap_label("Blanket") == ["Blanket"]
    assert wrap_label("Bottled water (6 x 1.5 l)") == ["Bottled water (6 x", "1.5 l)"]
    cut = wrap_label("A comfort kit for a child you choose, with a card and a drawing")
    assert len(cut) == 2 and cut[-1].endswith("…")
    chinese = wrap_label("以您的名义送出一份安慰包给孩子们的爱心礼物")
    assert len(chinese) == 2 and chinese[-1].endswith("…")
    assert all(len(line) <= 9 for line in chinese)  # a CJK character takes two half-ems


def test_every_bar_label_keeps_the_whole_text_as_a_tooltip() -> None:
    label = "A comfort kit for a child you choose, with a card and a drawing"
    chart = str(bar_chart([(label, 3)], testid="chart-x", title="Rewards"))
    assert f"<title>{label}</title>" in chart
    assert re.findall(r"<tspan[^>]*>([^<]*)</tspan>", chart) == wrap_label(label)
