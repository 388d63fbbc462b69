"""Start serving: the model (and an experiment's challengers) loaded and verified once, the
spec every worker or replica builds its app from (:func:`mlwright.serve.app.app_from_spec`),
then uvicorn's worker processes here or replicas on Ray Serve."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlwright.config import ServeOptions
from mlwright.errors import ConfigError
from mlwright.package.model import Model

if TYPE_CHECKING:
    from rich.console import Console

    from mlwright.package.tensor import TensorModel

Loader = Callable[[str], "Model | TensorModel"]  # a folder or registry reference, verified


def launch(options: ServeOptions, load: Loader, console: Console | None = None) -> None:
    """Serve ``options.model`` until stopped; ``load`` resolves and verifies a package (the
    CLI's prints where the registry is). What the server will do is printed to ``console``."""
    from rich.console import Console

    out = console or Console(stderr=True)
    # idle OpenMP threads sleep instead of spinning on the cores the requests need; read when
    # the OpenMP runtime loads, so before the model (and its libraries) is loaded
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OMP_NUM_THREADS", str(options.threads))
    loaded = load(options.model)
    given = options.tabular_only
    if not isinstance(loaded, Model) and given:
        raise ConfigError(
            f"{', '.join(given)}: experiments and alias following serve tabular models; "
            f"{loaded.name!r} is a PyTorch model",
            fix="serve it without these options",
        )
    if options.admin_token:  # the workers and replicas read it from the environment
        os.environ["MLWRIGHT_ADMIN_TOKEN"] = options.admin_token
    spec = serve_spec(options, loaded)
    experiment = experiment_spec(options, load)
    if experiment is not None:
        spec["MLWRIGHT_SERVE_EXPERIMENT"] = json.dumps(experiment)
    _announce(out, options, loaded, experiment)
    if options.backend == "ray-serve":
        from mlwright.distributed.serve import serve_on_ray
        from mlwright.serve.app import app_from_spec

        serve_on_ray(
            spec,
            app_factory=app_from_spec,
            host=options.host,
            port=options.port,
            replicas=options.replicas or 1,
            replica_cpus=0.5 if options.replica_cpus is None else options.replica_cpus,
            address=options.ray_address,
            threads=options.threads,
            console=out,
        )
        return
    _run_uvicorn(options, spec)


def serve_spec(options: ServeOptions, loaded: Model | TensorModel) -> dict[str, str]:
    """What each worker (or replica) builds its app from: the package, its registry name,
    version and reference, and the settings of a server process."""
    name, version = _registered(loaded)
    assert loaded.path is not None
    settings = options.settings.model_dump(mode="json", exclude={"admin_token", "freeze_gc"})
    return {
        "MLWRIGHT_SERVE_PACKAGE": str(loaded.path),
        "MLWRIGHT_SERVE_NAME": name or loaded.name,
        "MLWRIGHT_SERVE_VERSION": version or "",
        "MLWRIGHT_SERVE_REF": options.model if name else "",
        "MLWRIGHT_SERVE_SETTINGS": json.dumps(settings),
    }


def experiment_spec(options: ServeOptions, load: Loader) -> dict[str, Any] | None:
    """The experiment to serve, with each challenger's package resolved here (registry
    references are downloaded and verified once, before the workers start); None without."""
    from mlwright.experiment.config import ExperimentConfig

    if options.experiment_config is not None:
        config = ExperimentConfig.load(options.experiment_config)
    elif options.challenger or options.shadow:
        other = options.challenger or options.shadow
        assert other is not None
        config = ExperimentConfig.for_challenger(
            options.model, other, split=options.split, shadow=options.shadow is not None
        )
    else:
        return None
    challengers = {}
    for variant in config.variants[1:]:
        loaded = load(variant.model)
        challengers[variant.name] = {
            "path": str(loaded.path),
            "version": _registered(loaded)[1],
        }
    return {"config": config.model_dump(), "challengers": challengers}


def _registered(loaded: Model | TensorModel) -> tuple[str | None, str | None]:
    """The registry name and version a package was loaded under (None, None for a folder)."""
    registry = loaded.registry or {}
    return registry.get("name"), registry.get("version")


def _announce(
    out: Console,
    options: ServeOptions,
    loaded: Model | TensorModel,
    experiment: dict[str, Any] | None,
) -> None:
    name, version = _registered(loaded)
    on_ray = options.backend == "ray-serve"
    where = (
        f"{options.replicas or 1} replica(s) on Ray Serve"
        if on_ray
        else f"{options.workers} worker(s)"
    )
    address = f"http://{options.host}:{options.port}"
    out.print(
        f"serving {name or loaded.name}{'/' + version if version else ''} from {loaded.path} on "
        f"{address} ({where}); docs at /docs",
        highlight=False,
        soft_wrap=True,
    )
    if experiment is not None:
        exp = experiment["config"]
        shares = ", ".join(
            f"{v['name']} {v['model']} {v['weight'] or 0:.0%}" for v in exp["variants"][1:]
        )
        out.print(
            f"experiment {exp['id']}: {shares} of the traffic; results at "
            f"{address}/v1/experiments/{exp['id']}",
            highlight=False,
            soft_wrap=True,
        )


def _run_uvicorn(options: ServeOptions, spec: dict[str, str]) -> None:
    import uvicorn

    os.environ.update(spec)
    if "MLWRIGHT_SERVE_EXPERIMENT" not in spec:
        os.environ.pop("MLWRIGHT_SERVE_EXPERIMENT", None)
    if options.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mlwright-metrics-")
    uvicorn.run(
        "mlwright.serve.app:app_from_env",
        factory=True,
        host=options.host,
        port=options.port,
        workers=options.workers,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
