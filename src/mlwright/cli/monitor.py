"""`mlwright monitor`: drift, live performance and the continuous-training loop's decisions from
a serving store."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlwright.cli.options import STORE_HELP, examples
from mlwright.cli.output import print_wide
from mlwright.monitor.settings import DriftSettings

if TYPE_CHECKING:
    from rich.console import Console

DEFAULTS = DriftSettings()  # Evidently's documented defaults (docs/monitoring.md)

MONITOR_EXAMPLES = examples(
    "mlwright monitor --since 6h",
    "mlwright monitor --model churn --last 5000 --html drift.html",
    "mlwright monitor --store /srv/mlwright-serve.db --json",
)


def monitor_command(
    model: Annotated[str | None, typer.Option(help="Only this model (its name as served).")] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Window start: 30m, 6h, 2d, 1w ago, or a date/time (UTC)."),
    ] = None,
    last: Annotated[
        int | None,
        typer.Option(min=1, help="Window: each version's latest N rows (whole minutes)."),
    ] = None,
    store: Annotated[Path, typer.Option(help=STORE_HELP)] = Path("mlwright-serve.db"),
    html: Annotated[
        Path | None,
        typer.Option(help="Also write the monitoring report: one self-contained HTML page."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    small_window: Annotated[
        int, typer.Option(help="Up to this many values: tests (KS, chi-square); above: distances.")
    ] = DEFAULTS.small_window,
    p_value: Annotated[
        float, typer.Option(help="A test flags drift below this p-value.")
    ] = DEFAULTS.p_value,
    wasserstein: Annotated[
        float, typer.Option(help="Normed Wasserstein distance that flags drift (numeric).")
    ] = DEFAULTS.wasserstein,
    jensen_shannon: Annotated[
        float, typer.Option(help="Jensen–Shannon distance that flags drift (categorical).")
    ] = DEFAULTS.jensen_shannon,
    dataset_share: Annotated[
        float, typer.Option(help="The dataset drifts when this share of features drift.")
    ] = DEFAULTS.dataset_share,
) -> None:
    """Drift of served traffic against each version's training reference, and live
    performance from feedback: per served version and variant, over a window; and what the
    continuous-training loop decided, and why."""
    from mlwright.experiment.analysis import json_safe
    from mlwright.monitor.overview import overview, parse_since

    if since is not None and last is not None:
        raise typer.BadParameter("give --since or --last, not both", param_hint="--last")
    if html is not None and html.suffix.lower() not in (".html", ".htm"):
        raise typer.BadParameter(
            f"{html} does not end in .html: name the report FILE.html", param_hint="--html"
        )
    settings = DriftSettings(small_window, p_value, wasserstein, jensen_shannon, dataset_share)
    result = overview(store, model=model, since=parse_since(since), last=last, settings=settings)
    if html is not None:
        from mlwright.api import write_monitoring_report

        write_monitoring_report(result, html)
    if as_json:
        sys.stdout.write(json.dumps(json_safe(result.to_dict()), indent=2) + "\n")
    else:
        _print(result)
    if html is not None:
        typer.echo(f"wrote the monitoring report to {html}", err=as_json)


def _print(result: object) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from mlwright.monitor.overview import Overview
    from mlwright.monitor.page import label, number, when
    from mlwright.monitor.performance import LIVE_METRICS

    assert isinstance(result, Overview)
    console = Console()
    if not result.monitored and not result.performance:
        console.print(f"no monitored traffic in {result.store} for this window", markup=False)
        _print_decisions(console, result.decisions)
        return
    table = Table(title="drift against the training reference", title_justify="left")
    for column in ("version (variant)", "rows", "window", "drifting", "dataset", "predictions"):
        table.add_column(column)
    for m in result.monitored:
        d = m.drift
        prediction = d["prediction"]
        top = sorted(d["drifted_features"], key=lambda f: -(d["features"][f].get("statistic") or 0))
        table.add_row(
            Text(label(m)),
            f"{d['rows']:,}",
            f"{when(m.first)} – {when(m.last)}",
            Text(f"{len(top)}/{len(d['features'])}" + (f": {', '.join(top[:5])}" if top else "")),
            "[bold red]drift[/]" if d["dataset_drift"] else "ok",
            "—"
            if prediction is None
            else ("[bold red]drift[/]" if prediction["drifted"] else "ok"),
        )
    print_wide(console, table)
    if result.performance:
        metrics = [k for k in LIVE_METRICS if any(k in p["metrics"] for p in result.performance)]
        perf = Table(title="live performance from feedback", title_justify="left")
        for column in ("version (variant)", "feedback", *metrics):
            perf.add_column(column)
        for p in result.performance:
            perf.add_row(
                Text(label(p)),
                f"{p['feedback']:,}",
                *(number(p["metrics"].get(k)) for k in metrics),
            )
        print_wide(console, perf)
    _print_decisions(console, result.decisions)


def _print_decisions(console: Console, decisions: list[dict[str, Any]], shown: int = 10) -> None:
    """The continuous-training loop's latest ``shown`` decisions, latest last (all of them are
    in ``--json`` and ``--html``)."""
    from rich.table import Table
    from rich.text import Text

    from mlwright.monitor.page import when

    if not decisions:
        return
    latest = decisions[-shown:]
    more = f" (the latest {len(latest)} of {len(decisions)})" if decisions[:-shown] else ""
    table = Table(title=f"decisions of the continuous-training loop{more}", title_justify="left")
    for column in ("when", "model", "action", "version", "reason"):
        table.add_column(column)
    for d in latest:
        table.add_row(
            when(d["ts"]),
            Text(d["model"]),
            Text(d["action"]),
            Text(d["version"] or "—"),
            Text(d["reason"]),
        )
    print_wide(console, table)
