"""`mlwright autopilot`: the continuous-training loop against a running server, by policy."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlwright.cli.options import FLOAT_METAVAR, POSITIVE, STORE_HELP, examples
from mlwright.cli.output import stderr_console

if TYPE_CHECKING:
    from mlwright.autopilot.loop import Autopilot, StepResult

AUTOPILOT_EXAMPLES = examples(
    "mlwright autopilot --policy churn-policy.yaml --server http://127.0.0.1:8000",
    "mlwright autopilot --policy churn-policy.yaml --server http://127.0.0.1:8000 --once",
    "mlwright autopilot -p policy.yaml --server http://10.0.0.5:8000 --store /srv/serve.db "
    "--interval 300 --json",
)


def autopilot_command(
    policy: Annotated[
        Path, typer.Option("--policy", "-p", help="The policy's YAML file (docs/autopilot.md).")
    ],
    server: Annotated[
        str, typer.Option(help="The server's URL; it must serve NAME@champion with an admin token.")
    ],
    store: Annotated[Path, typer.Option(help=STORE_HELP)] = Path("mlwright-serve.db"),
    once: Annotated[
        bool, typer.Option("--once", help="One step, then exit (cron, a CronJob, an Airflow task).")
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            parser=POSITIVE, metavar=FLOAT_METAVAR, help="Seconds between steps (without --once)."
        ),
    ] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per step.")] = False,
) -> None:
    """Run the continuous-training loop: watch drift and live metrics, retrain when a trigger
    fires, shadow, A/B-test, promote or reject, and roll back, as the policy says. Its state is
    in the serving store and the registry, so a restart (or the next --once) goes on where it
    was. The admin token comes from MLWRIGHT_ADMIN_TOKEN, as the server's does."""
    from mlwright.api import autopilot, read_policy
    from mlwright.cli.models import print_uri

    chosen = read_policy(policy)  # an invalid policy is refused before anything runs
    print_uri()
    loop = autopilot(chosen, server=server, store=store)
    _check_server(loop)
    err = stderr_console()
    err.print(
        f"autopilot for {chosen.model} against {server} (store {store})"
        + ("" if once else f", a step every {interval:g} s; Ctrl-C stops it"),
        highlight=False,
    )
    if once:
        _show(loop.step(), as_json)
        return
    _run(loop, interval, as_json)


def _check_server(loop: Autopilot) -> None:
    """The server serves the policy's model and follows its champion alias."""
    from mlwright.errors import ConfigError

    served = loop.server.models()
    names = [m.get("name") for m in served]
    if loop.model not in names:
        raise ConfigError(
            f"the server at {loop.server.url} serves {names}, not the policy's model "
            f"{loop.model!r}",
            fix=f"start it with `mlwright serve {loop.model}@champion --store ...`",
        )
    follows = next(m.get("follows") for m in served if m.get("name") == loop.model)
    if follows != f"{loop.model}@champion":
        raise ConfigError(
            f"the server serves {loop.model!r} from {follows or 'a package folder'}, not "
            f"{loop.model}@champion: a promotion could not reach it",
            fix=f"serve the registry alias: `mlwright serve {loop.model}@champion`",
        )


def _run(loop: Autopilot, interval: float, as_json: bool) -> None:
    from mlwright.cli.signals import stops_cleanly
    from mlwright.errors import MlwrightError

    err = stderr_console()
    try:
        with stops_cleanly():
            while True:
                try:
                    _show(loop.step(), as_json)
                except MlwrightError as exc:  # e.g. the server restarting: try again next step
                    err.print(f"[bold red]step failed:[/] {exc}", highlight=False)
                time.sleep(interval)
    except KeyboardInterrupt:
        err.print("autopilot stopped; the next start goes on from the store")


def _show(result: StepResult, as_json: bool) -> None:
    rollout = result.rollout
    if as_json:
        line: dict[str, Any] = {
            "ts": time.time(),
            "rollout": None if rollout is None else rollout.id,
            "phase": None if rollout is None else rollout.phase,
            "status": result.status,
            "decisions": [d.to_dict() for d in result.decisions],
        }
        sys.stdout.write(json.dumps(line, default=str) + "\n")
        sys.stdout.flush()
        return
    for d in result.decisions:
        when = time.strftime("%H:%M:%S", time.localtime(d.ts))
        typer.echo(f"{when} {d.rollout} {d.action}: {d.reason}")
    if not result.decisions:
        where = "" if rollout is None else f"{rollout.id} ({rollout.phase}): "
        typer.echo(f"{time.strftime('%H:%M:%S')} {where}{result.status}")
