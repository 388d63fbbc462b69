"""The bring-your-own-model trainer: exact resume, clipping, validation, clear failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from mlwright.errors import ConfigError
from mlwright.torch import TorchConfig, fit
from mlwright.torch.loop import TorchTrainingError

HERE = "tests.byo_torch.test_loop"


def make_mlp(params: dict[str, Any]) -> nn.Module:
    return nn.Sequential(
        nn.Linear(8, params.get("hidden", 16)),
        nn.ReLU(),
        nn.Dropout(params.get("dropout", 0.2)),  # draws from torch's generator every step
        nn.Linear(params.get("hidden", 16), params.get("out", 3)),
    )


def make_data(params: dict[str, Any]) -> Any:
    g = torch.Generator().manual_seed(params.get("seed", 0))
    x = torch.randn(params.get("rows", 240), 8, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()  # 3 classes
    return TensorDataset(x, y)


class GRUNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(8, 8, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x: Any) -> Any:
        out, _ = self.rnn(x.unsqueeze(1))
        return self.head(out[:, -1])


def config(**train: Any) -> TorchConfig:
    return TorchConfig.from_mapping(
        {
            "name": "toy",
            "model": f"{HERE}:make_mlp",
            "data": f"{HERE}:make_data",
            "metrics": ["accuracy"],
            "tracker": "none",
            "train": {"epochs": 4, "batch_size": 32, "lr": 0.01, "patience": None, **train},
        }
    )


def weights(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v.clone() for k, v in state.items()}


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_an_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path: Path) -> None:
    whole = fit(config(), checkpoint_dir=tmp_path / "whole", verbose=False)

    def interrupt(epoch: Any) -> None:
        if epoch.epoch == 2:
            raise KeyboardInterrupt  # after epoch 2's checkpoint was written

    with pytest.raises(KeyboardInterrupt):
        fit(config(), checkpoint_dir=tmp_path / "cut", on_epoch=interrupt, verbose=False)
    resumed = fit(config(), checkpoint_dir=tmp_path / "cut", verbose=False)
    assert resumed.resumed_from == 2
    assert [e.epoch for e in resumed.history] == [1, 2, 3, 4]
    assert_same(weights(resumed.model.state_dict()), weights(whole.model.state_dict()))
    last = {
        name: torch.load(folder / "last.pt", weights_only=True)["model"]
        for name, folder in (("whole", tmp_path / "whole"), ("cut", tmp_path / "cut"))
    }
    assert_same(last["cut"], last["whole"])
    assert [e.train_loss for e in resumed.history] == [e.train_loss for e in whole.history]
    again = fit(config(), checkpoint_dir=tmp_path / "cut", verbose=False)  # finished: no epochs
    assert again.resumed_from == 4 and again.steps == whole.steps


def test_seeded_runs_repeat_and_another_seed_differs() -> None:
    a, b = (fit(config(), verbose=False) for _ in range(2))
    assert_same(weights(a.model.state_dict()), weights(b.model.state_dict()))
    c = fit(config(seed=1), verbose=False)
    assert not torch.equal(a.model.state_dict()["0.weight"], c.model.state_dict()["0.weight"])


def test_gradients_are_clipped_before_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []
    real = torch.optim.AdamW

    class Watched(real):  # type: ignore[misc, valid-type]
        def step(self, *args: Any, **kwargs: Any) -> Any:
            grads = [p.grad for group in self.param_groups for p in group["params"]]
            seen.append(float(torch.norm(torch.stack([g.norm() for g in grads if g is not None]))))
            return super().step(*args, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", Watched)
    result = fit(config(clip_grad_norm=0.05, lr=0.1), verbose=False)
    assert seen and max(seen) <= 0.05 + 1e-6  # what the optimizer saw was clipped
    assert max(e.grad_norm for e in result.history) > 0.05  # and there was something to clip


def test_recurrent_layers_need_clipping() -> None:
    with pytest.raises(ConfigError, match=r"clipping is off.*GRU at 'rnn'"):
        fit(config(clip_grad_norm=None), model_factory=lambda p: GRUNet(), verbose=False)
    result = fit(config(epochs=1), model_factory=lambda p: GRUNet(), verbose=False)
    assert result.history[0].val_loss is not None


def test_training_without_validation_is_refused_unless_allowed() -> None:
    train = make_data({})
    with pytest.raises(ConfigError, match="there is no validation data"):
        fit(config(), data=(train, None), verbose=False)
    result = fit(config(allow_no_validation=True, epochs=2), data=(train, None), verbose=False)
    assert not result.validated
    assert result.history[-1].val_loss is None
    assert "none (train.allow_no_validation)" in result.notes[0]


def test_one_dataset_is_split_by_the_seed() -> None:
    result = fit(config(epochs=1, validation_share=0.25), verbose=False)
    assert result.validated
    assert result.notes == ["validation: 60 of 240 items held out at random (seed 0)"]


def test_a_factory_that_raises_is_named() -> None:
    def broken(params: dict[str, Any]) -> nn.Module:
        raise ValueError("hidden must be positive")

    with pytest.raises(TorchTrainingError, match=r"factory .*make_mlp' raised ValueError: hidden"):
        fit(config(), model_factory=broken, verbose=False)


def test_an_output_the_loss_cannot_take_is_explained() -> None:
    with pytest.raises(TorchTrainingError, match=r"output of shape \(32, 2\) with targets"):
        fit(config(), model_factory=lambda p: make_mlp({"out": 2}), verbose=False)


def test_one_output_per_example_meets_one_target_value_by_value() -> None:
    """(n, 1) outputs against (n,) targets: compared value by value, not broadcast to (n, n)
    (torch warns and trains on the wrong differences; warnings are errors here)."""
    x = torch.randn(240, 8, generator=torch.Generator().manual_seed(0))
    data = TensorDataset(x, 2 * x[:, 0] - x[:, 1])  # targets of shape (n,)
    regression = config(epochs=30, lr=0.03).model_copy(update={"loss": "mse", "metrics": ("rmse",)})
    result = fit(regression, model_factory=lambda p: make_mlp({"out": 1, "dropout": 0.0}),
                 data=data, verbose=False)  # fmt: skip
    assert result.history[-1].metrics["rmse"] < 0.5  # the mean alone scores about 2.2


def test_a_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    calls = {"n": 0}

    def loss(output: Any, target: Any) -> Any:
        calls["n"] += 1
        value = nn.functional.cross_entropy(output, target)
        return value * float("nan") if calls["n"] > 12 else value  # epoch 2 (8 batches each)

    with pytest.raises(TorchTrainingError, match=r"became nan at epoch 2.*checkpoint \(epoch 1\)"):
        fit(config(), loss=loss, checkpoint_dir=tmp_path, verbose=False)
    kept = torch.load(tmp_path / "last.pt", weights_only=True)
    assert kept["state"]["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in kept["model"].values())


def test_a_checkpoint_of_another_configuration_is_not_resumed(tmp_path: Path) -> None:
    fit(config(epochs=1), checkpoint_dir=tmp_path, verbose=False)
    with pytest.raises(ConfigError, match="another configuration"):
        fit(config(epochs=1, lr=0.5), checkpoint_dir=tmp_path, verbose=False)


def test_the_config_is_strict() -> None:
    with pytest.raises(ConfigError, match=r"train\.epoch"):
        TorchConfig.from_mapping(
            {"name": "x", "model": "a:b", "data": "a:c", "train": {"epoch": 3}}
        )
    with pytest.raises(ConfigError, match="not module:function"):
        TorchConfig.from_mapping({"name": "x", "model": "make_model", "data": "a:c"})
    with pytest.raises(ConfigError, match=r"unknown metric"):
        TorchConfig.from_mapping({"name": "x", "model": "a:b", "data": "a:c", "metrics": ["f1"]})
    with pytest.raises(ConfigError, match="module 'nowhere' cannot be imported"):
        fit(TorchConfig.from_mapping({"name": "x", "model": "nowhere:f", "data": "a:c"}))


def test_the_run_is_tracked_with_step_and_epoch_curves() -> None:
    from mlflow.tracking import MlflowClient

    tracked = TorchConfig.from_mapping(
        {**config(log_every=2).model_dump(), "tracker": "mlflow", "name": "toy-tracked"}
    )
    result = fit(tracked, verbose=False)
    assert result.run_id is not None
    client = MlflowClient()
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["config.train.lr"] == "0.01"
    steps = [m.step for m in client.get_metric_history(result.run_id, "train_loss")]
    assert steps == list(range(2, result.steps + 1, 2))  # every log_every steps
    epochs = client.get_metric_history(result.run_id, "val_loss")
    assert len(epochs) == 4
    assert run.data.metrics["best_loss"] == pytest.approx(result.best_score)
