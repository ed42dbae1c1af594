"""The dashboards' server-rendered bar chart: axis labels a person can read."""

import re

from hospital_interop.charts import bar_chart

KEYS = (("done", "已接收", "#2e7d32"), ("failed", "失败", "#c62828"))


def axis_labels(svg: str) -> list[str]:
    return re.findall(r'text-anchor="end" fill="#6b7685">([^<]*)</text>', svg)


def rows(values):
    return [{"hour": i, "done": v, "failed": 0} for i, v in enumerate(values)]


def test_an_empty_chart_has_one_zero_on_its_axis_and_says_it_has_no_data():
    svg = bar_chart(rows([0] * 12), keys=KEYS, label_format=lambda r: f"{r['hour']}时")
    assert axis_labels(svg)[:2] == ["0", "1"] and "此时段暂无数据" in svg


def test_axis_labels_are_whole_numbers_each_shown_once():
    for peak, expected in ((1, ["0", "1"]), (5, ["0", "5"]), (8, ["0", "4", "8"])):
        svg = bar_chart(rows([peak, 0, 1]), keys=KEYS, label_format=lambda r: str(r["hour"]))
        assert axis_labels(svg)[: len(expected)] == expected, peak
        assert "此时段暂无数据" not in svg


def test_the_last_x_label_ends_inside_the_chart():
    # the 1-hour chart: 61 minute buckets, every fifth labelled, the last one at the right edge
    svg = bar_chart(rows([1] * 61), keys=KEYS, label_format=lambda r: f"16:{r['hour'] % 60:02d}", width=960)
    last = re.findall(r'<text x="([0-9.]+)" y="[0-9.]+" text-anchor="(middle|end)"', svg)[-1]
    assert last == ("958.0", "end")
