"""The server is built from routers over one served-model interface: the tabular and the
PyTorch server share the same handlers, which read the server's state through ``Depends``;
``ServeOptions`` refuses options that do not go together before anything loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

import mlwright as mw
from mlwright.config import ServeOptions, ServeSettings
from mlwright.errors import ConfigError
from mlwright.package.store import load_package
from mlwright.serve.app import COMMON as COMMON_ROUTERS
from mlwright.serve.app import create_app
from mlwright.serve.served import ServerState, server_state
from tests.conftest import make_frame, tiny_tensor_model

COMMON = {
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/v1/models"),
    ("POST", "/v1/predict"),
    ("POST", "/invocations"),
    ("POST", "/v1/feedback"),
}


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("routers") / "churn"
    mw.train(
        make_frame(200), target="churned", max_trials=1, families=("linear",), out=str(path),
        tracker="none",
    )  # fmt: skip
    return path


def tensor_app(tmp_path: Path) -> Any:
    from mlwright.serve.tensor_app import create_tensor_app

    settings = ServeSettings(store=str(tmp_path / "t.db"), gate=False)  # no golden examples
    return create_tensor_app(tiny_tensor_model(), settings=settings)


def test_the_shared_routes_come_from_the_routers() -> None:
    shared = {
        (method, route.path)
        for router in COMMON_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert shared == COMMON


def test_both_servers_answer_the_shared_routes(package: Path, tmp_path: Path) -> None:
    tabular = create_app(load_package(package), settings=ServeSettings(store=None))
    for app in (tabular, tensor_app(tmp_path)):
        with TestClient(app.state.asgi) as client:
            assert client.get("/ready").json()["status"] == "ready"
            [entry] = client.get("/v1/models").json()["models"]
            assert entry["ready"] is True and entry["variant"] == "champion"
            assert "mlwright_requests_total" in client.get("/metrics").text
            spec = client.get("/openapi.json").json()
            for path in ("/v1/predict", "/v1/feedback"):
                assert spec["paths"][path]["post"]["requestBody"]["required"] is True
            tabular_only = client.get("/v1/experiments").status_code
            assert tabular_only == (200 if app is tabular else 404)


def returning(state: ServerState) -> Any:
    return lambda: state


def test_both_servers_read_their_state_through_depends(package: Path, tmp_path: Path) -> None:
    class Failing:  # a served model that never passed its gate
        name, task, version = "planted", "binary", "7"

        def status(self) -> tuple[bool, str | None]:
            return False, "planted for the test"

    tabular = create_app(load_package(package), settings=ServeSettings(store=None))
    for app in (tabular, tensor_app(tmp_path)):
        real: ServerState = app.state.server
        planted = ServerState(Failing(), real.settings, real.metrics)  # type: ignore[arg-type]
        app.dependency_overrides[server_state] = returning(planted)
        with TestClient(app) as client:
            answer = client.get("/ready")
        assert answer.status_code == 503 and answer.json()["reason"] == "planted for the test"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"replicas": 2}, "--replicas does not apply to --backend uvicorn"),
        ({"backend": "ray-serve", "workers": 2}, "--workers does not apply to --backend ray"),
        ({"backend": "kubernetes"}, "unknown --backend 'kubernetes'"),
        ({"challenger": "a", "shadow": "b"}, "give one of --challenger, --shadow"),
        ({"port": 70_000}, "port: Input should be less than or equal to 65535"),
        ({"max_rows": 0}, "max_rows"),
    ],
)
def test_serve_options_refuse_what_does_not_go_together(
    given: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        ServeOptions.from_mapping({"model": "churn@champion", **given}, source="serve options")


def test_serve_options_carry_the_settings_each_server_process_needs() -> None:
    options = ServeOptions(model="churn@champion", max_rows=5, threads=2, store="s.db")
    assert options.settings == ServeSettings(max_rows=5, threads=2, store="s.db")
    assert options.tabular_only == []
    assert ServeOptions(model="m", poll_seconds=5, shadow="x").tabular_only == [
        "--shadow",
        "--poll-seconds",
    ]


def test_admin_reload_finds_the_champion_whatever_the_experiment_names_it(package: Path) -> None:
    from mlwright.experiment.config import ExperimentConfig

    config = ExperimentConfig.model_validate(
        {
            "id": "named",
            "variants": [
                {"name": "control", "model": str(package)},
                {"name": "treatment", "model": str(package), "weight": 0.5},
            ],
        }
    )
    model = load_package(package)
    app = create_app(
        model,
        settings=ServeSettings(store=None, admin_token="t0ken"),
        experiment=config,
        challengers={"treatment": (load_package(package), None)},
    )
    with TestClient(app.state.asgi) as client:
        answer = client.post("/v1/admin/reload", headers={"Authorization": "Bearer t0ken"})
    # a folder-served champion follows no alias: a 409 saying so, never a 500
    assert answer.status_code == 409, answer.text
    assert answer.json()["errors"][0]["reason"] == "the server follows no registry alias"


def test_serve_settings_take_a_path_for_the_store(tmp_path: Path) -> None:
    assert ServeSettings(store=tmp_path / "s.db").store == str(tmp_path / "s.db")
