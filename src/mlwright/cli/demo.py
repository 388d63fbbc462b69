"""`mlwright demo`: the whole workflow on a dataset that ships with mlwright."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlwright.cli.models import tabular_model
from mlwright.cli.options import examples
from mlwright.cli.output import stderr_console

DEMO_EXAMPLES = examples("mlwright demo", "mlwright demo --workdir /tmp/demo --time-budget 60")


def demo_command(
    workdir: Annotated[Path, typer.Option(help="Folder for the demo's files.")] = Path(
        "mlwright-demo"
    ),
    time_budget: Annotated[float, typer.Option(help="Seconds for training.")] = 30.0,
) -> None:
    """Run mlwright end to end on a real dataset that ships with it (Mroz, labour supply):
    profile, train, predict, report."""
    from rich.console import Console

    from mlwright.api import train_with_options
    from mlwright.cli.train_view import TrainPrinter
    from mlwright.config import TrainOptions
    from mlwright.data.bundled import DATASETS, load_dataset
    from mlwright.data.profile import profile

    out = Console()
    err = stderr_console()
    spec = DATASETS["Mroz"]
    workdir.mkdir(parents=True, exist_ok=True)
    csv_path = workdir / "mroz.csv"
    load_dataset(spec.name).to_csv(csv_path, index=False)
    out.print(f"[bold]mlwright demo[/] — {spec.about}; target {spec.target!r}")
    out.print(f"data written to {csv_path}\n")

    out.rule("1. understand the problem")
    out.print(f"$ mlwright profile {csv_path} --target {spec.target}\n")
    with err.status("profiling…"):
        problem = profile(str(csv_path), spec.target)
    out.print(problem)

    out.rule("2. design, train, validate, package")
    package = workdir / "models" / "mroz"
    out.print(
        f"$ mlwright train {csv_path} --target {spec.target} --time-budget {time_budget:g} "
        f"--seed 0 --output {package}\n"
    )
    options = TrainOptions(target=spec.target, time_budget=time_budget, seed=0, out=str(package))
    printer = TrainPrinter(out)
    try:
        model = train_with_options(str(csv_path), options, on_event=printer)
    finally:
        printer.close()
    printer.summary(out, model)

    out.rule("3. predict")
    predictions = workdir / "predictions.csv"
    out.print(f"$ mlwright predict {package} {csv_path} --output {predictions}\n")
    from mlwright.api import load
    from mlwright.cli.files import write_table

    predicted = load(package).predict(str(csv_path))
    write_table(predicted, predictions)
    out.print(predicted.head(5))

    out.rule("4. report")
    report = workdir / "report.html"
    out.print(f"$ mlwright report {package} --output {report}\n")
    from mlwright.api import write_report

    write_report(tabular_model(load(package), "the demo"), report, package_path=str(package))
    out.print(
        f"the ML Solution report is in {report} (and in the package: {package}/report/)",
        soft_wrap=True,
    )
    out.print(f"\nthe model package is in {package}; predictions are in {predictions}")
    if model.registry:
        name = model.registry["name"]
        out.print(
            f"runs and versions: `mlwright models show {name}`, `mlwright ui`", soft_wrap=True
        )
