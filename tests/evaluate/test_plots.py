"""The report's plots."""

from __future__ import annotations

import warnings

from mlwright.evaluate.plots import _figure, _png


def test_a_plot_too_crowded_for_its_layout_is_drawn_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as under pytest: a warning would fail the report
        with _figure(1.0, 0.6) as fig:
            ax = fig.add_subplot()
            labels = [f"a long ensemble member name {i}" for i in range(8)]
            ax.set_xticks(range(8), labels=labels, rotation=45)
            ax.set_ylabel("a long axis label " * 3)
            assert _png(fig).startswith(b"\x89PNG")
