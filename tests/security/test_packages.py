"""A crafted package never runs code on any loading path; the server's reload takes registry
references only; registry loads leave no copies behind."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

import mlwright as mw
from mlwright.errors import MlwrightError
from mlwright.package.pyfunc import _load_pyfunc
from mlwright.package.store import load_any, load_package
from mlwright.serve.app import ServeSettings, create_app
from tests.conftest import CliResult, make_frame
from tests.security.packages import register, with_skops_payload


@pytest.fixture
def crafted(linear_package: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(a package whose skops file runs ``exec`` on load, the marker file its payload writes)"""
    marker = tmp_path / "pwned"
    return with_skops_payload(linear_package, tmp_path, marker), marker


def test_the_crafted_file_is_a_real_attack(crafted: tuple[Path, Path]) -> None:
    """Loaded the way the old code did (trusting every ``builtins.`` type), it runs."""
    import skops.io as sio

    package, marker = crafted
    path = package / "model" / "linear.skops"
    untrusted = sio.get_untrusted_types(file=path)
    assert "builtins.exec" in untrusted
    sio.load(path, trusted=untrusted)
    assert marker.exists()


def test_every_loading_path_refuses_a_skops_payload(
    crafted: tuple[Path, Path], tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    package, marker = crafted
    loaders: list[Callable[[], Any]] = [
        lambda: mw.load(package),
        lambda: load_any(package),
        lambda: load_package(package),
        lambda: _load_pyfunc(str(package)),
    ]
    for load in loaders:
        with pytest.raises(MlwrightError, match=r"builtins\.exec \(ConstructorFromReduceNode\)"):
            load()
    data = tmp_path / "rows.csv"
    make_frame(5).drop(columns="churned").to_csv(data, index=False)
    predicted = cli("predict", str(package), str(data), "--output", str(tmp_path / "out.csv"))
    assert predicted.code == 1
    assert "builtins.exec" in predicted.err
    assert not (tmp_path / "out.csv").exists()
    served = cli("serve", str(package), "--port", "1", "--store", str(tmp_path / "s.db"))
    assert served.code == 1
    assert "builtins.exec" in served.err
    assert not marker.exists()


def test_a_registry_version_with_a_payload_is_refused_by_load_and_by_reload(
    crafted: tuple[Path, Path], linear_package: Path
) -> None:
    package, marker = crafted
    good = register(linear_package, "sec-skops")
    bad = register(package, "sec-skops")
    with pytest.raises(MlwrightError, match=r"builtins\.exec"):
        mw.load(f"sec-skops/{bad}")
    app = create_app(load_package(linear_package), settings=ServeSettings(admin_token="t0ken"))
    with TestClient(app.state.asgi) as client:
        response = client.post(
            "/v1/admin/reload",
            json={"model": f"sec-skops/{bad}"},
            headers={"Authorization": "Bearer t0ken"},
        )
        assert response.status_code == 409
        assert "builtins.exec" in response.json()["reason"]
        rows = load_package(linear_package).golden["inputs"][:2]  # type: ignore[index]
        kept = client.post("/v1/predict", json={"records": rows})
        assert kept.status_code == 200  # the model it had keeps serving
        swapped = client.post(
            "/v1/admin/reload",
            json={"model": f"sec-skops/{good}"},
            headers={"Authorization": "Bearer t0ken"},
        )
        assert swapped.json() == {"status": "swapped", "version": good}
    assert not marker.exists()


def test_reload_never_loads_a_folder_named_like_a_reference(
    crafted: tuple[Path, Path],
    linear_package: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    package, marker = crafted
    monkeypatch.chdir(tmp_path)
    package.rename(tmp_path / "evil@x")  # in the server's working directory
    app = create_app(load_package(linear_package), settings=ServeSettings(admin_token="t0ken"))
    with TestClient(app.state.asgi) as client:
        response = client.post(
            "/v1/admin/reload", json={"model": "evil@x"}, headers={"Authorization": "Bearer t0ken"}
        )
    assert response.status_code == 409
    assert response.json()["status"] == "refused"
    assert "no registered model named 'evil'" in response.json()["reason"]
    assert not marker.exists()
    with pytest.raises(MlwrightError, match="only NAME@ALIAS or NAME/VERSION"):
        mw.load(str(tmp_path / "evil@x"), registry_only=True)


def test_registry_loads_reuse_one_verified_copy(
    linear_package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("MLWRIGHT_CACHE_DIR", str(cache))
    version = register(linear_package, "sec-cache")
    temp = Path(tempfile.gettempdir())
    before = {p.name for p in temp.iterdir() if p.name.startswith("mlwright-")}
    first = mw.load(f"sec-cache/{version}")
    second = mw.load("sec-cache/" + version)
    assert first.path == second.path
    assert {p.name for p in temp.iterdir() if p.name.startswith("mlwright-")} == before
    assert [p.name.rsplit("-", 1)[0] for p in (cache / "registry").iterdir()] == [
        f"sec-cache@{version}"
    ]
    rows = make_frame(5).drop(columns="churned")
    pd.testing.assert_frame_equal(first.predict(rows), load_package(linear_package).predict(rows))
    # a copy damaged in the cache is noticed by the checksums and fetched again
    model_file = next(Path(str(first.path)).glob("model/*.skops"))
    model_file.write_bytes(b"damaged")
    again = mw.load(f"sec-cache/{version}")
    pd.testing.assert_frame_equal(again.predict(rows), load_package(linear_package).predict(rows))


def test_registry_tags_never_become_paths(
    linear_package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry writer controls tags: a checksum tag that is not a SHA-256 (here one that
    would name a folder outside the cache) is refused before anything is downloaded."""
    from mlwright.track.mlflow import MANIFEST_TAG, _mlflow

    monkeypatch.setenv("MLWRIGHT_CACHE_DIR", str(tmp_path / "cache"))
    version = register(linear_package, "sec-tags")
    with _mlflow() as mlflow:
        mlflow.MlflowClient().set_model_version_tag(
            "sec-tags", version, MANIFEST_TAG, "../../../victim/" + "0" * 48
        )
    with pytest.raises(MlwrightError, match="is not a SHA-256"):
        mw.load(f"sec-tags/{version}")
    assert not (tmp_path / "cache").exists()


def test_a_package_cannot_point_outside_itself(linear_package: Path, tmp_path: Path) -> None:
    """Manifest entries are relative paths inside the package; links are refused."""
    import json

    from tests.security.packages import recompute_manifest

    linked = tmp_path / "linked"
    shutil.copytree(linear_package, linked)
    (linked / "schema.json").unlink()
    (linked / "schema.json").symlink_to(linear_package / "schema.json")
    with pytest.raises(MlwrightError, match=r"schema\.json is a symbolic link"):
        mw.load(linked)
    outside = tmp_path / "outside"
    shutil.copytree(linear_package, outside)
    recompute_manifest(outside)
    manifest = json.loads((outside / "mlwright.json").read_text())
    manifest["files"]["../secret.txt"] = "0" * 64
    (outside / "mlwright.json").write_text(json.dumps(manifest))
    with pytest.raises(MlwrightError, match=r"'\.\./secret\.txt' points outside the package"):
        mw.load(outside)


def test_other_skops_shapes_are_refused_never_a_crash(linear_package: Path, tmp_path: Path) -> None:
    """A function reference to os.system, and an allowed type built the wrong way (a str
    through ObjectNode, which skops would build with str.__new__) are refused by name."""
    from tests.security.packages import with_skops_node

    system = {"__class__": "system", "__module__": "os", "__loader__": "FunctionNode"}
    crafted = with_skops_node(linear_package, tmp_path / "a", system)
    with pytest.raises(MlwrightError, match=r"os\.system \(FunctionNode\)"):
        mw.load(crafted)
    odd = {"__class__": "str", "__module__": "builtins", "__loader__": "ObjectNode", "content": {}}
    crafted = with_skops_node(linear_package, tmp_path / "b", odd)
    with pytest.raises(MlwrightError, match=r"builtins\.str \(ObjectNode\)"):
        mw.load(crafted)


def test_mlmodel_must_name_mlwrights_loader_and_no_code(
    linear_package: Path, tmp_path: Path
) -> None:
    """mlflow.pyfunc.load_model imports what MLmodel names; MLmodel is outside the manifest."""
    import yaml

    crafted = tmp_path / "mlmodel"
    shutil.copytree(linear_package, crafted)
    mlmodel = yaml.safe_load((crafted / "MLmodel").read_text())
    mlmodel["flavors"]["python_function"]["loader_module"] = "evil"
    mlmodel["flavors"]["python_function"]["code"] = "code"
    (crafted / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    (crafted / "code").mkdir()
    (crafted / "code" / "evil.py").write_text("raise SystemExit('pwned')\n")
    with pytest.raises(MlwrightError) as refused:
        mw.load(crafted)
    for problem in ("code/evil.py is not in the manifest", "names the loader 'evil'"):
        assert problem in str(refused.value)
