"""The SVG charts of the statistics page: the right shapes, round axes, text escaped."""

from __future__ import annotations

import re

import pytest

from bot.dashboard.charts import Series, _nice_max, bar_chart, line_chart


def test_bars_one_per_value_and_series_with_names_escaped() -> None:
    svg = bar_chart(
        "Per <day>",
        ["1 Nov", "<b>2 Nov</b>"],
        [Series("in", [3, 0]), Series("out & about", [1, 4])],
    )
    assert svg.count("<rect x=") == 4 + 2  # the bars, then the two legend swatches
    assert "<title>Per &lt;day&gt;</title>" in svg
    assert "&lt;b&gt;2 Nov&lt;/b&gt;" in svg and "<b>" not in svg
    assert "out &amp; about" in svg
    # The tallest bar (4) reaches the top of an axis that ends at 4.
    heights = [float(h) for h in re.findall(r'height="([\d.]+)" fill=', svg)]
    assert max(heights) == pytest.approx(240 - 12 - 48)
    assert "style=" not in svg and "<script" not in svg


def test_lines_one_polyline_per_series() -> None:
    svg = line_chart("Claims", ["a", "b", "c"], [Series("x", [1, 2, 3]), Series("y", [0, 0, 0])])
    assert svg.count("<polyline") == 2


@pytest.mark.parametrize(
    ("largest", "axis"), [(0, 4), (3, 4), (5, 8), (23, 24), (71, 80), (100, 100), (999, 1000)]
)
def test_the_axis_ends_at_a_round_number_with_whole_quarters(largest: int, axis: int) -> None:
    assert _nice_max(largest) == axis
