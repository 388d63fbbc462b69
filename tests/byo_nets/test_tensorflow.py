"""Keras on the TensorFlow backend (slow tier: `make test-slow` installs the tensorflow extra):
trained, exported by tf2onnx and checked like the other backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.byo_nets.conftest import train_on_backend

pytestmark = pytest.mark.slow


def test_the_tensorflow_backend_trains_and_exports_in_its_own_process(tmp_path: Path) -> None:
    recipe = train_on_backend("tensorflow", tmp_path)
    assert "tensorflow backend" in recipe["framework"] and recipe["kind"] == "keras"
    assert recipe["export"]["onnx"]["max_abs_difference"] <= 1e-5
    assert recipe["export"]["native"]["file"] == "model/model.keras"
