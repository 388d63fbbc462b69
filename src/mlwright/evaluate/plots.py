"""PNG plots for the ML Solution report and the monitoring report, drawn headless
(matplotlib's Agg backend).

Each function takes the JSON summaries of :mod:`mlwright.evaluate.diagnostics` (or the recipe,
or the monitoring counts) and returns PNG bytes, so plots can be embedded as data URIs or
written beside a Markdown file.
"""

from __future__ import annotations

import io
import itertools
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from typing import Any

import numpy as np

WIDTH, HEIGHT, DPI = 6.0, 4.0, 100
COLOURS = ("#1f5f8b", "#d1495b", "#2e933c", "#edae49", "#66456d", "#00798c", "#8d6a9f")


@contextmanager
def _figure(width: float = WIDTH, height: float = HEIGHT) -> Iterator[Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    yield fig


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # a plot with many labels (an ensemble of eight members) may not fit the constrained
        # layout: matplotlib then draws it as laid out and says so, which is no one's error
        warnings.filterwarnings("ignore", message="constrained_layout not applied")
        fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def confusion_png(diag: dict[str, Any], title: str) -> bytes:
    matrix = np.asarray(diag["confusion"], dtype=float)
    names = diag["classes"]
    k = len(names)
    size = min(9.0, 3.0 + 0.45 * k)
    with _figure(size + 1.0, size) as fig:
        ax = fig.add_subplot()
        rows = matrix.sum(axis=1, keepdims=True)
        share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
        image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        fig.colorbar(image, ax=ax, label="share of the true class")
        ax.set_xticks(range(k), labels=names, rotation=45 if k > 4 else 0, ha="right")
        ax.set_yticks(range(k), labels=names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if k <= 15:
            for i in range(k):
                for j in range(k):
                    colour = "white" if share[i, j] > 0.6 else "black"
                    ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", color=colour)
        ax.set_title(title)
        return _png(fig)


def roc_png(diag: dict[str, Any], title: str) -> bytes:
    with _figure() as fig:
        ax = fig.add_subplot()
        for i, curve in enumerate(diag["curves"][: len(COLOURS)]):
            roc = curve["roc"]
            ax.plot(
                roc["fpr"],
                roc["tpr"],
                color=COLOURS[i],
                label=f"{curve['class']} (AUC {roc['auc']:.3f})",
            )
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(title)
        ax.legend(loc="lower right", fontsize="small")
        return _png(fig)


def pr_png(diag: dict[str, Any], title: str) -> bytes:
    with _figure() as fig:
        ax = fig.add_subplot()
        for i, curve in enumerate(diag["curves"][: len(COLOURS)]):
            pr = curve["pr"]
            ax.plot(pr["recall"], pr["precision"], color=COLOURS[i], label=str(curve["class"]))
            ax.axhline(pr["base_rate"], color=COLOURS[i], linestyle=":", linewidth=0.8)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_ylim(0, 1.02)
        ax.set_title(title)
        ax.legend(loc="lower left", fontsize="small")
        return _png(fig)


def calibration_png(diag: dict[str, Any], title: str) -> bytes:
    cal = diag["calibration"]
    with _figure() as fig:
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
        ax.plot(cal["predicted"], cal["observed"], marker="o", color=COLOURS[0], label="model")
        ax.set_xlabel(f"mean predicted probability ({cal['of']})")
        ax.set_ylabel("observed frequency")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"{title} (Brier {cal['brier']:.4f})")
        ax.legend(loc="upper left", fontsize="small")
        return _png(fig)


def residuals_png(diag: dict[str, Any], title: str) -> bytes:
    res = diag["residuals"]
    predicted = np.asarray(res["predicted"])
    actual = np.asarray(res["actual"])
    residual = actual - predicted
    with _figure(9.0, 3.6) as fig:
        left, middle, right = fig.subplots(1, 3)
        left.scatter(predicted, actual, s=6, alpha=0.5, color=COLOURS[0])
        lo, hi = (
            float(min(predicted.min(), actual.min())),
            float(max(predicted.max(), actual.max())),
        )
        left.plot([lo, hi], [lo, hi], color="grey", linestyle=":")
        left.set_xlabel("predicted")
        left.set_ylabel("actual")
        middle.scatter(predicted, residual, s=6, alpha=0.5, color=COLOURS[1])
        middle.axhline(0, color="grey", linestyle=":")
        middle.set_xlabel("predicted")
        middle.set_ylabel("residual (actual − predicted)")
        right.hist(residual, bins=40, color=COLOURS[2])
        right.set_xlabel("residual")
        right.set_ylabel("rows")
        fig.suptitle(title)
        return _png(fig)


def importance_png(importance: dict[str, Any], title: str, top: int = 20) -> bytes:
    entries = importance["columns"][:top]
    key = "mean_abs" if importance["method"] == "tree_shap" else "mean"
    names = [e["column"] for e in entries][::-1]
    values = [e[key] for e in entries][::-1]
    errors = None if key == "mean_abs" else [e["std"] for e in entries][::-1]
    with _figure(WIDTH, max(2.5, 0.3 * len(entries) + 1.2)) as fig:
        ax = fig.add_subplot()
        ax.barh(names, values, xerr=errors, color=COLOURS[0])
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set_xlabel(
            "mean |SHAP value|"
            if key == "mean_abs"
            else f"drop in {importance['metric']} when shuffled"
        )
        ax.set_title(title)
        return _png(fig)


def learning_curve_png(curves: dict[str, list[list[float]]], title: str) -> bytes:
    """``curves``: series name → [[epoch, value], ...]."""
    with _figure() as fig:
        ax = fig.add_subplot()
        for i, (name, points) in enumerate(sorted(curves.items())):
            xy = np.asarray(points, dtype=float)
            ax.plot(xy[:, 0], xy[:, 1], color=COLOURS[i % len(COLOURS)], label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("value")
        ax.set_title(title)
        ax.legend(fontsize="small")
        return _png(fig)


def tradeoff_png(points: list[dict[str, Any]], metric: str, title: str) -> bytes:
    """Candidates' cross-validated score against single-row predict time."""
    usable = [p for p in points if p.get("cv") is not None and p.get("predict_ms") is not None]
    with _figure() as fig:
        ax = fig.add_subplot()
        for p in usable:
            colour = COLOURS[1] if p.get("chosen") else COLOURS[0]
            ax.scatter(p["predict_ms"], p["cv"], color=colour, s=40 if p.get("chosen") else 20)
            ax.annotate(
                p["label"],
                (p["predict_ms"], p["cv"]),
                fontsize=7,
                xytext=(4, 2),
                textcoords="offset points",
            )
        ax.set_xscale("log")
        ax.set_xlabel("single-row predict time (ms, log scale)")
        ax.set_ylabel(f"cross-validated {metric}")
        ax.set_title(title)
        return _png(fig)


# --- monitoring -----------------------------------------------------------------------------------


def _dates(stamps: list[float]) -> list[Any]:
    from datetime import datetime

    return [datetime.fromtimestamp(t, tz=UTC) for t in stamps]


def _time_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.set_xlabel("time (UTC)")


def cdf_png(
    values: np.ndarray, reference: np.ndarray, current: np.ndarray, title: str, xlabel: str
) -> bytes:
    """Reference and current cumulative distributions at the reference sketch's values."""
    with _figure(WIDTH, 3.4) as fig:
        ax = fig.add_subplot()
        ax.step(values, reference, where="post", color=COLOURS[0], label="training reference")
        ax.step(values, current, where="post", color=COLOURS[1], label="served")
        gap = int(np.argmax(np.abs(current - reference))) if len(values) else 0
        if len(values):
            ax.vlines(
                values[gap],
                min(reference[gap], current[gap]),
                max(reference[gap], current[gap]),
                color="black",
                linestyles="dotted",
                label="largest gap",
            )
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("share of rows ≤ value")
        ax.set_title(title)
        ax.legend(fontsize="small", loc="lower right")
        return _png(fig)


def shares_png(
    levels: list[str], reference: list[float], current: list[float], title: str
) -> bytes:
    """Each level's share in the reference and in served traffic (horizontal bars)."""
    k = len(levels)
    with _figure(WIDTH, min(8.0, 1.4 + 0.32 * k)) as fig:
        ax = fig.add_subplot()
        y = np.arange(k)
        ax.barh(y - 0.2, reference, height=0.4, color=COLOURS[0], label="training reference")
        ax.barh(y + 0.2, current, height=0.4, color=COLOURS[1], label="served")
        ax.set_yticks(y, labels=[str(v)[:30] for v in levels])
        ax.invert_yaxis()
        ax.set_xlabel("share of rows")
        ax.set_title(title)
        ax.legend(fontsize="small", loc="lower right")
        return _png(fig)


def drift_timeline_png(points: list[dict[str, Any]], threshold: float, title: str) -> bytes:
    """Share of drifting features per step of the window, with the rows of each step."""
    stamps = _dates([p["start"] for p in points])
    with _figure(WIDTH + 1.5, 3.4) as fig:
        ax = fig.add_subplot()
        rows = ax.twinx()
        rows.bar(stamps, [p["rows"] for p in points], color="#d9d9d9", width=_bar_width(points))
        rows.set_ylabel("rows")
        ax.set_zorder(rows.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.plot(stamps, [p["drift_share"] for p in points], marker="o", color=COLOURS[1])
        ax.axhline(threshold, color="black", linestyle="dotted", label="dataset drift threshold")
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("share of features drifting")
        _time_axis(ax)
        ax.set_title(title)
        ax.legend(fontsize="small", loc="upper left")
        return _png(fig)


def _bar_width(points: list[dict[str, Any]]) -> float:
    """A bar width in days (matplotlib's date unit): 80% of the step."""
    if len(points) < 2:
        return 0.8 / 24 / 60
    step = min(float(b["start"] - a["start"]) for a, b in itertools.pairwise(points))
    return 0.8 * step / 86400


def live_metric_png(series: dict[str, list[tuple[float, float]]], metric: str, title: str) -> bytes:
    """``series``: version label → [(step start, value), ...]."""
    with _figure(WIDTH + 1.5, 3.4) as fig:
        ax = fig.add_subplot()
        for i, (name, points) in enumerate(series.items()):
            ax.plot(
                _dates([t for t, _ in points]),
                [v for _, v in points],
                marker="o",
                color=COLOURS[i % len(COLOURS)],
                label=name,
            )
        ax.set_ylabel(metric)
        _time_axis(ax)
        ax.set_title(title)
        ax.legend(fontsize="small")
        return _png(fig)
