"""The examples in examples/ train and learn, at a small size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlwright.torch import TorchConfig, fit

ROOT = Path(__file__).resolve().parents[2]


def example(name: str, **changes: Any) -> TorchConfig:
    raw = yaml.safe_load((ROOT / "examples" / f"{name}.yaml").read_text())
    raw["tracker"] = "none"
    for section, values in changes.items():
        raw[section] = {**raw.get(section, {}), **values}
    return TorchConfig.from_mapping(raw)


def test_the_digits_cnn_learns_the_bundled_digits() -> None:
    result = fit(example("digits_cnn", train={"epochs": 4}), verbose=False)
    assert result.validated
    assert result.history[result.best_epoch - 1].metrics["accuracy"] > 0.9  # 10 classes


def test_the_gru_learns_the_adding_problem_with_clipped_gradients() -> None:
    config = example("sequence_gru", train={"epochs": 6}, data_params={"valid_rows": 500})
    assert config.train.clip_grad_norm == 1.0
    result = fit(config, verbose=False)
    best = result.history[result.best_epoch - 1].metrics
    assert best["mae"] < 0.2  # predicting the mean scores about 0.33
