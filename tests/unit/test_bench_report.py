"""The benchmark's table (benchmarks/report.py, harness.ratio_figure): ratios per repeat, their median and spread,
and whether the target is met, without running anything."""

from __future__ import annotations

from benchmarks.harness import Series, ratio_figure
from benchmarks.report import render_markdown, render_text


def test_a_ratio_figure_takes_the_median_of_per_repeat_ratios_and_checks_its_target():
    figure = ratio_figure("batch", "s", Series([11.0, 12.0, 30.0]), Series([10.0, 10.0, 10.0]), 1.1)
    assert figure.ratio == 1.2 and figure.ratios.spread() == "1.10–3.00" and figure.met is False
    assert ratio_figure("x", "s", Series([1.0]), Series([2.0]), 1.1).met is True
    assert ratio_figure("x", "s", Series([1.0]), Series([2.0]), None).met is None


def test_the_table_has_one_row_per_figure_in_text_and_markdown():
    figures = [
        ratio_figure("batch", "s", Series([11.0, 9.0]), Series([10.0, 10.0]), 1.1, "8 jobs"),
        ratio_figure("memory", "MB", Series([500.0]), Series([400.0]), 1.2),
    ]
    text = render_text(figures).splitlines()
    assert text[0].split()[:2] == ["figure", "TrainEasy"] and len(text) == 6
    assert text[4:] == ["", "- batch: 8 jobs"]  # the notes say where the time went
    assert text[2].split() == ["batch", "10", "s", "10", "s", "1.00", "0.90–1.10", "(2)", "≤", "1.1", "yes"]
    md = render_markdown(figures, "2 cores", 90.0, "python -m benchmarks", "today")
    assert "| memory | 500 MB | 400 MB | 1.25 | 1.25 (1) | ≤ 1.2 | no |" in md
    assert "1.5 min wall time" in md and "Machine: 2 cores." in md and "- batch: 8 jobs" in md
