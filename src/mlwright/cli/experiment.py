"""`mlwright experiment status | stop | promote`: experiments between model versions (A/B
splits, shadows, canaries). `mlwright ab` is the earlier name of the group, kept hidden."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mlwright.cli.options import STORE_HELP, examples
from mlwright.cli.output import print_wide

experiment_app = typer.Typer(
    help="Experiments run by `mlwright serve` (A/B, shadow, canary): results, stop, promote.",
    no_args_is_help=True,
    epilog=examples("mlwright experiment status", "mlwright experiment promote churn-ab"),
)

StoreOption = Annotated[Path, typer.Option(help=STORE_HELP)]


def _find(store: Path, experiment: str | None) -> dict[str, Any]:
    from mlwright.errors import ConfigError
    from mlwright.experiment.state import stored_experiments

    known = stored_experiments(store)
    if experiment is None:
        running = [e for e in known if e["status"] == "running"] or known
        if len(running) != 1:
            raise ConfigError(
                f"{len(running)} experiments in {store}: "
                + (", ".join(e["id"] for e in running) or "none"),
                fix="name the experiment",
            )
        return running[0]
    found = next((e for e in known if e["id"] == experiment), None)
    if found is None:
        raise ConfigError(
            f"no experiment {experiment!r} in {store}",
            fix="known: " + (", ".join(e["id"] for e in known) or "none"),
        )
    return found


def _from_server(url: str, experiment: str | None) -> dict[str, Any]:
    import urllib.error
    import urllib.request

    from mlwright.errors import MlwrightError

    base = url.rstrip("/")
    try:
        if experiment is None:
            with urllib.request.urlopen(f"{base}/v1/experiments", timeout=10) as response:
                ids = [e["id"] for e in json.loads(response.read())["experiments"]]
            if len(ids) != 1:
                raise MlwrightError(f"the server runs {len(ids)} experiments", fix="name one")
            experiment = ids[0]
        with urllib.request.urlopen(f"{base}/v1/experiments/{experiment}", timeout=30) as resp:
            result: dict[str, Any] = json.loads(resp.read())
            return result
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")[:300]
        raise MlwrightError(f"{base} answered {exc.code}: {body}", fix="check the id") from None
    except urllib.error.URLError as exc:
        raise MlwrightError(
            f"cannot reach {base}: {exc.reason}", fix="check --server, or read --store"
        ) from None


@experiment_app.command(
    "status",
    epilog=examples(
        "mlwright experiment status",
        "mlwright experiment status churn-ab --store /srv/mlwright-serve.db --json",
        "mlwright experiment status --server http://127.0.0.1:8000",
    ),
)
def experiment_status(
    experiment: Annotated[str | None, typer.Argument(help="Experiment id.")] = None,
    server: Annotated[str | None, typer.Option(help="A running server's URL.")] = None,
    store: StoreOption = Path("mlwright-serve.db"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per variant: requests and, once feedback arrives, each metric's difference with the
    always-valid test, the sample-ratio check and a verdict."""
    if server is not None:
        result = _from_server(server, experiment)
    else:
        from mlwright.experiment.analysis import analyze

        found = _find(store, experiment)
        config = found["config"]
        step = found["step"] if config.canary is not None else None
        result = {
            "id": found["id"],
            "status": found["status"],
            "reason": found["reason"],
            "analysis": analyze(store, config, config.weights(step), since=found["started"]),
        }
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    _print(result)


def _print(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console()
    reason = f" ({result['reason']})" if result.get("reason") else ""
    out.print(f"experiment {result['id']}: {result['status']}{reason}", highlight=False)
    analysis = result.get("analysis") or {}
    requests = analysis.get("requests") or {}
    weights = analysis.get("weights") or {}
    out.print(
        "requests: "
        + ", ".join(f"{k} {v:,} (weight {weights.get(k, 0):.0%})" for k, v in requests.items()),
        highlight=False,
    )
    srm = analysis.get("sample_ratio") or {}
    if srm.get("mismatch"):
        out.print(f"[bold red]sample ratio mismatch[/] (p = {srm['p_value']:.2g})")
    table = Table(title_justify="left")
    for column in (
        "metric",
        "variant",
        "n",
        "mean",
        "champion",
        "difference",
        "always-valid CI",
        "p (sequential)",
        "p (fixed)",
    ):
        table.add_column(column)
    verdicts = []
    for c in analysis.get("comparisons") or []:
        low, high = c.get("cs_low"), c.get("cs_high")
        interval = "—" if low is None or high is None else f"[{low:+.4g}, {high:+.4g}]"
        table.add_row(
            c["metric"],
            c["challenger"],
            f"{c['treatment']['n']:,} / {c['control']['n']:,}",
            _num(c["treatment"]["mean"]),
            _num(c["control"]["mean"]),
            _num(c["difference"], signed=True),
            interval,
            _num(c["sequential_p"]),
            _num(c["p_value"]),
        )
        verdicts.append(f"{c['challenger']}, {c['metric']}: {c['verdict']}")
    if verdicts:
        print_wide(out, table)
        for line in verdicts:
            out.print(f"- {line}", highlight=False, soft_wrap=True)
    else:
        out.print("no feedback yet: POST outcomes to /v1/feedback", highlight=False)


def _num(value: Any, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


@experiment_app.command("stop", epilog=examples("mlwright experiment stop churn-ab"))
def experiment_stop(
    ctx: typer.Context,
    experiment: Annotated[str, typer.Argument(help="Experiment id.")],
    store: StoreOption = Path("mlwright-serve.db"),
) -> None:
    """Send all traffic to the champion (every worker picks it up within a second)."""
    from mlwright.store.experiments import set_status

    found = _find(store, experiment)
    # the command as it was typed: `mlwright experiment stop`, or `mlwright ab stop`
    group = ctx.parent.info_name if ctx.parent is not None else "experiment"
    set_status(store, found["id"], f"stopped: stopped by `mlwright {group} stop`")
    typer.echo(f"stopped {found['id']}: all traffic goes to the champion")


@experiment_app.command(
    "promote",
    epilog=examples(
        "mlwright experiment promote churn-ab",
        "mlwright experiment promote churn-abc --variant c --alias champion",
    ),
)
def experiment_promote(
    experiment: Annotated[str, typer.Argument(help="Experiment id.")],
    variant: Annotated[
        str | None, typer.Option(help="Which challenger (default: the only one).")
    ] = None,
    alias: Annotated[str, typer.Option(help="The registry alias to move.")] = "champion",
    store: StoreOption = Path("mlwright-serve.db"),
) -> None:
    """Point the registry alias at the challenger's version and end the experiment."""
    from mlwright.api import alias_version, parse_reference, promote
    from mlwright.cli.models import print_uri
    from mlwright.errors import ConfigError
    from mlwright.store.experiments import set_status

    found = _find(store, experiment)
    challengers = found["config"].variants[1:]
    chosen = [v for v in challengers if variant is None or v.name == variant]
    if len(chosen) != 1:
        raise ConfigError(
            f"choose one challenger of {[v.name for v in challengers]}", fix="pass --variant"
        )
    parsed = parse_reference(chosen[0].model)
    if parsed is None:
        raise ConfigError(
            f"challenger {chosen[0].name!r} is a package folder ({chosen[0].model}), not a "
            "registered version",
            fix="run the experiment on registered versions (NAME/VERSION) to promote one, or "
            "promote it with `mlwright models promote`",
        )
    print_uri()
    name, ref_alias, version = parsed
    if version is None:
        assert ref_alias is not None
        version = alias_version(name, ref_alias)
    moved = promote(name, version, alias)
    set_status(store, found["id"], f"stopped: promoted {name}/{version} to @{alias}")
    typer.echo(
        f"{name}@{alias} → version {version} (was {moved['previous']}); "
        f"experiment {found['id']} ended"
    )
